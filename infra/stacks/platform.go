package stacks

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsapigateway"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudfront"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatch"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsdynamodb"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsevents"
	"github.com/aws/aws-cdk-go/awscdk/v2/awseventstargets"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awss3"
	"github.com/aws/aws-cdk-go/awscdk/v2/awss3deployment"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssns"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/bulkhead-dev/bulkhead/pkg/api"
	"github.com/bulkhead-dev/bulkhead/pkg/bulkhead"
	"github.com/bulkhead-dev/bulkhead/pkg/dynamo"
	"github.com/bulkhead-dev/bulkhead/pkg/tenantcreds"
)

// Environment variables the functions read (pkg/platform, pkg/apigw and
// pkg/tenantcreds document their meaning).
const (
	EnvTable         = "BULKHEAD_TABLE"
	EnvBucket        = "BULKHEAD_BUCKET"
	EnvTableARN      = "BULKHEAD_TABLE_ARN"
	EnvTenantRoleARN = "BULKHEAD_TENANT_ROLE_ARN"
	EnvUsagePlan     = "BULKHEAD_USAGE_PLAN_" // + the tier's name, upper-cased
	EnvMaxTenantKeys = "BULKHEAD_MAX_TENANT_KEYS"
	EnvGoMemLimit    = "GOMEMLIMIT" // the Go runtime's soft memory limit: api.GoMemLimit
	// EnvOTelExporter is tracing.EnvExporter: "xray" sends each sampled
	// invocation's spans, signed, to X-Ray's OTLP endpoint (authorized as
	// xray:PutTraceSegments, which active tracing grants).
	EnvOTelExporter = "BULKHEAD_OTEL_EXPORTER"
	// The AWS SDK's endpoint overrides, declared empty (the SDK ignores an
	// empty value): sam local passes a function only the variables its
	// template declares, and events/sam-env.json points these at a running
	// `bulkhead dev`'s stores.
	EnvEndpointDynamoDB = "AWS_ENDPOINT_URL_DYNAMODB"
	EnvEndpointS3       = "AWS_ENDPOINT_URL_S3"
	tenantTagKey        = "tenant_id" // tenantcreds.TenantTagKey: the session tag carrying the tenant
	tenantPartition     = "TENANT#"   // the partition-key prefix of every tenant-owned item
	tenantObjectsRoot   = "tenants/"  // the key prefix of every tenant-owned object
)

// Access a function has to the platform's data.
type access int

const (
	// noData: the function touches neither the table nor the bucket (health).
	noData access = iota
	// direct: the function's own role reaches the table (control plane:
	// the authorizer, keys, billing and admin touch APIKEY#, INVOICES# and
	// TENANTS partitions that no tenant session may reach).
	direct
	// tenantScoped: the function reaches data only through the tenant-access
	// role, with a session policy confining it to one tenant (data plane).
	tenantScoped
)

// functionSpec bounds one Lambda function's run and says how it reaches
// data; its memory is api.MemoryMB's, the one place the sizes are kept.
type functionSpec struct {
	timeout time.Duration
	access  access
}

// MaxStreamingIntegrationTimeout is API Gateway's ceiling on an integration
// with response transfer mode STREAM (and Lambda's on a function).
const MaxStreamingIntegrationTimeout = 15 * time.Minute

// executeSettleMargin is the time the execute function has, past the largest
// tier's wall time, to stop the execution and settle it.
const executeSettleMargin = 30 * time.Second

// functionSpecs has one entry per directory of functions/ (a test checks
// that). execute's timeout is above the largest tier's wall-time ceiling so that a guard, not Lambda, ends the longest execution and it is
// still settled; billing's monthly close walks every tenant.
var functionSpecs = map[string]functionSpec{
	api.FnAuthorizer: {timeout: 30 * time.Second, access: direct},
	api.FnHealth:     {timeout: 30 * time.Second, access: noData},
	api.FnAgents:     {timeout: 30 * time.Second, access: tenantScoped},
	api.FnExecute:    {timeout: bulkhead.MaxWallTimeCeiling() + executeSettleMargin, access: tenantScoped},
	api.FnUsage:      {timeout: 30 * time.Second, access: tenantScoped},
	api.FnBilling:    {timeout: 15 * time.Minute, access: direct},
	api.FnKeys:       {timeout: 30 * time.Second, access: direct},
	api.FnAdmin:      {timeout: 30 * time.Second, access: direct},
}

