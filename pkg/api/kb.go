package api

import (
	"context"
	"fmt"
	"math/rand/v2"
	"mime"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/bulkhead-dev/bulkhead/pkg/bulkhead"
	"github.com/bulkhead-dev/bulkhead/pkg/dynamo"
	"github.com/bulkhead-dev/bulkhead/pkg/kb"
)

// Knowledge base bounds.
const (
	// maxDocBytes is the largest document.
	maxDocBytes = 1 << 20
	// maxDocJSONBytes bounds a document as its GET carries it, JSON-encoded
	// (a control character or '<' takes six bytes there): within it the
	// response fits Lambda's with room to spare even escaped once more.
	maxDocJSONBytes = 5 << 19
	// kbWriteAttempts bounds how often one write rebuilds the index after
	// losing the race to a concurrent write of the same knowledge base.
	kbWriteAttempts = 25
	// kbGetAttempts bounds how often a read follows a document replaced
	// between reading its metadata and its object.
	kbGetAttempts = 3
)

// kbContentTypes are the media types a document may have.
var kbContentTypes = map[string]bool{"text/plain": true, "text/markdown": true}

type kbDocView struct {
	DocID     string `json:"doc_id"`
	Bytes     int64  `json:"bytes"`
	UpdatedAt string `json:"updated_at"`
}

func viewKBDoc(d dynamo.KBDoc) kbDocView {
	return kbDocView{DocID: d.ID, Bytes: d.Bytes, UpdatedAt: timestamp(d.UpdatedAt)}
}

func kbDocID(r *request) (string, error) {
	id := r.PathParameters["doc_id"]
	if !kb.ValidDocID(id) {
		return "", bulkhead.Errorf(bulkhead.Invalid, "doc_id must be 1-%d characters of letters, digits, '.', '_' and '-', and not \".\" or \"..\"", kb.MaxDocIDLen)
	}
	return id, nil
}

// kbContentType checks the request's media type; a charset, if given, must be UTF-8.
func kbContentType(r *request) (string, error) {
	mt, params, err := mime.ParseMediaType(header(r.APIGatewayProxyRequest, "Content-Type"))
	if err != nil || !kbContentTypes[mt] {
		return "", bulkhead.Errorf(bulkhead.Invalid, "Content-Type must be text/plain or text/markdown")
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return "", bulkhead.Errorf(bulkhead.Invalid, "documents must be UTF-8 (charset %q)", cs)
	}
	return mt, nil
}

// putKBDocument stores a document and indexes it. It answers 200 whether
// the document was created or replaced: the route's status is fixed, and a
// PUT of the same text twice is then the same response.
//
// The document goes to a new object revision first, then one DynamoDB
// transaction makes it current together with the new index and the
// storage counters (see writeKB). Until that commits nothing refers to the
// new objects, so a failure leaves the knowledge base as it was; the new
// objects are then deleted (or, if this process dies first, left
// unreferenced and uncounted, never half-counted).
func (a *API) putKBDocument(ctx context.Context, r *request) (any, error) {
	id, err := kbDocID(r)
	if err != nil {
		return nil, err
	}
	ct, err := kbContentType(r)
	if err != nil {
		return nil, err
	}
	body, err := rawBody(r.APIGatewayProxyRequest)
	if err != nil {
		return nil, err
	}
	switch {
	case len(body) > maxDocBytes:
		return nil, bulkhead.Errorf(bulkhead.TooLarge, "a document is at most %d bytes", maxDocBytes)
	case !utf8.Valid(body):
		return nil, bulkhead.Errorf(bulkhead.Invalid, "a document must be valid UTF-8")
	case bulkhead.JSONStringLen(string(body)) > maxDocJSONBytes:
		return nil, bulkhead.Errorf(bulkhead.TooLarge, "a document is at most %d bytes JSON-encoded (control characters and <, > and & take six)", maxDocJSONBytes)
	}
	tenant, err := a.tenantStore(r).Profile(ctx)
	if err != nil {
		return nil, err
	}
	now := a.now().UTC()
	doc := dynamo.KBDoc{ID: id, Bytes: int64(len(body)), ContentType: ct, Rev: bulkhead.NewID("rev"), CreatedAt: now, UpdatedAt: now}
	tr := a.transcriptStore(r)
	if err := tr.PutKBDocument(ctx, id, doc.Rev, ct, body); err != nil {
		return nil, err
	}
	if err := a.writeKB(ctx, r, id, &doc, string(body), tenant.Quota()); err != nil {
		a.cleanup(r, "kb document", tr.DeleteKBDocument(context.WithoutCancel(ctx), id, doc.Rev))
		return nil, err
	}
	return viewKBDoc(doc), nil
}

// deleteKBDocument removes a document from the index and gives its bytes
// back in one transaction, then deletes its object. Should that last step
// fail, the object is left unreferenced and no longer counted.
func (a *API) deleteKBDocument(ctx context.Context, r *request) (any, error) {
	id, err := kbDocID(r)
	if err != nil {
		return nil, err
	}
	if err := a.writeKB(ctx, r, id, nil, "", bulkhead.Quota{}); err != nil {
		return nil, err
	}
	return map[string]any{"doc_id": id, "deleted": true}, nil
}

