package core

import (
	"math"
	"sort"
	"strconv"
	"time"

	"github.com/truora/minidyn/types"
)

// expiryEntry is one item that has a time to live: when it expires (unix
// seconds) and its primary key.
type expiryEntry struct {
	at  float64
	key string
}

// ttlIndex orders the items whose TTL attribute holds a number by their
// expiry time, so that expired items are found without reading the others.
type ttlIndex struct {
	attr    string
	entries []expiryEntry      // sorted by (at, key)
	at      map[string]float64 // primary key -> expiry time of each entry
}

func (x *ttlIndex) search(at float64, key string) int {
	return sort.Search(len(x.entries), func(n int) bool {
		e := x.entries[n]
		return e.at > at || (e.at == at && e.key >= key)
	})
}

func (x *ttlIndex) remove(key string) {
	at, ok := x.at[key]
	if !ok {
		return
	}

	delete(x.at, key)

	pos := x.search(at, key)
	if pos < len(x.entries) && x.entries[pos].key == key {
		x.entries = append(x.entries[:pos], x.entries[pos+1:]...)
	}
}

// put records the item's expiry time, replacing its previous one. As in
// DynamoDB, an item whose attribute is missing or not a number never expires.
func (x *ttlIndex) put(key string, item map[string]*types.Item) {
	x.remove(key)

	v, ok := item[x.attr]
	if !ok || v == nil || v.N == nil {
		return
	}

	at, err := strconv.ParseFloat(*v.N, 64)
	if err != nil || math.IsNaN(at) {
		return
	}

	x.at[key] = at
	pos := x.search(at, key)
	x.entries = append(x.entries, expiryEntry{})
	copy(x.entries[pos+1:], x.entries[pos:])
	x.entries[pos] = expiryEntry{at: at, key: key}
}

func (x *ttlIndex) clone() *ttlIndex {
	if x == nil {
		return nil
	}

	c := &ttlIndex{attr: x.attr, entries: make([]expiryEntry, len(x.entries)), at: make(map[string]float64, len(x.at))}
	copy(c.entries, x.entries)

	for k, v := range x.at {
		c.at[k] = v
	}

	return c
}

// TTLAttribute returns the name of the attribute that holds the items'
// expiry time, or "" when time to live is disabled.
func (t *Table) TTLAttribute() string {
	if t.ttl == nil {
		return ""
	}

	return t.ttl.attr
}

// SetTTLAttribute enables time to live on the named attribute (a number of
// unix seconds), or disables it when attr is "". Enabling reads every item
// once; afterwards each write keeps the expiry order up to date.
func (t *Table) SetTTLAttribute(attr string) {
	if attr == "" {
		t.ttl = nil
		return
	}

	if t.ttl != nil && t.ttl.attr == attr {
		return
	}

	t.ttl = &ttlIndex{attr: attr, at: map[string]float64{}}

	if t.bulk {
		return
	}

	for key, item := range t.Data {
		t.ttl.put(key, item)
	}
}

// ExpiredKeys returns the primary keys of the items whose expiry time is
// before now, earliest first, at most max of them (all when max <= 0). It
// deletes nothing: the caller deletes them through requests of its own, which
// can be logged and conditioned. Its cost is that of the keys returned, not of
// the table.
func (t *Table) ExpiredKeys(now time.Time, max int) []map[string]*types.Item {
	if t.ttl == nil || t.bulk {
		return nil
	}

	cutoff := float64(now.UnixNano()) / float64(time.Second)

	var keys []map[string]*types.Item

	for _, e := range t.ttl.entries {
		if e.at >= cutoff || (max > 0 && len(keys) == max) {
			break
		}

		item, ok := t.Data[e.key]
		if !ok {
			continue
		}

		keys = append(keys, t.primaryKey(item))
	}

	return keys
}

// primaryKey returns copies of an item's key attributes.
func (t *Table) primaryKey(item map[string]*types.Item) map[string]*types.Item {
	key := make(map[string]*types.Item, 2)

	for _, name := range []string{t.KeySchema.HashKey, t.KeySchema.RangeKey} {
		if v, ok := item[name]; ok && name != "" && v != nil {
			c := *v
			key[name] = &c
		}
	}

	return key
}

// removeItem deletes a stored item with its index and expiry entries.
func (t *Table) removeItem(key string) {
	item, ok := t.Data[key]
	if t.bulk {
		delete(t.Data, key)
		return
	}

	if ok {
		for _, idx := range t.Indexes {
			_ = idx.delete(key, item)
		}

		delete(t.Data, key)
		t.SortedKeys = removeKey(t.SortedKeys, key)
	}

	if t.ttl != nil {
		t.ttl.remove(key)
	}
}
