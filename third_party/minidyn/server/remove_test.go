package server

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// TestRemoveTakesAttributesOut checks that REMOVE takes top-level attributes
// (named directly or through ExpressionAttributeNames, in UpdateItem and in
// a transaction) out of the stored item, as DynamoDB does.
func TestRemoveTakesAttributesOut(t *testing.T) {
	ctx := context.Background()
	c := NewClient()
	newUndoTable(t, c)

	key := map[string]*AttributeValue{"PK": sv("p"), "SK": sv("a")}
	item := map[string]*AttributeValue{"PK": sv("p"), "SK": sv("a"), "x": nv("1"), "lease#e1": {M: map[string]*AttributeValue{"n": nv("1")}}, "y": nv("2"), "z": nv("3")}
	if _, err := c.PutItem(ctx, &PutItemInput{TableName: aws.String("t"), Item: item}); err != nil {
		t.Fatal(err)
	}

	if _, err := c.UpdateItem(ctx, &UpdateItemInput{TableName: aws.String("t"), Key: key,
		UpdateExpression:         aws.String("REMOVE x, #l ADD y :one"),
		ExpressionAttributeNames: map[string]string{"#l": "lease#e1"}, ExpressionAttributeValues: map[string]*AttributeValue{":one": nv("1")}}); err != nil {
		t.Fatal(err)
	}

	_, err := c.TransactWriteItems(ctx, &TransactWriteItemsInput{TransactItems: []TransactWriteItem{
		{Update: &Update{TableName: aws.String("t"), Key: key, UpdateExpression: aws.String("REMOVE #z"),
			ExpressionAttributeNames: map[string]string{"#z": "z"}}},
	}})
	if err != nil {
		t.Fatal(err)
	}

	out, err := c.GetItem(ctx, &GetItemInput{TableName: aws.String("t"), Key: key})
	if err != nil {
		t.Fatal(err)
	}

	for _, name := range []string{"x", "lease#e1", "z"} {
		if _, ok := out.Item[name]; ok {
			t.Errorf("%s is still in the item after REMOVE: %v", name, out.Item)
		}
	}

	if y := out.Item["y"]; y == nil || aws.ToString(y.N) != "3" {
		t.Errorf("y = %v, want 3", y)
	}
}
