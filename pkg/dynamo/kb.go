package dynamo

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/bulkhead-dev/bulkhead/pkg/bulkhead"
)

// A tenant's knowledge base is one KBMETA item, which names the current
// index object and numbers it, and one KBDOC#<doc_id> item per document,
// which names the document's current object revision. Every write to the
// knowledge base moves the index version, in one transaction with the
// document's item and the storage counters, conditioned on the version it
// read: writes to one tenant's knowledge base are serialised by that
// condition, and none can lose another's index update.
const (
	skKBMeta    = "KBMETA"
	prefixKBDoc = "KBDOC#"
)

func kbDocSK(docID string) string { return prefixKBDoc + docID }

// KBDoc is a knowledge base document's metadata.
type KBDoc struct {
	ID          string
	Bytes       int64
	ContentType string
	// Rev names the document's current object revision.
	Rev       string
	CreatedAt time.Time
	UpdatedAt time.Time
}

type kbDocItem struct {
	PK          string    `dynamodbav:"PK"`
	SK          string    `dynamodbav:"SK"`
	DocID       string    `dynamodbav:"doc_id"`
	Bytes       int64     `dynamodbav:"bytes"`
	ContentType string    `dynamodbav:"content_type"`
	Rev         string    `dynamodbav:"rev"`
	CreatedAt   time.Time `dynamodbav:"created_at"`
	UpdatedAt   time.Time `dynamodbav:"updated_at"`
}

func (it kbDocItem) doc() KBDoc {
	return KBDoc{ID: it.DocID, Bytes: it.Bytes, ContentType: it.ContentType, Rev: it.Rev, CreatedAt: it.CreatedAt, UpdatedAt: it.UpdatedAt}
}

// KBIndexRef names a knowledge base index: its version (0, with no name,
// before the first write) and its object's name.
type KBIndexRef struct {
	Version int64
	Name    string
}

type kbMetaItem struct {
	PK        string    `dynamodbav:"PK"`
	SK        string    `dynamodbav:"SK"`
	Version   int64     `dynamodbav:"index_version"`
	Name      string    `dynamodbav:"index_name"`
	UpdatedAt time.Time `dynamodbav:"updated_at"`
}

// KBIndex reads the current index's name: what a search reads first.
// Errors: Unavailable.
func (t *TenantStore) KBIndex(ctx context.Context) (KBIndexRef, error) {
	it, err := getItem[kbMetaItem](ctx, t.s, "read kb index", t.pk, skKBMeta, "")
	if bulkhead.IsCode(err, bulkhead.NotFound) {
		return KBIndexRef{}, nil
	}
	return KBIndexRef{Version: it.Version, Name: it.Name}, err
}

// KBState reads, in one consistent read, the current index and the
// document's metadata (nil when there is no such document): what a write
// starts from. Errors: Unavailable.
func (t *TenantStore) KBState(ctx context.Context, docID string) (KBIndexRef, *KBDoc, error) {
	get := func(sk string) types.TransactGetItem {
		return types.TransactGetItem{Get: &types.Get{TableName: aws.String(t.s.table), Key: key(t.pk, sk)}}
	}
	out, err := t.s.db.TransactGetItems(ctx, &dynamodb.TransactGetItemsInput{TransactItems: []types.TransactGetItem{get(skKBMeta), get(kbDocSK(docID))}})
	if err != nil {
		return KBIndexRef{}, nil, translate("read kb state", err, bulkhead.Internal, "")
	}
	var ref KBIndexRef
	if item := out.Responses[0].Item; item != nil {
		var m kbMetaItem
		if err := attributevalue.UnmarshalMap(item, &m); err != nil {
			return ref, nil, fmt.Errorf("read kb state: decode index: %w", err)
		}
		ref = KBIndexRef{Version: m.Version, Name: m.Name}
	}
	if item := out.Responses[1].Item; item != nil {
		var d kbDocItem
		if err := attributevalue.UnmarshalMap(item, &d); err != nil {
			return ref, nil, fmt.Errorf("read kb state: decode document: %w", err)
		}
		doc := d.doc()
		return ref, &doc, nil
	}
	return ref, nil, nil
}

