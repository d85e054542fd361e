package embedded_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/truora/minidyn/server"

	"github.com/bulkhead-dev/bulkhead/pkg/embedded"
)

// table and mirror are the tables the tests use.
const (
	table  = "bulkhead"
	mirror = "mirror"
)

func TestDynamoDBSurvivesRestart(t *testing.T) {
	ctx := testContext(t)
	// A directory that does not exist yet: StartDynamoDB creates it.
	path := filepath.Join(t.TempDir(), "data", "dynamodb.json")

	d := mustStartDynamoDB(t, embedded.DynamoDBOptions{SnapshotPath: path})
	c := dynamoClient(d)
	mustCreateTable(t, c, table)
	profile := item("TENANT#a", "PROFILE", map[string]types.AttributeValue{
		"name":    &types.AttributeValueMemberS{Value: "Acme"},
		"tokens":  &types.AttributeValueMemberN{Value: "123456789012345678901234567890"},
		"active":  &types.AttributeValueMemberBOOL{Value: true},
		"secret":  &types.AttributeValueMemberB{Value: []byte{0, 1, 2, 255}},
		"tags":    &types.AttributeValueMemberSS{Value: []string{"x", "y"}},
		"limits":  &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{"rph": &types.AttributeValueMemberN{Value: "100"}}},
		"history": &types.AttributeValueMemberL{Value: []types.AttributeValue{&types.AttributeValueMemberS{Value: "created"}}},
	})
	mustPutItem(t, c, table, profile)
	for _, sk := range []string{"AGENT#2", "AGENT#1", "CONV#1"} {
		mustPutItem(t, c, table, item("TENANT#a", sk, nil))
	}
	mustPutItem(t, c, table, item("TENANT#b", "AGENT#9", nil))
	// minidyn serves empty collections as {} (see the package doc); a snapshot
	// holding one must still load.
	mustPutItem(t, c, table, item("TENANT#a", "EMPTY", map[string]types.AttributeValue{
		"list": &types.AttributeValueMemberL{Value: []types.AttributeValue{}},
		"map":  &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{}},
	}))
	before := mustGetItem(t, c, table, "TENANT#a", "PROFILE")
	beforeEmpty := mustGetItem(t, c, table, "TENANT#a", "EMPTY")
	mustClose(t, d)
	if err := d.Snapshot(ctx); err == nil {
		t.Errorf("Snapshot after Close: err = nil, want an error (the file may belong to another process by then)")
	}

	d2 := mustStartDynamoDB(t, embedded.DynamoDBOptions{SnapshotPath: path})
	c2 := dynamoClient(d2)

	if got := mustGetItem(t, c2, table, "TENANT#a", "PROFILE"); !reflect.DeepEqual(got, before) {
		t.Errorf("GetItem after restart = %#v, want %#v", got, before)
	}
	if got := mustGetItem(t, c2, table, "TENANT#a", "EMPTY"); !reflect.DeepEqual(got, beforeEmpty) {
		t.Errorf("GetItem of empty collections after restart = %#v, want as before, %#v", got, beforeEmpty)
	}
	// They are still a list and a map, not typeless values.
	_, err := c2.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                aws.String(table),
		Key:                      key("TENANT#a", "EMPTY"),
		UpdateExpression:         aws.String("SET #l = list_append(#l, :x), #m.#k = :s"),
		ExpressionAttributeNames: map[string]string{"#l": "list", "#m": "map", "#k": "k"},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":x": &types.AttributeValueMemberL{Value: []types.AttributeValue{&types.AttributeValueMemberS{Value: "a"}}},
			":s": &types.AttributeValueMemberS{Value: "v"},
		},
	})
	if err != nil {
		t.Errorf("list_append and SET map.k on restored empty collections: %v", err)
	}
	if !reflect.DeepEqual(before, profile) {
		t.Errorf("GetItem before restart = %#v, want what was put, %#v", before, profile)
	}

	out, err := c2.Query(ctx, &dynamodb.QueryInput{
		TableName:              aws.String(table),
		KeyConditionExpression: aws.String("PK = :pk AND begins_with(SK, :agent)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk":    &types.AttributeValueMemberS{Value: "TENANT#a"},
			":agent": &types.AttributeValueMemberS{Value: "AGENT#"},
		},
	})
	if err != nil {
		t.Fatalf("Query after restart: %v", err)
	}
	var got []string
	for _, it := range out.Items {
		got = append(got, it["SK"].(*types.AttributeValueMemberS).Value)
	}
	if want := []string{"AGENT#1", "AGENT#2"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Query TENANT#a AGENT# after restart = %v, want %v", got, want)
	}

	// The table is back, so creating it again is the caller's usual
	// ResourceInUseException.
	_, err = c2.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:            aws.String(table),
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("PK"), AttributeType: types.ScalarAttributeTypeS}},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("PK"), KeyType: types.KeyTypeHash}},
		BillingMode:          types.BillingModePayPerRequest,
	})
	if _, ok := errors.AsType[*types.ResourceInUseException](err); !ok {
		t.Errorf("CreateTable of a restored table: err = %v, want ResourceInUseException", err)
	}
}

