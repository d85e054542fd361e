package embedded_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"

	"github.com/bulkhead-dev/bulkhead/pkg/embedded"
)

// TestListTablesPaginates: ListTables answers every table once, in ascending
// order, in pages of Limit linked by LastEvaluatedTableName, and forgets a
// deleted table.
func TestListTablesPaginates(t *testing.T) {
	d := mustStartDynamoDB(t, embedded.DynamoDBOptions{})
	c := dynamoClient(d)
	ctx := testContext(t)
	var want []string
	for _, name := range []string{"delta", "alpha", "echo", "charlie", "bravo"} {
		mustCreateTable(t, c, name)
		want = append(want, name)
	}
	slices.Sort(want)

	first, err := c.ListTables(ctx, &dynamodb.ListTablesInput{Limit: aws.Int32(2)})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(first.TableNames, want[:2]) || aws.ToString(first.LastEvaluatedTableName) != want[1] {
		t.Fatalf("first page = %v, last %q; want %v, last %q", first.TableNames, aws.ToString(first.LastEvaluatedTableName), want[:2], want[1])
	}

	var got []string
	pages := 0
	for p := dynamodb.NewListTablesPaginator(c, &dynamodb.ListTablesInput{Limit: aws.Int32(2)}); p.HasMorePages(); {
		out, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(out.TableNames) > 2 {
			t.Errorf("page of %d names with Limit 2", len(out.TableNames))
		}
		got = append(got, out.TableNames...)
		pages++
	}
	if !slices.Equal(got, want) || pages != 3 {
		t.Errorf("paginated ListTables = %v in %d pages, want %v in 3", got, pages, want)
	}

	if _, err := c.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String("charlie")}); err != nil {
		t.Fatal(err)
	}
	all, err := c.ListTables(ctx, &dynamodb.ListTablesInput{ExclusiveStartTableName: aws.String("alpha")})
	if err != nil {
		t.Fatal(err)
	}
	if w := []string{"bravo", "delta", "echo"}; !slices.Equal(all.TableNames, w) || all.LastEvaluatedTableName != nil {
		t.Errorf("ListTables after alpha, charlie deleted = %v (last %v), want %v and no last", all.TableNames, all.LastEvaluatedTableName, w)
	}

	_, err = c.ListTables(ctx, &dynamodb.ListTablesInput{Limit: aws.Int32(101)})
	if code := apiErrorCode(err); code != "ValidationException" {
		t.Errorf("ListTables Limit 101: %v (code %q), want ValidationException", err, code)
	}
}

