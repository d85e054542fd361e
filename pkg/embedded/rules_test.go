package embedded_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"
	"github.com/truora/minidyn/server"

	"github.com/bulkhead-dev/bulkhead/pkg/embedded"
)

const maxItem = 400 * 1024 // DynamoDB's item size limit, in bytes

// wantAPIError fails the test unless err is a DynamoDB error with this code and
// a message containing msg.
func wantAPIError(tb testing.TB, what string, err error, code, msg string) {
	tb.Helper()
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) {
		tb.Errorf("%s: err = %v, want %s %q", what, err, code, msg)
		return
	}
	if apiErr.ErrorCode() != code || !strings.Contains(apiErr.ErrorMessage(), msg) {
		tb.Errorf("%s: err = %s %q, want %s %q", what, apiErr.ErrorCode(), apiErr.ErrorMessage(), code, msg)
	}
}

// bigItem is the item (pk, sk) with a string attribute "body" that brings its
// size, as DynamoDB counts it, to exactly size bytes (all names and values ASCII).
func bigItem(pk, sk string, size int, extra map[string]types.AttributeValue) map[string]types.AttributeValue {
	used := len("PK") + len(pk) + len("SK") + len(sk) + len("body")
	for name, v := range extra {
		used += len(name)
		switch v := v.(type) {
		case *types.AttributeValueMemberS:
			used += len(v.Value)
		case *types.AttributeValueMemberN:
			used += 2 // the tests only use numbers of one or two significant digits
		default:
			panic(fmt.Sprintf("bigItem: unsupported extra attribute %T", v))
		}
	}
	return item(pk, sk, merge(extra, map[string]types.AttributeValue{
		"body": &types.AttributeValueMemberS{Value: strings.Repeat("x", size-used)},
	}))
}

func merge(a, b map[string]types.AttributeValue) map[string]types.AttributeValue {
	out := map[string]types.AttributeValue{}
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}

func TestDynamoDBItemSizeLimit(t *testing.T) {
	ctx := testContext(t)
	d := mustStartDynamoDB(t, embedded.DynamoDBOptions{})
	c := dynamoClient(d)
	mustCreateTable(t, c, table)

	// PutItem: exactly 400 KB is stored, one byte more is refused.
	mustPutItem(t, c, table, bigItem("TENANT#a", "AT-LIMIT", maxItem, nil))
	_, err := c.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: bigItem("TENANT#a", "OVER", maxItem+1, nil)})
	wantAPIError(t, "PutItem of 400 KB + 1", err, "ValidationException", "Item size has exceeded the maximum allowed size")
	if got := mustGetItem(t, c, table, "TENANT#a", "OVER"); got != nil {
		t.Errorf("the refused item was stored")
	}

	// BatchWriteItem: one oversized item refuses the whole batch.
	_, err = c.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{RequestItems: map[string][]types.WriteRequest{table: {
		{PutRequest: &types.PutRequest{Item: item("TENANT#a", "SMALL", nil)}},
		{PutRequest: &types.PutRequest{Item: bigItem("TENANT#a", "OVER", maxItem+1, nil)}},
	}}})
	wantAPIError(t, "BatchWriteItem with an item of 400 KB + 1", err, "ValidationException", "Item size has exceeded the maximum allowed size")
	if got := mustGetItem(t, c, table, "TENANT#a", "SMALL"); got != nil {
		t.Errorf("BatchWriteItem refused for an oversized item stored another item of the batch")
	}

	// TransactWriteItems Put.
	_, err = c.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
		{Put: &types.Put{TableName: aws.String(table), Item: item("TENANT#a", "SMALL", nil)}},
		{Put: &types.Put{TableName: aws.String(table), Item: bigItem("TENANT#a", "OVER", maxItem+1, nil)}},
	}})
	wantAPIError(t, "TransactWriteItems Put of 400 KB + 1", err, "ValidationException", "Item size has exceeded the maximum allowed size")
	if got := mustGetItem(t, c, table, "TENANT#a", "SMALL"); got != nil {
		t.Errorf("a refused transaction stored an item")
	}
}

