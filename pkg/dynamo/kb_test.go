package dynamo_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/bulkhead-dev/bulkhead/pkg/bulkhead"
	"github.com/bulkhead-dev/bulkhead/pkg/dynamo"
)

func mustStorage(tb testing.TB, ts *dynamo.TenantStore) (bytes, committed int64) {
	tb.Helper()
	u, err := ts.Counters(context.Background(), t0)
	if err != nil {
		tb.Fatal(err)
	}
	return u.StorageBytes, u.StorageCommitted
}

func kbDoc(id, rev string, n int64) *dynamo.KBDoc {
	return &dynamo.KBDoc{ID: id, Bytes: n, ContentType: "text/plain", Rev: rev, CreatedAt: t0, UpdatedAt: t0}
}

func TestKBCommitMovesIndexDocumentAndStorageTogether(t *testing.T) {
	ctx := context.Background()
	ts := mustStore(t).Tenant("tn_a")
	ref, prev, err := ts.KBState(ctx, "a.md")
	if err != nil || ref != (dynamo.KBIndexRef{}) || prev != nil {
		t.Fatalf("empty KBState = %+v, %+v, %v", ref, prev, err)
	}
	v1 := dynamo.KBIndexRef{Version: 1, Name: "000000000001-ix_a"}
	if err := ts.CommitKB(ctx, dynamo.KBWrite{From: ref, To: v1, Put: kbDoc("a.md", "rev_1", 100), Quota: bigQuota, Now: t0}); err != nil {
		t.Fatal(err)
	}
	if got, err := ts.KBIndex(ctx); err != nil || got != v1 {
		t.Errorf("KBIndex = %+v, %v; want %+v", got, err, v1)
	}
	if b, c := mustStorage(t, ts); b != 100 || c != 100 {
		t.Errorf("storage after the first document = %d/%d, want 100/100", b, c)
	}

	// A writer that read the empty knowledge base lost the race: refused, nothing moves.
	err = ts.CommitKB(ctx, dynamo.KBWrite{From: ref, To: dynamo.KBIndexRef{Version: 1, Name: "000000000001-ix_b"}, Put: kbDoc("b.md", "rev_2", 50), Quota: bigQuota, Now: t0})
	if !bulkhead.IsCode(err, bulkhead.Conflict) {
		t.Fatalf("stale commit: %v, want Conflict", err)
	}
	if _, err := ts.GetKBDoc(ctx, "b.md"); !bulkhead.IsCode(err, bulkhead.NotFound) {
		t.Errorf("the refused document exists: %v", err)
	}
	if b, c := mustStorage(t, ts); b != 100 || c != 100 {
		t.Errorf("storage after a refused commit = %d/%d, want 100/100", b, c)
	}

	// Replacing adjusts by the difference.
	ref, prev, err = ts.KBState(ctx, "a.md")
	if err != nil || ref != v1 || prev == nil || prev.Rev != "rev_1" || prev.Bytes != 100 {
		t.Fatalf("KBState = %+v, %+v, %v", ref, prev, err)
	}
	v2 := dynamo.KBIndexRef{Version: 2, Name: "000000000002-ix_c"}
	if err := ts.CommitKB(ctx, dynamo.KBWrite{From: ref, To: v2, Prev: prev, Put: kbDoc("a.md", "rev_3", 30), Quota: bigQuota, Now: t0}); err != nil {
		t.Fatal(err)
	}
	if b, c := mustStorage(t, ts); b != 30 || c != 30 {
		t.Errorf("storage after shrinking = %d/%d, want 30/30", b, c)
	}
	if d, err := ts.GetKBDoc(ctx, "a.md"); err != nil || d.Rev != "rev_3" || d.Bytes != 30 {
		t.Errorf("GetKBDoc = %+v, %v", d, err)
	}

	// Deleting gives the bytes back.
	v3 := dynamo.KBIndexRef{Version: 3, Name: "000000000003-ix_d"}
	if err := ts.CommitKB(ctx, dynamo.KBWrite{From: v2, To: v3, Prev: kbDoc("a.md", "rev_3", 30), Quota: bigQuota, Now: t0}); err != nil {
		t.Fatal(err)
	}
	if b, c := mustStorage(t, ts); b != 0 || c != 0 {
		t.Errorf("storage after deleting = %d/%d, want 0/0", b, c)
	}
	if _, err := ts.GetKBDoc(ctx, "a.md"); !bulkhead.IsCode(err, bulkhead.NotFound) {
		t.Errorf("deleted document: %v, want NotFound", err)
	}

	// Another tenant sees none of it.
	ref, prev, err = mustStore(t).Tenant("tn_b").KBState(ctx, "a.md")
	if err != nil || ref.Version != 0 || prev != nil {
		t.Errorf("tenant b's KBState = %+v, %+v, %v", ref, prev, err)
	}
}

