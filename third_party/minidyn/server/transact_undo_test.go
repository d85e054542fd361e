package server

import (
	"context"
	"errors"
	"reflect"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

func sv(s string) *AttributeValue { return &AttributeValue{S: aws.String(s)} }
func nv(n string) *AttributeValue { return &AttributeValue{N: aws.String(n)} }

// newUndoTable creates table "t" keyed by PK and SK with a global index on
// G and SK.
func newUndoTable(t *testing.T, c *Client) {
	t.Helper()

	_, err := c.CreateTable(context.Background(), &CreateTableInput{
		TableName:   aws.String("t"),
		BillingMode: ddbtypes.BillingModePayPerRequest,
		AttributeDefinitions: []ddbtypes.AttributeDefinition{
			{AttributeName: aws.String("PK"), AttributeType: ddbtypes.ScalarAttributeTypeS},
			{AttributeName: aws.String("SK"), AttributeType: ddbtypes.ScalarAttributeTypeS},
			{AttributeName: aws.String("G"), AttributeType: ddbtypes.ScalarAttributeTypeS},
		},
		KeySchema: []ddbtypes.KeySchemaElement{
			{AttributeName: aws.String("PK"), KeyType: ddbtypes.KeyTypeHash},
			{AttributeName: aws.String("SK"), KeyType: ddbtypes.KeyTypeRange},
		},
		GlobalSecondaryIndexes: []ddbtypes.GlobalSecondaryIndex{{
			IndexName: aws.String("byG"),
			KeySchema: []ddbtypes.KeySchemaElement{
				{AttributeName: aws.String("G"), KeyType: ddbtypes.KeyTypeHash},
				{AttributeName: aws.String("SK"), KeyType: ddbtypes.KeyTypeRange},
			},
			Projection: &ddbtypes.Projection{ProjectionType: ddbtypes.ProjectionTypeAll},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
}

// tableState is everything a reader can see of table "t": a scan of the
// table and of its index, and a query of each index partition.
func tableState(t *testing.T, c *Client) []any {
	t.Helper()

	ctx := context.Background()

	scan, err := c.Scan(ctx, &ScanInput{TableName: aws.String("t")})
	if err != nil {
		t.Fatal(err)
	}

	scanIdx, err := c.Scan(ctx, &ScanInput{TableName: aws.String("t"), IndexName: aws.String("byG")})
	if err != nil {
		t.Fatal(err)
	}

	state := []any{scan.Items, scanIdx.Items}

	for _, g := range []string{"x", "y"} {
		q, err := c.Query(ctx, &QueryInput{
			TableName: aws.String("t"), IndexName: aws.String("byG"),
			KeyConditionExpression:    aws.String("G = :g"),
			ExpressionAttributeValues: map[string]*AttributeValue{":g": sv(g)},
		})
		if err != nil {
			t.Fatal(err)
		}

		state = append(state, q.Items)
	}

	return state
}

// TestTransactWriteFailureRestoresTouchedItems runs a transaction that puts a
// new item, replaces one, updates one (moving it in the index), deletes one
// and then fails its last condition check: the table and its index must be
// exactly as before, and the cancellation must name the failed check with
// the item it saw.
func TestTransactWriteFailureRestoresTouchedItems(t *testing.T) {
	ctx := context.Background()
	c := NewClient()
	newUndoTable(t, c)

	seed := []map[string]*AttributeValue{
		{"PK": sv("p"), "SK": sv("a"), "G": sv("x"), "n": nv("1")},
		{"PK": sv("p"), "SK": sv("b"), "n": nv("2")},
		{"PK": sv("p"), "SK": sv("c"), "G": sv("y"), "n": nv("3")},
		{"PK": sv("q"), "SK": sv("d"), "G": sv("x"), "n": nv("4")},
		{"PK": sv("q"), "SK": sv("e"), "n": nv("5")},
	}
	for _, item := range seed {
		if _, err := c.PutItem(ctx, &PutItemInput{TableName: aws.String("t"), Item: item}); err != nil {
			t.Fatal(err)
		}
	}

	before := tableState(t, c)

	_, err := c.TransactWriteItems(ctx, &TransactWriteItemsInput{TransactItems: []TransactWriteItem{
		{Put: &Put{TableName: aws.String("t"), Item: map[string]*AttributeValue{"PK": sv("p"), "SK": sv("new"), "G": sv("x")}}},
		{Put: &Put{TableName: aws.String("t"), Item: map[string]*AttributeValue{"PK": sv("p"), "SK": sv("b"), "G": sv("y"), "n": nv("20")}}},
		{Update: &Update{TableName: aws.String("t"), Key: map[string]*AttributeValue{"PK": sv("p"), "SK": sv("a")},
			UpdateExpression: aws.String("SET G = :y, n = n + :one"), ExpressionAttributeValues: map[string]*AttributeValue{":y": sv("y"), ":one": nv("1")}}},
		{Update: &Update{TableName: aws.String("t"), Key: map[string]*AttributeValue{"PK": sv("p"), "SK": sv("c")},
			UpdateExpression: aws.String("REMOVE G")}},
		{Delete: &Delete{TableName: aws.String("t"), Key: map[string]*AttributeValue{"PK": sv("q"), "SK": sv("d")}}},
		{ConditionCheck: &ConditionCheck{TableName: aws.String("t"), Key: map[string]*AttributeValue{"PK": sv("q"), "SK": sv("e")},
			ConditionExpression: aws.String("n > :ten"), ExpressionAttributeValues: map[string]*AttributeValue{":ten": nv("10")},
			ReturnValuesOnConditionCheckFailure: ddbtypes.ReturnValuesOnConditionCheckFailureAllOld}},
	}})

	var canceled *ddbtypes.TransactionCanceledException
	if !errors.As(err, &canceled) {
		t.Fatalf("TransactWriteItems: err = %v, want TransactionCanceledException", err)
	}

	if len(canceled.CancellationReasons) != 6 {
		t.Fatalf("%d cancellation reasons, want 6", len(canceled.CancellationReasons))
	}

	for i, r := range canceled.CancellationReasons[:5] {
		if aws.ToString(r.Code) != "None" {
			t.Errorf("reason %d: code %q, want None", i, aws.ToString(r.Code))
		}
	}

	last := canceled.CancellationReasons[5]
	if aws.ToString(last.Code) != "ConditionalCheckFailed" {
		t.Errorf("reason 5: code %q, want ConditionalCheckFailed", aws.ToString(last.Code))
	}

	if n, ok := last.Item["n"].(*ddbtypes.AttributeValueMemberN); !ok || n.Value != "5" {
		t.Errorf("reason 5: item %v, want the checked item (n = 5)", last.Item)
	}

	if after := tableState(t, c); !reflect.DeepEqual(after, before) {
		t.Errorf("after the failed transaction:\n got %v\nwant %v", after, before)
	}

	// The same transaction without the failing check applies in full.
	_, err = c.TransactWriteItems(ctx, &TransactWriteItemsInput{TransactItems: []TransactWriteItem{
		{Update: &Update{TableName: aws.String("t"), Key: map[string]*AttributeValue{"PK": sv("p"), "SK": sv("a")},
			UpdateExpression: aws.String("SET G = :y"), ExpressionAttributeValues: map[string]*AttributeValue{":y": sv("y")}}},
		{Delete: &Delete{TableName: aws.String("t"), Key: map[string]*AttributeValue{"PK": sv("q"), "SK": sv("d")}}},
	}})
	if err != nil {
		t.Fatal(err)
	}

	q, err := c.Query(ctx, &QueryInput{TableName: aws.String("t"), IndexName: aws.String("byG"),
		KeyConditionExpression: aws.String("G = :g"), ExpressionAttributeValues: map[string]*AttributeValue{":g": sv("x")}})
	if err != nil {
		t.Fatal(err)
	}

	if len(q.Items) != 0 {
		t.Errorf("index partition x after the transaction: %v, want empty", q.Items)
	}
}
