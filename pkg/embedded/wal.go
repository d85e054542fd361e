package embedded

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/truora/minidyn/server"
)

// The write-ahead log is a sequence of segment files next to the snapshot,
// <snapshot>.wal-<number>, numbered upwards. Each holds records, one per
// request that changed something, in the order the changes were made:
//
//	length  uint32, big endian: the length of the payload
//	crc     uint32, big endian: CRC-32C of the payload
//	payload the operation name, a newline, and the request body as received
//
// A crash can leave the last record of the last segment partly written; it was
// never acknowledged (its response waits for the fsync), so it is cut off at
// start. A bad record anywhere else is damage, and refuses the start.

// walSuffix separates the snapshot's name from a segment's number.
const walSuffix = ".wal-"

// walHeader is the size of a record's framing.
const walHeader = 8

// maxWALRecord bounds a record's length, so that a damaged length is detected
// rather than allocated; no request body is longer (maxRequestBody).
const maxWALRecord = maxRequestBody + 64

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// errWALClosed is the answer to an append after close.
var errWALClosed = errors.New("write-ahead log is closed")

// wal appends records to the current segment and makes them durable in groups:
// whoever waits for a record while no fsync runs writes and fsyncs everything
// appended so far, so concurrent writers share fsyncs instead of queueing one
// each.
type wal struct {
	base string // the snapshot path; segments are base+walSuffix+number

	mu      sync.Mutex
	cond    *sync.Cond // signalled when an fsync ends
	f       *os.File   // the current segment
	seg     uint64     // the current segment's number
	size    int64      // bytes in the current segment, including buf
	buf     []byte     // appended, not yet written
	next    uint64     // sequence number of the last record appended
	durable uint64     // sequence number of the last record fsynced
	syncing bool       // an fsync runs, outside mu
	err     error      // sticky: after a failed write or fsync nothing more is accepted
}

// segmentPath is the file of segment n.
func segmentPath(base string, n uint64) string {
	return fmt.Sprintf("%s%s%08d", base, walSuffix, n)
}

// listSegments returns the numbers of the segments of base, in order.
func listSegments(base string) ([]uint64, error) {
	entries, err := os.ReadDir(dirOf(base))
	if err != nil {
		return nil, err
	}
	prefix := filepath.Base(base) + walSuffix
	var segs []uint64
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), prefix)
		if !ok {
			continue
		}
		n, err := strconv.ParseUint(rest, 10, 64)
		if err != nil {
			continue
		}
		segs = append(segs, n)
	}
	slices.Sort(segs)
	return segs, nil
}

// openWAL starts a new, empty segment numbered seg, after the segments that
// exist; a new segment for each run keeps a cut-off tail and the records of this
// run apart.
func openWAL(base string, seg uint64) (*wal, error) {
	f, err := os.OpenFile(segmentPath(base, seg), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syncDir(dirOf(base)); err != nil {
		_ = f.Close()
		return nil, err
	}
	w := &wal{base: base, f: f, seg: seg}
	w.cond = sync.NewCond(&w.mu)
	return w, nil
}

// appendRecord adds a record to the log and returns its sequence number, to be
// passed to wait. The caller orders its appends as the changes were made.
func (w *wal) appendRecord(op string, body []byte) (uint64, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return 0, w.err
	}
	n := len(op) + 1 + len(body)
	var hdr [walHeader]byte
	binary.BigEndian.PutUint32(hdr[:4], uint32(n))
	crc := crc32.Update(0, castagnoli, []byte(op))
	crc = crc32.Update(crc, castagnoli, []byte{'\n'})
	crc = crc32.Update(crc, castagnoli, body)
	binary.BigEndian.PutUint32(hdr[4:], crc)
	w.buf = append(w.buf, hdr[:]...)
	w.buf = append(w.buf, op...)
	w.buf = append(w.buf, '\n')
	w.buf = append(w.buf, body...)
	w.size += int64(walHeader + n)
	w.next++
	return w.next, nil
}

// wait returns once record seq is on disk, or the error that keeps it from
// getting there.
func (w *wal) wait(seq uint64) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	for w.durable < seq {
		if w.err != nil {
			return w.err
		}
		if w.syncing {
			w.cond.Wait()
			continue
		}
		w.flushLocked()
	}
	return nil
}