// FunctionNames lists the functions the platform deploys, sorted.
func FunctionNames() []string {
	names := make([]string, 0, len(functionSpecs))
	for n := range functionSpecs {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// DataPlaneFunctions lists the functions that reach tenant data only through
// the tenant-access role, sorted.
func DataPlaneFunctions() []string {
	var names []string
	for _, n := range FunctionNames() {
		if functionSpecs[n].access == tenantScoped {
			names = append(names, n)
		}
	}
	return names
}

// itemActions and objectActions are the platform's data actions, from the
// one list the tenant session policy uses too.
var (
	itemActions   = tenantcreds.ItemActions()
	objectActions = tenantcreds.ObjectActions()
)

// PlatformProps configure a Platform.
type PlatformProps struct {
	// AssetDir is the directory holding <function>.zip for every function
	// ("dist", what `make build` writes, when empty).
	AssetDir string
	// PortalDir is the directory of the portal's static files the stack
	// deploys to its portal bucket (DefaultPortalDir when empty).
	PortalDir string
	// TenantID is the silo tenant, or "" for the pool (it only labels: the
	// functions serve whichever tenants the table holds).
	TenantID string
	// StageName is the API stage ("prod" when empty).
	StageName string
	// DestroyData makes the table, the buckets and the log groups go with
	// the stack (RemovalPolicy DESTROY, no deletion protection). Off by
	// default: tenant data outlives any stack update or deletion.
	DestroyData bool
	// ReservedConcurrency reserves concurrency per function (silo stacks).
	ReservedConcurrency map[string]int
	// ManageAPIGatewayAccount creates the account-wide role API Gateway
	// writes its execution logs with. One stack per account and Region
	// should (the pool); the others rely on it.
	ManageAPIGatewayAccount bool
	// MaxTenantKeys, when positive, is passed to the admin function as
	// BULKHEAD_MAX_TENANT_KEYS (pkg/apigw's default applies otherwise).
	MaxTenantKeys int
	// ExecuteIntegrationTimeout is how long API Gateway waits for the
	// execute function's streamed response (its integration uses response
	// transfer mode STREAM). Zero means the execute function's timeout, which
	// covers the largest tier's wall time plus settlement; at most
	// MaxStreamingIntegrationTimeout.
	ExecuteIntegrationTimeout time.Duration
	// AlarmEmail, when set, subscribes an address to the alarm topic.
	AlarmEmail string
	// Models configure the model providers beyond Bedrock.
	Models ModelProps
}

// Platform is everything one Bulkhead deployment (the pool, or one silo
// tenant) is made of.
type Platform struct {
	constructs.Construct
	// Table is the single DynamoDB table.
	Table awsdynamodb.Table
	// Bucket holds tenant objects under tenants/<id>/.
	Bucket awss3.Bucket
	// AccessLogBucket receives the server access logs of Bucket and
	// PortalBucket and the portal distribution's standard logs.
	AccessLogBucket awss3.Bucket
	// PortalBucket holds the portal's static files, served only through
	// Distribution (origin access control).
	PortalBucket awss3.Bucket
	// Distribution is the portal's CloudFront distribution: the files from
	// PortalBucket, the API's paths from the REST API's stage.
	Distribution awscloudfront.Distribution
	// PortalDeployment copies PortalDir to PortalBucket on every deployment,
	// with PortalDeploymentRole.
	PortalDeployment     awss3deployment.BucketDeployment
	PortalDeploymentRole awsiam.Role
	// Functions maps function names (api.Fn*) to their Lambda functions.
	Functions map[string]awslambda.Function
	// Roles maps function names to their execution roles.
	Roles map[string]awsiam.Role
	// LogGroups maps function names to their log groups.
	LogGroups map[string]awslogs.LogGroup
	// TenantRole is the role data-plane functions assume per tenant.
	TenantRole awsiam.Role
	// SealingKey seals tenant tool secrets (pkg/sealed).
	SealingKey awskms.Key
	// API is the REST API, Authorizer its TOKEN authorizer.
	API        awsapigateway.RestApi
	Authorizer awsapigateway.TokenAuthorizer
	// AccessLogs is the API's access log group (JSON, one line a request).
	AccessLogs awslogs.LogGroup
	// UsagePlans maps tiers to their usage plans.
	UsagePlans map[bulkhead.TierName]awsapigateway.UsagePlan
	// Methods maps "METHOD /resource" (api.Routes()) to API methods.
	Methods map[string]awsapigateway.Method
	// BillingSchedule runs the monthly close.
	BillingSchedule awsevents.Rule
	// ReclaimSchedule reclaims the leases of executions that died, every minute.
	ReclaimSchedule awsevents.Rule
	// Dashboard, Alarms and AlarmTopic are the observability.
	Dashboard  awscloudwatch.Dashboard
	Alarms     map[string]awscloudwatch.Alarm
	AlarmTopic awssns.Topic
	// InsightRules are Contributor Insights rules: top tenants by requests,
	// by tokens and by server errors.
	InsightRules map[string]awscloudwatch.CfnInsightRule
	// Queries are the Logs Insights saved queries, by QueryTenantErrors and
	// QueryTopTenantsSpend.
	Queries map[string]awslogs.CfnQueryDefinition

	props PlatformProps
	stack awscdk.Stack
}

// NewPlatform builds a whole deployment inside scope.
func NewPlatform(scope constructs.Construct, id string, props *PlatformProps) *Platform {
	p := &Platform{
		Functions:    map[string]awslambda.Function{},
		Roles:        map[string]awsiam.Role{},
		LogGroups:    map[string]awslogs.LogGroup{},
		UsagePlans:   map[bulkhead.TierName]awsapigateway.UsagePlan{},
		Methods:      map[string]awsapigateway.Method{},
		Alarms:       map[string]awscloudwatch.Alarm{},
		InsightRules: map[string]awscloudwatch.CfnInsightRule{},
		Queries:      map[string]awslogs.CfnQueryDefinition{},
	}
	// p embeds its construct; children are created in p.Construct (jsii
	// cannot take the Go struct itself as a scope).
	p.Construct = constructs.NewConstruct(scope, jsii.String(id))
	if props != nil {
		p.props = *props
	}
	if p.props.AssetDir == "" {
		p.props.AssetDir = "dist"
	}
	if p.props.PortalDir == "" {
		p.props.PortalDir = DefaultPortalDir
	}
	if p.props.StageName == "" {
		p.props.StageName = "prod"
	}
	if p.props.ExecuteIntegrationTimeout == 0 {
		p.props.ExecuteIntegrationTimeout = functionSpecs[api.FnExecute].timeout
	}
	if p.props.ExecuteIntegrationTimeout > MaxStreamingIntegrationTimeout {
		panic(fmt.Sprintf("ExecuteIntegrationTimeout %s exceeds API Gateway's %s for streamed responses",
			p.props.ExecuteIntegrationTimeout, MaxStreamingIntegrationTimeout))
	}
	p.stack = awscdk.Stack_Of(p.Construct)

	p.data()
	p.functions()
	p.tenantAccessRole()
	p.modelAccess()
	p.sealing()
	p.controlPlaneGrants()
	p.restAPI()
	p.portal()
	p.adminGrants()
	p.billingSchedule()
	p.observability()
	p.suppressions()
	return p
}

// removal is the removal policy of everything that holds data or logs.
func (p *Platform) removal() awscdk.RemovalPolicy {
	if p.props.DestroyData {
		return awscdk.RemovalPolicy_DESTROY
	}
	return awscdk.RemovalPolicy_RETAIN
}

// name is a physical name unique to this stack: "<stack>-<suffix>".
func (p *Platform) name(suffix string) string {
	return *p.stack.StackName() + "-" + suffix
}

// data creates the table and the buckets.
func (p *Platform) data() {
	p.Table = awsdynamodb.NewTable(p.Construct, jsii.String("Table"), &awsdynamodb.TableProps{
		PartitionKey: &awsdynamodb.Attribute{Name: jsii.String("PK"), Type: awsdynamodb.AttributeType_STRING},
		SortKey:      &awsdynamodb.Attribute{Name: jsii.String("SK"), Type: awsdynamodb.AttributeType_STRING},
		BillingMode:  awsdynamodb.BillingMode_PAY_PER_REQUEST,
		PointInTimeRecoverySpecification: &awsdynamodb.PointInTimeRecoverySpecification{
			PointInTimeRecoveryEnabled: jsii.Bool(true),
		},
		// Counter windows, leases and idempotency records carry expires_at;
		// TTL deletion is lazy and the code never relies on it.
		TimeToLiveAttribute: jsii.String("expires_at"),
		DeletionProtection:  jsii.Bool(!p.props.DestroyData),
		Encryption:          awsdynamodb.TableEncryption_AWS_MANAGED,
		// Which tenant partitions get throttled: the per-partition ceiling
		// is the platform's per-tenant scale limit (README, "Scale limits").
		ContributorInsightsSpecification: &awsdynamodb.ContributorInsightsSpecification{
			Enabled: jsii.Bool(true),
			Mode:    awsdynamodb.ContributorInsightsMode_THROTTLED_KEYS,
		},
		RemovalPolicy: p.removal(),
	})
	// The audit log's sparse index: only audit items carry its keys, so the
	// operator lists every tenant's entries by day without a scan.
	p.Table.AddGlobalSecondaryIndex(&awsdynamodb.GlobalSecondaryIndexProps{
		IndexName:      jsii.String(dynamo.AuditIndex),
		PartitionKey:   &awsdynamodb.Attribute{Name: jsii.String(dynamo.AttrAuditDay), Type: awsdynamodb.AttributeType_STRING},
		SortKey:        &awsdynamodb.Attribute{Name: jsii.String(dynamo.AttrAuditSort), Type: awsdynamodb.AttributeType_STRING},
		ProjectionType: awsdynamodb.ProjectionType_ALL,
	})

	p.AccessLogBucket = awss3.NewBucket(p.Construct, jsii.String("AccessLogBucket"), &awss3.BucketProps{
		BlockPublicAccess: awss3.BlockPublicAccess_BLOCK_ALL(),
		// Server access logs can only be delivered to SSE-S3 buckets.
		Encryption: awss3.BucketEncryption_S3_MANAGED,
		EnforceSSL: jsii.Bool(true),
		// The portal distribution's standard logs need ACLs enabled:
		// CloudFront adds the log delivery account to the bucket's ACL.
		// Objects written with bucket-owner-full-control still belong to
		// the bucket owner.
		ObjectOwnership: awss3.ObjectOwnership_BUCKET_OWNER_PREFERRED,
		LifecycleRules: &[]*awss3.LifecycleRule{{
			Id:         jsii.String("expire-access-logs"),
			Expiration: awscdk.Duration_Days(jsii.Number(90)),
		}},
		RemovalPolicy: p.removal(),
	})

	p.Bucket = awss3.NewBucket(p.Construct, jsii.String("Bucket"), &awss3.BucketProps{
		BlockPublicAccess: awss3.BlockPublicAccess_BLOCK_ALL(),
		Encryption:        awss3.BucketEncryption_S3_MANAGED,
		EnforceSSL:        jsii.Bool(true),
		Versioned:         jsii.Bool(true),
		ObjectOwnership:   awss3.ObjectOwnership_BUCKET_OWNER_ENFORCED,
		LifecycleRules: &[]*awss3.LifecycleRule{{
			Id:                                  jsii.String("expire-noncurrent-versions"),
			NoncurrentVersionExpiration:         awscdk.Duration_Days(jsii.Number(30)),
			AbortIncompleteMultipartUploadAfter: awscdk.Duration_Days(jsii.Number(7)),
			ExpiredObjectDeleteMarker:           jsii.Bool(true),
		}},
		ServerAccessLogsBucket: p.AccessLogBucket,
		ServerAccessLogsPrefix: jsii.String("data-bucket/"),
		RemovalPolicy:          p.removal(),
	})
}

// functions creates every function with its own role and log group. The
// roles get no AWS managed policy: the log group's write grant replaces
// AWSLambdaBasicExecutionRole.
func (p *Platform) functions() {
	for _, name := range FunctionNames() {
		spec := functionSpecs[name]
		id := "Fn" + exportName(name)
		fnName := p.name(name)
		if len(fnName) > 64 {
			panic(fmt.Sprintf("function name %q is longer than Lambda's 64 characters: use a shorter stack or tenant id", fnName))
		}
		logs := awslogs.NewLogGroup(p.Construct, jsii.String(id+"Logs"), &awslogs.LogGroupProps{
			LogGroupName:  jsii.String("/aws/lambda/" + fnName),
			Retention:     awslogs.RetentionDays_ONE_MONTH,
			RemovalPolicy: p.removal(),
		})
		role := awsiam.NewRole(p.Construct, jsii.String(id+"Role"), &awsiam.RoleProps{
			AssumedBy:   awsiam.NewServicePrincipal(jsii.String("lambda.amazonaws.com"), nil),
			Description: jsii.String("Execution role of the " + name + " function"),
		})
		logs.GrantWrite(role)

		env := map[string]*string{
			EnvTable:            p.Table.TableName(),
			EnvBucket:           p.Bucket.BucketName(),
			EnvEndpointDynamoDB: jsii.String(""),
			EnvEndpointS3:       jsii.String(""),
			// The Go collector works to keep the heap under 80% of the
			// function's memory rather than letting it reach Lambda's limit.
			EnvGoMemLimit: jsii.String(api.GoMemLimit(name)),
			// Spans go straight to X-Ray's OTLP endpoint: no collector
			// layer, no extension process (infra/README.md, Tracing).
			EnvOTelExporter: jsii.String("xray"),
		}
		var reserved *float64
		if n, ok := p.props.ReservedConcurrency[name]; ok {
			reserved = jsii.Number(float64(n))
		}
		fn := awslambda.NewFunction(p.Construct, jsii.String(id), &awslambda.FunctionProps{
			FunctionName: jsii.String(fnName),
			Description:  jsii.String("Bulkhead " + name + " (functions/" + name + ")"),
			Runtime:      awslambda.Runtime_PROVIDED_AL2023(),
			Architecture: awslambda.Architecture_ARM_64(),
			Handler:      jsii.String("bootstrap"),
			Code:         awslambda.Code_FromAsset(jsii.String(filepath.Join(p.props.AssetDir, name+".zip")), nil),
			MemorySize:   jsii.Number(float64(api.MemoryMB(name))),
			Timeout:      awscdk.Duration_Seconds(jsii.Number(spec.timeout.Seconds())),
			Tracing:      awslambda.Tracing_ACTIVE,
			Role:         role,
			LogGroup:     logs,
			Environment:  &env,
			// Nothing invokes a function from itself: let Lambda stop a loop.
			RecursiveLoop:                awslambda.RecursiveLoop_TERMINATE,
			ReservedConcurrentExecutions: reserved,
		})
		p.Functions[name] = fn
		p.Roles[name] = role
		p.LogGroups[name] = logs
	}
}

// tenantAccessRole creates the role data-plane functions assume for one
// tenant at a time (pkg/tenantcreds). Its trust policy admits exactly the
// data-plane execution roles, and only with a tenant_id session tag; its own
// policy already confines every session to the partition and prefix of the
// tenant in that tag, and the session policy narrows it again.
func (p *Platform) tenantAccessRole() {
	// Each data-plane role may assume it only with a tenant_id session tag
	// (and may set that tag): a session without a tenant is refused.
	var principals []awsiam.IPrincipal
	for _, name := range DataPlaneFunctions() {
		principals = append(principals, awsiam.NewArnPrincipal(p.Roles[name].RoleArn()).
			WithConditions(&map[string]any{
				"StringLike": map[string]any{"aws:RequestTag/" + tenantTagKey: "?*"},
			}).
			WithSessionTags())
	}
	p.TenantRole = awsiam.NewRole(p.Construct, jsii.String("TenantAccessRole"), &awsiam.RoleProps{
		AssumedBy:          awsiam.NewCompositePrincipal(principals...),
		Description:        jsii.String("Assumed by the data-plane functions with a per-tenant session policy (pkg/tenantcreds)"),
		MaxSessionDuration: awscdk.Duration_Hours(jsii.Number(1)),
	})
	tag := "${aws:PrincipalTag/" + tenantTagKey + "}"
	p.TenantRole.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:       jsii.String("TenantItems"),
		Actions:   jsii.Strings(itemActions...),
		Resources: &[]*string{p.Table.TableArn()},
		Conditions: &map[string]any{
			"ForAllValues:StringEquals": map[string]any{"dynamodb:LeadingKeys": []string{tenantPartition + tag}},
		},
	}))
	p.TenantRole.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:       jsii.String("TenantObjects"),
		Actions:   jsii.Strings(objectActions...),
		Resources: &[]*string{p.Bucket.ArnForObjects(jsii.String(tenantObjectsRoot + tag + "/*"))},
	}))
	p.TenantRole.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:       jsii.String("TenantListing"),
		Actions:   jsii.Strings("s3:ListBucket"),
		Resources: &[]*string{p.Bucket.BucketArn()},
		Conditions: &map[string]any{
			"StringLike": map[string]any{"s3:prefix": []string{tenantObjectsRoot + tag + "/*", tenantObjectsRoot + tag + "/"}},
		},
	}))

	for _, name := range DataPlaneFunctions() {
		p.Roles[name].AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Sid:       jsii.String("AssumeTenantAccessRole"),
			Actions:   jsii.Strings("sts:AssumeRole", "sts:TagSession"),
			Resources: &[]*string{p.TenantRole.RoleArn()},
		}))
		// The model catalogue is read with the function's own role, and only
		// it: the one partition outside every tenant's, read-only.
		p.Roles[name].AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Sid:       jsii.String("ModelCatalogue"),
			Actions:   jsii.Strings("dynamodb:GetItem", "dynamodb:Query"),
			Resources: &[]*string{p.Table.TableArn()},
			Conditions: &map[string]any{
				"ForAllValues:StringEquals": map[string]any{"dynamodb:LeadingKeys": []string{dynamo.ModelsPartition}},
			},
		}))
		p.Functions[name].AddEnvironment(jsii.String(EnvTenantRoleARN), p.TenantRole.RoleArn(), nil)
		p.Functions[name].AddEnvironment(jsii.String(EnvTableARN), p.Table.TableArn(), nil)
	}
}

