package dynamo

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/bulkhead-dev/bulkhead/pkg/bulkhead"
)

// TestMigrateCountersFoldsLegacyItems writes a tenant's counters as the
// earlier layout kept them (MONTH#, HOUR# and RUN# items, the running count on
// LIVE) and migrates: the usage, the committed counts and the lease are read
// from the counter item after, a second run moves nothing, and the migrated
// lease is reclaimed like any other, giving its slot and reservation back.
func TestMigrateCountersFoldsLegacyItems(t *testing.T) {
	ctx := context.Background()
	s, setup, _ := countedStore(t)
	now := s.now()
	tenant := bulkhead.Tenant{ID: "tn_aaaaaaaaaaaaaaaa", Name: "a", Tier: "starter", Status: bulkhead.TenantActive, CreatedAt: now, UpdatedAt: now}
	if err := s.CreateTenant(ctx, tenant, bulkhead.APIKey{ID: "key_a", TenantID: tenant.ID, Hash: "h", Status: bulkhead.KeyActive, CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	ts := s.Tenant(tenant.ID)
	month, hour := bulkhead.MonthKey(now), bulkhead.HourKey(now)
	n := func(v int64) types.AttributeValue { return num(v) }
	put := func(item map[string]types.AttributeValue) {
		t.Helper()
		item[attrPK] = str(ts.pk)
		if _, err := setup.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String("t"), Item: item}); err != nil {
			t.Fatal(err)
		}
	}
	put(map[string]types.AttributeValue{attrSK: str("MONTH#" + month), "tokens": n(300), "input_tokens": n(200), "output_tokens": n(100),
		"spend_micros": n(4500), "executions": n(3), "committed_tokens": n(1300), "committed_spend_micros": n(9500),
		"tiers": &types.AttributeValueMemberSS{Value: []string{"starter"}}})
	put(map[string]types.AttributeValue{attrSK: str("HOUR#" + hour), "requests": n(4)})
	put(map[string]types.AttributeValue{attrSK: str("RUN#exec_1"), "execution_id": str("exec_1"), "agent_id": str("agt_a"),
		"conversation_id": str("conv_1"), "month": str(month), "reserved_tokens": n(1000), "reserved_spend_micros": n(5000),
		"reserved_bytes": n(4096), "lease_until": n(now.Add(time.Minute).Unix()), "started_at": str(now.Format(time.RFC3339Nano)), "turn": n(2)})
	put(map[string]types.AttributeValue{attrSK: str(skLive), "running": n(1), "storage_bytes": n(500), "storage_committed": n(4596)})

	moved, err := s.MigrateCounters(ctx, now)
	if err != nil || moved != 3 {
		t.Fatalf("migrate: %d items, %v; want 3", moved, err)
	}
	u, err := ts.Counters(ctx, now)
	if err != nil {
		t.Fatal(err)
	}
	want := bulkhead.Usage{RequestsThisHour: 4, TokensThisMonth: 300, InputTokens: 200, OutputTokens: 100, SpendThisMonth: 4500, Executions: 3,
		CommittedTokens: 1300, CommittedSpend: 9500, Running: 1, StorageBytes: 500, StorageCommitted: 4596}
	if u != want {
		t.Errorf("counters after the migration:\n got %+v\nwant %+v", u, want)
	}
	if tiers, err := ts.MonthTiers(ctx, month); err != nil || len(tiers) != 1 || tiers[0] != "starter" {
		t.Errorf("month tiers: %v, %v", tiers, err)
	}
	if again, err := s.MigrateCounters(ctx, now); err != nil || again != 0 {
		t.Errorf("second migration: %d items, %v; want none", again, err)
	}

	leases, err := ts.Leases(ctx)
	if err != nil || len(leases) != 1 || leases[0].ExecutionID != "exec_1" || leases[0].Reserved.Tokens != 1000 || leases[0].Turn != 2 {
		t.Fatalf("leases after the migration: %+v, %v", leases, err)
	}
	l, ok, err := ts.AbandonLease(ctx, leases[0], now.Add(2*time.Minute))
	if err != nil || !ok || l.CleanupTurn != 2 {
		t.Fatalf("reclaim the migrated lease: %+v, %v, %v; want it reclaimed with turn 2 to clean up", l, ok, err)
	}
	if err := ts.ForgetLease(ctx, l); err != nil {
		t.Fatal(err)
	}
	u, _ = ts.Counters(ctx, now)
	if u.Running != 0 || u.CommittedTokens != 300 || u.CommittedSpend != 4500 || u.StorageCommitted != 500 {
		t.Errorf("after the reclaim: %+v; want nothing running, committed back to used, storage back to stored", u)
	}
	live, _ := ts.counterItem(ctx, "test")
	if _, held := live[claimAttr("conv_1")]; held {
		t.Error("the migrated conversation claim is still held after the lease was forgotten")
	}
}
