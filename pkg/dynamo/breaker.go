package dynamo

import (
	"context"
	"fmt"
	"strings"
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
		UpdateExpression: aws.String("SET breaker_open_until = :until, breaker_opened_at = :now, breaker_reason = :reason, breaker_since = :until, " +
			breakerBaseUpdate),
		ExpressionAttributeValues: map[string]types.AttributeValue{":until": num(until.Unix()), ":now": num(now.Unix()), ":reason": str(reason), ":zero": num(0)},
	}
	if prev != nil {
		in.ConditionExpression = aws.String("attribute_not_exists(breaker_open_until) OR breaker_open_until = :prev")
		in.ExpressionAttributeValues[":prev"] = num(unixOrZero(prev.OpenUntil))
	}
	changes := map[string]bulkhead.Change{"state": {After: "open"}, "reason": {After: reason}}
	if until != farFuture {
		changes["open_until"] = bulkhead.Change{After: until.UTC().Format(time.RFC3339)}
	}
	err := t.s.transactAudited(ctx, auditOp{tenant: t.tid, action: bulkhead.ActionBreakerTripped, target: "circuit_breaker", changes: changes},
		updateWrite(in))
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
		UpdateExpression:          aws.String("SET breaker_open_until = :zero, breaker_since = :now, breaker_reason = :none, " + breakerBaseUpdate),
		ExpressionAttributeValues: map[string]types.AttributeValue{":zero": num(0), ":now": num(now.Unix()), ":none": str("")},
	}
	if prev != nil {
		in.ConditionExpression = aws.String("breaker_open_until = :prev")
		in.ExpressionAttributeValues[":prev"] = num(unixOrZero(prev.OpenUntil))
	}
	err := t.s.transactAudited(ctx, auditOp{tenant: t.tid, action: bulkhead.ActionBreakerReset, target: "circuit_breaker",
		changes: map[string]bulkhead.Change{"state": {After: "closed"}}}, updateWrite(in))
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

// Window is what the breaker's counts say about recent executions.
type Window struct {
	OK, Errors int64
	Spend      bulkhead.Micros
}

func (w Window) minus(o Window) Window {
	return Window{OK: w.OK - o.OK, Errors: w.Errors - o.Errors, Spend: w.Spend - o.Spend}
}

// The circuit breaker's counts. Every settlement adds its outcome to running
// totals on the counter item (brk_ok, brk_errors, brk_spend: no item of its
// own, so no write of its own). A window is the totals now minus the totals
// at its start, which come from checkpoints: the breaker's checks (at most
// every few seconds per tenant and process, and after a failure) copy the
// totals into a ring of 100 small items (LIVE#BRK#nn, one per 10-second
// slot, nn the slot modulo 100: 1,000 s, longer than the longest window),
// at most one per slot. The window starts at the newest checkpoint taken
// at or before its nominal start, or at the breaker's last reset (whose
// totals the reset copies to brk_base_*), whichever is later; before any
// checkpoint it starts at zero. A window is so up to one slot longer than
// asked, never shorter, and idle time costs nothing: the totals do not move.
const (
	breakerSlot      = 10 * time.Second
	breakerRing      = 100
	skBreakerPrefix  = skLive + "#BRK#"
	attrBrkOK        = "brk_ok"
	attrBrkErrors    = "brk_errors"
	attrBrkSpend     = "brk_spend"
	attrBrkBaseOK    = "brk_base_ok"
	attrBrkBaseErr   = "brk_base_errors"
	attrBrkBaseSpend = "brk_base_spend"
	attrCheckpointAt = "at"
	attrCheckpointSl = "slot"
)

func breakerCheckpointSK(slot int64) string {
	return fmt.Sprintf("%s%02d", skBreakerPrefix, slot%breakerRing)
}

func totalsOf(item map[string]types.AttributeValue, ok, errs, spend string) Window {
	return Window{OK: intAttr(item, ok), Errors: intAttr(item, errs), Spend: bulkhead.Micros(intAttr(item, spend))}
}

// breakerBaseUpdate copies the running totals to the reset's base, in an
// update of the counter item.
const breakerBaseUpdate = "brk_base_ok = if_not_exists(brk_ok, :zero), brk_base_errors = if_not_exists(brk_errors, :zero), " +
	"brk_base_spend = if_not_exists(brk_spend, :zero)"

