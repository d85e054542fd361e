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

// BreakerState is a tenant's circuit breaker as stored on its LIVE item.
type BreakerState struct {
	// OpenUntil is when it half-opens; zero when it has never been open.
	OpenUntil time.Time
	OpenedAt  time.Time
	Reason    string
	// Since is where its error and spend windows start (the last reset).
	Since time.Time
}

// State names the breaker's state at now.
func (b BreakerState) State(now time.Time) string {
	switch {
	case b.OpenUntil.IsZero():
		return "closed"
	case now.Before(b.OpenUntil):
		return "open"
	default:
		return "half_open"
	}
}

// ExecutionContext is everything an execution reads before it is admitted,
// fetched in one round trip.
type ExecutionContext struct {
	Tenant       bulkhead.Tenant
	Agent        bulkhead.Agent
	Conversation *bulkhead.Conversation // nil when none was asked for
	Breaker      BreakerState
	// Counter is what admission needs to know of the counter item as read.
	Counter CounterState
}

// LoadExecution reads the tenant, the agent, the conversation (if cid is
// not empty) and the breaker in one strongly consistent batch read.
// Errors: NotFound (agent, conversation, tenant), Unavailable.
func (t *TenantStore) LoadExecution(ctx context.Context, aid, cid string) (ExecutionContext, error) {
	keys := []map[string]types.AttributeValue{key(t.pk, skProfile), key(t.pk, agentSK(aid)), key(t.pk, skLive)}
	if cid != "" {
		keys = append(keys, key(t.pk, convSK(cid)))
	}
	items := map[string]map[string]types.AttributeValue{}
	req := map[string]types.KeysAndAttributes{t.s.table: {Keys: keys, ConsistentRead: aws.Bool(true)}}
	for len(req) > 0 {
		out, err := t.s.db.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: req})
		if err != nil {
			return ExecutionContext{}, translate("load execution", err, bulkhead.Internal, "")
		}
		for _, it := range out.Responses[t.s.table] {
			if sk, ok := it[attrSK].(*types.AttributeValueMemberS); ok {
				items[sk.Value] = it
			}
		}
		req = out.UnprocessedKeys
	}
	var ec ExecutionContext
	var prof tenantItem
	if it := items[skProfile]; it == nil {
		return ec, bulkhead.Errorf(bulkhead.NotFound, "tenant not found")
	} else if err := attributevalue.UnmarshalMap(it, &prof); err != nil {
		return ec, fmt.Errorf("load execution: decode tenant: %w", err)
	}
	ec.Tenant = prof.tenant()
	var ag agentItem
	if it := items[agentSK(aid)]; it == nil {
		return ec, bulkhead.Errorf(bulkhead.NotFound, "agent %s not found", aid)
	} else if err := attributevalue.UnmarshalMap(it, &ag); err != nil {
		return ec, fmt.Errorf("load execution: decode agent: %w", err)
	}
	ec.Agent = ag.agent()
	if cid != "" {
		var cv convItem
		if it := items[convSK(cid)]; it == nil {
			return ec, bulkhead.Errorf(bulkhead.NotFound, "conversation %s not found", cid)
		} else if err := attributevalue.UnmarshalMap(it, &cv); err != nil {
			return ec, fmt.Errorf("load execution: decode conversation: %w", err)
		} else if cv.Deleting != 0 {
			return ec, bulkhead.Errorf(bulkhead.NotFound, "conversation %s not found", cid)
		}
		c := cv.conversation()
		ec.Conversation = &c
	}
	ec.Breaker = breakerFrom(items[skLive])
	ec.Counter = counterState(items[skLive], t.s.now().UTC())
	return ec, nil
}

func breakerFrom(live map[string]types.AttributeValue) BreakerState {
	var b BreakerState
	unix := func(name string) time.Time {
		if v := intAttr(live, name); v > 0 {
			return time.Unix(v, 0).UTC()
		}
		return time.Time{}
	}
	b.OpenUntil, b.OpenedAt, b.Since = unix("breaker_open_until"), unix("breaker_opened_at"), unix("breaker_since")
	if s, ok := live["breaker_reason"].(*types.AttributeValueMemberS); ok {
		b.Reason = s.Value
	}
	return b
}

// Breaker reads the tenant's circuit breaker.
func (t *TenantStore) Breaker(ctx context.Context) (BreakerState, error) {
	out, err := t.s.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(t.s.table), Key: key(t.pk, skLive), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return BreakerState{}, translate("read breaker", err, bulkhead.Internal, "")
	}
	return breakerFrom(out.Item), nil
}

// farFuture keeps an operator-opened breaker open until it is reset.
var farFuture = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)