// flushLocked writes and fsyncs everything appended so far, releasing mu
// meanwhile so that appends continue into the next group. The caller holds mu
// and no fsync runs.
func (w *wal) flushLocked() {
	buf, upto, f := w.buf, w.next, w.f
	w.buf = nil
	w.syncing = true
	w.mu.Unlock()
	_, err := f.Write(buf)
	if err == nil {
		err = f.Sync()
	}
	w.mu.Lock()
	w.syncing = false
	if err != nil && w.err == nil {
		w.err = fmt.Errorf("write-ahead log %s: %w", f.Name(), err)
	}
	if err == nil {
		w.durable = upto
	}
	w.cond.Broadcast()
}

// drainLocked waits for a running fsync and then writes and fsyncs whatever is
// left. The caller holds mu.
func (w *wal) drainLocked() error {
	for w.syncing {
		w.cond.Wait()
	}
	if w.err == nil && w.durable < w.next {
		w.flushLocked()
	}
	return w.err
}

// rotate closes the current segment, with every record appended to it on disk,
// and starts the next one, unless the current one is empty. It returns the
// number of the last closed segment. The caller keeps appends out meanwhile, so
// that the boundary is one point in the order of changes.
func (w *wal) rotate() (uint64, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.drainLocked(); err != nil {
		return 0, err
	}
	if w.size == 0 {
		return w.seg - 1, nil
	}
	f, err := os.OpenFile(segmentPath(w.base, w.seg+1), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err == nil {
		err = syncDir(dirOf(w.base))
	}
	if err != nil {
		if f != nil {
			_ = f.Close()
		}
		// The current segment stays open and whole: appends go on there.
		return 0, fmt.Errorf("start write-ahead log segment: %w", err)
	}
	if err := w.f.Close(); err != nil {
		w.err = fmt.Errorf("write-ahead log %s: %w", w.f.Name(), err)
	}
	w.f, w.size = f, 0
	w.seg++
	return w.seg - 1, nil
}

// bytes returns the size of the current segment.
func (w *wal) bytes() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.size
}

// close makes everything appended durable and closes the segment; later appends
// fail.
func (w *wal) close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	err := w.drainLocked()
	if w.f != nil {
		if cerr := w.f.Close(); err == nil {
			err = cerr
		}
		w.f = nil
	}
	if w.err == nil {
		w.err = errWALClosed
	}
	if errors.Is(err, errWALClosed) {
		return nil
	}
	return err
}

// walRecord is one record read back.
type walRecord struct {
	op   string
	body []byte
}

// readSegment calls fn for each whole record of a segment, in order. A record
// that is cut short or fails its checksum ends the segment: with truncate (the
// last segment, whose tail a crash may have torn) the file is cut there and the
// number of bytes dropped returned; otherwise it is an error.
func readSegment(path string, truncate bool, fn func(walRecord) error) (dropped int64, err error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	r := bufio.NewReaderSize(f, 1<<20)
	var (
		off     int64
		hdr     [walHeader]byte
		payload []byte
	)
	for {
		bad := ""
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			if errors.Is(err, io.EOF) {
				return 0, nil
			}
			if !errors.Is(err, io.ErrUnexpectedEOF) {
				return 0, err
			}
			bad = "a record header cut short"
		}
		n := int64(binary.BigEndian.Uint32(hdr[:4]))
		// No record is shorter than an operation name and its newline; a zero
		// length is the zeros a crash can leave at the end of a file.
		if bad == "" && (n < 2 || n > maxWALRecord || off+walHeader+n > st.Size()) {
			bad = "a record cut short"
		}
		if bad == "" {
			payload = slices.Grow(payload[:0], int(n))[:n]
			if _, err := io.ReadFull(r, payload); err != nil {
				return 0, err
			}
			if crc32.Checksum(payload, castagnoli) != binary.BigEndian.Uint32(hdr[4:]) {
				bad = "a record failing its checksum"
			}
		}
		if bad != "" {
			if !truncate {
				return 0, fmt.Errorf("%s: %s at offset %d", path, bad, off)
			}
			if err := f.Truncate(off); err != nil {
				return 0, err
			}
			if err := f.Sync(); err != nil {
				return 0, err
			}
			return st.Size() - off, nil
		}
		op, body, ok := bytes.Cut(payload, []byte{'\n'})
		if !ok {
			return 0, fmt.Errorf("%s: a record without an operation at offset %d", path, off)
		}
		if err := fn(walRecord{op: string(op), body: body}); err != nil {
			return 0, err
		}
		off += walHeader + n
	}
}

