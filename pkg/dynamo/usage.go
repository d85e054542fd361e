package dynamo

import (
	"context"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/bulkhead-dev/bulkhead/pkg/bulkhead"
)

// hourTTL keeps an hourly window for a day after it ends (TTL is lazy: nothing
// relies on the deletion; a window is found by its key).
const hourTTL = 25 * time.Hour

// ConversationClaim names an existing conversation an execution continues,
// with the number of turns the execution read.
type ConversationClaim struct {
	ID    string
	Turns int64
}

// Admission is what an execution claims before the model runs.
type Admission struct {
	ExecutionID  string
	Conversation *ConversationClaim // nil when the execution starts a new conversation
	Now          time.Time
	// Lease bounds how long the conversation stays claimed if the execution dies.
	Lease time.Duration
}

// Admit counts the request in the hour's window, counts the execution as
// running and claims the conversation, in one transaction. Errors: Conflict
// when the conversation moved on or another execution holds it; Unavailable
// when DynamoDB cannot be reached (fail closed).
func (t *TenantStore) Admit(ctx context.Context, a Admission) error {
	hour := a.Now.UTC().Truncate(time.Hour)
	writes := []types.TransactWriteItem{
		{Update: &types.Update{
			TableName: aws.String(t.s.table), Key: key(t.pk, hourSK(bulkhead.HourKey(hour))),
			UpdateExpression:          aws.String("ADD requests :one SET expires_at = :exp"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":one": num(1), ":exp": num(hour.Add(hourTTL).Unix())},
		}},
		{Update: &types.Update{
			TableName: aws.String(t.s.table), Key: key(t.pk, skLive),
			UpdateExpression:          aws.String("ADD running :one"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":one": num(1)},
		}},
	}
	if c := a.Conversation; c != nil {
		writes = append(writes, types.TransactWriteItem{Update: &types.Update{
			TableName: aws.String(t.s.table), Key: key(t.pk, convSK(c.ID)),
			UpdateExpression:          aws.String("SET busy_exec = :eid, busy_until = :until"),
			ConditionExpression:       aws.String("turns = :turns AND (attribute_not_exists(busy_exec) OR busy_until < :now)"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":eid": str(a.ExecutionID), ":until": num(a.Now.Add(a.Lease).Unix()), ":turns": num(c.Turns), ":now": num(a.Now.Unix())},
		}})
	}
	_, err := t.s.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: writes})
	return translate("admit execution", err, bulkhead.Conflict, "conversation is busy with another execution; retry when it finishes")
}

// Settlement is the outcome of an execution to record.
type Settlement struct {
	Execution bulkhead.Execution
	// Turn is set when the execution wrote a turn to the transcript.
	Turn *SettledTurn
	// Claimed says whether Admit claimed an existing conversation (to release it).
	Claimed bool
}

// SettledTurn is the transcript change of a settled execution.
type SettledTurn struct {
	// New is true when this turn starts the conversation.
	New       bool
	AgentID   string
	Bytes     int64
	CreatedAt time.Time
}

type execItem struct {
	PK             string    `dynamodbav:"PK"`
	SK             string    `dynamodbav:"SK"`
	ExecutionID    string    `dynamodbav:"execution_id"`
	AgentID        string    `dynamodbav:"agent_id"`
	ConversationID string    `dynamodbav:"conversation_id"`
	Model          string    `dynamodbav:"model"`
	Status         string    `dynamodbav:"status"`
	InputTokens    int64     `dynamodbav:"input_tokens"`
	OutputTokens   int64     `dynamodbav:"output_tokens"`
	CostMicros     int64     `dynamodbav:"cost_micros"`
	Month          string    `dynamodbav:"month"`
	StartedAt      time.Time `dynamodbav:"started_at"`
	FinishedAt     time.Time `dynamodbav:"finished_at"`
}

func (r execItem) execution() bulkhead.Execution {
	return bulkhead.Execution{ID: r.ExecutionID, AgentID: r.AgentID, ConversationID: r.ConversationID, Model: r.Model,
		Status: r.Status, InputTokens: r.InputTokens, OutputTokens: r.OutputTokens, Cost: bulkhead.Micros(r.CostMicros),
		StartedAt: r.StartedAt, FinishedAt: r.FinishedAt}
}

