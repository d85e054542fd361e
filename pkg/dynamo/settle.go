package dynamo

import (
	"context"
	"fmt"
	"maps"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/bulkhead-dev/bulkhead/pkg/bulkhead"
)

// Settlement is the outcome of an execution to record.
type Settlement struct {
	Execution bulkhead.Execution
	// Reserved is what Admit reserved for it.
	Reserved Reservation
	// Turn is set when the execution wrote a turn to the transcript.
	Turn *SettledTurn
	// Claimed says whether Admit claimed an existing conversation (to release it).
	Claimed bool
	// Idem, when set, stores the request's idempotent result with the charge.
	Idem *IdemCompletion
	// Tier is the tenant's tier when the execution ran; the month keeps the
	// set of tiers it saw, for billing.
	Tier bulkhead.TierName
	// Log is the execution's steps: stored on its usage record (compressed,
	// at most bulkhead.MaxExecLogBytes) and counted as stored bytes.
	Log []bulkhead.LogStep
}

// SettledTurn is the transcript change of a settled execution.
type SettledTurn struct {
	// New is true when this turn starts the conversation.
	New       bool
	AgentID   string
	Bytes     int64
	CreatedAt time.Time
	// Number is the turn's number in the conversation (1 for a new one).
	Number int64
	// Messages is the turn as a JSON message array when it is kept inline
	// (at most InlineTurnBytes): it is written in the settlement. A larger
	// turn (nil here) was written to its object before.
	Messages []byte
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
	ToolCalls      int64     `dynamodbav:"tool_calls,omitempty"`
	Month          string    `dynamodbav:"month"`
	StartedAt      time.Time `dynamodbav:"started_at"`
	FinishedAt     time.Time `dynamodbav:"finished_at"`
}

func (r execItem) execution() bulkhead.Execution {
	return bulkhead.Execution{ID: r.ExecutionID, AgentID: r.AgentID, ConversationID: r.ConversationID, Model: r.Model,
		Status: r.Status, InputTokens: r.InputTokens, OutputTokens: r.OutputTokens, Cost: bulkhead.Micros(r.CostMicros),
		StartedAt: r.StartedAt, FinishedAt: r.FinishedAt, ToolCallCount: r.ToolCalls}
}

// Indexes of the settlement transaction's items.
const (
	setLive = iota
	setRecord
	setConv
)

// failedForBreaker says whether an execution counts as an error for the
// circuit breaker: platform and model failures and wall-time overruns, not
// refusals and not guards the tenant configured.
func failedForBreaker(status string) bool { return bulkhead.FailedForBreaker(status) }

// Settle records an execution exactly once. In one transaction: its lease
// leaves the counter item, its usage record is written, the month's
// counters move by what it used (and its reservation is released), the
// running count, stored bytes, the circuit breaker's bucket, the
// conversation head and its claim move with them, and an inline turn is
// written. So the counters always equal the sum of the records, and
// committed returns to used. Settling again changes nothing. If the lease
// was already reclaimed (the execution outlived it), what was used is still
// recorded, without a reservation to release. If the conversation claim was
// lost, or the turn is no longer the next one, usage is recorded and
// Conflict is returned.
func (t *TenantStore) Settle(ctx context.Context, st Settlement) error {
	writes, err := t.settleWrites(st, true)
	if err != nil {
		return err
	}
	_, err = t.s.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: writes,
		ClientRequestToken: st.token(true)})
	if err == nil {
		st.Idem.markStored()
		return nil
	}
	reasons := cancelReasons(err)
	if len(reasons) == 0 {
		return translate("settle execution "+st.Execution.ID, err, bulkhead.Internal, "")
	}
	if fails(reasons, setRecord) {
		return nil // settled already
	}
	if fails(reasons, setLive) {
		if items := cancelItems(err); st.Claimed && setLive < len(items) && leaseHeld(items[setLive], st.Execution.ID) {
			// The lease is ours but the claim passed to another execution.
			st.Turn, st.Claimed = nil, false
			if err := t.Settle(ctx, st); err != nil {
				return err
			}
			return lostConversation(st)
		}
		// Either already settled (the record exists), or the lease was
		// reclaimed while the execution still ran. Only the record tells.
		if _, gerr := getItem[execItem](ctx, t.s, "settle execution", t.pk, execSK(st.Execution.StartedAt, st.Execution.ID), ""); gerr == nil {
			return nil
		} else if !bulkhead.IsCode(gerr, bulkhead.NotFound) {
			return gerr
		}
		return t.settleLate(ctx, st)
	}
	if fails(reasons, setConv) && st.Turn != nil {
		// The conversation is being deleted, or its turn was taken: release
		// the claim and record the charge without the turn.
		st.Turn = nil
		if err := t.Settle(ctx, st); err != nil {
			return err
		}
		return lostConversation(st)
	}
	if n := len(writes) - 1; st.Idem != nil && !st.idemOnRecord() && fails(reasons, n) {
		// The key's claim was taken over (its lock passed): record the
		// charge without the result.
		st.Idem = nil
		return t.Settle(ctx, st)
	}
	return translate("settle execution "+st.Execution.ID, err, bulkhead.Internal, "")
}

