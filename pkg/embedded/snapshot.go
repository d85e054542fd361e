package embedded

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"time"

	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/truora/minidyn/core"
	"github.com/truora/minidyn/server"
)

// The snapshot file's layouts. The first is one JSON document, read still so
// that data written by earlier versions loads; snapshots are written in the
// second, which is read and written one item at a time:
//
//	{"format":"bulkhead-minidyn-snapshot/2","taken_at":...,"wal_through":N}
//	{"table":{"name":...,"ddl":[...],"items":K}}   then K lines, one item each
//	...                                            (the next table)
//
// wal_through is the last log segment whose changes the snapshot holds: the
// start replays only later ones, so that a crash between writing a snapshot
// and deleting the segments it holds never applies a change twice.
const (
	snapshotFormat   = "bulkhead-minidyn-snapshot/1"
	snapshotFormatV2 = "bulkhead-minidyn-snapshot/2"
)

// batchWriteLimit is the number of items DynamoDB (and minidyn) accept in one
// BatchWriteItem call.
const batchWriteLimit = 25

// maxSnapshotLine bounds one line of a snapshot file: an item is at most 400 KB,
// and a table's operations a few kilobytes.
const maxSnapshotLine = 64 << 20

// snapshotFile is the first layout of the snapshot file. Each table carries its
// table operations (CreateTable, then any UpdateTable that changed its indexes)
// rather than one CreateTable body, so that indexes added after creation come
// back too; items are DynamoDB JSON (see scanTable), so that they go back through
// BatchWriteItem without any conversion.
type snapshotFile struct {
	Format  string          `json:"format"`
	TakenAt time.Time       `json:"taken_at"`
	Tables  []snapshotTable `json:"tables"`
}

// snapshotTable is one table in the first layout.
type snapshotTable struct {
	Name  string            `json:"name"`
	DDL   []ddlOp           `json:"ddl"`
	Items []json.RawMessage `json:"items"`
}

// snapshotHeader is the first line of the second layout.
type snapshotHeader struct {
	Format     string    `json:"format"`
	TakenAt    time.Time `json:"taken_at"`
	WALThrough uint64    `json:"wal_through"`
}

// snapshotTableLine introduces a table and its items in the second layout.
type snapshotTableLine struct {
	Table *snapshotTableHead `json:"table"`
}

type snapshotTableHead struct {
	Name  string  `json:"name"`
	DDL   []ddlOp `json:"ddl"`
	Items int     `json:"items"`
}

// writeSnapshot writes every table in the second layout. The caller is the only
// goroutine using d (a compaction's private engine).
func (d *DynamoDB) writeSnapshot(ctx context.Context, w *bufio.Writer, walThrough uint64) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(snapshotHeader{Format: snapshotFormatV2, TakenAt: time.Now().UTC(), WALThrough: walThrough}); err != nil {
		return err
	}
	for _, t := range d.tables {
		items, err := d.scanTable(t.name)
		if _, ok := errors.AsType[*ddbtypes.ResourceNotFoundException](err); ok {
			continue
		}
		if err != nil {
			return err
		}
		if err := enc.Encode(snapshotTableLine{Table: &snapshotTableHead{Name: t.name, DDL: t.ddl, Items: len(items)}}); err != nil {
			return err
		}
		for i, it := range items {
			if i%4096 == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			if err := enc.Encode(exactItem(it)); err != nil {
				return fmt.Errorf("scan table %s: encode item: %w", t.name, err)
			}
		}
	}
	return nil
}

// scanTable returns every item of a table. It scans through minidyn's in-process
// client rather than its HTTP handler because the handler's encoding drops empty
// lists and maps (it answers {} for them), and an item restored with such a
// typeless value breaks every later Query that reads it; the client's Go values
// still tell an empty list from an empty map (exactAV encodes them). minidyn
// returns a whole table in one Scan when no Limit is given; the loop over
// LastEvaluatedKey is there so that a page limit, should minidyn ever add one,
// cannot truncate a snapshot.
func (d *DynamoDB) scanTable(table string) ([]map[string]*server.AttributeValue, error) {
	var (
		items []map[string]*server.AttributeValue
		start map[string]*server.AttributeValue
	)
	for {
		out, err := d.client.Scan(context.Background(), &server.ScanInput{TableName: &table, ExclusiveStartKey: start})
		if err != nil {
			return nil, fmt.Errorf("scan table %s: %w", table, err)
		}
		items = append(items, out.Items...)
		if len(out.LastEvaluatedKey) == 0 {
			return items, nil
		}
		if reflect.DeepEqual(out.LastEvaluatedKey, start) {
			return nil, fmt.Errorf("scan table %s: pagination does not advance", table)
		}
		start = out.LastEvaluatedKey
	}
}

