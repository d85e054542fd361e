package dynamo_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/bulkhead-dev/bulkhead/pkg/bulkhead"
	"github.com/bulkhead-dev/bulkhead/pkg/dynamo"
)

func ticket(exec, call string) bulkhead.Ticket {
	return bulkhead.Ticket{ID: bulkhead.TicketID(exec, call), Subject: "Printer on fire", Body: "It is on fire.",
		Priority: bulkhead.PriorityNormal, Status: bulkhead.TicketOpen, ExecutionID: exec, AgentID: "agt_a", CallID: call,
		Version: 1, CreatedAt: t0, UpdatedAt: t0}
}

func mustCreateTicket(t *testing.T, ts *dynamo.TenantStore, tk bulkhead.Ticket) bulkhead.Ticket {
	t.Helper()
	got, err := ts.CreateTicket(context.Background(), tk)
	if err != nil {
		t.Fatalf("create ticket %s: %v", tk.ID, err)
	}
	return got
}

// listAll pages through a list and returns every ticket id, in order,
// checking each page's size.
func listAll(t *testing.T, ts *dynamo.TenantStore, status bulkhead.TicketStatus, limit int) []string {
	t.Helper()
	var ids []string
	cursor := ""
	for pages := 0; ; pages++ {
		if pages > 100 {
			t.Fatal("list does not end")
		}
		page, err := ts.ListTickets(context.Background(), status, cursor, limit)
		if err != nil {
			t.Fatalf("list %q: %v", status, err)
		}
		if len(page.Items) > limit {
			t.Fatalf("page of %d tickets, limit %d", len(page.Items), limit)
		}
		for _, tk := range page.Items {
			if status != "" && tk.Status != status {
				t.Fatalf("list %q holds %s with status %q", status, tk.ID, tk.Status)
			}
			ids = append(ids, tk.ID)
		}
		if page.NextCursor == "" {
			return ids
		}
		cursor = page.NextCursor
	}
}

func TestTicketCreateIsIdempotentPerCall(t *testing.T) {
	ctx := context.Background()
	ts := mustStore(t).Tenant("tn_a")
	first := mustCreateTicket(t, ts, ticket("exec_1", "call_1"))
	// The same call, repeated with other arguments, finds the first ticket.
	again := ticket("exec_1", "call_1")
	again.Subject = "something else"
	got := mustCreateTicket(t, ts, again)
	if got != first {
		t.Fatalf("repeated call = %+v, want the first ticket %+v", got, first)
	}
	mustCreateTicket(t, ts, ticket("exec_1", "call_2"))
	if ids := listAll(t, ts, "", 10); len(ids) != 2 {
		t.Fatalf("tickets = %v, want 2", ids)
	}
	// Another origin under a taken id is refused, not merged.
	forged := ticket("exec_2", "call_1")
	forged.ID = first.ID
	if _, err := ts.CreateTicket(ctx, forged); codeOf(err) != bulkhead.Conflict {
		t.Fatalf("another origin under a taken id: %v, want conflict", err)
	}
	stored, err := ts.GetTicket(ctx, first.ID)
	if err != nil || stored != first {
		t.Fatalf("get = %+v, %v; want %+v", stored, err, first)
	}
	if _, err := ts.GetTicket(ctx, bulkhead.TicketID("exec_9", "call_9")); codeOf(err) != bulkhead.NotFound {
		t.Fatalf("unknown ticket: %v, want not found", err)
	}
	if _, err := mustStore(t).Tenant("tn_b").GetTicket(ctx, first.ID); codeOf(err) != bulkhead.NotFound {
		t.Fatalf("another store's tenant: %v, want not found", err)
	}
}

func TestTicketIsolation(t *testing.T) {
	ctx := context.Background()
	s := mustStore(t)
	a, b := s.Tenant("tn_a"), s.Tenant("tn_b")
	tk := mustCreateTicket(t, a, ticket("exec_1", "call_1"))
	if _, err := b.GetTicket(ctx, tk.ID); codeOf(err) != bulkhead.NotFound {
		t.Fatalf("B reading A's ticket: %v, want not found", err)
	}
	next := tk
	next.Status, next.Version = bulkhead.TicketClosed, tk.Version+1
	if err := b.UpdateTicket(ctx, tk, next); err == nil {
		t.Fatal("B updated A's ticket")
	}
	for _, st := range []bulkhead.TicketStatus{"", bulkhead.TicketOpen} {
		if ids := listAll(t, b, st, 10); len(ids) != 0 {
			t.Fatalf("B's %q list = %v, want empty", st, ids)
		}
	}
	if got, err := a.GetTicket(ctx, tk.ID); err != nil || got != tk {
		t.Fatalf("A's ticket after B's attempts = %+v, %v", got, err)
	}
}

