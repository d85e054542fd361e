package api_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/bulkhead-dev/bulkhead/pkg/platform/platformtest"
	"github.com/bulkhead-dev/bulkhead/pkg/ssrf"
)

var objectSchema = map[string]any{"type": "object", "properties": map[string]any{"query": map[string]any{"type": "string"}}}

func toolBody(name string) map[string]any {
	return map[string]any{"name": name, "url": "https://tools.example.com/" + name, "input_schema": objectSchema}
}

// TestToolValidation: every field of a tool is checked before anything is
// stored, with a 400 naming the problem.
func TestToolValidation(t *testing.T) {
	h := newHarness(t, 0)
	a := h.newTenant("acme", "starter")
	with := func(k string, v any) map[string]any {
		b := toolBody("lookup")
		if v == nil {
			delete(b, k)
		} else {
			b[k] = v
		}
		return b
	}
	cases := []struct {
		name string
		body map[string]any
		want string
	}{
		{"no name", with("name", nil), "name is required"},
		{"bad name", with("name", "no spaces"), "name is"},
		{"separator in name", with("name", "a__b"), "name is"},
		{"built-in name", with("name", "search_kb"), "built-in"},
		{"no url", with("url", nil), "url is required"},
		{"no schema", with("input_schema", nil), "input_schema is required"},
		{"schema not an object", with("input_schema", []any{1}), "input_schema"},
		{"schema of a string", with("input_schema", map[string]any{"type": "string"}), "must describe an object"},
		{"schema invalid", with("input_schema", map[string]any{"type": "object", "properties": 5}), "not a valid JSON Schema"},
		{"remote ref", with("input_schema", map[string]any{"type": "object", "$ref": "https://example.com/s.json"}), "not a valid JSON Schema"},
		{"metadata address", with("url", "https://169.254.169.254/latest"), "url:"},
		{"private address", with("url", "https://10.1.2.3/hook"), "url:"},
		{"decimal loopback", with("url", "https://2130706433/hook"), "url:"},
		{"plain http", with("url", "http://tools.example.com/hook"), "url:"},
		{"other port", with("url", "https://tools.example.com:8443/hook"), "url:"},
		{"credentials in url", with("url", "https://u:p@tools.example.com/hook"), "url:"},
		{"timeout zero", with("timeout_ms", 0), "timeout_ms"},
		{"timeout too long", with("timeout_ms", 30001), "timeout_ms"},
		{"headers on http", with("headers", map[string]string{"X-A": "b"}), "headers are for MCP"},
		{"long description", with("description", strings.Repeat("<", 200)), "description"},
		{"unknown type", with("type", "grpc"), "type must be"},
		{"unknown field", with("secret", "x"), "unknown field"},
	}
	for _, c := range cases {
		r := h.do("POST", "/v1/tools", a.key, c.body)
		if r.status != 400 || r.errCode() != "invalid_request" || !strings.Contains(r.raw, c.want) {
			t.Errorf("%s: %d %s, want 400 mentioning %q", c.name, r.status, r.raw, c.want)
		}
	}
	mcp := map[string]any{"type": "mcp", "name": "orders", "url": "https://mcp.example.com/mcp"}
	for name, change := range map[string]map[string]any{
		"mcp with schema":        {"input_schema": objectSchema},
		"mcp name with _":        {"name": "my_orders"},
		"mcp reserved header":    {"headers": map[string]string{"Host": "evil"}},
		"mcp header line break":  {"headers": map[string]string{"X-Key": "a\r\nb"}},
		"mcp header bad name":    {"headers": map[string]string{"bad name": "x"}},
		"mcp protocol header":    {"headers": map[string]string{"Mcp-Session-Id": "x"}},
		"mcp too many headers":   {"headers": manyHeaders(17)},
		"mcp credentials in url": {"url": "https://u:p@mcp.example.com/mcp"},
	} {
		b := map[string]any{}
		for k, v := range mcp {
			b[k] = v
		}
		for k, v := range change {
			b[k] = v
		}
		if r := h.do("POST", "/v1/tools", a.key, b); r.status != 400 {
			t.Errorf("%s: %d %s, want 400", name, r.status, r.raw)
		}
	}
	if got := h.must(200, "GET", "/v1/tools", a.key, nil); len(got.body["data"].([]any)) != 0 {
		t.Errorf("refused tools were stored: %s", got.raw)
	}
}