// TestDynamoDBRestoresTableChanges checks that an index added with UpdateTable and
// a deleted table come back as they were, not as first created.
func TestDynamoDBRestoresTableChanges(t *testing.T) {
	ctx := testContext(t)
	path := filepath.Join(t.TempDir(), "dynamodb.json")

	d := mustStartDynamoDB(t, embedded.DynamoDBOptions{SnapshotPath: path})
	c := dynamoClient(d)
	mustCreateTable(t, c, table)
	mustCreateTable(t, c, "dropped")
	if _, err := c.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String("dropped")}); err != nil {
		t.Fatalf("DeleteTable: %v", err)
	}
	_, err := c.UpdateTable(ctx, &dynamodb.UpdateTableInput{
		TableName:            aws.String(table),
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("email"), AttributeType: types.ScalarAttributeTypeS}},
		GlobalSecondaryIndexUpdates: []types.GlobalSecondaryIndexUpdate{{Create: &types.CreateGlobalSecondaryIndexAction{
			IndexName:  aws.String("byEmail"),
			KeySchema:  []types.KeySchemaElement{{AttributeName: aws.String("email"), KeyType: types.KeyTypeHash}},
			Projection: &types.Projection{ProjectionType: types.ProjectionTypeAll},
		}}},
	})
	if err != nil {
		t.Fatalf("UpdateTable add GSI: %v", err)
	}
	mustPutItem(t, c, table, item("TENANT#a", "USER#1", map[string]types.AttributeValue{"email": &types.AttributeValueMemberS{Value: "a@example.com"}}))
	mustClose(t, d)

	c2 := dynamoClient(mustStartDynamoDB(t, embedded.DynamoDBOptions{SnapshotPath: path}))
	out, err := c2.Query(ctx, &dynamodb.QueryInput{
		TableName:                 aws.String(table),
		IndexName:                 aws.String("byEmail"),
		KeyConditionExpression:    aws.String("email = :e"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":e": &types.AttributeValueMemberS{Value: "a@example.com"}},
	})
	if err != nil {
		t.Fatalf("Query GSI after restart: %v", err)
	}
	if got, want := len(out.Items), 1; got != want {
		t.Errorf("Query GSI after restart: %d items, want %d", got, want)
	}
	_, err = c2.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String("dropped")})
	if _, ok := errors.AsType[*types.ResourceNotFoundException](err); !ok {
		t.Errorf("DescribeTable of a deleted table after restart: err = %v, want ResourceNotFoundException", err)
	}
}

