package dynamo

import (
	"context"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/bulkhead-dev/bulkhead/pkg/bulkhead"
)

// hourTTL keeps an hourly window for a day after it ends (TTL is lazy: nothing
// relies on the deletion; a window is found by its key).
const hourTTL = 25 * time.Hour

// Counters reads the tenant's current windows (the hour, the month, live
// counts) in one consistent read at time now.
func (t *TenantStore) Counters(ctx context.Context, now time.Time) (bulkhead.Usage, error) {
	get := func(sk string) types.TransactGetItem {
		return types.TransactGetItem{Get: &types.Get{TableName: aws.String(t.s.table), Key: key(t.pk, sk)}}
	}
	out, err := t.s.db.TransactGetItems(ctx, &dynamodb.TransactGetItemsInput{TransactItems: []types.TransactGetItem{
		get(hourSK(bulkhead.HourKey(now))), get(monthSK(bulkhead.MonthKey(now))), get(skLive),
	}})
	if err != nil {
		return bulkhead.Usage{}, translate("read counters", err, bulkhead.Internal, "")
	}
	hour, month, live := out.Responses[0].Item, out.Responses[1].Item, out.Responses[2].Item
	return bulkhead.Usage{
		RequestsThisHour: intAttr(hour, "requests"),
		TokensThisMonth:  intAttr(month, "tokens"),
		InputTokens:      intAttr(month, "input_tokens"),
		OutputTokens:     intAttr(month, "output_tokens"),
		SpendThisMonth:   bulkhead.Micros(intAttr(month, "spend_micros")),
		Executions:       intAttr(month, "executions"),
		CommittedTokens:  intAttr(month, "committed_tokens"),
		CommittedSpend:   bulkhead.Micros(intAttr(month, "committed_spend_micros")),
		Running:          intAttr(live, "running"),
		StorageBytes:     intAttr(live, "storage_bytes"),
		StorageCommitted: intAttr(live, "storage_committed"),
		BreakerOpenUntil: intAttr(live, "breaker_open_until"),
	}, nil
}

// ListExecutions pages through this tenant's usage records, oldest first.
func (t *TenantStore) ListExecutions(ctx context.Context, cursor string, limit int) (bulkhead.Page[bulkhead.Execution], error) {
	return listPage(ctx, t.s, "list executions", t.pk, prefixExec, cursor, limit, nil, execItem.execution)
}

// UsageRecords pages through the usage records of executions that started
// in [from, to), oldest first, optionally of one agent only.
func (t *TenantStore) UsageRecords(ctx context.Context, from, to time.Time, agentID, cursor string, limit int) (bulkhead.Page[bulkhead.Execution], error) {
	f := &filterExpr{between: &[2]string{prefixExec + recordTime(from), prefixExec + recordTime(to.Add(-time.Nanosecond)) + "#~"}}
	if agentID != "" {
		f.expr, f.values = "agent_id = :aid", map[string]types.AttributeValue{":aid": str(agentID)}
	}
	return listPage(ctx, t.s, "list usage records", t.pk, prefixExec, cursor, limit, f, execItem.execution)
}

// DailyUsage returns the per-day counters of a month ("2026-11"), days
// without executions left out.
func (t *TenantStore) DailyUsage(ctx context.Context, month string) ([]bulkhead.DayUsage, error) {
	f := &filterExpr{between: &[2]string{daySK(month + "-01"), daySK(month + "-31")}}
	var out []bulkhead.DayUsage
	cursor := ""
	for {
		items, next, err := t.s.queryPage(ctx, "daily usage", t.pk, prefixDay, cursor, bulkhead.MaxPageSize, f)
		if err != nil {
			return nil, err
		}
		for _, it := range items {
			d := bulkhead.DayUsage{Tokens: intAttr(it, "tokens"), InputTokens: intAttr(it, "input_tokens"), OutputTokens: intAttr(it, "output_tokens"),
				Spend: bulkhead.Micros(intAttr(it, "spend_micros")), Executions: intAttr(it, "executions")}
			if sk, ok := it[attrSK].(*types.AttributeValueMemberS); ok {
				d.Day = idFromSK(sk.Value, prefixDay)
			}
			out = append(out, d)
		}
		if cursor = next; cursor == "" {
			return out, nil
		}
	}
}

// Execution finds one of this tenant's usage records by execution id. Records
// are keyed by start time, so this pages through the tenant's records with a
// filter (strongly consistent reads; cost grows with the tenant's records).
// Errors: NotFound, Internal, Unavailable.
func (t *TenantStore) Execution(ctx context.Context, executionID string) (bulkhead.Execution, error) {
	f := &filterExpr{expr: "execution_id = :eid", values: map[string]types.AttributeValue{":eid": str(executionID)}}
	cursor := ""
	for {
		page, err := listPage(ctx, t.s, "get execution", t.pk, prefixExec, cursor, bulkhead.MaxPageSize, f, execItem.execution)
		if err != nil {
			return bulkhead.Execution{}, err
		}
		for _, e := range page.Items {
			if e.ID == executionID {
				return e, nil
			}
		}
		if cursor = page.NextCursor; cursor == "" {
			return bulkhead.Execution{}, bulkhead.Errorf(bulkhead.NotFound, "execution %s not found", executionID)
		}
	}
}
