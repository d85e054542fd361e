package s3store

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/bulkhead-dev/bulkhead/pkg/bulkhead"
)

// DeleteTurn removes one turn's object: the turn an execution wrote before it
// died unsettled, which no conversation head counts. The caller makes sure
// the turn is not a counted one (it holds the dead execution's claim on the
// conversation, or the conversation was never created). Deleting a turn that
// does not exist is not an error (S3's DeleteObject is idempotent). Errors:
// Invalid, Unavailable.
func (t *TenantStore) DeleteTurn(ctx context.Context, conversationID string, turn int64) error {
	const op = "s3store.DeleteTurn"
	if err := t.check(op, conversationID); err != nil {
		return err
	}
	if turn < 1 || turn > maxTurn {
		return &bulkhead.Error{Code: bulkhead.Invalid, Op: op, Message: fmt.Sprintf("invalid turn %d", turn)}
	}
	key := turnKey(t.tenantID, conversationID, turn)
	_, err := t.store.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(t.store.bucket), Key: aws.String(key)})
	return translate(op, key, err)
}
