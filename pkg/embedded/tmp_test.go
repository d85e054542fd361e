package embedded_test

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/bulkhead-dev/bulkhead/pkg/embedded"
)

func TestTmpEmpty(t *testing.T) {
	ctx := testContext(t)
	d := mustStartDynamoDB(t, embedded.DynamoDBOptions{})
	c := dynamoClient(d)
	mustCreateTable(t, c, table)
	mustPutItem(t, c, table, item("TENANT#a", "EMPTY", map[string]types.AttributeValue{
		"list": &types.AttributeValueMemberL{Value: []types.AttributeValue{}},
		"map":  &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{}},
	}))
	out, err := c.Query(ctx, &dynamodb.QueryInput{
		TableName:              aws.String(table),
		KeyConditionExpression: aws.String("PK = :pk AND begins_with(SK, :agent)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk":    &types.AttributeValueMemberS{Value: "TENANT#a"},
			":agent": &types.AttributeValueMemberS{Value: "AGENT#"},
		},
	})
	t.Logf("query before restart: %v %v", out, err)
	_, err = c.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: aws.String(table), Key: key("TENANT#a", "EMPTY"),
		UpdateExpression: aws.String("SET #l = list_append(#l, :x)"), ExpressionAttributeNames: map[string]string{"#l": "list"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":x": &types.AttributeValueMemberL{Value: []types.AttributeValue{&types.AttributeValueMemberS{Value: "a"}}}}})
	t.Logf("list_append: %v", err)
	t.Logf("%#v", mustGetItem(t, c, table, "TENANT#a", "EMPTY")["list"])
}
