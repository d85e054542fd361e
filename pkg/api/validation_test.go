package api_test

import (
	"strings"
	"testing"
)

// TestBadInputIsRefusedCleanly sends malformed requests: each gets a clear
// 4xx in the error shape and writes nothing.
func TestBadInputIsRefusedCleanly(t *testing.T) {
	h := newHarness(t, 0)
	a := h.newTenant("acme", "starter")
	agent := h.newAgent(a)
	exec := "/v1/agents/" + agent + "/execute"
	long := strings.Repeat("x", 129)
	cases := []struct {
		name, method, path string
		key                *string
		body               any
		status             int
		code               string
	}{
		{"no key", "GET", "/v1/agents", new(string), nil, 401, "unauthenticated"},
		{"malformed key", "GET", "/v1/agents", ptr("bk_live_nope"), nil, 401, "unauthenticated"},
		{"malformed JSON", "POST", "/v1/agents", nil, `{"name":`, 400, "invalid_request"},
		{"not an object", "POST", "/v1/agents", nil, `[1,2]`, 400, "invalid_request"},
		{"trailing data", "POST", "/v1/agents", nil, `{"name":"a","system_prompt":"b"} {}`, 400, "invalid_request"},
		{"empty body", "POST", "/v1/agents", nil, ``, 400, "invalid_request"},
		{"unknown field", "POST", "/v1/agents", nil, map[string]any{"name": "a", "system_prompt": "b", "colour": "red"}, 400, "invalid_request"},
		{"missing name", "POST", "/v1/agents", nil, map[string]any{"system_prompt": "b"}, 400, "invalid_request"},
		{"missing prompt", "POST", "/v1/agents", nil, map[string]any{"name": "a"}, 400, "invalid_request"},
		{"blank name", "POST", "/v1/agents", nil, map[string]any{"name": "  ", "system_prompt": "b"}, 400, "invalid_request"},
		{"long name", "POST", "/v1/agents", nil, map[string]any{"name": long, "system_prompt": "b"}, 400, "invalid_request"},
		{"wrong type", "POST", "/v1/agents", nil, map[string]any{"name": 7, "system_prompt": "b"}, 400, "invalid_request"},
		{"bad tool", "POST", "/v1/agents", nil, map[string]any{"name": "a", "system_prompt": "b", "tools": []any{42}}, 400, "invalid_request"},
		{"bad tool name", "POST", "/v1/agents", nil, map[string]any{"name": "a", "system_prompt": "b", "tools": []any{"no spaces"}}, 400, "invalid_request"},
		{"duplicate tool", "POST", "/v1/agents", nil, map[string]any{"name": "a", "system_prompt": "b", "tools": []any{"x", map[string]any{"name": "x"}}}, 400, "invalid_request"},
		{"unknown model", "POST", "/v1/agents", nil, map[string]any{"name": "a", "system_prompt": "b", "model": "gpt-9"}, 400, "invalid_request"},
		{"status on create", "POST", "/v1/agents", nil, map[string]any{"name": "a", "system_prompt": "b", "status": "active"}, 400, "invalid_request"},
		{"bad status", "PATCH", "/v1/agents/" + agent, nil, map[string]any{"status": "paused"}, 400, "invalid_request"},
		{"missing message", "POST", exec, nil, map[string]any{}, 400, "invalid_request"},
		{"empty message", "POST", exec, nil, map[string]any{"message": ""}, 400, "invalid_request"},
		{"blank message", "POST", exec, nil, map[string]any{"message": "   \n"}, 400, "invalid_request"},
		{"message too large", "POST", exec, nil, map[string]any{"message": strings.Repeat("m", 65537)}, 413, "too_large"},
		{"unknown conversation", "POST", exec, nil, map[string]any{"message": "hi", "conversation_id": "conv_aaaaaaaaaaaaaaaa"}, 404, "not_found"},
		{"malformed conversation", "POST", exec, nil, map[string]any{"message": "hi", "conversation_id": "../../x"}, 404, "not_found"},
		{"unknown agent", "POST", "/v1/agents/agt_aaaaaaaaaaaaaaaa/execute", nil, map[string]any{"message": "hi"}, 404, "not_found"},
		{"limit zero", "GET", "/v1/agents?limit=0", nil, nil, 400, "invalid_request"},
		{"limit too big", "GET", "/v1/agents?limit=101", nil, nil, 400, "invalid_request"},
		{"limit not a number", "GET", "/v1/agents?limit=ten", nil, nil, 400, "invalid_request"},
		{"bad cursor", "GET", "/v1/agents?cursor=!!", nil, nil, 400, "invalid_request"},
		{"cursor of another list", "GET", "/v1/agents?cursor=Q09OViN4", nil, nil, 400, "invalid_request"},
		{"bad message cursor", "GET", "/v1/conversations/conv_aaaaaaaaaaaaaaaa?cursor=zz", nil, nil, 400, "invalid_request"},
		{"bad agent filter", "GET", "/v1/conversations?agent_id=x", nil, nil, 400, "invalid_request"},
		{"unknown route", "GET", "/v1/nothing", nil, nil, 404, "not_found"},
		{"admin route with tenant key", "GET", "/v1/admin/tenants", nil, nil, 403, "forbidden"},
		{"unknown tier", "POST", "/v1/admin/tenants", ptr(adminToken), map[string]any{"name": "x", "tier": "platinum"}, 400, "invalid_request"},
		{"tenant without name", "POST", "/v1/admin/tenants", ptr(adminToken), map[string]any{"tier": "starter"}, 400, "invalid_request"},
		{"negative quota", "PATCH", "/v1/admin/tenants/" + a.id, ptr(adminToken), map[string]any{"quota": map[string]any{"max_tokens_per_month": -1}}, 400, "invalid_request"},
		{"spend with 7 decimals", "PATCH", "/v1/admin/tenants/" + a.id, ptr(adminToken), map[string]any{"quota": map[string]any{"max_spend_per_month": 0.0000001}}, 400, "invalid_request"},
		{"bad tenant status", "PATCH", "/v1/admin/tenants/" + a.id, ptr(adminToken), map[string]any{"status": "gone"}, 400, "invalid_request"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			key := a.key
			if c.key != nil {
				key = *c.key
			}
			r := h.do(c.method, c.path, key, c.body)
			if r.status != c.status || r.errCode() != c.code {
				t.Errorf("got %d %q, want %d %q (body %s)", r.status, r.errCode(), c.status, c.code, r.raw)
			}
			if msg, _ := r.body["error"].(map[string]any)["message"].(string); msg == "" {
				t.Errorf("error has no message: %s", r.raw)
			}
		})
	}
	// Nothing was written by any of them.
	list := h.must(200, "GET", "/v1/agents", a.key, nil)
	if got := len(list.body["data"].([]any)); got != 1 {
		t.Errorf("agents after bad requests = %d, want 1", got)
	}
	u := h.usage(a)
	if num(t, u["requests_this_hour"]) != 0 || num(t, u["tokens_this_month"]) != 0 {
		t.Errorf("usage moved after refused requests: %v", u)
	}
	if got := h.model.calls.Load(); got != 0 {
		t.Errorf("model called %d times by refused requests", got)
	}
	// The limits themselves are accepted.
	h.must(200, "POST", exec, a.key, map[string]any{"message": strings.Repeat("m", 65536)})
	id := h.must(201, "POST", "/v1/agents", a.key, map[string]any{"name": strings.Repeat("n", 128), "system_prompt": "b"}).str("agent_id")
	// An agent without tools reads back with an empty list.
	if got := h.must(200, "GET", "/v1/agents/"+id, a.key, nil); len(got.body["tools"].([]any)) != 0 {
		t.Errorf("tools = %v, want []", got.body["tools"])
	}
}

