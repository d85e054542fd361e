package embedded

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"time"

	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/truora/minidyn/server"
)

// snapshotFormat names the layout of the snapshot file, so that a later layout can
// be told apart from this one.
const snapshotFormat = "bulkhead-minidyn-snapshot/1"

// batchWriteLimit is the number of items DynamoDB (and minidyn) accept in one
// BatchWriteItem call.
const batchWriteLimit = 25

// snapshotFile is the layout of the snapshot file. Each table carries its table
// operations (CreateTable, then any UpdateTable that changed its indexes) rather
// than one CreateTable body, so that indexes added after creation come back too;
// items are DynamoDB JSON (see scanAll), so that they go back through
// BatchWriteItem without any conversion.
type snapshotFile struct {
	Format  string          `json:"format"`
	TakenAt time.Time       `json:"taken_at"`
	Tables  []snapshotTable `json:"tables"`
}

// snapshotTable is one table in the snapshot file.
type snapshotTable struct {
	Name  string            `json:"name"`
	DDL   []ddlOp           `json:"ddl"`
	Items []json.RawMessage `json:"items"`
}

// snapshot captures every table under the write lock and then writes the file
// outside it, so that requests wait only for the in-memory scan. With markClosed
// it also marks the server closed before releasing the lock, so that nothing can
// change after the final snapshot.
func (d *DynamoDB) snapshot(markClosed bool) error {
	d.snapMu.Lock()
	defer d.snapMu.Unlock()

	d.mu.Lock()
	if d.closed && !markClosed {
		// The final snapshot is written and the file's lock released: another
		// process may own the file by now.
		d.mu.Unlock()
		return errors.New("snapshot dynamodb: server is closed")
	}
	if markClosed {
		d.closed = true
	}
	if d.path == "" {
		d.mu.Unlock()
		return nil
	}
	wasDirty := d.dirty.Swap(false)
	snap, err := d.capture()
	d.mu.Unlock()
	if err != nil {
		if wasDirty {
			d.dirty.Store(true)
		}
		return fmt.Errorf("snapshot dynamodb: %w", err)
	}

	if err := writeFileAtomic(d.path, func(w *bufio.Writer) error {
		return json.NewEncoder(w).Encode(snap)
	}); err != nil {
		if wasDirty {
			d.dirty.Store(true)
		}
		return fmt.Errorf("snapshot dynamodb to %s: %w", d.path, err)
	}
	return nil
}

// capture reads every table into memory. The caller holds mu for writing, so no
// request is being served meanwhile.
func (d *DynamoDB) capture() (*snapshotFile, error) {
	snap := &snapshotFile{Format: snapshotFormat, TakenAt: time.Now().UTC()}
	for _, t := range d.tables {
		items, err := d.scanAll(t.name)
		if _, ok := errors.AsType[*ddbtypes.ResourceNotFoundException](err); ok {
			// Dropped behind our back (Server().Reset()): nothing to save.
			continue
		}
		if err != nil {
			return nil, err
		}
		snap.Tables = append(snap.Tables, snapshotTable{Name: t.name, DDL: t.ddl, Items: items})
	}
	return snap, nil
}

// scanAll returns every item of a table as DynamoDB JSON. It scans through
// minidyn's in-process client rather than its HTTP handler because the handler's
// encoding drops empty lists and maps (it answers {} for them), and an item
// restored with such a typeless value breaks every later Query that reads it;
// the client's Go values still tell an empty list from an empty map. minidyn
// returns a whole table in one Scan when no Limit is given; the loop over
// LastEvaluatedKey is there so that a page limit, should minidyn ever add one,
// cannot truncate a snapshot.
func (d *DynamoDB) scanAll(table string) ([]json.RawMessage, error) {
	var (
		items []json.RawMessage
		start map[string]*server.AttributeValue
	)
	for {
		out, err := d.client.Scan(context.Background(), &server.ScanInput{TableName: &table, ExclusiveStartKey: start})
		if err != nil {
			return nil, fmt.Errorf("scan table %s: %w", table, err)
		}
		for _, it := range out.Items {
			b, err := json.Marshal(exactItem(it))
			if err != nil {
				return nil, fmt.Errorf("scan table %s: encode item: %w", table, err)
			}
			items = append(items, b)
		}
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
// operations.
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

// restore loads the snapshot file, if any: it replays each table's operations and
// then writes its items back with BatchWriteItem. It runs before the server listens,
// so nothing else touches minidyn meanwhile.
func (d *DynamoDB) restore(ctx context.Context) error {
	f, err := os.Open(d.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()

	var snap snapshotFile
	if err := json.NewDecoder(bufio.NewReader(f)).Decode(&snap); err != nil {
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
	d.dirty.Store(false)
	return nil
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
