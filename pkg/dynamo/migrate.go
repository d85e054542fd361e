package dynamo

import (
	"context"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/bulkhead-dev/bulkhead/pkg/bulkhead"
)

// Items of the layout before the counter item held the month and the
// leases, which MigrateCounters folds into it.
const (
	legacyMonth = "MONTH#"
	legacyRun   = "RUN#"
	legacyHour  = "HOUR#"
)

// MigrateCounters moves what a table written by an earlier version keeps
// in items of their own onto each tenant's counter item: a month's use and
// committed counts (MONTH#<month>), the leases of executions recorded as
// running (RUN#<execution>, with their conversation claims), and the current
// hour's request count (HOUR#<hour>). Each value is set only if the counter
// item has none yet, and the old item is deleted after, so a migration cut
// short and run again moves nothing twice. It returns how many items it
// moved. The items of the breaker's buckets (BRK#) and of daily usage (DAY#)
// are left: nothing reads them, and they expire or are merely stale.
func (s *Store) MigrateCounters(ctx context.Context, now time.Time) (int, error) {
	moved := 0
	cursor := ""
	for {
		page, err := s.ListTenants(ctx, cursor, bulkhead.MaxPageSize)
		if err != nil {
			return moved, err
		}
		for _, tn := range page.Items {
			n, err := s.Tenant(tn.ID).migrate(ctx, now)
			moved += n
			if err != nil {
				return moved, err
			}
		}
		if cursor = page.NextCursor; cursor == "" {
			return moved, nil
		}
	}
}

func (t *TenantStore) migrate(ctx context.Context, now time.Time) (int, error) {
	moved := 0
	for _, prefix := range []string{legacyMonth, legacyRun, legacyHour} {
		cursor := ""
		for {
			items, next, err := t.s.queryPage(ctx, "migrate counters", t.pk, prefix, cursor, bulkhead.MaxPageSize, nil)
			if err != nil {
				return moved, err
			}
			for _, it := range items {
				sk := strAttr(it, attrSK)
				if prefix == legacyHour && sk != legacyHour+bulkhead.HourKey(now) {
					continue // a past hour counts nothing any more
				}
				if err := t.foldLegacy(ctx, prefix, strings.TrimPrefix(sk, prefix), it); err != nil {
					return moved, err
				}
				moved++
			}
			if cursor = next; cursor == "" {
				break
			}
		}
	}
	return moved, nil
}

// foldLegacy sets, on the counter item, what one legacy item holds (where
// the counter item holds nothing yet), then deletes the legacy item.
func (t *TenantStore) foldLegacy(ctx context.Context, prefix, id string, it map[string]types.AttributeValue) error {
	names := map[string]string{}
	values := map[string]types.AttributeValue{}
	var set []string
	setIfAbsent := func(attr string, v types.AttributeValue) {
		if v == nil {
			return
		}
		n, val := "#a"+itoa(int64(len(names))), ":v"+itoa(int64(len(values)))
		names[n], values[val] = attr, v
		set = append(set, n+" = if_not_exists("+n+", "+val+")")
	}
	switch prefix {
	case legacyMonth:
		for old, attr := range map[string]string{"tokens": prefixMonthTokens, "input_tokens": prefixMonthIn, "output_tokens": prefixMonthOut,
			"spend_micros": prefixMonthSpend, "executions": prefixMonthExecs, "tiers": prefixMonthTiers,
			"committed_tokens": prefixCommitTok, "committed_spend_micros": prefixCommitSp} {
			setIfAbsent(attr+id, it[old])
		}
	case legacyRun:
		r := runItem{ExecutionID: id, AgentID: strAttr(it, "agent_id"), ConversationID: strAttr(it, "conversation_id"), Month: strAttr(it, "month"),
			ReservedTokens: intAttr(it, "reserved_tokens"), ReservedSpend: intAttr(it, "reserved_spend_micros"), ReservedBytes: intAttr(it, "reserved_bytes"),
			LeaseUntil: intAttr(it, "lease_until"), StartedAt: strAttr(it, "started_at"), Turn: intAttr(it, "turn"),
			NewConversation: boolAttr(it, "new_conversation"), Abandoned: boolAttr(it, "abandoned"), CleanupTurn: intAttr(it, "cleanup_turn")}
		lease := leaseValue(r).(*types.AttributeValueMemberM)
		if r.Abandoned {
			lease.Value[leaseAbandon] = &types.AttributeValueMemberBOOL{Value: true}
			lease.Value[leaseCleanTrn] = num(r.CleanupTurn)
		}
		setIfAbsent(leaseAttr(id), lease)
		if r.ConversationID != "" && !r.NewConversation {
			// The old claim was on the conversation head; the reclaim of
			// this lease looks for it on the counter item.
			setIfAbsent(claimAttr(r.ConversationID), claimValue(id, r.LeaseUntil))
		}
	case legacyHour:
		setIfAbsent(attrHour, str(id))
		setIfAbsent(attrHourRequests, it["requests"])
	}
	if len(set) > 0 {
		_, err := t.s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName: aws.String(t.s.table), Key: key(t.pk, skLive),
			UpdateExpression:         aws.String("SET " + strings.Join(set, ", ")),
			ExpressionAttributeNames: names, ExpressionAttributeValues: values,
		})
		if err != nil {
			return translate("migrate counters", err, bulkhead.Internal, "")
		}
	}
	_, err := t.s.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(t.s.table), Key: key(t.pk, prefix+id)})
	return translate("migrate counters", err, bulkhead.Internal, "")
}