// Settle records an execution exactly once: its usage record, the month's
// token and spend counters, the running count, the tenant's stored bytes and
// the conversation head move together in one transaction, so the counters
// always equal the sum of the records. Settling an execution again changes
// nothing. If the conversation claim was lost (the lease ran out and another
// execution took it), usage is still recorded and Conflict is returned.
func (t *TenantStore) Settle(ctx context.Context, st Settlement) error {
	e := st.Execution
	rec := execItem{PK: t.pk, SK: execSK(e.ID), ExecutionID: e.ID, AgentID: e.AgentID, ConversationID: e.ConversationID,
		Model: e.Model, Status: e.Status, InputTokens: e.InputTokens, OutputTokens: e.OutputTokens, CostMicros: int64(e.Cost),
		Month: bulkhead.MonthKey(e.StartedAt), StartedAt: e.StartedAt, FinishedAt: e.FinishedAt}
	recAV, err := attributevalue.MarshalMap(rec)
	if err != nil {
		return err
	}
	var bytes int64
	if st.Turn != nil {
		bytes = st.Turn.Bytes
	}
	tokens := e.InputTokens + e.OutputTokens
	writes := []types.TransactWriteItem{
		{Put: &types.Put{TableName: aws.String(t.s.table), Item: recAV, ConditionExpression: aws.String("attribute_not_exists(PK)")}},
		{Update: &types.Update{
			TableName: aws.String(t.s.table), Key: key(t.pk, monthSK(rec.Month)),
			UpdateExpression: aws.String("ADD tokens :tok, input_tokens :in, output_tokens :out, spend_micros :cost, executions :one"),
			ExpressionAttributeValues: map[string]types.AttributeValue{
				":tok": num(tokens), ":in": num(e.InputTokens), ":out": num(e.OutputTokens), ":cost": num(int64(e.Cost)), ":one": num(1)},
		}},
		{Update: &types.Update{
			TableName: aws.String(t.s.table), Key: key(t.pk, skLive),
			UpdateExpression:          aws.String("ADD running :neg, storage_bytes :bytes"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":neg": num(-1), ":bytes": num(bytes)},
		}},
	}
	convIdx := len(writes)
	if conv := t.settleConversation(st, tokens, bytes); conv != nil {
		writes = append(writes, *conv)
	}
	_, err = t.s.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: writes})
	if err == nil {
		return nil
	}
	reasons := cancelReasons(err)
	if len(reasons) > 0 && reasons[0] == "ConditionalCheckFailed" {
		return nil // already settled: exactly once
	}
	if len(reasons) > convIdx && reasons[convIdx] == "ConditionalCheckFailed" {
		// The claim was lost: the tokens were still used, so meter them
		// without touching the conversation, whose head does not count this
		// turn's bytes either.
		writes = slices.Delete(writes, convIdx, convIdx+1)
		writes[2].Update.ExpressionAttributeValues[":bytes"] = num(0)
		if _, err2 := t.s.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: writes}); err2 != nil {
			r2 := cancelReasons(err2)
			if len(r2) == 0 || r2[0] != "ConditionalCheckFailed" {
				return translate("settle execution "+e.ID, err2, bulkhead.Internal, "")
			}
		}
		return bulkhead.Errorf(bulkhead.Conflict, "conversation %s was taken over by another execution; this reply was metered but not saved", e.ConversationID)
	}
	return translate("settle execution "+e.ID, err, bulkhead.Internal, "")
}

// settleConversation is the conversation head's part of a settlement.
func (t *TenantStore) settleConversation(st Settlement, tokens, bytes int64) *types.TransactWriteItem {
	e := st.Execution
	switch {
	case st.Turn != nil && st.Turn.New:
		av, err := attributevalue.MarshalMap(convItem{PK: t.pk, SK: convSK(e.ConversationID), ConversationID: e.ConversationID,
			AgentID: st.Turn.AgentID, Turns: 1, Tokens: tokens, Bytes: bytes, CreatedAt: st.Turn.CreatedAt, UpdatedAt: e.FinishedAt})
		if err != nil {
			return nil
		}
		return &types.TransactWriteItem{Put: &types.Put{TableName: aws.String(t.s.table), Item: av,
			ConditionExpression: aws.String("attribute_not_exists(PK)")}}
	case st.Turn != nil:
		updated, _ := attributevalue.Marshal(e.FinishedAt)
		return &types.TransactWriteItem{Update: &types.Update{
			TableName: aws.String(t.s.table), Key: key(t.pk, convSK(e.ConversationID)),
			UpdateExpression:          aws.String("SET turns = turns + :one, updated_at = :upd, busy_until = :free ADD tokens :tok, #b :bytes"),
			ConditionExpression:       aws.String("busy_exec = :eid"),
			ExpressionAttributeNames:  map[string]string{"#b": "bytes"},
			ExpressionAttributeValues: map[string]types.AttributeValue{":one": num(1), ":upd": updated, ":free": num(0), ":tok": num(tokens), ":bytes": num(bytes), ":eid": str(e.ID)},
		}}
	case st.Claimed:
		return &types.TransactWriteItem{Update: &types.Update{
			TableName: aws.String(t.s.table), Key: key(t.pk, convSK(e.ConversationID)),
			UpdateExpression:          aws.String("SET busy_until = :free"),
			ConditionExpression:       aws.String("busy_exec = :eid"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":free": num(0), ":eid": str(e.ID)},
		}}
	}
	return nil
}

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
	var hour struct {
		Requests int64 `dynamodbav:"requests"`
	}
	var month struct {
		Tokens       int64 `dynamodbav:"tokens"`
		InputTokens  int64 `dynamodbav:"input_tokens"`
		OutputTokens int64 `dynamodbav:"output_tokens"`
		Spend        int64 `dynamodbav:"spend_micros"`
		Executions   int64 `dynamodbav:"executions"`
	}
	var live struct {
		Running      int64 `dynamodbav:"running"`
		StorageBytes int64 `dynamodbav:"storage_bytes"`
	}
	for i, dst := range []any{&hour, &month, &live} {
		if item := out.Responses[i].Item; item != nil {
			if err := attributevalue.UnmarshalMap(item, dst); err != nil {
				return bulkhead.Usage{}, err
			}
		}
	}
	return bulkhead.Usage{
		RequestsThisHour: hour.Requests, TokensThisMonth: month.Tokens, InputTokens: month.InputTokens,
		OutputTokens: month.OutputTokens, SpendThisMonth: bulkhead.Micros(month.Spend), Executions: month.Executions,
		Running: live.Running, StorageBytes: live.StorageBytes,
	}, nil
}

// ListExecutions pages through this tenant's usage records.
func (t *TenantStore) ListExecutions(ctx context.Context, cursor string, limit int) (bulkhead.Page[bulkhead.Execution], error) {
	return listPage(ctx, t.s, "list executions", t.pk, prefixExec, cursor, limit, nil, execItem.execution)
}