// TestDynamoDBSnapshotConsistentUnderWrites runs conditional counters and
// transactions while snapshots are forced, then checks that the final snapshot
// holds exactly the acknowledged writes, and that a snapshot taken mid-run holds
// no half transaction.
func TestDynamoDBSnapshotConsistentUnderWrites(t *testing.T) {
	const (
		writers   = 8
		perWriter = 60
		counters  = 4
		limit     = 100 // per counter; 8*60/4 = 120 attempts each, so some fail
		txWriters = 2
	)
	ctx := testContext(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "dynamodb.json")
	d := mustStartDynamoDB(t, embedded.DynamoDBOptions{SnapshotPath: path})
	c := dynamoClient(d)
	mustCreateTable(t, c, table)
	mustCreateTable(t, c, mirror)
	// Filler makes the first table's scan take a while, which widens the window
	// in which a snapshot without proper locking would tear a transaction.
	mustPutFiller(t, c, table, 300)

	var (
		wg        sync.WaitGroup
		successes [counters]atomic.Int64
		refused   atomic.Int64
		txDone    atomic.Int64
		failures  = make(chan error, writers+txWriters)
		stop      = make(chan struct{})
		snapDone  = make(chan struct{})
		snapshots []string // copies of the snapshots taken during the writes
	)
	for w := range writers {
		wg.Go(func() {
			for i := range perWriter {
				n := (w + i) % counters
				_, err := c.UpdateItem(ctx, &dynamodb.UpdateItemInput{
					TableName:           aws.String(table),
					Key:                 key("TENANT#a", "COUNTER#"+strconv.Itoa(n)),
					UpdateExpression:    aws.String("ADD used :one"),
					ConditionExpression: aws.String("attribute_not_exists(used) OR used < :limit"),
					ExpressionAttributeValues: map[string]types.AttributeValue{
						":one":   &types.AttributeValueMemberN{Value: "1"},
						":limit": &types.AttributeValueMemberN{Value: strconv.Itoa(limit)},
					},
				})
				if _, ok := errors.AsType[*types.ConditionalCheckFailedException](err); ok {
					refused.Add(1)
					continue
				}
				if err != nil {
					failures <- fmt.Errorf("UpdateItem counter %d: %w", n, err)
					return
				}
				successes[n].Add(1)
			}
		})
	}
	// Each transaction adds one to an item in each of two tables: a snapshot that
	// split a transaction would show them different. Two tables, because minidyn
	// serves one Scan under its own lock, so only a snapshot of several tables (or
	// several pages) can tear.
	for range txWriters {
		wg.Go(func() {
			for range perWriter {
				add := func(tableName string) types.TransactWriteItem {
					return types.TransactWriteItem{Update: &types.Update{
						TableName:                 aws.String(tableName),
						Key:                       key("TENANT#a", "PAIR"),
						UpdateExpression:          aws.String("ADD n :one"),
						ExpressionAttributeValues: map[string]types.AttributeValue{":one": &types.AttributeValueMemberN{Value: "1"}},
					}}
				}
				_, err := c.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{
					TransactItems: []types.TransactWriteItem{add(table), add(mirror)},
				})
				if err != nil {
					failures <- fmt.Errorf("TransactWriteItems: %w", err)
					return
				}
				txDone.Add(1)
			}
		})
	}
	go func() {
		defer close(snapDone)
		for {
			select {
			case <-stop:
				return
			default:
			}
			if err := d.Snapshot(ctx); err != nil {
				failures <- fmt.Errorf("Snapshot during writes: %w", err)
				return
			}
			copied := filepath.Join(dir, fmt.Sprintf("mid-run-%d.json", len(snapshots)))
			if err := copyFile(path, copied); err != nil {
				failures <- err
				return
			}
			snapshots = append(snapshots, copied)
		}
	}()
	wg.Wait()
	close(stop)
	<-snapDone
	close(failures)
	for err := range failures {
		t.Error(err)
	}
	if t.Failed() {
		return
	}
	if len(snapshots) < 3 {
		t.Fatalf("only %d snapshots during the writes, want at least 3 to test anything", len(snapshots))
	}
	t.Logf("%d snapshots during %d writes", len(snapshots), writers*perWriter+txWriters*perWriter)
	mustClose(t, d)

	c2 := dynamoClient(mustStartDynamoDB(t, embedded.DynamoDBOptions{SnapshotPath: path}))
	var total int64
	for n := range counters {
		got := numberAttr(mustGetItem(t, c2, table, "TENANT#a", "COUNTER#"+strconv.Itoa(n)), "used")
		want := strconv.FormatInt(successes[n].Load(), 10)
		if got != want {
			t.Errorf("counter %d after restart = %q, want %s (successful updates)", n, got, want)
		}
		total += successes[n].Load()
	}
	if got, want := total+refused.Load(), int64(writers*perWriter); got != want {
		t.Errorf("successes+refusals = %d, want %d attempts", got, want)
	}
	if got, want := total, int64(counters*limit); got != want {
		t.Errorf("successful updates = %d, want exactly %d (the limits)", got, want)
	}
	pair := func(c *dynamodb.Client) (string, string) {
		return numberAttr(mustGetItem(t, c, table, "TENANT#a", "PAIR"), "n"),
			numberAttr(mustGetItem(t, c, mirror, "TENANT#a", "PAIR"), "n")
	}
	if left, right := pair(c2); left != strconv.FormatInt(txDone.Load(), 10) || right != left {
		t.Errorf("transaction pair after restart = (%s, %s), want both %d", left, right, txDone.Load())
	}

	// The snapshots taken while transactions were running hold none by half.
	for _, snap := range snapshots {
		mid := mustStartDynamoDB(t, embedded.DynamoDBOptions{SnapshotPath: snap})
		if left, right := pair(dynamoClient(mid)); left != right {
			t.Errorf("transaction pair in snapshot %s = (%q, %q), want equal (a torn transaction)", filepath.Base(snap), left, right)
		}
		mustClose(t, mid)
	}
}