// controlPlaneGrants gives the control-plane functions the item actions they
// use on the table, and billing the invoice objects it writes.
func (p *Platform) controlPlaneGrants() {
	tableActions := map[string][]string{
		// One BatchGetItem per request (the key and the tenant it names), or
		// two GetItem for a key made before keys named their tenant (the key,
		// then the tenant); nothing else.
		api.FnAuthorizer: {"dynamodb:BatchGetItem", "dynamodb:GetItem"},
		api.FnKeys:       itemActions,
		api.FnBilling:    itemActions,
		api.FnAdmin:      itemActions,
	}
	for _, name := range FunctionNames() {
		actions, ok := tableActions[name]
		if !ok {
			continue
		}
		p.Roles[name].AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Sid:       jsii.String("TableItems"),
			Actions:   jsii.Strings(actions...),
			Resources: &[]*string{p.Table.TableArn()},
		}))
	}
	// The operator's audit listing across tenants reads the audit index.
	p.Roles[api.FnAdmin].AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:       jsii.String("AuditIndex"),
		Actions:   jsii.Strings("dynamodb:Query"),
		Resources: &[]*string{jsii.String(*p.Table.TableArn() + "/index/" + dynamo.AuditIndex)},
	}))
	// The monthly close writes tenants/<id>/invoices/<month>.json.
	p.Roles[api.FnBilling].AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:       jsii.String("InvoiceObjects"),
		Actions:   jsii.Strings("s3:PutObject"),
		Resources: &[]*string{p.Bucket.ArnForObjects(jsii.String(tenantObjectsRoot + "*/invoices/*"))},
	}))
}