func manyHeaders(n int) map[string]string {
	out := map[string]string{}
	for i := range n {
		out[fmt.Sprintf("X-H%d", i)] = "v"
	}
	return out
}

// TestToolLifecycle: create (secret once), get, list by pages, update,
// rotate (both secrets sign for 24 hours, then only the new one), an
// idempotent create's replay without the secret, delete; and no secret or
// header value is ever in the table in plaintext.
func TestToolLifecycle(t *testing.T) {
	h := newHarness(t, 0)
	a := h.newTenant("acme", "starter")
	created := h.must(201, "POST", "/v1/tools", a.key, toolBody("lookup"))
	id, secret := created.str("tool_id"), created.str("signing_secret")
	if !strings.HasPrefix(secret, "whsec_") || num(t, created.body["timeout_ms"]) != 10000 {
		t.Fatalf("created %s", created.raw)
	}
	if r := h.do("POST", "/v1/tools", a.key, toolBody("lookup")); r.status != 409 {
		t.Errorf("same name again: %d %s, want 409", r.status, r.raw)
	}
	got := h.must(200, "GET", "/v1/tools/"+id, a.key, nil)
	if strings.Contains(got.raw, secret) || got.str("name") != "lookup" || !strings.Contains(got.raw, secret[:12]) {
		t.Errorf("GET %s: want the secret's prefix only", got.raw)
	}

	// Pages of 2 over 5 tools, each once.
	for i := range 4 {
		h.must(201, "POST", "/v1/tools", a.key, toolBody(fmt.Sprintf("t%d", i)))
	}
	seen := map[string]bool{}
	path := "/v1/tools?limit=2"
	for pages := 0; ; pages++ {
		r := h.must(200, "GET", path, a.key, nil)
		for _, d := range r.body["data"].([]any) {
			seen[d.(map[string]any)["tool_id"].(string)] = true
		}
		next, _ := r.body["next_cursor"].(string)
		if next == "" {
			if pages != 2 {
				t.Errorf("%d pages, want 3", pages+1)
			}
			break
		}
		path = "/v1/tools?limit=2&cursor=" + next
	}
	if len(seen) != 5 {
		t.Errorf("listed %d tools, want 5", len(seen))
	}

	// Update: the name and type stay.
	h.must(400, "PATCH", "/v1/tools/"+id, a.key, map[string]any{"name": "other"})
	h.must(400, "PATCH", "/v1/tools/"+id, a.key, map[string]any{"url": "https://192.168.0.1/"})
	up := h.must(200, "PATCH", "/v1/tools/"+id, a.key, map[string]any{"description": "Looks things up.", "timeout_ms": 2500})
	if up.str("description") != "Looks things up." || num(t, up.body["timeout_ms"]) != 2500 || num(t, up.body["version"]) != 2 {
		t.Errorf("PATCH %s", up.raw)
	}

	// Rotation: two secrets sign for 24 hours, then one.
	rot := h.must(200, "POST", "/v1/tools/"+id+"/rotate-secret", a.key, nil)
	newSecret := rot.str("signing_secret")
	if newSecret == secret || len(rot.body["signing_secrets"].([]any)) != 2 {
		t.Errorf("rotate: %s", rot.raw)
	}
	h.clock.Set(h.clock.Now().Add(24*time.Hour + time.Second))
	if got := h.must(200, "GET", "/v1/tools/"+id, a.key, nil); len(got.body["signing_secrets"].([]any)) != 1 ||
		!strings.Contains(got.raw, newSecret[:12]) {
		t.Errorf("after 24 hours: %s, want only the new secret", got.raw)
	}

	// An idempotent create replays without the secret.
	first := h.doWithHeader("POST", "/v1/tools", a.key, toolBody("idem"), "Idempotency-Key", "tool-1")
	replay := h.doWithHeader("POST", "/v1/tools", a.key, toolBody("idem"), "Idempotency-Key", "tool-1")
	if first.status != 201 || first.str("signing_secret") == "" || replay.status != 201 || replay.header.Get("Idempotent-Replayed") != "true" ||
		strings.Contains(replay.raw, first.str("signing_secret")) || replay.body["signing_secret_redacted"] != true || replay.str("tool_id") != first.str("tool_id") {
		t.Errorf("idempotent create: first %d %s, replay %d %s", first.status, first.raw, replay.status, replay.raw)
	}

	mcp := h.must(201, "POST", "/v1/tools", a.key, map[string]any{"type": "mcp", "name": "orders", "url": "https://mcp.example.com/mcp",
		"headers": map[string]string{"authorization": "Bearer mcp-token-value-12345"}})
	if strings.Contains(mcp.raw, "mcp-token-value") || !strings.Contains(mcp.raw, `"Authorization"`) || mcp.str("signing_secret") != "" {
		t.Errorf("MCP server view %s: want header names only and no signing secret", mcp.raw)
	}
	if r := h.do("POST", "/v1/tools/"+mcp.str("tool_id")+"/rotate-secret", a.key, nil); r.status != 400 {
		t.Errorf("rotating an MCP server's secret: %d", r.status)
	}

	for _, it := range h.scanTable() {
		for _, v := range it {
			raw := fmt.Sprint(attrText(v))
			for _, s := range []string{secret, newSecret, first.str("signing_secret"), "mcp-token-value-12345"} {
				if strings.Contains(raw, s) {
					t.Fatalf("a secret is stored in plaintext in %v", it["SK"])
				}
			}
		}
	}

	h.must(200, "DELETE", "/v1/tools/"+id, a.key, nil)
	h.must(404, "GET", "/v1/tools/"+id, a.key, nil)
	h.must(404, "DELETE", "/v1/tools/"+id, a.key, nil)
	h.must(404, "GET", "/v1/tools/tool_notarealtoolidxx", a.key, nil)
	h.must(404, "GET", "/v1/tools/garbage", a.key, nil)
}

