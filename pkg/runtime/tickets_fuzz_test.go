package runtime

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/bulkhead-dev/bulkhead/pkg/bulkhead"
)

// FuzzCreateTicketArgs sends arbitrary arguments to create_ticket. For every
// input the result is a JSON object within the tool result bound, and either
// a tool error with no ticket written, or a ticket that is stored as
// reported, passes the ticket checks, and is the same ticket when the call
// is repeated.
func FuzzCreateTicketArgs(f *testing.F) {
	for _, s := range []string{
		`{"subject":"s","body":"b"}`, `{"subject":"s","body":"b","priority":"urgent"}`, `{"query":"printer on fire"}`,
		`{"subject":"s","body":"b","priority":"critical"}`, `{"subject":" ","body":"b"}`, `{"subject":"s","body":""}`,
		`{"subject":"s","body":"b","query":"q"}`, `{"subject":null,"body":"b"}`, `{"query":null}`, `{"query":7}`,
		``, `null`, `[]`, `"x"`, `{`, `{} {}`, `{"subject":"\ud800","body":"\u0000"}`,
		`{"subject":"` + strings.Repeat("<", 201) + `","body":"b"}`,
		`{"query":"` + strings.Repeat("ü", 300) + `"}`,
	} {
		f.Add([]byte(s))
	}
	st, _ := ticketStores(f)
	r := &Runner{Now: func() time.Time { return ticketClock }}
	ctx := context.Background()
	n := 0
	f.Fuzz(func(t *testing.T, args []byte) {
		n++
		call := fmt.Sprintf("call_%d", n)
		out := r.createTicket(ctx, st, ticketExec, ticketAgent, call, args)
		if len(out) > maxToolResultBytes {
			t.Fatalf("result of %d bytes", len(out))
		}
		var doc map[string]any
		if err := json.Unmarshal([]byte(out), &doc); err != nil {
			t.Fatalf("result %q is not a JSON object: %v", out, err)
		}
		id := bulkhead.TicketID(ticketExec, call)
		stored, err := st.ts.GetTicket(ctx, id)
		if msg, isErr := doc["error"].(string); isErr {
			if msg == "" || len(doc) != 1 {
				t.Fatalf("tool error %s", out)
			}
			if e := bulkhead.AsError(err); e == nil || e.Code != bulkhead.NotFound {
				t.Fatalf("refused with %s, yet the ticket reads as %+v, %v", out, stored, err)
			}
			return
		}
		if err != nil {
			t.Fatalf("result %s, but the ticket does not read: %v", out, err)
		}
		if err := stored.Validate(); err != nil {
			t.Fatalf("stored ticket %+v fails its checks: %v", stored, err)
		}
		if res := opened(t, out); res.TicketID != id || res.Subject != stored.Subject || res.Priority != string(stored.Priority) ||
			res.Status != string(bulkhead.TicketOpen) {
			t.Fatalf("result %s, stored %+v", out, stored)
		}
		if again := r.createTicket(ctx, st, ticketExec, ticketAgent, call, args); again != out {
			t.Fatalf("repeated call answered %s, first %s", again, out)
		}
	})
}
