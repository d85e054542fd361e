package dynamo

import (
	"hash/fnv"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/bulkhead-dev/bulkhead/pkg/bulkhead"
)

// The tenant's counter item (SK LIVE) holds everything admission checks, so
// that admitting is one conditional UpdateItem of one item:
//
//   - hour, hour_requests: the requests admitted in the hour named;
//   - committed_tokens#<month>, committed_spend_micros#<month>: the month's
//     used tokens and spend plus the reservations of its running executions;
//   - tokens#<month>, input_tokens#<month>, output_tokens#<month>,
//     spend_micros#<month>, executions#<month>, tiers#<month>: what the
//     month's settled executions used, and the tiers it saw (the monthly
//     close removes them with the invoice it writes);
//   - running, storage_committed, storage_bytes: concurrency and storage;
//   - breaker_*: the circuit breaker;
//   - lease#<execution id>: a running (or reclaimed) execution's lease, a map;
//   - conv#<conversation id>: the claim of the execution writing the
//     conversation's next turn (or of its deletion), a map;
//   - turns#0 to turns#3: "<conversation id>#<turns>" of the conversations
//     settled last, by a hash of their id: admission refuses an execution
//     whose read of the head is older than the last settlement of its
//     conversation, before the model runs (the claim, gone by then, cannot
//     tell).
//
// Leases and claims exist only while executions run, and a month's
// attributes until its invoice, so the item stays small: about 550 bytes
// (700 between the end of a month and its close), and 200 more per running
// execution.
const (
	attrHour         = "hour"
	attrHourRequests = "hour_requests"
	prefixCommitTok  = "committed_tokens#"
	prefixCommitSp   = "committed_spend_micros#"
	prefixLeaseAttr  = "lease#"
	prefixClaimAttr  = "conv#"
)

// The month's use, per month.
const (
	prefixMonthTokens = "tokens#"
	prefixMonthIn     = "input_tokens#"
	prefixMonthOut    = "output_tokens#"
	prefixMonthSpend  = "spend_micros#"
	prefixMonthExecs  = "executions#"
	prefixMonthTiers  = "tiers#"
)

// monthAttrs are the names of a month's use on the counter item.
func monthAttrs(month string) []string {
	return []string{prefixMonthTokens + month, prefixMonthIn + month, prefixMonthOut + month,
		prefixMonthSpend + month, prefixMonthExecs + month, prefixMonthTiers + month}
}

func commitTokAttr(month string) string { return prefixCommitTok + month }
func commitSpAttr(month string) string  { return prefixCommitSp + month }
func leaseAttr(eid string) string       { return prefixLeaseAttr + eid }
func claimAttr(cid string) string       { return prefixClaimAttr + cid }

// Fields of a lease map.
const (
	leaseTokens   = "tokens"
	leaseSpend    = "spend"
	leaseBytes    = "bytes"
	leaseUntil    = "until"
	leaseMonth    = "month"
	leaseAgent    = "agent"
	leaseConv     = "conv"
	leaseTurn     = "turn"
	leaseNew      = "new"
	leaseStarted  = "started"
	leaseAbandon  = "abandoned"
	leaseCleanTrn = "cleanup_turn"
)

// Fields of a conversation claim map.
const (
	claimExec  = "exec"
	claimUntil = "until"
)

// CounterState is what an execution's read of the counter item tells its
// admission: the hour the item counts, and the attributes of months long
// past that the admission removes.
type CounterState struct {
	Hour  string
	Stale []string
}

func counterState(live map[string]types.AttributeValue, now time.Time) CounterState {
	c := CounterState{Hour: strAttr(live, attrHour)}
	cur, prev := bulkhead.MonthKey(now), bulkhead.MonthKey(time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC).AddDate(0, -1, 0))
	for name := range live {
		for _, p := range []string{prefixCommitTok, prefixCommitSp} {
			if m, ok := strings.CutPrefix(name, p); ok && m != cur && m != prev {
				c.Stale = append(c.Stale, name)
			}
		}
	}
	return c
}

func leaseValue(r runItem) types.AttributeValue {
	m := map[string]types.AttributeValue{
		leaseTokens: num(r.ReservedTokens), leaseSpend: num(r.ReservedSpend), leaseBytes: num(r.ReservedBytes),
		leaseUntil: num(r.LeaseUntil), leaseMonth: str(r.Month), leaseAgent: str(r.AgentID), leaseStarted: str(r.StartedAt),
	}
	if r.ConversationID != "" {
		m[leaseConv] = str(r.ConversationID)
	}
	if r.Turn != 0 {
		m[leaseTurn] = num(r.Turn)
	}
	if r.NewConversation {
		m[leaseNew] = &types.AttributeValueMemberBOOL{Value: true}
	}
	return &types.AttributeValueMemberM{Value: m}
}

// leasesOf reads the leases on a counter item.
func leasesOf(live map[string]types.AttributeValue) []Lease {
	var out []Lease
	for name, v := range live {
		eid, ok := strings.CutPrefix(name, prefixLeaseAttr)
		mv, isMap := v.(*types.AttributeValueMemberM)
		if !ok || !isMap {
			continue
		}
		m := mv.Value
		r := runItem{ExecutionID: eid, AgentID: strAttr(m, leaseAgent), ConversationID: strAttr(m, leaseConv), Month: strAttr(m, leaseMonth),
			ReservedTokens: intAttr(m, leaseTokens), ReservedSpend: intAttr(m, leaseSpend), ReservedBytes: intAttr(m, leaseBytes),
			LeaseUntil: intAttr(m, leaseUntil), StartedAt: strAttr(m, leaseStarted), Turn: intAttr(m, leaseTurn),
			NewConversation: boolAttr(m, leaseNew), Abandoned: boolAttr(m, leaseAbandon), CleanupTurn: intAttr(m, leaseCleanTrn)}
		out = append(out, r.lease())
	}
	return out
}

// claimOf reads a conversation claim on a counter item: who holds it and
// until when (Unix seconds); ok is false when there is none.
func claimOf(live map[string]types.AttributeValue, cid string) (exec string, until int64, ok bool) {
	mv, isMap := live[claimAttr(cid)].(*types.AttributeValueMemberM)
	if !isMap {
		return "", 0, false
	}
	return strAttr(mv.Value, claimExec), intAttr(mv.Value, claimUntil), true
}

func claimValue(eid string, until int64) types.AttributeValue {
	return &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{claimExec: str(eid), claimUntil: num(until)}}
}

func strAttr(item map[string]types.AttributeValue, name string) string {
	if s, ok := item[name].(*types.AttributeValueMemberS); ok {
		return s.Value
	}
	return ""
}

func boolAttr(item map[string]types.AttributeValue, name string) bool {
	b, ok := item[name].(*types.AttributeValueMemberBOOL)
	return ok && b.Value
}

// hourRequests is the requests the counter item holds for hour.
func hourRequests(live map[string]types.AttributeValue, hour string) int64 {
	if strAttr(live, attrHour) != hour {
		return 0
	}
	return intAttr(live, attrHourRequests)
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// turnSlots is how many recent settlements the counter item remembers; a
// collision only forgets one, and its conversation's race is then caught at
// settlement instead (metered, not saved).
const turnSlots = 4

// turnsSlot is the counter item attribute that remembers cid's turn count.
func turnsSlot(cid string) string {
	h := fnv.New32a()
	h.Write([]byte(cid))
	return "turns#" + itoa(int64(h.Sum32()%turnSlots))
}

func turnsValue(cid string, turns int64) string { return cid + "#" + itoa(turns) }