// TripBreaker opens the breaker until until (the zero time: until an
// operator resets it). The windows restart when it half-opens. prev, when
// not nil, makes the trip conditional on the breaker still being as read,
// so that concurrent evaluations open it once.
func (t *TenantStore) TripBreaker(ctx context.Context, now, until time.Time, reason string, prev *BreakerState) (bool, error) {
	if until.IsZero() {
		until = farFuture
	}
	in := &dynamodb.UpdateItemInput{
		TableName: aws.String(t.s.table), Key: key(t.pk, skLive),
		UpdateExpression:          aws.String("SET breaker_open_until = :until, breaker_opened_at = :now, breaker_reason = :reason, breaker_since = :until"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":until": num(until.Unix()), ":now": num(now.Unix()), ":reason": str(reason)},
	}
	if prev != nil {
		in.ConditionExpression = aws.String("attribute_not_exists(breaker_open_until) OR breaker_open_until = :prev")
		in.ExpressionAttributeValues[":prev"] = num(unixOrZero(prev.OpenUntil))
	}
	_, err := t.s.db.UpdateItem(ctx, in)
	if err := translate("trip breaker", err, bulkhead.Conflict, "breaker changed"); err != nil {
		if bulkhead.IsCode(err, bulkhead.Conflict) {
			return false, nil
		}
		return false, err
	}
	return true, nil
}

// ResetBreaker closes the breaker and restarts its windows at now. prev,
// when not nil, makes it conditional on the breaker still being as read.
func (t *TenantStore) ResetBreaker(ctx context.Context, now time.Time, prev *BreakerState) (bool, error) {
	in := &dynamodb.UpdateItemInput{
		TableName: aws.String(t.s.table), Key: key(t.pk, skLive),
		UpdateExpression:          aws.String("SET breaker_open_until = :zero, breaker_since = :now, breaker_reason = :none"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":zero": num(0), ":now": num(now.Unix()), ":none": str("")},
	}
	if prev != nil {
		in.ConditionExpression = aws.String("breaker_open_until = :prev")
		in.ExpressionAttributeValues[":prev"] = num(unixOrZero(prev.OpenUntil))
	}
	_, err := t.s.db.UpdateItem(ctx, in)
	if err := translate("reset breaker", err, bulkhead.Conflict, "breaker changed"); err != nil {
		if bulkhead.IsCode(err, bulkhead.Conflict) {
			return false, nil
		}
		return false, err
	}
	return true, nil
}

func unixOrZero(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}

// Window is what the breaker's buckets say about recent executions.
type Window struct {
	OK, Errors int64
	Spend      bulkhead.Micros
}

// BreakerWindows sums the breaker's 10-second buckets: executions over the
// last errorWindow and spend over the last spendWindow, counting nothing
// before since (the breaker's last reset).
func (t *TenantStore) BreakerWindows(ctx context.Context, now, since time.Time, errorWindow, spendWindow time.Duration) (errs, spend Window, err error) {
	slot := int64(breakerSlot / time.Second)
	last := now.Unix() / slot
	n := int64(max(errorWindow, spendWindow) / breakerSlot)
	first := max(last-n+1, (since.Unix()+slot-1)/slot)
	if since.IsZero() {
		first = last - n + 1
	}
	var keys []map[string]types.AttributeValue
	for s := first; s <= last; s++ {
		keys = append(keys, key(t.pk, bucketSK(s)))
	}
	if len(keys) == 0 {
		return
	}
	req := map[string]types.KeysAndAttributes{t.s.table: {Keys: keys, ConsistentRead: aws.Bool(true)}}
	errFrom := last - int64(errorWindow/breakerSlot) + 1
	spendFrom := last - int64(spendWindow/breakerSlot) + 1
	for len(req) > 0 {
		out, berr := t.s.db.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: req})
		if berr != nil {
			return errs, spend, translate("read breaker windows", berr, bulkhead.Internal, "")
		}
		for _, it := range out.Responses[t.s.table] {
			sk, _ := it[attrSK].(*types.AttributeValueMemberS)
			if sk == nil {
				continue
			}
			var s int64
			fmt.Sscanf(idFromSK(sk.Value, prefixBucket), "%d", &s)
			if s >= errFrom {
				errs.OK += intAttr(it, "ok")
				errs.Errors += intAttr(it, "errors")
			}
			if s >= spendFrom {
				spend.Spend = bulkhead.Micros(bulkhead.AddSat(int64(spend.Spend), intAttr(it, "spend_micros")))
			}
		}
		req = out.UnprocessedKeys
	}
	return errs, spend, nil
}
