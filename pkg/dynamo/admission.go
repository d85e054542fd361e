package dynamo

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/bulkhead-dev/bulkhead/pkg/bulkhead"
)

// ConversationClaim names an existing conversation an execution continues,
// with the number of turns the execution read.
type ConversationClaim struct {
	ID    string
	Turns int64
}

// Reservation is what an execution holds while it runs: the most it can use.
type Reservation struct {
	Tokens int64
	Spend  bulkhead.Micros
	Bytes  int64
}

// Admission is what an execution asks for before the model runs.
type Admission struct {
	ExecutionID  string
	AgentID      string
	Conversation *ConversationClaim // nil when the execution starts a new conversation
	// ConversationID and Turn name the transcript turn the execution will
	// write (ConversationID is the new conversation's id when Conversation
	// is nil), so that a reclaim can remove it if the execution dies.
	ConversationID string
	Turn           int64
	// Attempt numbers the admission transactions of one execution (0, 1, ...):
	// each attempt is a distinct transaction with its own ClientRequestToken.
	Attempt int
	Now     time.Time
	// Lease bounds how long the execution's slot, reservation and
	// conversation claim survive if it dies; it must exceed its wall time.
	Lease   time.Duration
	Quota   bulkhead.Quota
	Reserve Reservation
}

// runItem is a running execution's lease: its concurrency slot and
// reservation, given back when it settles or, if it died, when its lease has
// expired and something needs the room.
type runItem struct {
	PK             string `dynamodbav:"PK"`
	SK             string `dynamodbav:"SK"`
	ExecutionID    string `dynamodbav:"execution_id"`
	AgentID        string `dynamodbav:"agent_id"`
	ConversationID string `dynamodbav:"conversation_id,omitempty"`
	Month          string `dynamodbav:"month"`
	ReservedTokens int64  `dynamodbav:"reserved_tokens"`
	ReservedSpend  int64  `dynamodbav:"reserved_spend_micros"`
	ReservedBytes  int64  `dynamodbav:"reserved_bytes"`
	LeaseUntil     int64  `dynamodbav:"lease_until"`
	StartedAt      string `dynamodbav:"started_at"`
	// Turn is the transcript turn the execution will write, and
	// NewConversation whether that turn starts the conversation: what a
	// reclaim must remove if the execution died between writing it and
	// settling.
	Turn            int64 `dynamodbav:"turn,omitempty"`
	NewConversation bool  `dynamodbav:"new_conversation,omitempty"`
	// Abandoned is set when the lease was reclaimed: its slot, tokens and
	// spend went back, its reserved bytes stay counted until CleanupTurn (if
	// any) is removed from the transcript and the lease is forgotten.
	Abandoned   bool  `dynamodbav:"abandoned,omitempty"`
	CleanupTurn int64 `dynamodbav:"cleanup_turn,omitempty"`
}

// Indexes of the admission transaction's items.
const (
	admRun = iota
	admHour
	admMonth
	admLive
	admConv
)

// Admit admits an execution or refuses it, in one DynamoDB transaction that
// checks every quota against counters that include the reservations of
// running executions, and moves them only if all pass:
//   - the hour's request count stays within the hourly quota;
//   - the month's committed tokens and spend plus this reservation stay
//     within the monthly limits;
//   - a concurrency slot is free, committed storage stays within the quota,
//     and the circuit breaker is not open;
//   - the conversation, if any, is not held by another execution.
//
// A refused admission changes nothing. Expired leases in the way are not
// reclaimed here: the caller reclaims them (removing their orphaned turns,
// which this store cannot reach) and admits again with the next Attempt.
// The transaction carries a ClientRequestToken, so an SDK retry of an
// admission that committed is recognised instead of failing its own
// conditions. Errors: RateLimited, QuotaExceeded, ConcurrencyLimited,
// CircuitOpen, Conflict (conversation busy), Unavailable (fail closed).
func (t *TenantStore) Admit(ctx context.Context, a Admission) error {
	if err := t.refuseUpfront(ctx, a); err != nil {
		return err
	}
	return t.admitOnce(ctx, a)
}

