package embedded

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/truora/minidyn/server"
)

// defaultSnapshotEvery bounds what a crash can lose while keeping the cost of
// rewriting the snapshot file negligible for a developer's data set.
const defaultSnapshotEvery = time.Second

// maxDDLBody caps the table-operation bodies that are buffered for the snapshot; a
// CreateTable request is a few kilobytes even with many indexes.
const maxDDLBody = 1 << 20

// DynamoDBOptions configures StartDynamoDB.
type DynamoDBOptions struct {
	// Addr is the loopback address to listen on; "" means 127.0.0.1 on a free port.
	// Addresses that are not loopback are refused.
	Addr string
	// SnapshotPath is the file that holds the data between runs; "" keeps the data
	// in memory only. Its directory is created if needed. Only one process may use
	// a snapshot file at a time.
	SnapshotPath string
	// SnapshotEvery is how often the data is written to SnapshotPath when something
	// changed; 0 means one second. It bounds what a crash can lose.
	SnapshotEvery time.Duration
	// Logger receives background snapshot failures and server errors; nil discards
	// them.
	Logger *slog.Logger
	// Now is the clock of the ClientRequestToken window of TransactWriteItems
	// (see rules.go); nil means time.Now. Tests inject one to pass the window.
	Now func() time.Time
}

// DynamoDB is an embedded DynamoDB-compatible server (minidyn) listening on
// loopback, optionally persisted to a snapshot file. Create it with StartDynamoDB
// and stop it with Close.
type DynamoDB struct {
	inner   *server.Server
	client  *server.Client // inner's in-process client, for snapshots and the checks of rules.go
	path    string
	every   time.Duration
	log     *slog.Logger
	ln      net.Listener
	srv     *httpServer
	unlock  func() error // releases the snapshot file's lock; nil when memory only
	stop    chan struct{}
	stopped chan struct{}

	// mu makes snapshots consistent: every request holds it for reading while it
	// is served, a snapshot holds it for writing while it reads the tables. Table
	// operations (CreateTable, UpdateTable, DeleteTable, DescribeTable) also hold
	// it for writing, because minidyn serves them without its own lock.
	mu     sync.RWMutex
	tables []*tableLog // guarded by mu; in creation order
	closed bool        // guarded by mu; set by Close, after which requests are refused

	dirty atomic.Bool // something may have changed since the last snapshot

	// snapMu serialises whole snapshots (read and file write), so that an older
	// snapshot can never be written over a newer one.
	snapMu sync.Mutex

	closeOnce sync.Once
	closeErr  error

	rules   // DynamoDB's rules that minidyn does not enforce (rules.go)
	catalog // what the table operations of tableops.go answer from
}

// tableLog is what is needed to recreate one table: the successful table operations
// that shaped it, in order (its CreateTable, then any UpdateTable), as the
// request bodies that the client sent. It also keeps the table's key schema,
// which the checks of rules.go need.
type tableLog struct {
	name   string
	ddl    []ddlOp
	schema *tableSchema // nil if the CreateTable body could not be read
}

// ddlOp is one table operation: its name ("CreateTable") and request body.
type ddlOp struct {
	Op   string          `json:"op"`
	Body json.RawMessage `json:"body"`
}

// StartDynamoDB restores the snapshot at opts.SnapshotPath if there is one, then
// starts serving the DynamoDB JSON protocol on a loopback address. A snapshot that
// exists but cannot be read is an error rather than an empty start, so that a
// damaged file is never silently replaced by an empty one.
func StartDynamoDB(ctx context.Context, opts DynamoDBOptions) (*DynamoDB, error) {
	d := &DynamoDB{
		inner: server.NewServer(),
		path:  opts.SnapshotPath,
		every: opts.SnapshotEvery,
		log:   opts.Logger,
	}
	if d.every <= 0 {
		d.every = defaultSnapshotEvery
	}
	if d.log == nil {
		d.log = discardLogger()
	}
	d.rules.init(opts.Now)

	client, err := innerClient(d.inner)
	if err != nil {
		return nil, fmt.Errorf("start embedded dynamodb: %w", err)
	}
	d.client = client
	if d.path != "" {
		if err := d.openSnapshot(ctx); err != nil {
			return nil, err
		}
	}

	ln, err := listenLoopback(opts.Addr)
	if err != nil {
		d.release()
		return nil, fmt.Errorf("start embedded dynamodb: %w", err)
	}
	d.ln = ln
	d.srv = newHTTPServer(http.HandlerFunc(d.serveHTTP), opts.Logger)
	go d.srv.serve(ln, d.log, "dynamodb")

	if d.path != "" {
		d.stop, d.stopped = make(chan struct{}), make(chan struct{})
		go d.snapshotLoop()
	}
	return d, nil
}

