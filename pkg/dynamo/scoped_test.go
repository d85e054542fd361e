package dynamo_test

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/bulkhead-dev/bulkhead/pkg/awsclients"
	"github.com/bulkhead-dev/bulkhead/pkg/bulkhead"
	"github.com/bulkhead-dev/bulkhead/pkg/dynamo"
	"github.com/bulkhead-dev/bulkhead/pkg/embedded"
)

// recorder notes the access key each request was signed with.
type recorder struct {
	mu   sync.Mutex
	keys []string
	next http.RoundTripper
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	auth := req.Header.Get("Authorization")
	if _, after, ok := strings.Cut(auth, "Credential="); ok {
		akid, _, _ := strings.Cut(after, "/")
		r.mu.Lock()
		r.keys = append(r.keys, akid)
		r.mu.Unlock()
	}
	return r.next.RoundTrip(req)
}

func (r *recorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	k := r.keys
	r.keys = nil
	return k
}

type perTenant struct{}

func (perTenant) ForTenant(tid string) aws.CredentialsProvider {
	return credentials.NewStaticCredentialsProvider("AKID-"+tid, "secret", "token")
}

// TestTenantCallsUseTenantCredentials checks at the wire level that a
// tenant-bound store signs with the tenant's credentials and the store-level
// calls with the function's own.
func TestTenantCallsUseTenantCredentials(t *testing.T) {
	d, err := embedded.StartDynamoDB(context.Background(), embedded.DynamoDBOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close(context.Background()) })
	rec := &recorder{next: http.DefaultTransport}
	cfg := awsclients.Static("")
	cfg.HTTPClient = &http.Client{Transport: rec}
	client := awsclients.NewDynamoDB(cfg, d.URL())
	if err := dynamo.CreateTable(context.Background(), client, "t"); err != nil {
		t.Fatal(err)
	}
	s := dynamo.New(client, "t", func() time.Time { return t0 }).WithTenantCredentials(perTenant{})
	ctx := context.Background()
	rec.take()
	if err := s.Tenant("tn_a").CreateAgent(ctx, bulkhead.Agent{ID: "agt_a", Name: "a", Status: bulkhead.AgentActive, Model: bulkhead.DefaultModel, Version: 1}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Tenant("tn_a").GetAgent(ctx, "agt_a"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Tenant("tn_b").Counters(ctx, t0); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(rec.take(), ","); got != "AKID-tn_a,AKID-tn_a,AKID-tn_b" {
		t.Errorf("tenant calls signed with %s", got)
	}
	if _, err := s.LookupKey(ctx, "nohash"); !bulkhead.IsCode(err, bulkhead.NotFound) {
		t.Fatal(err)
	}
	// The authorizer's one read reaches the APIKEY# partition with the
	// tenant's profile: no tenant session may.
	if _, _, err := s.LookupKeyAndTenant(ctx, "nohash", "tn_a"); !bulkhead.IsCode(err, bulkhead.NotFound) {
		t.Fatal(err)
	}
	if got := strings.Join(rec.take(), ","); got != awsclients.StaticAccessKey+","+awsclients.StaticAccessKey {
		t.Errorf("store-level call signed with %s, want the function's own key", got)
	}
}

// TestEdgeKeyCounter never passes its maximum, also concurrently.
func TestEdgeKeyCounter(t *testing.T) {
	c := mustStore(t).EdgeKeyCounter()
	ctx := context.Background()
	var wg sync.WaitGroup
	var mu sync.Mutex
	got := 0
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok, err := c.Reserve(ctx, 3)
			if err != nil {
				t.Error(err)
			}
			if ok {
				mu.Lock()
				got++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if got != 3 {
		t.Fatalf("%d reservations of 3", got)
	}
	if err := c.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if ok, _ := c.Reserve(ctx, 3); !ok {
		t.Error("a released slot was not reusable")
	}
	for range 5 {
		if err := c.Release(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if ok, _ := c.Reserve(ctx, 1); !ok {
		t.Error("releasing below zero blocked the counter")
	}
}