// TestDynamoDBTableOperationsDuringTraffic creates, describes and deletes tables
// while items are written to another one. minidyn serves table operations without
// its lock; under -race this fails unless the server serialises them.
func TestDynamoDBTableOperationsDuringTraffic(t *testing.T) {
	ctx := testContext(t)
	d := mustStartDynamoDB(t, embedded.DynamoDBOptions{SnapshotPath: filepath.Join(t.TempDir(), "dynamodb.json"), CompactAfter: 16 << 10})
	c := dynamoClient(d)
	mustCreateTable(t, c, table)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				_, err := c.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: item("TENANT#a", fmt.Sprintf("ITEM#%d#%d", w, i), nil)})
				if err != nil {
					t.Errorf("PutItem during table operations: %v", err)
					return
				}
			}
		})
	}
	for i := range 10 {
		name := fmt.Sprintf("extra-%d", i)
		mustCreateTable(t, c, name)
		if _, err := c.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table)}); err != nil {
			t.Errorf("DescribeTable during traffic: %v", err)
		}
		if i%2 == 0 {
			if _, err := c.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(name)}); err != nil {
				t.Errorf("DeleteTable %s during traffic: %v", name, err)
			}
		}
	}
	close(stop)
	wg.Wait()
}

func TestDynamoDBRefusesDamagedSnapshot(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dynamodb.json")
	damaged := []byte(`{"format":"bulkhead-minidyn-snapshot/1","tables":[`)
	if err := os.WriteFile(path, damaged, 0o600); err != nil {
		t.Fatal(err)
	}
	d, err := embedded.StartDynamoDB(testContext(t), embedded.DynamoDBOptions{SnapshotPath: path})
	if err == nil {
		_ = d.Close(context.Background())
		t.Fatalf("StartDynamoDB on a damaged snapshot: err = nil, want an error")
	}
	if b, _ := os.ReadFile(path); !bytes.Equal(b, damaged) {
		t.Errorf("damaged snapshot was changed to %q; it must be left for the user", b)
	}
}

