package core

import "sort"

// insertKey adds k to the sorted slice keys, keeping it sorted: a binary
// search and one copy instead of sorting the whole slice on every insert.
func insertKey(keys []string, k string) []string {
	pos := sort.SearchStrings(keys, k)
	if pos < len(keys) && keys[pos] == k {
		return keys
	}

	keys = append(keys, "")
	copy(keys[pos+1:], keys[pos:])
	keys[pos] = k

	return keys
}

// removeKey removes k from the sorted slice keys if it is there.
func removeKey(keys []string, k string) []string {
	pos := sort.SearchStrings(keys, k)
	if pos == len(keys) || keys[pos] != k {
		return keys
	}

	copy(keys[pos:], keys[pos+1:])
	keys[len(keys)-1] = ""

	return keys[:len(keys)-1]
}
