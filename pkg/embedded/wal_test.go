package embedded_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/bulkhead-dev/bulkhead/pkg/embedded"
)

// TestWALRoundTrip makes changes of every kind, then starts servers from copies
// of the data taken without Close (as after kill -9) and after Close, and checks
// that both hold what the first one held.
func TestWALRoundTrip(t *testing.T) {
	ctx := testContext(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "dynamodb.json")
	d := mustStartDynamoDB(t, embedded.DynamoDBOptions{SnapshotPath: path})
	c := dynamoClient(d)
	mustCreateTable(t, c, table)
	mustCreateTable(t, c, mirror)
	mustCreateTable(t, c, "dropped")
	if _, err := c.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String("dropped")}); err != nil {
		t.Fatal(err)
	}
	mustPutFiller(t, c, table, 60)
	for i := range 20 {
		mustPutItem(t, c, table, item("TENANT#a", fmt.Sprintf("ITEM#%02d", i), map[string]types.AttributeValue{
			"n":     &types.AttributeValueMemberN{Value: strconv.Itoa(i)},
			"empty": &types.AttributeValueMemberL{Value: []types.AttributeValue{}},
		}))
	}
	for i := range 30 {
		mustAdd(t, c, table, "COUNTER", 1)
		if i%3 == 0 {
			_, err := c.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
				{Update: incrementOf(table, "PAIR")}, {Update: incrementOf(mirror, "PAIR")},
			}})
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	for i := 0; i < 20; i += 4 {
		if _, err := c.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(table), Key: key("TENANT#a", fmt.Sprintf("ITEM#%02d", i))}); err != nil {
			t.Fatal(err)
		}
	}
	// Refused changes change nothing and must replay as nothing.
	_, err := c.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: aws.String(table), Item: item("TENANT#a", "COUNTER", nil),
		ConditionExpression: aws.String("attribute_not_exists(PK)"),
	})
	if _, ok := errors.AsType[*types.ConditionalCheckFailedException](err); !ok {
		t.Fatalf("conditional PutItem over an existing item: err = %v, want ConditionalCheckFailedException", err)
	}
	want := map[string][]map[string]types.AttributeValue{table: mustScan(t, c, table), mirror: mustScan(t, c, mirror)}

	crashed := filepath.Join(t.TempDir(), "crashed")
	mustCopyDir(t, dir, crashed)
	mustClose(t, d)

	for name, p := range map[string]string{"after kill": filepath.Join(crashed, "dynamodb.json"), "after Close": path} {
		c2 := dynamoClient(mustStartDynamoDB(t, embedded.DynamoDBOptions{SnapshotPath: p}))
		for tbl, items := range want {
			if got := mustScan(t, c2, tbl); !reflect.DeepEqual(got, items) {
				t.Errorf("%s: table %s = %d items %v, want %d items %v", name, tbl, len(got), got, len(items), items)
			}
		}
		if _, err := c2.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String("dropped")}); err == nil {
			t.Errorf("%s: the deleted table is back", name)
		}
	}
}

// TestWALTornTail cuts the log inside its last record, as a crash during the
// write can, and checks that the start keeps every whole record, drops the torn
// one, and goes on logging after them.
func TestWALTornTail(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "dynamodb.json")
	d := mustStartDynamoDB(t, embedded.DynamoDBOptions{SnapshotPath: path})
	c := dynamoClient(d)
	mustCreateTable(t, c, table)
	const n = 10
	for i := range n {
		mustPutItem(t, c, table, item("TENANT#a", fmt.Sprintf("ITEM#%02d", i), nil))
	}
	mustClose(t, d)

	segs := mustSegments(t, path)
	if len(segs) != 1 {
		t.Fatalf("segments after one run = %v, want one", segs)
	}
	st, err := os.Stat(segs[0])
	if err != nil {
		t.Fatal(err)
	}
	// The last record is a PutItem of about a hundred bytes: cut three off it.
	if err := os.Truncate(segs[0], st.Size()-3); err != nil {
		t.Fatal(err)
	}

	d2 := mustStartDynamoDB(t, embedded.DynamoDBOptions{SnapshotPath: path})
	c2 := dynamoClient(d2)
	got := sortKeys(mustScan(t, c2, table))
	var want []string
	for i := range n - 1 {
		want = append(want, fmt.Sprintf("ITEM#%02d", i))
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("items after a torn tail = %v, want the first %d, %v", got, n-1, want)
	}
	if st2, err := os.Stat(segs[0]); err != nil || st2.Size() >= st.Size()-3 {
		t.Errorf("torn segment not cut back to its whole records: size %v (was %d), err %v", sizeOf(st2), st.Size()-3, err)
	}
	// Later changes go on after the whole records and survive the next start.
	mustPutItem(t, c2, table, item("TENANT#a", "LATER", nil))
	mustClose(t, d2)
	c3 := dynamoClient(mustStartDynamoDB(t, embedded.DynamoDBOptions{SnapshotPath: path}))
	if got, want := sortKeys(mustScan(t, c3, table)), append(want, "LATER"); !reflect.DeepEqual(got, want) {
		t.Errorf("items after the next start = %v, want %v", got, want)
	}
}

