package runtime

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/bulkhead-dev/bulkhead/pkg/awsclients"
	"github.com/bulkhead-dev/bulkhead/pkg/bulkhead"
	"github.com/bulkhead-dev/bulkhead/pkg/dynamo"
	"github.com/bulkhead-dev/bulkhead/pkg/embedded"
)

var ticketClock = time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)

// ticketStores starts an embedded DynamoDB and returns two tenants' stores
// on it (the runtime cannot use platformtest, which builds on this package).
func ticketStores(tb testing.TB) (stores, stores) {
	tb.Helper()
	ctx := context.Background()
	d, err := embedded.StartDynamoDB(ctx, embedded.DynamoDBOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = d.Close(context.Background()) })
	client := awsclients.NewDynamoDB(awsclients.Static(""), d.URL())
	if err := dynamo.CreateTable(ctx, client, "t"); err != nil {
		tb.Fatal(err)
	}
	s := dynamo.New(client, "t", func() time.Time { return ticketClock })
	return stores{ts: s.Tenant("tn_aaaaaaaaaaaaaaaa")}, stores{ts: s.Tenant("tn_bbbbbbbbbbbbbbbb")}
}

// ticketIDs lists every ticket id of the tenant.
func ticketIDs(t *testing.T, st stores) []string {
	t.Helper()
	var ids []string
	cursor := ""
	for {
		page, err := st.ts.ListTickets(context.Background(), "", cursor, bulkhead.MaxPageSize)
		if err != nil {
			t.Fatal(err)
		}
		for _, tk := range page.Items {
			ids = append(ids, tk.ID)
		}
		if cursor = page.NextCursor; cursor == "" {
			return ids
		}
	}
}

// opened decodes a tool result that must be a ticket, not an error.
func opened(t *testing.T, out string) ticketResult {
	t.Helper()
	var res ticketResult
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&res); err != nil || !bulkhead.ValidID("tkt", res.TicketID) {
		t.Fatalf("tool result %s is not a ticket (%v)", out, err)
	}
	return res
}

const (
	ticketExec  = "exec_aaaaaaaaaaaaaaaa"
	ticketAgent = "agt_aaaaaaaaaaaaaaaa"
)

func TestCreateTicketOpensOneTicketPerCall(t *testing.T) {
	ctx := context.Background()
	st, other := ticketStores(t)
	r := &Runner{Now: func() time.Time { return ticketClock }}
	args := json.RawMessage(`{"subject":"  Refund for order 42 ","body":"The customer wants a refund.","priority":"high"}`)
	first := opened(t, r.createTicket(ctx, st, ticketExec, ticketAgent, "call_1", args))
	want := ticketResult{TicketID: first.TicketID, Subject: "Refund for order 42", Priority: "high", Status: "open",
		ExecutionID: ticketExec, AgentID: ticketAgent, CreatedAt: "2026-11-28T12:00:00Z"}
	if first != want {
		t.Fatalf("result = %+v, want %+v", first, want)
	}
	tk, err := st.ts.GetTicket(ctx, first.TicketID)
	if err != nil || tk.Body != "The customer wants a refund." || tk.CallID != "call_1" || tk.Version != 1 {
		t.Fatalf("stored ticket = %+v, %v", tk, err)
	}
	// The model repeats the call after a retry: the same ticket, not another.
	again := opened(t, r.createTicket(ctx, st, ticketExec, ticketAgent, "call_1", args))
	if again != first {
		t.Fatalf("repeated call = %+v, want %+v", again, first)
	}
	if ids := ticketIDs(t, st); len(ids) != 1 {
		t.Fatalf("tickets after a repeated call = %v, want one", ids)
	}
	// Another call of the execution, and the same call id in another
	// execution, are other tickets.
	second := opened(t, r.createTicket(ctx, st, ticketExec, ticketAgent, "call_2", args))
	third := opened(t, r.createTicket(ctx, st, "exec_bbbbbbbbbbbbbbbb", ticketAgent, "call_1", args))
	if second.TicketID == first.TicketID || third.TicketID == first.TicketID || third.TicketID == second.TicketID {
		t.Fatalf("ticket ids %s, %s, %s are not distinct", first.TicketID, second.TicketID, third.TicketID)
	}
	if ids := ticketIDs(t, st); len(ids) != 3 {
		t.Fatalf("tickets = %v, want three", ids)
	}
	// A call without an id opens a ticket each time.
	opened(t, r.createTicket(ctx, st, ticketExec, ticketAgent, "", args))
	opened(t, r.createTicket(ctx, st, ticketExec, ticketAgent, "", args))
	if ids := ticketIDs(t, st); len(ids) != 5 {
		t.Fatalf("tickets = %v, want five", ids)
	}
	// The same execution and call in another tenant open that tenant's own.
	opened(t, r.createTicket(ctx, other, ticketExec, ticketAgent, "call_1", args))
	if ids := ticketIDs(t, other); len(ids) != 1 {
		t.Fatalf("other tenant's tickets = %v, want one", ids)
	}
	if _, err := other.ts.GetTicket(ctx, second.TicketID); err == nil {
		t.Fatal("another tenant reads the ticket")
	}
}

