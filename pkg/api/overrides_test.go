package api_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/bulkhead-dev/bulkhead/pkg/bulkhead"
	"github.com/bulkhead-dev/bulkhead/pkg/dynamo"
)

// TestOperatorOverrideBounds: every quota override and every circuit
// breaker setting is refused past its maximum with 400 invalid_request
// naming the field and the maximum, and accepted at it; the USD amount is
// parsed exactly.
func TestOperatorOverrideBounds(t *testing.T) {
	h := newHarness(t, 0)
	a := h.newTenant("acme", "starter")
	raw := func(v string) json.RawMessage { return json.RawMessage(v) }
	for _, c := range []struct {
		field string // "quota.x" or "circuit_breaker_config.x"
		value json.RawMessage
		bad   string // "" when accepted, else what the message must say
	}{
		{"quota.max_requests_per_hour", raw("100000000"), ""},
		{"quota.max_requests_per_hour", raw("100000001"), "quota.max_requests_per_hour must be from 0 to 100000000"},
		{"quota.max_tokens_per_month", raw("100000000000"), ""},
		{"quota.max_tokens_per_month", raw("100000000001"), "quota.max_tokens_per_month must be from 0 to 100000000000"},
		{"quota.max_tokens_per_month", raw("-1"), "quota.max_tokens_per_month must be from 0"},
		{"quota.max_concurrent_agents", raw("100000"), ""},
		{"quota.max_concurrent_agents", raw("100001"), "quota.max_concurrent_agents must be from 0 to 100000"},
		{"quota.max_storage_mb", raw("10240000"), ""},
		{"quota.max_storage_mb", raw("9000000000000"), "quota.max_storage_mb must be from 0 to 10240000"},
		{"quota.max_storage_mb", raw("9e12"), "max_storage_mb"},
		{"quota.max_storage_mb", raw("99999999999999999999"), "max_storage_mb"},
		{"quota.max_spend_per_month", raw("10000000"), ""},
		{"quota.max_spend_per_month", raw("0.000001"), ""},
		{"quota.max_spend_per_month", raw("9999999.999999"), ""},
		{"quota.max_spend_per_month", raw("10000000.000001"), "quota.max_spend_per_month must be from 0 to 10000000 (USD)"},
		{"quota.max_spend_per_month", raw("500000000000"), "quota.max_spend_per_month must be from 0 to 10000000"},
		{"quota.max_spend_per_month", raw("0.0000001"), "at most 6 decimals"},
		{"quota.max_spend_per_month", raw("-1"), "quota.max_spend_per_month"},
		{"quota.max_spend_per_month", raw("1e3"), "quota.max_spend_per_month"},
		{"quota.max_spend_per_month", raw("1e400"), "quota.max_spend_per_month"},
		{"quota.max_spend_per_month", raw("123456789012345678901234567890"), "quota.max_spend_per_month"},
		{"circuit_breaker_config.min_executions", raw("100000"), ""},
		{"circuit_breaker_config.min_executions", raw("100001"), "circuit_breaker_config.min_executions must be from 1 to 100000"},
		{"circuit_breaker_config.error_rate_pct", raw("101"), "circuit_breaker_config.error_rate_pct must be from 1 to 100"},
		{"circuit_breaker_config.error_window_seconds", raw("910"), "circuit_breaker_config.error_window_seconds must be from 10 to 900"},
		{"circuit_breaker_config.spend_pct", raw("101"), "circuit_breaker_config.spend_pct must be from 1 to 100"},
		{"circuit_breaker_config.spend_window_seconds", raw("901"), "circuit_breaker_config.spend_window_seconds must be from 10 to 900"},
		{"circuit_breaker_config.cooldown_seconds", raw("86401"), "circuit_breaker_config.cooldown_seconds must be from 1 to 86400"},
		{"circuit_breaker_config.cooldown_seconds", raw("9223372036854775807"), "circuit_breaker_config.cooldown_seconds must be from 1 to 86400"},
	} {
		group, name, _ := strings.Cut(c.field, ".")
		body := `{"` + group + `": {"` + name + `": ` + string(c.value) + `}}`
		r := h.do("PATCH", "/v1/admin/tenants/"+a.id, adminToken, body)
		switch {
		case c.bad == "" && r.status != 200:
			t.Errorf("%s = %s: %d %s, want 200", c.field, c.value, r.status, r.raw)
		case c.bad != "" && (r.status != 400 || r.errCode() != "invalid_request" || !strings.Contains(r.raw, c.bad)):
			t.Errorf("%s = %s: %d %s, want 400 invalid_request saying %q", c.field, c.value, r.status, r.raw, c.bad)
		}
	}
}

// TestLargestOverridesStillAdmit sets every quota and breaker setting to its
// largest allowed value through the operator API: executions are admitted
// and the breaker stays closed. An override stored before the bounds
// existed (9e12 MB, $5e11) behaves as the ceiling instead of overflowing.
func TestLargestOverridesStillAdmit(t *testing.T) {
	h := newHarness(t, 0)
	a := h.newTenant("acme", "enterprise")
	agent := h.newAgent(a)
	c := bulkhead.QuotaCeiling
	h.must(200, "PATCH", "/v1/admin/tenants/"+a.id, adminToken, map[string]any{
		"quota": map[string]any{"max_requests_per_hour": c.MaxRequestsPerHour, "max_tokens_per_month": c.MaxTokensPerMonth,
			"max_spend_per_month": c.MaxSpendPerMonth.JSON(), "max_concurrent_agents": c.MaxConcurrentAgents, "max_storage_mb": c.MaxStorageMB},
		"circuit_breaker_config": map[string]any{"min_executions": 100_000, "error_rate_pct": 100, "error_window_seconds": 900,
			"spend_pct": 1, "spend_window_seconds": 900, "cooldown_seconds": 86_400},
	})
	for range 3 {
		h.must(200, "POST", "/v1/agents/"+agent+"/execute", a.key, map[string]any{"message": "hello"})
		h.clock.Set(h.clock.Now().Add(6e9)) // past the spend check's ration, so each execution evaluates it
	}
	if br := h.breaker(a); br["state"] != "closed" {
		t.Errorf("breaker at the largest settings: %v", br)
	}

	// Overrides stored before the bounds (or by a future bug) are clamped.
	huge, spend := int64(9e12), bulkhead.Dollars(500_000_000_000)
	if _, err := h.env.API.Store().UpdateTenant(context.Background(), a.id, dynamo.TenantPatch{
		Overrides: &bulkhead.QuotaOverrides{MaxStorageMB: &huge, MaxSpendPerMonth: &spend}}); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		h.must(200, "POST", "/v1/agents/"+agent+"/execute", a.key, map[string]any{"message": "hello"})
		h.clock.Set(h.clock.Now().Add(6e9))
	}
	if br := h.breaker(a); br["state"] != "closed" {
		t.Errorf("breaker with a stored $5e11 spend limit: %v", br)
	}
	q := h.must(200, "GET", "/v1/admin/tenants/"+a.id, adminToken, nil).body["quota"].(map[string]any)
	if num(t, q["max_storage_mb"]) != c.MaxStorageMB || micros(t, q["max_spend_per_month"]) != int64(c.MaxSpendPerMonth) {
		t.Errorf("effective quota %v, want the ceiling", q)
	}
}