// TestWALRefusesDamageBeforeTheEnd flips a byte in a segment that is not the
// last: only the last one can be torn by a crash, so this is damage, and the
// start must refuse rather than drop acknowledged changes.
func TestWALRefusesDamageBeforeTheEnd(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dynamodb.json")
	for run := range 2 {
		d := mustStartDynamoDB(t, embedded.DynamoDBOptions{SnapshotPath: path})
		c := dynamoClient(d)
		if run == 0 {
			mustCreateTable(t, c, table)
		}
		mustPutItem(t, c, table, item("TENANT#a", fmt.Sprintf("RUN#%d", run), nil))
		mustClose(t, d)
	}
	segs := mustSegments(t, path)
	if len(segs) < 2 {
		t.Fatalf("segments after two runs = %v, want at least two", segs)
	}
	b, err := os.ReadFile(segs[0])
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)-2] ^= 0xff
	if err := os.WriteFile(segs[0], b, 0o600); err != nil {
		t.Fatal(err)
	}
	if d, err := embedded.StartDynamoDB(testContext(t), embedded.DynamoDBOptions{SnapshotPath: path}); err == nil {
		_ = d.Close(context.Background())
		t.Fatalf("StartDynamoDB with a damaged segment before the last: err = nil, want an error")
	}
}

