package api_test

import (
	"strings"
	"sync"
	"testing"
	"time"
)

// TestMaxStepsEndsARunawayToolLoop: an agent that calls a tool for ever is
// stopped at its step limit, with a status, and charged for what it used.
func TestMaxStepsEndsARunawayToolLoop(t *testing.T) {
	h := newHarness(t, 0)
	a := h.newTenant("acme", "starter")
	agent := h.agentWith(a, []string{"search_kb"}, map[string]any{"max_steps": 3})
	r := h.must(200, "POST", "/v1/agents/"+agent+"/execute", a.key, map[string]any{"message": "loop tool search_kb forever"})
	if r.str("status") != "max_steps" || num(t, r.body["steps"]) != 3 || num(t, r.body["tokens_used"]) == 0 {
		t.Errorf("runaway loop: %s", r.raw)
	}
	if got := h.model.calls.Load(); got != 3 {
		t.Errorf("model calls = %d, want 3", got)
	}
	conv := h.must(200, "GET", "/v1/conversations/"+r.str("conversation_id")+"?limit=100", a.key, nil)
	msgs := conv.body["messages"].([]any)
	// user, then (assistant tool call, tool result) x2, then the third call.
	if len(msgs) != 6 || msgs[2].(map[string]any)["role"] != "tool" {
		t.Errorf("transcript of the loop: %s", conv.raw)
	}
	h.assertBalanced(a)

	// A tool the model asks for once ends normally after its result.
	r = h.must(200, "POST", "/v1/agents/"+agent+"/execute", a.key, map[string]any{"message": "use tool search_kb refunds"})
	if r.str("status") != "completed" || num(t, r.body["steps"]) != 2 || !strings.Contains(r.str("message"), "search_kb") {
		t.Errorf("one tool call: %s", r.raw)
	}
}

// TestMaxTokensEndsAnExecution: the token budget ends a loop before the
// model is asked for more than is left.
func TestMaxTokensEndsAnExecution(t *testing.T) {
	h := newHarness(t, 0)
	a := h.newTenant("acme", "starter")
	agent := h.agentWith(a, []string{"search_kb"}, map[string]any{"max_steps": 10, "max_tokens": 300})
	r := h.must(200, "POST", "/v1/agents/"+agent+"/execute", a.key, map[string]any{"message": "loop tool search_kb forever"})
	if r.str("status") != "max_tokens" || num(t, r.body["tokens_used"]) > 300 || num(t, r.body["steps"]) >= 10 {
		t.Errorf("token budget: %s", r.raw)
	}
	u := h.assertBalanced(a)
	if got := num(t, u["tokens_this_month"]); got > 300 {
		t.Errorf("tokens_this_month = %d, more than the execution's budget", got)
	}
	// A message that cannot fit the budget at all is refused before anything is counted.
	r = h.execute(a, agent, strings.Repeat("x", 2000))
	if r.status != 413 || r.errCode() != "too_large" {
		t.Errorf("oversized for the budget: %d %s", r.status, r.raw)
	}
	if got := num(t, h.usage(a)["requests_this_hour"]); got != 1 {
		t.Errorf("requests_this_hour = %d: the refused one was counted", got)
	}
}

// TestAgentLimitsAreBoundedByTheTier checks validation of configured guards.
func TestAgentLimitsAreBoundedByTheTier(t *testing.T) {
	h := newHarness(t, 0)
	a := h.newTenant("acme", "starter")
	for _, l := range []map[string]any{{"max_steps": 11}, {"max_steps": 0}, {"max_tokens": 40_000}, {"max_wall_time_seconds": 61}, {"max_depth": 3}} {
		r := h.do("POST", "/v1/agents", a.key, map[string]any{"name": "a", "system_prompt": "p", "limits": l})
		if r.status != 400 {
			t.Errorf("limits %v: %d %s, want 400", l, r.status, r.raw)
		}
	}
	agent := h.agentWith(a, nil, map[string]any{"max_steps": 10, "max_tokens": 32_768, "max_wall_time_seconds": 60})
	r := h.must(200, "PATCH", "/v1/agents/"+agent, a.key, map[string]any{"limits": map[string]any{"max_steps": 2}})
	if l := r.body["limits"].(map[string]any); num(t, l["max_steps"]) != 2 || l["max_tokens"] != nil {
		t.Errorf("patched limits: %s", r.raw)
	}
}

