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
	"strings"
	"time"
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
// items are kept exactly as minidyn's Scan returned them (DynamoDB JSON), so that
// they go back through BatchWriteItem without any conversion.
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

// capture reads every table into memory. The caller holds mu for writing, so it
// calls minidyn's handler directly rather than over the network, where the request
// would wait for the lock that the caller holds.
func (d *DynamoDB) capture() (*snapshotFile, error) {
	snap := &snapshotFile{Format: snapshotFormat, TakenAt: time.Now().UTC()}
	for _, t := range d.tables {
		items, err := d.scanAll(t.name)
		if errors.Is(err, errTableGone) {
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

// errTableGone reports that a table in the log no longer exists in minidyn.
var errTableGone = errors.New("table no longer exists")

// scanAll returns every item of a table as DynamoDB JSON. minidyn returns a whole
// table in one Scan when no Limit is given; the loop over LastEvaluatedKey is there
// so that a page limit, should minidyn ever add one, cannot truncate a snapshot.
func (d *DynamoDB) scanAll(table string) ([]json.RawMessage, error) {
	var (
		items []json.RawMessage
		start json.RawMessage
	)
	for {
		in := map[string]any{"TableName": table}
		if start != nil {
			in["ExclusiveStartKey"] = start
		}
		var out struct {
			Items            []json.RawMessage
			LastEvaluatedKey map[string]json.RawMessage
		}
		_, err := d.call("Scan", in, &out)
		if errors.Is(err, errResourceNotFound) {
			return nil, errTableGone
		}
		if err != nil {
			return nil, fmt.Errorf("scan table %s: %w", table, err)
		}
		items = append(items, out.Items...)
		if len(out.LastEvaluatedKey) == 0 {
			return items, nil
		}
		next, err := json.Marshal(out.LastEvaluatedKey)
		if err != nil {
			return nil, fmt.Errorf("scan table %s: %w", table, err)
		}
		if bytes.Equal(next, start) {
			return nil, fmt.Errorf("scan table %s: pagination does not advance past %s", table, next)
		}
		start = next
	}
}

// errResourceNotFound matches a ResourceNotFoundException answer from minidyn.
var errResourceNotFound = errors.New("ResourceNotFoundException")

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

func (e *dynamoError) Is(target error) bool {
	return target == errResourceNotFound && e.Type == "ResourceNotFoundException"
}

// call sends one DynamoDB JSON request straight to the handler, bypassing the
// network and the lock (see capture), and decodes a successful answer into out.
// Table operations go through apply so that the table log records them.
func (d *DynamoDB) call(op string, in any, out any) (int, error) {
	body, err := json.Marshal(in)
	if err != nil {
		return 0, fmt.Errorf("%s: encode request: %w", op, err)
	}
	req, err := http.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("%s: %w", op, err)
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
		return rec.Code, e
	}
	if out != nil {
		if err := json.Unmarshal(rec.Body.Bytes(), out); err != nil {
			return rec.Code, fmt.Errorf("%s: decode answer: %w", op, err)
		}
	}
	return rec.Code, nil
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
			if _, err := d.call(op.Op, op.Body, nil); err != nil {
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
	if _, err := d.call("BatchWriteItem", map[string]any{"RequestItems": map[string]any{table: reqs}}, &out); err != nil {
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
