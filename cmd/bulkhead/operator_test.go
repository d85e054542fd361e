//go:build unix

package main_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bulkhead-dev/bulkhead/pkg/awsfake"
)

// cliResult is one run of the bulkhead binary.
type cliResult struct {
	args           []string
	stdout, stderr string
	code           int
}

func (r cliResult) String() string {
	return fmt.Sprintf("bulkhead %s -> exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(r.args, " "), r.code, r.stdout, r.stderr)
}

// json decodes stdout as a JSON object.
func (r cliResult) json(tb testing.TB) map[string]any {
	tb.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &m); err != nil {
		tb.Fatalf("%v\nstdout is not a JSON object: %v", r, err)
	}
	return m
}

// cliEnv is the environment a CLI run starts from: the test's, without
// anything of the developer's shell that would change what the CLI does.
func cliEnv(extra ...string) []string {
	env := append(os.Environ(),
		"BULKHEAD_URL=", "BULKHEAD_ADDR=", "BULKHEAD_ADMIN_TOKEN=", "BULKHEAD_DATA_DIR=",
		"BULKHEAD_SIGV4=", "BULKHEAD_TENANT_KEY=")
	// exec.Cmd uses the last value of a duplicated name.
	return append(env, extra...)
}

// runCLI runs the bulkhead binary with args in env; exit codes are the caller's to check.
func runCLI(tb testing.TB, env []string, args ...string) cliResult {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, mustBinary(tb), args...)
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := cliResult{args: args, stdout: stdout.String(), stderr: stderr.String()}
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		r.code = exit.ExitCode()
	default:
		tb.Fatalf("bulkhead %s: %v", strings.Join(args, " "), err)
	}
	return r
}

// mustCLI runs the binary and fails the test unless it exits 0.
func mustCLI(tb testing.TB, env []string, args ...string) cliResult {
	tb.Helper()
	r := runCLI(tb, env, args...)
	if r.code != 0 {
		tb.Fatalf("%v\nwant exit 0", r)
	}
	return r
}

// wantCLIError checks a failed run: its exit code and that stderr starts with prefix.
func wantCLIError(tb testing.TB, r cliResult, code int, prefix string) {
	tb.Helper()
	if r.code != code {
		tb.Errorf("%v\nexit code = %d, want %d", r, r.code, code)
	}
	if !strings.HasPrefix(r.stderr, prefix) {
		tb.Errorf("%v\nstderr does not start with %q", r, prefix)
	}
}

// tableRows returns the rows of a table the CLI printed, each split into
// its cells (two or more spaces apart), after checking its header.
func tableRows(tb testing.TB, r cliResult, header ...string) [][]string {
	tb.Helper()
	cells := regexp.MustCompile(` {2,}`)
	lines := strings.Split(strings.TrimRight(r.stdout, "\n"), "\n")
	if got := cells.Split(strings.TrimSpace(lines[0]), -1); strings.Join(got, "|") != strings.Join(header, "|") {
		tb.Fatalf("%v\ntable header = %q, want %q", r, got, header)
	}
	var rows [][]string
	for _, l := range lines[1:] {
		rows = append(rows, cells.Split(strings.TrimSpace(l), -1))
	}
	return rows
}

