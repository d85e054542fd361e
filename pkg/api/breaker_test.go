package api_test

import (
	"fmt"
	"strconv"
	"testing"
	"time"
)

func (h *harness) breaker(t tenant) map[string]any {
	h.t.Helper()
	return h.must(200, "GET", "/v1/admin/tenants/"+t.id, adminToken, nil).body["circuit_breaker"].(map[string]any)
}

// TestBreakerOpensOnErrorRateAndHalfOpens: at least half of 20 or more
// executions within a minute fail, so the tenant's breaker opens (the error
// rate is evaluated when an execution fails); it refuses with 503 until the
// cool-down, then a successful probe closes it.
func TestBreakerOpensOnErrorRateAndHalfOpens(t *testing.T) {
	h := newHarness(t, 0)
	a := h.newTenant("acme", "professional")
	b := h.newTenant("bystander", "professional")
	agent := h.agentWith(a, nil, map[string]any{"max_tokens": 1000})
	agentB := h.agentWith(b, nil, map[string]any{"max_tokens": 1000})

	for i := range 21 {
		msg := fmt.Sprintf("ok %d", i)
		if i%2 == 0 {
			msg = "[[fail]]"
		}
		r := h.execute(a, agent, msg)
		if r.status != 200 && r.status != 502 {
			t.Fatalf("execution %d before the breaker opened: %d %s", i, r.status, r.raw)
		}
	}
	r := h.execute(a, agent, "after")
	if r.status != 503 || r.errCode() != "circuit_open" {
		t.Fatalf("after 11 of 21 failed: %d %s, want 503 circuit_open", r.status, r.raw)
	}
	if ra, _ := strconv.Atoi(r.header.Get("Retry-After")); ra < 1 || ra > 60 {
		t.Errorf("Retry-After = %q, want the cool-down left", r.header.Get("Retry-After"))
	}
	if br := h.breaker(a); br["state"] != "open" || br["reason"] == nil {
		t.Errorf("operator view: %v", br)
	}
	// Nobody else notices.
	h.must(200, "POST", "/v1/agents/"+agentB+"/execute", b.key, map[string]any{"message": "fine"})
	if br := h.breaker(b); br["state"] != "closed" {
		t.Errorf("bystander's breaker: %v", br)
	}

	h.clock.Set(h.clock.Now().Add(61 * time.Second))
	if br := h.breaker(a); br["state"] != "half_open" {
		t.Errorf("after the cool-down: %v", br)
	}
	// A failed probe opens it again.
	h.must(502, "POST", "/v1/agents/"+agent+"/execute", a.key, map[string]any{"message": "[[fail]]"})
	if r := h.execute(a, agent, "x"); r.status != 503 {
		t.Errorf("after a failed probe: %d, want 503", r.status)
	}
	h.clock.Set(h.clock.Now().Add(61 * time.Second))
	h.must(200, "POST", "/v1/agents/"+agent+"/execute", a.key, map[string]any{"message": "probe"})
	if br := h.breaker(a); br["state"] != "closed" {
		t.Errorf("after a good probe: %v", br)
	}
	// The old failures do not re-open it: the window restarted.
	h.must(502, "POST", "/v1/agents/"+agent+"/execute", a.key, map[string]any{"message": "[[fail]]"})
	h.must(200, "POST", "/v1/agents/"+agent+"/execute", a.key, map[string]any{"message": "still fine"})
	h.assertBalanced(a)
}