func TestDynamoDBUpdateSizeLimit(t *testing.T) {
	ctx := testContext(t)
	d := mustStartDynamoDB(t, embedded.DynamoDBOptions{})
	c := dynamoClient(d)
	mustCreateTable(t, c, table)
	counter := map[string]types.AttributeValue{"n": &types.AttributeValueMemberN{Value: "1"}}
	mustPutItem(t, c, table, bigItem("TENANT#a", "FULL", maxItem, counter))
	one := map[string]types.AttributeValue{":one": &types.AttributeValueMemberN{Value: "1"}}

	// The check is exact, not an estimate that adds the request's values: at
	// exactly 400 KB, ADD 1 to a one-digit counter and SET of a value of the same
	// size leave the item at 400 KB and are accepted.
	_, err := c.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(table), Key: key("TENANT#a", "FULL"),
		UpdateExpression: aws.String("ADD n :one"), ExpressionAttributeValues: one,
	})
	if err != nil {
		t.Fatalf("ADD 1 to a counter of an item at 400 KB: %v", err)
	}
	_, err = c.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(table), Key: key("TENANT#a", "FULL"),
		UpdateExpression:         aws.String("SET #b = :b"),
		ConditionExpression:      aws.String("n = :two"),
		ExpressionAttributeNames: map[string]string{"#b": "body"},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":b":   mustGetItem(t, c, table, "TENANT#a", "FULL")["body"],
			":two": &types.AttributeValueMemberN{Value: "2"},
		},
	})
	if err != nil {
		t.Fatalf("SET of a same-size value on an item at 400 KB: %v", err)
	}

	// One more byte is refused, and the item is left as it was.
	_, err = c.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(table), Key: key("TENANT#a", "FULL"),
		UpdateExpression:          aws.String("SET x = :x"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":x": &types.AttributeValueMemberBOOL{Value: true}},
	})
	wantAPIError(t, "UpdateItem to 400 KB + 2", err, "ValidationException", "Item size to update has exceeded the maximum allowed size")
	if _, ok := mustGetItem(t, c, table, "TENANT#a", "FULL")["x"]; ok {
		t.Errorf("the refused update was applied")
	}
	// ADD that grows the counter by a digit pair (99 -> 100 is 2 -> 2 bytes, so
	// use a new attribute) on a full item is refused too.
	_, err = c.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(table), Key: key("TENANT#a", "FULL"),
		UpdateExpression: aws.String("ADD m :one"), ExpressionAttributeValues: one,
	})
	wantAPIError(t, "UpdateItem ADD of a new counter to a full item", err, "ValidationException", "Item size to update has exceeded the maximum allowed size")

	// A transaction's Update is cancelled with a ValidationError reason, and none
	// of its actions is applied.
	_, err = c.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
		{Put: &types.Put{TableName: aws.String(table), Item: item("TENANT#a", "SMALL", nil)}},
		{Update: &types.Update{
			TableName: aws.String(table), Key: key("TENANT#a", "FULL"),
			UpdateExpression: aws.String("ADD m :one"), ExpressionAttributeValues: one,
		}},
	}})
	tce, ok := errors.AsType[*types.TransactionCanceledException](err)
	if !ok {
		t.Fatalf("TransactWriteItems growing an item past 400 KB: err = %v, want TransactionCanceledException", err)
	}
	if len(tce.CancellationReasons) != 2 || aws.ToString(tce.CancellationReasons[0].Code) != "None" ||
		aws.ToString(tce.CancellationReasons[1].Code) != "ValidationError" ||
		aws.ToString(tce.CancellationReasons[1].Message) != "Item size to update has exceeded the maximum allowed size" {
		t.Errorf("cancellation reasons = %s, want [None, ValidationError: Item size to update has exceeded the maximum allowed size]", reasons(tce))
	}
	if got := mustGetItem(t, c, table, "TENANT#a", "SMALL"); got != nil {
		t.Errorf("a cancelled transaction stored an item")
	}

	// A conditional update whose condition fails answers its condition failure,
	// not the size.
	_, err = c.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(table), Key: key("TENANT#a", "FULL"),
		UpdateExpression:          aws.String("ADD m :one"),
		ConditionExpression:       aws.String("attribute_not_exists(PK)"),
		ExpressionAttributeValues: one,
	})
	if _, ok := errors.AsType[*types.ConditionalCheckFailedException](err); !ok {
		t.Errorf("oversized update whose condition fails: err = %v, want ConditionalCheckFailedException", err)
	}
}