// exactItem is an item whose values encode with exactAV.
func exactItem(it map[string]*server.AttributeValue) map[string]*exactAV {
	out := make(map[string]*exactAV, len(it))
	for k, v := range it {
		out[k] = (*exactAV)(v)
	}
	return out
}

// exactAV is minidyn's AttributeValue with the DynamoDB JSON encoding: exactly one
// type key, including for an empty list ({"L":[]}) or map ({"M":{}}), which
// minidyn's own encoding leaves out.
type exactAV server.AttributeValue

// MarshalJSON encodes the value as DynamoDB JSON.
func (v *exactAV) MarshalJSON() ([]byte, error) {
	switch {
	case v.S != nil:
		return json.Marshal(map[string]string{"S": *v.S})
	case v.N != nil:
		return json.Marshal(map[string]string{"N": *v.N})
	case v.B != nil:
		return json.Marshal(map[string][]byte{"B": v.B})
	case v.BOOL != nil:
		return json.Marshal(map[string]bool{"BOOL": *v.BOOL})
	case v.NULL != nil:
		return json.Marshal(map[string]bool{"NULL": *v.NULL})
	case v.SS != nil:
		return json.Marshal(map[string][]*string{"SS": v.SS})
	case v.NS != nil:
		return json.Marshal(map[string][]*string{"NS": v.NS})
	case v.BS != nil:
		return json.Marshal(map[string][][]byte{"BS": v.BS})
	case v.L != nil:
		l := make([]*exactAV, len(v.L))
		for i, e := range v.L {
			l[i] = (*exactAV)(e)
		}
		return json.Marshal(map[string][]*exactAV{"L": l})
	case v.M != nil:
		return json.Marshal(map[string]map[string]*exactAV{"M": exactItem(v.M)})
	default:
		// A value without a type; keep it as minidyn has it rather than fail
		// the whole snapshot.
		return []byte("{}"), nil
	}
}

// innerClient returns the in-process client inside a minidyn server. minidyn
// does not export it, so this reads the unexported field, after checking that the
// field is still there with the expected type: a minidyn upgrade that changes it
// makes StartDynamoDB fail instead of corrupting memory.
func innerClient(s *server.Server) (*server.Client, error) {
	f := reflect.ValueOf(s).Elem().FieldByName("client")
	if !f.IsValid() || f.Type() != reflect.TypeFor[*server.Client]() {
		return nil, errors.New("this minidyn version has no *server.Client field named client; persistence needs an update")
	}
	return (*server.Client)(f.UnsafePointer()), nil
}

// dynamoError is an error answer of the DynamoDB JSON protocol.
type dynamoError struct {
	Op      string
	Status  int
	Type    string `json:"__type"`
	Message string `json:"message"`
}

func (e *dynamoError) Error() string {
	return fmt.Sprintf("%s: %d %s: %s", e.Op, e.Status, e.Type, e.Message)
}

// call sends one DynamoDB JSON request straight to the handler, bypassing the
// network (restore runs before the server listens), and decodes a successful
// answer into out. It goes through apply so that the table log records the table
// operations (and the write-ahead log what changed, once it is open).
func (d *DynamoDB) call(op string, in any, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return fmt.Errorf("%s: encode request: %w", op, err)
	}
	req, err := http.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	req.Header.Set("X-Amz-Target", targetPrefix+op)
	req.Header.Set("Content-Type", "application/x-amz-json-1.0")
	rec := httptest.NewRecorder()
	d.apply(rec, req, op)
	if rec.Code != http.StatusOK {
		e := &dynamoError{Op: op, Status: rec.Code}
		if json.Unmarshal(rec.Body.Bytes(), e) != nil || e.Type == "" {
			e.Message = rec.Body.String() // minidyn answers some errors in plain text
		}
		return e
	}
	if out != nil {
		if err := json.Unmarshal(rec.Body.Bytes(), out); err != nil {
			return fmt.Errorf("%s: decode answer: %w", op, err)
		}
	}
	return nil
}

