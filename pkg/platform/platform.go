// Package platform wires the API from configuration: the AWS clients, the
// stores, the model and the runner. The Lambda functions and the local
// platform both build their handlers here, so there is one code path.
package platform

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/aws/aws-sdk-go-v2/service/apigateway"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/bulkhead-dev/bulkhead/pkg/api"
	"github.com/bulkhead-dev/bulkhead/pkg/apigw"
	"github.com/bulkhead-dev/bulkhead/pkg/awsclients"
	"github.com/bulkhead-dev/bulkhead/pkg/bulkhead"
	"github.com/bulkhead-dev/bulkhead/pkg/dynamo"
	"github.com/bulkhead-dev/bulkhead/pkg/mcptool"
	"github.com/bulkhead-dev/bulkhead/pkg/metrics"
	"github.com/bulkhead-dev/bulkhead/pkg/runtime"
	"github.com/bulkhead-dev/bulkhead/pkg/s3store"
	"github.com/bulkhead-dev/bulkhead/pkg/sealed"
	"github.com/bulkhead-dev/bulkhead/pkg/ssrf"
	"github.com/bulkhead-dev/bulkhead/pkg/tenantcreds"
	"github.com/bulkhead-dev/bulkhead/pkg/tracing"
)

// Default resource names.
const (
	DefaultTable  = "bulkhead"
	DefaultBucket = "bulkhead-data"
)

// Options configure the platform.
type Options struct {
	AWS            aws.Config
	DynamoEndpoint string // "" = the SDK's resolution
	S3Endpoint     string
	Table          string
	Bucket         string
	Model          bulkhead.Model
	// Providers are the real model providers' clients, by provider name.
	Providers map[string]bulkhead.Model
	Now       func() time.Time
	Logger    *slog.Logger
	// TenantCreds, when scoped, gives data-plane calls tenant-scoped
	// credentials; nil keeps the process's own (locally).
	TenantCreds *tenantcreds.Provider
	// Edge manages tenants' API Gateway keys (nil locally).
	Edge api.Edge
	// Metrics receives CloudWatch EMF lines (Lambda) or feeds the local
	// platform's Prometheus registry; nil records none.
	Metrics *metrics.Emitter
	// ToolGuard is the SSRF guard every call to a tenant's tool or MCP
	// server goes through; nil builds one from BULKHEAD_TOOL_ALLOW_HOSTS.
	ToolGuard *ssrf.Guard
	// Sealer seals tool secrets at rest (KMS in Lambda, the data dir's key
	// file locally); nil leaves tenant tools unable to be created or run.
	Sealer sealed.Sealer
	// AuditRetention is how long audit entries are kept before TTL removes
	// them; 0 keeps dynamo.DefaultAuditRetention (400 days).
	AuditRetention time.Duration
}

// EnvAuditRetentionDays overrides the audit log's retention, in whole days.
const EnvAuditRetentionDays = "BULKHEAD_AUDIT_RETENTION_DAYS"

// AuditRetentionFromEnv reads EnvAuditRetentionDays: 0 (the default) when
// unset, else a whole number of days from 1 to 3650.
func AuditRetentionFromEnv(getenv func(string) string) (time.Duration, error) {
	v := getenv(EnvAuditRetentionDays)
	if v == "" {
		return 0, nil
	}
	days, err := strconv.Atoi(v)
	if err != nil || days < 1 || days > 3650 {
		return 0, fmt.Errorf("%s is %q, want a whole number of days from 1 to 3650", EnvAuditRetentionDays, v)
	}
	return time.Duration(days) * 24 * time.Hour, nil
}

// ToolGuardFromEnv is the SSRF guard with BULKHEAD_TOOL_ALLOW_HOSTS's
// exceptions (none by default, and none in AWS).
func ToolGuardFromEnv() (*ssrf.Guard, error) {
	allow, err := ssrf.ParseAllowHosts(os.Getenv(ssrf.AllowHostsEnv))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", ssrf.AllowHostsEnv, err)
	}
	return ssrf.New(allow), nil
}

