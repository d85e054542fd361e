package dynamo_test

// Benchmarks of the quota hot path against the embedded DynamoDB (minidyn)
// through the real SDK. Read the figures with minidyn's nature in mind:
//
//   - It serves every request under one global lock, so what is measured
//     is the server's throughput, not a per-item or per-partition limit:
//     one hot item and 100 items spread out come out alike. The per-item
//     ceiling of real DynamoDB (about 1,000 WCU/s per partition, 2 WCU per
//     item written in a transaction) cannot be seen here; it is stated in
//     the README.
//   - Its TransactWriteItems rolls back from an undo log of the items it
//     touched (the fork in third_party/minidyn; v0.8.2 deep-copied every
//     table it touched, so admit+settle ran at about 750/s with ~0 other
//     items and 7.5/s with 10,000). BenchmarkAdmitSettleTableSize shows
//     that the cost per op no longer grows with the table. Local
//     admissions/s are still a property of minidyn, not a forecast for
//     DynamoDB; the request counts per op are the
//     figures that carry over. Settling leaves one usage record per op, so
//     benchAdmitSettle deletes them between chunks of ops (timer stopped)
//     to keep each run at the size it names.
//
// Every benchmark starts its own server for each b.N round, so rounds do not
// see each other's items, and all setup stays inside Benchmark functions:
// `go test` without -bench runs none of this.

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go/middleware"

	"github.com/bulkhead-dev/bulkhead/pkg/awsclients"
	"github.com/bulkhead-dev/bulkhead/pkg/bulkhead"
	"github.com/bulkhead-dev/bulkhead/pkg/dynamo"
	"github.com/bulkhead-dev/bulkhead/pkg/embedded"
)

// benchWorkers is how many goroutines drive the server at once, whatever
// GOMAXPROCS is, so that runs on different machines offer the same load.
const benchWorkers = 8

// benchQuota never refuses: the limits are far above anything a run reaches,
// so every op is the full admission and settlement, never a refusal.
var benchQuota = bulkhead.Quota{MaxRequestsPerHour: 1 << 50, MaxTokensPerMonth: 1 << 50, MaxSpendPerMonth: 1 << 50,
	MaxConcurrentAgents: 1 << 30, MaxStorageMB: 1 << 20}

// benchReserve is a typical execution's reservation: max tokens, priced, and
// room for a transcript turn.
var benchReserve = dynamo.Reservation{Tokens: 4096, Spend: 4096 * 15, Bytes: 64 << 10}

// ddbCounter counts DynamoDB calls by kind, once per call (SDK retries are
// inside one call), with an SDK middleware like platformtest's.
type ddbCounter struct {
	reads, writes, tx, other atomic.Int64
}

func (c *ddbCounter) reset() {
	c.reads.Store(0)
	c.writes.Store(0)
	c.tx.Store(0)
	c.other.Store(0)
}

func (c *ddbCounter) add(stack *middleware.Stack) error {
	return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("bench-count", func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
		switch awsmiddleware.GetOperationName(ctx) {
		case "TransactWriteItems":
			c.tx.Add(1)
		case "GetItem", "BatchGetItem", "TransactGetItems", "Query", "Scan":
			c.reads.Add(1)
		case "PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem":
			c.writes.Add(1)
		default:
			c.other.Add(1)
		}
		return next.HandleInitialize(ctx, in)
	}), middleware.After)
}

// report adds the request counts per op to the benchmark's line.
func (c *ddbCounter) report(b *testing.B, ops int) {
	n := float64(ops)
	tx, r, w, o := float64(c.tx.Load()), float64(c.reads.Load()), float64(c.writes.Load()), float64(c.other.Load())
	b.ReportMetric((tx+r+w+o)/n, "ddb-req/op")
	b.ReportMetric(tx/n, "ddb-tx/op")
	b.ReportMetric(r/n, "ddb-read/op")
	b.ReportMetric(w/n, "ddb-write/op")
}

// benchDB is one embedded DynamoDB with the platform's table, a client
// whose calls are counted for the ops under test, and one for setup and
// cleanup whose calls are not.
type benchDB struct {
	client *dynamodb.Client
	setup  *dynamodb.Client
	count  *ddbCounter
}

func startBenchDB(b *testing.B) benchDB {
	b.Helper()
	ctx := context.Background()
	d, err := embedded.StartDynamoDB(ctx, embedded.DynamoDBOptions{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = d.Close(context.Background()) })
	c := &ddbCounter{}
	cfg := awsclients.Static("")
	cfg.APIOptions = append(cfg.APIOptions, c.add)
	setup := awsclients.NewDynamoDB(awsclients.Static(""), d.URL())
	if err := dynamo.CreateTable(ctx, setup, "t"); err != nil {
		b.Fatal(err)
	}
	return benchDB{client: awsclients.NewDynamoDB(cfg, d.URL()), setup: setup, count: c}
}

