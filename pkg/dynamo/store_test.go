package dynamo_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/bulkhead-dev/bulkhead/pkg/awsclients"
	"github.com/bulkhead-dev/bulkhead/pkg/bulkhead"
	"github.com/bulkhead-dev/bulkhead/pkg/dynamo"
	"github.com/bulkhead-dev/bulkhead/pkg/embedded"
)

var t0 = time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)

func mustStore(tb testing.TB) *dynamo.Store {
	tb.Helper()
	d, err := embedded.StartDynamoDB(context.Background(), embedded.DynamoDBOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = d.Close(context.Background()) })
	client := awsclients.NewDynamoDB(awsclients.Static(""), d.URL())
	if err := dynamo.CreateTable(context.Background(), client, "t"); err != nil {
		tb.Fatal(err)
	}
	if err := dynamo.CreateTable(context.Background(), client, "t"); err != nil {
		tb.Fatalf("creating an existing table again: %v", err)
	}
	return dynamo.New(client, "t", func() time.Time { return t0 })
}

var bigQuota = bulkhead.Quota{MaxRequestsPerHour: 1000, MaxTokensPerMonth: 1 << 40, MaxSpendPerMonth: 1 << 40, MaxConcurrentAgents: 100, MaxStorageMB: 1 << 20}

func exec(id, conv string, in, out int64) bulkhead.Execution {
	return bulkhead.Execution{ID: id, AgentID: "agt_a", ConversationID: conv, Model: bulkhead.DefaultModel, Status: bulkhead.ExecCompleted,
		InputTokens: in, OutputTokens: out, Cost: bulkhead.Micros(in*3 + out*15), StartedAt: t0, FinishedAt: t0.Add(time.Second)}
}

// TestSettleIsExactlyOnce settles the same execution many times, concurrently.
func TestSettleIsExactlyOnce(t *testing.T) {
	ctx := context.Background()
	ts := mustStore(t).Tenant("tn_a")
	res := dynamo.Reservation{Tokens: 1000, Spend: 5000, Bytes: 4096}
	if err := ts.Admit(ctx, dynamo.Admission{ExecutionID: "exec_1", Now: t0, Lease: time.Minute, Quota: bigQuota, Reserve: res}); err != nil {
		t.Fatal(err)
	}
	during, err := ts.Counters(ctx, t0)
	if err != nil {
		t.Fatal(err)
	}
	if during.CommittedTokens != 1000 || during.CommittedSpend != 5000 || during.StorageCommitted != 4096 || during.Running != 1 {
		t.Fatalf("while running: %+v, want the reservation committed", during)
	}
	st := dynamo.Settlement{Execution: exec("exec_1", "conv_1", 10, 5), Reserved: res, Turn: &dynamo.SettledTurn{New: true, AgentID: "agt_a", Bytes: 100, CreatedAt: t0}}
	var wg sync.WaitGroup
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := ts.Settle(ctx, st); err != nil {
				t.Errorf("settle: %v", err)
			}
		}()
	}
	wg.Wait()
	u, err := ts.Counters(ctx, t0)
	if err != nil {
		t.Fatal(err)
	}
	// Committed is back to used: the reservation was released exactly once.
	want := bulkhead.Usage{RequestsThisHour: 1, TokensThisMonth: 15, InputTokens: 10, OutputTokens: 5, SpendThisMonth: 105, Executions: 1,
		CommittedTokens: 15, CommittedSpend: 105, StorageBytes: 100, StorageCommitted: 100}
	if u != want {
		t.Errorf("counters = %+v, want %+v", u, want)
	}
	c, err := ts.GetConversation(ctx, "conv_1")
	if err != nil || c.Turns != 1 || c.Tokens != 15 || c.Bytes != 100 {
		t.Errorf("conversation = %+v, %v", c, err)
	}
}