// billingSchedule runs the monthly close at 00:15 UTC on the 1st.
func (p *Platform) billingSchedule() {
	p.BillingSchedule = awsevents.NewRule(p.Construct, jsii.String("MonthlyClose"), &awsevents.RuleProps{
		Description: jsii.String("Close the previous month's invoices (billing function)"),
		Schedule:    awsevents.Schedule_Expression(jsii.String("cron(15 0 1 * ? *)")),
	})
	p.BillingSchedule.AddTarget(awseventstargets.NewLambdaFunction(p.Functions[api.FnBilling], &awseventstargets.LambdaFunctionProps{
		RetryAttempts: jsii.Number(4),
		MaxEventAge:   awscdk.Duration_Hours(jsii.Number(6)),
	}))
	// Every minute the billing function gives back what executions that died
	// without settling still hold (their leases expired): slots, reserved
	// tokens and spend, and their orphaned transcript turns. An execution
	// whose Lambda timed out or crashed is thus reclaimed promptly, not only
	// when a later admission finds it in the way.
	p.ReclaimSchedule = awsevents.NewRule(p.Construct, jsii.String("ReclaimLeases"), &awsevents.RuleProps{
		Description: jsii.String("Reclaim the leases of executions that died without settling (billing function)"),
		Schedule:    awsevents.Schedule_Rate(awscdk.Duration_Minutes(jsii.Number(1))),
	})
	p.ReclaimSchedule.AddTarget(awseventstargets.NewLambdaFunction(p.Functions[api.FnBilling], &awseventstargets.LambdaFunctionProps{
		Event:         awsevents.RuleTargetInput_FromObject(map[string]any{"action": api.ReclaimAction}),
		RetryAttempts: jsii.Number(0), // the next minute's run retries
	}))
	// The reclaim removes orphaned turns: tenants/<id>/conversations/<cid>/turns/<n>.json.
	p.Roles[api.FnBilling].AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:       jsii.String("OrphanedTurns"),
		Actions:   jsii.Strings("s3:DeleteObject"),
		Resources: &[]*string{p.Bucket.ArnForObjects(jsii.String(tenantObjectsRoot + "*/conversations/*/turns/*"))},
	}))
}

// exportName turns a function name into a construct id: "authorizer" → "Authorizer".
func exportName(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