func TestCreateTicketDefaultsAndOfflineShape(t *testing.T) {
	ctx := context.Background()
	st, _ := ticketStores(t)
	r := &Runner{Now: func() time.Time { return ticketClock }}
	res := opened(t, r.createTicket(ctx, st, ticketExec, ticketAgent, "call_1", json.RawMessage(`{"subject":"s","body":"b"}`)))
	if res.Priority != "normal" || res.Status != "open" {
		t.Fatalf("defaults: %+v, want normal and open", res)
	}
	query := strings.Repeat("é", bulkhead.MaxTicketSubjectRunes+50)
	args, _ := json.Marshal(map[string]string{"query": " " + query + " "})
	res = opened(t, r.createTicket(ctx, st, ticketExec, ticketAgent, "call_2", args))
	tk, err := st.ts.GetTicket(ctx, res.TicketID)
	if err != nil {
		t.Fatal(err)
	}
	if tk.Subject != strings.Repeat("é", bulkhead.MaxTicketSubjectRunes) || tk.Body != query || tk.Priority != bulkhead.PriorityNormal {
		t.Fatalf("offline-shaped call stored subject %d runes, body %d bytes, priority %q", len([]rune(tk.Subject)), len(tk.Body), tk.Priority)
	}
	// The largest subject still makes a result within the tool result bound.
	args, _ = json.Marshal(map[string]string{"subject": strings.Repeat("&", bulkhead.MaxTicketSubjectRunes), "body": "b"})
	if out := r.createTicket(ctx, st, ticketExec, ticketAgent, strings.Repeat("c", 200), args); len(out) > maxToolResultBytes {
		t.Fatalf("result of %d bytes, bound %d", len(out), maxToolResultBytes)
	} else {
		opened(t, out)
	}
}

func TestCreateTicketRefusesBadArgumentsAndWritesNothing(t *testing.T) {
	ctx := context.Background()
	st, _ := ticketStores(t)
	r := &Runner{Now: func() time.Time { return ticketClock }}
	bigBody, _ := json.Marshal(map[string]string{"subject": "s", "body": strings.Repeat("<", bulkhead.MaxTicketBodyBytes/6+1)})
	cases := map[string]string{
		"not JSON":          `{"subject":`,
		"an array":          `[{"subject":"s","body":"b"}]`,
		"null":              `null`,
		"no subject":        `{"body":"b"}`,
		"no body":           `{"subject":"s"}`,
		"blank subject":     `{"subject":" \t ","body":"b"}`,
		"blank body":        `{"subject":"s","body":"\n"}`,
		"long subject":      `{"subject":"` + strings.Repeat("s", bulkhead.MaxTicketSubjectRunes+1) + `","body":"b"}`,
		"large body":        string(bigBody),
		"unknown priority":  `{"subject":"s","body":"b","priority":"critical"}`,
		"priority's case":   `{"subject":"s","body":"b","priority":"High"}`,
		"subject as number": `{"subject":1,"body":"b"}`,
		"blank query":       `{"query":"   "}`,
	}
	for name, args := range cases {
		out := r.createTicket(ctx, st, ticketExec, ticketAgent, "call_"+name, json.RawMessage(args))
		var e struct {
			Error string `json:"error"`
		}
		if err := json.Unmarshal([]byte(out), &e); err != nil || e.Error == "" {
			t.Errorf("%s: result %s, want a tool error", name, out)
		}
		if _, err := st.ts.GetTicket(ctx, bulkhead.TicketID(ticketExec, "call_"+name)); bulkhead.AsError(err) == nil || bulkhead.AsError(err).Code != bulkhead.NotFound {
			t.Errorf("%s: a ticket was written (%v)", name, err)
		}
	}
	if ids := ticketIDs(t, st); len(ids) != 0 {
		t.Fatalf("tickets after refused calls: %v", ids)
	}
	// At the bound exactly, the body is accepted.
	atBound, _ := json.Marshal(map[string]string{"subject": "s", "body": strings.Repeat("<", bulkhead.MaxTicketBodyBytes/6)})
	opened(t, r.createTicket(ctx, st, ticketExec, ticketAgent, "call_bound", atBound))
}