// attrText renders an attribute value with its nested values and bytes as
// text, for looking for secrets in it.
func attrText(v types.AttributeValue) string {
	switch x := v.(type) {
	case *types.AttributeValueMemberS:
		return x.Value
	case *types.AttributeValueMemberB:
		return string(x.Value)
	case *types.AttributeValueMemberL:
		var b strings.Builder
		for _, e := range x.Value {
			b.WriteString(attrText(e))
		}
		return b.String()
	case *types.AttributeValueMemberM:
		var b strings.Builder
		for _, e := range x.Value {
			b.WriteString(attrText(e))
		}
		return b.String()
	case *types.AttributeValueMemberSS:
		return strings.Join(x.Value, "")
	}
	return fmt.Sprint(v)
}

// TestAgentsNameExistingTools: an agent's tools must be built-ins or the
// tenant's own, at create and at update; a deleted tool is then no longer
// offered, and the agent still runs.
func TestAgentsNameExistingTools(t *testing.T) {
	h := newHarness(t, 0)
	a := h.newTenant("acme", "starter")
	b := h.newTenant("globex", "starter")
	h.must(201, "POST", "/v1/tools", a.key, toolBody("lookup"))
	r := h.do("POST", "/v1/agents", b.key, map[string]any{"name": "x", "system_prompt": "y", "tools": []string{"lookup"}})
	if r.status != 400 || !strings.Contains(r.raw, `unknown tool \"lookup\"`) {
		t.Errorf("B naming A's tool: %d %s", r.status, r.raw)
	}
	ag := h.must(201, "POST", "/v1/agents", a.key, map[string]any{"name": "x", "system_prompt": "y", "tools": []string{"lookup", "search_kb"}})
	agent := ag.str("agent_id")
	if r := h.do("PATCH", "/v1/agents/"+agent, a.key, map[string]any{"tools": []string{"lookup", "nope"}}); r.status != 400 || !strings.Contains(r.raw, "tools[1]") {
		t.Errorf("PATCH with an unknown tool: %d %s", r.status, r.raw)
	}
	if r := h.do("POST", "/v1/agents", a.key, map[string]any{"name": "x", "system_prompt": "y", "tools": []string{"orders__lookup"}}); r.status != 400 {
		t.Errorf("an MCP tool of no server: %d %s", r.status, r.raw)
	}
	tools := h.must(200, "GET", "/v1/tools", a.key, nil).body["data"].([]any)
	h.must(200, "DELETE", "/v1/tools/"+tools[0].(map[string]any)["tool_id"].(string), a.key, nil)
	ex := h.must(200, "POST", "/v1/agents/"+agent+"/execute", a.key, map[string]any{"message": "use tool lookup anything"})
	if calls := ex.body["tool_calls"].([]any); len(calls) != 0 || ex.str("status") != "completed" {
		t.Errorf("an agent whose tool was deleted: %s, want no call (the tool is not offered)", ex.raw)
	}
}