func ptr[T any](v T) *T { return &v }

// TestKeysRevocationAndSuspension checks that the authorizer refuses a
// revoked key and a suspended tenant on the very next request.
func TestKeysRevocationAndSuspension(t *testing.T) {
	h := newHarness(t, 0)
	a := h.newTenant("acme", "starter")
	k := h.must(201, "POST", "/v1/keys", a.key, map[string]any{"name": "ci"})
	secret, kid := k.str("api_key"), k.str("key_id")
	if !strings.HasPrefix(secret, "bk_live_") || !strings.HasPrefix(secret, k.str("prefix")) {
		t.Fatalf("key %q with prefix %q", secret, k.str("prefix"))
	}
	h.must(200, "GET", "/v1/agents", secret, nil)
	keys := h.must(200, "GET", "/v1/keys", secret, nil)
	if strings.Contains(keys.raw, secret) || strings.Contains(keys.raw, a.key) {
		t.Fatal("key list shows a secret")
	}
	if got := len(keys.body["data"].([]any)); got != 2 {
		t.Errorf("keys = %d, want 2", got)
	}
	h.must(200, "DELETE", "/v1/keys/"+kid, a.key, nil)
	if r := h.do("GET", "/v1/agents", secret, nil); r.status != 403 || !strings.Contains(r.raw, "revoked") {
		t.Errorf("revoked key: %d %s, want 403 naming the revocation", r.status, r.raw)
	}
	h.must(200, "GET", "/v1/agents", a.key, nil)

	h.must(200, "PATCH", "/v1/admin/tenants/"+a.id, adminToken, map[string]any{"status": "suspended"})
	if r := h.do("GET", "/v1/agents", a.key, nil); r.status != 403 || !strings.Contains(r.raw, "suspended") {
		t.Errorf("suspended tenant: %d %s, want 403 naming the suspension", r.status, r.raw)
	}
	h.must(200, "PATCH", "/v1/admin/tenants/"+a.id, adminToken, map[string]any{"status": "active"})
	h.must(200, "GET", "/v1/agents", a.key, nil)
}