// Reclaimable reports whether an admission refused with err might pass once
// expired leases are reclaimed.
func Reclaimable(err error) bool {
	e := bulkhead.AsError(err)
	return e != nil && reclaimable(e.Code)
}

func reclaimable(c bulkhead.Code) bool {
	return c == bulkhead.ConcurrencyLimited || c == bulkhead.QuotaExceeded
}

// refuseUpfront refuses an execution that could not fit even in an empty
// window, without writing: its reservation exceeds the limit itself.
func (t *TenantStore) refuseUpfront(ctx context.Context, a Admission) error {
	q, r := a.Quota, a.Reserve
	switch {
	case q.MaxRequestsPerHour <= 0, q.MaxConcurrentAgents <= 0,
		r.Tokens > q.MaxTokensPerMonth, r.Spend > q.MaxSpendPerMonth, r.Bytes > q.StorageBytes():
	default:
		return nil
	}
	u, err := t.Counters(ctx, a.Now)
	if err != nil {
		return err
	}
	reasons := make([]string, admConv+1)
	reasons[admHour], reasons[admMonth], reasons[admLive] = "ConditionalCheckFailed", "ConditionalCheckFailed", "ConditionalCheckFailed"
	return quotaError(a, u, reasons)
}

func (t *TenantStore) admitOnce(ctx context.Context, a Admission) error {
	now := a.Now.UTC()
	hour := now.Truncate(time.Hour)
	month := bulkhead.MonthKey(now)
	q, r := a.Quota, a.Reserve
	run := runItem{PK: t.pk, SK: runSK(a.ExecutionID), ExecutionID: a.ExecutionID, AgentID: a.AgentID, Month: month,
		ReservedTokens: r.Tokens, ReservedSpend: int64(r.Spend), ReservedBytes: r.Bytes,
		LeaseUntil: now.Add(a.Lease).Unix(), StartedAt: now.Format(time.RFC3339Nano)}
	run.ConversationID, run.Turn, run.NewConversation = a.ConversationID, a.Turn, a.Conversation == nil && a.ConversationID != ""
	if a.Conversation != nil {
		run.ConversationID = a.Conversation.ID
	}
	runAV, err := attributevalue.MarshalMap(run)
	if err != nil {
		return err
	}
	old := types.ReturnValuesOnConditionCheckFailureAllOld
	writes := []types.TransactWriteItem{
		admRun: {Put: &types.Put{TableName: aws.String(t.s.table), Item: runAV, ConditionExpression: aws.String("attribute_not_exists(PK)")}},
		admHour: {Update: &types.Update{
			TableName: aws.String(t.s.table), Key: key(t.pk, hourSK(bulkhead.HourKey(hour))),
			UpdateExpression:                    aws.String("ADD requests :one SET expires_at = :exp"),
			ConditionExpression:                 aws.String("attribute_not_exists(requests) OR requests < :max"),
			ExpressionAttributeValues:           map[string]types.AttributeValue{":one": num(1), ":exp": num(hour.Add(hourTTL).Unix()), ":max": num(q.MaxRequestsPerHour)},
			ReturnValuesOnConditionCheckFailure: old,
		}},
		admMonth: {Update: &types.Update{
			TableName: aws.String(t.s.table), Key: key(t.pk, monthSK(month)),
			UpdateExpression: aws.String("ADD committed_tokens :rt, committed_spend_micros :rs"),
			ConditionExpression: aws.String("(attribute_not_exists(committed_tokens) OR committed_tokens <= :tmax) AND " +
				"(attribute_not_exists(committed_spend_micros) OR committed_spend_micros <= :smax)"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":rt": num(r.Tokens), ":rs": num(int64(r.Spend)),
				":tmax": num(bulkhead.SubSat(q.MaxTokensPerMonth, r.Tokens)), ":smax": num(bulkhead.SubSat(int64(q.MaxSpendPerMonth), int64(r.Spend)))},
			ReturnValuesOnConditionCheckFailure: old,
		}},
		admLive: {Update: &types.Update{
			TableName: aws.String(t.s.table), Key: key(t.pk, skLive),
			UpdateExpression: aws.String("ADD running :one, storage_committed :rb"),
			ConditionExpression: aws.String("(attribute_not_exists(running) OR running < :cmax) AND " +
				"(attribute_not_exists(storage_committed) OR storage_committed <= :bmax) AND " +
				"(attribute_not_exists(breaker_open_until) OR breaker_open_until <= :now)"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":one": num(1), ":rb": num(r.Bytes),
				":cmax": num(q.MaxConcurrentAgents), ":bmax": num(bulkhead.SubSat(q.StorageBytes(), r.Bytes)), ":now": num(now.Unix())},
			ReturnValuesOnConditionCheckFailure: old,
		}},
	}
	if c := a.Conversation; c != nil {
		writes = append(writes, types.TransactWriteItem{Update: &types.Update{
			TableName: aws.String(t.s.table), Key: key(t.pk, convSK(c.ID)),
			UpdateExpression:          aws.String("SET busy_exec = :eid, busy_until = :until"),
			ConditionExpression:       aws.String("turns = :turns AND (attribute_not_exists(busy_exec) OR busy_until < :now)"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":eid": str(a.ExecutionID), ":until": num(now.Add(a.Lease).Unix()), ":turns": num(c.Turns), ":now": num(now.Unix())},
		}})
	}
	_, err = t.s.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: writes,
		ClientRequestToken: requestToken(a.ExecutionID, "admit", strconv.Itoa(a.Attempt))})
	if err == nil {
		return nil
	}
	reasons := cancelReasons(err)
	failed := false
	for _, r := range reasons {
		failed = failed || r == "ConditionalCheckFailed"
	}
	if !failed {
		return translate("admit execution", err, bulkhead.Internal, "")
	}
	// Which limit refused, from the items as they were (ALL_OLD), in the
	// same round trip; a read fills in what the reasons do not carry.
	u, rerr := t.usageFromCancel(ctx, err, now)
	if rerr != nil {
		return rerr
	}
	return quotaError(a, u, reasons)
}

