package core

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/truora/minidyn/types"
)

// loadTestTable is a table keyed (pk, sk) with an index on "type" and time to
// live on "exp".
func loadTestTable(t *testing.T) *Table {
	t.Helper()

	tbl := NewTable(tableName)
	tbl.AttributesDef = map[string]string{"pk": "S", "sk": "N", "type": "S"}
	tbl.KeySchema = keySchema{"pk", "sk", false}
	name, all := "by-type", "ALL"
	require.NoError(t, tbl.AddGlobalIndexes([]*types.GlobalSecondaryIndex{{
		IndexName:             &name,
		KeySchema:             []*types.KeySchemaElement{{AttributeName: "type", KeyType: "HASH"}},
		Projection:            &types.Projection{ProjectionType: &all},
		ProvisionedThroughput: &types.ProvisionedThroughput{ReadCapacityUnits: 1, WriteCapacityUnits: 1},
	}}))
	tbl.SetTTLAttribute("exp")

	return tbl
}

// loadTestItems are n items over fewer keys (so that later items replace
// earlier ones), some outside the index, some with an expiry.
func loadTestItems(n int, seed uint64) []map[string]*types.Item {
	r := rand.New(rand.NewPCG(seed, 1))
	items := make([]map[string]*types.Item, n)

	for i := range items {
		it := map[string]*types.Item{
			"pk": {S: new(fmt.Sprintf("p%d", r.IntN(20)))},
			"sk": {N: new(fmt.Sprint(r.IntN(n / 2)))},
			"v":  {N: new(fmt.Sprint(i))},
		}
		if r.IntN(3) > 0 {
			it["type"] = &types.Item{S: new(fmt.Sprintf("t%d", r.IntN(4)))}
		}

		if r.IntN(2) == 0 {
			it["exp"] = &types.Item{N: new(fmt.Sprint(1_700_000_000 + r.IntN(1000)))}
		}

		items[i] = it
	}

	return items
}

// TestLoaderMatchesPuts loads items prepared on several goroutines and checks
// the table against one filled by Put in the same order: the same items (later
// ones replacing earlier ones), sorted keys, index entries and expiry order.
func TestLoaderMatchesPuts(t *testing.T) {
	items := loadTestItems(2000, 7)

	want := loadTestTable(t)
	for _, it := range items {
		_, err := want.Put(&types.PutItemInput{Item: it, TableName: &want.Name})
		require.NoError(t, err)
	}

	got := loadTestTable(t)
	l := got.NewLoader()
	entries := make([]LoadEntry, len(items))

	var wg sync.WaitGroup

	for w := range 4 {
		wg.Go(func() {
			for i := w; i < len(items); i += 4 {
				e, err := l.Prepare(items[i])
				if err != nil {
					t.Error(err)
					return
				}

				entries[i] = e
			}
		})
	}

	wg.Wait()
	require.NoError(t, l.Load(entries))

	require.Less(t, len(want.Data), len(items), "the items must repeat keys")
	require.Equal(t, want.Data, got.Data)
	require.Equal(t, want.SortedKeys, got.SortedKeys)
	require.Equal(t, want.Indexes["by-type"].entries, got.Indexes["by-type"].entries)
	require.Equal(t, want.Indexes["by-type"].refs, got.Indexes["by-type"].refs)
	require.Equal(t, want.ttl.entries, got.ttl.entries)
	require.Equal(t, want.ttl.at, got.ttl.at)

	// LoadItems on a table that already holds items indexes both.
	more := loadTestItems(500, 8)
	for _, it := range more {
		_, err := want.Put(&types.PutItemInput{Item: it, TableName: &want.Name})
		require.NoError(t, err)
	}

	require.NoError(t, got.LoadItems(more))
	require.Equal(t, want.Data, got.Data)
	require.Equal(t, want.SortedKeys, got.SortedKeys)
	require.Equal(t, want.Indexes["by-type"].entries, got.Indexes["by-type"].entries)
	require.Equal(t, want.ttl.entries, got.ttl.entries)
}