func lostConversation(st Settlement) error {
	return bulkhead.Errorf(bulkhead.Conflict, "conversation %s was taken over by another execution; this reply was metered but not saved", st.Execution.ConversationID)
}

// leaseHeld reports whether a counter item holds execution eid's lease, not
// reclaimed.
func leaseHeld(live map[string]types.AttributeValue, eid string) bool {
	m, ok := live[leaseAttr(eid)].(*types.AttributeValueMemberM)
	return ok && !boolAttr(m.Value, leaseAbandon)
}

// settleLate records an execution whose lease was reclaimed: its reservation
// and slot were already given back, so only its use moves the counters.
func (t *TenantStore) settleLate(ctx context.Context, st Settlement) error {
	st.Turn, st.Claimed = nil, false
	writes, err := t.settleWrites(st, false)
	if err != nil {
		return err
	}
	_, err = t.s.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: writes,
		ClientRequestToken: st.token(false)})
	if err == nil {
		st.Idem.markStored()
		return nil
	}
	reasons := cancelReasons(err)
	switch {
	case fails(reasons, setRecord):
		return nil // the record exists: a concurrent late settle won
	case st.Idem != nil && !st.idemOnRecord() && fails(reasons, len(writes)-1):
		st.Idem = nil // the key's claim was taken over
		return t.settleLate(ctx, st)
	}
	return translate("settle execution "+st.Execution.ID, err, bulkhead.Internal, "")
}

// token is the settlement transaction's ClientRequestToken. Each variant of
// the settlement (with or without the lease, the turn, the claim, the
// idempotent result) is a different transaction and gets its own token; a
// retry of the same variant gets the same one.
func (st Settlement) token(withLease bool) *string {
	return requestToken(st.Execution.ID, "settle", boolTag(withLease), boolTag(st.Turn != nil), boolTag(st.Claimed), boolTag(st.Idem != nil))
}

// idemOnRecord says whether the settlement stores its idempotent result on
// the usage record: when the key was claimed for this execution.
func (st Settlement) idemOnRecord() bool {
	if st.Idem == nil || st.Idem.Claim.Execution == nil {
		return false
	}
	ref := st.Idem.Claim.Execution
	return ref.ID == st.Execution.ID && ref.StartedAt.Equal(st.Execution.StartedAt)
}

func fails(reasons []string, i int) bool {
	return i < len(reasons) && reasons[i] == "ConditionalCheckFailed"
}

// settleWrites builds the settlement; withLease false leaves out the lease
// and the reservation (already given back by a reclaim).
func (t *TenantStore) settleWrites(st Settlement, withLease bool) ([]types.TransactWriteItem, error) {
	e := st.Execution
	rec := execItem{PK: t.pk, SK: execSK(e.StartedAt, e.ID), ExecutionID: e.ID, AgentID: e.AgentID, ConversationID: e.ConversationID,
		Model: e.Model, Status: e.Status, InputTokens: e.InputTokens, OutputTokens: e.OutputTokens, CostMicros: int64(e.Cost),
		Month: bulkhead.MonthKey(e.StartedAt), StartedAt: e.StartedAt, FinishedAt: e.FinishedAt,
		ToolCalls: max(e.ToolCallCount, int64(len(e.ToolCalls)))}
	recAV, err := attributevalue.MarshalMap(rec)
	if err != nil {
		return nil, err
	}
	if st.idemOnRecord() {
		// The key's result goes on the record, in no item of its own.
		res, err := resultAttrs(st.Idem)
		if err != nil {
			return nil, err
		}
		maps.Copy(recAV, res)
	}
	logAV, logBytes, err := logAttr(st.Log)
	if err != nil {
		return nil, fmt.Errorf("encode the log of %s: %w", e.ID, err)
	}
	if logAV != nil {
		recAV[attrLog] = logAV
	}
	var bytes int64
	if st.Turn != nil {
		bytes = st.Turn.Bytes
	}
	tokens := e.InputTokens + e.OutputTokens
	res := st.Reserved
	running := int64(-1)
	if !withLease {
		res, running = Reservation{}, 0
	}
	okCount, errCount := int64(1), int64(0)
	if failedForBreaker(e.Status) {
		okCount, errCount = 0, 1
	}
	m := monthAttrs(rec.Month)
	names := map[string]string{"#ct": commitTokAttr(rec.Month), "#cs": commitSpAttr(rec.Month),
		"#tok": m[0], "#in": m[1], "#out": m[2], "#sp": m[3], "#ex": m[4], "#tiers": m[5]}
	// The storage counters hold the turn's bytes and the log's; the
	// conversation head only the turn's (deleting the conversation gives
	// those back).
	stored := bytes + logBytes
	values := map[string]types.AttributeValue{":run": num(running), ":bytes": num(stored), ":db": num(stored - res.Bytes),
		":dt": num(tokens - res.Tokens), ":ds": num(int64(e.Cost - res.Spend)),
		":tok": num(tokens), ":in": num(e.InputTokens), ":out": num(e.OutputTokens), ":cost": num(int64(e.Cost)), ":one": num(1),
		":tier": tierSet(st.Tier), ":ok": num(okCount), ":err": num(errCount)}
	live := &types.Update{TableName: aws.String(t.s.table), Key: key(t.pk, skLive),
		UpdateExpression: aws.String("ADD running :run, storage_bytes :bytes, storage_committed :db, #ct :dt, #cs :ds, " +
			"#tok :tok, #in :in, #out :out, #sp :cost, #ex :one, #tiers :tier, brk_ok :ok, brk_errors :err, brk_spend :cost"),
		ExpressionAttributeNames: names, ExpressionAttributeValues: values}
	if t := st.Turn; t != nil && (t.New || t.Number > 0) {
		// Remember the conversation's new turn count for admission.
		turns := t.Number
		if t.New {
			turns = 1
		}
		names["#turns"], values[":turns"] = turnsSlot(e.ConversationID), str(turnsValue(e.ConversationID, turns))
		live.UpdateExpression = aws.String("SET #turns = :turns " + *live.UpdateExpression)
	}
	if withLease {
		// The lease goes, unless a reclaim took it (its reservation is back).
		names["#lease"], names["#ab"] = leaseAttr(e.ID), leaseAbandon
		remove, cond := "#lease", "attribute_exists(#lease) AND attribute_not_exists(#lease.#ab)"
		if st.Claimed {
			names["#conv"], names["#ce"] = claimAttr(e.ConversationID), claimExec
			values[":eid"] = str(e.ID)
			remove += ", #conv"
			cond += " AND #conv.#ce = :eid"
		}
		live.UpdateExpression = aws.String("REMOVE " + remove + " " + *live.UpdateExpression)
		live.ConditionExpression = aws.String(cond)
		live.ReturnValuesOnConditionCheckFailure = types.ReturnValuesOnConditionCheckFailureAllOld
	}
	writes := []types.TransactWriteItem{
		setLive:   {Update: live},
		setRecord: {Put: &types.Put{TableName: aws.String(t.s.table), Item: recAV, ConditionExpression: aws.String("attribute_not_exists(PK)")}},
	}
	writes = append(writes, t.settleConversation(st, tokens, bytes)...)
	if st.Turn != nil && st.Turn.Messages != nil && !inHead(st.Turn) {
		writes = append(writes, t.turnWrite(e.ConversationID, st.Turn.Number, st.Turn.Messages))
	}
	if st.Idem != nil && !st.idemOnRecord() {
		writes = append(writes, t.completionWrite(st.Idem))
	}
	return writes, nil
}

