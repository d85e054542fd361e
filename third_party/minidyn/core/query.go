package core

import (
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/truora/minidyn/types"
)

// searchKeys is the ordered key list a search walks: the table's sorted
// primary keys, or a secondary index's entries.
type searchKeys struct {
	keys []string // the table's keys when idx is nil
	idx  *index
}

func (t *Table) searchKeys(indexName string) searchKeys {
	if indexName != "" {
		if i, ok := t.Indexes[indexName]; ok {
			return searchKeys{idx: i}
		}
	}

	return searchKeys{keys: t.SortedKeys}
}

func (s searchKeys) len() int {
	if s.idx != nil {
		return len(s.idx.entries)
	}

	return len(s.keys)
}

// primary returns the primary key of the item at pos.
func (s searchKeys) primary(pos int) string {
	if s.idx != nil {
		return s.idx.entries[pos].pk
	}

	return s.keys[pos]
}

// search returns the first position whose (sort key, primary key) is not
// before (sk, pk); for the table, the sort key is the primary key.
func (s searchKeys) search(sk, pk string) int {
	if s.idx != nil {
		return s.idx.search(sk, pk)
	}

	return sort.SearchStrings(s.keys, sk)
}

func (s searchKeys) schema(t *Table) keySchema {
	if s.idx != nil {
		return s.idx.keySchema
	}

	return t.KeySchema
}

// searchBounds returns the positions [lo, hi) of keys that a search can
// match. The key strings are "<hash>" or "<hash>.<range>" (see
// keySchema.getKeyValue), so the items of one partition are the keys equal
// to the hash value, or those that begin with it and a dot (with, at most,
// items of other partitions whose hash value itself begins so, which the key
// condition still rejects). An ExclusiveStartKey narrows the range to the
// keys after it in the direction of the search. A scan, or a key condition
// whose partition cannot be read from it, keeps the whole range, as before.
func (t *Table) searchBounds(input *QueryInput, keys searchKeys) (int, int) {
	lo, hi := 0, keys.len()
	ks := keys.schema(t)

	if hash, ok := t.partitionOf(input, ks); ok {
		if ks.RangeKey == "" {
			lo, hi = keys.search(hash, ""), keys.search(hash+"\x00", "")
		} else {
			lo, hi = keys.search(hash+".", ""), keys.search(hash+"/", "")
		}
	}

	if len(input.ExclusiveStartKey) == 0 {
		return lo, hi
	}

	pk, err := t.KeySchema.GetKey(t.AttributesDef, input.ExclusiveStartKey)
	if err != nil || pk == "" {
		// An unreadable start key is ignored, as before.
		return lo, hi
	}

	sk, ok := pk, true
	if keys.idx != nil {
		sk, ok = keys.idx.startKey(t, input.ExclusiveStartKey, pk)
	}

	if !ok {
		// The start item is not in the index: nothing follows it, as before.
		return lo, lo
	}

	pos := keys.search(sk, pk)
	if !input.ScanIndexForward {
		return lo, min(hi, pos)
	}

	if pos < keys.len() && keys.primary(pos) == pk && (keys.idx == nil || keys.idx.entries[pos].ik == sk) {
		pos++
	}

	return max(lo, pos), hi
}

// startKey returns the index key of an ExclusiveStartKey: from its index key
// attributes, or else from the item it names.
func (i *index) startKey(t *Table, start map[string]*types.Item, pk string) (string, bool) {
	ik, err := i.keySchema.GetKey(t.AttributesDef, start)
	if err == nil && ik != "" {
		return ik, true
	}

	ik, ok := i.refs[pk]

	return ik, ok
}

// keyEquality matches "name = :value" in a key condition.
var keyEquality = regexp.MustCompile(`(#?[A-Za-z0-9_]+)\s*=\s*(:[A-Za-z0-9_]+)`)

// keyDisjunction matches the words that could make a condition true for an
// item whose hash key differs from the one it names.
var keyDisjunction = regexp.MustCompile(`(?i)\b(OR|NOT)\b`)

// partitionOf returns the key string of the hash value that a query's key
// condition requires ("hash = :v", alone or in a conjunction), if it has one.
func (t *Table) partitionOf(input *QueryInput, ks keySchema) (string, bool) {
	expr := input.KeyConditionExpression
	if input.Scan || expr == "" || keyDisjunction.MatchString(expr) {
		return "", false
	}

	for _, m := range keyEquality.FindAllStringSubmatch(expr, -1) {
		name := m[1]
		if strings.HasPrefix(name, "#") {
			alias, ok := input.Aliases[name]
			if !ok {
				continue
			}

			name = alias
		}

		if name != ks.HashKey {
			continue
		}

		v, ok := input.ExpressionAttributeValues[m[2]]
		if !ok {
			return "", false
		}

		val, err := getItemValue(map[string]*types.Item{name: v}, name, t.AttributesDef[name])
		if err != nil {
			return "", false
		}

		return fmt.Sprintf("%v", val), true
	}

	return "", false
}
