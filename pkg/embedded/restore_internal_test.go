package embedded

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/bulkhead-dev/bulkhead/pkg/awsclients"
)

// TestSnapshotLoadMatchesRequests: a table filled through requests (puts in
// random order, overwrites that move an item in or out of an index or change
// its expiry, deletes) and the same table loaded from its snapshot answer every
// Scan and Query alike, on the table and on its indexes, in both directions and
// page by page, list the same expired keys in the same order, and sweep the same
// items.
func TestSnapshotLoadMatchesRequests(t *testing.T) {
	const (
		now   = 1_800_000_000
		table = "history"
	)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	clock := func() time.Time { return time.Unix(now, 0) }
	start := func(path string) (*DynamoDB, *dynamodb.Client) {
		t.Helper()
		d, err := StartDynamoDB(ctx, DynamoDBOptions{SnapshotPath: path, Now: clock, TTLSweepEvery: -1})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = d.Close(context.Background()) })
		return d, awsclients.NewDynamoDB(awsclients.Static(""), d.URL())
	}

	pathA := filepath.Join(t.TempDir(), "dynamodb.json")
	a, ca := start(pathA)
	s := func(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }
	n := func(v string) types.AttributeValue { return &types.AttributeValueMemberN{Value: v} }
	if _, err := ca.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName: aws.String(table),
		AttributeDefinitions: []types.AttributeDefinition{
			{AttributeName: aws.String("PK"), AttributeType: types.ScalarAttributeTypeS},
			{AttributeName: aws.String("SK"), AttributeType: types.ScalarAttributeTypeS},
			{AttributeName: aws.String("GSI1PK"), AttributeType: types.ScalarAttributeTypeS},
			{AttributeName: aws.String("GSI1SK"), AttributeType: types.ScalarAttributeTypeN},
			{AttributeName: aws.String("owner"), AttributeType: types.ScalarAttributeTypeS},
		},
		KeySchema: []types.KeySchemaElement{
			{AttributeName: aws.String("PK"), KeyType: types.KeyTypeHash},
			{AttributeName: aws.String("SK"), KeyType: types.KeyTypeRange},
		},
		GlobalSecondaryIndexes: []types.GlobalSecondaryIndex{{
			IndexName: aws.String("GSI1"),
			KeySchema: []types.KeySchemaElement{
				{AttributeName: aws.String("GSI1PK"), KeyType: types.KeyTypeHash},
				{AttributeName: aws.String("GSI1SK"), KeyType: types.KeyTypeRange},
			},
			Projection: &types.Projection{ProjectionType: types.ProjectionTypeAll},
		}, {
			IndexName:  aws.String("byOwner"),
			KeySchema:  []types.KeySchemaElement{{AttributeName: aws.String("owner"), KeyType: types.KeyTypeHash}},
			Projection: &types.Projection{ProjectionType: types.ProjectionTypeKeysOnly},
		}},
		BillingMode: types.BillingModePayPerRequest,
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := ca.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{TableName: aws.String(table),
		TimeToLiveSpecification: &types.TimeToLiveSpecification{AttributeName: aws.String("ttl"), Enabled: aws.Bool(true)}}); err != nil {
		t.Fatal(err)
	}

	// Partitions named so that a wrong key range would mix them up.
	parts := []string{"a", "a.b", "a.b.c", "a-", "ab", "T#1", "T#2", "T#10"}
	gsiParts := []string{"open", "settled", "open.x"}
	rng := rand.New(rand.NewPCG(1, 2))
	newItem := func(i int) map[string]types.AttributeValue {
		it := map[string]types.AttributeValue{
			"PK":   s(parts[i%len(parts)]),
			"SK":   s(fmt.Sprintf("RUN#%05d", i/len(parts))),
			"seq":  n(strconv.Itoa(rng.IntN(1000))),
			"tags": &types.AttributeValueMemberL{Value: []types.AttributeValue{}},
			"meta": &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{"k": s("v")}},
		}
		if rng.IntN(3) > 0 {
			it["GSI1PK"] = s(gsiParts[rng.IntN(len(gsiParts))])
			it["GSI1SK"] = n(strconv.Itoa(rng.IntN(50))) // ties ordered by primary key
		}
		if rng.IntN(4) == 0 {
			it["owner"] = s("user-" + strconv.Itoa(rng.IntN(5)))
		}
		switch rng.IntN(5) {
		case 0: // expired, several at the same second
			it["ttl"] = n(strconv.Itoa(now - 1 - rng.IntN(20)))
		case 1:
			it["ttl"] = n(strconv.Itoa(now + 1 + rng.IntN(1000)))
		case 2:
			it["ttl"] = s("not a number")
		case 3:
			it["ttl"] = n(fmt.Sprintf("%d.5", now-100+rng.IntN(200)))
		}
		return it
	}
	const items = 3000
	order := rng.Perm(items)
	for _, i := range order {
		if _, err := ca.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: newItem(i)}); err != nil {
			t.Fatal(err)
		}
	}
	for _, i := range order[:500] { // rewrites: new index keys, expiries, or none
		if _, err := ca.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: newItem(i)}); err != nil {
			t.Fatal(err)
		}
	}
	for _, i := range order[500:800] {
		it := newItem(i)
		if _, err := ca.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(table),
			Key: map[string]types.AttributeValue{"PK": it["PK"], "SK": it["SK"]}}); err != nil {
			t.Fatal(err)
		}
	}

	if err := a.Snapshot(ctx); err != nil {
		t.Fatal(err)
	}
	snap, err := os.ReadFile(pathA)
	if err != nil {
		t.Fatal(err)
	}
	pathB := filepath.Join(t.TempDir(), "dynamodb.json")
	if err := os.WriteFile(pathB, snap, 0o600); err != nil {
		t.Fatal(err)
	}
	b, cb := start(pathB)

	// state reads everything the two servers must agree on.
	state := func(d *DynamoDB, c *dynamodb.Client) map[string]any {
		t.Helper()
		got := map[string]any{}
		page := func(name string, in *dynamodb.QueryInput) {
			var all []map[string]types.AttributeValue
			for pages := 0; ; pages++ {
				if pages > items {
					t.Fatalf("%s: paging does not end", name)
				}
				out, err := c.Query(ctx, in)
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				all = append(all, out.Items...)
				if len(out.LastEvaluatedKey) == 0 {
					break
				}
				in.ExclusiveStartKey = out.LastEvaluatedKey
			}
			got[name] = all
		}
		scan, err := c.Scan(ctx, &dynamodb.ScanInput{TableName: aws.String(table)})
		if err != nil {
			t.Fatal(err)
		}
		got["scan"] = scan.Items
		for _, forward := range []bool{true, false} {
			for _, p := range parts {
				page(fmt.Sprintf("table %s %v", p, forward), &dynamodb.QueryInput{TableName: aws.String(table), Limit: aws.Int32(7),
					KeyConditionExpression: aws.String("PK = :p"), ScanIndexForward: aws.Bool(forward),
					ExpressionAttributeValues: map[string]types.AttributeValue{":p": s(p)}})
			}
			for _, p := range gsiParts {
				page(fmt.Sprintf("GSI1 %s %v", p, forward), &dynamodb.QueryInput{TableName: aws.String(table), IndexName: aws.String("GSI1"),
					Limit: aws.Int32(11), KeyConditionExpression: aws.String("GSI1PK = :p"), ScanIndexForward: aws.Bool(forward),
					ExpressionAttributeValues: map[string]types.AttributeValue{":p": s(p)}})
			}
			for u := range 5 {
				page(fmt.Sprintf("byOwner %d %v", u, forward), &dynamodb.QueryInput{TableName: aws.String(table), IndexName: aws.String("byOwner"),
					Limit: aws.Int32(3), KeyConditionExpression: aws.String("#o = :o"), ScanIndexForward: aws.Bool(forward),
					ExpressionAttributeNames:  map[string]string{"#o": "owner"},
					ExpressionAttributeValues: map[string]types.AttributeValue{":o": s("user-" + strconv.Itoa(u))}})
			}
		}
		for _, at := range []int64{now - 10, now, now + 100, now + 2000} {
			keys, err := d.expiredKeys(table, at)
			if err != nil {
				t.Fatal(err)
			}
			got[fmt.Sprintf("expired at %d", at)] = keys
		}
		return got
	}
	compare := func(stage string) {
		t.Helper()
		want, got := state(a, ca), state(b, cb)
		if len(want["scan"].([]map[string]types.AttributeValue)) == 0 {
			t.Fatalf("%s: the table is empty", stage)
		}
		for k, w := range want {
			if !reflect.DeepEqual(got[k], w) {
				t.Errorf("%s: %s differs after loading the snapshot:\n got %v\nwant %v", stage, k, got[k], w)
			}
		}
	}
	compare("loaded")

	sweptA, err := a.SweepTTL(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sweptB, err := b.SweepTTL(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if sweptA == 0 || sweptB != sweptA {
		t.Errorf("sweep deleted %d items after loading the snapshot, %d after the requests (want the same, more than 0)", sweptB, sweptA)
	}
	compare("swept")
}
