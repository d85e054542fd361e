package runtime

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/bulkhead-dev/bulkhead/pkg/awsclients"
	"github.com/bulkhead-dev/bulkhead/pkg/bulkhead"
	"github.com/bulkhead-dev/bulkhead/pkg/dynamo"
	"github.com/bulkhead-dev/bulkhead/pkg/embedded"
	"github.com/bulkhead-dev/bulkhead/pkg/kb"
	"github.com/bulkhead-dev/bulkhead/pkg/s3store"
)

// kbStores returns a function giving each tenant its stores on one pair of
// embedded DynamoDB and S3 servers. (This test is inside the package, to
// call searchKB, so it builds the stores itself: the platform test helper
// imports this package.)
func kbStores(tb testing.TB) func(tenant string) stores {
	tb.Helper()
	ctx := context.Background()
	d, err := embedded.StartDynamoDB(ctx, embedded.DynamoDBOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = d.Close(context.Background()) })
	s, err := embedded.StartS3(ctx, embedded.S3Options{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = s.Close(context.Background()) })
	cfg := awsclients.Static("")
	ddb, s3c := awsclients.NewDynamoDB(cfg, d.URL()), awsclients.NewS3(cfg, s.URL())
	if err := dynamo.CreateTable(ctx, ddb, "t"); err != nil {
		tb.Fatal(err)
	}
	if err := s3store.CreateBucket(ctx, s3c, "kb-test"); err != nil {
		tb.Fatal(err)
	}
	ds, ss := dynamo.New(ddb, "t", nil), s3store.New(s3c, "kb-test")
	return func(tenant string) stores { return stores{ts: ds.Tenant(tenant), tr: ss.Tenant(tenant)} }
}

// mustIndex stores ix as the tenant's current index.
func mustIndex(tb testing.TB, st stores, ix *kb.Index) {
	tb.Helper()
	ctx := context.Background()
	to := dynamo.KBIndexRef{Version: 1, Name: "000000000001-ix_test"}
	if err := st.tr.PutKBIndex(ctx, to.Name, ix.Encode()); err != nil {
		tb.Fatal(err)
	}
	doc := &dynamo.KBDoc{ID: "x", Bytes: 1, ContentType: "text/plain", Rev: "rev_x", CreatedAt: time.Now(), UpdatedAt: time.Now()}
	q := bulkhead.Quota{MaxStorageMB: 1}
	if err := st.ts.CommitKB(ctx, dynamo.KBWrite{To: to, Put: doc, Quota: q, Now: time.Now()}); err != nil {
		tb.Fatal(err)
	}
}

type kbAnswer struct {
	Results []kbResult `json:"results"`
	Error   string     `json:"error"`
}

func decodeAnswer(tb testing.TB, s string) kbAnswer {
	tb.Helper()
	var a kbAnswer
	if err := json.Unmarshal([]byte(s), &a); err != nil {
		tb.Fatalf("tool result %q is not JSON: %v", s, err)
	}
	return a
}

func TestSearchKB(t *testing.T) {
	tenant := kbStores(t)
	st := tenant("tn_a")
	r := &Runner{}
	ctx := context.Background()

	if got := r.searchKB(ctx, st, json.RawMessage(`{"query":"refund"}`)); got != `{"results":[]}` {
		t.Errorf("search of an empty knowledge base = %s, want no results", got)
	}

	var ix kb.Index
	ix.Add("refunds.md", "Refunds are paid within 30 days to the original card.")
	ix.Add("shipping.md", "Orders ship from Lyon within two days.")
	for i := range 30 {
		ix.Add(fmt.Sprintf("faq-%02d.md", i), fmt.Sprintf("Question %d about orders and refunds. %s", i, strings.Repeat("filler words here ", 50)))
	}
	mustIndex(t, st, &ix)

	a := decodeAnswer(t, r.searchKB(ctx, st, json.RawMessage(`{"query":"When are refunds paid to the card?"}`)))
	if a.Error != "" || len(a.Results) == 0 || a.Results[0].DocID != "refunds.md" || a.Results[0].Score <= 0 ||
		a.Results[0].Passage != "Refunds are paid within 30 days to the original card." {
		t.Errorf("search = %+v, want refunds.md first with its passage", a)
	}
	a = decodeAnswer(t, r.searchKB(ctx, st, json.RawMessage(`{"query":"orders","top_k":2}`)))
	if len(a.Results) != 2 {
		t.Errorf("top_k 2: %d results", len(a.Results))
	}
	// Twenty long passages do not fit a tool result: the best ones that fit are kept.
	raw := r.searchKB(ctx, st, json.RawMessage(`{"query":"filler orders","top_k":20}`))
	a = decodeAnswer(t, raw)
	if len(raw) > maxToolResultBytes || len(a.Results) == 0 || len(a.Results) == 20 {
		t.Errorf("top_k 20: %d bytes, %d results; want at most %d bytes and fewer than 20", len(raw), len(a.Results), maxToolResultBytes)
	}

	for _, bad := range []string{`{}`, `{"query":"  "}`, `{"query":"x","top_k":0}`, `{"query":"x","top_k":21}`, `[1]`, `{"query":3}`} {
		if a := decodeAnswer(t, r.searchKB(ctx, st, json.RawMessage(bad))); a.Error == "" {
			t.Errorf("arguments %s: %+v, want a tool error", bad, a)
		}
	}

	// Another tenant's search reads its own, empty, knowledge base.
	if got := r.searchKB(ctx, tenant("tn_b"), json.RawMessage(`{"query":"refunds"}`)); got != `{"results":[]}` {
		t.Errorf("another tenant's search = %s, want no results", got)
	}
}

func TestFitResultsCutsTheFirstPassage(t *testing.T) {
	long := strings.Repeat("<é>", 1000)
	got := fitResults([]kbResult{{DocID: "a", Passage: long, Score: 1}, {DocID: "b", Passage: "short", Score: 0.5}}, 400)
	a := decodeAnswer(t, got)
	if len(got) > 400 || len(a.Results) != 1 || a.Results[0].DocID != "a" || !strings.HasPrefix(long, a.Results[0].Passage) || len(a.Results[0].Passage) < 50 {
		t.Errorf("fitResults = %d bytes %+v; want the first result, cut, within 400 bytes", len(got), a)
	}
}