// prefill writes n items that look like other tenants' usage records, so
// that the table holds n items more.
func prefill(b *testing.B, client *dynamodb.Client, n int) {
	b.Helper()
	s := func(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }
	num := func(v int) types.AttributeValue { return &types.AttributeValueMemberN{Value: strconv.Itoa(v)} }
	reqs := make([]types.WriteRequest, 0, n)
	for i := range n {
		id := fmt.Sprintf("exec_fill%07d", i)
		reqs = append(reqs, types.WriteRequest{PutRequest: &types.PutRequest{Item: map[string]types.AttributeValue{
			"PK": s(fmt.Sprintf("TENANT#tn_fill%03d", i%50)), "SK": s("EXEC#" + id),
			"execution_id": s(id), "agent_id": s("agt_fill"), "conversation_id": s(""), "model": s(bulkhead.DefaultModel),
			"status": s(bulkhead.ExecCompleted), "input_tokens": num(120), "output_tokens": num(80), "cost_micros": num(1560),
			"month": s("2026-11"), "started_at": s("2026-11-28T12:00:00Z"), "finished_at": s("2026-11-28T12:00:01Z"),
		}}})
	}
	batchWrite(b, client, reqs)
}

// batchWrite applies the requests with BatchWriteItem, 25 a call, retrying
// unprocessed ones.
func batchWrite(b *testing.B, client *dynamodb.Client, reqs []types.WriteRequest) {
	b.Helper()
	for len(reqs) > 0 {
		batch := reqs[:min(25, len(reqs))]
		reqs = reqs[len(batch):]
		for len(batch) > 0 {
			out, err := client.BatchWriteItem(context.Background(), &dynamodb.BatchWriteItemInput{RequestItems: map[string][]types.WriteRequest{"t": batch}})
			if err != nil {
				b.Fatalf("batch write: %v", err)
			}
			batch = out.UnprocessedItems["t"]
		}
	}
}

// admitSettle is one execution's quota path: admission with a reservation,
// then its settlement, as the execute handler does around the model call;
// without a conversation or an Idempotency-Key, which add one item each.
func admitSettle(ctx context.Context, ts *dynamo.TenantStore, id string) error {
	if err := ts.Admit(ctx, dynamo.Admission{ExecutionID: id, AgentID: benchAgent, Now: t0, Lease: time.Minute,
		Quota: benchQuota, Reserve: benchReserve}); err != nil {
		return fmt.Errorf("admit %s: %w", id, err)
	}
	e := exec(id, "", 120, 80)
	e.AgentID = benchAgent
	if err := ts.Settle(ctx, dynamo.Settlement{Execution: e, Reserved: benchReserve, Tier: bulkhead.Enterprise}); err != nil {
		return fmt.Errorf("settle %s: %w", id, err)
	}
	return nil
}

// benchChunk is how many ops run between two pauses of the timer, in which
// benchAdmitSettle removes the usage records the ops left, so that the table
// stays the size under test instead of growing by one item per op.
const benchChunk = 100

// runTimed runs op b.N times from benchWorkers goroutines, in chunks of
// benchChunk ops (op gets a unique sequence number from 0), calls between
// (if not nil) with the timer stopped after each chunk but the last, and
// reports ops/s under unit and the p50 and p99 latency of one op.
func runTimed(b *testing.B, unit string, op func(n int) error, between func()) {
	b.Helper()
	lat := make([]time.Duration, b.N)
	b.ResetTimer()
	for from := 0; from < b.N; from += benchChunk {
		to := min(from+benchChunk, b.N)
		var next atomic.Int64
		next.Store(int64(from))
		var wg sync.WaitGroup
		for range benchWorkers {
			wg.Go(func() {
				for n := int(next.Add(1) - 1); n < to; n = int(next.Add(1) - 1) {
					start := time.Now()
					if err := op(n); err != nil {
						b.Error(err)
						return
					}
					lat[n] = time.Since(start)
				}
			})
		}
		wg.Wait()
		if between != nil && to < b.N {
			b.StopTimer()
			between()
			b.StartTimer()
		}
	}
	b.StopTimer()
	slices.Sort(lat)
	pct := func(q float64) float64 {
		i := max(0, int(q*float64(len(lat))+0.999999)-1)
		return float64(lat[min(i, len(lat)-1)]) / float64(time.Millisecond)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), unit)
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
}

// benchAdmitSettle measures admit+settle spread round-robin over the given
// number of tenants, on a table holding fill unrelated items. The usage
// records the ops leave are deleted between chunks (timer stopped), so every
// op sees between fill and fill+benchChunk items (plus the counters):
// without that, the run's own records would make later ops slower than
// earlier ones and the figures would depend on b.N.
func benchAdmitSettle(b *testing.B, tenants, fill int) {
	db := startBenchDB(b)
	prefill(b, db.setup, fill)
	store := dynamo.New(db.client, "t", func() time.Time { return t0 })
	ts := make([]*dynamo.TenantStore, tenants)
	for i := range ts {
		ts[i] = store.Tenant(benchTenant(i))
	}
	ctx := context.Background()
	execID := func(n int) string { return fmt.Sprintf("exec_%08d", n) }
	db.count.reset()
	runTimed(b, "admissions/s", func(n int) error { return admitSettle(ctx, ts[n%tenants], execID(n)) },
		func() { deleteBenchRecords(b, db.setup) })
	db.count.report(b, b.N)
	// The size the last chunk ended at: fill, each tenant's counters (hour,
	// month, live, breaker bucket, day) and the chunk's usage records.
	items := 0
	p := dynamodb.NewScanPaginator(db.setup, &dynamodb.ScanInput{TableName: aws.String("t"), Select: types.SelectCount})
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			b.Fatal(err)
		}
		items += int(out.Count)
	}
	b.ReportMetric(float64(items), "items-after")
}