// TestOperatorCommands drives the operator and key commands against a
// running `bulkhead dev`, as an operator would, and checks their effect
// through the API.
func TestOperatorCommands(t *testing.T) {
	dataDir := t.TempDir()
	// No BULKHEAD_ADMIN_TOKEN: the platform generates one in the data dir,
	// where the CLI finds it by default.
	p := startDev(t, t, dataDir, "")
	c := newClient(p.URL)
	env := cliEnv("BULKHEAD_URL="+p.URL, "BULKHEAD_DATA_DIR="+dataDir)
	tokenBytes, err := os.ReadFile(filepath.Join(dataDir, "admin-token"))
	if err != nil {
		t.Fatalf("the generated admin token: %v", err)
	}
	token := strings.TrimSpace(string(tokenBytes))

	var id, key string
	t.Run("create", func(t *testing.T) {
		r := mustCLI(t, env, "tenant", "create", "--name", "Acme Ops", "--tier", "professional")
		m := r.json(t)
		id, _ = m["tenant_id"].(string)
		key, _ = m["api_key"].(string)
		if !strings.HasPrefix(id, "tn_") || !strings.HasPrefix(key, "bk_live_") || m["key_id"] == nil {
			t.Fatalf("%v\nwant tenant_id, api_key and key_id", r)
		}
		if m["name"] != "Acme Ops" || m["tier"] != "professional" || m["status"] != "active" {
			t.Errorf("%v\nwant name \"Acme Ops\", tier professional, status active", r)
		}
		if !strings.Contains(r.stderr, "only this once") {
			t.Errorf("%v\nno warning that the api_key is shown once", r)
		}
		c.must(t, http.StatusOK, "GET", "/v1/agents", key, nil)
	})
	if id == "" {
		t.FailNow()
	}

	t.Run("list", func(t *testing.T) {
		rows := tableRows(t, mustCLI(t, env, "tenant", "list"), "ID", "NAME", "TIER", "STATUS")
		var found bool
		for _, row := range rows {
			if row[0] == id {
				found = true
				if want := []string{id, "Acme Ops", "professional", "active"}; strings.Join(row, "|") != strings.Join(want, "|") {
					t.Errorf("row of %s = %q, want %q", id, row, want)
				}
			}
		}
		if !found {
			t.Errorf("tenant list has no row for %s: %q", id, rows)
		}
		if rows := tableRows(t, mustCLI(t, env, "tenant", "list", "--limit", "1"), tenantHeader...); len(rows) != 1 {
			t.Errorf("tenant list --limit 1: %d rows, want 1", len(rows))
		}
	})

	t.Run("list follows next_cursor", func(t *testing.T) {
		// More tenants than one page holds (100).
		want := map[string]bool{id: true}
		for i := range 101 {
			r := c.must(t, http.StatusCreated, "POST", "/v1/admin/tenants", token, map[string]any{"name": fmt.Sprintf("bulk %d", i)})
			want[r.str(t, "tenant_id")] = true
		}
		r := mustCLI(t, env, "tenant", "list", "--output", "json")
		var list []map[string]any
		if err := json.Unmarshal([]byte(r.stdout), &list); err != nil {
			t.Fatalf("%v\nnot a JSON array: %v", r, err)
		}
		seen := map[string]bool{}
		for _, it := range list {
			tid, _ := it["tenant_id"].(string)
			if seen[tid] {
				t.Errorf("tenant %s listed twice", tid)
			}
			seen[tid] = true
		}
		for tid := range want {
			if !seen[tid] {
				t.Errorf("tenant list --output json has no %s (%d listed)", tid, len(list))
			}
		}
		if rows := tableRows(t, mustCLI(t, env, "tenant", "list", "--limit", "101"), tenantHeader...); len(rows) != 101 {
			t.Errorf("tenant list --limit 101: %d rows, want 101", len(rows))
		}
	})

	t.Run("get", func(t *testing.T) {
		m := mustCLI(t, env, "tenant", "get", id).json(t)
		if m["tenant_id"] != id || m["tier"] != "professional" {
			t.Errorf("tenant get %s = %v", id, m)
		}
		for _, f := range []string{"quota", "circuit_breaker", "usage"} {
			if _, ok := m[f].(map[string]any); !ok {
				t.Errorf("tenant get %s has no %q object: %v", id, f, m)
			}
		}
		// Flags after the argument, the token given explicitly, the URL from BULKHEAD_ADDR.
		addrEnv := cliEnv("BULKHEAD_ADDR=" + strings.TrimPrefix(p.URL, "http://"))
		rows := tableRows(t, mustCLI(t, addrEnv, "tenant", "get", id, "--output", "table", "--admin-token", token), tenantHeader...)
		if want := []string{id, "Acme Ops", "professional", "active"}; len(rows) != 1 || strings.Join(rows[0], "|") != strings.Join(want, "|") {
			t.Errorf("tenant get --output table rows = %q, want [%q]", rows, want)
		}
	})

	t.Run("set-tier", func(t *testing.T) {
		if m := mustCLI(t, env, "tenant", "set-tier", id, "enterprise").json(t); m["tier"] != "enterprise" {
			t.Errorf("set-tier answered tier %v, want enterprise", m["tier"])
		}
		if m := mustCLI(t, env, "tenant", "get", id).json(t); m["tier"] != "enterprise" {
			t.Errorf("tier after set-tier = %v, want enterprise", m["tier"])
		}
		r := runCLI(t, env, "tenant", "set-tier", id, "platinum")
		wantCLIError(t, r, 1, "bulkhead: invalid_request: ")
	})

	t.Run("model", func(t *testing.T) {
		m := mustCLI(t, env, "model", "set", "openai/gpt-4o-mini", "--input-per-million", "0.2", "--output-per-million", "0.8",
			"--tiers", "professional,enterprise", "--context-window", "128000", "--max-output-tokens", "16384").json(t)
		if m["model"] != "openai/gpt-4o-mini" || m["input_per_million"] != 0.2 || fmt.Sprint(m["tiers"]) != "[professional enterprise]" {
			t.Errorf("model set answered %v", m)
		}
		var found bool
		for _, row := range tableRows(t, mustCLI(t, env, "model", "list"), "MODEL", "INPUT/M USD", "OUTPUT/M USD", "CONTEXT", "MAX OUTPUT", "TIERS") {
			if row[0] == "openai/gpt-4o-mini" {
				found = strings.Join(row[1:], "|") == "0.2|0.8|128000|16384|professional,enterprise"
			}
		}
		if !found {
			t.Errorf("model list does not show the new price")
		}
		// The tenant (enterprise since set-tier) sees it at once.
		var listed bool
		for _, e := range c.must(t, http.StatusOK, "GET", "/v1/models?limit=100", key, nil).JSON["data"].([]any) {
			if e := e.(map[string]any); e["model"] == "openai/gpt-4o-mini" {
				listed = fmt.Sprint(e["input_per_million"]) == "0.2"
			}
		}
		if !listed {
			t.Errorf("GET /v1/models does not show the new price")
		}
		wantCLIError(t, runCLI(t, env, "model", "set", "azure/x", "--input-per-million", "1", "--output-per-million", "1",
			"--context-window", "10", "--max-output-tokens", "5"), 1, "bulkhead: invalid_request: ")
		wantCLIError(t, runCLI(t, env, "model", "set", "openai/x", "--input-per-million", "free"), 2, "")
	})

	t.Run("set-quota", func(t *testing.T) {
		m := mustCLI(t, env, "tenant", "set-quota", id, "--max-tokens-per-month", "12345", "--max-spend-per-month", "12.5").json(t)
		q, _ := m["quota"].(map[string]any)
		if q["max_tokens_per_month"] != 12345.0 || q["max_spend_per_month"] != 12.5 {
			t.Errorf("quota after set-quota = %v, want max_tokens_per_month 12345, max_spend_per_month 12.5", q)
		}
		u := c.must(t, http.StatusOK, "GET", "/v1/usage", key, nil)
		if got := u.int(t, "quota.max_tokens_per_month"); got != 12345 {
			t.Errorf("the tenant's /v1/usage quota.max_tokens_per_month = %d, want 12345", got)
		}
	})

	t.Run("suspend and resume", func(t *testing.T) {
		if m := mustCLI(t, env, "tenant", "suspend", id).json(t); m["status"] != "suspended" {
			t.Errorf("suspend answered status %v", m["status"])
		}
		wantError(t, c.do(t, "GET", "/v1/agents", key, nil), "forbidden", http.StatusForbidden)
		if m := mustCLI(t, env, "tenant", "resume", id).json(t); m["status"] != "active" {
			t.Errorf("resume answered status %v", m["status"])
		}
		c.must(t, http.StatusOK, "GET", "/v1/agents", key, nil)
	})

	t.Run("keys", func(t *testing.T) {
		r := mustCLI(t, env, "key", "create", "--tenant-key", key, "--name", "ci")
		m := r.json(t)
		newKey, _ := m["api_key"].(string)
		keyID, _ := m["key_id"].(string)
		if !strings.HasPrefix(newKey, "bk_live_") || keyID == "" || m["name"] != "ci" {
			t.Fatalf("%v\nwant api_key, key_id and name ci", r)
		}
		c.must(t, http.StatusOK, "GET", "/v1/agents", newKey, nil)

		// The key from the environment; the new key listed by name.
		rows := tableRows(t, mustCLI(t, append(env, "BULKHEAD_TENANT_KEY="+key), "key", "list"),
			"KEY_ID", "NAME", "PREFIX", "STATUS", "CREATED_AT")
		var listed bool
		for _, row := range rows {
			listed = listed || (row[0] == keyID && row[1] == "ci" && row[3] == "active")
		}
		if !listed {
			t.Errorf("key list has no active key %s named ci: %q", keyID, rows)
		}

		if m := mustCLI(t, env, "key", "revoke", "--tenant-key", key, keyID).json(t); m["status"] != "revoked" {
			t.Errorf("key revoke answered status %v, want revoked", m["status"])
		}
		wantError(t, c.do(t, "GET", "/v1/agents", newKey, nil), "", http.StatusUnauthorized, http.StatusForbidden)
		c.must(t, http.StatusOK, "GET", "/v1/agents", key, nil)
		// The revoked key can no longer act for the tenant, through the CLI either.
		if r := runCLI(t, env, "key", "list", "--tenant-key", newKey); r.code != 1 || !regexp.MustCompile(`^bulkhead: (unauthenticated|forbidden): `).MatchString(r.stderr) {
			t.Errorf("%v\nwant exit 1 with an unauthenticated or forbidden error", r)
		}
	})

	t.Run("audit", func(t *testing.T) {
		// One tenant's log: what the commands above did to it, and by whom.
		rows := tableRows(t, mustCLI(t, env, "audit", "--tenant", id), "TIME", "TENANT_ID", "ACTOR", "ACTION", "TARGET", "CHANGED")
		seen := map[string]string{}
		for _, row := range rows {
			if len(row) > 4 && row[1] == id {
				seen[row[3]] = row[2]
			}
		}
		for action, actor := range map[string]string{"tenant.created": "operator:local-admin", "tenant.suspended": "operator:local-admin",
			"tenant.resumed": "operator:local-admin"} {
			if seen[action] != actor {
				t.Errorf("audit --tenant: %s by %q, want by %s (rows %v)", action, seen[action], actor, rows)
			}
		}
		if !strings.HasPrefix(seen["key.created"], "key:key_") {
			t.Errorf("audit --tenant: key.created by %q, want the tenant's key", seen["key.created"])
		}
		// Across tenants, filtered by action, as the API's JSON.
		var entries []map[string]any
		r := mustCLI(t, env, "audit", "list", "--action", "tenant.created", "--output", "json")
		if err := json.Unmarshal([]byte(r.stdout), &entries); err != nil || len(entries) == 0 {
			t.Fatalf("%v\nwant a JSON list of entries: %v", r, err)
		}
		for _, e := range entries {
			if e["action"] != "tenant.created" || strings.Contains(r.stdout, "bk_live_") {
				t.Errorf("audit --action tenant.created listed %v", e)
			}
		}
		wantCLIError(t, runCLI(t, env, "audit", "--action", "Not An Action"), 1, "bulkhead: invalid_request: ")
	})

	t.Run("errors", func(t *testing.T) {
		wantCLIError(t, runCLI(t, env, "tenant", "get", "tn_doesnotexist"), 1, "bulkhead: not_found: ")
		wantCLIError(t, runCLI(t, env, "tenant", "get", id, "--admin-token", "not-the-token"), 1, "bulkhead: forbidden: ")
		for _, args := range [][]string{
			{"tenant"},
			{"tenant", "frobnicate"},
			{"tenant", "get"},
			{"tenant", "get", id, "extra"},
			{"tenant", "create"},
			{"tenant", "create", "--nmae", "x"},
			{"tenant", "list", "--output", "yaml"},
			{"tenant", "list", "--limit", "-1"},
			{"tenant", "set-tier", id},
			{"tenant", "set-quota", id},
			{"tenant", "set-quota", id, "--max-spend-per-month", "1.2345678"},
			{"key", "create"},
			{"key", "revoke", "--tenant-key", key},
			{"tenant", "get", id, "--url", "localhost:8080"},
		} {
			wantCLIError(t, runCLI(t, env, args...), 2, "bulkhead "+args[0])
		}
		wantCLIError(t, runCLI(t, append(env, "BULKHEAD_SIGV4=maybe"), "tenant", "get", id), 2, "bulkhead tenant get: BULKHEAD_SIGV4")
		if r := mustCLI(t, env, "tenant", "set-quota", "-h"); !strings.Contains(r.stdout, "-max-storage-mb") {
			t.Errorf("%v\n-h does not list the flags", r)
		}
	})
}

