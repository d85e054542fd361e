package embedded_test

// Benchmarks of how the embedded DynamoDB's cost per operation changes with
// the number of items already in the table: the platform's quota hot path
// (Admit, then Settle) and a page of a tenant's usage records, on tables
// holding 0, 10,000 and 100,000 items of history. DynamoDB's cost per
// operation does not depend on the table's size, and after a month of local
// use neither should the embedded server's: the op-x-smallest metric is each
// size's ns/op divided by that of the smallest size measured (1 is flat).
//
// Each size gets one server, filled once and kept across the b.N rounds of
// its sub-benchmark, because filling 100,000 items takes far longer than the
// operations under test. The usage records the timed operations leave are
// deleted between chunks (timer stopped), so every operation sees the size it
// is named after.

import (
	"context"
	"fmt"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/bulkhead-dev/bulkhead/pkg/bulkhead"
	"github.com/bulkhead-dev/bulkhead/pkg/dynamo"
	"github.com/bulkhead-dev/bulkhead/pkg/embedded"
)

// scaleSizes are the table sizes measured: empty, a busy week and a busy
// month of local use.
var scaleSizes = []int{0, 10_000, 100_000}

// queryPageSizes start with a table that holds just over a page of the
// tenant's records, so that every size answers the same full page.
var queryPageSizes = []int{50, 10_000, 100_000}

const (
	scaleTable = "bulkhead"
	// scaleTenant's partition sorts before the other tenants', so that a
	// backward walk from the end of the table would pass all of theirs.
	scaleTenant = "tn_bench"
	// scaleAgent marks the usage records the timed operations write, so that
	// they can be told from the prefilled history and removed.
	scaleAgent = "agt_scale"
	// scaleChunk is how many operations run between two cleanups.
	scaleChunk = 100
	// scaleOthers is how many other tenants share the table's history.
	scaleOthers = 50
)

// scaleNow is the clock of every operation; the prefilled history is older.
var scaleNow = time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)

// scaleQuota never refuses, so every operation is a full admission.
var scaleQuota = bulkhead.Quota{MaxRequestsPerHour: 1 << 50, MaxTokensPerMonth: 1 << 50, MaxSpendPerMonth: 1 << 50,
	MaxConcurrentAgents: 1 << 30, MaxStorageMB: 1 << 20}

var scaleReserve = dynamo.Reservation{Tokens: 4096, Spend: 4096 * 15, Bytes: 64 << 10}

// scaleEnv is one embedded server holding a table with some history.
type scaleEnv struct {
	client *dynamodb.Client
	ts     *dynamo.TenantStore
	own    int // prefilled items in the measured tenant's partition
	seq    int // executions admitted so far, for unique ids across rounds
}

// newScaleEnv starts a server for the whole benchmark (not one round) and
// fills its table with n usage-record-like items: half in the measured
// tenant's partition, half spread over other tenants' partitions.
func newScaleEnv(b *testing.B, parent *testing.B, n int) *scaleEnv {
	b.Helper()
	ctx := context.Background()
	d, err := embedded.StartDynamoDB(ctx, embedded.DynamoDBOptions{})
	if err != nil {
		b.Fatal(err)
	}
	parent.Cleanup(func() { _ = d.Close(context.Background()) })
	client := dynamoClient(d)
	if err := dynamo.CreateTable(ctx, client, scaleTable); err != nil {
		b.Fatal(err)
	}
	s := func(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }
	num := func(v int) types.AttributeValue { return &types.AttributeValueMemberN{Value: strconv.Itoa(v)} }
	batch := make([]types.WriteRequest, 0, 25)
	for i := range n {
		tenant := scaleTenant
		if i%2 == 1 {
			tenant = fmt.Sprintf("tn_other%03d", i%scaleOthers)
		}
		started := scaleNow.Add(-time.Duration(n-i) * time.Minute).Format("2006-01-02T15:04:05.000000000Z")
		id := fmt.Sprintf("exec_hist%07d", i)
		batch = append(batch, types.WriteRequest{PutRequest: &types.PutRequest{Item: map[string]types.AttributeValue{
			"PK": s("TENANT#" + tenant), "SK": s("EXEC#" + started + "#" + id),
			"execution_id": s(id), "agent_id": s("agt_hist"), "conversation_id": s(""), "model": s(bulkhead.DefaultModel),
			"status": s(bulkhead.ExecCompleted), "input_tokens": num(120), "output_tokens": num(80), "cost_micros": num(1560),
			"month": s("2026-11"), "started_at": s(started), "finished_at": s(started),
		}}})
		if len(batch) == cap(batch) || i == n-1 {
			scaleBatchWrite(b, client, batch)
			batch = batch[:0]
		}
	}
	return &scaleEnv{client: client, ts: dynamo.New(client, scaleTable, func() time.Time { return scaleNow }).Tenant(scaleTenant), own: (n + 1) / 2}
}

// scaleBatchWrite applies up to 25 requests, retrying unprocessed ones.
func scaleBatchWrite(b *testing.B, client *dynamodb.Client, reqs []types.WriteRequest) {
	b.Helper()
	for len(reqs) > 0 {
		out, err := client.BatchWriteItem(context.Background(), &dynamodb.BatchWriteItemInput{
			RequestItems: map[string][]types.WriteRequest{scaleTable: reqs}})
		if err != nil {
			b.Fatalf("batch write: %v", err)
		}
		reqs = out.UnprocessedItems[scaleTable]
	}
}

