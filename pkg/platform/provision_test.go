package platform_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/bulkhead-dev/bulkhead/pkg/awsclients"
	"github.com/bulkhead-dev/bulkhead/pkg/embedded"
	"github.com/bulkhead-dev/bulkhead/pkg/platform"
)

// stores starts an embedded DynamoDB and S3, standing for any external stores.
func stores(t *testing.T) (*embedded.DynamoDB, *embedded.S3) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	d, err := embedded.StartDynamoDB(ctx, embedded.DynamoDBOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close(context.Background()) })
	s, err := embedded.StartS3(ctx, embedded.S3Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	return d, s
}

// TestProvisionEnablesTTL: the table Provision creates has its TTL enabled on
// the attribute the stack declares, and provisioning again leaves it so.
func TestProvisionEnablesTTL(t *testing.T) {
	d, s := stores(t)
	ctx := context.Background()
	o := platform.Options{AWS: awsclients.Static(""), DynamoEndpoint: d.URL(), S3Endpoint: s.URL()}
	for range 2 {
		if err := platform.Provision(ctx, o); err != nil {
			t.Fatal(err)
		}
		out, err := awsclients.NewDynamoDB(o.AWS, d.URL()).DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: aws.String(platform.DefaultTable)})
		if err != nil {
			t.Fatal(err)
		}
		if desc := out.TimeToLiveDescription; desc.TimeToLiveStatus != types.TimeToLiveStatusEnabled || aws.ToString(desc.AttributeName) != "expires_at" {
			t.Errorf("TTL after Provision = %s %q, want ENABLED expires_at", desc.TimeToLiveStatus, aws.ToString(desc.AttributeName))
		}
	}
	if attr, ok := d.TTLAttribute(platform.DefaultTable); !ok || attr != platform.TTLAttribute {
		t.Errorf("the server's TTL attribute = %q %v, want %s", attr, ok, platform.TTLAttribute)
	}
}

// TestProvisionWithoutTTLSupport: a store that does not know the TTL
// operations still gets its table and bucket; Provision logs a warning.
func TestProvisionWithoutTTLSupport(t *testing.T) {
	d, s := stores(t)
	target, err := url.Parse(d.URL())
	if err != nil {
		t.Fatal(err)
	}
	// The embedded server, minus TTL: those operations are answered as by an
	// emulator that lacks them.
	proxy := httputil.NewSingleHostReverseProxy(target)
	noTTL := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.Header.Get("X-Amz-Target"), "TimeToLive") {
			w.Header().Set("Content-Type", "application/x-amz-json-1.0")
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"__type":"com.amazonaws.dynamodb.v20120810#UnknownOperationException","message":"not supported"}`))
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(noTTL.Close)

	var logs bytes.Buffer
	o := platform.Options{AWS: awsclients.Static(""), DynamoEndpoint: noTTL.URL, S3Endpoint: s.URL(), Logger: slog.New(slog.NewTextHandler(&logs, nil))}
	if err := platform.Provision(context.Background(), o); err != nil {
		t.Fatalf("Provision on a store without TTL: %v", err)
	}
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "TTL") {
		t.Errorf("no warning about the TTL in the logs: %q", logs.String())
	}
	if _, err := awsclients.NewDynamoDB(o.AWS, d.URL()).DescribeTable(context.Background(), &dynamodb.DescribeTableInput{TableName: aws.String(platform.DefaultTable)}); err != nil {
		t.Errorf("the table was not created: %v", err)
	}
	if _, err := awsclients.NewS3(o.AWS, s.URL()).HeadBucket(context.Background(), &s3.HeadBucketInput{Bucket: aws.String(platform.DefaultBucket)}); err != nil {
		t.Errorf("the bucket was not created: %v", err)
	}
}