// tenantHeader is the header of a table of tenants.
var tenantHeader = []string{"ID", "NAME", "TIER", "STATUS"}

// The credentials the SigV4 test gives the CLI.
const (
	sigAKID   = "AKIDEXAMPLE1234567890"
	sigSecret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
	sigRegion = "eu-west-1"
)

var sigAuthorization = regexp.MustCompile(`^AWS4-HMAC-SHA256 Credential=` + sigAKID + `/([0-9]{8})/` + sigRegion +
	`/execute-api/aws4_request, SignedHeaders=([a-z0-9;-]+), Signature=([0-9a-f]{64})$`)

// checkSigV4 checks that r carries a valid SigV4 signature of itself by the
// test's credentials (and session token, when not empty), signed recently and
// over the headers IAM requires.
func checkSigV4(r *http.Request, body []byte, sessionToken string) error {
	auth := r.Header.Get("Authorization")
	m := sigAuthorization.FindStringSubmatch(auth)
	if m == nil {
		return fmt.Errorf("Authorization is %q, want AWS4-HMAC-SHA256 Credential=%s/<date>/%s/execute-api/aws4_request, SignedHeaders=..., Signature=...",
			auth, sigAKID, sigRegion)
	}
	amzDate := r.Header.Get("X-Amz-Date")
	at, err := time.Parse("20060102T150405Z", amzDate)
	if err != nil {
		return fmt.Errorf("X-Amz-Date is %q: %v", amzDate, err)
	}
	if m[1] != amzDate[:8] {
		return fmt.Errorf("credential date %s is not X-Amz-Date's %s", m[1], amzDate)
	}
	if d := time.Since(at); d < -time.Minute || d > 5*time.Minute {
		return fmt.Errorf("X-Amz-Date %s is %v away from now", amzDate, d)
	}
	signed := strings.Split(m[2], ";")
	for _, h := range []string{"host", "x-amz-date"} {
		if !contains(signed, h) {
			return fmt.Errorf("SignedHeaders %s lacks %s", m[2], h)
		}
	}
	if got := r.Header.Get("X-Amz-Security-Token"); got != sessionToken || (got != "" && !contains(signed, "x-amz-security-token")) {
		return fmt.Errorf("X-Amz-Security-Token is %q (signed: %v), want %q", got, contains(signed, "x-amz-security-token"), sessionToken)
	}
	creds := awsfake.Credentials{AccessKey: sigAKID, SecretKey: sigSecret, Region: sigRegion, Service: "execute-api"}
	if typ, msg := awsfake.VerifySigV4(r, body, creds); typ != "" {
		return fmt.Errorf("signature does not verify: %s: %s\n Authorization %s", typ, msg, auth)
	}
	return nil
}