// TestToolCallsAreCheckedAndBounded: arguments that do not match the tool's
// input_schema never reach it; a non-2xx answer and a refused address are
// tool errors, not failed executions; each call is in the answer and the
// usage record.
func TestToolCallsAreCheckedAndBounded(t *testing.T) {
	var calls atomic.Int64
	status := atomic.Int64{}
	status.Store(200)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.WriteHeader(int(status.Load()))
		_, _ = w.Write([]byte(`{"ok":true}`))
	}))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	allow, err := ssrf.ParseAllowHosts(host)
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, 0, platformtest.WithToolGuard(ssrf.New(allow)))
	a := h.newTenant("acme", "starter")
	strict := map[string]any{"type": "object", "properties": map[string]any{"order_id": map[string]any{"type": "string"}},
		"required": []string{"order_id"}, "additionalProperties": false}
	h.must(201, "POST", "/v1/tools", a.key, map[string]any{"name": "strict", "url": srv.URL + "/s", "input_schema": strict})
	h.must(201, "POST", "/v1/tools", a.key, map[string]any{"name": "loose", "url": srv.URL + "/l", "input_schema": objectSchema})
	agent := h.must(201, "POST", "/v1/agents", a.key, map[string]any{"name": "x", "system_prompt": "y", "tools": []string{"strict", "loose"}}).str("agent_id")

	run := func(msg string) response {
		t.Helper()
		return h.must(200, "POST", "/v1/agents/"+agent+"/execute", a.key, map[string]any{"message": msg})
	}
	// The offline model sends {"query": ...}: the strict tool refuses it.
	r := run("use tool strict A-1")
	if c := r.body["tool_calls"].([]any); len(c) != 1 || c[0].(map[string]any)["status"] != "error" ||
		!strings.Contains(r.str("message"), "invalid arguments") || calls.Load() != 0 {
		t.Errorf("invalid arguments: %s; the tool was called %d times", r.raw, calls.Load())
	}
	r = run("use tool loose A-1")
	if c := r.body["tool_calls"].([]any); len(c) != 1 || c[0].(map[string]any)["status"] != "ok" || calls.Load() != 1 {
		t.Errorf("valid call: %s; %d calls", r.raw, calls.Load())
	}
	status.Store(503)
	r = run("use tool loose A-2")
	if c := r.body["tool_calls"].([]any); len(c) != 1 || c[0].(map[string]any)["status"] != "error" ||
		!strings.Contains(r.str("message"), "HTTP 503") || r.str("status") != "completed" || calls.Load() != 2 {
		t.Errorf("a 503 from the tool: %s; %d calls (a sent call is not retried)", r.raw, calls.Load())
	}
	recs := h.must(200, "GET", "/v1/usage/records", a.key, nil).body["data"].([]any)
	if len(recs) != 3 {
		t.Fatalf("%d usage records, want 3", len(recs))
	}
	for _, rec := range recs {
		if num(t, rec.(map[string]any)["tool_calls"]) != 1 {
			t.Errorf("usage record %v: want tool_calls 1", rec)
		}
	}
}