func TestTicketPagesAndStatusIndex(t *testing.T) {
	ctx := context.Background()
	ts := mustStore(t).Tenant("tn_a")
	var all []bulkhead.Ticket
	for i := range 25 {
		all = append(all, mustCreateTicket(t, ts, ticket("exec_1", fmt.Sprintf("call_%d", i))))
	}
	ids := listAll(t, ts, "", 10)
	if len(ids) != 25 {
		t.Fatalf("listed %d tickets, want 25", len(ids))
	}
	seen := map[string]bool{}
	for i, id := range ids {
		if seen[id] || i > 0 && ids[i-1] >= id {
			t.Fatalf("list is not in id order without repeats: %v", ids)
		}
		seen[id] = true
	}
	// Close 7, move 3 to pending.
	moved := map[string]bulkhead.TicketStatus{}
	for i, tk := range all[:10] {
		next := tk
		next.Status, next.Version = bulkhead.TicketClosed, tk.Version+1
		if i >= 7 {
			next.Status = bulkhead.TicketPending
		}
		if err := ts.UpdateTicket(ctx, tk, next); err != nil {
			t.Fatal(err)
		}
		moved[tk.ID] = next.Status
	}
	counts := map[bulkhead.TicketStatus]int{}
	for _, st := range bulkhead.TicketStatuses {
		for _, id := range listAll(t, ts, st, 4) {
			counts[st]++
			want := moved[id]
			if want == "" {
				want = bulkhead.TicketOpen
			}
			if want != st {
				t.Fatalf("%s listed as %q, want %q", id, st, want)
			}
		}
	}
	if counts[bulkhead.TicketOpen] != 15 || counts[bulkhead.TicketClosed] != 7 || counts[bulkhead.TicketPending] != 3 {
		t.Fatalf("counts by status = %v, want open 15, closed 7, pending 3", counts)
	}
	// A cursor continues only the list it came from.
	page, err := ts.ListTickets(ctx, "", "", 2)
	if err != nil || page.NextCursor == "" {
		t.Fatalf("first page: %+v, %v", page, err)
	}
	if _, err := ts.ListTickets(ctx, bulkhead.TicketOpen, page.NextCursor, 2); codeOf(err) != bulkhead.Invalid {
		t.Fatalf("the full list's cursor on the open list: %v, want invalid", err)
	}
	open, err := ts.ListTickets(ctx, bulkhead.TicketOpen, "", 2)
	if err != nil || open.NextCursor == "" {
		t.Fatalf("open page: %+v, %v", open, err)
	}
	if _, err := ts.ListTickets(ctx, bulkhead.TicketClosed, open.NextCursor, 2); codeOf(err) != bulkhead.Invalid {
		t.Fatalf("the open list's cursor on the closed list: %v, want invalid", err)
	}
	if _, err := ts.ListTickets(ctx, "archived", "", 2); codeOf(err) != bulkhead.Invalid {
		t.Fatalf("unknown status: %v, want invalid", err)
	}
}

func TestTicketUpdateRefusesAStaleVersion(t *testing.T) {
	ctx := context.Background()
	ts := mustStore(t).Tenant("tn_a")
	tk := mustCreateTicket(t, ts, ticket("exec_1", "call_1"))
	first := tk
	first.Status, first.Version = bulkhead.TicketPending, 2
	if err := ts.UpdateTicket(ctx, tk, first); err != nil {
		t.Fatal(err)
	}
	stale := tk
	stale.Priority, stale.Version = bulkhead.PriorityUrgent, 2
	if err := ts.UpdateTicket(ctx, tk, stale); codeOf(err) != bulkhead.Conflict {
		t.Fatalf("update from a stale version: %v, want conflict", err)
	}
	got, err := ts.GetTicket(ctx, tk.ID)
	if err != nil || got != first {
		t.Fatalf("ticket = %+v, %v; want the first update %+v", got, err, first)
	}
	// The refused update moved no index item.
	if ids := listAll(t, ts, bulkhead.TicketPending, 10); len(ids) != 1 || ids[0] != tk.ID {
		t.Fatalf("pending = %v, want [%s]", ids, tk.ID)
	}
	if ids := listAll(t, ts, bulkhead.TicketOpen, 10); len(ids) != 0 {
		t.Fatalf("open = %v, want none", ids)
	}
}

// TestTicketPagesAreByteBounded fills pages with the largest tickets: a
// page, rendered as JSON, stays within the page budget, by status too,
// where the index items the query reads are small.
func TestTicketPagesAreByteBounded(t *testing.T) {
	ctx := context.Background()
	ts := mustStore(t).Tenant("tn_a")
	const n = 80
	for i := range n {
		tk := ticket("exec_1", fmt.Sprintf("call_%d", i))
		tk.Subject = strings.Repeat("<", bulkhead.MaxTicketSubjectRunes)
		tk.Body = strings.Repeat("x", bulkhead.MaxTicketBodyBytes)
		mustCreateTicket(t, ts, tk)
	}
	for _, st := range []bulkhead.TicketStatus{"", bulkhead.TicketOpen} {
		page, err := ts.ListTickets(ctx, st, "", bulkhead.MaxPageSize)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(page.Items)
		if len(b) > bulkhead.MaxPageBytes || page.NextCursor == "" || len(page.Items) == 0 || len(page.Items) == n {
			t.Fatalf("status %q: page of %d tickets, %d bytes, more %v; want a byte-bounded page with more",
				st, len(page.Items), len(b), page.NextCursor != "")
		}
		if ids := listAll(t, ts, st, bulkhead.MaxPageSize); len(ids) != n {
			t.Fatalf("status %q: paged through %d tickets, want %d", st, len(ids), n)
		}
	}
}

// codeOf is an error's domain code ("" for none).
func codeOf(err error) bulkhead.Code {
	if e := bulkhead.AsError(err); e != nil {
		return e.Code
	}
	return ""
}