// TestConversationClaim checks one turn at a time, lease expiry, and that a
// settlement whose claim was taken over is still metered.
func TestConversationClaim(t *testing.T) {
	ctx := context.Background()
	ts := mustStore(t).Tenant("tn_a")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(ts.Admit(ctx, dynamo.Admission{ExecutionID: "exec_1", Now: t0, Lease: time.Minute, Quota: bigQuota}))
	must(ts.Settle(ctx, dynamo.Settlement{Execution: exec("exec_1", "conv_1", 1, 1), Turn: &dynamo.SettledTurn{New: true, AgentID: "agt_a", Bytes: 10, CreatedAt: t0}}))

	claim := &dynamo.ConversationClaim{ID: "conv_1", Turns: 1}
	must(ts.Admit(ctx, dynamo.Admission{ExecutionID: "exec_2", Conversation: claim, Now: t0, Lease: time.Minute, Quota: bigQuota}))
	if err := ts.Admit(ctx, dynamo.Admission{ExecutionID: "exec_3", Conversation: claim, Now: t0.Add(30 * time.Second), Lease: time.Minute, Quota: bigQuota}); !bulkhead.IsCode(err, bulkhead.Conflict) {
		t.Fatalf("second claim while held: %v, want Conflict", err)
	}
	if _, err := ts.StartDeleteConversation(ctx, "conv_1"); !bulkhead.IsCode(err, bulkhead.Conflict) {
		t.Fatalf("delete while claimed: %v, want Conflict", err)
	}
	// exec_2 dies; after its lease exec_3 takes over and finishes.
	later := t0.Add(2 * time.Minute)
	must(ts.Admit(ctx, dynamo.Admission{ExecutionID: "exec_3", Conversation: claim, Now: later, Lease: time.Minute, Quota: bigQuota}))
	must(ts.Settle(ctx, dynamo.Settlement{Execution: exec("exec_3", "conv_1", 2, 2), Turn: &dynamo.SettledTurn{AgentID: "agt_a", Bytes: 10}, Claimed: true}))
	// exec_2 comes back late: its tokens are metered, its turn refused.
	err := ts.Settle(ctx, dynamo.Settlement{Execution: exec("exec_2", "conv_1", 3, 3), Turn: &dynamo.SettledTurn{AgentID: "agt_a", Bytes: 10}, Claimed: true})
	if !bulkhead.IsCode(err, bulkhead.Conflict) {
		t.Fatalf("late settle: %v, want Conflict", err)
	}
	u, err := ts.Counters(ctx, t0)
	must(err)
	if u.TokensThisMonth != 2+4+6 || u.Executions != 3 || u.Running != 0 {
		t.Errorf("counters = %+v, want 12 tokens, 3 executions, 0 running", u)
	}
	c, err := ts.GetConversation(ctx, "conv_1")
	must(err)
	if c.Turns != 2 {
		t.Errorf("turns = %d, want 2", c.Turns)
	}
	// A stale turn count passes admission (which reads no head) but its turn
	// is refused by the settlement: metered, not saved, the claim released.
	must(ts.Admit(ctx, dynamo.Admission{ExecutionID: "exec_4", Conversation: claim, Now: later, Lease: time.Minute, Quota: bigQuota}))
	err = ts.Settle(ctx, dynamo.Settlement{Execution: exec("exec_4", "conv_1", 1, 1), Turn: &dynamo.SettledTurn{AgentID: "agt_a", Bytes: 10, Number: 2}, Claimed: true})
	if !bulkhead.IsCode(err, bulkhead.Conflict) {
		t.Errorf("settle a turn over a stale turn count: %v, want Conflict", err)
	}
	if c, err := ts.GetConversation(ctx, "conv_1"); err != nil || c.Turns != 2 {
		t.Errorf("after the stale turn: %+v, %v; want 2 turns", c, err)
	}
	removed, err := ts.StartDeleteConversation(ctx, "conv_1")
	must(err)
	must(ts.FinishDeleteConversation(ctx, removed))
	u, _ = ts.Counters(ctx, t0)
	if u.StorageBytes != 20-removed.Bytes || removed.Bytes != 20 {
		t.Errorf("storage after delete = %d (removed %d)", u.StorageBytes, removed.Bytes)
	}
}

