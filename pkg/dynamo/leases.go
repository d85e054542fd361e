package dynamo

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/bulkhead-dev/bulkhead/pkg/bulkhead"
)

// Lease is a running execution's hold on a concurrency slot, its reserved
// tokens, spend and bytes, and the conversation it writes to, as the store
// records it.
type Lease struct {
	ExecutionID    string
	AgentID        string
	ConversationID string
	// Turn is the transcript turn the execution was to write; NewConversation
	// says whether that turn starts the conversation.
	Turn            int64
	NewConversation bool
	Month           string
	Reserved        Reservation
	Until           time.Time
	StartedAt       time.Time
	// Abandoned says the lease was reclaimed: its slot, tokens and spend are
	// back; its reserved bytes stay counted until it is forgotten.
	Abandoned bool
	// CleanupTurn, when not 0, is the transcript turn (of ConversationID)
	// that must be removed before the lease is forgotten: the execution may
	// have written it before it died, and no conversation head counts it.
	CleanupTurn int64

	leaseUntil int64 // the stored expiry, which guards the reclaim
}

func (r runItem) lease() Lease {
	started, _ := time.Parse(time.RFC3339Nano, r.StartedAt)
	return Lease{ExecutionID: r.ExecutionID, AgentID: r.AgentID, ConversationID: r.ConversationID, Turn: r.Turn,
		NewConversation: r.NewConversation, Month: r.Month,
		Reserved: Reservation{Tokens: r.ReservedTokens, Spend: bulkhead.Micros(r.ReservedSpend), Bytes: r.ReservedBytes},
		Until:    time.Unix(r.LeaseUntil, 0).UTC(), StartedAt: started, Abandoned: r.Abandoned, CleanupTurn: r.CleanupTurn,
		leaseUntil: r.LeaseUntil}
}

// Leases returns every lease of this tenant, running or abandoned: one Query
// that costs what it returns (the running executions).
func (t *TenantStore) Leases(ctx context.Context) ([]Lease, error) {
	var leases []Lease
	cursor := ""
	for {
		page, err := listPage(ctx, t.s, "list running executions", t.pk, prefixRun, cursor, bulkhead.MaxPageSize, nil, runItem.lease)
		if err != nil {
			return nil, err
		}
		leases = append(leases, page.Items...)
		if cursor = page.NextCursor; cursor == "" {
			return leases, nil
		}
	}
}

