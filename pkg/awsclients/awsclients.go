package awsclients

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// DefaultRegion is the region Static uses when it is given none. The embedded
// servers ignore the region, but the SDK refuses to sign a request without one.
const DefaultRegion = "us-east-1"

// StaticAccessKey is the access key id (and secret) of the credentials Static puts in
// its configuration. The embedded servers accept any signature; a fixed, obviously
// fake value makes it plain in logs that no real credentials were involved.
const StaticAccessKey = "bulkhead"

// maxIdleConnsPerHost is large because the local platform and the load tests send
// hundreds of concurrent requests to one loopback host; the net/http default of 2
// idle connections per host makes every burst open (and leave in TIME_WAIT)
// thousands of sockets.
const maxIdleConnsPerHost = 256

// sharedHTTPClient is one client, hence one connection pool, for every SDK client
// built from Static, so that a DynamoDB and an S3 client pointed at the embedded
// servers reuse connections instead of each warming up its own pool.
var sharedHTTPClient = sync.OnceValue(func() *awshttp.BuildableClient {
	return awshttp.NewBuildableClient().WithTransportOptions(func(t *http.Transport) {
		t.MaxIdleConns = maxIdleConnsPerHost * 2
		t.MaxIdleConnsPerHost = maxIdleConnsPerHost
	})
})

// Static returns an explicit configuration with fixed fake credentials, the given
// region ("us-east-1" when empty), a shared HTTP client sized for loopback load and
// the SDK's standard retryer. It reads nothing from the environment or from shared
// config files, on purpose: it is meant for the embedded servers, and a stray
// AWS_PROFILE, AWS_CA_BUNDLE or AWS_ENDPOINT_URL must not be able to redirect
// requests meant for them (or send real credentials to them). Give the endpoint to
// NewDynamoDB or NewS3.
func Static(region string) aws.Config {
	if region == "" {
		region = DefaultRegion
	}
	return aws.Config{
		Region:      region,
		Credentials: aws.NewCredentialsCache(credentials.NewStaticCredentialsProvider(StaticAccessKey, StaticAccessKey, "")),
		HTTPClient:  sharedHTTPClient(),
		Retryer:     func() aws.Retryer { return retry.NewStandard() },
	}
}

// FromEnvironment loads the SDK's default configuration chain: environment
// variables, shared config files, and the Lambda execution role's credentials. It is
// what Lambda functions use, and what the local platform uses when it is pointed at
// LocalStack, DynamoDB Local or AWS itself; the endpoint then comes from the SDK's
// standard AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_DYNAMODB and AWS_ENDPOINT_URL_S3
// variables, which the clients built by NewDynamoDB and NewS3 honour.
func FromEnvironment(ctx context.Context) (aws.Config, error) {
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return aws.Config{}, fmt.Errorf("load AWS configuration from the environment: %w", err)
	}
	return cfg, nil
}

// EndpointsFromEnv returns the endpoints that the SDK's standard variables name for
// DynamoDB and S3: AWS_ENDPOINT_URL_DYNAMODB and AWS_ENDPOINT_URL_S3, each falling
// back to AWS_ENDPOINT_URL, and "" when none is set or when
// AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true tells the SDK to ignore them. It lets the
// local platform tell whether it was pointed elsewhere or should start its embedded
// servers.
func EndpointsFromEnv() (dynamo, s3 string) {
	if strings.EqualFold(os.Getenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"), "true") {
		return "", ""
	}
	general := os.Getenv("AWS_ENDPOINT_URL")
	dynamo, s3 = os.Getenv("AWS_ENDPOINT_URL_DYNAMODB"), os.Getenv("AWS_ENDPOINT_URL_S3")
	if dynamo == "" {
		dynamo = general
	}
	if s3 == "" {
		s3 = general
	}
	return dynamo, s3
}

// NewDynamoDB returns a DynamoDB client for cfg. A non-empty endpoint overrides the
// endpoint the SDK would resolve, and turns off validation of the response's CRC32
// checksum header, which the embedded server (minidyn) does not send.
func NewDynamoDB(cfg aws.Config, endpoint string) *dynamodb.Client {
	return dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) {
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
			o.DisableValidateResponseChecksum = true
		}
	})
}

// NewS3 returns an S3 client for cfg. It uses path-style addressing and computes
// and validates checksums only where an operation requires them whenever the client
// talks to something other than AWS: either because endpoint is non-empty (the
// embedded server), or because the configuration already names an endpoint
// (AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL, or endpoint_url in a shared config file,
// as loaded by FromEnvironment). Path style, because S3-compatible servers such as
// the embedded one, LocalStack and MinIO cannot resolve virtual-hosted bucket names
// like bucket.127.0.0.1. Checksums only when required, because the SDK's default
// sends uploads as aws-chunked bodies with a trailing checksum, which the embedded
// server stores verbatim (framing included) and several other S3-compatible servers
// reject; against AWS itself the SDK's defaults are kept.
func NewS3(cfg aws.Config, endpoint string) *s3.Client {
	return s3.NewFromConfig(cfg, func(o *s3.Options) {
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
		}
		// The SDK has resolved the configured endpoint into BaseEndpoint before
		// calling this function, so a nil BaseEndpoint here means AWS itself.
		if o.BaseEndpoint != nil {
			o.UsePathStyle = true
			o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
			o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
		}
	})
}
