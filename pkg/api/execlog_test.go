package api_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/bulkhead-dev/bulkhead/pkg/platform/platformtest"
	"github.com/bulkhead-dev/bulkhead/pkg/ssrf"
)

// logSteps reads an execution's log and returns it with its steps.
func (h *harness) logSteps(t tenant, execID string) (response, []map[string]any) {
	h.t.Helper()
	r := h.must(200, "GET", "/v1/executions/"+execID+"/log", t.key, nil)
	var steps []map[string]any
	for _, s := range r.body["steps"].([]any) {
		steps = append(steps, s.(map[string]any))
	}
	return r, steps
}

// logBytes is what the executions' logs count against the storage quota
// (each more than nothing).
func (h *harness) logBytes(t tenant, execIDs ...string) int64 {
	h.t.Helper()
	var n int64
	for _, id := range execIDs {
		r, _ := h.logSteps(t, id)
		b := num(h.t, r.body["stored_bytes"])
		if b <= 0 {
			h.t.Fatalf("log of %s: stored_bytes %d, want > 0", id, b)
		}
		n += b
	}
	return n
}

func kinds(steps []map[string]any) string {
	var k []string
	for _, s := range steps {
		k = append(k, s["kind"].(string))
	}
	return strings.Join(k, ",")
}

// TestExecutionLogOfModelAndToolCalls: an execution that calls an HTTP tool
// leaves a log with its model calls, the tool call and its end, in order;
// the model steps' tokens add up to the usage record's. Without log_content
// the log holds no message text, tool arguments or results, and never the
// tool's URL, its query or its signing secret; with it, the content is
// there. Another tenant's log, and a log that does not exist, are 404.
func TestExecutionLogOfModelAndToolCalls(t *testing.T) {
	var status atomic.Int64
	status.Store(200)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(int(status.Load()))
		_, _ = w.Write([]byte(`{"answer":"tool-answer-text"}`))
	}))
	t.Cleanup(srv.Close)
	allow, err := ssrf.ParseAllowHosts(strings.TrimPrefix(srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, 0, platformtest.WithToolGuard(ssrf.New(allow)))
	a, b := h.newTenant("acme", "starter"), h.newTenant("other", "starter")
	const querySecret = "qs-credential-4711"
	tool := h.must(201, "POST", "/v1/tools", a.key, map[string]any{"name": "lookup", "url": srv.URL + "/l?token=" + querySecret, "input_schema": objectSchema})
	agent := h.must(201, "POST", "/v1/agents", a.key, map[string]any{"name": "x", "system_prompt": "y", "tools": []string{"lookup"}})
	if agent.body["log_content"] != false {
		t.Fatalf("a new agent's log_content: %s, want false", agent.raw)
	}
	agentID := agent.str("agent_id")

	const msg = "use tool lookup order-secret-text"
	r := h.must(200, "POST", "/v1/agents/"+agentID+"/execute", a.key, map[string]any{"message": msg})
	execID := r.str("execution_id")
	l, steps := h.logSteps(a, execID)
	if got := kinds(steps); got != "model,tool,model,end" {
		t.Fatalf("steps %s, want model,tool,model,end: %s", got, l.raw)
	}
	if l.str("execution_id") != execID || l.str("agent_id") != agentID || l.str("status") != "completed" || l.body["truncated"] != false {
		t.Errorf("log header: %s", l.raw)
	}
	rec := h.must(200, "GET", "/v1/executions/"+execID, a.key, nil)
	var in, out int64
	for _, s := range steps {
		if s["kind"] == "model" {
			in += num(t, s["input_tokens"])
			out += num(t, s["output_tokens"])
			if s["model"] != rec.str("model") || s["status"] != "ok" || s["provider"] == nil {
				t.Errorf("model step %v: want model %s, status ok, a provider", s, rec.str("model"))
			}
		}
	}
	usage := rec.body["usage"].(map[string]any)
	if in != num(t, usage["input_tokens"]) || out != num(t, usage["output_tokens"]) || in == 0 {
		t.Errorf("log tokens %d in, %d out; usage record %v", in, out, usage)
	}
	ts := steps[1]
	if ts["tool"] != "lookup" || ts["status"] != "ok" || num(t, ts["http_status"]) != 200 || ts["call_id"] == nil || ts["error_class"] != nil {
		t.Errorf("tool step %v", ts)
	}
	if steps[0]["stop_reason"] != "tool_use" || steps[2]["stop_reason"] != "end_turn" || steps[3]["code"] != "completed" || steps[3]["status"] != "ok" {
		t.Errorf("stop reasons and end: %s", l.raw)
	}
	secret := tool.str("signing_secret")
	for _, leak := range []string{"order-secret-text", "tool-answer-text", querySecret, srv.URL, secret, a.key, `"input"`, `"output"`} {
		if strings.Contains(l.raw, leak) {
			t.Errorf("the log holds %q without log_content: %s", leak, l.raw)
		}
	}

	// A failing tool: its class and status, never its answer.
	status.Store(503)
	r = h.must(200, "POST", "/v1/agents/"+agentID+"/execute", a.key, map[string]any{"message": msg})
	l, steps = h.logSteps(a, r.str("execution_id"))
	if ts := steps[1]; ts["status"] != "error" || ts["error_class"] != "http_status" || num(t, ts["http_status"]) != 503 || strings.Contains(l.raw, "tool-answer-text") {
		t.Errorf("failed tool step: %s", l.raw)
	}
	status.Store(200)

	// With log_content, the content is the only thing added.
	if p := h.must(200, "PATCH", "/v1/agents/"+agentID, a.key, map[string]any{"log_content": true}); p.body["log_content"] != true {
		t.Fatalf("PATCH log_content: %s", p.raw)
	}
	h.must(400, "PATCH", "/v1/agents/"+agentID, a.key, map[string]any{"log_content": "yes"})
	r = h.must(200, "POST", "/v1/agents/"+agentID+"/execute", a.key, map[string]any{"message": msg})
	l, steps = h.logSteps(a, r.str("execution_id"))
	if got := kinds(steps); got != "model,tool,model,end" {
		t.Fatalf("steps with content %s: %s", got, l.raw)
	}
	if steps[0]["input"] != msg || steps[2]["output"] != r.str("message") || !strings.Contains(steps[1]["output"].(string), "tool-answer-text") ||
		!strings.Contains(steps[1]["input"].(string), "order-secret-text") {
		t.Errorf("log with content: %s", l.raw)
	}
	for _, leak := range []string{querySecret, secret, a.key} {
		if strings.Contains(l.raw, leak) {
			t.Errorf("the log with content holds %q: %s", leak, l.raw)
		}
	}

	// Another tenant's execution, and one that does not exist.
	if r := h.do("GET", "/v1/executions/"+execID+"/log", b.key, nil); r.status != 404 || r.errCode() != "not_found" {
		t.Errorf("another tenant's log: %d %s, want 404", r.status, r.raw)
	}
	h.must(404, "GET", "/v1/executions/exec_doesnotexist/log", a.key, nil)
	h.must(404, "GET", "/v1/executions/nonsense/log", a.key, nil)
}