// usageFromCancel reads the counters a refusal reports. The cancelled
// transaction's old items are used where the backend returns them; a
// consistent read of the same items covers backends that do not.
func (t *TenantStore) usageFromCancel(ctx context.Context, err error, now time.Time) (bulkhead.Usage, error) {
	if u, ok := usageFromReasons(err); ok {
		return u, nil
	}
	return t.Counters(ctx, now)
}

func usageFromReasons(err error) (bulkhead.Usage, bool) {
	items := cancelItems(err)
	if len(items) <= admLive || items[admHour] == nil && items[admMonth] == nil && items[admLive] == nil {
		return bulkhead.Usage{}, false
	}
	var u bulkhead.Usage
	u.RequestsThisHour = intAttr(items[admHour], "requests")
	u.TokensThisMonth = intAttr(items[admMonth], "tokens")
	u.CommittedTokens = intAttr(items[admMonth], "committed_tokens")
	u.SpendThisMonth = bulkhead.Micros(intAttr(items[admMonth], "spend_micros"))
	u.CommittedSpend = bulkhead.Micros(intAttr(items[admMonth], "committed_spend_micros"))
	u.Running = intAttr(items[admLive], "running")
	u.StorageBytes = intAttr(items[admLive], "storage_bytes")
	u.StorageCommitted = intAttr(items[admLive], "storage_committed")
	u.BreakerOpenUntil = intAttr(items[admLive], "breaker_open_until")
	return u, true
}

func intAttr(item map[string]types.AttributeValue, name string) int64 {
	if n, ok := item[name].(*types.AttributeValueMemberN); ok {
		v, _ := strconv.ParseInt(n.Value, 10, 64)
		return v
	}
	return 0
}