// TestWALCompactionUnderWrites folds the log into snapshots, in the background
// (a small CompactAfter) and on demand, while writers run, and checks that the
// writers were served meanwhile, that no acknowledged write is lost, and that the
// snapshot and the remaining segments make up the live state.
func TestWALCompactionUnderWrites(t *testing.T) {
	ctx := testContext(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "dynamodb.json")
	d := mustStartDynamoDB(t, embedded.DynamoDBOptions{SnapshotPath: path, CompactAfter: 64 << 10})
	c := dynamoClient(d)
	mustCreateTable(t, c, table)
	// Filler makes each rebuild take a while.
	mustPutFiller(t, c, table, 3000)

	const writers = 8
	var (
		wg       sync.WaitGroup
		stop     atomic.Bool
		acked    [writers]atomic.Int64 // items written by each writer
		counter  atomic.Int64          // acknowledged increments of COUNTER
		during   atomic.Int64          // writes acknowledged while Snapshot ran
		snapping atomic.Bool
		failures = make(chan error, writers)
	)
	for w := range writers {
		wg.Go(func() {
			for i := 0; !stop.Load(); i++ {
				var err error
				if i%2 == 0 {
					_, err = c.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: item(fmt.Sprintf("W#%d", w), fmt.Sprintf("%08d", i/2), nil)})
				} else {
					_, err = c.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: aws.String(table), Key: key("TENANT#a", "COUNTER"), UpdateExpression: aws.String("ADD n :one"),
						ExpressionAttributeValues: map[string]types.AttributeValue{":one": &types.AttributeValueMemberN{Value: "1"}}})
				}
				if err != nil {
					failures <- err
					return
				}
				if i%2 == 0 {
					acked[w].Add(1)
				} else {
					counter.Add(1)
				}
				if snapping.Load() {
					during.Add(1)
				}
			}
		})
	}
	snapshots := 0
	for snapshots < 3 || during.Load() == 0 {
		snapping.Store(true)
		if err := d.Snapshot(ctx); err != nil {
			t.Fatalf("Snapshot during writes: %v", err)
		}
		snapping.Store(false)
		snapshots++
		if snapshots > 50 {
			break
		}
	}
	stop.Store(true)
	wg.Wait()
	close(failures)
	for err := range failures {
		t.Fatalf("write during compaction: %v", err)
	}
	t.Logf("%d snapshots; %d writes acknowledged while one ran", snapshots, during.Load())
	if during.Load() == 0 {
		t.Errorf("no write was acknowledged while a snapshot was being made: the server paused")
	}
	live := mustScan(t, c, table)
	if got, want := numberAttr(mustGetItem(t, c, table, "TENANT#a", "COUNTER"), "n"), strconv.FormatInt(counter.Load(), 10); got != want {
		t.Errorf("live counter = %s, want %s acknowledged increments", got, want)
	}
	crashed := filepath.Join(t.TempDir(), "crashed")
	mustCopyDir(t, dir, crashed)
	mustClose(t, d)

	for name, p := range map[string]string{"after kill": filepath.Join(crashed, "dynamodb.json"), "after Close": path} {
		c2 := dynamoClient(mustStartDynamoDB(t, embedded.DynamoDBOptions{SnapshotPath: p}))
		got := mustScan(t, c2, table)
		if !reflect.DeepEqual(got, live) {
			t.Errorf("%s: %d items, want the %d live ones", name, len(got), len(live))
		}
		for w := range writers {
			for i := range acked[w].Load() {
				if mustGetItem(t, c2, table, fmt.Sprintf("W#%d", w), fmt.Sprintf("%08d", i)) == nil {
					t.Fatalf("%s: acknowledged item %d of writer %d is missing", name, i, w)
				}
			}
		}
	}
	// The background compactions kept the log short: the segments left are
	// those written since the last one.
	if segs := mustSegments(t, path); len(segs) > 3 {
		t.Errorf("%d log segments left after compactions, want at most 3: %v", len(segs), segs)
	}
}

