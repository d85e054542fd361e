package awsclients_test

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/bulkhead-dev/bulkhead/pkg/awsclients"
)

// clearEndpointEnv unsets every endpoint variable the tests care about, so that the
// developer's own environment cannot change their outcome.
func clearEndpointEnv(t *testing.T) {
	t.Helper()
	for _, k := range []string{"AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL_S3", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"} {
		t.Setenv(k, "")
	}
}

func TestEndpointsFromEnv(t *testing.T) {
	tests := []struct {
		name                string
		general, dynamo, s3 string
		wantDynamo, wantS3  string
		ignore              string
	}{
		{name: "unset"},
		{name: "general only", general: "http://g", wantDynamo: "http://g", wantS3: "http://g"},
		{name: "service overrides general", general: "http://g", dynamo: "http://d", s3: "http://s", wantDynamo: "http://d", wantS3: "http://s"},
		{name: "one service only", dynamo: "http://d", wantDynamo: "http://d"},
		{name: "ignored", general: "http://g", dynamo: "http://d", ignore: "true"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearEndpointEnv(t)
			t.Setenv("AWS_ENDPOINT_URL", tt.general)
			t.Setenv("AWS_ENDPOINT_URL_DYNAMODB", tt.dynamo)
			t.Setenv("AWS_ENDPOINT_URL_S3", tt.s3)
			t.Setenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", tt.ignore)
			gotDynamo, gotS3 := awsclients.EndpointsFromEnv()
			if gotDynamo != tt.wantDynamo || gotS3 != tt.wantS3 {
				t.Errorf("EndpointsFromEnv() = (%q, %q), want (%q, %q)", gotDynamo, gotS3, tt.wantDynamo, tt.wantS3)
			}
		})
	}
}

func TestStaticDefaults(t *testing.T) {
	cfg := awsclients.Static("")
	if got, want := cfg.Region, "us-east-1"; got != want {
		t.Errorf("Static(\"\").Region = %q, want %q", got, want)
	}
	if got, want := awsclients.Static("eu-west-1").Region, "eu-west-1"; got != want {
		t.Errorf("Static(eu-west-1).Region = %q, want %q", got, want)
	}
	creds, err := cfg.Credentials.Retrieve(context.Background())
	if err != nil {
		t.Fatalf("retrieve static credentials: %v", err)
	}
	if creds.AccessKeyID != "bulkhead" || creds.SecretAccessKey != "bulkhead" {
		t.Errorf("static credentials = %q/%q, want bulkhead/bulkhead", creds.AccessKeyID, creds.SecretAccessKey)
	}
	if cfg.HTTPClient != awsclients.Static("").HTTPClient {
		t.Errorf("Static returned a different HTTP client on a second call, want one shared pool")
	}
}

// TestStaticIgnoresEndpointEnv checks the reason Static exists: an endpoint variable
// in the environment does not redirect clients built from it.
func TestStaticIgnoresEndpointEnv(t *testing.T) {
	clearEndpointEnv(t)
	t.Setenv("AWS_ENDPOINT_URL", "http://elsewhere.invalid")

	ddb := awsclients.NewDynamoDB(awsclients.Static(""), "")
	if got := ddb.Options().BaseEndpoint; got != nil {
		t.Errorf("DynamoDB BaseEndpoint = %q, want nil (AWS)", *got)
	}
	s3c := awsclients.NewS3(awsclients.Static(""), "")
	if got := s3c.Options().BaseEndpoint; got != nil {
		t.Errorf("S3 BaseEndpoint = %q, want nil (AWS)", *got)
	}
	if s3c.Options().UsePathStyle {
		t.Errorf("S3 UsePathStyle = true against AWS, want false")
	}
}

func TestNewClientsWithExplicitEndpoint(t *testing.T) {
	const endpoint = "http://127.0.0.1:1"
	cfg := awsclients.Static("")

	ddb := awsclients.NewDynamoDB(cfg, endpoint).Options()
	if got := aws.ToString(ddb.BaseEndpoint); got != endpoint {
		t.Errorf("DynamoDB BaseEndpoint = %q, want %q", got, endpoint)
	}
	if !ddb.DisableValidateResponseChecksum {
		t.Errorf("DynamoDB DisableValidateResponseChecksum = false, want true for a custom endpoint")
	}

	s3o := awsclients.NewS3(cfg, endpoint).Options()
	if got := aws.ToString(s3o.BaseEndpoint); got != endpoint {
		t.Errorf("S3 BaseEndpoint = %q, want %q", got, endpoint)
	}
	if !s3o.UsePathStyle {
		t.Errorf("S3 UsePathStyle = false, want true for a custom endpoint")
	}
	if got, want := s3o.RequestChecksumCalculation, aws.RequestChecksumCalculationWhenRequired; got != want {
		t.Errorf("S3 RequestChecksumCalculation = %v, want %v", got, want)
	}
	if got, want := s3o.ResponseChecksumValidation, aws.ResponseChecksumValidationWhenRequired; got != want {
		t.Errorf("S3 ResponseChecksumValidation = %v, want %v", got, want)
	}
}

// TestNewS3PathStyleFromEnvironment checks that an S3 endpoint named by the SDK's
// standard variable (LocalStack, MinIO) gets path-style addressing too.
func TestNewS3PathStyleFromEnvironment(t *testing.T) {
	clearEndpointEnv(t)
	t.Setenv("AWS_ENDPOINT_URL_S3", "http://localhost:4566")
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	t.Setenv("AWS_CONFIG_FILE", t.TempDir()+"/none")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", t.TempDir()+"/none")
	t.Setenv("AWS_PROFILE", "")

	cfg, err := awsclients.FromEnvironment(context.Background())
	if err != nil {
		t.Fatalf("FromEnvironment: %v", err)
	}
	o := awsclients.NewS3(cfg, "").Options()
	if got, want := aws.ToString(o.BaseEndpoint), "http://localhost:4566"; got != want {
		t.Errorf("S3 BaseEndpoint = %q, want %q", got, want)
	}
	if !o.UsePathStyle {
		t.Errorf("S3 UsePathStyle = false, want true for an endpoint from AWS_ENDPOINT_URL_S3")
	}

	// The DynamoDB client is not redirected by an S3-only variable.
	if got := awsclients.NewDynamoDB(cfg, "").Options().BaseEndpoint; got != nil {
		t.Errorf("DynamoDB BaseEndpoint = %q, want nil", *got)
	}
}
