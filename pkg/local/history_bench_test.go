package local

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/bulkhead-dev/bulkhead/pkg/awsclients"
	"github.com/bulkhead-dev/bulkhead/pkg/embedded"
	"github.com/bulkhead-dev/bulkhead/pkg/offline"
	"github.com/bulkhead-dev/bulkhead/pkg/platform"
)

// BenchmarkHistory is a whole execute over HTTP (offline model, no delay)
// against a table that already holds a month of history: 0, 10,000 and
// 100,000 items. An execution that starts a conversation leaves three items
// in the table (its usage record EXEC#, the conversation's head CONV# and the
// agent's index entry ACONV#), so the history is written as such triples,
// half of them in the benchmarked tenant's partition and half spread over 50
// other tenants'. Each size runs one execution at a time (seq: ns/op and
// x-empty, the ratio to the empty table) and with 8 clients at once (c8:
// exec/s and x-empty). The empty table runs first, in the same process.
func BenchmarkHistory(b *testing.B) {
	var emptySeq, emptyC8 float64 // ns per execution on the empty table
	for _, items := range []int{0, 10_000, 100_000} {
		// The platform outlives the sub-benchmarks' calibration runs, so the
		// history is written once per size.
		h := newHistoryPlatform(b, items)
		b.Run("items="+strconv.Itoa(items)+"/seq", func(b *testing.B) {
			start := time.Now()
			for b.Loop() {
				if err := h.execute(); err != nil {
					b.Fatal(err)
				}
			}
			per := float64(time.Since(start).Nanoseconds()) / float64(b.N)
			if items == 0 {
				emptySeq = per
			}
			if emptySeq > 0 {
				b.ReportMetric(per/emptySeq, "x-empty")
			}
		})
		b.Run("items="+strconv.Itoa(items)+"/c8", func(b *testing.B) {
			const clients = 8
			var next atomic.Int64
			var wg sync.WaitGroup
			b.ResetTimer()
			start := time.Now()
			for range clients {
				wg.Go(func() {
					for next.Add(1) <= int64(b.N) {
						// Fatal belongs to the benchmark's goroutine.
						if err := h.execute(); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			elapsed := time.Since(start)
			b.StopTimer()
			per := float64(elapsed.Nanoseconds()) / float64(b.N)
			if items == 0 {
				emptyC8 = per
			}
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "exec/s")
			if emptyC8 > 0 {
				b.ReportMetric(per/emptyC8, "x-empty")
			}
		})
		h.close()
	}
}

// historyPlatform is a local platform whose demo tenant has an agent to
// execute and a table prefilled with history.
type historyPlatform struct {
	p     *Platform
	hc    *http.Client
	agent string
}

func newHistoryPlatform(b *testing.B, items int) *historyPlatform {
	b.Helper()
	p, err := Start(context.Background(), Config{Addr: "127.0.0.1:0", DataDir: b.TempDir(), Model: offline.New(0), Out: io.Discard})
	if err != nil {
		b.Fatal(err)
	}
	liftQuota(b, p)
	h := &historyPlatform{p: p, hc: &http.Client{Timeout: time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}}
	r, err := h.post("/v1/agents", map[string]any{"name": "history", "system_prompt": "Be brief."})
	if err != nil {
		b.Fatal(err)
	}
	var created struct {
		AgentID string `json:"agent_id"`
	}
	if err := json.Unmarshal(r, &created); err != nil || created.AgentID == "" {
		b.Fatalf("create agent: %s", r)
	}
	h.agent = created.AgentID
	prefill(b, awsclients.NewDynamoDB(awsclients.Static(""), p.Dynamo.URL()), p.Demo.TenantID, created.AgentID, items)
	return h
}

func (h *historyPlatform) close() { h.p.Close(context.Background()) }

func (h *historyPlatform) post(path string, body map[string]any) ([]byte, error) {
	raw, _ := json.Marshal(body)
	req, _ := http.NewRequest("POST", h.p.URL+path, bytes.NewReader(raw))
	req.Header.Set("Authorization", "Bearer "+h.p.Demo.APIKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := h.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode/100 != 2 {
		err = fmt.Errorf("POST %s: %d %s", path, resp.StatusCode, out)
	}
	return out, err
}

// execute runs one execution that starts a conversation, as a new chat does.
func (h *historyPlatform) execute() error {
	_, err := h.post("/v1/agents/"+h.agent+"/execute", map[string]any{"message": "Hello, how are you?"})
	return err
}

// prefill writes items of history (rounded up to whole executions) with
// BatchWriteItem, 4 writers at once: for execution i, a settled usage record,
// a one-turn conversation head and the agent's index entry, shaped as the
// platform writes them, dated earlier this month. Even executions belong to
// tenant (with agent), odd ones to one of 50 other tenants.
func prefill(b *testing.B, db *dynamodb.Client, tenant, agent string, items int) {
	b.Helper()
	if items == 0 {
		return
	}
	executions := (items + 2) / 3
	month := time.Now().UTC()
	day0 := time.Date(month.Year(), month.Month(), 1, 0, 0, 0, 0, time.UTC)
	s := func(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }
	n := func(v int64) types.AttributeValue {
		return &types.AttributeValueMemberN{Value: strconv.FormatInt(v, 10)}
	}
	execItems := func(i int) []map[string]types.AttributeValue {
		tn, ag := tenant, agent
		if i%2 == 1 {
			tn, ag = fmt.Sprintf("tn_history%08d", i%50), fmt.Sprintf("agt_history%07d", i%50)
		}
		pk := s("TENANT#" + tn)
		exec, conv := fmt.Sprintf("exec_h%014d", i), fmt.Sprintf("conv_h%014d", i)
		started := day0.Add(time.Duration(i) * time.Second).Format(time.RFC3339Nano)
		finished := day0.Add(time.Duration(i)*time.Second + 20*time.Millisecond).Format(time.RFC3339Nano)
		return []map[string]types.AttributeValue{
			{"PK": pk, "SK": s("EXEC#" + started + "#" + exec), "agent_id": s(ag), "conversation_id": s(conv),
				"cost_micros": n(441), "execution_id": s(exec), "started_at": s(started), "finished_at": s(finished),
				"input_tokens": n(7), "output_tokens": n(28), "model": s("bulkhead-offline-1"),
				"month": s(month.Format("2006-01")), "status": s("completed")},
			{"PK": pk, "SK": s("CONV#" + conv), "agent_id": s(ag), "conversation_id": s(conv), "bytes": n(386),
				"tokens": n(35), "turns": n(1), "created_at": s(started), "updated_at": s(finished)},
			{"PK": pk, "SK": s("ACONV#" + ag + "#" + conv)},
		}
	}
	var (
		next   atomic.Int64
		wg     sync.WaitGroup
		failed atomic.Value
	)
	for range 4 {
		wg.Go(func() {
			var batch []types.WriteRequest
			flush := func() error {
				req := map[string][]types.WriteRequest{platform.DefaultTable: batch}
				for len(req[platform.DefaultTable]) > 0 {
					out, err := db.BatchWriteItem(context.Background(), &dynamodb.BatchWriteItemInput{RequestItems: req})
					if err != nil {
						return err
					}
					req = out.UnprocessedItems
				}
				batch = batch[:0]
				return nil
			}
			for {
				i := int(next.Add(1)) - 1
				if i >= executions {
					break
				}
				for _, it := range execItems(i) {
					batch = append(batch, types.WriteRequest{PutRequest: &types.PutRequest{Item: it}})
				}
				if len(batch) >= 24 { // 8 executions: BatchWriteItem takes 25 at most
					if err := flush(); err != nil {
						failed.Store(err)
						return
					}
				}
			}
			if len(batch) > 0 {
				if err := flush(); err != nil {
					failed.Store(err)
				}
			}
		})
	}
	wg.Wait()
	if err, ok := failed.Load().(error); ok {
		b.Fatalf("prefill: %v", err)
	}
	out, err := db.Scan(context.Background(), &dynamodb.ScanInput{TableName: aws.String(platform.DefaultTable), Select: types.SelectCount})
	if err != nil {
		b.Fatal(err)
	}
	if int(out.Count) < executions*3 && out.LastEvaluatedKey == nil {
		b.Fatalf("prefill: the table holds %d items, want at least %d", out.Count, executions*3)
	}
}

// BenchmarkStartupMonthOfUse is the start of the embedded DynamoDB on a data dir
// holding the history of 100,000 executions, and the heap it then holds
// (heap-MB: HeapInuse after the start and a GC; heap-grown-MB: what the start
// added). It first counts, on the real platform, the items an execution that
// starts a conversation leaves in the table, and checks that prefill writes as
// many. The data dir is then left as the platform leaves it: a snapshot and
// the write-ahead log written since it.
func BenchmarkStartupMonthOfUse(b *testing.B) {
	const executions = 100_000
	dir := b.TempDir()
	h := newHistoryPlatform(b, 0)
	db := awsclients.NewDynamoDB(awsclients.Static(""), h.p.Dynamo.URL())
	count := func() int {
		n := 0
		p := dynamodb.NewScanPaginator(db, &dynamodb.ScanInput{TableName: aws.String(platform.DefaultTable), Select: types.SelectCount})
		for p.HasMorePages() {
			out, err := p.NextPage(context.Background())
			if err != nil {
				b.Fatal(err)
			}
			n += int(out.Count)
		}
		return n
	}
	// The first execution also creates the month's, day's and hour's
	// counters; the next ones show what each execution adds.
	if err := h.execute(); err != nil {
		b.Fatal(err)
	}
	before := count()
	const probe = 5
	for range probe {
		if err := h.execute(); err != nil {
			b.Fatal(err)
		}
	}
	perExec := (count() - before) / probe
	if perExec != 3 {
		b.Fatalf("an execution leaves %d items in the table; prefill writes 3", perExec)
	}
	h.close()

	// The history goes into a data dir of its own, through the platform's
	// own start, so that its table is provisioned as in use.
	p, err := Start(context.Background(), Config{Addr: "127.0.0.1:0", DataDir: dir, Model: offline.New(0), Out: io.Discard})
	if err != nil {
		b.Fatal(err)
	}
	prefill(b, awsclients.NewDynamoDB(awsclients.Static(""), p.Dynamo.URL()), p.Demo.TenantID, "agt_history", executions*3)
	if err := p.Close(context.Background()); err != nil {
		b.Fatal(err)
	}
	var size int64
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if e.Type().IsRegular() && strings.HasPrefix(e.Name(), "dynamodb.json") {
			info, err := e.Info()
			if err != nil {
				b.Fatal(err)
			}
			size += info.Size()
		}
	}

	var ms runtime.MemStats
	var heap, grown float64
	for b.Loop() {
		b.StopTimer()
		runtime.GC()
		runtime.ReadMemStats(&ms)
		base := ms.HeapInuse
		b.StartTimer()
		d, err := embedded.StartDynamoDB(context.Background(), embedded.DynamoDBOptions{SnapshotPath: filepath.Join(dir, "dynamodb.json")})
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		runtime.GC()
		runtime.ReadMemStats(&ms)
		heap, grown = float64(ms.HeapInuse)/(1<<20), (float64(ms.HeapInuse)-float64(base))/(1<<20)
		if err := d.Close(context.Background()); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	// Reported after the loop: b.Loop's first call resets the timer, which
	// drops metrics reported before it.
	b.ReportMetric(float64(perExec), "items/exec")
	b.ReportMetric(float64(size)/1e6, "dir-MB")
	b.ReportMetric(heap, "heap-MB")
	b.ReportMetric(grown, "heap-grown-MB")
}
