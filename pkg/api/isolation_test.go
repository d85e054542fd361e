package api_test

import (
	"strings"
	"testing"
	"time"

	"github.com/bulkhead-dev/bulkhead/pkg/api"
)

// TestIsolationWalksEveryRoute calls every tenant route that names a
// resource with tenant B's key and tenant A's ids: each must be 404, and
// every list B sees must be free of A's ids.
func TestIsolationWalksEveryRoute(t *testing.T) {
	h := newHarness(t, 0)
	a := h.newTenant("acme", "starter")
	h.clock.Set(time.Date(2026, 12, 1, 0, 0, 1, 0, time.UTC))
	b := h.newTenant("globex", "starter")
	h.clock.Set(time.Date(2026, 11, 28, 10, 30, 0, 0, time.UTC))
	agentA := h.newAgent(a)
	execA := h.must(200, "POST", "/v1/agents/"+agentA+"/execute", a.key, map[string]any{"message": "secret plans"})
	convA := execA.str("conversation_id")
	keyA := h.must(201, "POST", "/v1/keys", a.key, map[string]any{"name": "ci"}).str("key_id")
	agentB := h.newAgent(b)
	ticketA := h.newTicket(a, "call_1")
	toolA := h.must(201, "POST", "/v1/tools", a.key, map[string]any{"name": "crm_lookup", "url": "https://crm.example.com/hook",
		"input_schema": map[string]any{"type": "object"}}).str("tool_id")
	const docA = "acme-launch-plans.md"
	if r := h.putDoc(a, docA, "secret plans", "text/markdown"); r.status != 200 {
		t.Fatalf("PUT A's document: %d %s", r.status, r.raw)
	}
	// A has a closed invoice for November; B did not exist then.
	h.clock.Set(time.Date(2026, 12, 1, 0, 11, 0, 0, time.UTC))
	h.must(200, "POST", "/v1/admin/billing/close", adminToken, map[string]any{"month": "2026-11"})

	ids := map[string]string{"agent_id": agentA, "conversation_id": convA, "key_id": keyA, "month": "2026-11",
		"execution_id": execA.str("execution_id"), "ticket_id": ticketA, "doc_id": docA, "tool_id": toolA}
	bodies := map[string]any{
		"PATCH /v1/agents/{agent_id}":        map[string]any{"name": "stolen"},
		"POST /v1/agents/{agent_id}/execute": map[string]any{"message": "hi"},
		"PATCH /v1/tickets/{ticket_id}":      map[string]any{"status": "closed"},
		"PATCH /v1/tools/{tool_id}":          map[string]any{"description": "mine now"},
	}
	walked := 0
	for _, r := range api.Routes() {
		if r.Auth != api.AuthTenant || !strings.Contains(r.Resource, "{") {
			continue
		}
		// A PUT names the caller's own document: B's PUT would create B's,
		// which TestKBIsolation checks leaves A's alone.
		if r.Method == "PUT" && r.Resource == "/v1/kb/documents/{doc_id}" {
			continue
		}
		path := r.Resource
		for name, id := range ids {
			path = strings.ReplaceAll(path, "{"+name+"}", id)
		}
		if strings.Contains(path, "{") {
			t.Fatalf("route %s has a parameter this test does not know", r.Resource)
		}
		resp := h.do(r.Method, path, b.key, bodies[r.Method+" "+r.Resource])
		if resp.status != 404 || resp.errCode() != "not_found" {
			t.Errorf("%s %s with another tenant's key: %d %s, want 404 not_found", r.Method, path, resp.status, resp.raw)
		}
		walked++
	}
	if walked < 7 {
		t.Fatalf("walked %d routes, expected every tenant route with an id", walked)
	}
	// A's conversation cannot be continued through B's own agent either.
	r := h.do("POST", "/v1/agents/"+agentB+"/execute", b.key, map[string]any{"message": "hi", "conversation_id": convA})
	if r.status != 404 {
		t.Errorf("B continuing A's conversation: %d %s, want 404", r.status, r.raw)
	}
	for _, path := range []string{"/v1/agents", "/v1/conversations", "/v1/keys", "/v1/usage", "/v1/billing/current",
		"/v1/billing/invoices", "/v1/usage/records?from=2026-11-01", "/v1/usage/daily?month=2026-11", "/v1/kb/documents",
		"/v1/tools", "/v1/tickets"} {
		resp := h.must(200, "GET", path, b.key, nil)
		for _, id := range []string{a.id, agentA, convA, keyA, docA, toolA, ticketA} {
			if strings.Contains(resp.raw, id) {
				t.Errorf("GET %s as B shows A's %s", path, id)
			}
		}
	}
	// A's things are untouched.
	if got := h.must(200, "GET", "/v1/agents/"+agentA, a.key, nil).str("name"); got != "a" {
		t.Errorf("A's agent name = %q after B's attempts, want %q", got, "a")
	}
	h.must(200, "GET", "/v1/conversations/"+convA, a.key, nil)
}
