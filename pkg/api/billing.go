package api

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"time"

	"github.com/bulkhead-dev/bulkhead/pkg/bulkhead"
	"github.com/bulkhead-dev/bulkhead/pkg/dynamo"
)

// CloseGrace is how long after a month ends it may be closed: longer than
// any execution's lease, so every execution that started in the month has
// settled (or been reclaimed) before its invoice is written.
const CloseGrace = 10 * time.Minute

var monthPattern = regexp.MustCompile(`^[0-9]{4}-(0[1-9]|1[0-2])$`)

func parseMonth(s string) (start, end time.Time, err error) {
	if !monthPattern.MatchString(s) {
		return start, end, bulkhead.Errorf(bulkhead.Invalid, "month must be YYYY-MM")
	}
	return bulkhead.MonthBounds(s)
}

// CloseReport says what a monthly close did.
type CloseReport struct {
	Month         string   `json:"month"`
	Closed        int      `json:"closed"`
	AlreadyClosed int      `json:"already_closed"`
	Failed        []string `json:"failed"`
}

// CloseMonth writes one immutable invoice per tenant for a month that has
// ended (at least CloseGrace ago): in DynamoDB (a conditional put, so
// closing twice changes nothing) and its JSON under
// tenants/<id>/invoices/<month>.json in S3. A tenant whose invoice cannot be
// written is reported and the others go on; running it again finishes the
// job. Errors: Invalid (month malformed or not over).
func (a *API) CloseMonth(ctx context.Context, month string) (CloseReport, error) {
	rep := CloseReport{Month: month, Failed: []string{}}
	_, end, err := parseMonth(month)
	if err != nil {
		return rep, err
	}
	if now := a.now().UTC(); now.Before(end.Add(CloseGrace)) {
		return rep, bulkhead.Errorf(bulkhead.Invalid, "month %s can be closed from %s", month, end.Add(CloseGrace).Format(time.RFC3339))
	}
	cursor := ""
	for {
		page, err := a.store.ListTenants(ctx, cursor, bulkhead.MaxPageSize)
		if err != nil {
			return rep, err
		}
		for _, t := range page.Items {
			if !t.CreatedAt.Before(end) {
				continue // it did not exist in the month
			}
			wrote, err := a.closeTenant(ctx, t, month)
			switch {
			case err != nil:
				a.log.Error("close month", "tenant_id", t.ID, "month", month, "error", err)
				rep.Failed = append(rep.Failed, t.ID)
			case wrote:
				rep.Closed++
			default:
				rep.AlreadyClosed++
			}
		}
		if cursor = page.NextCursor; cursor == "" {
			return rep, nil
		}
	}
}

// closeTenant computes a tenant's invoice from its usage records, checks it
// against the month's counters, and stores it once.
func (a *API) closeTenant(ctx context.Context, t bulkhead.Tenant, month string) (bool, error) {
	ts := a.store.Tenant(t.ID)
	if existing, err := ts.Invoice(ctx, month); err == nil {
		// Closed before; make sure its document reached S3 too.
		return false, a.transcripts.Tenant(t.ID).PutInvoice(ctx, month, []byte(existing.Document))
	} else if !bulkhead.IsCode(err, bulkhead.NotFound) {
		return false, err
	}
	start, end, _ := bulkhead.MonthBounds(month)
	records, err := a.monthRecords(ctx, ts, start, end)
	if err != nil {
		return false, err
	}
	held, err := ts.MonthTiers(ctx, month)
	if err != nil {
		return false, err
	}
	inv := bulkhead.ComputeInvoice(t.ID, month, bulkhead.BilledTier(held, t.Tier), held, records, a.now().UTC())
	counters, err := ts.Counters(ctx, start)
	if err != nil {
		return false, err
	}
	if counters.TokensThisMonth != inv.TokensUsed || counters.SpendThisMonth != inv.ModelCost || counters.Executions != inv.Executions {
		return false, fmt.Errorf("tenant %s %s: records (%d tokens, %d µ$, %d executions) disagree with counters (%d, %d, %d); not closing",
			t.ID, month, inv.TokensUsed, inv.ModelCost, inv.Executions, counters.TokensThisMonth, counters.SpendThisMonth, counters.Executions)
	}
	doc, err := json.Marshal(invoiceView(inv))
	if err != nil {
		return false, err
	}
	wrote, stored, err := ts.PutInvoice(ctx, dynamo.StoredInvoice{Month: month, TotalMicros: int64(inv.Total), ModelMicros: int64(inv.ModelCost),
		Document: string(doc), ClosedAt: inv.ClosedAt})
	if err != nil {
		return false, err
	}
	return wrote, a.transcripts.Tenant(t.ID).PutInvoice(ctx, month, []byte(stored.Document))
}

