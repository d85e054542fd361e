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
	"slices"
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
// other tenants'.
//
// The three platforms run side by side in one process, so that a change in
// the machine's load touches every size alike: each round (one b.N) measures
// every size in turn, starting with a different one each round, with
// historySeq executions one at a time (each timed) and then historyC8
// executions by 8 clients at once. Reported per size (0, 10k, 100k):
// p50-ms-<size> (the median of the sequential executions), execs/s-<size>
// (the 8-client rate over all rounds), and for 10k and 100k the ratios to
// the empty table, p50-x-<size> (at most 1.25 is flat enough) and
// execs/s-of-0-<size> (at least 0.8). Run it with -benchtime 5x or more:
//
//	go test -run '^$' -bench 'History$' -benchtime 5x ./pkg/local/
func BenchmarkHistory(b *testing.B) {
	const (
		historySeq = 40
		historyC8  = 200
		clients    = 8
	)
	sizes := []int{0, 10_000, 100_000}
	names := []string{"0", "10k", "100k"}
	hs := make([]*historyPlatform, len(sizes))
	for i, items := range sizes {
		hs[i] = newHistoryPlatform(b, items)
		defer hs[i].close()
		for range 20 { // warm connections and caches
			if err := hs[i].execute(); err != nil {
				b.Fatal(err)
			}
		}
	}
	lat := make([][]time.Duration, len(sizes))
	c8Time := make([]time.Duration, len(sizes))
	c8Execs := make([]int, len(sizes))
	round := 0
	for b.Loop() {
		for k := range sizes {
			i := (round + k) % len(sizes)
			h := hs[i]
			for range historySeq {
				t0 := time.Now()
				if err := h.execute(); err != nil {
					b.Fatal(err)
				}
				lat[i] = append(lat[i], time.Since(t0))
			}
			var next atomic.Int64
			var wg sync.WaitGroup
			t0 := time.Now()
			for range clients {
				wg.Go(func() {
					for next.Add(1) <= historyC8 {
						// Fatal belongs to the benchmark's goroutine.
						if err := h.execute(); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			c8Time[i] += time.Since(t0)
			c8Execs[i] += historyC8
		}
		round++
	}
	p50 := make([]float64, len(sizes))
	rate := make([]float64, len(sizes))
	for i := range sizes {
		slices.Sort(lat[i])
		p50[i] = float64(lat[i][len(lat[i])/2].Nanoseconds()) / 1e6
		rate[i] = float64(c8Execs[i]) / c8Time[i].Seconds()
		b.ReportMetric(p50[i], "p50-ms-"+names[i])
		b.ReportMetric(rate[i], "execs/s-"+names[i])
		if i > 0 {
			b.ReportMetric(p50[i]/p50[0], "p50-x-"+names[i])
			b.ReportMetric(rate[i]/rate[0], "execs/s-of-0-"+names[i])
		}
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
// holding the history of 100,000 executions, and the heap it then holds. It
// first counts, on the real platform, the items an execution that starts a
// conversation leaves in the table, and checks that prefill writes as many.
// as-left starts on the data dir as the platform leaves it (a snapshot and the
// log written since the last compaction); compacted starts after a
// compaction has folded the whole history into the snapshot.
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
	// As the platform left it: a snapshot and the log written since the last
	// compaction, which may be as large as the snapshot. Then with the whole
	// history in the snapshot, as after a compaction.
	b.Run("as-left", func(b *testing.B) { benchStart(b, dir, perExec) })
	d, err := embedded.StartDynamoDB(context.Background(), embedded.DynamoDBOptions{SnapshotPath: filepath.Join(dir, "dynamodb.json")})
	if err != nil {
		b.Fatal(err)
	}
	if err := d.Snapshot(context.Background()); err != nil {
		b.Fatal(err)
	}
	if err := d.Close(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.Run("compacted", func(b *testing.B) { benchStart(b, dir, perExec) })
}

// benchStart times starts of the embedded DynamoDB on the data dir and
// reports the heap it then holds (heap-MB: HeapInuse after the start and a
// GC; heap-grown-MB: what the start added), and the sizes of the snapshot and
// of the log.
func benchStart(b *testing.B, dir string, perExec int) {
	var snap, log int64
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if !e.Type().IsRegular() || !strings.HasPrefix(e.Name(), "dynamodb.json") {
			continue
		}
		info, err := e.Info()
		if err != nil {
			b.Fatal(err)
		}
		if e.Name() == "dynamodb.json" {
			snap += info.Size()
		} else {
			log += info.Size()
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
	b.ReportMetric(float64(snap)/1e6, "snapshot-MB")
	b.ReportMetric(float64(log)/1e6, "log-MB")
	b.ReportMetric(heap, "heap-MB")
	b.ReportMetric(grown, "heap-grown-MB")
}
