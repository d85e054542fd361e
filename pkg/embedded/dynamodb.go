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

// minCompactAfter is the least the write-ahead log grows to before it is folded
// into a new snapshot; past that, it may grow to compactFraction of the
// snapshot's size, so that rewriting the snapshot costs a bounded amount per
// logged byte (compactFraction bytes of snapshot per byte logged) however large
// the tables are. A logged byte costs a start about three times what a byte of
// snapshot costs (it goes through the request path), so a quarter keeps the
// worst start (a log just short of the threshold) within about 1.5 times a
// start from the snapshot alone.
const (
	minCompactAfter = 8 << 20
	compactFraction = 4
)

// maxDDLBody caps the table-operation bodies that are buffered for the snapshot; a
// CreateTable request is a few kilobytes even with many indexes.
const maxDDLBody = 1 << 20

// DynamoDBOptions configures StartDynamoDB.
type DynamoDBOptions struct {
	// Addr is the loopback address to listen on; "" means 127.0.0.1 on a free port.
	// Addresses that are not loopback are refused.
	Addr string
	// SnapshotPath is the file that holds the data between runs, with its
	// write-ahead log next to it (SnapshotPath.wal-NNNNNNNN); "" keeps the data in
	// memory only. Its directory is created if needed. Only one process may use a
	// snapshot file at a time.
	SnapshotPath string
	// SnapshotEvery is ignored: every change is logged before it is acknowledged.
	//
	// Deprecated: persistence no longer runs on a timer.
	SnapshotEvery time.Duration
	// CompactAfter is how large the write-ahead log grows before it is folded into
	// a new snapshot in the background; 0 means the larger of 8 MB and a
	// quarter of the snapshot's size.
	CompactAfter int64
	// Logger receives background snapshot failures and server errors; nil discards
	// them.
	Logger *slog.Logger
	// Now is the clock of the ClientRequestToken window of TransactWriteItems
	// (see rules.go) and of TTL expiry (ttl.go); nil means time.Now. Tests inject
	// one to pass the window or expire items.
	Now func() time.Time
	// TTLSweepEvery is how often items whose TTL attribute is in the past are
	// deleted (ttl.go); 0 means every 15 seconds, a negative value never (SweepTTL
	// still deletes them on demand).
	TTLSweepEvery time.Duration
}

// DynamoDB is an embedded DynamoDB-compatible server (minidyn) listening on
// loopback, optionally persisted to a snapshot file and a write-ahead log. Create
// it with StartDynamoDB and stop it with Close.
type DynamoDB struct {
	inner  *server.Server
	client *server.Client // inner's in-process client, for snapshots and the checks of rules.go
	path   string
	log    *slog.Logger
	ln     net.Listener
	srv    *httpServer
	unlock func() error // releases the snapshot file's lock; nil when memory only

	// mu lets table operations (CreateTable, UpdateTable, DeleteTable,
	// DescribeTable) run alone, because minidyn serves them without its own lock:
	// they hold it for writing, every other request for reading.
	mu     sync.RWMutex
	tables []*tableLog // guarded by mu; in creation order
	closed bool        // guarded by mu; set by Close, after which requests are refused

	// wal logs every change before it is acknowledged; nil when memory only, and
	// while the data is being restored. commitMu orders changes and their records
	// alike: a change and its append happen under it (wal.go).
	wal      *wal
	commitMu sync.Mutex

	// snapMu serialises compactions, so that an older snapshot can never be
	// written over a newer one.
	snapMu       sync.Mutex
	compactFixed int64        // DynamoDBOptions.CompactAfter
	compactAfter atomic.Int64 // log size that starts a background compaction
	closedBytes  atomic.Int64 // bytes in closed segments not yet in the snapshot
	compacting   atomic.Bool  // a background compaction runs
	bgCtx        context.Context
	bgCancel     context.CancelFunc
	bg           sync.WaitGroup

	closeOnce sync.Once
	closeErr  error

	rules   // DynamoDB's rules that minidyn does not enforce (rules.go)
	catalog // what the table operations of tableops.go answer from
}

// tableLog is what is needed to recreate one table: the successful table
// operations that shaped it, in order (its CreateTable, then any UpdateTable or
// UpdateTimeToLive), as the request bodies that the client sent. It also keeps
// the table's key schema, which the checks of rules.go need.
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
	d, err := newEngine(opts.Logger, opts.Now)
	if err != nil {
		return nil, fmt.Errorf("start embedded dynamodb: %w", err)
	}
	d.path = opts.SnapshotPath
	d.bgCtx, d.bgCancel = context.WithCancel(context.Background())
	if d.path != "" {
		if err := d.openSnapshot(ctx, opts.CompactAfter); err != nil {
			d.bgCancel()
			return nil, err
		}
	}

	ln, err := listenLoopback(opts.Addr)
	if err != nil {
		d.bgCancel()
		d.bg.Wait()
		if d.wal != nil {
			_ = d.wal.close()
		}
		d.release()
		return nil, fmt.Errorf("start embedded dynamodb: %w", err)
	}
	d.ln = ln
	d.srv = newHTTPServer(http.HandlerFunc(d.serveHTTP), opts.Logger)
	go d.srv.serve(ln, d.log, "dynamodb")
	d.startTTLSweeper(opts.TTLSweepEvery)
	return d, nil
}