func TestKBCommitRefusesPastTheStorageQuota(t *testing.T) {
	ctx := context.Background()
	ts := mustStore(t).Tenant("tn_a")
	q := bigQuota
	q.MaxStorageMB = 1
	// A running execution has reserved 1,000 bytes.
	if err := ts.Admit(ctx, dynamo.Admission{ExecutionID: "exec_1", Now: t0, Lease: time.Minute, Quota: q, Reserve: dynamo.Reservation{Tokens: 1, Spend: 1, Bytes: 1000}}); err != nil {
		t.Fatal(err)
	}
	v1 := dynamo.KBIndexRef{Version: 1, Name: "000000000001-ix_a"}
	big := bulkhead.BytesPerMB - 1000
	err := ts.CommitKB(ctx, dynamo.KBWrite{To: v1, Put: kbDoc("a.md", "rev_1", big+1), Quota: q, Now: t0})
	e := bulkhead.AsError(err)
	if e == nil || e.Code != bulkhead.QuotaExceeded || e.Fields["quota_type"] != "storage" || e.Fields["limit"] != int64(1) ||
		e.Fields["used"] != int64(0) || e.Fields["committed"] != int64(1000) {
		t.Fatalf("over quota: %#v, want QuotaExceeded storage with limit 1, used 0, committed 1000", err)
	}
	if ref, err := ts.KBIndex(ctx); err != nil || ref.Version != 0 {
		t.Errorf("after a refused write the index is %+v, %v; want version 0", ref, err)
	}
	// Larger than the whole quota: refused before any write.
	err = ts.CommitKB(ctx, dynamo.KBWrite{To: v1, Put: kbDoc("a.md", "rev_1", 2*bulkhead.BytesPerMB), Quota: q, Now: t0})
	if !bulkhead.IsCode(err, bulkhead.QuotaExceeded) {
		t.Errorf("larger than the quota: %v, want QuotaExceeded", err)
	}
	// Exactly what is left fits.
	if err := ts.CommitKB(ctx, dynamo.KBWrite{To: v1, Put: kbDoc("a.md", "rev_1", big), Quota: q, Now: t0}); err != nil {
		t.Fatalf("a document filling the quota exactly: %v", err)
	}
	if b, c := mustStorage(t, ts); b != big || c != bulkhead.BytesPerMB {
		t.Errorf("storage = %d/%d, want %d/%d", b, c, big, bulkhead.BytesPerMB)
	}
}

func TestListKBDocsPages(t *testing.T) {
	ctx := context.Background()
	ts := mustStore(t).Tenant("tn_a")
	ref := dynamo.KBIndexRef{}
	for i := range 5 {
		to := dynamo.KBIndexRef{Version: ref.Version + 1, Name: fmt.Sprintf("%012d-ix", ref.Version+1)}
		if err := ts.CommitKB(ctx, dynamo.KBWrite{From: ref, To: to, Put: kbDoc(fmt.Sprintf("d%d.md", i), "rev", int64(i)), Quota: bigQuota, Now: t0}); err != nil {
			t.Fatal(err)
		}
		ref = to
	}
	var got []string
	cursor := ""
	for pages := 0; ; pages++ {
		page, err := ts.ListKBDocs(ctx, cursor, 2)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range page.Items {
			got = append(got, d.ID)
		}
		if cursor = page.NextCursor; cursor == "" {
			if pages != 2 {
				t.Errorf("%d pages, want 3", pages+1)
			}
			break
		}
	}
	if fmt.Sprint(got) != "[d0.md d1.md d2.md d3.md d4.md]" {
		t.Errorf("listed %v", got)
	}
	if _, err := ts.ListAgents(ctx, mustCursor(t, ts), 2); !bulkhead.IsCode(err, bulkhead.Invalid) {
		t.Errorf("a document cursor used on agents: %v, want Invalid", err)
	}
}

func mustCursor(tb testing.TB, ts *dynamo.TenantStore) string {
	tb.Helper()
	page, err := ts.ListKBDocs(context.Background(), "", 1)
	if err != nil || page.NextCursor == "" {
		tb.Fatalf("ListKBDocs: %+v, %v", page, err)
	}
	return page.NextCursor
}
