package embedded_test

// BenchmarkStartFromSnapshot measures a start from a snapshot of n items of
// execution history, written straight to the file rather than through the
// server, so that a run takes seconds instead of the minutes BenchmarkWALStart
// spends filling its table:
//
//	go test -run '^$' -bench 'StartFromSnapshot' -benchtime 3x ./pkg/embedded/

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/bulkhead-dev/bulkhead/pkg/embedded"
)

func BenchmarkStartFromSnapshot(b *testing.B) {
	for _, n := range []int{10_000, 100_000, 300_000} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			path := filepath.Join(b.TempDir(), "dynamodb.json")
			writeHistorySnapshot(b, path, n)
			var ms runtime.MemStats
			var total time.Duration
			b.ResetTimer()
			for range b.N {
				runtime.GC()
				start := time.Now()
				// Not mustStartDynamoDB: its cleanup would keep every closed
				// server, and its items, in the heap measured next.
				d, err := embedded.StartDynamoDB(context.Background(), embedded.DynamoDBOptions{SnapshotPath: path, TTLSweepEvery: -1})
				if err != nil {
					b.Fatal(err)
				}
				total += time.Since(start)
				runtime.GC()
				runtime.ReadMemStats(&ms)
				mustClose(b, d)
			}
			b.ReportMetric(total.Seconds()/float64(b.N), "s/start")
			b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "MB-heap-in-use")
		})
	}
}

// writeHistorySnapshot writes a snapshot of one table holding n items shaped
// like those of walHistory (usage records, run records with an expiry and an
// index key, conversation turns), in the order a snapshot lists them.
func writeHistorySnapshot(b *testing.B, path string, n int) {
	b.Helper()
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	enc := json.NewEncoder(w)
	s := func(v string) map[string]string { return map[string]string{"S": v} }
	num := func(v string) map[string]string { return map[string]string{"N": v} }
	ddl := []map[string]any{{
		"op": "CreateTable",
		"body": map[string]any{
			"TableName": table,
			"AttributeDefinitions": []map[string]string{
				{"AttributeName": "PK", "AttributeType": "S"}, {"AttributeName": "SK", "AttributeType": "S"},
				{"AttributeName": "GSI1PK", "AttributeType": "S"}, {"AttributeName": "GSI1SK", "AttributeType": "S"},
			},
			"KeySchema": []map[string]string{{"AttributeName": "PK", "KeyType": "HASH"}, {"AttributeName": "SK", "KeyType": "RANGE"}},
			"GlobalSecondaryIndexes": []map[string]any{{
				"IndexName":  "GSI1",
				"KeySchema":  []map[string]string{{"AttributeName": "GSI1PK", "KeyType": "HASH"}, {"AttributeName": "GSI1SK", "KeyType": "RANGE"}},
				"Projection": map[string]string{"ProjectionType": "ALL"},
			}},
			"BillingMode": "PAY_PER_REQUEST",
		},
	}, {
		"op":   "UpdateTimeToLive",
		"body": map[string]any{"TableName": table, "TimeToLiveSpecification": map[string]any{"AttributeName": "ttl", "Enabled": true}},
	}}
	must := func(err error) {
		if err != nil {
			b.Fatal(err)
		}
	}
	must(enc.Encode(map[string]any{"format": "bulkhead-minidyn-snapshot/2", "taken_at": time.Now().UTC(), "wal_through": 0}))
	must(enc.Encode(map[string]any{"table": map[string]any{"name": table, "ddl": ddl, "items": n}}))
	for i := range n {
		x := i * 2 / 5 // 2.5 items per execution
		t := "TENANT#" + strconv.Itoa(x%50)
		var it map[string]any
		switch i % 5 {
		case 0, 2:
			it = map[string]any{"PK": s(t), "SK": s(fmt.Sprintf("USAGE#2026-05#%09d", x)),
				"tokens_in": num("1834"), "tokens_out": num("412"), "spend": num("27390"),
				"model": s("anthropic.claude-sonnet"), "agent": s("AGENT#support"), "at": s("2026-05-14T10:11:12.123456789Z")}
		case 1, 3:
			it = map[string]any{"PK": s(t), "SK": s(fmt.Sprintf("RUN#%09d", x)), "status": s("settled"),
				"reserved": num("4096"), "lease": s("2026-05-14T10:11:42Z"), "ttl": num(strconv.Itoa(1780000000 + x)),
				"GSI1PK": s("STATUS#settled"), "GSI1SK": s(fmt.Sprintf("%09d", x))}
		default:
			it = map[string]any{"PK": s(t), "SK": s(fmt.Sprintf("CONV#c%d#TURN#%09d", x%1000, x)), "role": s("assistant"),
				"s3": s(fmt.Sprintf("transcripts/%09d.json", x)), "bytes": num("5120")}
		}
		must(enc.Encode(it))
	}
	must(w.Flush())
	must(f.Close())
}
