package dynamo

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
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
	Now            time.Time
	// Lease bounds how long the execution's slot, reservation and
	// conversation claim survive if it dies; it must exceed its wall time.
	Lease   time.Duration
	Quota   bulkhead.Quota
	Reserve Reservation
	// Counter is what the execution read of the counter item, when it did.
	Counter *CounterState
}

// runItem is a running execution's lease, as admission writes it on the
// counter item (leaseValue) and leasesOf reads it back: its concurrency
// slot and reservation, given back when it settles or, if it died, when its
// lease has expired and something needs the room.
type runItem struct {
	ExecutionID    string
	AgentID        string
	ConversationID string
	Month          string
	ReservedTokens int64
	ReservedSpend  int64
	ReservedBytes  int64
	LeaseUntil     int64
	StartedAt      string
	// Turn is the transcript turn the execution will write, and
	// NewConversation whether that turn starts the conversation: what a
	// reclaim must remove if the execution died between writing it and
	// settling.
	Turn            int64
	NewConversation bool
	// Abandoned is set when the lease was reclaimed: its slot, tokens and
	// spend went back, its reserved bytes stay counted until CleanupTurn (if
	// any) is removed from the transcript and the lease is forgotten.
	Abandoned   bool
	CleanupTurn int64
}

// The limits admission checks, for quotaError.
const (
	admHour = iota
	admMonth
	admLive
	admConv
	admChecks
)

// Admit admits an execution or refuses it, in one conditional UpdateItem of
// the tenant's counter item (see counter.go), which holds every count it
// checks; the update moves them only if all pass:
//   - the hour's request count stays within the hourly quota;
//   - the month's committed tokens and spend plus this reservation stay
//     within the monthly limits;
//   - a concurrency slot is free, committed storage stays within the quota,
//     and the circuit breaker is not open;
//   - the conversation, if any, is not claimed by another execution (or by
//     its deletion).
//
// It writes the execution's lease and its claim on the conversation on the
// same item. A refused admission changes nothing. Expired leases in the way
// are not reclaimed here: the caller reclaims them (removing their orphaned
// turns, which this store cannot reach) and admits again. An admission
// retried after an unknown outcome finds its own lease and succeeds.
// Errors: RateLimited, QuotaExceeded, ConcurrencyLimited, CircuitOpen,
// Conflict (conversation busy), NotFound (conversation being deleted),
// Unavailable (fail closed).
func (t *TenantStore) Admit(ctx context.Context, a Admission) error {
	if err := t.refuseUpfront(ctx, a); err != nil {
		return err
	}
	// The first admission of an hour starts its count: which update that
	// takes is known from the execution's read of the item, and corrected
	// once if the hour turned in between.
	newHour := a.Counter == nil || a.Counter.Hour != bulkhead.HourKey(a.Now)
	for range 2 {
		hourWrong, err := t.admitOnce(ctx, a, newHour)
		if !hourWrong {
			return err
		}
		newHour = !newHour
	}
	return &bulkhead.Error{Code: bulkhead.ConcurrencyLimited, Message: "Admission contended; retry", RetryAfter: 1}
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
	failed := make([]bool, admChecks)
	failed[admHour], failed[admMonth], failed[admLive] = true, true, true
	return quotaError(a, u, failed, "")
}