// quotaError says which limit refused an admission: its type, limit, what is
// used, and when it resets, with Retry-After. The order is the order a tenant
// can act on: an open breaker first, then the hour, the month, the slots.
func quotaError(a Admission, u bulkhead.Usage, reasons []string) error {
	failed := func(i int) bool { return i < len(reasons) && reasons[i] == "ConditionalCheckFailed" }
	now := a.Now.UTC()
	q, r := a.Quota, a.Reserve
	nextHour := now.Truncate(time.Hour).Add(time.Hour)
	nextMonth := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC).AddDate(0, 1, 0)
	until := func(t time.Time) int { return max(1, int(t.Sub(now).Seconds()+0.999)) }
	mk := func(code bulkhead.Code, quotaType, msg string, limit, used any, committed any, resets time.Time, retry int) error {
		fields := map[string]any{"quota_type": quotaType, "limit": limit, "used": used}
		if committed != nil {
			fields["committed"] = committed
		}
		if !resets.IsZero() {
			fields["resets_at"] = resets.Format(time.RFC3339)
		}
		return &bulkhead.Error{Code: code, Message: msg, Fields: fields, RetryAfter: retry}
	}
	switch {
	case failed(admLive) && u.BreakerOpenUntil > now.Unix():
		openUntil := time.Unix(u.BreakerOpenUntil, 0).UTC()
		return &bulkhead.Error{Code: bulkhead.CircuitOpen, Message: "Circuit breaker open for this tenant: executions are paused",
			Fields: map[string]any{"open_until": openUntil.Format(time.RFC3339)}, RetryAfter: until(openUntil)}
	case failed(admHour) && (q.MaxRequestsPerHour <= 0 || u.RequestsThisHour >= q.MaxRequestsPerHour):
		return mk(bulkhead.RateLimited, "requests", fmt.Sprintf("Hourly request quota exceeded (%d requests)", q.MaxRequestsPerHour),
			q.MaxRequestsPerHour, u.RequestsThisHour, nil, nextHour, until(nextHour))
	case failed(admMonth) && bulkhead.AddSat(u.CommittedTokens, r.Tokens) > q.MaxTokensPerMonth:
		return mk(bulkhead.QuotaExceeded, "tokens", fmt.Sprintf("Monthly token quota exceeded (%d tokens)", q.MaxTokensPerMonth),
			q.MaxTokensPerMonth, u.TokensThisMonth, u.CommittedTokens, nextMonth, until(nextMonth))
	case failed(admMonth) && bulkhead.AddSat(int64(u.CommittedSpend), int64(r.Spend)) > int64(q.MaxSpendPerMonth):
		return mk(bulkhead.QuotaExceeded, "spend", fmt.Sprintf("Monthly spend budget exceeded ($%s)", q.MaxSpendPerMonth.Decimal()),
			q.MaxSpendPerMonth.JSON(), u.SpendThisMonth.JSON(), u.CommittedSpend.JSON(), nextMonth, until(nextMonth))
	case failed(admLive) && (q.MaxConcurrentAgents <= 0 || u.Running >= q.MaxConcurrentAgents):
		return mk(bulkhead.ConcurrencyLimited, "concurrent_agents", fmt.Sprintf("Concurrent execution limit reached (%d)", q.MaxConcurrentAgents),
			q.MaxConcurrentAgents, u.Running, nil, time.Time{}, 1)
	case failed(admLive) && bulkhead.AddSat(u.StorageCommitted, r.Bytes) > q.StorageBytes():
		return mk(bulkhead.QuotaExceeded, "storage", fmt.Sprintf("Storage quota exceeded (%d MB)", q.MaxStorageMB),
			q.MaxStorageMB, u.StorageBytes, u.StorageCommitted, time.Time{}, 0)
	case failed(admConv):
		return bulkhead.Errorf(bulkhead.Conflict, "conversation is busy with another execution; retry when it finishes")
	}
	// The counters moved between the refusal and the read: say so plainly.
	return &bulkhead.Error{Code: bulkhead.ConcurrencyLimited, Message: "Admission contended; retry", RetryAfter: 1}
}