// TestWALSurvivesKill runs a server in a child process that writes from several
// goroutines and records each acknowledged key, kills it with SIGKILL, and checks
// that a server started on its data has every acknowledged key.
func TestWALSurvivesKill(t *testing.T) {
	if dir := os.Getenv("EMBEDDED_WAL_KILL_CHILD"); dir != "" {
		walKillChild(t, dir)
		return
	}
	dir := t.TempDir()
	acks := filepath.Join(dir, "acked")
	cmd := exec.Command(os.Args[0], "-test.run=^TestWALSurvivesKill$", "-test.count=1")
	cmd.Env = append(os.Environ(), "EMBEDDED_WAL_KILL_CHILD="+dir)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	// Wait for a few hundred acknowledged writes, then kill mid-stream.
	for len(readAcked(t, acks)) < 300 {
		select {
		case err := <-exited:
			t.Fatalf("child ended before it was killed: %v; output:\n%s", err, out.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-exited
	keys := readAcked(t, acks)
	if len(keys) < 300 {
		t.Fatalf("child acknowledged only %d writes before it was killed; output:\n%s", len(keys), out.String())
	}
	c := dynamoClient(mustStartDynamoDB(t, embedded.DynamoDBOptions{SnapshotPath: filepath.Join(dir, "data", "dynamodb.json")}))
	for _, k := range keys {
		pk, sk, _ := strings.Cut(k, " ")
		if mustGetItem(t, c, table, pk, sk) == nil {
			t.Fatalf("acknowledged item %s is missing after kill -9 (of %d acknowledged)", k, len(keys))
		}
	}
	t.Logf("%d acknowledged writes, all present after kill -9", len(keys))
}

// walKillChild writes until it is killed, appending each acknowledged key to a
// file; the kernel keeps what was written to it when the process dies.
func walKillChild(t *testing.T, dir string) {
	ctx := context.Background()
	d, err := embedded.StartDynamoDB(ctx, embedded.DynamoDBOptions{SnapshotPath: filepath.Join(dir, "data", "dynamodb.json"), CompactAfter: 32 << 10})
	if err != nil {
		t.Fatal(err)
	}
	c := dynamoClient(d)
	mustCreateTable(t, c, table)
	f, err := os.OpenFile(filepath.Join(dir, "acked"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				pk, sk := fmt.Sprintf("W#%d", w), fmt.Sprintf("%08d", i)
				if _, err := c.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: item(pk, sk, nil)}); err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				_, _ = fmt.Fprintf(f, "%s %s\n", pk, sk)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
}

// readAcked returns the whole lines of the child's acknowledgement file.
func readAcked(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		keys = append(keys, sc.Text())
	}
	if len(b) > 0 && b[len(b)-1] != '\n' && len(keys) > 0 {
		keys = keys[:len(keys)-1] // a line the child was writing when killed
	}
	return keys
}

func incrementOf(tableName, sk string) *types.Update {
	return &types.Update{
		TableName:                 aws.String(tableName),
		Key:                       key("TENANT#a", sk),
		UpdateExpression:          aws.String("ADD n :one"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":one": &types.AttributeValueMemberN{Value: "1"}},
	}
}

func mustAdd(tb testing.TB, c *dynamodb.Client, tableName, sk string, n int) {
	tb.Helper()
	u := incrementOf(tableName, sk)
	u.ExpressionAttributeValues[":one"] = &types.AttributeValueMemberN{Value: strconv.Itoa(n)}
	_, err := c.UpdateItem(testContext(tb), &dynamodb.UpdateItemInput{TableName: u.TableName, Key: u.Key, UpdateExpression: u.UpdateExpression, ExpressionAttributeValues: u.ExpressionAttributeValues})
	if err != nil {
		tb.Fatalf("UpdateItem %s: %v", sk, err)
	}
}

// mustScan returns every item of a table, sorted by key.
func mustScan(tb testing.TB, c *dynamodb.Client, tableName string) []map[string]types.AttributeValue {
	tb.Helper()
	var items []map[string]types.AttributeValue
	p := dynamodb.NewScanPaginator(c, &dynamodb.ScanInput{TableName: aws.String(tableName)})
	for p.HasMorePages() {
		out, err := p.NextPage(testContext(tb))
		if err != nil {
			tb.Fatalf("Scan %s: %v", tableName, err)
		}
		items = append(items, out.Items...)
	}
	id := func(it map[string]types.AttributeValue) string {
		pk, _ := it["PK"].(*types.AttributeValueMemberS)
		sk, _ := it["SK"].(*types.AttributeValueMemberS)
		if pk == nil || sk == nil {
			return ""
		}
		return pk.Value + "\x00" + sk.Value
	}
	sort.Slice(items, func(i, j int) bool { return id(items[i]) < id(items[j]) })
	return items
}

// sortKeys returns the sort keys of items.
func sortKeys(items []map[string]types.AttributeValue) []string {
	var sks []string
	for _, it := range items {
		sks = append(sks, it["SK"].(*types.AttributeValueMemberS).Value)
	}
	return sks
}

// mustSegments returns the log segments next to a snapshot path, in order.
func mustSegments(tb testing.TB, path string) []string {
	tb.Helper()
	segs, err := filepath.Glob(path + ".wal-*")
	if err != nil {
		tb.Fatal(err)
	}
	sort.Strings(segs)
	return segs
}

// mustCopyDir copies the files of src into dst, as a backup of a running server
// (or its state at kill -9) would hold them.
func mustCopyDir(tb testing.TB, src, dst string) {
	tb.Helper()
	if err := os.MkdirAll(dst, 0o700); err != nil {
		tb.Fatal(err)
	}
	entries, err := os.ReadDir(src)
	if err != nil {
		tb.Fatal(err)
	}
	for _, e := range entries {
		if e.Type().IsRegular() {
			mustCopyFile(tb, filepath.Join(src, e.Name()), filepath.Join(dst, e.Name()))
		}
	}
}

func sizeOf(st os.FileInfo) any {
	if st == nil {
		return nil
	}
	return st.Size()
}