func reasons(tce *types.TransactionCanceledException) string {
	var s []string
	for _, r := range tce.CancellationReasons {
		s = append(s, aws.ToString(r.Code)+": "+aws.ToString(r.Message))
	}
	return "[" + strings.Join(s, ", ") + "]"
}

func TestDynamoDBTransactionAndBatchLimits(t *testing.T) {
	ctx := testContext(t)
	d := mustStartDynamoDB(t, embedded.DynamoDBOptions{})
	c := dynamoClient(d)
	mustCreateTable(t, c, table)

	puts := func(n, size int) []types.TransactWriteItem {
		var w []types.TransactWriteItem
		for i := range n {
			it := item("TENANT#a", fmt.Sprintf("ITEM#%03d", i), nil)
			if size > 0 {
				it = bigItem("TENANT#a", fmt.Sprintf("ITEM#%03d", i), size, nil)
			}
			w = append(w, types.TransactWriteItem{Put: &types.Put{TableName: aws.String(table), Item: it}})
		}
		return w
	}
	_, err := c.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: puts(101, 0)})
	wantAPIError(t, "TransactWriteItems of 101 actions", err, "ValidationException", "Member must have length less than or equal to 100")
	if _, err := c.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: puts(100, 0)}); err != nil {
		t.Errorf("TransactWriteItems of 100 actions: %v", err)
	}

	// 11 items of 390 KB are 4.2 MB, over the 4 MB aggregate; 10 are not.
	const big = 390 * 1024
	_, err = c.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: puts(11, big)})
	wantAPIError(t, "TransactWriteItems of 4.2 MB", err, "ValidationException", "aggregate size of the items in the transaction exceeding the 4MB limit")
	if _, err := c.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: puts(10, big)}); err != nil {
		t.Errorf("TransactWriteItems of 3.9 MB: %v", err)
	}

	var gets []types.TransactGetItem
	var keys []map[string]types.AttributeValue
	for i := range 101 {
		gets = append(gets, types.TransactGetItem{Get: &types.Get{TableName: aws.String(table), Key: key("TENANT#a", fmt.Sprintf("ITEM#%03d", i))}})
		keys = append(keys, key("TENANT#a", fmt.Sprintf("ITEM#%03d", i)))
	}
	_, err = c.TransactGetItems(ctx, &dynamodb.TransactGetItemsInput{TransactItems: gets})
	wantAPIError(t, "TransactGetItems of 101 gets", err, "ValidationException", "")
	_, err = c.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: map[string]types.KeysAndAttributes{table: {Keys: keys}}})
	wantAPIError(t, "BatchGetItem of 101 keys", err, "ValidationException", "")
	var writes []types.WriteRequest
	for i := range 26 {
		writes = append(writes, types.WriteRequest{PutRequest: &types.PutRequest{Item: item("TENANT#b", strconv.Itoa(i), nil)}})
	}
	_, err = c.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{RequestItems: map[string][]types.WriteRequest{table: writes}})
	wantAPIError(t, "BatchWriteItem of 26 requests", err, "ValidationException", "")
}

// fakeClock is a clock that tests move by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// addOne is a transaction that adds one to the counter n of (TENANT#a, COUNTER)
// and writes the marker item sk only if it does not exist yet, as an admission
// creates its lease.
func addOne(sk string) *dynamodb.TransactWriteItemsInput {
	return &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
		{Update: &types.Update{
			TableName: aws.String(table), Key: key("TENANT#a", "COUNTER"),
			UpdateExpression:          aws.String("ADD n :one"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":one": &types.AttributeValueMemberN{Value: "1"}},
		}},
		{Put: &types.Put{
			TableName: aws.String(table), Item: item("TENANT#a", sk, nil),
			ConditionExpression: aws.String("attribute_not_exists(PK)"),
		}},
	}}
}

