package server

import (
	"context"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// TestTimeToLiveExpiresItems enables time to live through the SDK and checks
// which items ExpiredKeys lists for deletion: those whose attribute is a number of unix
// seconds before now, with their index entries; never those without the
// attribute or with a value that is not a number.
func TestTimeToLiveExpiresItems(t *testing.T) {
	ctx := context.Background()
	srv := NewServer()
	newUndoTable(t, srv.client)
	ts := httptest.NewServer(srv)
	defer ts.Close()
	cli := newTestDynamoClient(t, ts.URL)

	desc, err := cli.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: aws.String("t")})
	if err != nil {
		t.Fatal(err)
	}

	if desc.TimeToLiveDescription.TimeToLiveStatus != ddbtypes.TimeToLiveStatusDisabled {
		t.Fatalf("status before enabling: %q, want DISABLED", desc.TimeToLiveDescription.TimeToLiveStatus)
	}

	now := time.Unix(1_800_000_000, 0)
	secs := func(d time.Duration) *AttributeValue { return nv(strconv.FormatInt(now.Add(d).Unix(), 10)) }
	items := map[string]map[string]*AttributeValue{
		"old":    {"PK": sv("p"), "SK": sv("old"), "G": sv("x"), "expires_at": secs(-time.Hour)},
		"just":   {"PK": sv("p"), "SK": sv("just"), "expires_at": secs(-time.Second)},
		"now":    {"PK": sv("p"), "SK": sv("now"), "expires_at": secs(0)},
		"future": {"PK": sv("p"), "SK": sv("future"), "G": sv("x"), "expires_at": secs(time.Hour)},
		"none":   {"PK": sv("p"), "SK": sv("none"), "G": sv("x")},
		"string": {"PK": sv("p"), "SK": sv("string"), "expires_at": sv("1")},
		// Written before time to live is enabled: enabling must find it.
		"early": {"PK": sv("q"), "SK": sv("early"), "G": sv("x"), "expires_at": secs(-time.Minute)},
	}

	if _, err := srv.client.PutItem(ctx, &PutItemInput{TableName: aws.String("t"), Item: items["early"]}); err != nil {
		t.Fatal(err)
	}

	up, err := cli.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{TableName: aws.String("t"),
		TimeToLiveSpecification: &ddbtypes.TimeToLiveSpecification{AttributeName: aws.String("expires_at"), Enabled: aws.Bool(true)}})
	if err != nil {
		t.Fatal(err)
	}

	if aws.ToString(up.TimeToLiveSpecification.AttributeName) != "expires_at" || !aws.ToBool(up.TimeToLiveSpecification.Enabled) {
		t.Errorf("UpdateTimeToLive answered %+v", up.TimeToLiveSpecification)
	}

	if _, err := cli.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{TableName: aws.String("t"),
		TimeToLiveSpecification: &ddbtypes.TimeToLiveSpecification{AttributeName: aws.String("expires_at"), Enabled: aws.Bool(true)}}); err == nil {
		t.Error("enabling time to live twice: err = nil, want a ValidationException as in DynamoDB")
	}

	desc, err = cli.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: aws.String("t")})
	if err != nil {
		t.Fatal(err)
	}

	if d := desc.TimeToLiveDescription; d.TimeToLiveStatus != ddbtypes.TimeToLiveStatusEnabled || aws.ToString(d.AttributeName) != "expires_at" {
		t.Fatalf("DescribeTimeToLive: %q on %q, want ENABLED on expires_at", d.TimeToLiveStatus, aws.ToString(d.AttributeName))
	}

	for name, item := range items {
		if name == "early" {
			continue
		}

		if _, err := srv.client.PutItem(ctx, &PutItemInput{TableName: aws.String("t"), Item: item}); err != nil {
			t.Fatal(err)
		}
	}

	// An update that moves an expiry into the future keeps the item.
	if _, err := srv.client.UpdateItem(ctx, &UpdateItemInput{TableName: aws.String("t"), Key: map[string]*AttributeValue{"PK": sv("p"), "SK": sv("just")},
		UpdateExpression: aws.String("SET expires_at = :later"), ExpressionAttributeValues: map[string]*AttributeValue{":later": secs(time.Minute)}}); err != nil {
		t.Fatal(err)
	}

	n := expire(t, srv.client, now)

	if n != 2 {
		t.Errorf("expire deleted %d items, want 2 (old, early)", n)
	}

	left := map[string]bool{}
	scan, err := cli.Scan(ctx, &dynamodb.ScanInput{TableName: aws.String("t")})
	if err != nil {
		t.Fatal(err)
	}

	for _, item := range scan.Items {
		left[item["SK"].(*ddbtypes.AttributeValueMemberS).Value] = true
	}

	for _, sk := range []string{"just", "now", "future", "none", "string"} {
		if !left[sk] {
			t.Errorf("item %q was deleted; it has not expired", sk)
		}
	}

	for _, sk := range []string{"old", "early"} {
		if left[sk] {
			t.Errorf("item %q is still there; it expired", sk)
		}
	}

	q, err := cli.Query(ctx, &dynamodb.QueryInput{TableName: aws.String("t"), IndexName: aws.String("byG"),
		KeyConditionExpression:    aws.String("G = :g"),
		ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{":g": &ddbtypes.AttributeValueMemberS{Value: "x"}}})
	if err != nil {
		t.Fatal(err)
	}

	if len(q.Items) != 2 {
		t.Errorf("index partition x holds %d items after expiry, want 2 (future, none)", len(q.Items))
	}

	// Nothing more has expired a second later than the run before; an hour
	// later, "future" has (and "just" and "now" too).
	if n := expire(t, srv.client, now); n != 0 {
		t.Errorf("second expire at the same time deleted %d items, want 0", n)
	}

	if n := expire(t, srv.client, now.Add(time.Hour+time.Second)); n != 3 {
		t.Errorf("expire an hour later deleted %d items, want 3 (just, now, future)", n)
	}

	// Disabled, nothing expires any more.
	if _, err := cli.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{TableName: aws.String("t"),
		TimeToLiveSpecification: &ddbtypes.TimeToLiveSpecification{AttributeName: aws.String("expires_at"), Enabled: aws.Bool(false)}}); err != nil {
		t.Fatal(err)
	}

	if _, err := srv.client.PutItem(ctx, &PutItemInput{TableName: aws.String("t"), Item: items["old"]}); err != nil {
		t.Fatal(err)
	}

	if n := expire(t, srv.client, now); n != 0 {
		t.Errorf("expire with time to live disabled deleted %d items, want 0", n)
	}
}

