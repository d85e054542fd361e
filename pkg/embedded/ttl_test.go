package embedded_test

import (
	"path/filepath"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/bulkhead-dev/bulkhead/pkg/embedded"
)

// testClock is an injected clock that tests move by hand.
type testClock struct{ unix atomic.Int64 }

func newTestClock(unix int64) *testClock {
	c := &testClock{}
	c.unix.Store(unix)
	return c
}

func (c *testClock) now() time.Time { return time.Unix(c.unix.Load(), 0) }

// expiresAt is a TTL attribute value: unix seconds.
func expiresAt(unix int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(unix, 10)}
}

func mustEnableTTL(tb testing.TB, c *dynamodb.Client, table, attr string) {
	tb.Helper()
	if _, err := c.UpdateTimeToLive(testContext(tb), &dynamodb.UpdateTimeToLiveInput{
		TableName:               aws.String(table),
		TimeToLiveSpecification: &types.TimeToLiveSpecification{AttributeName: aws.String(attr), Enabled: aws.Bool(true)},
	}); err != nil {
		tb.Fatalf("UpdateTimeToLive %s: %v", table, err)
	}
}

// TestSweepTTLDeletesExpiredItemsAndSurvivesRestart checks which items a sweep
// deletes, and that its deletions are logged: after a restart the deleted items
// stay deleted, a conditional write that needed one gone replays as it ran, and
// the TTL setting is still on.
func TestSweepTTLDeletesExpiredItemsAndSurvivesRestart(t *testing.T) {
	const now = 1_800_000_000
	path := filepath.Join(t.TempDir(), "dynamo.json")
	clock := newTestClock(now)
	opts := embedded.DynamoDBOptions{SnapshotPath: path, Now: clock.now, TTLSweepEvery: -1}
	d := mustStartDynamoDB(t, opts)
	c := dynamoClient(d)
	ctx := testContext(t)
	mustCreateTable(t, c, "leases")
	mustCreateTable(t, c, "plain") // no TTL: nothing in it expires
	mustPutItem(t, c, "leases", item("p", "early", map[string]types.AttributeValue{"expires_at": expiresAt(now - 60)}))
	mustEnableTTL(t, c, "leases", "expires_at")

	for sk, v := range map[string]types.AttributeValue{
		"old":    expiresAt(now - 3600),
		"just":   expiresAt(now - 1),
		"at-now": expiresAt(now),
		"future": expiresAt(now + 3600),
		"string": &types.AttributeValueMemberS{Value: "1"},
	} {
		mustPutItem(t, c, "leases", item("p", sk, map[string]types.AttributeValue{"expires_at": v}))
	}
	mustPutItem(t, c, "leases", item("p", "none", nil))
	mustPutItem(t, c, "plain", item("p", "old", map[string]types.AttributeValue{"expires_at": expiresAt(now - 3600)}))

	n, err := d.SweepTTL(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n != 3 {
		t.Errorf("SweepTTL deleted %d items, want 3 (early, old, just)", n)
	}
	want := []string{"at-now", "future", "none", "string"}
	if got := sortKeys(mustScan(t, c, "leases")); !slices.Equal(got, want) {
		t.Errorf("items left after the sweep: %v, want %v", got, want)
	}
	if got := sortKeys(mustScan(t, c, "plain")); !slices.Equal(got, []string{"old"}) {
		t.Errorf("table without TTL after the sweep: %v, want [old]", got)
	}
	if n, err := d.SweepTTL(ctx); err != nil || n != 0 {
		t.Errorf("second sweep at the same time: %d, %v; want 0, nil", n, err)
	}

	// A write that needs "just" gone; replay must meet it gone too.
	if _, err := c.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:           aws.String("leases"),
		Item:                item("p", "just", map[string]types.AttributeValue{"holder": &types.AttributeValueMemberS{Value: "b"}}),
		ConditionExpression: aws.String("attribute_not_exists(PK)"),
	}); err != nil {
		t.Fatalf("conditional put over an expired item: %v", err)
	}
	mustClose(t, d)

	d = mustStartDynamoDB(t, opts)
	c = dynamoClient(d)
	want = []string{"at-now", "future", "just", "none", "string"}
	if got := sortKeys(mustScan(t, c, "leases")); !slices.Equal(got, want) {
		t.Errorf("items after restart: %v, want %v", got, want)
	}
	if it := mustGetItem(t, c, "leases", "p", "just"); it["holder"] == nil || it["expires_at"] != nil {
		t.Errorf("item rewritten after its expiry reads %v after restart, want the conditional put's", it)
	}
	if a, ok := d.TTLAttribute("leases"); !ok || a != "expires_at" {
		t.Errorf("TTLAttribute after restart = %q %v, want expires_at true", a, ok)
	}
	desc, err := c.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: aws.String("leases")})
	if err != nil {
		t.Fatal(err)
	}
	if s := desc.TimeToLiveDescription.TimeToLiveStatus; s != types.TimeToLiveStatusEnabled {
		t.Errorf("DescribeTimeToLive after restart: %s, want ENABLED", s)
	}

	// The engine's expiry order is rebuilt too: an hour later "at-now" and
	// "future" expire.
	clock.unix.Store(now + 3601)
	if n, err := d.SweepTTL(ctx); err != nil || n != 2 {
		t.Errorf("sweep an hour later after restart: %d, %v; want 2, nil", n, err)
	}

	// Through a compaction as well: the snapshot's table log keeps the setting.
	if err := d.Snapshot(ctx); err != nil {
		t.Fatal(err)
	}
	mustClose(t, d)
	d = mustStartDynamoDB(t, opts)
	if a, ok := d.TTLAttribute("leases"); !ok || a != "expires_at" {
		t.Errorf("TTLAttribute after a snapshot and restart = %q %v, want expires_at true", a, ok)
	}
	want = []string{"just", "none", "string"}
	if got := sortKeys(mustScan(t, dynamoClient(d), "leases")); !slices.Equal(got, want) {
		t.Errorf("items after a snapshot and restart: %v, want %v", got, want)
	}
}

