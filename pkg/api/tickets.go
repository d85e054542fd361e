package api

import (
	"context"

	"github.com/bulkhead-dev/bulkhead/pkg/bulkhead"
)

// patchTicketAttempts bounds how often a PATCH re-reads a ticket that
// changed under it: a PATCH sets values, it does not compute them from the
// old ones, so applying it to the newer ticket loses neither change.
const patchTicketAttempts = 3

type ticketView struct {
	TicketID    string  `json:"ticket_id"`
	Subject     string  `json:"subject"`
	Body        string  `json:"body"`
	Priority    string  `json:"priority"`
	Status      string  `json:"status"`
	ExecutionID *string `json:"execution_id"`
	AgentID     *string `json:"agent_id"`
	Version     int64   `json:"version"`
	CreatedAt   string  `json:"created_at"`
	UpdatedAt   string  `json:"updated_at"`
}

func viewTicket(t bulkhead.Ticket) ticketView {
	opt := func(s string) *string {
		if s == "" {
			return nil
		}
		return &s
	}
	return ticketView{TicketID: t.ID, Subject: t.Subject, Body: t.Body, Priority: string(t.Priority), Status: string(t.Status),
		ExecutionID: opt(t.ExecutionID), AgentID: opt(t.AgentID), Version: t.Version,
		CreatedAt: timestamp(t.CreatedAt), UpdatedAt: timestamp(t.UpdatedAt)}
}

// ticketID reads and checks the path's ticket id; a malformed id is simply not found.
func ticketID(r *request) (string, error) {
	id := r.PathParameters["ticket_id"]
	if !bulkhead.ValidID("tkt", id) {
		return "", bulkhead.Errorf(bulkhead.NotFound, "ticket %s not found", id)
	}
	return id, nil
}

// listTickets pages through the tenant's tickets in ticket id order;
// ?status= lists one status only, reading that status's index, so a page
// costs what it returns.
func (a *API) listTickets(ctx context.Context, r *request) (any, error) {
	cursor, limit, err := pageParams(r.APIGatewayProxyRequest)
	if err != nil {
		return nil, err
	}
	status, filtered := r.QueryStringParameters["status"]
	if filtered && !bulkhead.TicketStatus(status).Valid() {
		return nil, bulkhead.Errorf(bulkhead.Invalid, "status must be \"open\", \"pending\" or \"closed\"")
	}
	page, err := a.tenantStore(r).ListTickets(ctx, bulkhead.TicketStatus(status), cursor, limit)
	if err != nil {
		return nil, err
	}
	views := make([]ticketView, len(page.Items))
	for i, t := range page.Items {
		views[i] = viewTicket(t)
	}
	return list(views, page.NextCursor), nil
}

func (a *API) getTicket(ctx context.Context, r *request) (any, error) {
	id, err := ticketID(r)
	if err != nil {
		return nil, err
	}
	t, err := a.tenantStore(r).GetTicket(ctx, id)
	if err != nil {
		return nil, err
	}
	return viewTicket(t), nil
}

type ticketBody struct {
	Status   *string `json:"status"`
	Priority *string `json:"priority"`
}

// patchTicket sets a ticket's status and priority. Each write is conditional
// on the version it read; a concurrent PATCH makes it read again and apply
// its values to the newer ticket, so both changes stay (the later one wins
// a field both set). A body that sets nothing is refused.
func (a *API) patchTicket(ctx context.Context, r *request) (any, error) {
	id, err := ticketID(r)
	if err != nil {
		return nil, err
	}
	var b ticketBody
	if err := decode(r.APIGatewayProxyRequest, &b); err != nil {
		return nil, err
	}
	if b.Status == nil && b.Priority == nil {
		return nil, bulkhead.Errorf(bulkhead.Invalid, "set status or priority")
	}
	if b.Status != nil && !bulkhead.TicketStatus(*b.Status).Valid() {
		return nil, bulkhead.Errorf(bulkhead.Invalid, "status must be \"open\", \"pending\" or \"closed\"")
	}
	if b.Priority != nil && !bulkhead.TicketPriority(*b.Priority).Valid() {
		return nil, bulkhead.Errorf(bulkhead.Invalid, "priority must be \"low\", \"normal\", \"high\" or \"urgent\"")
	}
	ts := a.tenantStore(r)
	for attempt := 1; ; attempt++ {
		prev, err := ts.GetTicket(ctx, id)
		if err != nil {
			return nil, err
		}
		next := prev
		if b.Status != nil {
			next.Status = bulkhead.TicketStatus(*b.Status)
		}
		if b.Priority != nil {
			next.Priority = bulkhead.TicketPriority(*b.Priority)
		}
		next.Version++
		next.UpdatedAt = a.now().UTC()
		err = ts.UpdateTicket(audited(ctx, bulkhead.ActionTicketUpdated, viewTicket(prev), viewTicket(next)), prev, next)
		if err == nil {
			return viewTicket(next), nil
		}
		if e := bulkhead.AsError(err); e == nil || e.Code != bulkhead.Conflict || attempt == patchTicketAttempts {
			return nil, err
		}
	}
}