// TestTimeToLiveAfterRolledBackTransaction checks that a transaction that
// fails leaves the expiry order as it was: the restored item still expires,
// and the item it would have added does not linger in the order.
func TestTimeToLiveAfterRolledBackTransaction(t *testing.T) {
	ctx := context.Background()
	c := NewClient()
	newUndoTable(t, c)

	if _, err := c.UpdateTimeToLive(ctx, &UpdateTimeToLiveInput{TableName: aws.String("t"),
		TimeToLiveSpecification: &TimeToLiveSpecification{AttributeName: aws.String("expires_at"), Enabled: aws.Bool(true)}}); err != nil {
		t.Fatal(err)
	}

	if _, err := c.PutItem(ctx, &PutItemInput{TableName: aws.String("t"), Item: map[string]*AttributeValue{"PK": sv("p"), "SK": sv("a"), "expires_at": nv("100")}}); err != nil {
		t.Fatal(err)
	}

	_, err := c.TransactWriteItems(ctx, &TransactWriteItemsInput{TransactItems: []TransactWriteItem{
		{Update: &Update{TableName: aws.String("t"), Key: map[string]*AttributeValue{"PK": sv("p"), "SK": sv("a")},
			UpdateExpression: aws.String("REMOVE expires_at")}},
		{Put: &Put{TableName: aws.String("t"), Item: map[string]*AttributeValue{"PK": sv("p"), "SK": sv("b"), "expires_at": nv("50")}}},
		{ConditionCheck: &ConditionCheck{TableName: aws.String("t"), Key: map[string]*AttributeValue{"PK": sv("p"), "SK": sv("none")},
			ConditionExpression: aws.String("attribute_exists(PK)")}},
	}})
	if err == nil {
		t.Fatal("TransactWriteItems: err = nil, want a cancellation")
	}

	if n := expire(t, c, time.Unix(200, 0)); n != 1 {
		t.Errorf("expire after the rollback deleted %d items, want 1 (the restored item)", n)
	}

	out, err := c.Scan(ctx, &ScanInput{TableName: aws.String("t")})
	if err != nil {
		t.Fatal(err)
	}

	if len(out.Items) != 0 {
		t.Errorf("table after expiry: %v, want empty", out.Items)
	}
}