// openSnapshot locks the snapshot file against a second process and loads it.
func (d *DynamoDB) openSnapshot(ctx context.Context) error {
	if err := os.MkdirAll(dirOf(d.path), 0o700); err != nil {
		return fmt.Errorf("create snapshot directory for %s: %w", d.path, err)
	}
	unlock, err := lockFile(d.path + ".lock")
	if err != nil {
		return fmt.Errorf("lock snapshot %s: %w", d.path, err)
	}
	d.unlock = unlock
	removeStaleTemps(d.path)
	if err := d.restore(ctx); err != nil {
		d.release()
		return fmt.Errorf("restore snapshot %s: %w", d.path, err)
	}
	return nil
}

// release unlocks the snapshot file, if this server locked one.
func (d *DynamoDB) release() {
	if d.unlock != nil {
		if err := d.unlock(); err != nil {
			d.log.Warn("unlock dynamodb snapshot", "path", d.path, "err", err)
		}
		d.unlock = nil
	}
}

// URL returns the server's base URL, such as "http://127.0.0.1:41234", for the
// SDK's BaseEndpoint.
func (d *DynamoDB) URL() string {
	return baseURL(d.ln)
}

// Server returns the minidyn server, so that tests can inject failures
// (EmulateFailure, EmulateFailureForTable, EmulateUnprocessedItems). minidyn sets
// the global failure condition without a lock: change it while no request is in
// flight. A snapshot reads the tables through the same server, so it fails while a
// failure is emulated on them; clear it before Close. Changing data through this
// value (Reset, ClearTable) bypasses change tracking: such a change is persisted
// with the next snapshot that something else triggers.
func (d *DynamoDB) Server() *server.Server {
	return d.inner
}

// EmulateFailure sets minidyn's global failure condition while no request is
// being served (it takes the same lock as a snapshot), so tests may switch
// failures on and off under load without a data race.
func (d *DynamoDB) EmulateFailure(cond server.FailureCondition) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.inner.EmulateFailure(cond)
}

// Close stops accepting connections, waits for in-flight requests until ctx is
// done, writes a final snapshot and releases the snapshot file. Every request that
// got a successful response before Close returned is in that snapshot. Close may be
// called more than once; later calls return the first call's result.
func (d *DynamoDB) Close(ctx context.Context) error {
	d.closeOnce.Do(func() {
		errShutdown := d.srv.shutdown(ctx)
		if d.stop != nil {
			close(d.stop)
			<-d.stopped
		}
		// Any handler still running after a forced shutdown holds mu for reading,
		// so the final snapshot waits for it, and marks the server closed so that
		// nothing can change after the snapshot.
		errSnap := d.snapshot(true)
		d.release()
		d.closeErr = errors.Join(errShutdown, errSnap)
		if d.closeErr != nil {
			d.closeErr = fmt.Errorf("close embedded dynamodb: %w", d.closeErr)
		}
	})
	return d.closeErr
}

// Snapshot writes a consistent snapshot of every table now, whether or not
// anything changed. It does nothing for a memory-only server, and fails after
// Close.
func (d *DynamoDB) Snapshot(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("snapshot dynamodb: %w", err)
	}
	return d.snapshot(false)
}

// snapshotLoop writes a snapshot every d.every when something changed, until Close.
func (d *DynamoDB) snapshotLoop() {
	defer close(d.stopped)
	t := time.NewTicker(d.every)
	defer t.Stop()
	for {
		select {
		case <-d.stop:
			return
		case <-t.C:
			if !d.dirty.Load() {
				continue
			}
			if err := d.snapshot(false); err != nil {
				// The data is still dirty, so the next tick tries again.
				d.log.Warn("background dynamodb snapshot failed", "path", d.path, "err", err)
			}
		}
	}
}

