package s3store

import (
	"bytes"
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/bulkhead-dev/bulkhead/pkg/bulkhead"
)

// invoiceKey is where a closed month's invoice document lives.
func invoiceKey(tenantID, month string) string {
	return tenantPrefix(tenantID) + "invoices/" + month + ".json"
}

// PutInvoice writes a closed month's invoice document. The document is
// immutable and rendered once from the stored invoice, so writing it again
// (a retried close) writes the same bytes. Errors: Invalid, Unavailable.
func (t *TenantStore) PutInvoice(ctx context.Context, month string, doc []byte) error {
	const op = "s3store.PutInvoice"
	if !validKeyPart(t.tenantID) || !validKeyPart(month) {
		return &bulkhead.Error{Code: bulkhead.Invalid, Op: op, Message: "invalid tenant or month"}
	}
	key := invoiceKey(t.tenantID, month)
	_, err := t.store.client.PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String(t.store.bucket), Key: aws.String(key), Body: bytes.NewReader(doc),
		ContentLength: aws.Int64(int64(len(doc))), ContentType: aws.String("application/json"),
	})
	return translate(op, key, err)
}

// Invoice reads a closed month's invoice document. Errors: NotFound, Unavailable.
func (t *TenantStore) Invoice(ctx context.Context, month string) ([]byte, error) {
	const op = "s3store.Invoice"
	if !validKeyPart(t.tenantID) || !validKeyPart(month) {
		return nil, &bulkhead.Error{Code: bulkhead.Invalid, Op: op, Message: "invalid tenant or month"}
	}
	b, _, err := t.getObject(ctx, op, invoiceKey(t.tenantID, month))
	return b, err
}