// TestConcurrentTenantPatchesDoNotLoseUpdates patches overrides concurrently.
func TestConcurrentTenantPatchesDoNotLoseUpdates(t *testing.T) {
	ctx := context.Background()
	s := mustStore(t)
	tn := bulkhead.Tenant{ID: "tn_a", Name: "a", Tier: bulkhead.Starter, Status: bulkhead.TenantActive, CreatedAt: t0, UpdatedAt: t0}
	if err := s.CreateTenant(ctx, tn, bulkhead.APIKey{ID: "key_a", TenantID: "tn_a", Hash: "h", Status: bulkhead.KeyActive, CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateTenant(ctx, tn, bulkhead.APIKey{ID: "key_b", TenantID: "tn_a", Hash: "h2", Status: bulkhead.KeyActive, CreatedAt: t0}); !bulkhead.IsCode(err, bulkhead.Conflict) {
		t.Fatalf("duplicate tenant: %v, want Conflict", err)
	}
	if _, err := s.LookupKey(ctx, "h2"); !bulkhead.IsCode(err, bulkhead.NotFound) {
		t.Fatalf("the refused tenant's key was written: %v", err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	applied := 0
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v := int64(i + 1)
			_, err := s.UpdateTenant(ctx, "tn_a", dynamo.TenantPatch{Overrides: &bulkhead.QuotaOverrides{MaxStorageMB: &v}})
			switch {
			case err == nil:
				mu.Lock()
				applied++
				mu.Unlock()
			case !bulkhead.IsCode(err, bulkhead.Conflict):
				t.Errorf("patch: %v", err)
			}
		}()
	}
	wg.Wait()
	if applied == 0 {
		t.Fatal("no patch applied")
	}
	got, err := s.GetTenant(ctx, "tn_a")
	if err != nil || got.Overrides.MaxStorageMB == nil {
		t.Fatalf("tenant = %+v, %v", got, err)
	}
	page, err := s.ListTenants(ctx, "", 10)
	if err != nil || len(page.Items) != 1 || page.Items[0].Overrides.MaxStorageMB == nil || *page.Items[0].Overrides.MaxStorageMB != *got.Overrides.MaxStorageMB {
		t.Errorf("operator index disagrees with the profile: %+v", page.Items)
	}
}

// TestFilteredListPagesAreFull lists conversations of one agent among many.
func TestFilteredListPagesAreFull(t *testing.T) {
	ctx := context.Background()
	ts := mustStore(t).Tenant("tn_a")
	for i := range 30 {
		agent := "agt_other"
		if i%3 == 0 {
			agent = "agt_mine"
		}
		id := bulkhead.NewID("exec")
		if err := ts.Admit(ctx, dynamo.Admission{ExecutionID: id, Now: t0, Lease: time.Minute, Quota: bigQuota}); err != nil {
			t.Fatal(err)
		}
		e := exec(id, bulkhead.NewID("conv"), 1, 1)
		if err := ts.Settle(ctx, dynamo.Settlement{Execution: e, Turn: &dynamo.SettledTurn{New: true, AgentID: agent, CreatedAt: t0}}); err != nil {
			t.Fatal(err)
		}
	}
	var got []bulkhead.Conversation
	cursor := ""
	for {
		page, err := ts.ListConversations(ctx, "agt_mine", cursor, 4)
		if err != nil {
			t.Fatal(err)
		}
		if page.NextCursor != "" && len(page.Items) != 4 {
			t.Errorf("a page before the last has %d items, want 4", len(page.Items))
		}
		got = append(got, page.Items...)
		if cursor = page.NextCursor; cursor == "" {
			break
		}
	}
	if len(got) != 10 {
		t.Errorf("listed %d conversations of the agent, want 10", len(got))
	}
	for _, c := range got {
		if c.AgentID != "agt_mine" {
			t.Errorf("filter leaked %s", c.AgentID)
		}
	}
}

// TestStorageQuotaCountsReservations admits writes only while stored bytes
// plus the reservations of running executions fit the storage quota.
func TestStorageQuotaCountsReservations(t *testing.T) {
	ctx := context.Background()
	ts := mustStore(t).Tenant("tn_a")
	q := bigQuota
	q.MaxStorageMB = 1
	res := dynamo.Reservation{Tokens: 10, Spend: 10, Bytes: 400 * 1024}
	admit := func(id string) error {
		return ts.Admit(ctx, dynamo.Admission{ExecutionID: id, Now: t0, Lease: time.Minute, Quota: q, Reserve: res})
	}
	if err := admit("exec_1"); err != nil {
		t.Fatal(err)
	}
	if err := admit("exec_2"); err != nil {
		t.Fatal(err)
	}
	err := admit("exec_3")
	e := bulkhead.AsError(err)
	if e == nil || e.Code != bulkhead.QuotaExceeded || e.Fields["quota_type"] != "storage" {
		t.Fatalf("third reservation of 400 KB in 1 MB: %v, want quota_exceeded storage", err)
	}
	// Settling gives back what was not written.
	st := dynamo.Settlement{Execution: exec("exec_1", "conv_1", 1, 1), Reserved: res, Turn: &dynamo.SettledTurn{New: true, AgentID: "agt_a", Bytes: 1000, CreatedAt: t0}}
	if err := ts.Settle(ctx, st); err != nil {
		t.Fatal(err)
	}
	if err := admit("exec_3"); err != nil {
		t.Errorf("after a settlement freed its reservation: %v", err)
	}
	u, err := ts.Counters(ctx, t0)
	if err != nil {
		t.Fatal(err)
	}
	if u.StorageBytes != 1000 || u.StorageCommitted != 1000+2*400*1024 {
		t.Errorf("storage = %d stored, %d committed", u.StorageBytes, u.StorageCommitted)
	}
}

// TestRefusalChangesNothing: a refused admission moves no counter.
func TestRefusalChangesNothing(t *testing.T) {
	ctx := context.Background()
	ts := mustStore(t).Tenant("tn_a")
	q := bigQuota
	q.MaxRequestsPerHour = 1
	res := dynamo.Reservation{Tokens: 10, Spend: 10, Bytes: 10}
	if err := ts.Admit(ctx, dynamo.Admission{ExecutionID: "exec_1", Now: t0, Lease: time.Minute, Quota: q, Reserve: res}); err != nil {
		t.Fatal(err)
	}
	before, _ := ts.Counters(ctx, t0)
	err := ts.Admit(ctx, dynamo.Admission{ExecutionID: "exec_2", Now: t0, Lease: time.Minute, Quota: q, Reserve: res})
	if e := bulkhead.AsError(err); e == nil || e.Code != bulkhead.RateLimited || e.Fields["used"] != int64(1) || e.RetryAfter != 3600 {
		t.Fatalf("second admission: %#v", err)
	}
	after, _ := ts.Counters(ctx, t0)
	if before != after {
		t.Errorf("a refused admission moved the counters: %+v -> %+v", before, after)
	}
}

// oneAtATime is a DynamoDB client whose BatchGetItem processes only the
// first key of each call and hands the others back as unprocessed, as
// DynamoDB may under load; it counts the calls.
type oneAtATime struct {
	dynamo.Client
	mu    sync.Mutex
	calls int
}

func (c *oneAtATime) BatchGetItem(ctx context.Context, in *dynamodb.BatchGetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error) {
	c.mu.Lock()
	c.calls++
	c.mu.Unlock()
	first := map[string]types.KeysAndAttributes{}
	rest := map[string]types.KeysAndAttributes{}
	for table, ka := range in.RequestItems {
		if len(first) == 0 && len(ka.Keys) > 0 {
			one := ka
			one.Keys = ka.Keys[:1]
			first[table] = one
			if len(ka.Keys) > 1 {
				ka.Keys = ka.Keys[1:]
				rest[table] = ka
			}
			continue
		}
		rest[table] = ka
	}
	out, err := c.Client.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: first}, optFns...)
	if err != nil {
		return nil, err
	}
	out.UnprocessedKeys = rest
	return out, nil
}

