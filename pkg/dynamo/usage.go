package dynamo

import (
	"context"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/bulkhead-dev/bulkhead/pkg/bulkhead"
)

// Counters reads the tenant's current windows (the hour and the live
// counts on its counter item, the month's use on the month's item) in one
// consistent read at time now.
func (t *TenantStore) Counters(ctx context.Context, now time.Time) (bulkhead.Usage, error) {
	get := func(sk string) types.TransactGetItem {
		return types.TransactGetItem{Get: &types.Get{TableName: aws.String(t.s.table), Key: key(t.pk, sk)}}
	}
	out, err := t.s.db.TransactGetItems(ctx, &dynamodb.TransactGetItemsInput{TransactItems: []types.TransactGetItem{
		get(skLive), get(monthSK(bulkhead.MonthKey(now))),
	}})
	if err != nil {
		return bulkhead.Usage{}, translate("read counters", err, bulkhead.Internal, "")
	}
	return usageFromCounter(out.Responses[0].Item, out.Responses[1].Item, now), nil
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
