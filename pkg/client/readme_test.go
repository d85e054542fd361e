package client_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// readmeExample is the Go program in the README's "Go SDK" section.
func readmeExample(tb testing.TB) string {
	tb.Helper()
	raw, err := os.ReadFile("../../README.md")
	if err != nil {
		tb.Fatal(err)
	}
	s := string(raw)
	i := strings.Index(s, "\n## Go SDK\n")
	if i < 0 {
		tb.Fatal(`README.md has no "## Go SDK" section`)
	}
	s = s[i+1:]
	if j := strings.Index(s[1:], "\n## "); j >= 0 {
		s = s[:j+1]
	}
	start := strings.Index(s, "```go\n")
	if start < 0 {
		tb.Fatal("the Go SDK section has no ```go block")
	}
	s = s[start+len("```go\n"):]
	end := strings.Index(s, "\n```")
	if end < 0 {
		tb.Fatal("the ```go block does not end")
	}
	return s[:end+1]
}

// TestReadmeExample builds the README's program in a module of its own that
// requires this one (replaced by the working tree), and runs it against the
// platform: it must print the reply, then one line per execution.
func TestReadmeExample(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a program")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the README example is built with the go command: %v", err)
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	mod := "module sdkexample\n\ngo 1.26\n\nrequire github.com/bulkhead-dev/bulkhead v0.0.0\n\nreplace github.com/bulkhead-dev/bulkhead => " + root + "\n"
	// The repository's own replacements (of vendored forks) apply here too.
	gomod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(gomod), "\n") {
		if from, to, ok := strings.Cut(strings.TrimPrefix(line, "replace "), " => ./"); ok && strings.HasPrefix(line, "replace ") {
			mod += "replace " + from + " => " + filepath.Join(root, to) + "\n"
		}
	}
	sum, err := os.ReadFile(filepath.Join(root, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("go.mod:\n%s", mod)
	for name, data := range map[string]string{"go.mod": mod, "go.sum": string(sum), "main.go": readmeExample(t)} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	bin := filepath.Join(dir, "example")
	for _, args := range [][]string{{"vet", "."}, {"build", "-o", bin, "."}} {
		cmd := exec.CommandContext(ctx, goBin, args...)
		cmd.Dir = dir
		// The module cache has every module this one needs: no network.
		cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOPROXY=off", "GOWORK=off")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}

	p := startPlatform(t)
	tn, _ := p.tenant(t, "acme")
	cmd := exec.CommandContext(ctx, bin)
	cmd.Env = append(os.Environ(), "BULKHEAD_URL="+p.url, "BULKHEAD_API_KEY="+tn.APIKey)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("the example: %v\n%s", err, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	if len(lines) < 2 || lines[0] == "" {
		t.Fatalf("the example printed %q", stdout.String())
	}
	t.Logf("the example printed:\n%s", stdout.String())
	last := strings.Fields(lines[len(lines)-1])
	if len(last) != 4 || !strings.HasPrefix(last[0], "exec_") || last[1] != "completed" {
		t.Fatalf("the example's execution line %q", lines[len(lines)-1])
	}
}
