package embedded

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/bulkhead-dev/bulkhead/pkg/awsclients"
)

// TestSweepSparesItemsRewrittenAfterListing: an item rewritten, between the
// listing of expired keys and their deletion, with a later expiry or without
// one, is kept; the others listed are deleted.
func TestSweepSparesItemsRewrittenAfterListing(t *testing.T) {
	const now = 1_800_000_000
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	d, err := StartDynamoDB(ctx, DynamoDBOptions{Now: func() time.Time { return time.Unix(now, 0) }, TTLSweepEvery: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close(context.Background())
	c := awsclients.NewDynamoDB(awsclients.Static(""), d.URL())
	if _, err := c.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:            aws.String("leases"),
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("PK"), AttributeType: types.ScalarAttributeTypeS}},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("PK"), KeyType: types.KeyTypeHash}},
		BillingMode:          types.BillingModePayPerRequest,
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{TableName: aws.String("leases"),
		TimeToLiveSpecification: &types.TimeToLiveSpecification{AttributeName: aws.String("ttl"), Enabled: aws.Bool(true)}}); err != nil {
		t.Fatal(err)
	}
	put := func(pk string, ttl int64) {
		t.Helper()
		it := map[string]types.AttributeValue{"PK": &types.AttributeValueMemberS{Value: pk}}
		if ttl != 0 {
			it["ttl"] = &types.AttributeValueMemberN{Value: strconv.FormatInt(ttl, 10)}
		}
		if _, err := c.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String("leases"), Item: it}); err != nil {
			t.Fatal(err)
		}
	}
	for _, pk := range []string{"renewed", "unlimited", "gone", "expired"} {
		put(pk, now-10)
	}

	keys, err := d.expiredKeys("leases", now)
	if err != nil || len(keys) != 4 {
		t.Fatalf("expiredKeys = %d keys, %v; want 4", len(keys), err)
	}
	put("renewed", now+3600)
	put("unlimited", 0)
	if _, err := c.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String("leases"),
		Key: map[string]types.AttributeValue{"PK": &types.AttributeValueMemberS{Value: "gone"}}}); err != nil {
		t.Fatal(err)
	}

	n, err := d.deleteExpired(ctx, "leases", "ttl", now, keys)
	if err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Errorf("deleteExpired deleted %d items, want 1 (expired)", n)
	}
	out, err := c.Scan(ctx, &dynamodb.ScanInput{TableName: aws.String("leases")})
	if err != nil {
		t.Fatal(err)
	}
	left := map[string]bool{}
	for _, it := range out.Items {
		left[it["PK"].(*types.AttributeValueMemberS).Value] = true
	}
	if len(left) != 2 || !left["renewed"] || !left["unlimited"] {
		t.Errorf("items left: %v, want renewed and unlimited", left)
	}
}