// TestDepthLimitStopsRecursiveAgents: an agent that invokes itself goes only
// as deep as the tier allows; every level is admitted and metered.
func TestDepthLimitStopsRecursiveAgents(t *testing.T) {
	h := newHarness(t, 0)
	a := h.newTenant("acme", "starter") // depth 2: an agent may invoke one more
	agent := h.agentWith(a, []string{"invoke_agent"}, nil)
	call := "use tool invoke_agent " + agent + " "
	r := h.must(200, "POST", "/v1/agents/"+agent+"/execute", a.key, map[string]any{"message": strings.Repeat(call, 5) + "hello"})
	if r.str("status") != "completed" {
		t.Fatalf("recursive agent: %s", r.raw)
	}
	u := h.assertBalanced(a)
	if got := num(t, u["executions_this_month"]); got != 2 {
		t.Errorf("executions = %d, want 2 (the call and one nested level)", got)
	}
	if got := num(t, u["requests_this_hour"]); got != 2 {
		t.Errorf("requests_this_hour = %d, want 2: nested executions are admitted like any other", got)
	}
	if !strings.Contains(r.str("message"), "depth_limit_exceeded") {
		t.Errorf("the outer reply should carry the nested refusal: %s", r.str("message"))
	}
	// The depth travels over HTTP too.
	resp := h.doWithHeader("POST", "/v1/agents/"+agent+"/execute", a.key, map[string]any{"message": "hi"}, "X-Bulkhead-Depth", "2")
	if resp.status != 403 || resp.errCode() != "depth_limit_exceeded" {
		t.Errorf("depth header at the limit: %d %s", resp.status, resp.raw)
	}
	if resp := h.doWithHeader("POST", "/v1/agents/"+agent+"/execute", a.key, map[string]any{"message": "hi"}, "X-Bulkhead-Depth", "-1"); resp.status != 400 {
		t.Errorf("negative depth: %d", resp.status)
	}
}

// TestKillSwitchStopsRunningExecutions: disabling the agent or suspending
// the tenant stops a running execution at its next step.
func TestKillSwitchStopsRunningExecutions(t *testing.T) {
	for _, kill := range []string{"agent", "operator-agent", "tenant"} {
		t.Run(kill, func(t *testing.T) {
			h := newHarness(t, 50*time.Millisecond)
			a := h.newTenant("acme", "starter")
			agent := h.agentWith(a, []string{"search_kb"}, map[string]any{"max_steps": 10})
			var wg sync.WaitGroup
			var r response
			wg.Add(1)
			go func() {
				defer wg.Done()
				r = h.do("POST", "/v1/agents/"+agent+"/execute", a.key, map[string]any{"message": "loop tool search_kb"})
			}()
			deadline := time.Now().Add(5 * time.Second)
			for h.model.calls.Load() < 2 && time.Now().Before(deadline) {
				time.Sleep(5 * time.Millisecond)
			}
			switch kill {
			case "agent":
				h.must(200, "PATCH", "/v1/agents/"+agent, a.key, map[string]any{"status": "disabled"})
			case "operator-agent":
				h.must(200, "PATCH", "/v1/admin/tenants/"+a.id+"/agents/"+agent, adminToken, map[string]any{"status": "disabled"})
			default:
				h.must(200, "PATCH", "/v1/admin/tenants/"+a.id, adminToken, map[string]any{"status": "suspended"})
			}
			wg.Wait()
			if r.status != 200 || r.str("status") != "stopped" || num(t, r.body["steps"]) >= 10 {
				t.Errorf("after the kill switch: %d %s", r.status, r.raw)
			}
			if kill == "tenant" {
				h.must(200, "PATCH", "/v1/admin/tenants/"+a.id, adminToken, map[string]any{"status": "active"})
			}
			h.assertBalanced(a)
			if kill != "tenant" {
				if r := h.execute(a, agent, "again"); r.status != 409 {
					t.Errorf("disabled agent: %d %s", r.status, r.raw)
				}
			}
		})
	}
}
