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
// the items before it are stored. It rebuilds the derived state of the whole
// table, so it is meant for filling a table, not for adding a few items.
func (t *Table) LoadItems(items []map[string]*types.Item) error {
	var loadErr error

	if len(t.Data) == 0 {
		t.Data = make(map[string]map[string]*types.Item, len(items))
	}

	for _, item := range items {
		if err := types.ValidateItemMap(item); err != nil {
			loadErr = types.NewError("ValidationException", err.Error(), nil)
			break
		}

		key, err := t.KeySchema.GetKey(t.AttributesDef, item)
		if err != nil {
			loadErr = types.NewError("ValidationException", err.Error(), nil)
			break
		}

		t.Data[key] = item
	}

	if err := t.rebuild(); err != nil && loadErr == nil {
		loadErr = types.NewError("ValidationException", err.Error(), nil)
	}

	return loadErr
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

	slices.SortFunc(entries, func(a, b indexEntry) int {
		if c := strings.Compare(a.ik, b.ik); c != 0 {
			return c
		}

		return strings.Compare(a.pk, b.pk)
	})

	i.entries = slices.Clip(entries)
	i.refs = refs

	return nil
}

// rebuild records the expiry time of every item that has one.
func (x *ttlIndex) rebuild(data map[string]map[string]*types.Item) {
	x.entries = x.entries[:0]
	x.at = make(map[string]float64, len(data))

	for k, item := range data {
		v, ok := item[x.attr]
		if !ok || v == nil || v.N == nil {
			continue
		}

		at, err := strconv.ParseFloat(*v.N, 64)
		if err != nil || math.IsNaN(at) {
			continue
		}

		x.at[k] = at
		x.entries = append(x.entries, expiryEntry{at: at, key: k})
	}

	slices.SortFunc(x.entries, func(a, b expiryEntry) int {
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