func (c *oneAtATime) take() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.calls
	c.calls = 0
	return n
}

// TestLookupKeyAndTenant reads a key with the tenant it names in one
// request, and refuses a key that is not that tenant's as if it were
// missing; unprocessed keys are read again.
func TestLookupKeyAndTenant(t *testing.T) {
	ctx := context.Background()
	d, err := embedded.StartDynamoDB(ctx, embedded.DynamoDBOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close(context.Background()) })
	client := awsclients.NewDynamoDB(awsclients.Static(""), d.URL())
	if err := dynamo.CreateTable(ctx, client, "t"); err != nil {
		t.Fatal(err)
	}
	s := dynamo.New(client, "t", func() time.Time { return t0 })
	for _, id := range []string{"tn_a", "tn_b"} {
		tn := bulkhead.Tenant{ID: id, Name: id, Tier: bulkhead.Starter, Status: bulkhead.TenantActive, CreatedAt: t0, UpdatedAt: t0}
		if err := s.CreateTenant(ctx, tn, bulkhead.APIKey{ID: "key_" + id, TenantID: id, Prefix: "p", Hash: "h-" + id, Status: bulkhead.KeyActive, CreatedAt: t0}); err != nil {
			t.Fatal(err)
		}
	}
	k, tn, err := s.LookupKeyAndTenant(ctx, "h-tn_a", "tn_a")
	if err != nil || k.ID != "key_tn_a" || k.TenantID != "tn_a" || k.Status != bulkhead.KeyActive || tn.ID != "tn_a" || tn.Tier != bulkhead.Starter || tn.Status != bulkhead.TenantActive {
		t.Fatalf("LookupKeyAndTenant = %+v, %+v, %v", k, tn, err)
	}
	// tn_a's key presented as tn_b's: the stored key decides.
	if k, tn, err := s.LookupKeyAndTenant(ctx, "h-tn_a", "tn_b"); !bulkhead.IsCode(err, bulkhead.NotFound) || k.ID != "" || tn.ID != "" {
		t.Errorf("another tenant's key: %+v, %+v, %v; want NotFound and nothing", k, tn, err)
	}
	if _, _, err := s.LookupKeyAndTenant(ctx, "nohash", "tn_a"); !bulkhead.IsCode(err, bulkhead.NotFound) {
		t.Errorf("unknown key: %v, want NotFound", err)
	}
	// A key whose tenant is missing is not a missing key: the caller fails closed.
	if err := s.Tenant("tn_c").CreateKey(ctx, bulkhead.APIKey{ID: "key_c", Prefix: "p", Hash: "h-tn_c", Status: bulkhead.KeyActive, CreatedAt: t0}, nil); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.LookupKeyAndTenant(ctx, "h-tn_c", "tn_c"); err == nil || bulkhead.IsCode(err, bulkhead.NotFound) {
		t.Errorf("key of a missing tenant: %v, want an error other than NotFound", err)
	}
	if _, err := s.Tenant("tn_a").RevokeKey(ctx, "key_tn_a"); err != nil {
		t.Fatal(err)
	}
	suspended := bulkhead.TenantSuspended
	if _, err := s.UpdateTenant(ctx, "tn_a", dynamo.TenantPatch{Status: &suspended}); err != nil {
		t.Fatal(err)
	}
	if k, tn, err := s.LookupKeyAndTenant(ctx, "h-tn_a", "tn_a"); err != nil || k.Status != bulkhead.KeyRevoked || tn.Status != bulkhead.TenantSuspended {
		t.Errorf("revoked key of a suspended tenant: %+v, %+v, %v", k, tn, err)
	}

	// Unprocessed keys are asked for again until none is left.
	slow := &oneAtATime{Client: client}
	s = dynamo.New(slow, "t", func() time.Time { return t0 })
	if k, tn, err := s.LookupKeyAndTenant(ctx, "h-tn_b", "tn_b"); err != nil || k.ID != "key_tn_b" || tn.ID != "tn_b" {
		t.Errorf("with unprocessed keys: %+v, %+v, %v", k, tn, err)
	}
	if n := slow.take(); n != 2 {
		t.Errorf("%d BatchGetItem calls, want 2 (one per round)", n)
	}
}
