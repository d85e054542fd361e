package dynamo

import (
	"bytes"
	"compress/flate"
	"context"
	"errors"
	"io"
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
	// Record, for an execution, is the sort key of the usage record that
	// will carry the result: the execution stores it there, in its
	// settlement, instead of on this item.
	Record string `dynamodbav:"record,omitempty"`
}

// IdemClaim is a request's hold on an idempotency key.
type IdemClaim struct {
	Hash  string
	Token string
	// Execution, when set, is the execution the claim answers for (its id and
	// start time, chosen before it runs): its result goes on its usage record.
	Execution *ExecutionRef
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

// ExecutionRef names an execution before it runs: the id and start time its
// usage record will have.
type ExecutionRef struct {
	ID        string
	StartedAt time.Time
}

func (r ExecutionRef) recordSK() string { return execSK(r.StartedAt, r.ID) }

// ClaimIdempotency claims key hash for a request with the given fingerprint
// (what the request asks for). It succeeds when the key is new, its result
// has expired, or an earlier attempt with the same request died holding it
// (its lock passed). Otherwise it returns the stored record: done (replay
// it), in progress (wait), or another fingerprint (a different request).
// With exec, the claim is for that execution, whose settlement stores the
// result on its usage record (no item of the key's own is written then): the
// record is read to tell a finished execution from one in progress or dead.
func (t *TenantStore) ClaimIdempotency(ctx context.Context, hash, fingerprint string, now time.Time, lock time.Duration, exec *ExecutionRef) (*IdemClaim, *IdemRecord, error) {
	claim := &IdemClaim{Hash: hash, Token: bulkhead.NewID("idem"), Execution: exec, stored: new(atomic.Bool)}
	rec := IdemRecord{PK: t.pk, SK: idemSK(hash), Fingerprint: fingerprint, State: IdemInProgress, Token: claim.Token,
		LockUntil: now.Add(lock).Unix(), ExpiresAt: now.Add(IdempotencyTTL).Unix()}
	if exec != nil {
		rec.Record = exec.recordSK()
	}
	av, err := attributevalue.MarshalMap(rec)
	if err != nil {
		return nil, nil, err
	}
	// A claim whose execution stores its result on its record is taken over
	// only once that record is known not to exist (below), never blindly.
	_, err = t.s.db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: aws.String(t.s.table), Item: av,
		ConditionExpression: aws.String("attribute_not_exists(PK) OR expires_at < :now OR " +
			"(#st = :progress AND lock_until < :now AND fingerprint = :fp AND attribute_not_exists(#rec))"),
		ExpressionAttributeNames: map[string]string{"#st": "state", "#rec": "record"},
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
	var existing IdemRecord
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) && len(ccf.Item) > 0 {
		if err := attributevalue.UnmarshalMap(ccf.Item, &existing); err != nil {
			return nil, nil, &bulkhead.Error{Code: bulkhead.Internal, Op: "claim idempotency key", Message: "internal error", Err: err}
		}
	} else if existing, err = t.GetIdempotency(ctx, hash); err != nil {
		return nil, nil, err
	}
	if existing.State != IdemInProgress || existing.Record == "" || existing.Fingerprint != fingerprint {
		return nil, &existing, nil
	}
	// The key answers for an execution: its record tells whether it
	// finished (replay), and only when it did not and the lock passed may
	// this request take the key over.
	done, err := t.resultOnRecord(ctx, &existing)
	if err != nil || done {
		return nil, &existing, err
	}
	if existing.LockUntil >= now.Unix() {
		return nil, &existing, nil
	}
	_, err = t.s.db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: aws.String(t.s.table), Item: av,
		ConditionExpression:       aws.String("#tok = :tok"),
		ExpressionAttributeNames:  map[string]string{"#tok": "token"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":tok": str(existing.Token)},
	})
	if err == nil {
		return claim, nil, nil
	}
	if err := translate("claim idempotency key", err, bulkhead.Conflict, ""); !bulkhead.IsCode(err, bulkhead.Conflict) {
		return nil, nil, err
	}
	// Another request took it over first.
	existing.LockUntil = now.Add(lock).Unix()
	return nil, &existing, nil
}

// Attributes of a usage record that carries an idempotent result.
const (
	attrIdemToken  = "idem_token"
	attrIdemStatus = "idem_status"
	attrIdemBody   = "idem_body"
)

// resultOnRecord looks for the result of claim rec on its execution's usage
// record; when it is there, rec becomes the finished key, with the result.
func (t *TenantStore) resultOnRecord(ctx context.Context, rec *IdemRecord) (bool, error) {
	const op = "read idempotent result"
	out, err := t.s.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(t.s.table), Key: key(t.pk, rec.Record), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return false, translate(op, err, bulkhead.Internal, "")
	}
	if strAttr(out.Item, attrIdemToken) != rec.Token {
		return false, nil
	}
	b, _ := out.Item[attrIdemBody].(*types.AttributeValueMemberB)
	if b == nil {
		return false, &bulkhead.Error{Code: bulkhead.Internal, Op: op, Message: "usage record " + rec.Record + " has no stored result"}
	}
	body, err := io.ReadAll(flate.NewReader(bytes.NewReader(b.Value)))
	if err != nil {
		return false, &bulkhead.Error{Code: bulkhead.Internal, Op: op, Message: "unreadable stored result", Err: err}
	}
	rec.State, rec.Status, rec.Body = IdemDone, int(intAttr(out.Item, attrIdemStatus)), string(body)
	return true, nil
}

// resultAttrs are the attributes a usage record carries for the idempotent
// result c: the claim's token, the status and the body, compressed (an
// execution's answer is mostly JSON names and ids, which halve), so that the
// record, and with it the settlement, most often stays within one write unit.
func resultAttrs(c *IdemCompletion) (map[string]types.AttributeValue, error) {
	body, err := deflate([]byte(c.Body))
	if err != nil {
		return nil, err
	}
	return map[string]types.AttributeValue{attrIdemToken: str(c.Claim.Token), attrIdemStatus: num(int64(c.Status)),
		attrIdemBody: &types.AttributeValueMemberB{Value: body}}, nil
}

// deflate compresses b (raw DEFLATE, best compression): what the usage
// record keeps of an idempotent result and of an execution's log.
func deflate(b []byte) ([]byte, error) {
	var buf bytes.Buffer
	w, err := flate.NewWriter(&buf, flate.BestCompression)
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(b); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// GetIdempotency reads a key's record, with its result when its execution
// stored it on its usage record. Errors: NotFound.
func (t *TenantStore) GetIdempotency(ctx context.Context, hash string) (IdemRecord, error) {
	rec, err := getItem[IdemRecord](ctx, t.s, "read idempotency key", t.pk, idemSK(hash), "idempotency key not found")
	if err != nil || rec.State != IdemInProgress || rec.Record == "" {
		return rec, err
	}
	_, err = t.resultOnRecord(ctx, &rec)
	return rec, err
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
