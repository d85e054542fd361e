package embedded_test

// Benchmarks of persistence: the cost the write-ahead log adds to a write, and
// the start from a data directory holding a long history. Run them with
//
//	go test -run '^$' -bench 'WAL' -benchtime 2000x ./pkg/embedded/
//
// BenchmarkWALStart writes the items that the history of 100,000 executions
// leaves in the platform's table (see walHistory) straight through the SDK,
// folds them into a snapshot, and measures a start from it, alone and with a
// log as large as the one that starts a compaction.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/bulkhead-dev/bulkhead/pkg/embedded"
)

// benchServers are the configurations a write is measured against, each with
// fresh data for every round.
func benchServers() map[string]func(b *testing.B) embedded.DynamoDBOptions {
	return map[string]func(b *testing.B) embedded.DynamoDBOptions{
		"memory": func(*testing.B) embedded.DynamoDBOptions { return embedded.DynamoDBOptions{} },
		"wal": func(b *testing.B) embedded.DynamoDBOptions {
			return embedded.DynamoDBOptions{SnapshotPath: filepath.Join(b.TempDir(), "dynamodb.json")}
		},
	}
}

func BenchmarkWALPutItem(b *testing.B) {
	for name, opts := range benchServers() {
		b.Run(name, func(b *testing.B) {
			c := dynamoClient(mustStartDynamoDB(b, opts(b)))
			mustCreateTable(b, c, table)
			ctx := context.Background()
			b.ResetTimer()
			for i := range b.N {
				if _, err := c.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: item("TENANT#a", strconv.Itoa(i), nil)}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkWALUpdateItem(b *testing.B) {
	for name, opts := range benchServers() {
		b.Run(name, func(b *testing.B) {
			c := dynamoClient(mustStartDynamoDB(b, opts(b)))
			mustCreateTable(b, c, table)
			b.ResetTimer()
			for range b.N {
				mustAdd(b, c, table, "COUNTER", 1)
			}
		})
	}
}

// BenchmarkWALPutItemParallel writes from 8 goroutines: the fsyncs of the log
// are shared between the writes that wait at the same time.
func BenchmarkWALPutItemParallel(b *testing.B) {
	for name, opts := range benchServers() {
		b.Run(name, func(b *testing.B) {
			c := dynamoClient(mustStartDynamoDB(b, opts(b)))
			mustCreateTable(b, c, table)
			ctx := context.Background()
			var next atomic.Int64
			var wg sync.WaitGroup
			b.ResetTimer()
			start := time.Now()
			for range 8 {
				wg.Go(func() {
					for {
						i := next.Add(1)
						if i > int64(b.N) {
							return
						}
						if _, err := c.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: item("TENANT#a", strconv.FormatInt(i, 10), nil)}); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "writes/s")
		})
	}
}

// walHistory writes what n executions leave in the platform's table: per
// execution a usage record and a run record, and every other execution a
// conversation turn (2.5 items each, as counted after Admit and Settle, whose
// other writes update the same few counter items again and again).
func walHistory(b *testing.B, c *dynamodb.Client, n int) {
	ctx := context.Background()
	var wg sync.WaitGroup
	work := make(chan int)
	for range 8 {
		wg.Go(func() {
			for e := range work {
				var reqs []types.WriteRequest
				for x := e; x < e+10 && x < n; x++ {
					t := "TENANT#" + strconv.Itoa(x%50)
					reqs = append(reqs,
						types.WriteRequest{PutRequest: &types.PutRequest{Item: item(t, fmt.Sprintf("USAGE#2026-05#%09d", x), map[string]types.AttributeValue{
							"tokens_in": &types.AttributeValueMemberN{Value: "1834"}, "tokens_out": &types.AttributeValueMemberN{Value: "412"},
							"spend": &types.AttributeValueMemberN{Value: "27390"}, "model": &types.AttributeValueMemberS{Value: "anthropic.claude-sonnet"},
							"agent": &types.AttributeValueMemberS{Value: "AGENT#support"}, "at": &types.AttributeValueMemberS{Value: "2026-05-14T10:11:12.123456789Z"},
						})}},
						types.WriteRequest{PutRequest: &types.PutRequest{Item: item(t, fmt.Sprintf("RUN#%09d", x), map[string]types.AttributeValue{
							"status": &types.AttributeValueMemberS{Value: "settled"}, "reserved": &types.AttributeValueMemberN{Value: "4096"},
							"lease": &types.AttributeValueMemberS{Value: "2026-05-14T10:11:42Z"}, "ttl": &types.AttributeValueMemberN{Value: "1780000000"},
						})}})
					if x%2 == 0 {
						reqs = append(reqs, types.WriteRequest{PutRequest: &types.PutRequest{Item: item(t, fmt.Sprintf("CONV#c%d#TURN#%09d", x%1000, x), map[string]types.AttributeValue{
							"role": &types.AttributeValueMemberS{Value: "assistant"}, "s3": &types.AttributeValueMemberS{Value: fmt.Sprintf("transcripts/%09d.json", x)},
							"bytes": &types.AttributeValueMemberN{Value: "5120"},
						})}})
					}
				}
				if _, err := c.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{RequestItems: map[string][]types.WriteRequest{table: reqs}}); err != nil {
					b.Error(err)
				}
			}
		})
	}
	for e := 0; e < n; e += 10 {
		work <- e
	}
	close(work)
	wg.Wait()
}

// logBytes is the size of the log segments of the snapshot at path.
func logBytes(b *testing.B, path string) int64 {
	segs, err := filepath.Glob(path + ".wal-*")
	if err != nil {
		b.Fatal(err)
	}
	var n int64
	for _, s := range segs {
		st, err := os.Stat(s)
		if err != nil {
			b.Fatal(err)
		}
		n += st.Size()
	}
	return n
}

func BenchmarkWALStart(b *testing.B) {
	const executions = 100_000
	path := filepath.Join(b.TempDir(), "dynamodb.json")
	d := mustStartDynamoDB(b, embedded.DynamoDBOptions{SnapshotPath: path})
	c := dynamoClient(d)
	mustCreateTable(b, c, table)
	walHistory(b, c, executions)
	if err := d.Snapshot(context.Background()); err != nil {
		b.Fatal(err)
	}
	mustClose(b, d)

	measure := func(b *testing.B) {
		var ms runtime.MemStats
		var total time.Duration
		for range b.N {
			start := time.Now()
			d := mustStartDynamoDB(b, embedded.DynamoDBOptions{SnapshotPath: path})
			total += time.Since(start)
			runtime.GC()
			runtime.ReadMemStats(&ms)
			mustClose(b, d)
		}
		b.ReportMetric(total.Seconds()/float64(b.N), "s/start")
		if st, err := os.Stat(path); err == nil {
			b.ReportMetric(float64(st.Size())/1e6, "snapshot-MB")
		}
		b.ReportMetric(float64(logBytes(b, path))/1e6, "log-MB")
		b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "MB-heap-in-use")
	}
	b.Run("snapshot", measure)

	// Then a log as large as the default threshold of a compaction (a quarter
	// of the snapshot's size): updates of the counters and new executions, as
	// a day of traffic leaves, written until the log reaches it.
	st, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	threshold := max(8<<20, st.Size()/4)
	d = mustStartDynamoDB(b, embedded.DynamoDBOptions{SnapshotPath: path, CompactAfter: 1 << 40})
	c = dynamoClient(d)
	for logBytes(b, path) < threshold {
		walHistory(b, c, executions/20) // rewrites items of the history
		for range 2_000 {
			mustAdd(b, c, table, "COUNTER", 1)
		}
	}
	mustClose(b, d)
	b.Run("snapshot+log", measure)
}