// TestLoaderRefusesWhatPutRefuses checks that Prepare refuses an item without
// its key or with an index key of the wrong type, as Put does, and that Load
// refuses entries prepared before the table's indexes changed.
func TestLoaderRefusesWhatPutRefuses(t *testing.T) {
	tbl := loadTestTable(t)
	l := tbl.NewLoader()

	for _, it := range []map[string]*types.Item{
		{"pk": {S: new("a")}},
		{"pk": {S: new("a")}, "sk": {S: new("1")}},
		{"pk": {S: new("a")}, "sk": {N: new("1")}, "type": {N: new("3")}},
	} {
		_, putErr := tbl.Put(&types.PutItemInput{Item: it, TableName: &tbl.Name})
		require.Error(t, putErr)

		_, err := l.Prepare(it)
		require.Error(t, err)
	}

	e, err := l.Prepare(map[string]*types.Item{"pk": {S: new("a")}, "sk": {N: new("1")}})
	require.NoError(t, err)

	name, all := "second", "KEYS_ONLY"
	require.NoError(t, tbl.AddGlobalIndexes([]*types.GlobalSecondaryIndex{{
		IndexName:             &name,
		KeySchema:             []*types.KeySchemaElement{{AttributeName: "type", KeyType: "HASH"}},
		Projection:            &types.Projection{ProjectionType: &all},
		ProvisionedThroughput: &types.ProvisionedThroughput{ReadCapacityUnits: 1, WriteCapacityUnits: 1},
	}}))
	require.Error(t, l.Load([]LoadEntry{e}))
	require.Empty(t, tbl.Data)
}

// TestRefusedWriteLeavesItem checks that a Put or an Update that would give an
// index key the wrong type is refused whole, as in DynamoDB: the stored item,
// the index and the sorted keys stay as they were.
func TestRefusedWriteLeavesItem(t *testing.T) {
	tbl := loadTestTable(t)
	_, err := tbl.Put(&types.PutItemInput{TableName: &tbl.Name, Item: map[string]*types.Item{
		"pk": {S: new("a")}, "sk": {N: new("1")}, "type": {S: new("t1")}, "v": {N: new("1")},
	}})
	require.NoError(t, err)

	before := deepCopyItemMap(tbl.Data["a.1"])
	entries := append([]indexEntry(nil), tbl.Indexes["by-type"].entries...)

	_, err = tbl.Put(&types.PutItemInput{TableName: &tbl.Name, Item: map[string]*types.Item{
		"pk": {S: new("a")}, "sk": {N: new("2")}, "type": {N: new("7")},
	}})
	require.Error(t, err)

	_, err = tbl.Update(&types.UpdateItemInput{
		TableName:                 &tbl.Name,
		Key:                       map[string]*types.Item{"pk": {S: new("a")}, "sk": {N: new("1")}},
		UpdateExpression:          "SET v = :v, #t = :t",
		ExpressionAttributeNames:  map[string]string{"#t": "type"},
		ExpressionAttributeValues: map[string]*types.Item{":v": {N: new("2")}, ":t": {N: new("7")}},
	})
	require.Error(t, err)

	require.Equal(t, before, tbl.Data["a.1"])
	require.Len(t, tbl.Data, 1)
	require.Equal(t, []string{"a.1"}, tbl.SortedKeys)
	require.Equal(t, entries, tbl.Indexes["by-type"].entries)
}