func TestDynamoDBClientRequestToken(t *testing.T) {
	ctx := testContext(t)
	clock := &fakeClock{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	d := mustStartDynamoDB(t, embedded.DynamoDBOptions{Now: clock.Now})
	c := dynamoClient(d)
	mustCreateTable(t, c, table)
	counter := func() string { return numberAttr(mustGetItem(t, c, table, "TENANT#a", "COUNTER"), "n") }

	in := addOne("LEASE#1")
	in.ClientRequestToken = aws.String("token-1")
	if _, err := c.TransactWriteItems(ctx, in); err != nil {
		t.Fatalf("first call: %v", err)
	}
	// The same request again within ten minutes succeeds without applying
	// anything: its condition would fail, and the counter stays at 1.
	clock.Advance(9*time.Minute + 59*time.Second)
	if _, err := c.TransactWriteItems(ctx, in); err != nil {
		t.Errorf("same token and parameters 9m59s later: err = %v, want the first call's success", err)
	}
	if got := counter(); got != "1" {
		t.Errorf("counter after a replay = %s, want 1 (applied once)", got)
	}
	// The same token with other parameters is refused.
	other := addOne("LEASE#2")
	other.ClientRequestToken = aws.String("token-1")
	_, err := c.TransactWriteItems(ctx, other)
	if _, ok := errors.AsType[*types.IdempotentParameterMismatchException](err); !ok {
		t.Errorf("same token, other parameters: err = %v, want IdempotentParameterMismatchException", err)
	}
	// Ten minutes after the first call completed, the token is a new request.
	clock.Advance(time.Second)
	_, err = c.TransactWriteItems(ctx, in)
	if _, ok := errors.AsType[*types.TransactionCanceledException](err); !ok {
		t.Errorf("same token 10m later: err = %v, want TransactionCanceledException (a new request, whose condition fails)", err)
	}
	if _, err := c.TransactWriteItems(ctx, other); err != nil {
		t.Errorf("other parameters under the expired token: %v", err)
	}
	if got := counter(); got != "2" {
		t.Errorf("counter = %s, want 2", got)
	}

	// A call that was cancelled is not remembered: the same token runs again
	// once its condition holds.
	cancelled := addOne("LEASE#3")
	cancelled.ClientRequestToken = aws.String("token-2")
	mustPutItem(t, c, table, item("TENANT#a", "LEASE#3", nil))
	_, err = c.TransactWriteItems(ctx, cancelled)
	if _, ok := errors.AsType[*types.TransactionCanceledException](err); !ok {
		t.Fatalf("transaction whose condition fails: err = %v, want TransactionCanceledException", err)
	}
	if _, err := c.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(table), Key: key("TENANT#a", "LEASE#3")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.TransactWriteItems(ctx, cancelled); err != nil {
		t.Errorf("same token after a cancelled call, condition now true: %v", err)
	}
	if got := counter(); got != "3" {
		t.Errorf("counter = %s, want 3", got)
	}

	// Calls with one token at the same time apply it once, and all succeed.
	same := addOne("LEASE#4")
	same.ClientRequestToken = aws.String("token-3")
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if _, err := c.TransactWriteItems(ctx, same); err != nil {
				t.Errorf("concurrent call with one token: %v", err)
			}
		})
	}
	wg.Wait()
	if got := counter(); got != "4" {
		t.Errorf("counter after 8 concurrent calls with one token = %s, want 4", got)
	}
}

// noBackoff is an SDK client option: the standard retryer, with the given
// attempts and no delay between them, so that retry tests run fast.
func noBackoff(attempts int) func(*dynamodb.Options) {
	return func(o *dynamodb.Options) {
		o.Retryer = retry.NewStandard(func(so *retry.StandardOptions) {
			so.MaxAttempts = attempts
			so.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return 0, nil })
		})
	}
}

// noToken is a per-call option that stops the SDK from filling in a
// ClientRequestToken.
func noToken(o *dynamodb.Options) { o.IdempotencyTokenProvider = nil }