// BreakerWindows returns the executions that finished over the last
// errorWindow and the spend over the last spendWindow, counting nothing
// before since (the breaker's last reset): one strongly consistent Query
// reads the counter item and the checkpoints, and a checkpoint of the
// current slot is written if there is none yet.
func (t *TenantStore) BreakerWindows(ctx context.Context, now, since time.Time, errorWindow, spendWindow time.Duration) (errs, spend Window, err error) {
	const op = "read breaker windows"
	in := &dynamodb.QueryInput{
		TableName:                 aws.String(t.s.table),
		KeyConditionExpression:    aws.String("#pk = :pk AND begins_with(#sk, :live)"),
		ExpressionAttributeNames:  map[string]string{"#pk": attrPK, "#sk": attrSK},
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": str(t.pk), ":live": str(skLive)},
		ConsistentRead:            aws.Bool(true),
	}
	var live map[string]types.AttributeValue
	type checkpoint struct {
		at     int64
		totals Window
	}
	var cps []checkpoint
	newest := int64(-1)
	for {
		out, qerr := t.s.db.Query(ctx, in)
		if qerr != nil {
			return errs, spend, translate(op, qerr, bulkhead.Internal, "")
		}
		for _, it := range out.Items {
			sk, _ := it[attrSK].(*types.AttributeValueMemberS)
			switch {
			case sk == nil:
			case sk.Value == skLive:
				live = it
			case strings.HasPrefix(sk.Value, skBreakerPrefix):
				cps = append(cps, checkpoint{at: intAttr(it, attrCheckpointAt), totals: totalsOf(it, "ok", "errors", "spend")})
				newest = max(newest, intAttr(it, attrCheckpointSl))
			}
		}
		if len(out.LastEvaluatedKey) == 0 {
			break
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
	totals := totalsOf(live, attrBrkOK, attrBrkErrors, attrBrkSpend)
	window := func(w time.Duration) Window {
		start := now.Add(-w).Unix()
		var base Window
		baseAt := int64(-1)
		for _, c := range cps {
			if c.at <= start && c.at > baseAt {
				base, baseAt = c.totals, c.at
			}
		}
		if !since.IsZero() && since.Unix() > baseAt && since.Unix() <= now.Unix() {
			base = totalsOf(live, attrBrkBaseOK, attrBrkBaseErr, attrBrkBaseSpend)
		}
		return totals.minus(base)
	}
	errs, spend = window(errorWindow), window(spendWindow)

	if slot := now.Unix() / int64(breakerSlot/time.Second); newest < slot {
		_, perr := t.s.db.PutItem(ctx, &dynamodb.PutItemInput{
			TableName: aws.String(t.s.table),
			Item: map[string]types.AttributeValue{attrPK: str(t.pk), attrSK: str(breakerCheckpointSK(slot)),
				attrCheckpointSl: num(slot), attrCheckpointAt: num(now.Unix()),
				"ok": num(totals.OK), "errors": num(totals.Errors), "spend": num(int64(totals.Spend))},
			ConditionExpression:       aws.String("attribute_not_exists(#slot) OR #slot < :slot"),
			ExpressionAttributeNames:  map[string]string{"#slot": attrCheckpointSl},
			ExpressionAttributeValues: map[string]types.AttributeValue{":slot": num(slot)},
		})
		if perr := translate("write breaker checkpoint", perr, bulkhead.Conflict, ""); perr != nil && !bulkhead.IsCode(perr, bulkhead.Conflict) {
			return errs, spend, perr
		}
	}
	return errs, spend, nil
}

// updateWrite is an UpdateItem as a transaction's write.
func updateWrite(in *dynamodb.UpdateItemInput) types.TransactWriteItem {
	return types.TransactWriteItem{Update: &types.Update{TableName: in.TableName, Key: in.Key, UpdateExpression: in.UpdateExpression,
		ConditionExpression: in.ConditionExpression, ExpressionAttributeNames: in.ExpressionAttributeNames,
		ExpressionAttributeValues: in.ExpressionAttributeValues}}
}
