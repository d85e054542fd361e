package local

import (
	"bytes"
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/bulkhead-dev/bulkhead/pkg/awsclients"
	"github.com/bulkhead-dev/bulkhead/pkg/embedded"
	"github.com/bulkhead-dev/bulkhead/pkg/offline"
	"github.com/bulkhead-dev/bulkhead/pkg/platform"
)

// storeEnv sets the variables that choose the stores, every one of them (an
// empty value is unset as far as the configuration goes), so that the
// developer's shell cannot change what a test sees.
func storeEnv(t *testing.T, kv ...string) {
	t.Helper()
	env := map[string]string{
		"AWS_ENDPOINT_URL": "", "AWS_ENDPOINT_URL_DYNAMODB": "", "AWS_ENDPOINT_URL_S3": "", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "",
		"BULKHEAD_DYNAMODB": "", "BULKHEAD_S3": "", "BULKHEAD_DYNAMODB_ADDR": "", "BULKHEAD_S3_ADDR": "",
	}
	for i := 0; i < len(kv); i += 2 {
		env[kv[i]] = kv[i+1]
	}
	for k, v := range env {
		t.Setenv(k, v)
	}
}

// TestConfigStores: which store uses which endpoint, and the configurations
// refused because a store would silently go to AWS itself, or that contradict
// themselves.
func TestConfigStores(t *testing.T) {
	for _, tc := range []struct {
		name       string
		env        []string
		dyn, s3    string
		keepDynamo bool
		keepS3     bool
		wantErr    string // a part of the error; "" for none
	}{
		{name: "embedded by default"},
		{name: "both endpoints", env: []string{"AWS_ENDPOINT_URL_DYNAMODB", "http://d", "AWS_ENDPOINT_URL_S3", "http://s"}, dyn: "http://d", s3: "http://s"},
		{name: "general endpoint", env: []string{"AWS_ENDPOINT_URL", "http://g"}, dyn: "http://g", s3: "http://g"},
		{name: "DynamoDB Local alone", env: []string{"AWS_ENDPOINT_URL_DYNAMODB", "http://d"}, wantErr: "BULKHEAD_S3=embedded"},
		{name: "S3 alone", env: []string{"AWS_ENDPOINT_URL_S3", "http://s"}, wantErr: "BULKHEAD_DYNAMODB=embedded"},
		{name: "DynamoDB Local, S3 kept embedded", env: []string{"AWS_ENDPOINT_URL_DYNAMODB", "http://d", "BULKHEAD_S3", "embedded"}, dyn: "http://d", keepS3: true},
		{name: "S3 endpoint, DynamoDB kept embedded", env: []string{"AWS_ENDPOINT_URL_S3", "http://s", "BULKHEAD_DYNAMODB", "embedded"}, s3: "http://s", keepDynamo: true},
		{name: "general endpoint, DynamoDB kept embedded", env: []string{"AWS_ENDPOINT_URL", "http://g", "BULKHEAD_DYNAMODB", "embedded"}, s3: "http://g", keepDynamo: true},
		{name: "kept embedded and given an endpoint", env: []string{"AWS_ENDPOINT_URL_S3", "http://s", "AWS_ENDPOINT_URL_DYNAMODB", "http://d", "BULKHEAD_S3", "embedded"}, wantErr: "contradict"},
		{name: "unknown store value", env: []string{"BULKHEAD_S3", "aws"}, wantErr: `BULKHEAD_S3="aws"`},
		{name: "fixed addresses", env: []string{"BULKHEAD_DYNAMODB_ADDR", "127.0.0.1:8000", "BULKHEAD_S3_ADDR", "127.0.0.1:9000"}},
		{name: "address of a store with an endpoint", env: []string{"AWS_ENDPOINT_URL", "http://g", "BULKHEAD_DYNAMODB_ADDR", "127.0.0.1:8000"}, wantErr: "BULKHEAD_DYNAMODB_ADDR"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			storeEnv(t, tc.env...)
			c, err := ConfigFromEnv()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("ConfigFromEnv: err = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.DynamoEndpoint != tc.dyn || c.S3Endpoint != tc.s3 || c.KeepDynamoEmbedded != tc.keepDynamo || c.KeepS3Embedded != tc.keepS3 {
				t.Errorf("stores = dynamo %q (keep %v), s3 %q (keep %v); want %q (%v), %q (%v)",
					c.DynamoEndpoint, c.KeepDynamoEmbedded, c.S3Endpoint, c.KeepS3Embedded, tc.dyn, tc.keepDynamo, tc.s3, tc.keepS3)
			}
			if c.DynamoAddr != os.Getenv("BULKHEAD_DYNAMODB_ADDR") || c.S3Addr != os.Getenv("BULKHEAD_S3_ADDR") {
				t.Errorf("addresses = %q %q", c.DynamoAddr, c.S3Addr)
			}
		})
	}
}

