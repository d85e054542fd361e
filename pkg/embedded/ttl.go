package embedded

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/truora/minidyn/server"
)

// This file deletes the items whose TTL attribute is in the past, as DynamoDB
// does (within days there, within TTLSweepEvery here, so that leases and
// idempotency keys do not pile up locally). minidyn keeps each table's items
// ordered by expiry and lists the expired keys; the deletions are DeleteItem
// requests served by apply, so that the write-ahead log holds them in their
// place among the other changes: a later write that depends on the item being
// gone (attribute_not_exists) then replays as it ran.

const (
	// defaultTTLSweepEvery keeps an expired item at most about this long.
	defaultTTLSweepEvery = 15 * time.Second
	// ttlSweepBatch is how many expired keys are listed at a time, so that one
	// listing holds minidyn's lock briefly however many items expired.
	ttlSweepBatch = 1000
	// ttlSweepWorkers is how many deletions are in flight at once: each waits for
	// its log record to reach the disk, and concurrent ones share an fsync.
	ttlSweepWorkers = 16
)

// errServerClosed stops a sweep when the server closes.
var errServerClosed = errors.New("the embedded DynamoDB server is closed")

// startTTLSweeper runs SweepTTL every interval until Close (see
// DynamoDBOptions.TTLSweepEvery).
func (d *DynamoDB) startTTLSweeper(every time.Duration) {
	if every < 0 {
		return
	}
	if every == 0 {
		every = defaultTTLSweepEvery
	}
	d.bg.Add(1)
	go func() {
		defer d.bg.Done()
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-d.bgCtx.Done():
				return
			case <-tick.C:
			}
			if n, err := d.SweepTTL(d.bgCtx); err != nil && d.bgCtx.Err() == nil && !errors.Is(err, errServerClosed) {
				d.log.Warn("embedded dynamodb: deleting expired items failed", "deleted", n, "err", err)
			}
		}
	}()
}

// SweepTTL deletes now, in every table whose TTL is enabled, the items whose TTL
// attribute is a number of unix seconds before the clock's current second
// (DynamoDBOptions.Now), and returns how many it deleted. Each deletion is a
// DeleteItem logged like a client's, conditioned on the attribute still being in
// the past, so that an item rewritten meanwhile with a later expiry stays.
// Requests are served meanwhile.
func (d *DynamoDB) SweepTTL(ctx context.Context) (int, error) {
	now := d.now().Unix()
	d.catalog.ttlMu.Lock()
	tables := make([]string, 0, len(d.catalog.ttl))
	for t := range d.catalog.ttl {
		tables = append(tables, t)
	}
	d.catalog.ttlMu.Unlock()
	slices.Sort(tables)

	total := 0
	for _, table := range tables {
		n, err := d.sweepTable(ctx, table, now)
		total += n
		if err != nil {
			return total, fmt.Errorf("delete expired items of table %s: %w", table, err)
		}
	}
	return total, nil
}

// sweepTable deletes the expired items of one table, a batch at a time.
func (d *DynamoDB) sweepTable(ctx context.Context, table string, now int64) (int, error) {
	total := 0
	for {
		if err := ctx.Err(); err != nil {
			return total, err
		}
		attr, ok := d.TTLAttribute(table)
		if !ok {
			return total, nil
		}
		keys, err := d.expiredKeys(table, now)
		var notFound *ddbtypes.ResourceNotFoundException
		if errors.As(err, &notFound) {
			return total, nil // deleted meanwhile
		}
		if err != nil {
			return total, err
		}
		n, err := d.deleteExpired(ctx, table, attr, now, keys)
		total += n
		// A short batch was the last; a batch of which nothing could be deleted
		// would be listed again.
		if err != nil || len(keys) < ttlSweepBatch || n == 0 {
			return total, err
		}
	}
}

// expiredKeys lists a batch of expired keys under mu, because minidyn reads its
// table map without its lock only while no table operation runs.
func (d *DynamoDB) expiredKeys(table string, now int64) ([]map[string]*server.AttributeValue, error) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.closed {
		return nil, errServerClosed
	}
	return d.inner.ExpiredKeys(table, time.Unix(now, 0), ttlSweepBatch)
}

// deleteExpired deletes the listed keys, a few at a time, and returns how many
// items it deleted. An item whose condition fails was rewritten or deleted
// meanwhile, and is not counted.
func (d *DynamoDB) deleteExpired(ctx context.Context, table, attr string, now int64, keys []map[string]*server.AttributeValue) (int, error) {
	var (
		next    atomic.Int64
		deleted atomic.Int64
		errOnce sync.Once
		firstEr error
		wg      sync.WaitGroup
	)
	for range min(ttlSweepWorkers, len(keys)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= len(keys) || ctx.Err() != nil {
					return
				}
				ok, err := d.deleteIfExpired(table, attr, now, keys[i])
				if err != nil {
					errOnce.Do(func() { firstEr = err })
					next.Store(int64(len(keys))) // stop the others
					return
				}
				if ok {
					deleted.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if firstEr == nil {
		firstEr = ctx.Err()
	}
	return int(deleted.Load()), firstEr
}

// deleteIfExpired sends one conditioned DeleteItem through apply under mu, as a
// request from the network is served, and reports whether it deleted the item.
func (d *DynamoDB) deleteIfExpired(table, attr string, now int64, key map[string]*server.AttributeValue) (bool, error) {
	body, err := json.Marshal(map[string]any{
		"TableName":                 table,
		"Key":                       exactItem(key),
		"ConditionExpression":       "#ttl < :now",
		"ExpressionAttributeNames":  map[string]string{"#ttl": attr},
		"ExpressionAttributeValues": map[string]any{":now": map[string]string{"N": strconv.FormatInt(now, 10)}},
	})
	if err != nil {
		return false, err
	}
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.closed {
		return false, errServerClosed
	}
	code, answer := d.exec("DeleteItem", body)
	if code == http.StatusOK {
		return true, nil
	}
	var e struct {
		Type string `json:"__type"`
	}
	if json.Unmarshal(answer, &e) == nil && strings.HasSuffix(e.Type, "ConditionalCheckFailedException") {
		return false, nil
	}
	return false, fmt.Errorf("DeleteItem answered %d: %s", code, answer)
}