// TestOperatorSigV4 checks that --sigv4 (or BULKHEAD_SIGV4=1) signs the
// operator requests as IAM-authorised API Gateway routes want, with the AWS
// SDK's credentials and region, and sends no operator token.
func TestOperatorSigV4(t *testing.T) {
	type seen struct {
		method, uri string
		body        []byte
		err         error
	}
	var (
		mu       sync.Mutex
		requests []seen
		session  string // the session token the current run has
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		err := checkSigV4(r, body, session)
		requests = append(requests, seen{r.Method, r.URL.RequestURI(), body, err})
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		switch {
		case err != nil:
			// What API Gateway answers a request IAM refuses.
			w.WriteHeader(http.StatusForbidden)
			fmt.Fprintf(w, `{"message":"The request signature we calculated does not match the signature you provided."}`)
		case r.URL.Path == "/prod/v1/admin/tenants" && r.Method == "GET":
			fmt.Fprintf(w, `{"data":[{"tenant_id":"tn_sig","name":"Signed","tier":"starter","status":"active"}],"has_more":false,"next_cursor":null}`)
		case r.URL.Path == "/prod/v1/admin/tenants/tn_denied":
			w.WriteHeader(http.StatusForbidden)
			fmt.Fprintf(w, `{"message":"User: arn:aws:iam::123456789012:user/ops is not authorized to perform: execute-api:Invoke"}`)
		default:
			fmt.Fprintf(w, `{"tenant_id":"tn_sig","name":"Signed","tier":"enterprise","status":"active"}`)
		}
	}))
	defer srv.Close()

	empty := filepath.Join(t.TempDir(), "empty")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	base := srv.URL + "/prod"
	env := cliEnv(
		"AWS_ACCESS_KEY_ID="+sigAKID, "AWS_SECRET_ACCESS_KEY="+sigSecret, "AWS_SESSION_TOKEN=", "AWS_REGION="+sigRegion,
		"AWS_DEFAULT_REGION=", "AWS_PROFILE=", "AWS_DEFAULT_PROFILE=", "AWS_CONFIG_FILE="+empty, "AWS_SHARED_CREDENTIALS_FILE="+empty,
		"AWS_EC2_METADATA_DISABLED=true",
		// A token in the environment must not be sent along.
		"BULKHEAD_ADMIN_TOKEN=must-not-be-sent", "BULKHEAD_URL="+base)

	for _, tc := range []struct {
		name    string
		env     []string
		session string
		args    []string
		method  string
		uri     string
		body    string
	}{
		{"get with --sigv4", nil, "", []string{"tenant", "get", "tn_sig", "--sigv4"}, "GET", "/prod/v1/admin/tenants/tn_sig", ""},
		{"set-tier with BULKHEAD_SIGV4=1", []string{"BULKHEAD_SIGV4=1"}, "", []string{"tenant", "set-tier", "tn_sig", "enterprise"},
			"PATCH", "/prod/v1/admin/tenants/tn_sig", `{"tier":"enterprise"}`},
		{"list signs its query", []string{"BULKHEAD_SIGV4=true"}, "", []string{"tenant", "list", "--limit", "5"},
			"GET", "/prod/v1/admin/tenants?limit=5", ""},
		{"session token", []string{"AWS_SESSION_TOKEN=session-token-example"}, "session-token-example",
			[]string{"tenant", "suspend", "tn_sig", "--sigv4"}, "PATCH", "/prod/v1/admin/tenants/tn_sig", `{"status":"suspended"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mu.Lock()
			requests, session = nil, tc.session
			mu.Unlock()
			r := mustCLI(t, append(append([]string{}, env...), tc.env...), tc.args...)
			mu.Lock()
			defer mu.Unlock()
			if len(requests) != 1 {
				t.Fatalf("%v\n%d requests, want 1", r, len(requests))
			}
			got := requests[0]
			if got.err != nil {
				t.Errorf("%s %s: %v", got.method, got.uri, got.err)
			}
			if got.method != tc.method || got.uri != tc.uri || string(got.body) != tc.body {
				t.Errorf("request = %s %s %s, want %s %s %s", got.method, got.uri, got.body, tc.method, tc.uri, tc.body)
			}
		})
	}

	t.Run("IAM refusal", func(t *testing.T) {
		mu.Lock()
		session = ""
		mu.Unlock()
		r := runCLI(t, env, "tenant", "get", "tn_denied", "--sigv4")
		wantCLIError(t, r, 1, "bulkhead: HTTP 403: User: arn:aws:iam::123456789012:user/ops is not authorized")
	})

	t.Run("no region", func(t *testing.T) {
		mu.Lock()
		requests, session = nil, ""
		mu.Unlock()
		r := runCLI(t, append(append([]string{}, env...), "AWS_REGION="), "tenant", "get", "tn_sig", "--sigv4")
		wantCLIError(t, r, 1, "bulkhead tenant get: --sigv4 needs an AWS region")
		mu.Lock()
		defer mu.Unlock()
		if len(requests) != 0 {
			t.Errorf("%d requests sent without a region, want 0", len(requests))
		}
	})
}

// TestCLIPrintsTheAPIsJSON checks that the commands print the API's own
// JSON, indented: its field order, and fields the CLI does not know of.
func TestCLIPrintsTheAPIsJSON(t *testing.T) {
	const (
		tenant = `{"status":"active","tenant_id":"tn_raw","x_future":{"b":2,"a":[1,2.50]},"name":"Raw","tier":"starter","quota":{"max_spend_per_month":25.500000}}`
		key    = `{"status":"revoked","key_id":"key_raw","name":"ci","created_at":"2026-01-02T03:04:05.120Z"}`
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.Method + " " + r.URL.Path {
		case "GET /v1/admin/tenants/tn_raw":
			io.WriteString(w, tenant)
		case "GET /v1/admin/tenants":
			io.WriteString(w, `{"data":[`+tenant+`],"has_more":false,"next_cursor":null}`)
		case "GET /v1/keys":
			io.WriteString(w, `{"data":[`+key+`],"has_more":false,"next_cursor":null}`)
		case "DELETE /v1/keys/key_raw":
			io.WriteString(w, key)
		default:
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, `{"error":{"code":"not_found","message":"no such thing"}}`)
		}
	}))
	defer srv.Close()
	env := cliEnv("BULKHEAD_URL="+srv.URL, "BULKHEAD_ADMIN_TOKEN=token", "BULKHEAD_TENANT_KEY=bk_live_k")
	indent := func(s string) string {
		var b bytes.Buffer
		if err := json.Indent(&b, []byte(s), "", "  "); err != nil {
			t.Fatal(err)
		}
		return b.String() + "\n"
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"tenant", "get", "tn_raw"}, indent(tenant)},
		{[]string{"tenant", "list", "-output", "json"}, indent("[" + tenant + "]")},
		{[]string{"key", "list", "-output", "json"}, indent("[" + key + "]")},
		{[]string{"key", "revoke", "key_raw"}, indent(key)},
		{[]string{"key", "list"}, "KEY_ID   NAME  PREFIX  STATUS   CREATED_AT\nkey_raw  ci            revoked  2026-01-02T03:04:05.120Z\n"},
	} {
		if r := mustCLI(t, env, tc.args...); r.stdout != tc.want {
			t.Errorf("%v\nwant stdout:\n%s", r, tc.want)
		}
	}
	wantCLIError(t, runCLI(t, env, "tenant", "get", "tn_gone"), 1, "bulkhead: not_found: no such thing\n")
}

// TestCLIPlatformNotRunning checks the hint when nothing listens at the URL.
func TestCLIPlatformNotRunning(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	r := runCLI(t, cliEnv("BULKHEAD_ADMIN_TOKEN=token"), "tenant", "get", "tn_x", "--url", url+"/")
	wantCLIError(t, r, 1, fmt.Sprintf("bulkhead tenant get: is the platform running at %s? Get %q: dial tcp ", url, url+"/v1/admin/tenants/tn_x"))
}