// load restores the snapshot, with garbage collection off (see pauseGC), and
// replays the log segments it does not hold (deleting those it does). It
// returns the last segment seen and the bytes replayed.
func (d *DynamoDB) load(ctx context.Context) (last uint64, replayed int64, err error) {
	resume := pauseGC()
	through, err := d.restore(ctx, d.path)
	resume()
	if err != nil {
		return 0, 0, err
	}
	segs, err := listSegments(d.path)
	if err != nil {
		return 0, 0, err
	}
	last = through
	// Replay in bulk mode: each write keeps only the items up to date, and
	// the sorted keys, indexes and expiry order are built once at the end,
	// so replaying a log costs the same per write whatever the table holds.
	if err := d.client.SetBulk(true); err != nil {
		return 0, 0, err
	}
	for i, n := range segs {
		last = max(last, n)
		if n <= through {
			// Held by the snapshot; a crash came between writing it and this.
			if err := os.Remove(segmentPath(d.path, n)); err != nil {
				return 0, 0, err
			}
			continue
		}
		size, err := d.replaySegment(ctx, segmentPath(d.path, n), i == len(segs)-1)
		if err != nil {
			return 0, 0, err
		}
		replayed += size
	}
	if err := d.client.SetBulk(false); err != nil {
		return 0, 0, fmt.Errorf("index replayed items: %w", err)
	}
	return last, replayed, nil
}

// recover loads the snapshot, replays the log segments it does not hold and
// deletes those it does, and opens a new segment for this run. A compaction
// starts in the background if the replayed log is already past its threshold.
func (d *DynamoDB) recover(ctx context.Context, compactAfter int64) error {
	last, replayed, err := d.load(ctx)
	if err != nil {
		return err
	}
	if _, err := os.Stat(d.path); errors.Is(err, os.ErrNotExist) {
		// An empty snapshot, holding no segment, so that the data's place is
		// visible from the first start.
		if err := writeFileAtomic(d.path, func(w *bufio.Writer) error {
			return json.NewEncoder(w).Encode(snapshotHeader{Format: snapshotFormatV2, TakenAt: time.Now().UTC()})
		}); err != nil {
			return fmt.Errorf("write empty snapshot: %w", err)
		}
	}
	d.wal, err = openWAL(d.path, last+1)
	if err != nil {
		return fmt.Errorf("open write-ahead log: %w", err)
	}
	d.closedBytes.Store(replayed)
	d.compactFixed = compactAfter
	d.setCompactAfter()
	d.maybeCompact()
	return nil
}

