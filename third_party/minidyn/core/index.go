package core

import (
	"maps"
	"sort"
	"time"

	"github.com/truora/minidyn/types"
)

type indexType string

const (
	indexTypeGlobal indexType = "global"
	indexTypeLocal  indexType = "local"
)

// indexEntry is one item in a secondary index: its index key and its primary key.
type indexEntry struct {
	ik string
	pk string
}

type index struct {
	keySchema keySchema
	// entries are the indexed items ordered by (index key, primary key), kept
	// sorted on every write so that a query can seek instead of sorting.
	entries    []indexEntry
	typ        indexType
	projection *types.Projection
	Table      *Table
	refs       map[string]string // primary key -> index key of each indexed item
	createdAt  time.Time
}

func newIndex(t *Table, typ indexType, ks keySchema) *index {
	ks.Secondary = true

	return &index{
		keySchema: ks,
		typ:       typ,
		Table:     t,
		refs:      map[string]string{},
	}
}

func (i *index) Clear() {
	i.entries = nil
	i.refs = map[string]string{}
}

type indexSnapshot struct {
	entries []indexEntry
	refs    map[string]string
}

func (i *index) snapshot() indexSnapshot {
	entries := make([]indexEntry, len(i.entries))
	copy(entries, i.entries)

	refs := make(map[string]string, len(i.refs))
	maps.Copy(refs, i.refs)

	return indexSnapshot{entries: entries, refs: refs}
}

func (i *index) restore(s indexSnapshot) {
	i.entries = s.entries
	i.refs = s.refs
}

// search returns the position of the first entry not before (ik, pk).
func (i *index) search(ik, pk string) int {
	return sort.Search(len(i.entries), func(n int) bool {
		e := i.entries[n]
		return e.ik > ik || (e.ik == ik && e.pk >= pk)
	})
}

func (i *index) insertEntry(ik, pk string) {
	pos := i.search(ik, pk)
	if pos < len(i.entries) && i.entries[pos] == (indexEntry{ik, pk}) {
		return
	}

	i.entries = append(i.entries, indexEntry{})
	copy(i.entries[pos+1:], i.entries[pos:])
	i.entries[pos] = indexEntry{ik, pk}
}

func (i *index) removeEntry(ik, pk string) {
	pos := i.search(ik, pk)
	if pos == len(i.entries) || i.entries[pos] != (indexEntry{ik, pk}) {
		return
	}

	copy(i.entries[pos:], i.entries[pos+1:])
	i.entries[len(i.entries)-1] = indexEntry{}
	i.entries = i.entries[:len(i.entries)-1]
}

// ProjectItem returns the attributes visible through this index's projection (ALL, KEYS_ONLY, INCLUDE).
// For ALL or unknown types, it returns a full shallow copy of the item.
func (i *index) ProjectItem(item map[string]*types.Item) map[string]*types.Item {
	if i == nil || i.projection == nil {
		return copyItem(item)
	}

	pt := ""
	if i.projection.ProjectionType != nil {
		pt = *i.projection.ProjectionType
	}

	switch pt {
	case "", "ALL":
		return copyItem(item)
	case "KEYS_ONLY":
		return i.projectKeysOnly(item)
	case "INCLUDE":
		return i.projectInclude(item)
	default:
		return copyItem(item)
	}
}

func (i *index) projectKeysOnly(item map[string]*types.Item) map[string]*types.Item {
	out := make(map[string]*types.Item)
	maps.Copy(out, i.Table.KeySchema.getKeyItem(item))
	maps.Copy(out, i.keySchema.getKeyItem(item))

	return out
}

func (i *index) projectInclude(item map[string]*types.Item) map[string]*types.Item {
	out := i.projectKeysOnly(item)

	for _, namePtr := range i.projection.NonKeyAttributes {
		if namePtr == nil {
			continue
		}

		name := *namePtr
		if v, ok := item[name]; ok {
			out[name] = v
		}
	}

	return out
}

// putData indexes the item stored under the primary key key (see putKey).
func (i *index) putData(key string, item map[string]*types.Item) error {
	indexKey, err := i.keySchema.GetKey(i.Table.AttributesDef, item)
	if err != nil {
		return err
	}

	i.putKey(key, indexKey)

	return nil
}

// putKey records indexKey as the index key of the item stored under the
// primary key key, replacing the entry of its previous version; "" (an item
// without the index's key attributes) takes it out of the index (indexes are
// sparse).
func (i *index) putKey(key, indexKey string) {
	if i.Table.bulk {
		return
	}

	if old, exists := i.refs[key]; exists {
		if old == indexKey {
			return
		}

		i.removeEntry(old, key)
		delete(i.refs, key)
	}

	if indexKey == "" {
		return
	}

	i.refs[key] = indexKey
	i.insertEntry(indexKey, key)
}

// delete removes the item stored under the primary key key from the index.
func (i *index) delete(key string, item map[string]*types.Item) error {
	if i.Table.bulk {
		return nil
	}

	old, exists := i.refs[key]
	if !exists {
		return nil
	}

	delete(i.refs, key)
	i.removeEntry(old, key)

	return nil
}

func (i *index) count() int64 {
	return int64(len(i.entries))
}