// inHead says whether a settled turn is kept in its conversation's head: a
// small first turn.
func inHead(t *SettledTurn) bool {
	return t.New && t.Messages != nil && len(t.Messages) <= HeadTurnBytes
}

// tierSet is a one-element string set (never empty: the embedded server does
// not keep empty collections); an unknown tier is recorded as such.
func tierSet(t bulkhead.TierName) types.AttributeValue {
	if t == "" {
		t = "unknown"
	}
	return &types.AttributeValueMemberSS{Value: []string{string(t)}}
}

// settleConversation is the conversation's part of a settlement: the head
// (its first item, at index setConv) and, for a new conversation, its entry
// in the agent's index, so that the index never lists a conversation that
// does not exist nor misses one that does.
func (t *TenantStore) settleConversation(st Settlement, tokens, bytes int64) []types.TransactWriteItem {
	e := st.Execution
	switch {
	case st.Turn != nil && st.Turn.New:
		head := convItem{PK: t.pk, SK: convSK(e.ConversationID), ConversationID: e.ConversationID,
			AgentID: st.Turn.AgentID, Turns: 1, Tokens: tokens, Bytes: bytes, CreatedAt: st.Turn.CreatedAt, UpdatedAt: e.FinishedAt}
		if inHead(st.Turn) {
			head.FirstTurn = string(st.Turn.Messages)
		}
		writes, err := t.newConversationWrites(head)
		if err != nil {
			return nil
		}
		return writes
	case st.Turn != nil:
		updated, _ := attributevalue.Marshal(e.FinishedAt)
		// The claim (on the counter item) makes the turn this execution's;
		// the head checks that it is still the next one and that the
		// conversation is not being deleted.
		u := &types.Update{
			TableName: aws.String(t.s.table), Key: key(t.pk, convSK(e.ConversationID)),
			UpdateExpression:          aws.String("SET turns = turns + :one, updated_at = :upd ADD tokens :tok, #b :bytes"),
			ConditionExpression:       aws.String("attribute_exists(PK) AND attribute_not_exists(deleting)"),
			ExpressionAttributeNames:  map[string]string{"#b": "bytes"},
			ExpressionAttributeValues: map[string]types.AttributeValue{":one": num(1), ":upd": updated, ":tok": num(tokens), ":bytes": num(bytes)},
		}
		if st.Turn.Number > 0 {
			u.ConditionExpression = aws.String("turns = :prev AND attribute_not_exists(deleting)")
			u.ExpressionAttributeValues[":prev"] = num(st.Turn.Number - 1)
		}
		return []types.TransactWriteItem{{Update: u}}
	}
	return nil
}
