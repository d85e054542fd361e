package dynamo

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/bulkhead-dev/bulkhead/pkg/bulkhead"
)

// Ticket keys. A ticket is one item; each ticket also has one key-only
// item in the index of its status, moved with the status in the same
// transaction, so that listing one status reads only that status's tickets.
const (
	prefixTicket       = "TICKET#"
	prefixTicketStatus = "TSTATUS#"
)

func ticketSK(id string) string { return prefixTicket + id }

// ticketStatusPrefix is the key range of one status's index items; the
// trailing separator keeps one status's range from covering another's.
func ticketStatusPrefix(s bulkhead.TicketStatus) string { return prefixTicketStatus + string(s) + "#" }

func ticketStatusSK(s bulkhead.TicketStatus, id string) string { return ticketStatusPrefix(s) + id }

type ticketItem struct {
	PK          string    `dynamodbav:"PK"`
	SK          string    `dynamodbav:"SK"`
	TicketID    string    `dynamodbav:"ticket_id"`
	Subject     string    `dynamodbav:"subject"`
	Body        string    `dynamodbav:"body"`
	Priority    string    `dynamodbav:"priority"`
	Status      string    `dynamodbav:"status"`
	ExecutionID string    `dynamodbav:"execution_id,omitempty"`
	AgentID     string    `dynamodbav:"agent_id,omitempty"`
	CallID      string    `dynamodbav:"call_id,omitempty"`
	Version     int64     `dynamodbav:"version"`
	CreatedAt   time.Time `dynamodbav:"created_at"`
	UpdatedAt   time.Time `dynamodbav:"updated_at"`
}

func newTicketItem(pk string, tk bulkhead.Ticket) ticketItem {
	return ticketItem{PK: pk, SK: ticketSK(tk.ID), TicketID: tk.ID, Subject: tk.Subject, Body: tk.Body,
		Priority: string(tk.Priority), Status: string(tk.Status), ExecutionID: tk.ExecutionID, AgentID: tk.AgentID,
		CallID: tk.CallID, Version: tk.Version, CreatedAt: tk.CreatedAt, UpdatedAt: tk.UpdatedAt}
}

func (it ticketItem) ticket() bulkhead.Ticket {
	return bulkhead.Ticket{ID: it.TicketID, Subject: it.Subject, Body: it.Body, Priority: bulkhead.TicketPriority(it.Priority),
		Status: bulkhead.TicketStatus(it.Status), ExecutionID: it.ExecutionID, AgentID: it.AgentID, CallID: it.CallID,
		Version: it.Version, CreatedAt: it.CreatedAt, UpdatedAt: it.UpdatedAt}
}

// CreateTicket stores a new ticket and its status index item in one
// transaction. A ticket that already exists under the id is the same call
// repeated when it came from the same execution and tool call: that ticket
// is returned, as it is now, and nothing is written. Errors: Conflict (the
// id is taken by another origin), Unavailable.
func (t *TenantStore) CreateTicket(ctx context.Context, tk bulkhead.Ticket) (bulkhead.Ticket, error) {
	const op = "create ticket"
	av, err := attributevalue.MarshalMap(newTicketItem(t.pk, tk))
	if err != nil {
		return bulkhead.Ticket{}, err
	}
	_, err = t.s.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
		{Put: &types.Put{TableName: aws.String(t.s.table), Item: av, ConditionExpression: aws.String("attribute_not_exists(PK)")}},
		{Put: &types.Put{TableName: aws.String(t.s.table), Item: key(t.pk, ticketStatusSK(tk.Status, tk.ID))}},
	}})
	if err == nil {
		return tk, nil
	}
	if !fails(cancelReasons(err), 0) {
		return bulkhead.Ticket{}, translate(op, err, bulkhead.Conflict, "ticket already exists")
	}
	prev, gerr := t.GetTicket(ctx, tk.ID)
	if gerr != nil {
		return bulkhead.Ticket{}, gerr
	}
	if tk.CallID == "" || prev.ExecutionID != tk.ExecutionID || prev.CallID != tk.CallID {
		return bulkhead.Ticket{}, bulkhead.Errorf(bulkhead.Conflict, "ticket %s already exists", tk.ID)
	}
	return prev, nil
}

// GetTicket reads one of this tenant's tickets. Errors: NotFound, Unavailable.
func (t *TenantStore) GetTicket(ctx context.Context, id string) (bulkhead.Ticket, error) {
	it, err := getItem[ticketItem](ctx, t.s, "get ticket", t.pk, ticketSK(id), "ticket "+id+" not found")
	return it.ticket(), err
}

