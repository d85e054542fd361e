package s3store_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/bulkhead-dev/bulkhead/pkg/bulkhead"
	"github.com/bulkhead-dev/bulkhead/pkg/s3store"
)

const testBucket = "bulkhead-test"

// requestCounter counts the requests that reach the embedded S3 server, by
// kind. It wraps the server's handler, so it counts real HTTP requests
// (retries included), not calls to a mock.
type requestCounter struct {
	mu     sync.Mutex
	counts map[string]int
}

// Request kinds.
const (
	reqGet    = "GET"  // GetObject
	reqPut    = "PUT"  // PutObject (and CreateBucket)
	reqList   = "LIST" // ListObjectsV2
	reqDelete = "DELETE_OBJECTS"
)

func (c *requestCounter) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		kind := r.Method
		q := r.URL.Query()
		switch {
		case r.Method == http.MethodGet && q.Has("list-type"):
			kind = reqList
		case r.Method == http.MethodPost && q.Has("delete"):
			kind = reqDelete
		}
		c.mu.Lock()
		c.counts[kind]++
		c.mu.Unlock()
		next.ServeHTTP(w, r)
	})
}

// take returns the counts since the last take and starts counting afresh.
func (c *requestCounter) take() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	got := c.counts
	c.counts = map[string]int{}
	return got
}

// testEnv is a real S3 client talking to an embedded S3 server over HTTP.
type testEnv struct {
	client   *s3.Client
	store    *s3store.Store
	requests *requestCounter
}

// newTestEnv starts an embedded S3 server with the bucket created, and a real
// SDK client configured as the platform configures it for the embedded server.
func newTestEnv(tb testing.TB) *testEnv {
	tb.Helper()
	counter := &requestCounter{counts: map[string]int{}}
	faker := gofakes3.New(s3mem.New(), gofakes3.WithLogger(gofakes3.DiscardLog()))
	srv := httptest.NewServer(counter.wrap(faker.Server()))
	tb.Cleanup(srv.Close)

	// An explicit config, so nothing in the environment (AWS_PROFILE,
	// endpoint variables) can redirect the client.
	cfg := aws.Config{
		Region:                     "us-east-1",
		Credentials:                credentials.NewStaticCredentialsProvider("test", "test", ""),
		HTTPClient:                 srv.Client(),
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	}
	client := s3.NewFromConfig(cfg, func(o *s3.Options) {
		o.BaseEndpoint = aws.String(srv.URL)
		o.UsePathStyle = true
	})
	ctx := context.Background()
	// Twice: creating a bucket we already have must succeed.
	for range 2 {
		if err := s3store.CreateBucket(ctx, client, testBucket); err != nil {
			tb.Fatalf("CreateBucket: %v", err)
		}
	}
	counter.take()
	return &testEnv{client: client, store: s3store.New(client, testBucket), requests: counter}
}

// keys lists every key in the bucket under prefix.
func (e *testEnv) keys(tb testing.TB, prefix string) []string {
	tb.Helper()
	var keys []string
	pages := s3.NewListObjectsV2Paginator(e.client, &s3.ListObjectsV2Input{Bucket: aws.String(testBucket), Prefix: aws.String(prefix)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(context.Background())
		if err != nil {
			tb.Fatalf("list %s: %v", prefix, err)
		}
		for _, obj := range page.Contents {
			keys = append(keys, aws.ToString(obj.Key))
		}
	}
	return keys
}

var baseTime = time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC)

// turnMessages returns a user and an assistant message whose JSON size does
// not depend on the turn number (below 100,000), so every turn's object has
// the same size.
func turnMessages(turn int64, filler int) []bulkhead.Message {
	pad := strings.Repeat("x", filler)
	at := baseTime.Add(time.Duration(turn) * time.Second)
	return []bulkhead.Message{
		{Role: bulkhead.RoleUser, Content: fmt.Sprintf("question %05d %s", turn, pad), CreatedAt: at},
		{Role: bulkhead.RoleAssistant, Content: fmt.Sprintf("answer %05d %s", turn, pad), CreatedAt: at,
			ExecutionID: fmt.Sprintf("exe_%016d", turn), InputTokens: 100, OutputTokens: 200},
	}
}

// mustAppend appends a turn and fails the test on error.
func mustAppend(tb testing.TB, ts *s3store.TenantStore, cid string, turn int64, msgs []bulkhead.Message) int64 {
	tb.Helper()
	n, err := ts.AppendTurn(context.Background(), cid, turn, msgs)
	if err != nil {
		tb.Fatalf("AppendTurn(%s, %d): %v", cid, turn, err)
	}
	return n
}