// TestTTLSweeperRunsPeriodically: with the sweeper on, an item deleted once the
// injected clock passes its expiry, while an item that has not expired stays.
func TestTTLSweeperRunsPeriodically(t *testing.T) {
	const now = 1_800_000_000
	clock := newTestClock(now)
	d := mustStartDynamoDB(t, embedded.DynamoDBOptions{Now: clock.now, TTLSweepEvery: 10 * time.Millisecond})
	c := dynamoClient(d)
	mustCreateTable(t, c, "leases")
	mustEnableTTL(t, c, "leases", "expires_at")
	mustPutItem(t, c, "leases", item("p", "lease", map[string]types.AttributeValue{"expires_at": expiresAt(now + 30)}))
	mustPutItem(t, c, "leases", item("p", "later", map[string]types.AttributeValue{"expires_at": expiresAt(now + 3600)}))

	clock.unix.Store(now + 31)
	ctx := testContext(t)
	for {
		if got := sortKeys(mustScan(t, c, "leases")); slices.Equal(got, []string{"later"}) {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the expired item was not deleted by the sweeper: items %v", sortKeys(mustScan(t, c, "leases")))
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// BenchmarkSweepTTL measures one sweep of 10,000 expired items in a table of
// 20,000, persisted (each deletion is logged and fsynced).
func BenchmarkSweepTTL(b *testing.B) {
	const now, expired = 1_800_000_000, 10_000
	for b.Loop() {
		b.StopTimer()
		d := mustStartDynamoDB(b, embedded.DynamoDBOptions{
			SnapshotPath: filepath.Join(b.TempDir(), "dynamo.json"), Now: newTestClock(now).now, TTLSweepEvery: -1,
		})
		c := dynamoClient(d)
		mustCreateTable(b, c, "leases")
		mustEnableTTL(b, c, "leases", "expires_at")
		var reqs []types.WriteRequest
		for i := range 2 * expired {
			at := int64(now - 1 - i)
			if i >= expired {
				at = now + int64(i)
			}
			reqs = append(reqs, types.WriteRequest{PutRequest: &types.PutRequest{
				Item: item("p", strconv.Itoa(i), map[string]types.AttributeValue{"expires_at": expiresAt(at)})}})
			if len(reqs) == 25 {
				if _, err := c.BatchWriteItem(testContext(b), &dynamodb.BatchWriteItemInput{
					RequestItems: map[string][]types.WriteRequest{"leases": reqs}}); err != nil {
					b.Fatal(err)
				}
				reqs = nil
			}
		}
		b.StartTimer()
		n, err := d.SweepTTL(testContext(b))
		if err != nil || n != expired {
			b.Fatalf("SweepTTL = %d, %v; want %d", n, err, expired)
		}
		b.StopTimer()
		mustClose(b, d)
		b.StartTimer()
	}
}