// TestDescribeTableIsActive: DescribeTable answers ACTIVE with the table's key
// schema, attribute definitions, billing mode, item count and indexes, so the
// SDK's TableExists waiter succeeds.
func TestDescribeTableIsActive(t *testing.T) {
	d := mustStartDynamoDB(t, embedded.DynamoDBOptions{})
	c := dynamoClient(d)
	ctx := testContext(t)
	_, err := c.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName: aws.String("things"),
		AttributeDefinitions: []types.AttributeDefinition{
			{AttributeName: aws.String("PK"), AttributeType: types.ScalarAttributeTypeS},
			{AttributeName: aws.String("SK"), AttributeType: types.ScalarAttributeTypeS},
			{AttributeName: aws.String("GSI1PK"), AttributeType: types.ScalarAttributeTypeS},
			{AttributeName: aws.String("N"), AttributeType: types.ScalarAttributeTypeN},
		},
		KeySchema: []types.KeySchemaElement{
			{AttributeName: aws.String("PK"), KeyType: types.KeyTypeHash},
			{AttributeName: aws.String("SK"), KeyType: types.KeyTypeRange},
		},
		GlobalSecondaryIndexes: []types.GlobalSecondaryIndex{{
			IndexName: aws.String("GSI1"),
			KeySchema: []types.KeySchemaElement{
				{AttributeName: aws.String("GSI1PK"), KeyType: types.KeyTypeHash},
				{AttributeName: aws.String("N"), KeyType: types.KeyTypeRange},
			},
			Projection: &types.Projection{ProjectionType: types.ProjectionTypeKeysOnly},
		}},
		BillingMode: types.BillingModePayPerRequest,
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		it := item("P", fmt.Sprint(i), nil)
		if i < 2 {
			it["GSI1PK"] = &types.AttributeValueMemberS{Value: "G"}
			it["N"] = &types.AttributeValueMemberN{Value: fmt.Sprint(i)}
		}
		if _, err := c.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String("things"), Item: it}); err != nil {
			t.Fatal(err)
		}
	}

	waiter := dynamodb.NewTableExistsWaiter(c, func(o *dynamodb.TableExistsWaiterOptions) {
		o.MinDelay, o.MaxDelay = time.Millisecond, time.Millisecond
	})
	out, err := waiter.WaitForOutput(ctx, &dynamodb.DescribeTableInput{TableName: aws.String("things")}, 30*time.Second)
	if err != nil {
		t.Fatalf("TableExists waiter: %v", err)
	}
	tb := out.Table
	if tb.TableStatus != types.TableStatusActive || aws.ToString(tb.TableName) != "things" || aws.ToInt64(tb.ItemCount) != 3 {
		t.Errorf("table = %s %q with %d items, want ACTIVE things with 3", tb.TableStatus, aws.ToString(tb.TableName), aws.ToInt64(tb.ItemCount))
	}
	if got := keys(tb.KeySchema); got != "PK:HASH SK:RANGE" {
		t.Errorf("key schema = %s", got)
	}
	var attrs []string
	for _, a := range tb.AttributeDefinitions {
		attrs = append(attrs, aws.ToString(a.AttributeName)+":"+string(a.AttributeType))
	}
	if got := strings.Join(attrs, " "); got != "PK:S SK:S GSI1PK:S N:N" {
		t.Errorf("attribute definitions = %s", got)
	}
	if tb.BillingModeSummary == nil || tb.BillingModeSummary.BillingMode != types.BillingModePayPerRequest {
		t.Errorf("billing mode summary = %+v, want PAY_PER_REQUEST", tb.BillingModeSummary)
	}
	if !strings.HasSuffix(aws.ToString(tb.TableArn), ":table/things") || tb.CreationDateTime == nil || tb.CreationDateTime.IsZero() {
		t.Errorf("arn %q, created %v", aws.ToString(tb.TableArn), tb.CreationDateTime)
	}
	if len(tb.GlobalSecondaryIndexes) != 1 {
		t.Fatalf("GSIs = %+v, want GSI1", tb.GlobalSecondaryIndexes)
	}
	g := tb.GlobalSecondaryIndexes[0]
	if aws.ToString(g.IndexName) != "GSI1" || g.IndexStatus != types.IndexStatusActive || keys(g.KeySchema) != "GSI1PK:HASH N:RANGE" ||
		g.Projection == nil || g.Projection.ProjectionType != types.ProjectionTypeKeysOnly || aws.ToInt64(g.ItemCount) != 2 {
		t.Errorf("GSI1 = %s %s %s %+v items %d", aws.ToString(g.IndexName), g.IndexStatus, keys(g.KeySchema), g.Projection, aws.ToInt64(g.ItemCount))
	}

	_, err = c.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String("nope")})
	var notFound *types.ResourceNotFoundException
	if !errors.As(err, &notFound) {
		t.Errorf("DescribeTable of a missing table: %v, want ResourceNotFoundException", err)
	}
}

// TestDescribeTableAfterRestart: a table restored from the snapshot is described
// with the attribute definitions its CreateTable declared.
func TestDescribeTableAfterRestart(t *testing.T) {
	path := t.TempDir() + "/dynamodb.json"
	d := mustStartDynamoDB(t, embedded.DynamoDBOptions{SnapshotPath: path})
	mustCreateTable(t, dynamoClient(d), "kept")
	mustClose(t, d)

	d = mustStartDynamoDB(t, embedded.DynamoDBOptions{SnapshotPath: path})
	out, err := dynamoClient(d).DescribeTable(testContext(t), &dynamodb.DescribeTableInput{TableName: aws.String("kept")})
	if err != nil {
		t.Fatal(err)
	}
	if out.Table.TableStatus != types.TableStatusActive || len(out.Table.AttributeDefinitions) != 2 {
		t.Errorf("restored table: %s with %d attribute definitions, want ACTIVE with 2", out.Table.TableStatus, len(out.Table.AttributeDefinitions))
	}
}