// AbandonLease reclaims the lease of an execution that died (its lease
// expired, or the caller knows its process is gone): in one transaction
// guarded by the stored expiry, so two reclaimers (or a reclaimer and the
// execution settling after all) cannot both succeed, its slot, tokens and
// spend go back and the lease is marked abandoned. Its reserved bytes stay
// counted. When the execution may have written a turn that nothing counts,
// the conversation stays claimed by the dead execution (so no other
// execution writes that turn meanwhile) and the returned lease names the
// turn to remove (CleanupTurn). It reports false when the lease was settled
// or reclaimed by someone else.
func (t *TenantStore) AbandonLease(ctx context.Context, l Lease, now time.Time) (Lease, bool, error) {
	cleanup := l.Turn
	if l.ConversationID == "" || l.Turn <= 0 {
		cleanup = 0
	}
	withConv := cleanup > 0 && !l.NewConversation
	for {
		writes := []types.TransactWriteItem{
			{Update: &types.Update{TableName: aws.String(t.s.table), Key: key(t.pk, runSK(l.ExecutionID)),
				UpdateExpression:          aws.String("SET abandoned = :true, cleanup_turn = :turn"),
				ConditionExpression:       aws.String("lease_until = :lease AND attribute_not_exists(abandoned)"),
				ExpressionAttributeValues: map[string]types.AttributeValue{":true": &types.AttributeValueMemberBOOL{Value: true}, ":turn": num(cleanup), ":lease": num(l.leaseUntil)}}},
			{Update: &types.Update{TableName: aws.String(t.s.table), Key: key(t.pk, monthSK(l.Month)),
				UpdateExpression: aws.String("ADD committed_tokens :rt, committed_spend_micros :rs, abandoned :one"),
				ExpressionAttributeValues: map[string]types.AttributeValue{":rt": num(-l.Reserved.Tokens),
					":rs": num(-int64(l.Reserved.Spend)), ":one": num(1)}}},
			{Update: &types.Update{TableName: aws.String(t.s.table), Key: key(t.pk, skLive),
				UpdateExpression:          aws.String("ADD running :neg"),
				ExpressionAttributeValues: map[string]types.AttributeValue{":neg": num(-1)}}},
		}
		if withConv {
			// Keep the dead execution's claim on the conversation until its
			// turn is removed; if the claim already passed to another
			// execution (or the turn was counted), there is nothing to remove.
			writes = append(writes, types.TransactWriteItem{Update: &types.Update{
				TableName: aws.String(t.s.table), Key: key(t.pk, convSK(l.ConversationID)),
				UpdateExpression:          aws.String("SET busy_until = :hold"),
				ConditionExpression:       aws.String("busy_exec = :eid AND turns = :before"),
				ExpressionAttributeValues: map[string]types.AttributeValue{":hold": num(now.Add(time.Hour).Unix()), ":eid": str(l.ExecutionID), ":before": num(l.Turn - 1)},
			}})
		}
		_, err := t.s.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: writes,
			ClientRequestToken: requestToken(l.ExecutionID, "abandon", boolTag(withConv))})
		if err == nil {
			l.Abandoned, l.CleanupTurn = true, cleanup
			return l, true, nil
		}
		reasons := cancelReasons(err)
		switch {
		case len(reasons) == 0:
			return l, false, translate("reclaim lease", err, bulkhead.Internal, "")
		case fails(reasons, 0):
			return l, false, nil // settled, or reclaimed by someone else
		case withConv && fails(reasons, 3):
			withConv, cleanup = false, 0
			continue
		default:
			return l, false, translate("reclaim lease", err, bulkhead.Internal, "")
		}
	}
}

// ForgetLease ends an abandoned lease once its orphaned turn (if any) is
// gone: the lease item is deleted, its reserved bytes leave the storage
// count, and the conversation claim it kept is released, in one transaction.
func (t *TenantStore) ForgetLease(ctx context.Context, l Lease) error {
	writes := []types.TransactWriteItem{
		{Delete: &types.Delete{TableName: aws.String(t.s.table), Key: key(t.pk, runSK(l.ExecutionID)),
			ConditionExpression: aws.String("abandoned = :true"),
			ExpressionAttributeValues: map[string]types.AttributeValue{
				":true": &types.AttributeValueMemberBOOL{Value: true}}}},
		{Update: &types.Update{TableName: aws.String(t.s.table), Key: key(t.pk, skLive),
			UpdateExpression:          aws.String("ADD storage_committed :rb"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":rb": num(-l.Reserved.Bytes)}}},
	}
	_, err := t.s.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: writes,
		ClientRequestToken: requestToken(l.ExecutionID, "forget")})
	if reasons := cancelReasons(err); fails(reasons, 0) {
		return nil // forgotten already
	}
	if err != nil {
		return translate("forget lease", err, bulkhead.Internal, "")
	}
	if l.CleanupTurn > 0 && !l.NewConversation {
		_, err = t.s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName: aws.String(t.s.table), Key: key(t.pk, convSK(l.ConversationID)),
			UpdateExpression:          aws.String("SET busy_until = :free"),
			ConditionExpression:       aws.String("busy_exec = :eid"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":free": num(0), ":eid": str(l.ExecutionID)},
		})
		if err := translate("release conversation", err, bulkhead.Conflict, ""); err != nil && !bulkhead.IsCode(err, bulkhead.Conflict) {
			return err
		}
	}
	return nil
}

// requestToken is the ClientRequestToken of one transaction of an execution:
// the same for every retry of that transaction (so DynamoDB recognises a
// retry of a committed transaction for 10 minutes), different for every
// other transaction. DynamoDB takes 1 to 36 characters.
func requestToken(executionID string, parts ...string) *string {
	sum := sha256.Sum256([]byte(executionID + "/" + strings.Join(parts, "/")))
	return aws.String(hex.EncodeToString(sum[:])[:36])
}

func boolTag(b bool) string {
	if b {
		return "1"
	}
	return "0"
}