// newEngine is a minidyn server with the wrapper's bookkeeping, neither
// listening nor persisted: the live server's core, and the private copy in which
// a compaction rebuilds the data.
func newEngine(log *slog.Logger, now func() time.Time) (*DynamoDB, error) {
	d := &DynamoDB{inner: server.NewServer(), log: log}
	if d.log == nil {
		d.log = discardLogger()
	}
	d.rules.init(now)
	client, err := innerClient(d.inner)
	if err != nil {
		return nil, err
	}
	d.client = client
	return d, nil
}

// openSnapshot locks the snapshot file against a second process, loads the
// snapshot and replays the log after it, and opens a new log segment.
func (d *DynamoDB) openSnapshot(ctx context.Context, compactAfter int64) error {
	if err := os.MkdirAll(dirOf(d.path), 0o700); err != nil {
		return fmt.Errorf("create snapshot directory for %s: %w", d.path, err)
	}
	unlock, err := lockFile(d.path + ".lock")
	if err != nil {
		return fmt.Errorf("lock snapshot %s: %w", d.path, err)
	}
	d.unlock = unlock
	removeStaleTemps(d.path)
	if err := d.recover(ctx, compactAfter); err != nil {
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
// flight. Changing data through this value (Reset, ClearTable) bypasses the
// write-ahead log: such a change is not persisted, and requests logged after it
// may replay differently at the next start.
func (d *DynamoDB) Server() *server.Server {
	return d.inner
}

// EmulateFailure sets minidyn's global failure condition while no request is
// being served (it takes the lock of table operations), so tests may switch
// failures on and off under load without a data race.
func (d *DynamoDB) EmulateFailure(cond server.FailureCondition) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.inner.EmulateFailure(cond)
}

// Close stops accepting connections, waits for in-flight requests until ctx is
// done, stops a background compaction, closes the write-ahead log and releases
// the snapshot file. Every change was on disk before it was acknowledged, so Close
// writes no snapshot. Close may be called more than once; later calls return the
// first call's result.
func (d *DynamoDB) Close(ctx context.Context) error {
	d.closeOnce.Do(func() {
		errShutdown := d.srv.shutdown(ctx)
		// Any handler still running after a forced shutdown holds mu for reading,
		// so this waits for it; nothing changes afterwards.
		d.mu.Lock()
		d.closed = true
		d.mu.Unlock()
		d.bgCancel()
		d.bg.Wait()
		var errLog error
		if d.wal != nil {
			errLog = d.wal.close()
		}
		d.release()
		d.closeErr = errors.Join(errShutdown, errLog)
		if d.closeErr != nil {
			d.closeErr = fmt.Errorf("close embedded dynamodb: %w", d.closeErr)
		}
	})
	return d.closeErr
}

// Snapshot folds the write-ahead log into a new snapshot now: the snapshot file
// then holds, alone, every change acknowledged before Snapshot was called. Requests
// are served meanwhile. It does nothing for a memory-only server, and fails after
// Close.
func (d *DynamoDB) Snapshot(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("snapshot dynamodb: %w", err)
	}
	d.mu.RLock()
	closed := d.closed
	d.mu.RUnlock()
	if closed {
		// The file's lock is released: another process may own it by now.
		return errors.New("snapshot dynamodb: server is closed")
	}
	if d.wal == nil {
		return nil
	}
	if err := d.compact(ctx); err != nil {
		return fmt.Errorf("snapshot dynamodb to %s: %w", d.path, err)
	}
	return nil
}

// Operations and their handling by the wrapper.
var (
	// exclusiveOps are served under the write lock, because minidyn serves them
	// without its own lock and they read or change the table map and table
	// metadata that concurrent item operations use (UpdateTimeToLive changes the
	// table log).
	exclusiveOps = map[string]bool{
		"CreateTable": true, "UpdateTable": true, "DeleteTable": true, "DescribeTable": true,
		"UpdateTimeToLive": true,
	}
	// ddlOps shape a table rather than its items: a snapshot recreates each
	// table by replaying its successful ones.
	ddlOps = map[string]bool{"CreateTable": true, "UpdateTable": true, "DeleteTable": true, "UpdateTimeToLive": true}
	// loggedOps may change the data, so their successes go to the write-ahead
	// log (wal.go).
	loggedOps = map[string]bool{
		"PutItem": true, "UpdateItem": true, "DeleteItem": true, "BatchWriteItem": true,
		"TransactWriteItems": true, "CreateTable": true, "DeleteTable": true, "UpdateTable": true,
		"UpdateTimeToLive": true,
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

// apply serves one request with minidyn, logs it if it changed something, and
// records what a snapshot needs. The caller holds mu (for writing if op is in
// exclusiveOps), or is the only goroutine.
func (d *DynamoDB) apply(w http.ResponseWriter, r *http.Request, op string) {
	if d.wal != nil && loggedOps[op] {
		d.applyLogged(w, r, op)
		return
	}
	d.execute(w, r, op)
}

// execute serves one request with minidyn and records the table operations that
// a snapshot needs.
func (d *DynamoDB) execute(w http.ResponseWriter, r *http.Request, op string) {
	if !ddlOps[op] {
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
	case "UpdateTimeToLive":
		if i >= 0 {
			d.tables[i].ddl = append(d.tables[i].ddl, ddlOp{Op: op, Body: body})
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