// TestStartRefusesOneStoreOverridden: a configuration built in code is held to
// the same rule as the environment's.
func TestStartRefusesOneStoreOverridden(t *testing.T) {
	dir := t.TempDir()
	_, err := Start(context.Background(), Config{Addr: "127.0.0.1:0", DataDir: dir, DynamoEndpoint: "http://127.0.0.1:1", Model: offline.New(0), Out: io.Discard})
	if err == nil || !strings.Contains(err.Error(), "BULKHEAD_S3=embedded") {
		t.Fatalf("Start with only a DynamoDB endpoint: err = %v, want a refusal naming BULKHEAD_S3=embedded", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("a refused start left %d files in the data dir", len(entries))
	}
}

// TestStartExternalDynamoEmbeddedS3: DynamoDB on an external endpoint (another
// embedded server standing for DynamoDB Local) with S3 kept embedded: the
// platform serves, its table on the external store has TTL enabled, and its
// objects are in the embedded S3.
func TestStartExternalDynamoEmbeddedS3(t *testing.T) {
	ctx := context.Background()
	ext, err := embedded.StartDynamoDB(ctx, embedded.DynamoDBOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ext.Close(context.Background()) })
	empty := filepath.Join(t.TempDir(), "empty-aws-config")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x", "AWS_SESSION_TOKEN": "", "AWS_REGION": "us-east-1",
		"AWS_PROFILE": "", "AWS_CONFIG_FILE": empty, "AWS_SHARED_CREDENTIALS_FILE": empty, "AWS_EC2_METADATA_DISABLED": "true",
	} {
		t.Setenv(k, v)
	}
	storeEnv(t, "AWS_ENDPOINT_URL_DYNAMODB", ext.URL(), "BULKHEAD_S3", "embedded")
	c, err := ConfigFromEnv()
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	c.Addr, c.DataDir, c.Model, c.Out = "127.0.0.1:0", t.TempDir(), offline.New(0), &out
	p, err := Start(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close(context.Background()) })
	if p.Dynamo != nil || p.S3 == nil {
		t.Fatalf("embedded servers: dynamo %v, s3 %v; want none and one", p.Dynamo != nil, p.S3 != nil)
	}
	for _, line := range []string{"DynamoDB (external): " + ext.URL(), "S3 (embedded): " + p.S3.URL()} {
		if !strings.Contains(out.String(), line+"\n") {
			t.Errorf("banner lacks %q:\n%s", line, out.String())
		}
	}
	if p.Demo == nil {
		t.Fatal("no demo tenant: the external table was not used")
	}
	desc, err := awsclients.NewDynamoDB(awsclients.Static(""), ext.URL()).DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: aws.String(platform.DefaultTable)})
	if err != nil {
		t.Fatal(err)
	}
	if d := desc.TimeToLiveDescription; d.TimeToLiveStatus != types.TimeToLiveStatusEnabled || aws.ToString(d.AttributeName) != "expires_at" {
		t.Errorf("external table's TTL = %s %q, want ENABLED expires_at", d.TimeToLiveStatus, aws.ToString(d.AttributeName))
	}
	if page, err := p.API.Store().ListTenants(ctx, "", 10); err != nil || len(page.Items) != 1 {
		t.Errorf("tenants in the external table: %v %v, want the demo tenant", page, err)
	}
}

// TestStartFixedPorts: the embedded servers listen where BULKHEAD_DYNAMODB_ADDR
// and BULKHEAD_S3_ADDR say, and a port in use stops the start with an error that
// names the variable and says the port is in use.
func TestStartFixedPorts(t *testing.T) {
	dynAddr, s3Addr := freeAddr(t), freeAddr(t)
	var out bytes.Buffer
	p, err := Start(context.Background(), Config{Addr: "127.0.0.1:0", DataDir: t.TempDir(), DynamoAddr: dynAddr, S3Addr: s3Addr, Model: offline.New(0), Out: &out})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close(context.Background()) })
	if p.Dynamo.URL() != "http://"+dynAddr || p.S3.URL() != "http://"+s3Addr {
		t.Errorf("servers on %s and %s, want http://%s and http://%s", p.Dynamo.URL(), p.S3.URL(), dynAddr, s3Addr)
	}
	if !strings.Contains(out.String(), "DynamoDB (embedded): http://"+dynAddr+"\n") {
		t.Errorf("banner lacks the fixed DynamoDB address:\n%s", out.String())
	}

	// A second platform on the same ports (its own data dir) cannot start.
	for _, tc := range []struct {
		c       Config
		wantVar string
	}{
		{Config{DynamoAddr: dynAddr}, "BULKHEAD_DYNAMODB_ADDR=" + dynAddr},
		{Config{S3Addr: s3Addr}, "BULKHEAD_S3_ADDR=" + s3Addr},
	} {
		c := tc.c
		c.Addr, c.DataDir, c.Model, c.Out = "127.0.0.1:0", t.TempDir(), offline.New(0), io.Discard
		p2, err := Start(context.Background(), c)
		if err == nil {
			_ = p2.Close(context.Background())
			t.Fatalf("a second platform on %s started", tc.wantVar)
		}
		if !strings.Contains(err.Error(), tc.wantVar) || !strings.Contains(err.Error(), "in use") {
			t.Errorf("second start: %v, want an error naming %s and saying the port is in use", err, tc.wantVar)
		}
	}
}

// freeAddr is a loopback address whose port was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}
