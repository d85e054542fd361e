package core

import (
	"errors"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/truora/minidyn/types"
)

// LoadItems stores items as a series of unconditional puts would, in the order
// given, but builds the sorted keys, the index entries and the expiry order once
// at the end instead of inserting into sorted slices item by item: loading n
// items costs O(n log n) rather than O(n²) memory moves. The items are kept, not
// copied. An invalid item stops the load with the error Put returns for it;
// the items before it are stored. It is meant for filling a table, not for
// adding a few items. It is NewLoader, Prepare on each item and Load, on one
// goroutine.
func (t *Table) LoadItems(items []map[string]*types.Item) error {
	l := t.NewLoader()
	entries := make([]LoadEntry, 0, len(items))

	var loadErr error

	for _, item := range items {
		e, err := l.Prepare(item)
		if err != nil {
			loadErr = err
			break
		}

		entries = append(entries, e)
	}

	if err := l.Load(entries); err != nil && loadErr == nil {
		loadErr = err
	}

	return loadErr
}

// A Loader fills a table in two steps: Prepare validates an item and computes
// everything the table derives from it (its key, its key in each index, its
// expiry time), and Load stores the prepared items and sorts what they derive
// once. Prepare reads only the Loader, not the table, so it may be called from
// many goroutines at once, each on items it has just decoded (while they are
// still in its cache); Load is called once, alone.
type Loader struct {
	t       *Table
	attrs   map[string]string
	key     keySchema
	indexes []*index    // in the order of LoadEntry.indexKeys
	schemas []keySchema // the key schema of each of indexes
	ttlAttr string      // "" when time to live is disabled
}

// LoadEntry is an item prepared for Loader.Load.
type LoadEntry struct {
	item      map[string]*types.Item
	key       string
	indexKeys []string // one per Loader.indexes; "" when not in that index
	at        float64
	expires   bool
}

// NewLoader returns a Loader for the table as it is now; the table's key
// schema, indexes and time to live must not change until Load returns.
func (t *Table) NewLoader() *Loader {
	l := &Loader{t: t, attrs: make(map[string]string, len(t.AttributesDef)), key: t.KeySchema}
	for k, v := range t.AttributesDef {
		l.attrs[k] = v
	}

	for _, idx := range t.Indexes {
		l.indexes = append(l.indexes, idx)
		l.schemas = append(l.schemas, idx.keySchema)
	}

	if t.ttl != nil {
		l.ttlAttr = t.ttl.attr
	}

	return l
}

// Prepare validates item as Put does and computes its keys and expiry time.
func (l *Loader) Prepare(item map[string]*types.Item) (LoadEntry, error) {
	if err := types.ValidateItemMap(item); err != nil {
		return LoadEntry{}, types.NewError("ValidationException", err.Error(), nil)
	}

	key, err := l.key.GetKey(l.attrs, item)
	if err != nil {
		return LoadEntry{}, types.NewError("ValidationException", err.Error(), nil)
	}

	e := LoadEntry{item: item, key: key}

	if len(l.schemas) > 0 {
		e.indexKeys = make([]string, len(l.schemas))

		for i, ks := range l.schemas {
			ik, err := ks.GetKey(l.attrs, item)
			if err != nil {
				return LoadEntry{}, types.NewError("ValidationException", err.Error(), nil)
			}

			e.indexKeys[i] = ik
		}
	}

	if l.ttlAttr != "" {
		e.at, e.expires = expiryOf(item, l.ttlAttr)
	}

	return e, nil
}

// Load stores the prepared items in their order, a later one replacing an
// earlier one with the same key, and builds the table's sorted keys, indexes
// and expiry order from them, each with one sort, at the same time.
func (l *Loader) Load(entries []LoadEntry) error {
	t := l.t
	if len(t.Indexes) != len(l.indexes) || (t.ttl == nil) != (l.ttlAttr == "") {
		return types.NewError("ValidationException", "the table changed while it was being loaded", nil)
	}

	wasEmpty := len(t.Data) == 0
	if wasEmpty {
		t.Data = make(map[string]map[string]*types.Item, len(entries))
	}

	for _, e := range entries {
		t.Data[e.key] = e.item
	}

	if !wasEmpty {
		// Items already there must be indexed too: index the whole table.
		if err := t.rebuild(); err != nil {
			return types.NewError("ValidationException", err.Error(), nil)
		}

		return nil
	}

	if len(t.Data) != len(entries) {
		entries = lastOfEachKey(entries)
	}

	var wg sync.WaitGroup

	wg.Go(func() {
		keys := make([]string, len(entries))
		for i, e := range entries {
			keys[i] = e.key
		}

		slices.Sort(keys)
		t.SortedKeys = keys
	})

	for n, idx := range l.indexes {
		wg.Go(func() { idx.load(entries, n) })
	}

	if t.ttl != nil {
		wg.Go(func() { t.ttl.load(entries) })
	}

	wg.Wait()

	return nil
}

