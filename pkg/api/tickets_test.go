package api_test

import (
	"context"
	"fmt"
	"net/url"
	"sync"
	"testing"

	"github.com/bulkhead-dev/bulkhead/pkg/bulkhead"
)

// newTicket stores a ticket for the tenant as the create_ticket tool does,
// opened by tool call call of an execution, and returns its id.
func (h *harness) newTicket(t tenant, call string) string {
	h.t.Helper()
	now := h.clock.Now()
	tk := bulkhead.Ticket{ID: bulkhead.TicketID("exec_aaaaaaaaaaaaaaaa", call), Subject: "Refund " + call, Body: "The customer <wants> a refund.",
		Priority: bulkhead.PriorityNormal, Status: bulkhead.TicketOpen, ExecutionID: "exec_aaaaaaaaaaaaaaaa", AgentID: "agt_aaaaaaaaaaaaaaaa",
		CallID: call, Version: 1, CreatedAt: now, UpdatedAt: now}
	if _, err := h.env.API.Store().Tenant(t.id).CreateTicket(context.Background(), tk); err != nil {
		h.t.Fatalf("create ticket: %v", err)
	}
	return tk.ID
}

// pageThrough lists path (which has a query already) to its end with the
// limit and returns each page's ticket ids.
func (h *harness) pageThrough(path, key string, limit int) [][]string {
	h.t.Helper()
	var pages [][]string
	cursor := ""
	for {
		p := fmt.Sprintf("%s&limit=%d", path, limit)
		if cursor != "" {
			p += "&cursor=" + url.QueryEscape(cursor)
		}
		r := h.must(200, "GET", p, key, nil)
		data, _ := r.body["data"].([]any)
		var ids []string
		for _, d := range data {
			ids = append(ids, d.(map[string]any)["ticket_id"].(string))
		}
		pages = append(pages, ids)
		more, _ := r.body["has_more"].(bool)
		next, _ := r.body["next_cursor"].(string)
		if more != (next != "") {
			h.t.Fatalf("has_more %v with next_cursor %q", more, next)
		}
		if !more {
			return pages
		}
		if len(pages) > 50 {
			h.t.Fatal("list does not end")
		}
		cursor = next
	}
}

func TestTicketsListGetAndPatch(t *testing.T) {
	h := newHarness(t, 0)
	a := h.newTenant("acme", "starter")
	var ids []string
	for i := range 25 {
		ids = append(ids, h.newTicket(a, fmt.Sprintf("call_%d", i)))
	}
	pages := h.pageThrough("/v1/tickets?", a.key, 10)
	if len(pages) != 3 || len(pages[0]) != 10 || len(pages[1]) != 10 || len(pages[2]) != 5 {
		t.Fatalf("pages of %v, want 10, 10, 5", pages)
	}
	seen := map[string]bool{}
	for _, p := range pages {
		for _, id := range p {
			seen[id] = true
		}
	}
	for _, id := range ids {
		if !seen[id] {
			t.Fatalf("ticket %s not listed", id)
		}
	}

	got := h.must(200, "GET", "/v1/tickets/"+ids[0], a.key, nil)
	want := map[string]any{"ticket_id": ids[0], "subject": "Refund call_0", "body": "The customer <wants> a refund.",
		"priority": "normal", "status": "open", "execution_id": "exec_aaaaaaaaaaaaaaaa", "agent_id": "agt_aaaaaaaaaaaaaaaa",
		"created_at": "2026-11-28T10:30:00Z", "updated_at": "2026-11-28T10:30:00Z"}
	for k, v := range want {
		if got.body[k] != v {
			t.Errorf("%s = %v, want %v", k, got.body[k], v)
		}
	}
	if num(t, got.body["version"]) != 1 || len(got.body) != len(want)+1 {
		t.Errorf("ticket view %s", got.raw)
	}

	h.clock.Set(h.clock.Now().Add(60e9))
	p := h.must(200, "PATCH", "/v1/tickets/"+ids[0], a.key, map[string]any{"status": "closed", "priority": "urgent"})
	if p.str("status") != "closed" || p.str("priority") != "urgent" || num(t, p.body["version"]) != 2 || p.str("updated_at") != "2026-11-28T10:31:00Z" {
		t.Fatalf("patched: %s", p.raw)
	}
	if r := h.must(200, "GET", "/v1/tickets/"+ids[0], a.key, nil); !sameJSON(r.body, p.body) {
		t.Fatalf("patched %s, read back %s", p.raw, r.raw)
	}
	h.must(200, "PATCH", "/v1/tickets/"+ids[1], a.key, map[string]any{"status": "pending"})

	// ?status= lists one status, paged like any list.
	closed := h.pageThrough("/v1/tickets?status=closed", a.key, 10)
	if len(closed) != 1 || len(closed[0]) != 1 || closed[0][0] != ids[0] {
		t.Fatalf("closed = %v, want [[%s]]", closed, ids[0])
	}
	open := h.pageThrough("/v1/tickets?status=open", a.key, 10)
	if len(open) != 3 || len(open[2]) != 3 {
		t.Fatalf("open pages = %v, want 10, 10, 3", open)
	}
	for _, p := range open {
		for _, id := range p {
			if id == ids[0] || id == ids[1] {
				t.Fatalf("open lists %s, which moved", id)
			}
		}
	}
	// A cursor continues only its own list.
	first := h.must(200, "GET", "/v1/tickets?limit=1", a.key, nil)
	if r := h.do("GET", "/v1/tickets?status=open&cursor="+url.QueryEscape(first.str("next_cursor")), a.key, nil); r.status != 400 {
		t.Errorf("the full list's cursor on the open list: %d %s, want 400", r.status, r.raw)
	}
	for _, q := range []string{"status=archived", "status=", "status=OPEN", "limit=0", "limit=101", "cursor=!!"} {
		if r := h.do("GET", "/v1/tickets?"+q, a.key, nil); r.status != 400 || r.errCode() != "invalid_request" {
			t.Errorf("GET /v1/tickets?%s: %d %s, want 400", q, r.status, r.raw)
		}
	}
}

