package api_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/bulkhead-dev/bulkhead/pkg/awsclients"
	"github.com/bulkhead-dev/bulkhead/pkg/kb"
	"github.com/bulkhead-dev/bulkhead/pkg/platform"
)

func (h *harness) putDoc(t tenant, id, text, contentType string) response {
	h.t.Helper()
	return h.doWithHeader("PUT", "/v1/kb/documents/"+id, t.key, text, "Content-Type", contentType)
}

// storage returns the tenant's exact storage counters.
func (h *harness) storage(t tenant) (bytes, committed int64) {
	h.t.Helper()
	u, err := h.env.API.Store().Tenant(t.id).Counters(context.Background(), h.clock.Now())
	if err != nil {
		h.t.Fatal(err)
	}
	return u.StorageBytes, u.StorageCommitted
}

// kbKeys lists the tenant's knowledge base objects under sub ("docs/", "index/").
func (h *harness) kbKeys(t tenant, sub string) []string {
	h.t.Helper()
	c := awsclients.NewS3(awsclients.Static(""), h.env.S3.URL())
	out, err := c.ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: aws.String(platform.DefaultBucket),
		Prefix: aws.String("tenants/" + t.id + "/kb/" + sub)})
	if err != nil {
		h.t.Fatal(err)
	}
	var keys []string
	for _, o := range out.Contents {
		keys = append(keys, aws.ToString(o.Key))
	}
	return keys
}

// search runs a query on the tenant's current index, as search_kb does.
func (h *harness) search(t tenant, query string) []kb.Result {
	h.t.Helper()
	ctx := context.Background()
	ref, err := h.env.API.Store().Tenant(t.id).KBIndex(ctx)
	if err != nil {
		h.t.Fatal(err)
	}
	if ref.Name == "" {
		return nil
	}
	data, err := h.env.API.Transcripts().Tenant(t.id).KBIndex(ctx, ref.Name)
	if err != nil {
		h.t.Fatal(err)
	}
	rs, err := kb.SearchEncoded(data, query, kb.MaxTopK)
	if err != nil {
		h.t.Fatal(err)
	}
	return rs
}

func TestKBDocumentLifecycle(t *testing.T) {
	h := newHarness(t, 0)
	a := h.newTenant("acme", "starter")
	text := "# Refunds\n\nRefunds are paid within 30 days.\n"

	r := h.putDoc(a, "refunds.md", text, "text/markdown; charset=UTF-8")
	if r.status != 200 || r.str("doc_id") != "refunds.md" || num(t, r.body["bytes"]) != int64(len(text)) || r.str("updated_at") == "" {
		t.Fatalf("PUT: %d %s", r.status, r.raw)
	}
	g := h.must(200, "GET", "/v1/kb/documents/refunds.md", a.key, nil)
	if g.str("text") != text || g.str("content_type") != "text/markdown" || num(t, g.body["bytes"]) != int64(len(text)) {
		t.Errorf("GET: %s", g.raw)
	}
	if b, c := h.storage(a); b != int64(len(text)) || c != int64(len(text)) {
		t.Errorf("storage after PUT = %d/%d, want %d", b, c, len(text))
	}
	if rs := h.search(a, "refunds paid"); len(rs) != 1 || rs[0].DocID != "refunds.md" {
		t.Errorf("search after PUT = %+v", rs)
	}

	// Replacing adjusts storage by the difference and replaces the passages.
	text2 := "Shipping takes two days from Lyon."
	if r := h.doWithHeader("PUT", "/v1/kb/documents/refunds.md", "", text2, "Content-Type", "text/plain"); r.status != 401 {
		t.Errorf("PUT without a key: %d, want 401", r.status)
	}
	r = h.putDoc(a, "refunds.md", text2, "text/plain")
	if r.status != 200 || num(t, r.body["bytes"]) != int64(len(text2)) {
		t.Fatalf("replace: %d %s", r.status, r.raw)
	}
	if b, c := h.storage(a); b != int64(len(text2)) || c != int64(len(text2)) {
		t.Errorf("storage after replace = %d/%d, want %d", b, c, len(text2))
	}
	if rs := h.search(a, "refunds"); len(rs) != 0 {
		t.Errorf("the replaced text is still found: %+v", rs)
	}
	if got := h.kbKeys(a, "docs/"); len(got) != 1 {
		t.Errorf("document objects after replace: %q, want the current revision only", got)
	}
	if got := h.kbKeys(a, "index/"); len(got) != 1 {
		t.Errorf("index objects after replace: %q, want the current index only", got)
	}

	h.putDoc(a, "b.txt", "bee", "text/plain")
	l := h.must(200, "GET", "/v1/kb/documents?limit=1", a.key, nil)
	data, _ := l.body["data"].([]any)
	if len(data) != 1 || l.body["has_more"] != true || l.str("next_cursor") == "" {
		t.Fatalf("list page 1: %s", l.raw)
	}
	l2 := h.must(200, "GET", "/v1/kb/documents?limit=1&cursor="+l.str("next_cursor"), a.key, nil)
	first, _ := data[0].(map[string]any)
	data2, _ := l2.body["data"].([]any)
	second, _ := data2[0].(map[string]any)
	if first["doc_id"] != "b.txt" || second["doc_id"] != "refunds.md" || l2.body["has_more"] != false {
		t.Errorf("list pages: %s then %s", l.raw, l2.raw)
	}
	if r := h.do("GET", "/v1/kb/documents?cursor=not-a-cursor", a.key, nil); r.status != 400 || r.errCode() != "invalid_request" {
		t.Errorf("a forged cursor: %d %s, want 400", r.status, r.raw)
	}

	h.must(200, "DELETE", "/v1/kb/documents/refunds.md", a.key, nil)
	h.must(200, "DELETE", "/v1/kb/documents/b.txt", a.key, nil)
	if r := h.do("DELETE", "/v1/kb/documents/refunds.md", a.key, nil); r.status != 404 || r.errCode() != "not_found" {
		t.Errorf("second DELETE: %d %s", r.status, r.raw)
	}
	if r := h.do("GET", "/v1/kb/documents/refunds.md", a.key, nil); r.status != 404 {
		t.Errorf("GET after DELETE: %d", r.status)
	}
	if b, c := h.storage(a); b != 0 || c != 0 {
		t.Errorf("storage after deleting everything = %d/%d, want 0", b, c)
	}
	if got := h.kbKeys(a, "docs/"); len(got) != 0 {
		t.Errorf("document objects after DELETE: %q", got)
	}
	if rs := h.search(a, "shipping bee"); len(rs) != 0 {
		t.Errorf("deleted documents found: %+v", rs)
	}
}