// lastOfEachKey keeps, of the entries that share a key, the last one.
func lastOfEachKey(entries []LoadEntry) []LoadEntry {
	last := make(map[string]int, len(entries))
	for i, e := range entries {
		last[e.key] = i
	}

	kept := make([]LoadEntry, 0, len(last))

	for i, e := range entries {
		if last[e.key] == i {
			kept = append(kept, e)
		}
	}

	return kept
}

// load indexes the prepared entries, whose keys in this index are their
// indexKeys[n].
func (i *index) load(entries []LoadEntry, n int) {
	ies := make([]indexEntry, 0, len(entries))
	refs := make(map[string]string, len(entries))

	for _, e := range entries {
		ik := e.indexKeys[n]
		if ik == "" {
			continue
		}

		refs[e.key] = ik
		ies = append(ies, indexEntry{ik: ik, pk: e.key})
	}

	sortIndexEntries(ies)
	i.entries = slices.Clip(ies)
	i.refs = refs
}

// load records the expiry time of every prepared entry that has one.
func (x *ttlIndex) load(entries []LoadEntry) {
	x.entries = x.entries[:0]
	x.at = make(map[string]float64, len(entries))

	for _, e := range entries {
		if e.expires {
			x.at[e.key] = e.at
			x.entries = append(x.entries, expiryEntry{at: e.at, key: e.key})
		}
	}

	sortExpiryEntries(x.entries)
}

// expiryOf reads the time to live attribute attr of item: a number of seconds
// since the epoch, or nothing.
func expiryOf(item map[string]*types.Item, attr string) (float64, bool) {
	v, ok := item[attr]
	if !ok || v == nil || v.N == nil {
		return 0, false
	}

	at, err := strconv.ParseFloat(*v.N, 64)
	if err != nil || math.IsNaN(at) {
		return 0, false
	}

	return at, true
}

// SetBulk turns bulk mode on or off. In bulk mode writes (Put, Update, Delete,
// and their undo in a transaction) keep only Data up to date and are validated
// as usual; the sorted keys, the index entries and the expiry order are left
// alone, and a Query or a Scan is refused. Turning it off builds them once from
// Data, with one sort each. It is for replaying a log of writes of any length
// in time that does not depend on the table's size per write.
func (t *Table) SetBulk(on bool) error {
	if on == t.bulk {
		return nil
	}

	t.bulk = on
	if on {
		return nil
	}

	if err := t.rebuild(); err != nil {
		return types.NewError("ValidationException", err.Error(), nil)
	}

	return nil
}

// rebuild recomputes the sorted keys, every index and the expiry order from
// t.Data. Each only reads t.Data, so they are built at the same time.
func (t *Table) rebuild() error {
	var (
		wg   sync.WaitGroup
		errs = make([]error, len(t.Indexes))
		n    = 0
	)

	wg.Go(func() {
		keys := make([]string, 0, len(t.Data))
		for k := range t.Data {
			keys = append(keys, k)
		}

		slices.Sort(keys)
		t.SortedKeys = keys
	})

	for _, idx := range t.Indexes {
		at := n
		n++

		wg.Go(func() { errs[at] = idx.rebuild() })
	}

	if t.ttl != nil {
		wg.Go(func() { t.ttl.rebuild(t.Data) })
	}

	wg.Wait()

	return errors.Join(errs...)
}

// rebuild indexes the table's items.
func (i *index) rebuild() error {
	data := i.Table.Data
	entries := make([]indexEntry, 0, len(data))
	refs := make(map[string]string, len(data))

	for k, item := range data {
		ik, err := i.keySchema.GetKey(i.Table.AttributesDef, item)
		if err != nil {
			return err
		}

		if ik == "" {
			continue
		}

		refs[k] = ik
		entries = append(entries, indexEntry{ik: ik, pk: k})
	}

	sortIndexEntries(entries)
	i.entries = slices.Clip(entries)
	i.refs = refs

	return nil
}

// rebuild records the expiry time of every item that has one.
func (x *ttlIndex) rebuild(data map[string]map[string]*types.Item) {
	x.entries = x.entries[:0]
	x.at = make(map[string]float64, len(data))

	for k, item := range data {
		if at, ok := expiryOf(item, x.attr); ok {
			x.at[k] = at
			x.entries = append(x.entries, expiryEntry{at: at, key: k})
		}
	}

	sortExpiryEntries(x.entries)
}

// sortIndexEntries orders index entries by index key, then primary key.
func sortIndexEntries(entries []indexEntry) {
	slices.SortFunc(entries, func(a, b indexEntry) int {
		if c := strings.Compare(a.ik, b.ik); c != 0 {
			return c
		}

		return strings.Compare(a.pk, b.pk)
	})
}

// sortExpiryEntries orders expiry entries by time, then primary key.
func sortExpiryEntries(entries []expiryEntry) {
	slices.SortFunc(entries, func(a, b expiryEntry) int {
		switch {
		case a.at < b.at:
			return -1
		case a.at > b.at:
			return 1
		default:
			return strings.Compare(a.key, b.key)
		}
	})
}
