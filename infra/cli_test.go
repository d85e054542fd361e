//go:build infra

// The infrastructure tests carry the "infra" build tag (see
// infra/stacks/stacks_test.go); `make test-infra` runs them.

package main

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bulkhead-dev/bulkhead/infra/stacks"
)

// The test runs in infra/; the repository (cdk.json, the Makefile) is one up.
const repoRoot = ".."

// cliVersion is the cdk CLI release the Makefile pins for `make deploy`.
func cliVersion(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^CDK_CLI_VERSION\s*:?=\s*(\S+)\s*$`).FindSubmatch(b)
	if m == nil {
		t.Fatal("the Makefile pins no CDK_CLI_VERSION")
	}
	v := string(m[1])
	if !regexp.MustCompile(`^2\.\d+\.\d+$`).MatchString(v) {
		t.Fatalf("CDK_CLI_VERSION = %q, want an exact 2.x.y release", v)
	}
	return v
}

// TestSynthMatchesTheCLI synthesizes the app the way `make synth` does (go run
// ./infra, cdk.json's context read by the app) and the way `make deploy` does
// (the pinned cdk CLI running cdk.json's app command), and requires the same
// templates: what the tests and cdk-nag check is what gets deployed. It needs
// npx; the CLI comes from npm on the first run, from npx's cache afterwards.
func TestSynthMatchesTheCLI(t *testing.T) {
	npx, err := exec.LookPath("npx")
	if err != nil {
		t.Fatalf("npx not found on PATH (it comes with Node.js's npm): the CLI comparison needs it: %v", err)
	}
	version := cliVersion(t)
	dir := t.TempDir()
	assets := filepath.Join(dir, "dist")
	for _, name := range stacks.FunctionNames() {
		writePlaceholderZip(t, filepath.Join(assets, name+".zip"), name)
	}
	// The CLI resolves an account and Region when it finds credentials and
	// then pins the stacks to them; `make synth` never does. No credentials
	// reach either run, so both stay environment-agnostic.
	env := isolatedEnv(dir)

	direct := filepath.Join(dir, "direct")
	ctxJSON, err := json.Marshal(map[string]string{"siloTenants": "", "nag": "true", "assetDir": assets})
	if err != nil {
		t.Fatal(err)
	}
	runCmd(t, exec.Command("go", "run", "./infra"), append(env, "CDK_OUTDIR="+direct, "CDK_CONTEXT_JSON="+string(ctxJSON)))

	viaCLI := filepath.Join(dir, "cli")
	out := runCmd(t, exec.Command(npx, "--yes", "aws-cdk@"+version, "synth", "--no-notices", "--quiet", "-o", viaCLI,
		"-c", "siloTenants=", "-c", "nag=true", "-c", "assetDir="+assets), env)
	if strings.Contains(out, "reserved context key") {
		t.Errorf("the CLI warns about cdk.json's context:\n%s", out)
	}

	templates := func(dir string) []string {
		paths, err := filepath.Glob(filepath.Join(dir, "*.template.json"))
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, p := range paths {
			names = append(names, filepath.Base(p))
		}
		slices.Sort(names)
		return names
	}
	names := templates(direct)
	if want := []string{stacks.PoolStackName + ".template.json", stacks.SiloStackPrefix + stacks.ExampleSiloTenant + ".template.json"}; !slices.Equal(names, want) {
		t.Fatalf("make synth wrote templates %v, want %v", names, want)
	}
	if got := templates(viaCLI); !slices.Equal(got, names) {
		t.Fatalf("cdk synth wrote templates %v, make synth %v", got, names)
	}
	for _, name := range names {
		a, b := readTemplate(t, filepath.Join(direct, name)), readTemplate(t, filepath.Join(viaCLI, name))
		for _, diff := range templateDiff(a, b) {
			t.Errorf("%s: %s", name, diff)
		}
		// Path metadata is what the CLI adds: the comparison is only
		// meaningful if both have it.
		for id, r := range a.Resources {
			if r.Metadata["aws:cdk:path"] == nil && r.Type != "AWS::CDK::Metadata" {
				t.Errorf("%s: %s has no aws:cdk:path metadata", name, id)
				break
			}
		}
	}
}

// isolatedEnv is the process environment without AWS credentials, profiles or
// the CLI's telemetry, and with Node's version banners acknowledged as the
// Makefile does.
func isolatedEnv(dir string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "AWS_") || strings.HasPrefix(k, "CDK_") {
			continue
		}
		env = append(env, kv)
	}
	missing := filepath.Join(dir, "no-aws-config")
	return append(env,
		"AWS_CONFIG_FILE="+missing, "AWS_SHARED_CREDENTIALS_FILE="+missing, "AWS_EC2_METADATA_DISABLED=true",
		"CDK_DISABLE_CLI_TELEMETRY=true",
		"JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION=1", "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=20")
}

// runCmd runs cmd in the repository root and returns its combined output.
func runCmd(t *testing.T, cmd *exec.Cmd, env []string) string {
	t.Helper()
	cmd.Dir, cmd.Env = repoRoot, env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, out.String())
	}
	t.Logf("%s: %v", strings.Join(cmd.Args[:min(len(cmd.Args), 4)], " "), time.Since(start).Round(time.Millisecond))
	return out.String()
}

type template struct {
	Resources map[string]struct {
		Type     string         `json:"Type"`
		Metadata map[string]any `json:"Metadata"`
	} `json:"Resources"`
	raw map[string]any
}

func readTemplate(t *testing.T, path string) template {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var tmpl template
	if err := json.Unmarshal(b, &tmpl); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if err := json.Unmarshal(b, &tmpl.raw); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return tmpl
}

// templateDiff lists the resources (and other top-level sections) that
// differ between two templates.
func templateDiff(a, b template) []string {
	var diff []string
	ra, _ := a.raw["Resources"].(map[string]any)
	rb, _ := b.raw["Resources"].(map[string]any)
	for id, r := range ra {
		other, ok := rb[id]
		switch {
		case !ok:
			diff = append(diff, fmt.Sprintf("resource %s (%v) only in make synth's template", id, a.Resources[id].Type))
		case !reflect.DeepEqual(r, other):
			ja, _ := json.Marshal(r)
			jb, _ := json.Marshal(other)
			diff = append(diff, fmt.Sprintf("resource %s differs:\n  make synth: %s\n  cdk synth:  %s", id, ja, jb))
		}
	}
	for id := range rb {
		if _, ok := ra[id]; !ok {
			diff = append(diff, fmt.Sprintf("resource %s (%v) only in cdk synth's template", id, b.Resources[id].Type))
		}
	}
	for k, v := range a.raw {
		if k != "Resources" && !reflect.DeepEqual(v, b.raw[k]) {
			diff = append(diff, "section "+k+" differs")
		}
	}
	for k := range b.raw {
		if _, ok := a.raw[k]; !ok {
			diff = append(diff, "section "+k+" only in cdk synth's template")
		}
	}
	slices.Sort(diff)
	return diff
}

// writePlaceholderZip writes a zip holding a bootstrap that differs per
// function, so that every function gets an asset of its own.
func writePlaceholderZip(t *testing.T, path, name string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, err := zw.CreateHeader(&zip.FileHeader{Name: "bootstrap", Method: zip.Deflate})
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(w, "#!/bin/sh\necho placeholder for %s\n", name)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}
