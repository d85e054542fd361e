package s3store

import (
	"bytes"
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/bulkhead-dev/bulkhead/pkg/bulkhead"
	"github.com/bulkhead-dev/bulkhead/pkg/kb"
)

// A tenant's knowledge base lives under tenants/<tenant_id>/kb/:
// docs/<doc_id>/<rev> holds one revision of a document and index/<name>
// one encoded index. Neither is ever overwritten: each write makes a new
// revision or index under a fresh name, and DynamoDB says which one is
// current. An object that is not current is either being written or was
// left by a write that failed, and is deleted by the write that made it.

func kbPrefix(tenantID string) string { return tenantPrefix(tenantID) + "kb/" }

// kbDocKey ends the document's prefix with '/', so one id's revisions are
// never under another's ("a" and "a.md").
func kbDocKey(tenantID, docID, rev string) string {
	return kbPrefix(tenantID) + "docs/" + docID + "/" + rev
}

func kbIndexKey(tenantID, name string) string { return kbPrefix(tenantID) + "index/" + name }

// checkKB refuses names that cannot be part of a key.
func (t *TenantStore) checkKB(op, name string) error {
	if !validKeyPart(t.tenantID) {
		return &bulkhead.Error{Code: bulkhead.Invalid, Op: op, Message: "invalid tenant id"}
	}
	if !validKeyPart(name) {
		return &bulkhead.Error{Code: bulkhead.Invalid, Op: op, Message: "invalid object name"}
	}
	return nil
}

// checkKBDoc is checkKB for a document's revision.
func (t *TenantStore) checkKBDoc(op, docID, rev string) error {
	if !kb.ValidDocID(docID) {
		return &bulkhead.Error{Code: bulkhead.Invalid, Op: op, Message: "invalid document id"}
	}
	return t.checkKB(op, rev)
}

// PutKBDocument writes one revision of a document. Errors: Invalid, Unavailable.
func (t *TenantStore) PutKBDocument(ctx context.Context, docID, rev, contentType string, body []byte) error {
	const op = "s3store.PutKBDocument"
	if err := t.checkKBDoc(op, docID, rev); err != nil {
		return err
	}
	return t.put(ctx, op, kbDocKey(t.tenantID, docID, rev), contentType, body)
}

// KBDocument reads one revision of a document. Errors: Invalid, NotFound, Unavailable.
func (t *TenantStore) KBDocument(ctx context.Context, docID, rev string) ([]byte, error) {
	const op = "s3store.KBDocument"
	if err := t.checkKBDoc(op, docID, rev); err != nil {
		return nil, err
	}
	b, _, err := t.getObject(ctx, op, kbDocKey(t.tenantID, docID, rev))
	return b, err
}

// DeleteKBDocument removes one revision of a document; removing one that
// is not there is not an error. Errors: Invalid, Unavailable.
func (t *TenantStore) DeleteKBDocument(ctx context.Context, docID, rev string) error {
	const op = "s3store.DeleteKBDocument"
	if err := t.checkKBDoc(op, docID, rev); err != nil {
		return err
	}
	return t.deleteKey(ctx, op, kbDocKey(t.tenantID, docID, rev))
}

// PutKBIndex writes an encoded index under a name no other index has.
// Errors: Invalid, Unavailable.
func (t *TenantStore) PutKBIndex(ctx context.Context, name string, data []byte) error {
	const op = "s3store.PutKBIndex"
	if err := t.checkKB(op, name); err != nil {
		return err
	}
	return t.put(ctx, op, kbIndexKey(t.tenantID, name), "application/octet-stream", data)
}

// KBIndex reads an encoded index. Errors: Invalid, NotFound, Unavailable.
func (t *TenantStore) KBIndex(ctx context.Context, name string) ([]byte, error) {
	const op = "s3store.KBIndex"
	if err := t.checkKB(op, name); err != nil {
		return nil, err
	}
	b, _, err := t.getObject(ctx, op, kbIndexKey(t.tenantID, name))
	return b, err
}

// DeleteKBIndex removes an index that is no longer current; removing one
// that is not there is not an error. Errors: Invalid, Unavailable.
func (t *TenantStore) DeleteKBIndex(ctx context.Context, name string) error {
	const op = "s3store.DeleteKBIndex"
	if err := t.checkKB(op, name); err != nil {
		return err
	}
	return t.deleteKey(ctx, op, kbIndexKey(t.tenantID, name))
}

func (t *TenantStore) put(ctx context.Context, op, key, contentType string, body []byte) error {
	_, err := t.store.client.PutObject(ctx, &s3.PutObjectInput{
		Bucket:        aws.String(t.store.bucket),
		Key:           aws.String(key),
		Body:          bytes.NewReader(body),
		ContentLength: aws.Int64(int64(len(body))),
		ContentType:   aws.String(contentType),
	})
	return translate(op, key, err)
}

func (t *TenantStore) deleteKey(ctx context.Context, op, key string) error {
	_, err := t.store.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(t.store.bucket), Key: aws.String(key)})
	return translate(op, key, err)
}
