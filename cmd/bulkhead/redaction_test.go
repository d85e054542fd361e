//go:build unix

package main_test

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
)

// The end-to-end suite holds every `bulkhead dev` it runs to one rule: no
// secret it ever handled (an API key, the admin token, a tool's signing
// secret, an MCP header value, a provider key) shows up in the process's log
// lines, in what it printed after "Ready." (the demo key's one-time display
// comes before), or anywhere in its data directory, which holds every stored
// item (audit entries and execution logs included) and every object.

// secretKeyPattern matches a whole API key (its secret part is 43 base64url
// characters; a displayed prefix shows only 4 of them).
var secretKeyPattern = regexp.MustCompile(`bk_live_(?:tn_[a-z0-9]+_)?[A-Za-z0-9_-]{43}`)

// minSecretLen keeps short values (which could occur by chance) out of the
// registry; every secret the suite makes is longer.
const minSecretLen = 12

// secrets are the secret values the suite has handled so far.
var secrets = struct {
	sync.Mutex
	set map[string]bool
}{set: map[string]bool{}}

// noteSecret remembers a secret value the platform must never write out.
func noteSecret(s string) {
	if len(s) < minSecretLen {
		return
	}
	secrets.Lock()
	defer secrets.Unlock()
	secrets.set[s] = true
}

// secretFields are the JSON fields whose values are secrets wherever they
// appear in a request or a response.
var secretFields = map[string]bool{"api_key": true, "signing_secret": true, "secret": true, "token": true, "password": true}

// noteSecretsIn remembers the secrets in a JSON body: the values of
// secretFields, and every value of a "headers" object (an MCP server's).
func noteSecretsIn(body []byte) {
	var v any
	if json.Unmarshal(body, &v) != nil {
		return
	}
	var walk func(v any, secret bool)
	walk = func(v any, secret bool) {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				walk(e, secret || secretFields[k] || k == "headers")
			}
		case []any:
			for _, e := range x {
				walk(e, secret)
			}
		case string:
			if secret {
				noteSecret(x)
			}
		}
	}
	walk(v, false)
}

// noteSecretsInEnv remembers the values of environment variables that name
// a secret (provider keys, AWS secret keys, tokens).
func noteSecretsInEnv(env []string) {
	for _, kv := range env {
		name, value, _ := strings.Cut(kv, "=")
		n := strings.ToUpper(name)
		if strings.Contains(n, "SECRET") || strings.Contains(n, "TOKEN") || strings.HasSuffix(n, "_KEY") {
			noteSecret(value)
		}
	}
}

// leaks lists where text shows a whole API key or a noted secret.
func leaks(where, text string) []string {
	var out []string
	if m := secretKeyPattern.FindString(text); m != "" {
		out = append(out, fmt.Sprintf("%s: an API key (%s...)", where, m[:12]))
	}
	secrets.Lock()
	defer secrets.Unlock()
	for s := range secrets.set {
		if strings.Contains(text, s) {
			out = append(out, fmt.Sprintf("%s: a secret (%s...)", where, s[:4]))
		}
	}
	return out
}

// adminTokenFile is the local operator's credential file (mode 0600, the
// README's walkthrough reads it as ~/.aws/credentials would be read): the one
// file in the data directory meant to hold a secret.
const adminTokenFile = "admin-token"

// checkNoSecrets fails tb when a stopped `bulkhead dev` wrote a secret to its
// log (stderr), to its output after the banner, or to its data directory.
func checkNoSecrets(tb testing.TB, p *proc, dataDir string) {
	tb.Helper()
	out := p.stdout.String()
	if _, after, ok := strings.Cut(out, "\nReady."); ok {
		out = after
	} else {
		out = ""
	}
	found := leaks("stdout after Ready", out)
	found = append(found, leaks("log", p.stderr.String())...)
	_ = filepath.WalkDir(dataDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return nil
		}
		rel, _ := filepath.Rel(dataDir, path)
		if rel == adminTokenFile {
			return nil
		}
		found = append(found, leaks("data file "+rel, string(b))...)
		return nil
	})
	for _, f := range found {
		tb.Errorf("secret written out by bulkhead dev: %s", f)
	}
}

// TestLeakCheckFindsSecrets: the check itself finds a key, a noted secret in
// a log line and one in a data file, and passes clean text.
func TestLeakCheckFindsSecrets(t *testing.T) {
	key := "bk_live_tn_abcdefghijklmnop_" + strings.Repeat("Ab_-", 10) + "xyz"
	noteSecretsIn([]byte(`{"tools":[{"headers":{"Authorization":"Bearer planted-mcp-token-123"}}],"signing_secret":"whsec_planted_0123456789"}`))
	for _, c := range []struct {
		text string
		want int
	}{
		{`{"level":"INFO","msg":"request","prefix":"bk_live_tn_abcdefghijklmnop_AbCd"}`, 0},
		{`{"msg":"auth","key":"` + key + `"}`, 1},
		{`{"msg":"tool call","header":"Bearer planted-mcp-token-123"}`, 1},
		{"binary\x00whsec_planted_0123456789\x00", 1},
	} {
		if got := leaks("test", c.text); len(got) != c.want {
			t.Errorf("leaks(%q) = %v, want %d", c.text, got, c.want)
		}
	}
	secrets.Lock()
	delete(secrets.set, "Bearer planted-mcp-token-123")
	delete(secrets.set, "whsec_planted_0123456789")
	secrets.Unlock()
}