func benchTenant(i int) string { return fmt.Sprintf("tn_bench%03d", i) }

// benchAgent marks the items the benchmarked executions leave.
const benchAgent = "agt_bench"

// deleteBenchRecords deletes every item written for benchAgent (the usage
// records; the leases are gone once their executions settled). It finds
// them by attribute rather than by key, because the store's key layout is
// its own business.
func deleteBenchRecords(b *testing.B, client *dynamodb.Client) {
	b.Helper()
	var reqs []types.WriteRequest
	p := dynamodb.NewScanPaginator(client, &dynamodb.ScanInput{
		TableName:                 aws.String("t"),
		ProjectionExpression:      aws.String("PK, SK"),
		FilterExpression:          aws.String("agent_id = :a"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":a": &types.AttributeValueMemberS{Value: benchAgent}},
	})
	for p.HasMorePages() {
		out, err := p.NextPage(context.Background())
		if err != nil {
			b.Fatalf("scan for benchmark records: %v", err)
		}
		for _, item := range out.Items {
			reqs = append(reqs, types.WriteRequest{DeleteRequest: &types.DeleteRequest{Key: item}})
		}
	}
	batchWrite(b, client, reqs)
}

// BenchmarkAdmitSettle is the quota hot path of one execution (Admit, then
// Settle with its reservation) from 8 goroutines on one embedded DynamoDB:
// all on one tenant's counters, or spread over 100 tenants. Locally the
// second is slower only because its 100 sets of counters make the table
// 500 items bigger (see the file comment); in DynamoDB it is the one that
// scales, as the tenants' counters live in different partitions.
func BenchmarkAdmitSettle(b *testing.B) {
	b.Run("one-tenant", func(b *testing.B) { benchAdmitSettle(b, 1, 0) })
	b.Run("100-tenants", func(b *testing.B) { benchAdmitSettle(b, 100, 0) })
}

// BenchmarkAdmitSettleTableSize is BenchmarkAdmitSettle/one-tenant on a
// table that already holds other items: the cost per op must not grow with
// them (as in DynamoDB).
func BenchmarkAdmitSettleTableSize(b *testing.B) {
	for _, fill := range []int{0, 2000, 10000} {
		b.Run(fmt.Sprintf("items-%d", fill), func(b *testing.B) { benchAdmitSettle(b, 1, fill) })
	}
}

// BenchmarkCounterItemCeiling hammers conditional UpdateItem ADD counters
// (the shape of the quota counters) from 8 goroutines: all on one item, or
// spread over 100 items in 100 partitions. Locally the two are alike (one
// lock for the whole server); in DynamoDB the one item is capped by its
// partition (about 1,000 WCU/s) and the 100 are not.
func BenchmarkCounterItemCeiling(b *testing.B) {
	for _, items := range []int{1, 100} {
		name := "one-item"
		if items > 1 {
			name = fmt.Sprintf("%d-items", items)
		}
		b.Run(name, func(b *testing.B) {
			db := startBenchDB(b)
			ctx := context.Background()
			keyOf := func(i int) map[string]types.AttributeValue {
				return map[string]types.AttributeValue{
					"PK": &types.AttributeValueMemberS{Value: fmt.Sprintf("TENANT#tn_ctr%03d", i)},
					"SK": &types.AttributeValueMemberS{Value: "LIVE"},
				}
			}
			values := map[string]types.AttributeValue{
				":one": &types.AttributeValueMemberN{Value: "1"},
				":max": &types.AttributeValueMemberN{Value: strconv.FormatInt(1<<50, 10)},
			}
			db.count.reset()
			runTimed(b, "updates/s", func(n int) error {
				_, err := db.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
					TableName:                 aws.String("t"),
					Key:                       keyOf(n % items),
					UpdateExpression:          aws.String("ADD n :one"),
					ConditionExpression:       aws.String("attribute_not_exists(n) OR n < :max"),
					ExpressionAttributeValues: values,
				})
				return err
			}, nil)
			db.count.report(b, b.N)
			// Every update must have counted exactly once.
			total := 0
			for i := range items {
				out, err := db.setup.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String("t"), Key: keyOf(i), ConsistentRead: aws.Bool(true)})
				if err != nil {
					b.Fatal(err)
				}
				if v, ok := out.Item["n"].(*types.AttributeValueMemberN); ok {
					c, _ := strconv.Atoi(v.Value)
					total += c
				}
			}
			if total != b.N {
				b.Errorf("counters sum to %d, want %d (one per update)", total, b.N)
			}
		})
	}
}