// expire deletes what ExpiredKeys lists in table "t", as a caller of the
// engine would, and returns how many keys it listed.
func expire(t *testing.T, c *Client, now time.Time) int {
	t.Helper()

	keys, err := c.ExpiredKeys("t", now, 0)
	if err != nil {
		t.Fatal(err)
	}

	for _, k := range keys {
		if _, err := c.DeleteItem(context.Background(), &DeleteItemInput{TableName: aws.String("t"), Key: k}); err != nil {
			t.Fatal(err)
		}
	}

	return len(keys)
}

// TestExpiredKeysListsWithoutDeleting checks that ExpiredKeys answers the
// primary keys alone, earliest expiry first, honours max, and deletes nothing.
func TestExpiredKeysListsWithoutDeleting(t *testing.T) {
	ctx := context.Background()
	c := NewClient()
	newUndoTable(t, c)

	if keys, err := c.ExpiredKeys("t", time.Unix(1000, 0), 0); err != nil || len(keys) != 0 {
		t.Fatalf("ExpiredKeys with time to live disabled: %v, %v; want none", keys, err)
	}

	if _, err := c.UpdateTimeToLive(ctx, &UpdateTimeToLiveInput{TableName: aws.String("t"),
		TimeToLiveSpecification: &TimeToLiveSpecification{AttributeName: aws.String("expires_at"), Enabled: aws.Bool(true)}}); err != nil {
		t.Fatal(err)
	}

	for sk, at := range map[string]string{"c": "30", "a": "10", "b": "20", "d": "2000"} {
		if _, err := c.PutItem(ctx, &PutItemInput{TableName: aws.String("t"),
			Item: map[string]*AttributeValue{"PK": sv("p"), "SK": sv(sk), "G": sv("x"), "expires_at": nv(at)}}); err != nil {
			t.Fatal(err)
		}
	}

	keys, err := c.ExpiredKeys("t", time.Unix(1000, 0), 2)
	if err != nil {
		t.Fatal(err)
	}

	if len(keys) != 2 || *keys[0]["SK"].S != "a" || *keys[1]["SK"].S != "b" || len(keys[0]) != 2 || *keys[0]["PK"].S != "p" {
		t.Fatalf("ExpiredKeys(max 2) = %v, want the keys {PK, SK} of a and b", keys)
	}

	if all, _ := c.ExpiredKeys("t", time.Unix(1000, 0), 0); len(all) != 3 {
		t.Errorf("ExpiredKeys(max 0) listed %d keys, want 3 (a, b, c)", len(all))
	}

	out, err := c.Scan(ctx, &ScanInput{TableName: aws.String("t")})
	if err != nil {
		t.Fatal(err)
	}

	if len(out.Items) != 4 {
		t.Errorf("table holds %d items after ExpiredKeys, want 4: listing must not delete", len(out.Items))
	}

	if _, err := c.ExpiredKeys("missing", time.Unix(1000, 0), 0); err == nil {
		t.Error("ExpiredKeys on a missing table: err = nil, want ResourceNotFoundException")
	}
}