func (a *API) monthRecords(ctx context.Context, ts *dynamo.TenantStore, start, end time.Time) ([]bulkhead.Execution, error) {
	var out []bulkhead.Execution
	cursor := ""
	for {
		page, err := ts.UsageRecords(ctx, start, end, "", cursor, bulkhead.MaxPageSize)
		if err != nil {
			return nil, err
		}
		out = append(out, page.Items...)
		if cursor = page.NextCursor; cursor == "" {
			return out, nil
		}
	}
}

// invoiceView is the invoice document: what the API returns and S3 keeps.
func invoiceView(inv bulkhead.Invoice) map[string]any {
	tier, _ := bulkhead.LookupTier(inv.Tier)
	agents := make([]map[string]any, len(inv.Agents))
	for i, ag := range inv.Agents {
		agents[i] = map[string]any{"agent_id": ag.AgentID, "executions": ag.Executions, "tokens": ag.Tokens,
			"input_tokens": ag.InputTokens, "output_tokens": ag.OutputTokens, "model_cost": ag.ModelCost.JSON()}
	}
	held := make([]string, len(inv.TiersHeld))
	for i, t := range inv.TiersHeld {
		held[i] = string(t)
	}
	return map[string]any{
		"invoice_id": "inv_" + inv.TenantID + "_" + inv.Month,
		"tenant_id":  inv.TenantID, "month": inv.Month, "status": "closed", "currency": "USD",
		"tier": inv.Tier, "tiers_held": held,
		"lines": []map[string]any{
			{"type": "base_fee", "description": fmt.Sprintf("%s plan, %s", inv.Tier, inv.Month), "amount": inv.BaseFee.JSON()},
			{"type": "included_tokens", "quantity": inv.TokensIncluded, "amount": bulkhead.Micros(0).JSON()},
			{"type": "overage", "quantity": inv.OverageTokens, "unit_price_per_1k": tier.OveragePer1K.JSON(), "amount": inv.OverageFee.JSON()},
		},
		"base_fee": inv.BaseFee.JSON(), "tokens_included": inv.TokensIncluded, "tokens_used": inv.TokensUsed,
		"input_tokens": inv.InputTokens, "output_tokens": inv.OutputTokens, "overage_tokens": inv.OverageTokens,
		"overage_fee": inv.OverageFee.JSON(), "total": inv.Total.JSON(), "executions": inv.Executions,
		"model_cost": inv.ModelCost.JSON(), "margin": inv.Margin().JSON(), "agents": agents,
		"closed_at": timestamp(inv.ClosedAt),
	}
}

func (a *API) listInvoices(ctx context.Context, r *request) (any, error) {
	cursor, limit, err := pageParams(r.APIGatewayProxyRequest)
	if err != nil {
		return nil, err
	}
	page, err := a.tenantStore(r).Invoices(ctx, cursor, limit)
	if err != nil {
		return nil, err
	}
	docs := make([]json.RawMessage, len(page.Items))
	for i, inv := range page.Items {
		docs[i] = json.RawMessage(inv.Document)
	}
	return list(docs, page.NextCursor), nil
}

func (a *API) getInvoice(ctx context.Context, r *request) (any, error) {
	month := r.PathParameters["month"]
	if !monthPattern.MatchString(month) {
		return nil, bulkhead.Errorf(bulkhead.NotFound, "no invoice for %s", month)
	}
	inv, err := a.tenantStore(r).Invoice(ctx, month)
	if err != nil {
		return nil, err
	}
	return json.RawMessage(inv.Document), nil
}