func TestTicketPatchRefusals(t *testing.T) {
	h := newHarness(t, 0)
	a := h.newTenant("acme", "starter")
	id := h.newTicket(a, "call_1")
	before := h.must(200, "GET", "/v1/tickets/"+id, a.key, nil)
	for _, body := range []string{`{"status":"done"}`, `{"status":"Open"}`, `{"priority":"critical"}`, `{"status":null}`,
		`{"status":"closed","subject":"x"}`, `{}`, `null`, `[]`, `"closed"`, `{"status":"closed"} {}`, `{"status":1}`, ``} {
		if r := h.do("PATCH", "/v1/tickets/"+id, a.key, body); r.status != 400 {
			t.Errorf("PATCH %s: %d %s, want 400", body, r.status, r.raw)
		}
	}
	if r := h.must(200, "GET", "/v1/tickets/"+id, a.key, nil); !sameJSON(r.body, before.body) {
		t.Fatalf("refused patches changed the ticket: %s", r.raw)
	}
	for _, bad := range []string{"tkt_x", "agt_aaaaaaaaaaaaaaaa", bulkhead.TicketID("exec_b", "call_b"), "..%2Ftkt_aaaaaaaaaaaaaaaa"} {
		for _, m := range []string{"GET", "PATCH"} {
			if r := h.do(m, "/v1/tickets/"+bad, a.key, `{"status":"closed"}`); r.status != 404 || r.errCode() != "not_found" {
				t.Errorf("%s /v1/tickets/%s: %d %s, want 404", m, bad, r.status, r.raw)
			}
		}
	}
}

func TestTicketIsolation(t *testing.T) {
	h := newHarness(t, 0)
	a := h.newTenant("acme", "starter")
	b := h.newTenant("globex", "starter")
	id := h.newTicket(a, "call_1")
	before := h.must(200, "GET", "/v1/tickets/"+id, a.key, nil)
	for _, m := range []string{"GET", "PATCH"} {
		if r := h.do(m, "/v1/tickets/"+id, b.key, `{"status":"closed"}`); r.status != 404 || r.errCode() != "not_found" {
			t.Errorf("%s A's ticket as B: %d %s, want 404", m, r.status, r.raw)
		}
	}
	for _, q := range []string{"", "?status=open"} {
		if r := h.must(200, "GET", "/v1/tickets"+q, b.key, nil); len(r.body["data"].([]any)) != 0 {
			t.Errorf("B's tickets%s: %s, want none", q, r.raw)
		}
	}
	if r := h.must(200, "GET", "/v1/tickets/"+id, a.key, nil); !sameJSON(r.body, before.body) {
		t.Fatalf("A's ticket after B's attempts: %s", r.raw)
	}
}

// TestConcurrentTicketPatchesKeepBoth: two PATCHes of different fields at
// once both succeed, and the ticket ends with both changes.
func TestConcurrentTicketPatchesKeepBoth(t *testing.T) {
	h := newHarness(t, 0)
	a := h.newTenant("acme", "enterprise")
	for i := range 5 {
		id := h.newTicket(a, fmt.Sprintf("call_%d", i))
		var wg sync.WaitGroup
		status := make([]int, 2)
		for j, body := range []map[string]any{{"status": "pending"}, {"priority": "urgent"}} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				status[j] = h.do("PATCH", "/v1/tickets/"+id, a.key, body).status
			}()
		}
		wg.Wait()
		if status[0] != 200 || status[1] != 200 {
			t.Fatalf("concurrent patches answered %v, want 200 each", status)
		}
		r := h.must(200, "GET", "/v1/tickets/"+id, a.key, nil)
		if r.str("status") != "pending" || r.str("priority") != "urgent" || num(t, r.body["version"]) != 3 {
			t.Fatalf("after concurrent patches: %s, want pending, urgent, version 3", r.raw)
		}
	}
}