// restore loads the snapshot file, if any, and returns the last log segment it
// holds (0 for none or the first layout). It runs before the server listens, or
// on a compaction's private engine, so nothing else touches minidyn meanwhile.
func (d *DynamoDB) restore(ctx context.Context, path string) (walThrough uint64, err error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 1<<20)
	head, _ := r.Peek(len(`{"format":"`) + len(snapshotFormat))
	if bytes.HasSuffix(head, []byte(snapshotFormat)) {
		return 0, d.restoreV1(ctx, r)
	}
	return d.restoreV2(ctx, r)
}

// restoreV1 loads the first layout: it replays each table's operations and then
// writes its items back with BatchWriteItem.
func (d *DynamoDB) restoreV1(ctx context.Context, r io.Reader) error {
	var snap snapshotFile
	if err := json.NewDecoder(r).Decode(&snap); err != nil {
		return fmt.Errorf("decode: %w", err)
	}
	if snap.Format != snapshotFormat {
		return fmt.Errorf("unknown format %q, want %q", snap.Format, snapshotFormat)
	}
	for _, t := range snap.Tables {
		for _, op := range t.DDL {
			if err := d.call(op.Op, op.Body, nil); err != nil {
				return fmt.Errorf("recreate table %s: %w", t.Name, err)
			}
		}
		for batch := range chunks(t.Items, batchWriteLimit) {
			if err := ctx.Err(); err != nil {
				return err
			}
			if err := d.putBatch(t.Name, batch); err != nil {
				return fmt.Errorf("reload items of table %s: %w", t.Name, err)
			}
		}
	}
	return nil
}

// restoreV2 loads the second layout, one line at a time. Each item is decoded
// once, straight into minidyn's own values, and a table's items go into minidyn
// in one LoadEntries call, which sorts the keys and index entries once instead
// of inserting into sorted slices item by item (quadratic in the table's size).
func (d *DynamoDB) restoreV2(ctx context.Context, r io.Reader) (uint64, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 1<<20), maxSnapshotLine)
	line := func() ([]byte, error) {
		if sc.Scan() {
			return sc.Bytes(), nil
		}
		if err := sc.Err(); err != nil {
			return nil, err
		}
		return nil, io.EOF
	}
	b, err := line()
	if err != nil {
		return 0, fmt.Errorf("read header: %w", err)
	}
	var head snapshotHeader
	if err := json.Unmarshal(b, &head); err != nil {
		return 0, fmt.Errorf("decode header: %w", err)
	}
	if head.Format != snapshotFormatV2 {
		return 0, fmt.Errorf("unknown format %q, want %q", head.Format, snapshotFormatV2)
	}
	for {
		b, err := line()
		if errors.Is(err, io.EOF) {
			return head.WALThrough, nil
		}
		if err != nil {
			return 0, err
		}
		var tl snapshotTableLine
		if err := json.Unmarshal(b, &tl); err != nil || tl.Table == nil {
			return 0, fmt.Errorf("decode table line: %v", err)
		}
		t := tl.Table
		for _, op := range t.DDL {
			if err := d.call(op.Op, op.Body, nil); err != nil {
				return 0, fmt.Errorf("recreate table %s: %w", t.Name, err)
			}
		}
		loader, err := d.client.NewLoader(t.Name)
		if err != nil {
			return 0, fmt.Errorf("table %s: reload items: %w", t.Name, err)
		}
		entries, err := decodeItems(ctx, line, t.Name, t.Items, loader)
		if err != nil {
			return 0, err
		}
		if err := d.client.LoadEntries(loader, entries); err != nil {
			return 0, fmt.Errorf("table %s: reload items: %w", t.Name, err)
		}
	}
}