func TestDynamoDBLostResponseRetry(t *testing.T) {
	ctx := testContext(t)
	d := mustStartDynamoDB(t, embedded.DynamoDBOptions{})
	c := dynamoClient(d, noBackoff(3))
	mustCreateTable(t, c, table)
	counter := func() string { return numberAttr(mustGetItem(t, c, table, "TENANT#a", "COUNTER"), "n") }

	// With the ClientRequestToken the SDK fills in, its retry of the committed
	// transaction is recognised: the call succeeds and is applied once.
	d.LoseResponses("TransactWriteItems", 1)
	if _, err := c.TransactWriteItems(ctx, addOne("LEASE#1")); err != nil {
		t.Errorf("transaction whose first response was lost, with a token: %v", err)
	}
	if got := counter(); got != "1" {
		t.Errorf("counter = %s, want 1 (applied once)", got)
	}

	// Without a token, the retry runs the transaction again and fails its own
	// condition: the caller sees a refusal of a write that committed.
	d.LoseResponses("TransactWriteItems", 1)
	_, err := c.TransactWriteItems(ctx, addOne("LEASE#2"), noToken)
	if _, ok := errors.AsType[*types.TransactionCanceledException](err); !ok {
		t.Errorf("transaction whose first response was lost, without a token: err = %v, want TransactionCanceledException", err)
	}
	if got := counter(); got != "2" {
		t.Errorf("counter = %s, want 2 (the first attempt committed)", got)
	}

	// LoseTokenResponses spares requests without a token.
	d.LoseTokenResponses(1)
	if _, err := c.TransactWriteItems(ctx, addOne("LEASE#3"), noToken, noBackoff(1)); err != nil {
		t.Errorf("transaction without a token while token responses are lost: %v", err)
	}
	_, err = c.TransactWriteItems(ctx, addOne("LEASE#4"), noBackoff(1))
	if _, ok := errors.AsType[*types.InternalServerError](err); !ok {
		t.Errorf("transaction with a token, one attempt, response lost: err = %v, want InternalServerError", err)
	}
	if got := mustGetItem(t, c, table, "TENANT#a", "LEASE#4"); got == nil {
		t.Errorf("the transaction whose response was lost did not commit")
	}

	// Other operations too, under concurrency: every call succeeds and each is
	// applied once, while a third of the responses are lost.
	const workers, calls = 8, 10
	d.LoseResponses("TransactWriteItems", workers*calls/3)
	cr := dynamoClient(d, noBackoff(workers*calls)) // more attempts than losses: no call can run out
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range calls {
				if _, err := cr.TransactWriteItems(ctx, addOne(fmt.Sprintf("RUN#%d#%d", w, i))); err != nil {
					t.Errorf("concurrent transaction with lost responses: %v", err)
				}
			}
		})
	}
	wg.Wait()
	if got, want := counter(), strconv.Itoa(4+workers*calls); got != want {
		t.Errorf("counter after concurrent retried transactions = %s, want %s", got, want)
	}
}

