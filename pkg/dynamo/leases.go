package dynamo

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
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

// Leases returns every lease of this tenant, running or abandoned: one
// strongly consistent read of its counter item, which holds them.
func (t *TenantStore) Leases(ctx context.Context) ([]Lease, error) {
	live, err := t.counterItem(ctx, "list running executions")
	if err != nil {
		return nil, err
	}
	return leasesOf(live), nil
}

// AbandonLease reclaims the lease of an execution that died (its lease
// expired, or the caller knows its process is gone): in one update of the
// counter item guarded by the stored expiry, so two reclaimers (or a
// reclaimer and the execution settling after all) cannot both succeed, its
// slot, tokens and spend go back and the lease is marked abandoned. Its
// reserved bytes stay counted. When the execution may have written a turn
// that nothing counts (an object: an inline turn is written by the
// settlement itself), the conversation stays claimed by the dead execution
// (so no other execution writes that turn meanwhile) and the returned lease
// names the turn to remove (CleanupTurn). It reports false when the lease
// was settled or reclaimed by someone else.
func (t *TenantStore) AbandonLease(ctx context.Context, l Lease, now time.Time) (Lease, bool, error) {
	cleanup := l.Turn
	if l.ConversationID == "" || l.Turn <= 0 {
		cleanup = 0
	}
	withConv := cleanup > 0 && !l.NewConversation
	for {
		names := map[string]string{"#lease": leaseAttr(l.ExecutionID), "#ab": leaseAbandon, "#clean": leaseCleanTrn, "#until": leaseUntil,
			"#ct": commitTokAttr(l.Month), "#cs": commitSpAttr(l.Month)}
		values := map[string]types.AttributeValue{":true": &types.AttributeValueMemberBOOL{Value: true}, ":turn": num(cleanup),
			":lease": num(l.leaseUntil), ":neg": num(-1), ":rt": num(-l.Reserved.Tokens), ":rs": num(-int64(l.Reserved.Spend))}
		expr := "SET #lease.#ab = :true, #lease.#clean = :turn"
		cond := "#lease.#until = :lease AND attribute_not_exists(#lease.#ab)"
		if withConv {
			// Keep the dead execution's claim on the conversation until its
			// turn is removed; if the claim already passed to another
			// execution, there is nothing of this one's to remove.
			names["#conv"], names["#cu"], names["#ce"] = claimAttr(l.ConversationID), claimUntil, claimExec
			values[":hold"], values[":eid"] = num(now.Add(time.Hour).Unix()), str(l.ExecutionID)
			expr += ", #conv.#cu = :hold"
			cond += " AND #conv.#ce = :eid"
		}
		_, err := t.s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName: aws.String(t.s.table), Key: key(t.pk, skLive),
			UpdateExpression:         aws.String(expr + " ADD running :neg, #ct :rt, #cs :rs"),
			ConditionExpression:      aws.String(cond),
			ExpressionAttributeNames: names, ExpressionAttributeValues: values,
			ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
		})
		if err == nil {
			l.Abandoned, l.CleanupTurn = true, cleanup
			return l, true, nil
		}
		var ccf *types.ConditionalCheckFailedException
		if !errors.As(err, &ccf) {
			return l, false, translate("reclaim lease", err, bulkhead.Internal, "")
		}
		if !withConv || !leaseReclaimable(ccf.Item, l) {
			return l, false, nil // settled, or reclaimed by someone else
		}
		withConv, cleanup = false, 0
	}
}

// leaseReclaimable reports whether the counter item still holds l as it was
// read, not abandoned.
func leaseReclaimable(live map[string]types.AttributeValue, l Lease) bool {
	for _, cur := range leasesOf(live) {
		if cur.ExecutionID == l.ExecutionID {
			return !cur.Abandoned && cur.leaseUntil == l.leaseUntil
		}
	}
	return false
}

// ForgetLease ends an abandoned lease once its orphaned turn (if any) is
// gone: the lease leaves the counter item, its reserved bytes leave the
// storage count, and the conversation claim it kept is released, in one
// update.
func (t *TenantStore) ForgetLease(ctx context.Context, l Lease) error {
	withConv := l.CleanupTurn > 0 && !l.NewConversation
	for {
		names := map[string]string{"#lease": leaseAttr(l.ExecutionID), "#ab": leaseAbandon}
		values := map[string]types.AttributeValue{":true": &types.AttributeValueMemberBOOL{Value: true}, ":rb": num(-l.Reserved.Bytes)}
		remove, cond := "#lease", "#lease.#ab = :true"
		if withConv {
			names["#conv"], names["#ce"] = claimAttr(l.ConversationID), claimExec
			values[":eid"] = str(l.ExecutionID)
			remove += ", #conv"
			cond += " AND #conv.#ce = :eid"
		}
		_, err := t.s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName: aws.String(t.s.table), Key: key(t.pk, skLive),
			UpdateExpression:         aws.String("REMOVE " + remove + " ADD storage_committed :rb"),
			ConditionExpression:      aws.String(cond),
			ExpressionAttributeNames: names, ExpressionAttributeValues: values,
			ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
		})
		if err == nil {
			return nil
		}
		var ccf *types.ConditionalCheckFailedException
		if !errors.As(err, &ccf) {
			return translate("forget lease", err, bulkhead.Internal, "")
		}
		if _, held := ccf.Item[leaseAttr(l.ExecutionID)]; !held || !withConv {
			return nil // forgotten already
		}
		withConv = false // the claim passed on: leave it
	}
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