func TestKBPutRefusals(t *testing.T) {
	h := newHarness(t, 0)
	a := h.newTenant("acme", "starter")
	for _, c := range []struct {
		name, id, body, ct string
		status             int
	}{
		{"json", "a.md", `{"x":1}`, "application/json", 400},
		{"no content type", "a.md", "text", "", 400},
		{"latin-1", "a.md", "text", "text/plain; charset=ISO-8859-1", 400},
		{"not UTF-8", "a.md", "caf\xe9", "text/plain", 400},
		{"dot dot", "..", "text", "text/plain", 400},
		{"bad id", "a%23b", "text", "text/plain", 400},
		{"long id", strings.Repeat("x", 129), "text", "text/plain", 400},
		{"over 1 MiB", "big.txt", strings.Repeat("a", 1<<20+1), "text/plain", 413},
		{"escapes to too much", "lt.txt", strings.Repeat("<", 1<<19), "text/plain", 413},
	} {
		r := h.putDoc(a, c.id, c.body, c.ct)
		if r.status != c.status || r.errCode() == "" {
			t.Errorf("%s: %d %s, want %d in the error shape", c.name, r.status, r.raw, c.status)
		}
	}
	if r := h.putDoc(a, "max.txt", strings.Repeat("a", 1<<20), "text/plain"); r.status != 200 {
		t.Errorf("a 1 MiB document: %d %s", r.status, r.raw)
	}
	if got := h.kbKeys(a, "docs/"); len(got) != 1 {
		t.Errorf("document objects: %q, want only the accepted one", got)
	}
}

// TestKBStorageQuota: a document that would pass the storage quota is
// refused with admission's storage refusal and leaves nothing behind.
func TestKBStorageQuota(t *testing.T) {
	h := newHarness(t, 0)
	a := h.newTenant("acme", "starter")
	h.must(200, "PATCH", "/v1/admin/tenants/"+a.id, adminToken, map[string]any{"quota": map[string]any{"max_storage_mb": 1}})
	part := strings.Repeat("word ", 600<<10/5) // 600 KiB
	if r := h.putDoc(a, "one.txt", part, "text/plain"); r.status != 200 {
		t.Fatalf("first document: %d %s", r.status, r.raw)
	}
	indexBefore := h.kbKeys(a, "index/")
	r := h.putDoc(a, "two.txt", part, "text/plain")
	e, _ := r.body["error"].(map[string]any)
	if r.status != 429 || r.errCode() != "quota_exceeded" || e["quota_type"] != "storage" ||
		num(t, e["limit"]) != 1 || num(t, e["used"]) != int64(len(part)) || num(t, e["committed"]) != int64(len(part)) {
		t.Fatalf("over quota: %d %s", r.status, r.raw)
	}
	if b, c := h.storage(a); b != int64(len(part)) || c != int64(len(part)) {
		t.Errorf("storage after the refusal = %d/%d, want %d/%d", b, c, len(part), len(part))
	}
	if got := h.kbKeys(a, "docs/"); len(got) != 1 || !strings.Contains(got[0], "/one.txt/") {
		t.Errorf("document objects after the refusal: %q, want one.txt's only", got)
	}
	if got := h.kbKeys(a, "index/"); fmt.Sprint(got) != fmt.Sprint(indexBefore) {
		t.Errorf("index objects after the refusal: %q, want %q", got, indexBefore)
	}
	if r := h.do("GET", "/v1/kb/documents/two.txt", a.key, nil); r.status != 404 {
		t.Errorf("the refused document: %d", r.status)
	}
	// Shrinking the first document is never refused, and makes room.
	if r := h.putDoc(a, "one.txt", "small", "text/plain"); r.status != 200 {
		t.Fatalf("shrink: %d %s", r.status, r.raw)
	}
	if r := h.putDoc(a, "two.txt", part, "text/plain"); r.status != 200 {
		t.Fatalf("after making room: %d %s", r.status, r.raw)
	}
	if b, c := h.storage(a); b != int64(len(part)+5) || c != int64(len(part)+5) {
		t.Errorf("storage = %d/%d, want %d", b, c, len(part)+5)
	}
}