// TestOperatorQuotaOverrides checks overrides replace single values.
func TestOperatorQuotaOverrides(t *testing.T) {
	h := newHarness(t, 0)
	a := h.newTenant("acme", "professional")
	r := h.must(200, "PATCH", "/v1/admin/tenants/"+a.id, adminToken, map[string]any{"quota": map[string]any{"max_tokens_per_month": 12345, "max_spend_per_month": 12.5}})
	q := r.body["quota"].(map[string]any)
	if num(t, q["max_tokens_per_month"]) != 12345 || micros(t, q["max_spend_per_month"]) != 12_500_000 || num(t, q["max_requests_per_hour"]) != 10000 {
		t.Errorf("effective quota %v", q)
	}
	r = h.must(200, "PATCH", "/v1/admin/tenants/"+a.id, adminToken, map[string]any{"tier": "enterprise"})
	q = r.body["quota"].(map[string]any)
	if num(t, q["max_tokens_per_month"]) != 12345 || num(t, q["max_requests_per_hour"]) != 100000 {
		t.Errorf("after tier change the override must stay and the rest follow the tier: %v", q)
	}
	uq := h.must(200, "GET", "/v1/usage", a.key, nil).body["quota"].(map[string]any)
	if num(t, uq["max_tokens_per_month"]) != 12345 {
		t.Errorf("tenant sees quota %v", uq)
	}
	got := h.must(200, "GET", "/v1/admin/tenants/"+a.id, adminToken, nil)
	if got.str("tier") != "enterprise" {
		t.Errorf("tier = %q", got.str("tier"))
	}
	h.must(404, "GET", "/v1/admin/tenants/tn_aaaaaaaaaaaaaaaa", adminToken, nil)
}

// TestPagination walks lists page by page.
func TestPagination(t *testing.T) {
	h := newHarness(t, 0)
	a := h.newTenant("acme", "starter")
	for range 25 {
		h.newAgent(a)
	}
	seen := map[string]bool{}
	path := "/v1/agents?limit=10"
	pages := 0
	for {
		r := h.must(200, "GET", path, a.key, nil)
		pages++
		for _, it := range r.body["data"].([]any) {
			id := it.(map[string]any)["agent_id"].(string)
			if seen[id] {
				t.Fatalf("agent %s on two pages", id)
			}
			seen[id] = true
		}
		more := r.body["has_more"].(bool)
		if !more {
			if r.body["next_cursor"] != nil {
				t.Errorf("last page has a cursor")
			}
			break
		}
		path = "/v1/agents?limit=10&cursor=" + r.str("next_cursor")
	}
	if len(seen) != 25 || pages != 3 {
		t.Errorf("saw %d agents on %d pages, want 25 on 3", len(seen), pages)
	}
	// Exactly a page's worth: no empty trailing page.
	r := h.must(200, "GET", "/v1/agents?limit=25", a.key, nil)
	if r.body["has_more"].(bool) {
		t.Errorf("25 agents with limit 25: has_more = true")
	}
}
