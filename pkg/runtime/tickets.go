package runtime

import (
	"context"
	"encoding/json"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/bulkhead-dev/bulkhead/pkg/bulkhead"
)

// CreateTicket is the built-in tool by which an agent opens a support
// ticket for its tenant: {"subject", "body", "priority"}, priority one of
// low, normal (when absent), high and urgent.
const CreateTicket = "create_ticket"

// ticketResult is what the model is told about the ticket it opened: the
// ticket without its body, which the model has just written. Echoing up to
// bulkhead.MaxTicketBodyBytes back would exceed maxToolResultBytes and cost
// input tokens at every later step; without it the result always fits.
type ticketResult struct {
	TicketID    string `json:"ticket_id"`
	Subject     string `json:"subject"`
	Priority    string `json:"priority"`
	Status      string `json:"status"`
	ExecutionID string `json:"execution_id,omitempty"`
	AgentID     string `json:"agent_id,omitempty"`
	CreatedAt   string `json:"created_at"`
}

// createTicket runs the create_ticket tool for tool call callID of execution
// execID, and returns the tool result: the ticket, or a tool error the model
// can act on. The ticket's id is derived from execID and callID, so a call
// the model repeats (after a retry) finds the ticket its first attempt
// opened instead of opening another; a call without an id opens one each time.
//
// The offline model sends every tool {"query": "..."}: that shape is taken
// as a ticket whose body is the query and whose subject is its first
// bulkhead.MaxTicketSubjectRunes characters, so offline agents open tickets
// in demos and tests.
func (r *Runner) createTicket(ctx context.Context, st stores, execID, agentID, callID string, args json.RawMessage) string {
	const usage = `arguments must be {"subject": "...", "body": "...", "priority": "low"|"normal"|"high"|"urgent"}`
	var a struct {
		Subject  *string `json:"subject"`
		Body     *string `json:"body"`
		Priority *string `json:"priority"`
		Query    *string `json:"query"`
	}
	if t := strings.TrimLeft(string(args), " \t\r\n"); !strings.HasPrefix(t, "{") {
		return toolError(usage)
	}
	if err := json.Unmarshal(args, &a); err != nil {
		return toolError(usage)
	}
	if a.Subject == nil && a.Body == nil && a.Query != nil {
		q := strings.TrimSpace(*a.Query)
		a.Subject, a.Body = &q, &q
		if utf8.RuneCountInString(q) > bulkhead.MaxTicketSubjectRunes {
			s := string([]rune(q)[:bulkhead.MaxTicketSubjectRunes])
			a.Subject = &s
		}
	}
	if a.Subject == nil || a.Body == nil {
		return toolError(usage)
	}
	now := r.now()
	tk := bulkhead.Ticket{ID: bulkhead.NewID("tkt"), Subject: strings.TrimSpace(*a.Subject), Body: *a.Body,
		Priority: bulkhead.PriorityNormal, Status: bulkhead.TicketOpen, ExecutionID: execID, AgentID: agentID, CallID: callID,
		Version: 1, CreatedAt: now, UpdatedAt: now}
	if callID != "" {
		tk.ID = bulkhead.TicketID(execID, callID)
	}
	if a.Priority != nil {
		tk.Priority = bulkhead.TicketPriority(*a.Priority)
	}
	if err := tk.Validate(); err != nil {
		return toolError(bulkhead.AsError(err).Message)
	}
	got, err := st.ts.CreateTicket(ctx, tk)
	if err != nil {
		e := bulkhead.AsError(err)
		if e == nil || e.Code == bulkhead.Internal {
			return toolError("the ticket could not be created")
		}
		if e.Code == bulkhead.Unavailable {
			return toolError("tickets are unavailable right now; try again later")
		}
		return toolError(string(e.Code) + ": " + e.Message)
	}
	b, _ := json.Marshal(ticketResult{TicketID: got.ID, Subject: got.Subject, Priority: string(got.Priority), Status: string(got.Status),
		ExecutionID: got.ExecutionID, AgentID: got.AgentID, CreatedAt: got.CreatedAt.UTC().Format(time.RFC3339Nano)})
	return string(b)
}
