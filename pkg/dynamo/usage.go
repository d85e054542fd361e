package dynamo

import (
	"context"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/bulkhead-dev/bulkhead/pkg/bulkhead"
)

// Counters reads the tenant's current windows (the hour, the month, the
// live counts, all on its counter item) in one strongly consistent read at
// time now.
func (t *TenantStore) Counters(ctx context.Context, now time.Time) (bulkhead.Usage, error) {
	live, err := t.counterItem(ctx, "read counters")
	if err != nil {
		return bulkhead.Usage{}, err
	}
	return usageFromCounter(live, now), nil
}

// counterItem reads the counter item, strongly consistent.
func (t *TenantStore) counterItem(ctx context.Context, op string) (map[string]types.AttributeValue, error) {
	out, err := t.s.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(t.s.table), Key: key(t.pk, skLive), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return nil, translate(op, err, bulkhead.Internal, "")
	}
	return out.Item, nil
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

// DailyUsage returns the per-day totals of a month ("2026-11") summed from
// its usage records (a record counts on the UTC day its execution started),
// days without executions left out, oldest first. The month's records are
// one key range, read whole at every call with strongly consistent Query
// pages of only the attributes summed (a read unit per 4 KB of records as
// stored, about 13 records); no counter item is kept per day.
func (t *TenantStore) DailyUsage(ctx context.Context, month string) ([]bulkhead.DayUsage, error) {
	in := &dynamodb.QueryInput{
		TableName:                aws.String(t.s.table),
		KeyConditionExpression:   aws.String("#pk = :pk AND begins_with(#sk, :month)"),
		ProjectionExpression:     aws.String("#sk, input_tokens, output_tokens, cost_micros"),
		ExpressionAttributeNames: map[string]string{"#pk": attrPK, "#sk": attrSK},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk": str(t.pk), ":month": str(prefixExec + month + "-")},
		ConsistentRead: aws.Bool(true),
	}
	var out []bulkhead.DayUsage
	for {
		page, err := t.s.db.Query(ctx, in)
		if err != nil {
			return nil, translate("daily usage", err, bulkhead.Internal, "")
		}
		for _, it := range page.Items {
			sk, _ := it[attrSK].(*types.AttributeValueMemberS)
			if sk == nil || len(sk.Value) < len(prefixExec)+len("2006-01-02") {
				continue
			}
			// The key starts with the fixed-width UTC start time.
			day := sk.Value[len(prefixExec) : len(prefixExec)+len("2006-01-02")]
			if len(out) == 0 || out[len(out)-1].Day != day {
				out = append(out, bulkhead.DayUsage{Day: day})
			}
			d := &out[len(out)-1]
			inTok, outTok := intAttr(it, "input_tokens"), intAttr(it, "output_tokens")
			d.InputTokens += inTok
			d.OutputTokens += outTok
			d.Tokens += inTok + outTok
			d.Spend += bulkhead.Micros(intAttr(it, "cost_micros"))
			d.Executions++
		}
		if len(page.LastEvaluatedKey) == 0 {
			return out, nil
		}
		in.ExclusiveStartKey = page.LastEvaluatedKey
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