// replaySegment applies the records of a segment in order, and returns the
// segment's size. Replay runs the same requests through the same engine on the
// same state, so each has the outcome it had; one that does not (the data was
// changed behind the log's back, see Server) is reported and skipped.
func (d *DynamoDB) replaySegment(ctx context.Context, path string, last bool) (int64, error) {
	diverged := 0
	dropped, err := readSegment(path, last, func(rec walRecord) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		code, answer := d.exec(rec.op, rec.body)
		// A failed BatchWriteItem is logged because it may have applied part of
		// itself; it fails again here.
		if code != http.StatusOK && rec.op != "BatchWriteItem" {
			diverged++
			if diverged <= 10 {
				d.log.Warn("embedded dynamodb: a logged change failed on replay", "op", rec.op, "status", code, "answer", string(answer))
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("replay write-ahead log: %w", err)
	}
	if dropped > 0 {
		d.log.Warn("embedded dynamodb: cut off the torn end of the write-ahead log; that write was never acknowledged",
			"path", path, "bytes", dropped)
	}
	if diverged > 0 {
		d.log.Warn("embedded dynamodb: logged changes failed on replay", "path", path, "count", diverged)
	}
	st, err := os.Stat(path)
	if err != nil {
		return 0, err
	}
	return st.Size(), nil
}

// exec serves one request body to the engine, as call does, and returns the
// answer's status and body.
func (d *DynamoDB) exec(op string, body []byte) (int, []byte) {
	req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
	req.Header.Set("X-Amz-Target", targetPrefix+op)
	req.Header.Set("Content-Type", "application/x-amz-json-1.0")
	rec := httptest.NewRecorder()
	d.apply(rec, req, op)
	return rec.Code, rec.Body.Bytes()
}

// applyLogged serves a request that may change the data: the change and the
// append of its record happen under commitMu, so that the log holds the changes
// in the order they were made, and the answer waits until the record is on disk,
// so that an acknowledged change survives a crash. A read may see a change whose
// answer is still waiting for the disk; if the process dies then, that change is
// lost, but it was never acknowledged.
func (d *DynamoDB) applyLogged(w http.ResponseWriter, r *http.Request, op string) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRequestBody))
	if err != nil {
		writeDynamoError(w, http.StatusRequestEntityTooLarge, errorTypePrefix+"ValidationException", msgRequestBodyTooBig)
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	rec := httptest.NewRecorder()

	d.commitMu.Lock()
	if err := d.wal.failed(); err != nil {
		d.commitMu.Unlock()
		// Changes that are not logged would be lost, and would make the log
		// replay differently: none is made until a restart.
		d.log.Error("embedded dynamodb: refusing a change, the write-ahead log failed", "op", op, "err", err)
		writeDynamoError(w, http.StatusInternalServerError, errorTypePrefix+"InternalServerError", msgInternalError)
		return
	}
	d.execute(rec, r, op)
	logged, keep := d.logBody(op, body, rec)
	var seq uint64
	if keep {
		seq, err = d.wal.appendRecord(op, logged)
	}
	d.commitMu.Unlock()

	if keep && err == nil {
		err = d.wal.wait(seq)
	}
	if err != nil {
		d.log.Error("embedded dynamodb: a change could not be logged; it is not acknowledged", "op", op, "err", err)
		writeDynamoError(w, http.StatusInternalServerError, errorTypePrefix+"InternalServerError", msgInternalError)
		return
	}
	writeRecorded(w, rec)
	if keep {
		d.maybeCompact()
	}
}

// failed returns the error that stopped the log, if any.
func (w *wal) failed() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// logBody returns what to log of a request that minidyn answered, and whether to
// log anything. A request that failed changed nothing (minidyn checks a request
// and its conditions before it changes anything, and cancels a transaction
// whole), except a BatchWriteItem refused as invalid part way through (a 4xx
// answer: its first writes stay), which is logged whole and fails again at the
// same point on replay. An emulated failure (5xx) changes nothing. A
// BatchWriteItem that left items unprocessed is logged without them.
func (d *DynamoDB) logBody(op string, body []byte, rec *httptest.ResponseRecorder) ([]byte, bool) {
	switch {
	case rec.Code == http.StatusOK && op == "BatchWriteItem":
		return d.withoutUnprocessed(body, rec.Body.Bytes())
	case rec.Code == http.StatusOK:
		return body, true
	case op == "BatchWriteItem" && rec.Code >= 400 && rec.Code < 500:
		return body, true
	default:
		return nil, false
	}
}

// withoutUnprocessed returns a BatchWriteItem body without the requests its
// answer left unprocessed (matched by primary key), and whether anything is left.
func (d *DynamoDB) withoutUnprocessed(body, answer []byte) ([]byte, bool) {
	if !bytes.Contains(answer, []byte(`"UnprocessedItems"`)) {
		return body, true
	}
	var out struct {
		UnprocessedItems map[string][]server.WriteRequest
	}
	if json.Unmarshal(answer, &out) != nil || len(out.UnprocessedItems) == 0 {
		return body, true
	}
	var in map[string]json.RawMessage
	var items map[string][]json.RawMessage
	if json.Unmarshal(body, &in) != nil || json.Unmarshal(in["RequestItems"], &items) != nil {
		return body, true
	}
	for table, left := range out.UnprocessedItems {
		reqs := items[table]
		keyOf := func(wr server.WriteRequest) map[string]*server.AttributeValue {
			var it map[string]*server.AttributeValue
			switch {
			case wr.PutRequest != nil:
				it = wr.PutRequest.Item
			case wr.DeleteRequest != nil:
				it = wr.DeleteRequest.Key
			}
			schema := d.schemaOf(table)
			if schema == nil {
				return it
			}
			k := map[string]*server.AttributeValue{}
			for _, name := range []string{schema.key.hash, schema.key.rng} {
				if name != "" {
					k[name] = it[name]
				}
			}
			return k
		}
		for _, u := range left {
			uk := keyOf(u)
			for i, raw := range reqs {
				var wr server.WriteRequest
				if json.Unmarshal(raw, &wr) == nil && reflect.DeepEqual(keyOf(wr), uk) {
					reqs = append(reqs[:i:i], reqs[i+1:]...)
					break
				}
			}
		}
		if len(reqs) == 0 {
			delete(items, table)
		} else {
			items[table] = reqs
		}
	}
	if len(items) == 0 {
		return nil, false
	}
	b, err := json.Marshal(items)
	if err != nil {
		return body, true
	}
	in["RequestItems"] = b
	if b, err = json.Marshal(in); err != nil {
		return body, true
	}
	return b, true
}