// TestExecutionLogOfAGuard: a runaway loop stopped at its step limit ends
// its log with the guard that stopped it.
func TestExecutionLogOfAGuard(t *testing.T) {
	h := newHarness(t, 0)
	a := h.newTenant("acme", "starter")
	agent := h.agentWith(a, []string{"search_kb"}, map[string]any{"max_steps": 3})
	r := h.must(200, "POST", "/v1/agents/"+agent+"/execute", a.key, map[string]any{"message": "loop tool search_kb forever"})
	l, steps := h.logSteps(a, r.str("execution_id"))
	if got := kinds(steps); got != "model,tool,model,tool,model,guard" {
		t.Fatalf("steps %s: %s", got, l.raw)
	}
	g := steps[len(steps)-1]
	if g["code"] != "max_steps" || g["status"] != "refused" || l.str("status") != "max_steps" {
		t.Errorf("guard step %v of %s", g, l.raw)
	}
}

// TestExecutionLogOfAnIdempotentReplay: a replayed request runs nothing, so
// the execution has one log, with one end.
func TestExecutionLogOfAnIdempotentReplay(t *testing.T) {
	h := newHarness(t, 0)
	a := h.newTenant("acme", "starter")
	agent := h.newAgent(a)
	body := map[string]any{"message": "hello"}
	first := h.doWithHeader("POST", "/v1/agents/"+agent+"/execute", a.key, body, "Idempotency-Key", "log-1")
	replay := h.doWithHeader("POST", "/v1/agents/"+agent+"/execute", a.key, body, "Idempotency-Key", "log-1")
	if first.status != 200 || replay.header.Get("Idempotent-Replayed") != "true" || replay.str("execution_id") != first.str("execution_id") {
		t.Fatalf("first %d %s, replay %d %s", first.status, first.raw, replay.status, replay.raw)
	}
	l, steps := h.logSteps(a, first.str("execution_id"))
	if got := kinds(steps); got != "model,end" {
		t.Errorf("steps %s after a replay, want model,end: %s", got, l.raw)
	}
	if n, _, _ := h.sumRecords(a); n != 1 {
		t.Errorf("%d usage records, want 1", n)
	}
}