func TestDynamoDBQueryStartKeyBounds(t *testing.T) {
	ctx := testContext(t)
	d := mustStartDynamoDB(t, embedded.DynamoDBOptions{})
	c := dynamoClient(d)
	mustCreateTable(t, c, table)
	for _, sk := range []string{"AGENT#1", "AGENT#2", "AGENT#3", "CONV#1", "CONV#2"} {
		mustPutItem(t, c, table, item("TENANT#a", sk, map[string]types.AttributeValue{"email": &types.AttributeValueMemberS{Value: "a@x"}}))
	}
	names := map[string]string{"#pk": "PK", "#sk": "SK"}
	s := func(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }
	const (
		outside   = "The provided starting key is outside query boundaries based on provided conditions"
		predicate = "The provided starting key does not match the range key predicate"
		oneRow    = "The query can return at most one row and cannot be restarted"
	)
	cases := []struct {
		name   string
		cond   string
		values map[string]types.AttributeValue
		start  map[string]types.AttributeValue
		want   string // "" for accepted
	}{
		{"partition only, other partition", "#pk = :pk", map[string]types.AttributeValue{":pk": s("TENANT#a")}, key("TENANT#b", "AGENT#1"), outside},
		{"partition only, same partition", "#pk = :pk", map[string]types.AttributeValue{":pk": s("TENANT#a")}, key("TENANT#a", "ZZZ"), ""},
		{"begins_with, other prefix", "#pk = :pk AND begins_with(#sk, :p)", map[string]types.AttributeValue{":pk": s("TENANT#a"), ":p": s("AGENT#")}, key("TENANT#a", "CONV#1"), predicate},
		{"begins_with, other partition", "#pk = :pk AND begins_with(#sk, :p)", map[string]types.AttributeValue{":pk": s("TENANT#a"), ":p": s("AGENT#")}, key("TENANT#b", "AGENT#1"), oneRow},
		{"begins_with, inside", "#pk = :pk AND begins_with(#sk, :p)", map[string]types.AttributeValue{":pk": s("TENANT#a"), ":p": s("AGENT#")}, key("TENANT#a", "AGENT#1"), ""},
		{"between, above", "#pk = :pk AND #sk BETWEEN :lo AND :hi", map[string]types.AttributeValue{":pk": s("TENANT#a"), ":lo": s("AGENT#1"), ":hi": s("AGENT#2")}, key("TENANT#a", "AGENT#3"), predicate},
		{"between, below", "#pk = :pk and #sk between :lo and :hi", map[string]types.AttributeValue{":pk": s("TENANT#a"), ":lo": s("AGENT#2"), ":hi": s("AGENT#3")}, key("TENANT#a", "AGENT#1"), predicate},
		{"between, inside", "(#pk = :pk) AND (#sk BETWEEN :lo AND :hi)", map[string]types.AttributeValue{":pk": s("TENANT#a"), ":lo": s("AGENT#1"), ":hi": s("AGENT#3")}, key("TENANT#a", "AGENT#2"), ""},
		{"greater than, at bound", "#pk = :pk AND #sk > :x", map[string]types.AttributeValue{":pk": s("TENANT#a"), ":x": s("AGENT#2")}, key("TENANT#a", "AGENT#2"), predicate},
		{"value first, less than", "#pk = :pk AND :x > #sk", map[string]types.AttributeValue{":pk": s("TENANT#a"), ":x": s("AGENT#2")}, key("TENANT#a", "AGENT#3"), predicate},
		{"less or equal, inside", "#pk = :pk AND #sk <= :x", map[string]types.AttributeValue{":pk": s("TENANT#a"), ":x": s("AGENT#2")}, key("TENANT#a", "AGENT#1"), ""},
		{"sort key equal, other", "#sk = :x AND #pk = :pk", map[string]types.AttributeValue{":pk": s("TENANT#a"), ":x": s("AGENT#2")}, key("TENANT#a", "AGENT#1"), predicate},
	}
	for _, tc := range cases {
		used := map[string]string{}
		for k, v := range names {
			if strings.Contains(tc.cond, k) {
				used[k] = v
			}
		}
		_, err := c.Query(ctx, &dynamodb.QueryInput{
			TableName: aws.String(table), KeyConditionExpression: aws.String(tc.cond),
			ExpressionAttributeNames: used, ExpressionAttributeValues: tc.values, ExclusiveStartKey: tc.start,
		})
		if tc.want == "" {
			if err != nil {
				t.Errorf("%s: %v, want it accepted", tc.name, err)
			}
			continue
		}
		wantAPIError(t, tc.name, err, "ValidationException", tc.want)
	}

	// The legacy KeyConditions are checked the same way.
	_, err := c.Query(ctx, &dynamodb.QueryInput{
		TableName: aws.String(table),
		KeyConditions: map[string]types.Condition{
			"PK": {ComparisonOperator: types.ComparisonOperatorEq, AttributeValueList: []types.AttributeValue{s("TENANT#a")}},
			"SK": {ComparisonOperator: types.ComparisonOperatorBeginsWith, AttributeValueList: []types.AttributeValue{s("CONV#")}},
		},
		ExclusiveStartKey: key("TENANT#a", "AGENT#1"),
	})
	wantAPIError(t, "KeyConditions BEGINS_WITH, other prefix", err, "ValidationException", predicate)

	// Paging with the LastEvaluatedKey DynamoDB gave is never refused.
	var got []string
	var start map[string]types.AttributeValue
	for {
		out, err := c.Query(ctx, &dynamodb.QueryInput{
			TableName: aws.String(table), KeyConditionExpression: aws.String("#pk = :pk AND begins_with(#sk, :p)"),
			ExpressionAttributeNames: names, ExpressionAttributeValues: map[string]types.AttributeValue{":pk": s("TENANT#a"), ":p": s("AGENT#")},
			ExclusiveStartKey: start, Limit: aws.Int32(1),
		})
		if err != nil {
			t.Fatalf("paging: %v", err)
		}
		for _, it := range out.Items {
			got = append(got, it["SK"].(*types.AttributeValueMemberS).Value)
		}
		if len(out.LastEvaluatedKey) == 0 {
			break
		}
		start = out.LastEvaluatedKey
	}
	if strings.Join(got, ",") != "AGENT#1,AGENT#2,AGENT#3" {
		t.Errorf("paged query = %v, want AGENT#1..3", got)
	}

	// A global secondary index's own key is the one checked.
	_, err = c.UpdateTable(ctx, &dynamodb.UpdateTableInput{
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
	_, err = c.Query(ctx, &dynamodb.QueryInput{
		TableName: aws.String(table), IndexName: aws.String("byEmail"),
		KeyConditionExpression:    aws.String("email = :e"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":e": s("a@x")},
		ExclusiveStartKey:         merge(key("TENANT#a", "AGENT#1"), map[string]types.AttributeValue{"email": s("b@x")}),
	})
	wantAPIError(t, "GSI query with a start key of another index partition", err, "ValidationException", outside)
}

// TestDynamoDBRulesKeepSnapshots checks that the rules do not get in the way of
// a snapshot's restore, and that a restored table's schema is known to them.
func TestDynamoDBRulesKeepSnapshots(t *testing.T) {
	path := t.TempDir() + "/dynamodb.json"
	d := mustStartDynamoDB(t, embedded.DynamoDBOptions{SnapshotPath: path})
	c := dynamoClient(d)
	mustCreateTable(t, c, table)
	mustPutItem(t, c, table, bigItem("TENANT#a", "FULL", maxItem, nil))
	mustClose(t, d)

	d2 := mustStartDynamoDB(t, embedded.DynamoDBOptions{SnapshotPath: path})
	c2 := dynamoClient(d2)
	if got := mustGetItem(t, c2, table, "TENANT#a", "FULL"); got == nil {
		t.Fatalf("a 400 KB item did not survive a restart")
	}
	_, err := c2.UpdateItem(context.Background(), &dynamodb.UpdateItemInput{
		TableName: aws.String(table), Key: key("TENANT#a", "FULL"),
		UpdateExpression:          aws.String("SET x = :x"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":x": &types.AttributeValueMemberBOOL{Value: true}},
	})
	wantAPIError(t, "UpdateItem past 400 KB after a restart", err, "ValidationException", "Item size to update has exceeded the maximum allowed size")
}

// TestDynamoDBFilteredQueryCursorStaysInRange pages through a prefix with a
// filter, as the platform's filtered lists do, in both directions. minidyn counts
// items outside the prefix (before or after it, in this partition or another)
// toward the Limit and answers their key as LastEvaluatedKey; DynamoDB never
// gives a cursor outside the key condition, so the embedded server must not
// either (its next page would be refused), nor lose the items of the range.
func TestDynamoDBFilteredQueryCursorStaysInRange(t *testing.T) {
	ctx := testContext(t)
	d := mustStartDynamoDB(t, embedded.DynamoDBOptions{})
	c := dynamoClient(d)
	mustCreateTable(t, c, table)
	// Items sort before the prefix (in this partition and in another one) and
	// after it, so that minidyn's cursor falls on either side of the range.
	for _, k := range [][2]string{
		{"TENANT#0", "CONV#1"}, {"TENANT#0", "CONV#2"}, {"TENANT#0", "CONV#3"},
		{"TENANT#a", "AGENT#1"}, {"TENANT#a", "AGENT#2"}, {"TENANT#a", "AGENT#3"}, {"TENANT#a", "AGENT#4"},
		{"TENANT#a", "CONV#1"}, {"TENANT#a", "CONV#2"}, {"TENANT#a", "CONV#3"},
		{"TENANT#a", "EXEC#1"}, {"TENANT#a", "EXEC#2"}, {"TENANT#a", "EXEC#3"}, {"TENANT#b", "CONV#1"},
	} {
		owner := "agt_other"
		if k[1] != "CONV#2" {
			owner = "agt_1"
		}
		mustPutItem(t, c, table, item(k[0], k[1], map[string]types.AttributeValue{"agent_id": &types.AttributeValueMemberS{Value: owner}}))
	}
	in := &dynamodb.QueryInput{
		TableName:                aws.String(table),
		KeyConditionExpression:   aws.String("#pk = :pk AND begins_with(#sk, :prefix)"),
		FilterExpression:         aws.String("agent_id = :aid"),
		ExpressionAttributeNames: map[string]string{"#pk": "PK", "#sk": "SK"},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk": &types.AttributeValueMemberS{Value: "TENANT#a"}, ":prefix": &types.AttributeValueMemberS{Value: "CONV#"},
			":aid": &types.AttributeValueMemberS{Value: "agt_1"},
		},
		Limit: aws.Int32(2),
	}
	for _, forward := range []bool{true, false} {
		in.ScanIndexForward = aws.Bool(forward)
		in.ExclusiveStartKey = nil
		var got []string
		for page := 0; ; page++ {
			if page > 10 {
				t.Fatalf("pagination does not end")
			}
			out, err := c.Query(ctx, in)
			if err != nil {
				t.Fatalf("page %d: %v", page, err)
			}
			for _, it := range out.Items {
				got = append(got, it["SK"].(*types.AttributeValueMemberS).Value)
			}
			if len(out.Items) > 2 {
				t.Errorf("page %d: %d items, more than the Limit 2", page, len(out.Items))
			}
			if len(out.LastEvaluatedKey) == 0 {
				break
			}
			lek := out.LastEvaluatedKey
			if pk, sk := lek["PK"].(*types.AttributeValueMemberS).Value, lek["SK"].(*types.AttributeValueMemberS).Value; pk != "TENANT#a" || !strings.HasPrefix(sk, "CONV#") {
				t.Errorf("page %d (forward %v): LastEvaluatedKey = %s/%s, outside TENANT#a/CONV#", page, forward, pk, sk)
			}
			in.ExclusiveStartKey = lek
		}
		if !forward {
			slices.Reverse(got)
		}
		if strings.Join(got, ",") != "CONV#1,CONV#3" {
			t.Errorf("filtered pages = %v, want [CONV#1 CONV#3]", got)
		}
	}
}

// TestItemSize checks the item size rules against DynamoDB's documentation.
func TestItemSize(t *testing.T) {
	str := func(s string) *server.AttributeValue { return &server.AttributeValue{S: &s} }
	n := func(s string) *server.AttributeValue { return &server.AttributeValue{N: &s} }
	yes := true
	type item = map[string]*server.AttributeValue
	cases := []struct {
		name string
		item item
		want int
	}{
		{"string: name and UTF-8 bytes", item{"PK": str("TENANT#ä")}, 2 + 9},
		{"number: a byte per two significant digits, plus one", item{"n": n("12345")}, 1 + 3 + 1},
		{"number: leading and trailing zeroes trimmed", item{"n": n("-0012.3400")}, 1 + 2 + 1},
		{"number: zero", item{"n": n("0")}, 1 + 1},
		{"binary: raw bytes", item{"b": {B: []byte{0, 1, 2, 3}}}, 1 + 4},
		{"Boolean and null: one byte", item{"t": {BOOL: &yes}, "u": {NULL: &yes}}, 2 + 2},
		{"empty list: 3 bytes", item{"l": {L: []*server.AttributeValue{}}}, 1 + 3},
		{"list: 3 bytes, and one per element", item{"l": {L: []*server.AttributeValue{str("ab"), n("1")}}}, 1 + 3 + (2 + 1) + (2 + 1)},
		{"map: names too", item{"m": {M: map[string]*server.AttributeValue{"k": str("v")}}}, 1 + 3 + (1 + 1 + 1)},
		{"string set", item{"s": {SS: []*string{new("a"), new("bc")}}}, 1 + 3},
	}
	for _, c := range cases {
		if got := embedded.ItemSize(c.item); got != c.want {
			t.Errorf("%s: %d bytes, want %d", c.name, got, c.want)
		}
	}
}