// New builds the API from options.
func New(o Options) *api.API {
	if o.Table == "" {
		o.Table = DefaultTable
	}
	if o.Bucket == "" {
		o.Bucket = DefaultBucket
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	countStoreErrors(&o.AWS, o.Metrics)
	ddb := awsclients.NewDynamoDB(o.AWS, o.DynamoEndpoint)
	s3c := awsclients.NewS3(o.AWS, o.S3Endpoint)
	store, transcripts := dynamo.New(ddb, o.Table, o.Now).WithAuditRetention(o.AuditRetention), s3store.New(s3c, o.Bucket)
	if o.TenantCreds.Scoped() {
		store, transcripts = store.WithTenantCredentials(o.TenantCreds), transcripts.WithTenantCredentials(o.TenantCreds)
	}
	runner := &runtime.Runner{Model: o.Model, Providers: o.Providers, Catalogue: store, Now: o.Now, Logger: o.Logger, Metrics: o.Metrics,
		Sealer: o.Sealer}
	if o.ToolGuard != nil {
		// One client for every tool call: each call's own timeout bounds it.
		client := o.ToolGuard.Client(0)
		runner.ToolHTTP, runner.MCP = client, &mcptool.Client{HTTP: client}
	}
	cfg := api.Config{
		Edge:        o.Edge,
		Metrics:     o.Metrics,
		Store:       store,
		Transcripts: transcripts,
		Runner:      runner,
		Now:         o.Now,
		Logger:      o.Logger,
		ToolGuard:   o.ToolGuard,
		Sealer:      o.Sealer,
	}
	return api.New(cfg)
}

// TTLAttribute is the table's TTL attribute, as the stack declares it: counter
// windows, leases and idempotency records carry it.
const TTLAttribute = "expires_at"

// Provision creates the table and the bucket if they do not exist, and enables
// the table's TTL as the stack does (the local platform and tests; in AWS the
// infrastructure creates them).
func Provision(ctx context.Context, o Options) error {
	if o.Table == "" {
		o.Table = DefaultTable
	}
	if o.Bucket == "" {
		o.Bucket = DefaultBucket
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	countStoreErrors(&o.AWS, o.Metrics)
	ddb := awsclients.NewDynamoDB(o.AWS, o.DynamoEndpoint)
	if err := dynamo.CreateTable(ctx, ddb, o.Table); err != nil {
		return err
	}
	if err := enableTTL(ctx, ddb, o.Table); err != nil {
		// Expiring items then pile up, as they would in AWS without the TTL.
		o.Logger.Warn("cannot enable the table's TTL: expired items will not be deleted", "table", o.Table, "attribute", TTLAttribute, "err", err)
	}
	return s3store.CreateBucket(ctx, awsclients.NewS3(o.AWS, o.S3Endpoint), o.Bucket)
}

// How long enableTTL waits for a new table to become ACTIVE (DynamoDB refuses
// UpdateTimeToLive while a table is CREATING), and how often it asks.
const (
	ttlWait      = time.Minute
	ttlWaitEvery = time.Second
)

// enableTTL enables TTL on TTLAttribute unless it already is. A TTL someone set
// on another attribute is left alone (and reported), not replaced.
func enableTTL(ctx context.Context, c *dynamodb.Client, table string) error {
	cur, err := c.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: aws.String(table)})
	if err != nil {
		return err
	}
	if d := cur.TimeToLiveDescription; d != nil {
		switch d.TimeToLiveStatus {
		case ddbtypes.TimeToLiveStatusEnabled, ddbtypes.TimeToLiveStatusEnabling:
			if aws.ToString(d.AttributeName) == TTLAttribute {
				return nil
			}
			return fmt.Errorf("the table's TTL is on attribute %q", aws.ToString(d.AttributeName))
		case ddbtypes.TimeToLiveStatusDisabling:
			return errors.New("the table's TTL is being disabled; DynamoDB allows enabling it again only later")
		}
	}
	deadline := time.Now().Add(ttlWait)
	for {
		_, err := c.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{
			TableName:               aws.String(table),
			TimeToLiveSpecification: &ddbtypes.TimeToLiveSpecification{AttributeName: aws.String(TTLAttribute), Enabled: aws.Bool(true)},
		})
		var inUse *ddbtypes.ResourceInUseException
		if !errors.As(err, &inUse) || time.Now().After(deadline) {
			return err
		}
		t := time.NewTimer(ttlWaitEvery)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// Logger is the JSON logger every process uses.
func Logger() *slog.Logger {
	return slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// FromLambdaEnv builds the API inside a Lambda function: AWS configuration
// from the execution environment, BULKHEAD_TABLE and BULKHEAD_BUCKET naming
// the resources. Clients are built once, outside the handler.
func FromLambdaEnv(ctx context.Context) (*api.API, error) {
	cfg, err := awsclients.FromEnvironment(ctx)
	if err != nil {
		return nil, err
	}
	// Tracing starts before any client is built, so that every client
	// built from cfg records its calls.
	tc := tracing.ConfigFromEnv(os.Getenv)
	tc.Region, tc.Credentials = cfg.Region, cfg.Credentials
	if _, err := tracing.Start(ctx, tc); err != nil {
		return nil, err
	}
	tracing.InstrumentAWS(&cfg)
	models, err := ModelsFromEnv(ctx, &cfg)
	if err != nil {
		return nil, err
	}
	guard, err := ToolGuardFromEnv()
	if err != nil {
		return nil, err
	}
	getenv := lambdaGetenv(os.Getenv)
	retention, err := AuditRetentionFromEnv(getenv)
	if err != nil {
		return nil, err
	}
	o := Options{AWS: cfg, Table: getenv("BULKHEAD_TABLE"), Bucket: getenv("BULKHEAD_BUCKET"), Model: models.Offline,
		Providers: models.Providers, Logger: Logger(),
		Metrics: metrics.New(os.Stdout, nil), ToolGuard: guard, AuditRetention: retention}
	// Functions that seal or open tool secrets have the KMS key's id.
	if getenv(sealed.EnvKeyID) != "" {
		if o.Sealer, err = sealed.FromEnv(getenv, cfg, ""); err != nil {
			return nil, err
		}
	}
	// Data-plane functions assume the tenant-access role per tenant; the
	// stack sets BULKHEAD_TENANT_ROLE_ARN on those only. Unset (or empty, as
	// sam local can be told with an --env-vars file) they keep their own
	// credentials.
	if role := getenv(EnvTenantRoleARN); role != "" {
		o.TenantCreds = tenantcreds.NewProvider(sts.NewFromConfig(cfg), role,
			tenantcreds.Params{TableARN: getenv("BULKHEAD_TABLE_ARN"), Bucket: o.Bucket}, nil)
		if err := o.TenantCreds.Validate(); err != nil {
			return nil, err
		}
	}
	// The admin function manages API Gateway keys when the stack gives it
	// the usage plans.
	if os.Getenv("BULKHEAD_USAGE_PLAN_STARTER") != "" {
		ec, err := apigw.ConfigFromEnv(os.Getenv)
		if err != nil {
			return nil, err
		}
		o.Edge = apigw.New(apigateway.NewFromConfig(cfg), ec, dynamo.New(awsclients.NewDynamoDB(cfg, ""), o.Table, nil).EdgeKeyCounter())
	}
	return New(o), nil
}

// ServeFunction is the whole main of a Lambda function: it builds the API
// once from the environment and serves the named function's handler.
func ServeFunction(name string) {
	serve(func(a *api.API) any { return tracing.Handler(name, a.Function(name)) })
}

// ServeStreamingFunction runs one API function as a Lambda handler whose
// response streams (API Gateway response transfer mode STREAM).
func ServeStreamingFunction(name string) {
	serve(func(a *api.API) any { return tracing.StreamHandler(name, a.StreamFunction(name)) })
}

// ServeAuthorizer is the main of the authorizer function.
func ServeAuthorizer() {
	serve(func(a *api.API) any { return tracing.Handler(api.FnAuthorizer, a.Authorizer) })
}

// ServeBilling is the main of the billing function: its routes and the
// monthly close on a schedule.
func ServeBilling() {
	serve(func(a *api.API) any { return tracing.Handler(api.FnBilling, a.BillingHandler()) })
}

// serve builds the API from the environment and serves the handler it
// gives. A function that cannot start says why through the Runtime API
// (the failed invocation carries the message, in AWS and under sam local)
// as well as in its log, then exits.
func serve(handler func(*api.API) any) {
	a, err := FromLambdaEnv(context.Background())
	if err != nil {
		Logger().Error("function init failed", "error", err.Error())
		if runtimeAPI := os.Getenv(EnvRuntimeAPI); runtimeAPI != "" {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			if rerr := reportInitError(ctx, runtimeAPI, err); rerr != nil {
				Logger().Error("init error not reported to the Runtime API", "error", rerr.Error())
			}
			cancel()
		}
		os.Exit(1)
	}
	lambda.Start(handler(a))
}