// decodeItems reads the n item lines of a table, decodes them and prepares them
// for loading (their validation, keys, index keys and expiry), in batches
// spread over the available cores: this is most of the cost of a start, and an
// item is prepared while it is still in the cache of the core that decoded it.
func decodeItems(ctx context.Context, line func() ([]byte, error), table string, n int, loader *core.Loader) ([]core.LoadEntry, error) {
	const batchSize = 1024
	type batch struct {
		first int    // index of the batch's first item
		buf   []byte // the batch's lines, one after the other
		ends  []int  // where each line ends in buf
	}
	entries := make([]core.LoadEntry, n)
	work := make(chan batch, 4)
	var (
		wg      sync.WaitGroup
		errMu   sync.Mutex
		errAt   = n
		decoErr error
	)
	fail := func(i int, err error) {
		errMu.Lock()
		defer errMu.Unlock()
		if i < errAt {
			errAt, decoErr = i, fmt.Errorf("table %s: item %d: %w", table, i+1, err)
		}
	}
	for range max(1, runtime.GOMAXPROCS(0)) {
		wg.Go(func() {
			for b := range work {
				start := 0
				for k, end := range b.ends {
					item, err := decodeItem(b.buf[start:end])
					if err == nil {
						entries[b.first+k], err = loader.Prepare(item)
					}
					if err != nil {
						fail(b.first+k, err)
					}
					start = end
				}
			}
		})
	}
	readErr := func() error {
		defer close(work)
		size := 64 << 10 // of the previous batch, to allocate each one once
		for first := 0; first < n; first += batchSize {
			if err := ctx.Err(); err != nil {
				return err
			}
			b := batch{first: first, buf: make([]byte, 0, size+size/4), ends: make([]int, 0, batchSize)}
			for i := first; i < min(n, first+batchSize); i++ {
				l, err := line()
				if err != nil {
					return fmt.Errorf("table %s: item %d of %d: %w", table, i+1, n, err)
				}
				b.buf = append(b.buf, l...)
				b.ends = append(b.ends, len(b.buf))
			}
			size = len(b.buf)
			work <- b
		}
		return nil
	}()
	wg.Wait()
	if readErr != nil {
		return nil, readErr
	}
	if decoErr != nil {
		return nil, decoErr
	}
	return entries, nil
}

// putBatch writes items to table in one BatchWriteItem call.
func (d *DynamoDB) putBatch(table string, items []json.RawMessage) error {
	type putRequest struct {
		Item json.RawMessage `json:"Item"`
	}
	type writeRequest struct {
		PutRequest putRequest `json:"PutRequest"`
	}
	reqs := make([]writeRequest, len(items))
	for i, it := range items {
		reqs[i] = writeRequest{PutRequest: putRequest{Item: it}}
	}
	var out struct {
		UnprocessedItems map[string][]json.RawMessage
	}
	if err := d.call("BatchWriteItem", map[string]any{"RequestItems": map[string]any{table: reqs}}, &out); err != nil {
		return err
	}
	if n := len(out.UnprocessedItems[table]); n > 0 {
		return fmt.Errorf("BatchWriteItem left %d items unprocessed", n)
	}
	return nil
}

// chunks yields s in consecutive slices of at most n elements.
func chunks[T any](s []T, n int) func(yield func([]T) bool) {
	return func(yield func([]T) bool) {
		for len(s) > 0 {
			k := min(n, len(s))
			if !yield(s[:k]) {
				return
			}
			s = s[k:]
		}
	}
}

// writeFileAtomic replaces path with what write produces, so that a crash at any
// moment leaves either the old file or the new one, never a mix: it writes a
// temporary file in the same directory, flushes it to disk, renames it over path,
// and flushes the directory so that the rename itself survives a power loss.
func writeFileAtomic(path string, write func(*bufio.Writer) error) (err error) {
	dir := dirOf(path)
	tmp, err := os.CreateTemp(dir, filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	if err := tmp.Chmod(0o600); err != nil {
		return err
	}
	w := bufio.NewWriterSize(tmp, 1<<20)
	if err := write(w); err != nil {
		return err
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	return syncDir(dir)
}

// syncDir flushes a directory's entries to disk.
func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// removeStaleTemps deletes temporary files that a crash during writeFileAtomic left
// next to path. The caller holds the snapshot's lock, so none is being written.
func removeStaleTemps(path string) {
	dir, prefix := dirOf(path), filepath.Base(path)+".tmp-"
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), prefix) {
			_ = os.Remove(filepath.Join(dir, e.Name()))
		}
	}
}

// dirOf is the directory of path ("." for a bare file name).
func dirOf(path string) string {
	return filepath.Dir(path)
}