// GetKBDoc reads one document's metadata. Errors: NotFound, Unavailable.
func (t *TenantStore) GetKBDoc(ctx context.Context, docID string) (KBDoc, error) {
	it, err := getItem[kbDocItem](ctx, t.s, "get kb document", t.pk, kbDocSK(docID), "document "+docID+" not found")
	return it.doc(), err
}

// ListKBDocs pages through this tenant's documents, by id.
func (t *TenantStore) ListKBDocs(ctx context.Context, cursor string, limit int) (bulkhead.Page[KBDoc], error) {
	return listPage(ctx, t.s, "list kb documents", t.pk, prefixKBDoc, cursor, limit, nil, kbDocItem.doc)
}

// KBWrite is one change to a knowledge base, as read and as it is to be.
type KBWrite struct {
	// From is the index the change was built from; To the one it built.
	From, To KBIndexRef
	// Prev is the document as read (nil: it did not exist). Put is the
	// document to store, nil to delete Prev.
	Prev, Put *KBDoc
	// Quota bounds storage when the document grows.
	Quota bulkhead.Quota
	Now   time.Time
}

// Indexes of the knowledge base transaction's items.
const (
	kbwDoc = iota
	kbwMeta
	kbwLive
)

// CommitKB applies a knowledge base change in one transaction: the
// document's item, the index pointer moved from From to To, and the
// document's change of size added to storage_bytes and storage_committed.
// It fails unless the index is still at From and the document as Prev
// (Conflict: read again, rebuild and retry), and, when the document
// grows, unless committed storage stays within the quota (QuotaExceeded,
// shaped as admission's storage refusal). Errors: Conflict, QuotaExceeded,
// Unavailable.
func (t *TenantStore) CommitKB(ctx context.Context, w KBWrite) error {
	if w.Put == nil && w.Prev == nil {
		return bulkhead.Errorf(bulkhead.Internal, "write kb: no document to put or delete")
	}
	var delta int64
	if w.Prev != nil {
		delta -= w.Prev.Bytes
	}
	if w.Put != nil {
		delta += w.Put.Bytes
	}
	limit := w.Quota.StorageBytes()
	if delta > limit {
		u, err := t.Counters(ctx, w.Now)
		if err != nil {
			return err
		}
		return storageQuotaError(w.Quota, u)
	}
	writes := make([]types.TransactWriteItem, kbwLive, kbwLive+1)
	docKey := key(t.pk, kbDocSK(docIDOf(w)))
	docCond, docVals := "attribute_not_exists(PK)", map[string]types.AttributeValue(nil)
	if w.Prev != nil {
		docCond, docVals = "rev = :prev", map[string]types.AttributeValue{":prev": str(w.Prev.Rev)}
	}
	if w.Put != nil {
		av, err := attributevalue.MarshalMap(kbDocItem{PK: t.pk, SK: kbDocSK(w.Put.ID), DocID: w.Put.ID, Bytes: w.Put.Bytes,
			ContentType: w.Put.ContentType, Rev: w.Put.Rev, CreatedAt: w.Put.CreatedAt, UpdatedAt: w.Put.UpdatedAt})
		if err != nil {
			return err
		}
		writes[kbwDoc] = types.TransactWriteItem{Put: &types.Put{TableName: aws.String(t.s.table), Item: av,
			ConditionExpression: aws.String(docCond), ExpressionAttributeValues: docVals}}
	} else {
		writes[kbwDoc] = types.TransactWriteItem{Delete: &types.Delete{TableName: aws.String(t.s.table), Key: docKey,
			ConditionExpression: aws.String(docCond), ExpressionAttributeValues: docVals}}
	}
	metaCond := "index_version = :from"
	metaVals := map[string]types.AttributeValue{":from": num(w.From.Version), ":to": num(w.To.Version), ":name": str(w.To.Name), ":now": ts(w.Now)}
	if w.From.Version == 0 {
		metaCond = "attribute_not_exists(index_version)"
		delete(metaVals, ":from")
	}
	writes[kbwMeta] = types.TransactWriteItem{Update: &types.Update{TableName: aws.String(t.s.table), Key: key(t.pk, skKBMeta),
		UpdateExpression:          aws.String("SET index_version = :to, index_name = :name, updated_at = :now"),
		ConditionExpression:       aws.String(metaCond),
		ExpressionAttributeValues: metaVals}}
	if delta != 0 {
		up := &types.Update{TableName: aws.String(t.s.table), Key: key(t.pk, skLive),
			UpdateExpression:          aws.String("ADD storage_bytes :d, storage_committed :d"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":d": num(delta)}}
		// Giving bytes back is never refused; growing is, past the quota,
		// counting what running executions have reserved.
		if delta > 0 {
			up.ConditionExpression = aws.String("attribute_not_exists(storage_committed) OR storage_committed <= :max")
			up.ExpressionAttributeValues[":max"] = num(bulkhead.SubSat(limit, delta))
			up.ReturnValuesOnConditionCheckFailure = types.ReturnValuesOnConditionCheckFailureAllOld
		}
		writes = append(writes, types.TransactWriteItem{Update: up})
	}
	op := auditOp{tenant: t.tid, action: bulkhead.ActionKBDocumentDeleted, target: docIDOf(w)}
	if w.Put != nil {
		op.action = bulkhead.ActionKBDocumentWritten
		op.changes = map[string]bulkhead.Change{"bytes": {After: w.Put.Bytes}, "content_type": {After: w.Put.ContentType}}
		if w.Prev != nil {
			op.changes["bytes"] = bulkhead.Change{Before: w.Prev.Bytes, After: w.Put.Bytes}
			op.changes["content_type"] = bulkhead.Change{Before: w.Prev.ContentType, After: w.Put.ContentType}
		}
	} else if w.Prev != nil {
		op.changes = map[string]bulkhead.Change{"bytes": {Before: w.Prev.Bytes}}
	}
	err := t.s.transactAudited(ctx, op, writes...)
	if err == nil {
		return nil
	}
	reasons := cancelReasons(err)
	failed := func(i int) bool { return i < len(reasons) && reasons[i] == "ConditionalCheckFailed" }
	switch {
	case failed(kbwDoc) || failed(kbwMeta):
		return &bulkhead.Error{Code: bulkhead.Conflict, Op: "write kb", Message: "the knowledge base was changed concurrently; retry", Err: err}
	case failed(kbwLive):
		// The counters as they were come with the refusal where the
		// backend returns them; a consistent read covers the others.
		if items := cancelItems(err); len(items) > kbwLive && items[kbwLive] != nil {
			return storageQuotaError(w.Quota, bulkhead.Usage{StorageBytes: intAttr(items[kbwLive], "storage_bytes"),
				StorageCommitted: intAttr(items[kbwLive], "storage_committed")})
		}
		u, rerr := t.Counters(ctx, w.Now)
		if rerr != nil {
			return rerr
		}
		return storageQuotaError(w.Quota, u)
	}
	return translate("write kb", err, bulkhead.Internal, "")
}

func docIDOf(w KBWrite) string {
	if w.Put != nil {
		return w.Put.ID
	}
	if w.Prev != nil {
		return w.Prev.ID
	}
	return ""
}

// storageQuotaError is the refusal admission gives when storage is full,
// with the same fields, so a client handles both alike.
func storageQuotaError(q bulkhead.Quota, u bulkhead.Usage) error {
	return &bulkhead.Error{Code: bulkhead.QuotaExceeded, Message: fmt.Sprintf("Storage quota exceeded (%d MB)", q.MaxStorageMB),
		Fields: map[string]any{"quota_type": "storage", "limit": q.MaxStorageMB, "used": u.StorageBytes, "committed": u.StorageCommitted}}
}