// removeRuns deletes the usage records the timed operations wrote, so the
// table is back to its prefilled size.
func (e *scaleEnv) removeRuns(b *testing.B) {
	b.Helper()
	var reqs []types.WriteRequest
	p := dynamodb.NewQueryPaginator(e.client, &dynamodb.QueryInput{
		TableName:                 aws.String(scaleTable),
		KeyConditionExpression:    aws.String("PK = :pk"),
		FilterExpression:          aws.String("agent_id = :a"),
		ProjectionExpression:      aws.String("PK, SK"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": &types.AttributeValueMemberS{Value: "TENANT#" + scaleTenant}, ":a": &types.AttributeValueMemberS{Value: scaleAgent}},
	})
	for p.HasMorePages() {
		out, err := p.NextPage(context.Background())
		if err != nil {
			b.Fatalf("query the benchmark's records: %v", err)
		}
		for _, item := range out.Items {
			reqs = append(reqs, types.WriteRequest{DeleteRequest: &types.DeleteRequest{Key: item}})
		}
	}
	for len(reqs) > 0 {
		n := min(25, len(reqs))
		scaleBatchWrite(b, e.client, reqs[:n])
		reqs = reqs[n:]
	}
}

// admitSettle is one execution's quota path, as the execute handler runs it
// around the model call.
func (e *scaleEnv) admitSettle(ctx context.Context) error {
	id := fmt.Sprintf("exec_scale%08d", e.seq)
	e.seq++
	if err := e.ts.Admit(ctx, dynamo.Admission{ExecutionID: id, AgentID: scaleAgent, Now: scaleNow, Lease: time.Minute,
		Quota: scaleQuota, Reserve: scaleReserve}); err != nil {
		return fmt.Errorf("admit %s: %w", id, err)
	}
	ex := bulkhead.Execution{ID: id, AgentID: scaleAgent, Model: bulkhead.DefaultModel, Status: bulkhead.ExecCompleted,
		InputTokens: 120, OutputTokens: 80, Cost: 120*3 + 80*15, StartedAt: scaleNow, FinishedAt: scaleNow.Add(time.Second)}
	if err := e.ts.Settle(ctx, dynamo.Settlement{Execution: ex, Reserved: scaleReserve, Tier: bulkhead.Enterprise}); err != nil {
		return fmt.Errorf("settle %s: %w", id, err)
	}
	return nil
}

// runScaled runs one sub-benchmark per size, with op timed b.N times on that
// size's server, and reports each size's ns/op relative to the first size's.
func runScaled(b *testing.B, sizes []int, op func(ctx context.Context, e *scaleEnv) error, cleanup bool) {
	var first float64
	for _, size := range sizes {
		var env *scaleEnv
		b.Run(fmt.Sprintf("items-%d", size), func(sb *testing.B) {
			if env == nil {
				env = newScaleEnv(sb, b, size)
				runtime.GC()
			}
			ctx := context.Background()
			sb.ResetTimer()
			for i := range sb.N {
				if cleanup && i%scaleChunk == 0 {
					sb.StopTimer()
					env.removeRuns(sb)
					// Collect the cleanup's garbage now, so that the timed
					// operations pay only for their own.
					runtime.GC()
					sb.StartTimer()
				}
				if err := op(ctx, env); err != nil {
					sb.Fatal(err)
				}
			}
			sb.StopTimer()
			perOp := float64(sb.Elapsed().Nanoseconds()) / float64(sb.N)
			if size == sizes[0] {
				first = perOp
			} else if first > 0 {
				sb.ReportMetric(perOp/first, "op-x-smallest")
			}
		})
	}
}

// BenchmarkScalingAdmitSettle is one execution's admission and settlement
// (two TransactWriteItems and the reads around them) at each table size.
func BenchmarkScalingAdmitSettle(b *testing.B) {
	runScaled(b, scaleSizes, func(ctx context.Context, e *scaleEnv) error { return e.admitSettle(ctx) }, true)
}

// BenchmarkScalingQueryPage reads the newest page of the tenant's usage
// records (a Query on the partition, newest first, 20 items), whose
// partition holds half the table's history.
func BenchmarkScalingQueryPage(b *testing.B) {
	in := &dynamodb.QueryInput{
		TableName:                 aws.String(scaleTable),
		KeyConditionExpression:    aws.String("PK = :pk AND begins_with(SK, :exec)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": &types.AttributeValueMemberS{Value: "TENANT#" + scaleTenant}, ":exec": &types.AttributeValueMemberS{Value: "EXEC#"}},
		ScanIndexForward:          aws.Bool(false),
		Limit:                     aws.Int32(20),
	}
	runScaled(b, queryPageSizes, func(ctx context.Context, e *scaleEnv) error {
		out, err := e.client.Query(ctx, in)
		if err != nil {
			return err
		}
		if want := min(20, e.own); len(out.Items) != want {
			return fmt.Errorf("query returned %d items, want %d", len(out.Items), want)
		}
		return nil
	}, false)
}