// TestKBConcurrentPuts: writes racing on one knowledge base all land in
// its one index.
func TestKBConcurrentPuts(t *testing.T) {
	h := newHarness(t, 0)
	a := h.newTenant("acme", "starter")
	const n = 20
	var wg sync.WaitGroup
	var total int64
	var mu sync.Mutex
	for i := range n {
		text := fmt.Sprintf("Document number %d mentions the codeword zeta%03d among other words.", i, i)
		mu.Lock()
		total += int64(len(text))
		mu.Unlock()
		wg.Go(func() {
			if r := h.putDoc(a, fmt.Sprintf("doc-%02d.txt", i), text, "text/plain"); r.status != 200 {
				t.Errorf("PUT %d: %d %s", i, r.status, r.raw)
			}
		})
	}
	wg.Wait()
	for i := range n {
		rs := h.search(a, fmt.Sprintf("zeta%03d", i))
		if len(rs) != 1 || rs[0].DocID != fmt.Sprintf("doc-%02d.txt", i) {
			t.Errorf("search for document %d's codeword: %+v", i, rs)
		}
	}
	if b, c := h.storage(a); b != total || c != total {
		t.Errorf("storage = %d/%d, want %d", b, c, total)
	}
	if got := h.kbKeys(a, "docs/"); len(got) != n {
		t.Errorf("%d document objects, want %d", len(got), n)
	}
	if got := h.kbKeys(a, "index/"); len(got) != 1 {
		t.Errorf("index objects: %q, want the current one only", got)
	}
}

// TestKBLostCommitResponse: a commit whose response is lost is retried by
// the SDK with the same token and counted once.
func TestKBLostCommitResponse(t *testing.T) {
	h := newHarness(t, 0)
	a := h.newTenant("acme", "starter")
	h.env.Dynamo.LoseResponses("TransactWriteItems", 1)
	if r := h.putDoc(a, "a.txt", "alpha beta", "text/plain"); r.status != 200 {
		t.Fatalf("PUT with a lost response: %d %s", r.status, r.raw)
	}
	if b, c := h.storage(a); b != 10 || c != 10 {
		t.Errorf("storage = %d/%d, want 10 (counted once)", b, c)
	}
	if rs := h.search(a, "alpha"); len(rs) != 1 {
		t.Errorf("search = %+v", rs)
	}
}

// TestKBIsolation: another tenant can neither read, delete nor find a
// tenant's documents; a document of the same id is its own.
func TestKBIsolation(t *testing.T) {
	h := newHarness(t, 0)
	a, b := h.newTenant("acme", "starter"), h.newTenant("globex", "starter")
	h.putDoc(a, "plans.md", "secret launch plans for the rocket", "text/markdown")
	for _, m := range []string{"GET", "DELETE"} {
		if r := h.do(m, "/v1/kb/documents/plans.md", b.key, nil); r.status != 404 || r.errCode() != "not_found" {
			t.Errorf("%s as another tenant: %d %s", m, r.status, r.raw)
		}
	}
	if l := h.must(200, "GET", "/v1/kb/documents", b.key, nil); strings.Contains(l.raw, "plans.md") {
		t.Errorf("another tenant's list shows the document: %s", l.raw)
	}
	if rs := h.search(b, "secret rocket plans"); len(rs) != 0 {
		t.Errorf("another tenant's search finds %+v", rs)
	}
	if r := h.putDoc(b, "plans.md", "globex picnic", "text/plain"); r.status != 200 {
		t.Fatalf("B's own plans.md: %d", r.status)
	}
	if g := h.must(200, "GET", "/v1/kb/documents/plans.md", a.key, nil); g.str("text") != "secret launch plans for the rocket" {
		t.Errorf("A's document after B wrote the same id: %s", g.raw)
	}
	if rs := h.search(a, "picnic"); len(rs) != 0 {
		t.Errorf("A's search finds B's document: %+v", rs)
	}
}
