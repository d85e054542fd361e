package core

import (
	"fmt"
	"math/rand"
	"sort"
	"testing"
)

// TestInsertRemoveKeyKeepOrder checks the sorted key slice against a set after
// random inserts (with repeats) and deletes (some of absent keys).
func TestInsertRemoveKeyKeepOrder(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	var keys []string
	set := map[string]bool{}

	for i := 0; i < 5000; i++ {
		k := fmt.Sprintf("k%03d.%d", rng.Intn(300), rng.Intn(5))
		if rng.Intn(3) == 0 {
			keys = removeKey(keys, k)
			delete(set, k)
		} else {
			keys = insertKey(keys, k)
			set[k] = true
		}
	}

	want := make([]string, 0, len(set))
	for k := range set {
		want = append(want, k)
	}

	sort.Strings(want)

	if fmt.Sprint(keys) != fmt.Sprint(want) {
		t.Fatalf("keys after random inserts and deletes:\n got %v\nwant %v", keys, want)
	}
}