// TestBulkReplayMatchesLive applies one random series of writes (puts that
// move items in and out of the index and change expiries, updates, deletes,
// refused writes, transaction undos) to a table in bulk mode and to one that
// is not, and checks that turning bulk mode off leaves the same table: data,
// sorted keys, index entries and expiry order. While bulk mode is on, reads
// that need the order are refused.
func TestBulkReplayMatchesLive(t *testing.T) {
	live, bulk := loadTestTable(t), loadTestTable(t)
	require.NoError(t, bulk.SetBulk(true))

	r := rand.New(rand.NewPCG(3, 4))
	items := loadTestItems(3000, 9)

	for i, it := range items {
		key := map[string]*types.Item{"pk": it["pk"], "sk": it["sk"]}

		for _, tbl := range []*Table{live, bulk} {
			switch i % 7 {
			case 3:
				_, _ = tbl.Delete(&types.DeleteItemInput{TableName: &tbl.Name, Key: key})
			case 4:
				_, _ = tbl.Update(&types.UpdateItemInput{
					TableName: &tbl.Name, Key: key, UpdateExpression: "SET v = :v, #t = :t",
					ExpressionAttributeNames:  map[string]string{"#t": "type"},
					ExpressionAttributeValues: map[string]*types.Item{":v": {N: new("1")}, ":t": {S: new("t9")}},
				})
			case 5:
				// A transaction that wrote and was undone.
				undo := tbl.SaveItem(keyOf(t, tbl, it))
				_, err := tbl.Put(&types.PutItemInput{TableName: &tbl.Name, Item: it})
				require.NoError(t, err)
				tbl.RestoreItem(undo)
			case 6:
				bad := copyItem(it)
				bad["type"] = &types.Item{N: new("1")}
				_, err := tbl.Put(&types.PutItemInput{TableName: &tbl.Name, Item: bad})
				require.Error(t, err)
			default:
				_, err := tbl.Put(&types.PutItemInput{TableName: &tbl.Name, Item: it})
				require.NoError(t, err)
			}
		}

		if r.IntN(500) == 0 {
			_, _, err := bulk.SearchData(QueryInput{Index: PrimaryIndexName, Scan: true})
			require.Error(t, err)
		}
	}

	require.NoError(t, bulk.SetBulk(false))
	require.NotEmpty(t, live.Data)
	require.Equal(t, live.Data, bulk.Data)
	require.Equal(t, live.SortedKeys, bulk.SortedKeys)
	require.Equal(t, live.Indexes["by-type"].entries, bulk.Indexes["by-type"].entries)
	require.Equal(t, live.Indexes["by-type"].refs, bulk.Indexes["by-type"].refs)
	require.Equal(t, live.ttl.entries, bulk.ttl.entries)
	require.Equal(t, live.ttl.at, bulk.ttl.at)
}

func keyOf(t *testing.T, tbl *Table, item map[string]*types.Item) string {
	t.Helper()

	k, err := tbl.KeySchema.GetKey(tbl.AttributesDef, item)
	require.NoError(t, err)

	return k
}

// TestPutConditionFailureReturnsItem checks that a Put whose condition fails
// returns the stored item with the error when asked (ALL_OLD), and not
// otherwise, as DynamoDB's PutItem does.
func TestPutConditionFailureReturnsItem(t *testing.T) {
	tbl := loadTestTable(t)
	stored := map[string]*types.Item{"pk": {S: new("a")}, "sk": {N: new("1")}, "v": {N: new("1")}}
	_, err := tbl.Put(&types.PutItemInput{TableName: &tbl.Name, Item: stored})
	require.NoError(t, err)

	for _, want := range []bool{true, false} {
		in := &types.PutItemInput{
			TableName:           &tbl.Name,
			Item:                map[string]*types.Item{"pk": {S: new("a")}, "sk": {N: new("1")}, "v": {N: new("2")}},
			ConditionExpression: new("attribute_not_exists(pk)"),
		}
		if want {
			in.ReturnValuesOnConditionCheckFailure = new("ALL_OLD")
		}

		_, err := tbl.Put(in)

		var ccf *types.ConditionalCheckFailedException
		require.ErrorAs(t, err, &ccf)

		if want {
			require.Equal(t, stored, ccf.Item)
		} else {
			require.Empty(t, ccf.Item)
		}
	}
}