// TestBreakerOpensOnSpendVelocity: spending more than 20% of the monthly
// budget within 5 minutes opens the breaker.
func TestBreakerOpensOnSpendVelocity(t *testing.T) {
	h := newHarness(t, 0)
	a := h.newTenant("acme", "starter")
	// $0.05 a month: 20% is $0.01, about 20 small executions.
	h.setQuota(a, map[string]any{"max_spend_per_month": 0.05})
	agent := h.agentWith(a, nil, map[string]any{"max_tokens": 200})
	opened := false
	for i := range 60 {
		h.clock.Set(h.clock.Now().Add(6 * time.Second)) // past the per-process spend check interval
		r := h.execute(a, agent, fmt.Sprintf("spend %d", i))
		if r.status == 503 && r.errCode() == "circuit_open" {
			opened = true
			break
		}
		if r.status != 200 {
			t.Fatalf("execution %d: %d %s", i, r.status, r.raw)
		}
	}
	if !opened {
		t.Fatalf("spend velocity never opened the breaker; usage %v", h.usage(a))
	}
	u := h.usage(a)
	if spent := micros(t, u["spend_this_month"]); spent <= 10_000 || spent > 50_000 {
		t.Errorf("opened at %d µ$ spent, want just past $0.01", spent)
	}
}

// TestOperatorTripsAndResetsBreaker uses the operator's switch.
func TestOperatorTripsAndResetsBreaker(t *testing.T) {
	h := newHarness(t, 0)
	a := h.newTenant("acme", "starter")
	agent := h.agentWith(a, nil, map[string]any{"max_tokens": 1000})
	r := h.must(200, "PATCH", "/v1/admin/tenants/"+a.id, adminToken, map[string]any{"circuit_breaker": "open"})
	if br := r.body["circuit_breaker"].(map[string]any); br["state"] != "open" {
		t.Errorf("tripped: %v", br)
	}
	h.clock.Set(h.clock.Now().Add(24 * time.Hour))
	if r := h.execute(a, agent, "x"); r.status != 503 || r.errCode() != "circuit_open" {
		t.Errorf("an operator-opened breaker stays open: %d %s", r.status, r.raw)
	}
	h.must(200, "PATCH", "/v1/admin/tenants/"+a.id, adminToken, map[string]any{"circuit_breaker": "closed"})
	h.must(200, "POST", "/v1/agents/"+agent+"/execute", a.key, map[string]any{"message": "back"})
	if r := h.do("PATCH", "/v1/admin/tenants/"+a.id, adminToken, map[string]any{"circuit_breaker": "ajar"}); r.status != 400 {
		t.Errorf("bad breaker value: %d", r.status)
	}
}

// TestBreakerSettingsPerTenant overrides the tier's thresholds for one tenant.
func TestBreakerSettingsPerTenant(t *testing.T) {
	h := newHarness(t, 0)
	a := h.newTenant("acme", "starter")
	agent := h.agentWith(a, nil, map[string]any{"max_tokens": 1000})
	r := h.must(200, "PATCH", "/v1/admin/tenants/"+a.id, adminToken,
		map[string]any{"circuit_breaker_config": map[string]any{"min_executions": 4, "cooldown_seconds": 5}})
	cfg := r.body["circuit_breaker"].(map[string]any)["config"].(map[string]any)
	if num(t, cfg["min_executions"]) != 4 || num(t, cfg["cooldown_seconds"]) != 5 || num(t, cfg["error_rate_pct"]) != 50 {
		t.Errorf("config %v", cfg)
	}
	for range 4 {
		h.must(502, "POST", "/v1/agents/"+agent+"/execute", a.key, map[string]any{"message": "[[fail]]"})
	}
	r = h.execute(a, agent, "x")
	if r.status != 503 || r.header.Get("Retry-After") != "5" {
		t.Errorf("after 4 failures with min_executions 4: %d Retry-After %q", r.status, r.header.Get("Retry-After"))
	}
	for _, bad := range []map[string]any{{"error_rate_pct": 0}, {"error_rate_pct": 101}, {"spend_window_seconds": 15}, {"error_window_seconds": 3600}, {"surprise": 1}} {
		if r := h.do("PATCH", "/v1/admin/tenants/"+a.id, adminToken, map[string]any{"circuit_breaker_config": bad}); r.status != 400 {
			t.Errorf("config %v: %d", bad, r.status)
		}
	}
}