// Operations and their handling by the wrapper.
var (
	// exclusiveOps are served under the write lock, because minidyn serves them
	// without its own lock and they read or change the table map and table
	// metadata that concurrent item operations use.
	exclusiveOps = map[string]bool{
		"CreateTable": true, "UpdateTable": true, "DeleteTable": true, "DescribeTable": true,
	}
	// mutatingOps mark the data dirty. They do so whatever the outcome: a failed
	// BatchWriteItem may have applied its first writes before failing.
	mutatingOps = map[string]bool{
		"PutItem": true, "UpdateItem": true, "DeleteItem": true, "BatchWriteItem": true,
		"TransactWriteItems": true, "CreateTable": true, "DeleteTable": true, "UpdateTable": true,
	}
)

// targetPrefix is the X-Amz-Target prefix of the DynamoDB JSON protocol.
const targetPrefix = "DynamoDB_20120810."

// operation returns the operation named by an X-Amz-Target header, such as
// "PutItem" for "DynamoDB_20120810.PutItem".
func operation(target string) string {
	return target[strings.LastIndexByte(target, '.')+1:]
}

// serveHTTP serves one request from the network under the lock.
func (d *DynamoDB) serveHTTP(w http.ResponseWriter, r *http.Request) {
	op := operation(r.Header.Get("X-Amz-Target"))
	if exclusiveOps[op] {
		d.mu.Lock()
		defer d.mu.Unlock()
	} else {
		d.mu.RLock()
		defer d.mu.RUnlock()
	}
	if d.closed {
		writeDynamoError(w, http.StatusServiceUnavailable, "ServiceUnavailable", "the embedded DynamoDB server is shutting down")
		return
	}
	// Requests from the network are held to DynamoDB's rules; a snapshot being
	// restored (call) goes to apply directly, so that data accepted earlier always
	// loads. Operations minidyn lacks are answered first (tableops.go).
	if d.serveTableOp(w, r, op) {
		return
	}
	d.serveChecked(w, r, op)
}

// apply serves one request with minidyn and records what a snapshot needs. The
// caller holds mu (for writing if op is in exclusiveOps), or is the only goroutine.
func (d *DynamoDB) apply(w http.ResponseWriter, r *http.Request, op string) {
	if mutatingOps[op] {
		d.dirty.Store(true)
	}
	if op != "CreateTable" && op != "UpdateTable" && op != "DeleteTable" {
		d.inner.ServeHTTP(w, r)
		return
	}

	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxDDLBody))
	if err != nil {
		writeDynamoError(w, http.StatusBadRequest, "ValidationException", "read request body: "+err.Error())
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	sw := &statusWriter{ResponseWriter: w}
	d.inner.ServeHTTP(sw, r)
	if sw.status() != http.StatusOK {
		return
	}
	var in struct{ TableName string }
	if err := json.Unmarshal(body, &in); err != nil {
		// minidyn accepted it, so this cannot happen; if it does, the table is
		// missing from snapshots, which the log makes visible.
		d.log.Error("embedded dynamodb: cannot read table name of a successful table operation", "op", op, "err", err)
		return
	}
	d.recordDDL(op, in.TableName, body)
}

// recordDDL updates the table log after a successful table operation. The caller
// holds mu for writing.
func (d *DynamoDB) recordDDL(op, table string, body []byte) {
	d.catalog.record(op, table, body)
	i := d.tableIndex(table)
	switch op {
	case "CreateTable":
		t := &tableLog{name: table, ddl: []ddlOp{{Op: op, Body: body}}, schema: parseCreateTable(body)}
		if i >= 0 {
			d.tables[i] = t
		} else {
			d.tables = append(d.tables, t)
		}
	case "UpdateTable":
		if i >= 0 {
			d.tables[i].ddl = append(d.tables[i].ddl, ddlOp{Op: op, Body: body})
			d.tables[i].schema.applyUpdateTable(body)
		}
	case "DeleteTable":
		if i >= 0 {
			d.tables = append(d.tables[:i], d.tables[i+1:]...)
		}
	}
}

// tableIndex returns the position of table in d.tables, or -1.
func (d *DynamoDB) tableIndex(table string) int {
	for i, t := range d.tables {
		if t.name == table {
			return i
		}
	}
	return -1
}

// statusWriter remembers the status code a handler wrote.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (s *statusWriter) WriteHeader(code int) {
	if s.code == 0 {
		s.code = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.code == 0 {
		s.code = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// status is the response's status code; a handler that wrote nothing answered 200.
func (s *statusWriter) status() int {
	if s.code == 0 {
		return http.StatusOK
	}
	return s.code
}

// writeDynamoError writes an error in the DynamoDB JSON protocol's shape, so that
// the SDK reports its code.
func writeDynamoError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"__type": code, "message": msg})
}