// maybeCompact starts a background compaction when the log has grown past its
// threshold and none runs. The caller holds mu for reading (or is starting the
// server), so Close cannot be waiting for the compactions yet.
func (d *DynamoDB) maybeCompact() {
	if d.wal.bytes()+d.closedBytes.Load() < d.compactAfter.Load() {
		return
	}
	if !d.compacting.CompareAndSwap(false, true) {
		return
	}
	d.bg.Go(func() {
		defer d.compacting.Store(false)
		if err := d.compact(d.bgCtx); err != nil && d.bgCtx.Err() == nil {
			// Try again once the log has grown as much again, rather than on
			// every write.
			d.compactAfter.Store(d.wal.bytes() + d.closedBytes.Load() + d.compactAfter.Load())
			d.log.Warn("background dynamodb compaction failed; the log keeps every change meanwhile", "path", d.path, "err", err)
		}
	})
}

// compact folds the log into a new snapshot without pausing the live server: it
// closes the current segment (writes wait for one fsync meanwhile), rebuilds the
// data as of that point in a private engine from the previous snapshot and the
// closed segments, writes the snapshot atomically, and deletes those segments.
// The live server's memory is not read at all, so requests go on as usual; the
// cost is a second copy of the data in memory while the rebuild runs.
func (d *DynamoDB) compact(ctx context.Context) error {
	d.snapMu.Lock()
	defer d.snapMu.Unlock()

	d.commitMu.Lock()
	size := d.wal.bytes()
	through, err := d.wal.rotate()
	d.commitMu.Unlock()
	if err != nil {
		return err
	}
	closed := d.closedBytes.Add(size)

	e, err := newEngine(d.log, d.now)
	if err != nil {
		return err
	}
	prev, err := e.restore(ctx, d.path)
	if err != nil {
		return fmt.Errorf("read snapshot: %w", err)
	}
	segs, err := listSegments(d.path)
	if err != nil {
		return err
	}
	if err := e.client.SetBulk(true); err != nil { // as in recover
		return err
	}
	for _, n := range segs {
		if n <= prev || n > through {
			continue
		}
		// Every segment up to through is closed and whole.
		if _, err := e.replaySegment(ctx, segmentPath(d.path, n), false); err != nil {
			return err
		}
	}
	if err := e.client.SetBulk(false); err != nil {
		return fmt.Errorf("index replayed items: %w", err)
	}
	if err := writeFileAtomic(d.path, func(w *bufio.Writer) error {
		return e.writeSnapshot(ctx, w, through)
	}); err != nil {
		return err
	}
	for _, n := range segs {
		if n <= through {
			if err := os.Remove(segmentPath(d.path, n)); err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
		}
	}
	d.closedBytes.Add(-closed)
	d.setCompactAfter()
	return nil
}

// setCompactAfter sets the log size that starts a compaction: the one chosen in
// the options, or the larger of minCompactAfter and the snapshot's size divided
// by compactFraction.
func (d *DynamoDB) setCompactAfter() {
	if d.compactFixed > 0 {
		d.compactAfter.Store(d.compactFixed)
		return
	}
	n := int64(minCompactAfter)
	if st, err := os.Stat(d.path); err == nil {
		n = max(n, st.Size()/compactFraction)
	}
	d.compactAfter.Store(n)
}
