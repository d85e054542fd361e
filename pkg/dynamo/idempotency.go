package dynamo

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/bulkhead-dev/bulkhead/pkg/bulkhead"
)

// IdempotencyTTL is how long a key's result is kept (and replayed).
const IdempotencyTTL = 24 * time.Hour

// Idempotency record states.
const (
	IdemInProgress = "in_progress"
	IdemDone       = "done"
)

// IdemRecord is what the store holds for one Idempotency-Key of a tenant.
type IdemRecord struct {
	PK          string `dynamodbav:"PK"`
	SK          string `dynamodbav:"SK"`
	Fingerprint string `dynamodbav:"fingerprint"`
	State       string `dynamodbav:"state"`
	// Token identifies the request holding an in-progress claim.
	Token     string `dynamodbav:"token"`
	LockUntil int64  `dynamodbav:"lock_until"`
	ExpiresAt int64  `dynamodbav:"expires_at"`
	Status    int    `dynamodbav:"status,omitempty"`
	Body      string `dynamodbav:"body,omitempty"`
}

// IdemClaim is a request's hold on an idempotency key.
type IdemClaim struct {
	Hash  string
	Token string
	// stored is set, for every copy of the claim, once a transaction of this
	// process committed the key's result.
	stored *atomic.Bool
}

// Stored reports whether this process committed the claimed key's result.
// False does not mean it was not stored (a commit whose answer was lost):
// the record tells.
func (c IdemClaim) Stored() bool { return c.stored != nil && c.stored.Load() }

// markStored records that a transaction with c's completion committed.
func (c *IdemCompletion) markStored() {
	if c != nil && c.Claim.stored != nil {
		c.Claim.stored.Store(true)
	}
}

// IdemCompletion is the response to store for a claimed key, written in the
// same transaction as the work it answers for, so that the work and its
// recorded result cannot part.
type IdemCompletion struct {
	Claim  IdemClaim
	Status int
	Body   string
}

// ClaimIdempotency claims key hash for a request with the given fingerprint
// (what the request asks for). It succeeds when the key is new, its result
// has expired, or an earlier attempt with the same request died holding it
// (its lock passed). Otherwise it returns the stored record: done (replay
// it), in progress (wait), or another fingerprint (a different request).
func (t *TenantStore) ClaimIdempotency(ctx context.Context, hash, fingerprint string, now time.Time, lock time.Duration) (*IdemClaim, *IdemRecord, error) {
	claim := &IdemClaim{Hash: hash, Token: bulkhead.NewID("idem"), stored: new(atomic.Bool)}
	rec := IdemRecord{PK: t.pk, SK: idemSK(hash), Fingerprint: fingerprint, State: IdemInProgress, Token: claim.Token,
		LockUntil: now.Add(lock).Unix(), ExpiresAt: now.Add(IdempotencyTTL).Unix()}
	av, err := attributevalue.MarshalMap(rec)
	if err != nil {
		return nil, nil, err
	}
	_, err = t.s.db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: aws.String(t.s.table), Item: av,
		ConditionExpression: aws.String("attribute_not_exists(PK) OR expires_at < :now OR " +
			"(#st = :progress AND lock_until < :now AND fingerprint = :fp)"),
		ExpressionAttributeNames: map[string]string{"#st": "state"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":now": num(now.Unix()), ":progress": str(IdemInProgress),
			":fp": str(fingerprint)},
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	if err == nil {
		return claim, nil, nil
	}
	if !bulkhead.IsCode(translate("claim idempotency key", err, bulkhead.Conflict, ""), bulkhead.Conflict) {
		return nil, nil, translate("claim idempotency key", err, bulkhead.Internal, "")
	}
	// The refusal carries the record as the condition saw it: a retry of a
	// finished request is answered without reading it again.
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) && len(ccf.Item) > 0 {
		var existing IdemRecord
		if err := attributevalue.UnmarshalMap(ccf.Item, &existing); err != nil {
			return nil, nil, &bulkhead.Error{Code: bulkhead.Internal, Op: "claim idempotency key", Message: "internal error", Err: err}
		}
		return nil, &existing, nil
	}
	existing, err := t.GetIdempotency(ctx, hash)
	if err != nil {
		return nil, nil, err
	}
	return nil, &existing, nil
}

// GetIdempotency reads a key's record. Errors: NotFound.
func (t *TenantStore) GetIdempotency(ctx context.Context, hash string) (IdemRecord, error) {
	return getItem[IdemRecord](ctx, t.s, "read idempotency key", t.pk, idemSK(hash), "idempotency key not found")
}

// ReleaseIdempotency gives a claim up without a result (the request was
// refused before it did anything), so a retry runs afresh.
func (t *TenantStore) ReleaseIdempotency(ctx context.Context, c IdemClaim) error {
	_, err := t.s.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName: aws.String(t.s.table), Key: key(t.pk, idemSK(c.Hash)),
		ConditionExpression:       aws.String("#tok = :tok AND #st = :progress"),
		ExpressionAttributeNames:  map[string]string{"#tok": "token", "#st": "state"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":tok": str(c.Token), ":progress": str(IdemInProgress)},
	})
	if err := translate("release idempotency key", err, bulkhead.Conflict, ""); err != nil && !bulkhead.IsCode(err, bulkhead.Conflict) {
		return err
	}
	return nil
}

// completionWrite is the transaction item that stores a claimed key's result.
func (t *TenantStore) completionWrite(c *IdemCompletion) types.TransactWriteItem {
	return types.TransactWriteItem{Update: &types.Update{
		TableName: aws.String(t.s.table), Key: key(t.pk, idemSK(c.Claim.Hash)),
		UpdateExpression:          aws.String("SET #st = :done, #status = :status, body = :body"),
		ConditionExpression:       aws.String("#tok = :tok"),
		ExpressionAttributeNames:  map[string]string{"#st": "state", "#status": "status", "#tok": "token"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":done": str(IdemDone), ":status": num(int64(c.Status)), ":body": str(c.Body), ":tok": str(c.Claim.Token)},
	}}
}

// CompleteIdempotency stores a claimed key's result on its own (for work
// that has no transaction of its own to join).
func (t *TenantStore) CompleteIdempotency(ctx context.Context, c *IdemCompletion) error {
	w := t.completionWrite(c)
	_, err := t.s.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{w}})
	if err == nil {
		c.markStored()
	}
	return translate("store idempotent result", err, bulkhead.Conflict, "idempotency key was taken over")
}
