package embedded_test

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/bulkhead-dev/bulkhead/pkg/awsclients"
	"github.com/bulkhead-dev/bulkhead/pkg/embedded"
)

// testContext is a context that ends with the test, bounded so that a hung request
// fails the test instead of stalling the suite.
func testContext(tb testing.TB) context.Context {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	tb.Cleanup(cancel)
	return ctx
}

// mustStartDynamoDB starts a server that is closed when the test ends (Close is
// idempotent, so tests may also close it themselves).
func mustStartDynamoDB(tb testing.TB, opts embedded.DynamoDBOptions) *embedded.DynamoDB {
	tb.Helper()
	d, err := embedded.StartDynamoDB(testContext(tb), opts)
	if err != nil {
		tb.Fatalf("StartDynamoDB(%+v): %v", opts, err)
	}
	tb.Cleanup(func() { _ = d.Close(context.Background()) })
	return d
}

// mustClose closes a server and fails the test if that fails.
func mustClose(tb testing.TB, c interface{ Close(context.Context) error }) {
	tb.Helper()
	if err := c.Close(testContext(tb)); err != nil {
		tb.Fatalf("Close: %v", err)
	}
}

// dynamoClient is a real SDK client for d, built as the platform builds it.
func dynamoClient(d *embedded.DynamoDB, optFns ...func(*dynamodb.Options)) *dynamodb.Client {
	c := awsclients.NewDynamoDB(awsclients.Static(""), d.URL())
	if len(optFns) == 0 {
		return c
	}
	return dynamodb.New(c.Options(), optFns...)
}

// s3Client is a real SDK client for s, built as the platform builds it.
func s3Client(s *embedded.S3) *s3.Client {
	return awsclients.NewS3(awsclients.Static(""), s.URL())
}

// mustCreateTable creates a table keyed by string attributes PK and SK, like the
// platform's single table.
func mustCreateTable(tb testing.TB, c *dynamodb.Client, name string) {
	tb.Helper()
	_, err := c.CreateTable(testContext(tb), &dynamodb.CreateTableInput{
		TableName: aws.String(name),
		AttributeDefinitions: []types.AttributeDefinition{
			{AttributeName: aws.String("PK"), AttributeType: types.ScalarAttributeTypeS},
			{AttributeName: aws.String("SK"), AttributeType: types.ScalarAttributeTypeS},
		},
		KeySchema: []types.KeySchemaElement{
			{AttributeName: aws.String("PK"), KeyType: types.KeyTypeHash},
			{AttributeName: aws.String("SK"), KeyType: types.KeyTypeRange},
		},
		BillingMode: types.BillingModePayPerRequest,
	})
	if err != nil {
		tb.Fatalf("CreateTable %s: %v", name, err)
	}
}

// key is the primary key of the item (pk, sk).
func key(pk, sk string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		"PK": &types.AttributeValueMemberS{Value: pk},
		"SK": &types.AttributeValueMemberS{Value: sk},
	}
}

// item is the item (pk, sk) with extra attributes.
func item(pk, sk string, attrs map[string]types.AttributeValue) map[string]types.AttributeValue {
	it := key(pk, sk)
	for k, v := range attrs {
		it[k] = v
	}
	return it
}

func mustPutItem(tb testing.TB, c *dynamodb.Client, table string, it map[string]types.AttributeValue) {
	tb.Helper()
	if _, err := c.PutItem(testContext(tb), &dynamodb.PutItemInput{TableName: aws.String(table), Item: it}); err != nil {
		tb.Fatalf("PutItem into %s: %v", table, err)
	}
}

func mustGetItem(tb testing.TB, c *dynamodb.Client, table, pk, sk string) map[string]types.AttributeValue {
	tb.Helper()
	out, err := c.GetItem(testContext(tb), &dynamodb.GetItemInput{TableName: aws.String(table), Key: key(pk, sk)})
	if err != nil {
		tb.Fatalf("GetItem %s/%s from %s: %v", pk, sk, table, err)
	}
	return out.Item
}

// numberAttr returns the number attribute name of it as a string, or "" when
// it is missing.
func numberAttr(it map[string]types.AttributeValue, name string) string {
	n, ok := it[name].(*types.AttributeValueMemberN)
	if !ok {
		return ""
	}
	return n.Value
}
