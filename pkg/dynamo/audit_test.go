package dynamo_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/bulkhead-dev/bulkhead/pkg/awsclients"
	"github.com/bulkhead-dev/bulkhead/pkg/bulkhead"
	"github.com/bulkhead-dev/bulkhead/pkg/dynamo"
	"github.com/bulkhead-dev/bulkhead/pkg/embedded"
)

// TestCreateTableAddsTheAuditIndexToAnOlderTable: a table made before the
// audit log (no index) gets the index when the platform starts on it, and
// the operator's listing across tenants then works.
func TestCreateTableAddsTheAuditIndexToAnOlderTable(t *testing.T) {
	ctx := context.Background()
	d, err := embedded.StartDynamoDB(ctx, embedded.DynamoDBOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close(context.Background()) })
	client := awsclients.NewDynamoDB(awsclients.Static(""), d.URL())
	_, err = client.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName: aws.String("old"),
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
		t.Fatal(err)
	}
	if err := dynamo.CreateTable(ctx, client, "old"); err != nil {
		t.Fatalf("create table over the older one: %v", err)
	}
	desc, err := client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String("old")})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(desc.Table.GlobalSecondaryIndexes); n != 1 || aws.ToString(desc.Table.GlobalSecondaryIndexes[0].IndexName) != dynamo.AuditIndex {
		t.Fatalf("indexes after CreateTable: %+v", desc.Table.GlobalSecondaryIndexes)
	}
	s := dynamo.New(client, "old", func() time.Time { return t0 })
	if err := s.CreateTenant(ctx, bulkhead.Tenant{ID: "tn_a", Name: "a", Tier: bulkhead.Starter, Status: bulkhead.TenantActive, CreatedAt: t0, UpdatedAt: t0},
		bulkhead.APIKey{ID: "key_a", TenantID: "tn_a", Hash: "h", Status: bulkhead.KeyActive, CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	page, err := s.AllAuditEntries(ctx, dynamo.AuditQuery{Since: t0.Add(-time.Hour), Until: t0.Add(time.Hour)}, "", 10)
	if err != nil || len(page.Items) != 1 || page.Items[0].Action != bulkhead.ActionTenantCreated {
		t.Fatalf("listing across tenants: %+v, %v", page, err)
	}
	if e := page.Items[0]; e.Actor.Type != bulkhead.ActorPlatform || e.TenantID != "tn_a" || e.Changes["key_id"].After != "key_a" {
		t.Errorf("entry without a request's source: %+v", e)
	}
}

// TestAuditRetention: entries expire (TTL) after the store's retention.
func TestAuditRetention(t *testing.T) {
	ctx := context.Background()
	d, err := embedded.StartDynamoDB(ctx, embedded.DynamoDBOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close(context.Background()) })
	client := awsclients.NewDynamoDB(awsclients.Static(""), d.URL())
	if err := dynamo.CreateTable(ctx, client, "t"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		store *dynamo.Store
		want  time.Duration
	}{
		{dynamo.New(client, "t", func() time.Time { return t0 }), dynamo.DefaultAuditRetention},
		{dynamo.New(client, "t", func() time.Time { return t0 }).WithAuditRetention(30 * 24 * time.Hour), 30 * 24 * time.Hour},
	} {
		ts := c.store.Tenant("tn_r")
		if err := ts.RecordQuotaRefusal(ctx, "requests", t0.Add(c.want)); err != nil {
			t.Fatal(err)
		}
		out, err := client.Query(ctx, &dynamodb.QueryInput{TableName: aws.String("t"),
			KeyConditionExpression:    aws.String("PK = :pk AND begins_with(SK, :a)"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":pk": &types.AttributeValueMemberS{Value: "TENANT#tn_r"}, ":a": &types.AttributeValueMemberS{Value: "AUDIT#" + t0.Add(c.want).Format("2006-01-02T15")}}})
		if err != nil || len(out.Items) != 1 {
			t.Fatalf("the refusal's entry: %v %v", out, err)
		}
		exp, _ := out.Items[0]["expires_at"].(*types.AttributeValueMemberN)
		if want := t0.Add(2 * c.want).Unix(); exp == nil || exp.Value != strconv.FormatInt(want, 10) {
			t.Errorf("expires_at = %v, want %d (retention %s)", exp, want, c.want)
		}
	}
}
