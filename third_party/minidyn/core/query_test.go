package core

import (
	"fmt"
	"math/rand"
	"slices"
	"strconv"
	"testing"

	"github.com/truora/minidyn/types"
)

// seekTable is a table keyed by PK and SK with a sparse index byG (G, SK),
// holding random items in partitions whose names begin like one another, so
// that a seek that strays out of its partition shows.
func seekTable(t *testing.T, rng *rand.Rand) (*Table, map[string]map[string]*types.Item) {
	t.Helper()

	table := NewTable("seek")
	table.BillingMode = new("PAY_PER_REQUEST")
	table.AttributesDef = map[string]string{"PK": "S", "SK": "S", "G": "S"}
	table.KeySchema = keySchema{HashKey: "PK", RangeKey: "SK"}

	all := "ALL"
	if err := table.AddGlobalIndexes([]*types.GlobalSecondaryIndex{{
		IndexName:  new("byG"),
		KeySchema:  []*types.KeySchemaElement{{AttributeName: "G", KeyType: "HASH"}, {AttributeName: "SK", KeyType: "RANGE"}},
		Projection: &types.Projection{ProjectionType: &all},
	}}); err != nil {
		t.Fatal(err)
	}

	model := map[string]map[string]*types.Item{}
	partitions := []string{"a", "a.b", "a-", "ab", "b", "a.b.c"}
	groups := []string{"g", "g.h", "gg"}

	for range 3000 {
		pk := partitions[rng.Intn(len(partitions))]
		sk := fmt.Sprintf("s%03d", rng.Intn(60))
		key := pk + "." + sk

		if rng.Intn(4) == 0 {
			if _, err := table.Delete(&types.DeleteItemInput{Key: map[string]*types.Item{"PK": {S: &pk}, "SK": {S: &sk}}}); err != nil {
				t.Fatal(err)
			}

			delete(model, key)

			continue
		}

		n := strconv.Itoa(rng.Intn(10))
		item := map[string]*types.Item{"PK": {S: &pk}, "SK": {S: &sk}, "n": {N: &n}}

		if rng.Intn(3) > 0 {
			g := groups[rng.Intn(len(groups))]
			item["G"] = &types.Item{S: &g}
		}

		if _, err := table.Put(&types.PutItemInput{Item: item}); err != nil {
			t.Fatal(err)
		}

		model[key] = item
	}

	return table, model
}

// TestQuerySeekPagesLikeAFullWalk pages through every partition of the table
// and of its index, in both directions, with and without Limit and a
// FilterExpression, and compares the items with the ones a full walk selects.
func TestQuerySeekPagesLikeAFullWalk(t *testing.T) {
	rng := rand.New(rand.NewSource(7))
	table, model := seekTable(t, rng)

	if got, want := len(table.SortedKeys), len(model); got != want {
		t.Fatalf("table holds %d keys, want %d", got, want)
	}

	if !slices.IsSorted(table.SortedKeys) {
		t.Fatal("table keys are not sorted")
	}

	type entry struct{ sort, key string }

	cases := []struct {
		index, attr string
		values      []string
	}{
		{"", "PK", []string{"a", "a.b", "a-", "ab", "b", "a.b.c", "none"}},
		{"byG", "G", []string{"g", "g.h", "gg", "none"}},
	}

	for _, tc := range cases {
		for _, value := range tc.values {
			for _, forward := range []bool{true, false} {
				for _, limit := range []int64{0, 1, 3, 1000} {
					for _, filter := range []string{"", "n > :five"} {
						// The full walk: every item of the partition, in key order.
						var want []entry

						for key, item := range model {
							v, ok := item[tc.attr]
							if !ok || *v.S != value {
								continue
							}

							if filter != "" {
								if n, _ := strconv.Atoi(*item["n"].N); n <= 5 {
									continue
								}
							}

							sortKey := key
							if tc.index != "" {
								sortKey = value + "." + *item["SK"].S
							}

							want = append(want, entry{sortKey, key})
						}

						slices.SortFunc(want, func(x, y entry) int {
							if x.sort != y.sort {
								return compareStrings(x.sort, y.sort)
							}

							return compareStrings(x.key, y.key)
						})

						if !forward {
							slices.Reverse(want)
						}

						var got []entry

						var start map[string]*types.Item

						for page := 0; ; page++ {
							if page > 5000 {
								t.Fatalf("%s=%s: no end of pages", tc.attr, value)
							}

							items, last, err := table.SearchData(QueryInput{
								Index:                     tc.index,
								KeyConditionExpression:    "#h = :v",
								FilterExpression:          filter,
								Aliases:                   map[string]string{"#h": tc.attr},
								ExpressionAttributeValues: map[string]*types.Item{":v": {S: &value}, ":five": {N: new("5")}},
								Limit:                     limit,
								ExclusiveStartKey:         start,
								ScanIndexForward:          forward,
							})
							if err != nil {
								t.Fatal(err)
							}

							if limit > 0 && int64(len(items)) > limit {
								t.Fatalf("%s=%s: page of %d items, limit %d", tc.attr, value, len(items), limit)
							}

							for _, item := range items {
								sortKey := *item["PK"].S + "." + *item["SK"].S
								if tc.index != "" {
									sortKey = *item["G"].S + "." + *item["SK"].S
								}

								got = append(got, entry{sortKey, *item["PK"].S + "." + *item["SK"].S})
							}

							if len(last) == 0 {
								break
							}

							start = last
						}

						if fmt.Sprint(got) != fmt.Sprint(want) {
							t.Errorf("index %q %s=%s forward=%v limit=%d filter=%q:\n got %v\nwant %v",
								tc.index, tc.attr, value, forward, limit, filter, got, want)
						}
					}
				}
			}
		}
	}
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	default:
		return 0
	}
}

// TestIndexFollowsItemChanges checks that an item whose index key changes or
// goes away leaves no stale index entry behind.
func TestIndexFollowsItemChanges(t *testing.T) {
	rng := rand.New(rand.NewSource(3))
	table, model := seekTable(t, rng)
	idx := table.Indexes["byG"]

	var want []indexEntry

	for key, item := range model {
		if g, ok := item["G"]; ok {
			want = append(want, indexEntry{ik: *g.S + "." + *item["SK"].S, pk: key})
		}
	}

	slices.SortFunc(want, func(x, y indexEntry) int {
		if x.ik != y.ik {
			return compareStrings(x.ik, y.ik)
		}

		return compareStrings(x.pk, y.pk)
	})

	if fmt.Sprint(idx.entries) != fmt.Sprint(want) {
		t.Fatalf("index entries:\n got %v\nwant %v", idx.entries, want)
	}

	if len(idx.refs) != len(want) {
		t.Fatalf("index refs: %d, want %d", len(idx.refs), len(want))
	}
}