// admitOnce tries the admission's update; hourWrong reports that it failed
// only because the item counts another hour than newHour assumed.
func (t *TenantStore) admitOnce(ctx context.Context, a Admission, newHour bool) (hourWrong bool, err error) {
	now := a.Now.UTC()
	hour := bulkhead.HourKey(now)
	month := bulkhead.MonthKey(now)
	q, r := a.Quota, a.Reserve
	run := runItem{ExecutionID: a.ExecutionID, AgentID: a.AgentID, Month: month,
		ReservedTokens: r.Tokens, ReservedSpend: int64(r.Spend), ReservedBytes: r.Bytes,
		LeaseUntil: now.Add(a.Lease).Unix(), StartedAt: now.Format(time.RFC3339Nano)}
	run.ConversationID, run.Turn, run.NewConversation = a.ConversationID, a.Turn, a.Conversation == nil && a.ConversationID != ""
	if a.Conversation != nil {
		run.ConversationID = a.Conversation.ID
	}
	names := map[string]string{"#hour": attrHour, "#lease": leaseAttr(a.ExecutionID), "#ct": commitTokAttr(month), "#cs": commitSpAttr(month)}
	values := map[string]types.AttributeValue{":lease": leaseValue(run), ":hour": str(hour), ":one": num(1),
		":rt": num(r.Tokens), ":rs": num(int64(r.Spend)), ":rb": num(r.Bytes), ":now": num(now.Unix()),
		":tmax": num(bulkhead.SubSat(q.MaxTokensPerMonth, r.Tokens)), ":smax": num(bulkhead.SubSat(int64(q.MaxSpendPerMonth), int64(r.Spend))),
		":cmax": num(q.MaxConcurrentAgents), ":bmax": num(bulkhead.SubSat(q.StorageBytes(), r.Bytes))}
	set := []string{"#lease = :lease", "#hour = :hour"}
	add := []string{"running :one", "storage_committed :rb", "#ct :rt", "#cs :rs"}
	cond := []string{"attribute_not_exists(#lease)",
		"(attribute_not_exists(#ct) OR #ct <= :tmax)", "(attribute_not_exists(#cs) OR #cs <= :smax)",
		"(attribute_not_exists(running) OR running < :cmax)", "(attribute_not_exists(storage_committed) OR storage_committed <= :bmax)",
		"(attribute_not_exists(breaker_open_until) OR breaker_open_until <= :now)"}
	if newHour {
		set = append(set, "hour_requests = :one")
		cond = append(cond, "(attribute_not_exists(#hour) OR #hour <> :hour)")
	} else {
		add = append(add, "hour_requests :one")
		cond = append(cond, "#hour = :hour AND hour_requests < :max")
		values[":max"] = num(q.MaxRequestsPerHour)
	}
	if c := a.Conversation; c != nil {
		names["#conv"] = claimAttr(c.ID)
		values[":claim"] = claimValue(a.ExecutionID, now.Add(a.Lease).Unix())
		set = append(set, "#conv = :claim")
		cond = append(cond, "(attribute_not_exists(#conv) OR #conv.#until < :now)",
			"(attribute_not_exists(#turns) OR NOT begins_with(#turns, :cidp) OR #turns = :turnsread)")
		names["#until"], names["#turns"] = claimUntil, turnsSlot(c.ID)
		values[":cidp"], values[":turnsread"] = str(c.ID+"#"), str(turnsValue(c.ID, c.Turns))
	}
	expr := "SET " + strings.Join(set, ", ") + " ADD " + strings.Join(add, ", ")
	if a.Counter != nil {
		var stale []string
		for i, n := range a.Counter.Stale {
			alias := "#stale" + itoa(int64(i))
			names[alias] = n
			stale = append(stale, alias)
		}
		if len(stale) > 0 {
			expr += " REMOVE " + strings.Join(stale, ", ")
		}
	}
	_, err = t.s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(t.s.table), Key: key(t.pk, skLive),
		UpdateExpression: aws.String(expr), ConditionExpression: aws.String(strings.Join(cond, " AND ")),
		ExpressionAttributeNames: names, ExpressionAttributeValues: values,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	if err == nil {
		return false, nil
	}
	var ccf *types.ConditionalCheckFailedException
	if !errors.As(err, &ccf) {
		return false, translate("admit execution", err, bulkhead.Internal, "")
	}
	old := ccf.Item
	if _, ok := old[leaseAttr(a.ExecutionID)]; ok {
		return false, nil // a retry of an admission that committed
	}
	if old == nil {
		// A backend that does not return the item: read it.
		out, gerr := t.s.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(t.s.table), Key: key(t.pk, skLive), ConsistentRead: aws.Bool(true)})
		if gerr != nil {
			return false, translate("admit execution", gerr, bulkhead.Internal, "")
		}
		old = out.Item
	}
	// Which limit refused, from the item as it was (ALL_OLD).
	u := usageFromCounter(old, now)
	failed := make([]bool, admChecks)
	failed[admHour] = u.RequestsThisHour >= q.MaxRequestsPerHour
	failed[admMonth] = bulkhead.AddSat(u.CommittedTokens, r.Tokens) > q.MaxTokensPerMonth ||
		bulkhead.AddSat(int64(u.CommittedSpend), int64(r.Spend)) > int64(q.MaxSpendPerMonth)
	failed[admLive] = u.BreakerOpenUntil > now.Unix() || u.Running >= q.MaxConcurrentAgents || bulkhead.AddSat(u.StorageCommitted, r.Bytes) > q.StorageBytes()
	holder := ""
	if c := a.Conversation; c != nil {
		if eid, until, ok := claimOf(old, c.ID); ok && until >= now.Unix() {
			failed[admConv], holder = true, eid
		}
		if v := strAttr(old, turnsSlot(c.ID)); strings.HasPrefix(v, c.ID+"#") && v != turnsValue(c.ID, c.Turns) {
			failed[admConv] = true // the head moved on since it was read
		}
	}
	hourHeld := strAttr(old, attrHour) == hour
	if !failed[admHour] && !failed[admMonth] && !failed[admLive] && !failed[admConv] && hourHeld == newHour {
		return true, nil
	}
	return false, quotaError(a, u, failed, holder)
}

// usageFromCounter is the usage a counter item shows at now.
func usageFromCounter(live map[string]types.AttributeValue, now time.Time) bulkhead.Usage {
	m := bulkhead.MonthKey(now)
	return bulkhead.Usage{
		RequestsThisHour: hourRequests(live, bulkhead.HourKey(now)),
		TokensThisMonth:  intAttr(live, prefixMonthTokens+m),
		InputTokens:      intAttr(live, prefixMonthIn+m),
		OutputTokens:     intAttr(live, prefixMonthOut+m),
		SpendThisMonth:   bulkhead.Micros(intAttr(live, prefixMonthSpend+m)),
		Executions:       intAttr(live, prefixMonthExecs+m),
		CommittedTokens:  intAttr(live, commitTokAttr(m)),
		CommittedSpend:   bulkhead.Micros(intAttr(live, commitSpAttr(m))),
		Running:          intAttr(live, "running"),
		StorageBytes:     intAttr(live, "storage_bytes"),
		StorageCommitted: intAttr(live, "storage_committed"),
		BreakerOpenUntil: intAttr(live, "breaker_open_until"),
	}
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
func quotaError(a Admission, u bulkhead.Usage, failedChecks []bool, claimHolder string) error {
	failed := func(i int) bool { return i < len(failedChecks) && failedChecks[i] }
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
	case failed(admConv) && claimHolder == deletingClaim:
		return bulkhead.Errorf(bulkhead.NotFound, "conversation %s not found", a.Conversation.ID)
	case failed(admConv):
		return bulkhead.Errorf(bulkhead.Conflict, "conversation is busy with another execution; retry when it finishes")
	}
	// The counters moved between the refusal and the read: say so plainly.
	return &bulkhead.Error{Code: bulkhead.ConcurrencyLimited, Message: "Admission contended; retry", RetryAfter: 1}
}