func TestDynamoDBSnapshotIsExclusive(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dynamodb.json")
	mustStartDynamoDB(t, embedded.DynamoDBOptions{SnapshotPath: path})
	d, err := embedded.StartDynamoDB(testContext(t), embedded.DynamoDBOptions{SnapshotPath: path})
	if err == nil {
		_ = d.Close(context.Background())
		t.Fatalf("second StartDynamoDB on one snapshot file: err = nil, want an error")
	}
}

func TestDynamoDBFailureInjection(t *testing.T) {
	ctx := testContext(t)
	d := mustStartDynamoDB(t, embedded.DynamoDBOptions{})
	// One attempt, so that the SDK's retries of a 500 do not slow the test down.
	c := dynamoClient(d, func(o *dynamodb.Options) { o.RetryMaxAttempts = 1 })
	mustCreateTable(t, c, table)
	mustPutItem(t, c, table, item("TENANT#a", "PROFILE", nil))

	d.Server().EmulateFailure(server.FailureConditionInternalServerError)
	_, err := c.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(table), Key: key("TENANT#a", "PROFILE")})
	if _, ok := errors.AsType[*types.InternalServerError](err); !ok {
		t.Errorf("GetItem with an emulated failure: err = %v, want InternalServerError", err)
	}

	d.Server().EmulateFailure(server.FailureConditionNone)
	if got := mustGetItem(t, c, table, "TENANT#a", "PROFILE"); got == nil {
		t.Errorf("GetItem after clearing the failure = nil, want the item")
	}

	d.Server().EmulateFailureForTable(table, server.FailureConditionInternalServerError)
	_, err = c.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: item("TENANT#a", "AGENT#1", nil)})
	if _, ok := errors.AsType[*types.InternalServerError](err); !ok {
		t.Errorf("PutItem with a table failure: err = %v, want InternalServerError", err)
	}
	d.Server().EmulateFailureForTable(table, server.FailureConditionNone)
}

func TestStartRefusesNonLoopbackAddress(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", ":0", "192.0.2.1:0"} {
		if d, err := embedded.StartDynamoDB(testContext(t), embedded.DynamoDBOptions{Addr: addr}); err == nil {
			_ = d.Close(context.Background())
			t.Errorf("StartDynamoDB(Addr %q): err = nil, want a refusal", addr)
		}
		if s, err := embedded.StartS3(testContext(t), embedded.S3Options{Addr: addr}); err == nil {
			_ = s.Close(context.Background())
			t.Errorf("StartS3(Addr %q): err = nil, want a refusal", addr)
		}
	}
}

// mustPutFiller writes n small items under the partition FILLER.
func mustPutFiller(tb testing.TB, c *dynamodb.Client, tableName string, n int) {
	tb.Helper()
	for i := 0; i < n; i += 25 {
		var reqs []types.WriteRequest
		for j := i; j < min(i+25, n); j++ {
			reqs = append(reqs, types.WriteRequest{PutRequest: &types.PutRequest{Item: item("FILLER", fmt.Sprintf("%06d", j), nil)}})
		}
		_, err := c.BatchWriteItem(testContext(tb), &dynamodb.BatchWriteItemInput{RequestItems: map[string][]types.WriteRequest{tableName: reqs}})
		if err != nil {
			tb.Fatalf("BatchWriteItem filler into %s: %v", tableName, err)
		}
	}
}

// copyFile copies src to dst, as a backup taken at that moment would.
func copyFile(src, dst string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return fmt.Errorf("copy %s: %w", src, err)
	}
	if err := os.WriteFile(dst, b, 0o600); err != nil {
		return fmt.Errorf("copy to %s: %w", dst, err)
	}
	return nil
}

func mustCopyFile(tb testing.TB, src, dst string) {
	tb.Helper()
	if err := copyFile(src, dst); err != nil {
		tb.Fatal(err)
	}
}