// TestTimeToLiveRoundTrip: UpdateTimeToLive enables and disables a table's TTL,
// DescribeTimeToLive and TTLAttribute report it, and DynamoDB's refusals hold.
func TestTimeToLiveRoundTrip(t *testing.T) {
	d := mustStartDynamoDB(t, embedded.DynamoDBOptions{})
	c := dynamoClient(d)
	ctx := testContext(t)
	mustCreateTable(t, c, "leases")

	status := func() (types.TimeToLiveStatus, string) {
		t.Helper()
		out, err := c.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: aws.String("leases")})
		if err != nil {
			t.Fatal(err)
		}
		return out.TimeToLiveDescription.TimeToLiveStatus, aws.ToString(out.TimeToLiveDescription.AttributeName)
	}
	update := func(attr string, on bool) error {
		_, err := c.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{
			TableName:               aws.String("leases"),
			TimeToLiveSpecification: &types.TimeToLiveSpecification{AttributeName: aws.String(attr), Enabled: aws.Bool(on)},
		})
		return err
	}

	if s, _ := status(); s != types.TimeToLiveStatusDisabled {
		t.Errorf("new table's TTL = %s, want DISABLED", s)
	}
	if _, ok := d.TTLAttribute("leases"); ok {
		t.Error("TTLAttribute of a new table reports a TTL")
	}
	if err := update("expires_at", true); err != nil {
		t.Fatal(err)
	}
	if s, a := status(); s != types.TimeToLiveStatusEnabled || a != "expires_at" {
		t.Errorf("TTL after enabling = %s %q, want ENABLED expires_at", s, a)
	}
	if a, ok := d.TTLAttribute("leases"); !ok || a != "expires_at" {
		t.Errorf("TTLAttribute = %q %v, want expires_at true", a, ok)
	}
	for _, tc := range []struct {
		attr string
		on   bool
	}{{"expires_at", true}, {"other", true}, {"other", false}} {
		if code := apiErrorCode(update(tc.attr, tc.on)); code != "ValidationException" {
			t.Errorf("UpdateTimeToLive %s %v while expires_at is enabled: code %q, want ValidationException", tc.attr, tc.on, code)
		}
	}
	if err := update("expires_at", false); err != nil {
		t.Fatal(err)
	}
	if s, _ := status(); s != types.TimeToLiveStatusDisabled {
		t.Errorf("TTL after disabling = %s, want DISABLED", s)
	}
	if _, ok := d.TTLAttribute("leases"); ok {
		t.Error("TTLAttribute reports a disabled TTL")
	}
	if code := apiErrorCode(update("expires_at", false)); code != "ValidationException" {
		t.Errorf("disabling a disabled TTL: code %q, want ValidationException", code)
	}

	// A deleted table's TTL goes with it.
	if err := update("expires_at", true); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String("leases")}); err != nil {
		t.Fatal(err)
	}
	if _, ok := d.TTLAttribute("leases"); ok {
		t.Error("TTLAttribute reports the TTL of a deleted table")
	}
	_, err := c.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: aws.String("leases")})
	if code := apiErrorCode(err); code != "ResourceNotFoundException" {
		t.Errorf("DescribeTimeToLive of a deleted table: code %q, want ResourceNotFoundException", code)
	}
}

// TestUnknownOperationIsJSONError: an operation the server does not support is
// answered in DynamoDB's JSON error shape, which the SDK decodes as an API error
// with its code.
func TestUnknownOperationIsJSONError(t *testing.T) {
	d := mustStartDynamoDB(t, embedded.DynamoDBOptions{})
	c := dynamoClient(d, func(o *dynamodb.Options) { o.RetryMaxAttempts = 1 })
	_, err := c.ListBackups(testContext(t), &dynamodb.ListBackupsInput{})
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode() != "UnknownOperationException" || !strings.Contains(apiErr.ErrorMessage(), "ListBackups") {
		t.Fatalf("ListBackups: %v, want an UnknownOperationException API error naming ListBackups", err)
	}

	// A request without a DynamoDB target is answered in the same shape.
	resp, err := http.Post(d.URL(), "application/x-amz-json-1.0", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Type    string `json:"__type"`
		Message string `json:"message"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != http.StatusBadRequest ||
		body.Type != "com.amazonaws.dynamodb.v20120810#UnknownOperationException" || body.Message == "" {
		t.Errorf("POST without X-Amz-Target: %d %+v (%v), want 400 UnknownOperationException", resp.StatusCode, body, err)
	}
}

// TestFixedAddress: a server started on a given port listens there, and a second
// server on the same port is refused with an error that says the port is in use.
func TestFixedAddress(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	d := mustStartDynamoDB(t, embedded.DynamoDBOptions{Addr: addr})
	if d.URL() != "http://"+addr {
		t.Errorf("URL = %s, want http://%s", d.URL(), addr)
	}
	mustCreateTable(t, dynamoClient(d), "t")

	if d2, err := embedded.StartDynamoDB(testContext(t), embedded.DynamoDBOptions{Addr: addr}); err == nil {
		_ = d2.Close(context.Background())
		t.Fatal("a second DynamoDB on the same port started")
	} else if !strings.Contains(err.Error(), "in use") || !strings.Contains(err.Error(), addr) {
		t.Errorf("second DynamoDB on %s: %v, want an error naming the address and saying it is in use", addr, err)
	}
	if s, err := embedded.StartS3(testContext(t), embedded.S3Options{Addr: addr}); err == nil {
		_ = s.Close(context.Background())
		t.Fatal("an S3 server on the DynamoDB port started")
	} else if !strings.Contains(err.Error(), "in use") {
		t.Errorf("S3 on %s: %v, want an error saying the port is in use", addr, err)
	}
}

func keys(ks []types.KeySchemaElement) string {
	var s []string
	for _, k := range ks {
		s = append(s, aws.ToString(k.AttributeName)+":"+string(k.KeyType))
	}
	return strings.Join(s, " ")
}

// apiErrorCode is the code of err's API error, or "" when it has none.
func apiErrorCode(err error) string {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		return apiErr.ErrorCode()
	}
	return ""
}