// writeKB puts (put non-nil) or deletes one document: it reads the index
// version and the document, rebuilds the index from the current index
// object, writes it under a new name, and commits document, index pointer
// and storage delta together on condition that the version has not moved.
// A write that lost the race to another starts over, a bounded number of
// times. Objects no longer current (the previous index, the replaced
// revision) are deleted after the commit. Index objects are not counted
// against the storage quota: they are the platform's, derived from the
// documents that are counted, and a tenant cannot size them directly.
// Errors: NotFound (deleting a missing document), Conflict (too much
// contention), QuotaExceeded, Unavailable.
func (a *API) writeKB(ctx context.Context, r *request, id string, put *dynamo.KBDoc, text string, quota bulkhead.Quota) error {
	ts, tr := a.tenantStore(r), a.transcriptStore(r)
	for attempt := range kbWriteAttempts {
		if attempt > 0 {
			if err := backoff(ctx, attempt); err != nil {
				return err
			}
		}
		from, prev, err := ts.KBState(ctx, id)
		if err != nil {
			return err
		}
		if put == nil && prev == nil {
			return bulkhead.Errorf(bulkhead.NotFound, "document %s not found", id)
		}
		ix := &kb.Index{}
		if from.Name != "" {
			data, err := tr.KBIndex(ctx, from.Name)
			if bulkhead.IsCode(err, bulkhead.NotFound) {
				// A write that committed since the read has deleted it.
				continue
			}
			if err != nil {
				return err
			}
			if ix, err = kb.Decode(data); err != nil {
				return &bulkhead.Error{Code: bulkhead.Internal, Op: "write kb", Message: "unreadable knowledge base index " + from.Name, Err: err}
			}
		}
		if put != nil {
			ix.Add(id, text)
			if prev != nil {
				put.CreatedAt = prev.CreatedAt
			}
		} else {
			ix.Remove(id)
		}
		to := dynamo.KBIndexRef{Version: from.Version + 1}
		to.Name = fmt.Sprintf("%012d-%s", to.Version, bulkhead.NewID("ix"))
		if err := tr.PutKBIndex(ctx, to.Name, ix.Encode()); err != nil {
			return err
		}
		err = ts.CommitKB(ctx, dynamo.KBWrite{From: from, To: to, Prev: prev, Put: put, Quota: quota, Now: a.now().UTC()})
		if err != nil {
			a.cleanup(r, "kb index", tr.DeleteKBIndex(context.WithoutCancel(ctx), to.Name))
			if bulkhead.IsCode(err, bulkhead.Conflict) {
				continue
			}
			return err
		}
		bg := context.WithoutCancel(ctx)
		if from.Name != "" {
			a.cleanup(r, "kb index", tr.DeleteKBIndex(bg, from.Name))
		}
		if prev != nil {
			a.cleanup(r, "kb document", tr.DeleteKBDocument(bg, id, prev.Rev))
		}
		return nil
	}
	return &bulkhead.Error{Code: bulkhead.Conflict, Message: "the knowledge base is being changed by many writes at once; retry", RetryAfter: 1}
}

// backoff waits a random time that grows with the attempt, so writers that
// collided do not collide again in step.
func backoff(ctx context.Context, attempt int) error {
	d := time.Duration(rand.Int64N(int64(min(5*time.Millisecond<<min(attempt, 6), 200*time.Millisecond))))
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return &bulkhead.Error{Code: bulkhead.Unavailable, Op: "write kb", Message: "request cancelled", Err: ctx.Err()}
	case <-t.C:
		return nil
	}
}

// cleanup logs an object that could not be deleted: it is unreferenced and
// uncounted, so only the bucket pays for it.
func (a *API) cleanup(r *request, what string, err error) {
	if err != nil {
		r.log.Warn("could not delete an unreferenced object", "object", what, "error", err.Error())
	}
}

func (a *API) getKBDocument(ctx context.Context, r *request) (any, error) {
	id, err := kbDocID(r)
	if err != nil {
		return nil, err
	}
	ts, tr := a.tenantStore(r), a.transcriptStore(r)
	for range kbGetAttempts {
		d, err := ts.GetKBDoc(ctx, id)
		if err != nil {
			return nil, err
		}
		body, err := tr.KBDocument(ctx, id, d.Rev)
		if bulkhead.IsCode(err, bulkhead.NotFound) {
			// Replaced or deleted since the metadata was read.
			continue
		}
		if err != nil {
			return nil, err
		}
		return struct {
			kbDocView
			ContentType string `json:"content_type"`
			Text        string `json:"text"`
		}{viewKBDoc(d), d.ContentType, string(body)}, nil
	}
	return nil, &bulkhead.Error{Code: bulkhead.Conflict, Message: "the document is being replaced; retry", RetryAfter: 1}
}

func (a *API) listKBDocuments(ctx context.Context, r *request) (any, error) {
	cursor, limit, err := pageParams(r.APIGatewayProxyRequest)
	if err != nil {
		return nil, err
	}
	page, err := a.tenantStore(r).ListKBDocs(ctx, cursor, limit)
	if err != nil {
		return nil, err
	}
	views := make([]kbDocView, len(page.Items))
	for i, d := range page.Items {
		views[i] = viewKBDoc(d)
	}
	return list(views, page.NextCursor), nil
}