func (a *API) adminInvoices(ctx context.Context, r *request) (any, error) {
	month := r.QueryStringParameters["month"]
	if !monthPattern.MatchString(month) {
		return nil, bulkhead.Errorf(bulkhead.Invalid, "month must be YYYY-MM")
	}
	cursor, limit, err := pageParams(r.APIGatewayProxyRequest)
	if err != nil {
		return nil, err
	}
	page, err := a.store.InvoicesForMonth(ctx, month, cursor, limit)
	if err != nil {
		return nil, err
	}
	views := make([]map[string]any, len(page.Items))
	for i, inv := range page.Items {
		views[i] = map[string]any{"tenant_id": inv.TenantID, "month": inv.Month, "total": bulkhead.Micros(inv.TotalMicros).JSON(),
			"model_cost": bulkhead.Micros(inv.ModelMicros).JSON(), "margin": bulkhead.Micros(inv.TotalMicros - inv.ModelMicros).JSON(),
			"closed_at": timestamp(inv.ClosedAt)}
	}
	return list(views, page.NextCursor), nil
}

func (a *API) adminCloseMonth(ctx context.Context, r *request) (any, error) {
	var b struct {
		Month *string `json:"month"`
	}
	if err := decode(r.APIGatewayProxyRequest, &b); err != nil {
		return nil, err
	}
	if b.Month == nil {
		return nil, bulkhead.Errorf(bulkhead.Invalid, "month is required")
	}
	return a.CloseMonth(ctx, *b.Month)
}

func (a *API) usageRecords(ctx context.Context, r *request) (any, error) {
	cursor, limit, err := pageParams(r.APIGatewayProxyRequest)
	if err != nil {
		return nil, err
	}
	now := a.now().UTC()
	from, to, err := bulkhead.MonthBounds(bulkhead.MonthKey(now))
	if err != nil {
		return nil, err
	}
	for name, dst := range map[string]*time.Time{"from": &from, "to": &to} {
		if v := r.QueryStringParameters[name]; v != "" {
			if *dst, err = parseTime(v); err != nil {
				return nil, bulkhead.Errorf(bulkhead.Invalid, "%s must be an RFC 3339 time or a date (YYYY-MM-DD)", name)
			}
		}
	}
	if !from.Before(to) {
		return nil, bulkhead.Errorf(bulkhead.Invalid, "from must be before to")
	}
	agent := r.QueryStringParameters["agent_id"]
	if agent != "" && !bulkhead.ValidID("agt", agent) {
		return nil, bulkhead.Errorf(bulkhead.Invalid, "agent_id %q is not an agent id", agent)
	}
	page, err := a.tenantStore(r).UsageRecords(ctx, from, to, agent, cursor, limit)
	if err != nil {
		return nil, err
	}
	views := make([]map[string]any, len(page.Items))
	for i, e := range page.Items {
		views[i] = map[string]any{"execution_id": e.ID, "agent_id": e.AgentID, "conversation_id": e.ConversationID, "model": e.Model,
			"input_tokens": e.InputTokens, "output_tokens": e.OutputTokens, "tokens": e.InputTokens + e.OutputTokens,
			"cost": e.Cost.JSON(), "status": e.Status, "tool_calls": e.ToolCallCount, "started_at": timestamp(e.StartedAt), "finished_at": timestamp(e.FinishedAt)}
	}
	return list(views, page.NextCursor), nil
}

func parseTime(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC(), nil
	}
	return time.Parse("2006-01-02", s)
}

func (a *API) usageDaily(ctx context.Context, r *request) (any, error) {
	month := r.QueryStringParameters["month"]
	if month == "" {
		month = bulkhead.MonthKey(a.now())
	}
	if !monthPattern.MatchString(month) {
		return nil, bulkhead.Errorf(bulkhead.Invalid, "month must be YYYY-MM")
	}
	days, err := a.tenantStore(r).DailyUsage(ctx, month)
	if err != nil {
		return nil, err
	}
	views := make([]map[string]any, len(days))
	for i, d := range days {
		views[i] = map[string]any{"date": d.Day, "executions": d.Executions, "tokens": d.Tokens, "input_tokens": d.InputTokens,
			"output_tokens": d.OutputTokens, "cost": d.Spend.JSON()}
	}
	return map[string]any{"month": month, "data": views}, nil
}