// UpdateTicket replaces ticket prev by next if prev is still at its version,
// moving its status index item when the status changes, in one transaction
// (optimistic concurrency for PATCH). Errors: Conflict when it changed in
// between, Unavailable.
func (t *TenantStore) UpdateTicket(ctx context.Context, prev, next bulkhead.Ticket) error {
	if prev.ID != next.ID {
		return fmt.Errorf("update ticket: ticket %s cannot become %s", prev.ID, next.ID)
	}
	av, err := attributevalue.MarshalMap(newTicketItem(t.pk, next))
	if err != nil {
		return err
	}
	writes := []types.TransactWriteItem{{Put: &types.Put{
		TableName: aws.String(t.s.table), Item: av,
		ConditionExpression:       aws.String("version = :prev"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":prev": num(prev.Version)},
	}}}
	if prev.Status != next.Status {
		writes = append(writes,
			types.TransactWriteItem{Delete: &types.Delete{TableName: aws.String(t.s.table), Key: key(t.pk, ticketStatusSK(prev.Status, prev.ID))}},
			types.TransactWriteItem{Put: &types.Put{TableName: aws.String(t.s.table), Item: key(t.pk, ticketStatusSK(next.Status, next.ID))}},
		)
	}
	err = t.s.transactAudited(ctx, auditOp{tenant: t.tid, action: bulkhead.ActionTicketUpdated, target: next.ID}, writes...)
	return translate("update ticket", err, bulkhead.Conflict, "ticket was changed concurrently; retry")
}

// ListTickets pages through this tenant's tickets in ticket id order, all
// of them or (status set) only those with that status. A status page reads
// one page of that status's index items, then their tickets in one batch
// read: it costs what it returns, however many tickets have other statuses.
// Errors: Invalid (cursor, status), Unavailable.
func (t *TenantStore) ListTickets(ctx context.Context, status bulkhead.TicketStatus, cursor string, limit int) (bulkhead.Page[bulkhead.Ticket], error) {
	const op = "list tickets"
	if status == "" {
		return listPage(ctx, t.s, op, t.pk, prefixTicket, cursor, limit, nil, ticketItem.ticket)
	}
	if !status.Valid() {
		return bulkhead.Page[bulkhead.Ticket]{}, bulkhead.Errorf(bulkhead.Invalid, "status must be \"open\", \"pending\" or \"closed\"")
	}
	prefix := ticketStatusPrefix(status)
	index, next, err := t.s.queryPage(ctx, op, t.pk, prefix, cursor, limit, nil)
	if err != nil {
		return bulkhead.Page[bulkhead.Ticket]{}, err
	}
	page := bulkhead.Page[bulkhead.Ticket]{Items: []bulkhead.Ticket{}, NextCursor: next}
	if len(index) == 0 {
		return page, nil
	}
	ids := make([]string, len(index))
	keys := make([]map[string]types.AttributeValue, len(index))
	for i, it := range index {
		sk, _ := it[attrSK].(*types.AttributeValueMemberS)
		if sk == nil {
			return page, fmt.Errorf("%s: index item without a sort key", op)
		}
		ids[i] = idFromSK(sk.Value, prefix)
		keys[i] = key(t.pk, ticketSK(ids[i]))
	}
	items, err := t.batchGet(ctx, op, keys)
	if err != nil {
		return page, err
	}
	// The index items are small, so the query's byte budget does not bound
	// the tickets they name: the page is cut here as queryPage cuts one, and
	// then continues after the last ticket it holds.
	size := 0
	for i, id := range ids {
		av := items[ticketSK(id)]
		if av == nil {
			continue
		}
		var it ticketItem
		if err := attributevalue.UnmarshalMap(av, &it); err != nil {
			return page, fmt.Errorf("%s: decode %s: %w", op, id, err)
		}
		// A ticket whose status moved since its index item was read belongs
		// to the other status's list now.
		if it.Status != string(status) {
			continue
		}
		n := itemJSONSize(av) + pageItemAllowance
		if len(page.Items) > 0 && size+n > bulkhead.MaxPageBytes {
			page.NextCursor = encodeCursor(cursorScope(t.pk, prefix, nil), index[i-1])
			return page, nil
		}
		page.Items = append(page.Items, it.ticket())
		size += n
	}
	return page, nil
}
