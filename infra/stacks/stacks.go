package stacks

import (
	"fmt"
	"regexp"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/bulkhead-dev/bulkhead/pkg/api"
)

// PoolStackName is the pool stack's name.
const PoolStackName = "Bulkhead"

// SiloStackPrefix + a tenant id is a silo stack's name.
const SiloStackPrefix = "BulkheadTenant-"

// ExampleSiloTenant is the silo tenant `make synth` shows when no silo tenant
// is configured.
const ExampleSiloTenant = "example"

// MaxSiloTenantIDLength keeps "BulkheadTenant-<id>-authorizer" within Lambda's
// 64-character function names.
const MaxSiloTenantIDLength = 32

// siloTenantPattern is a tenant id that can also name a CloudFormation stack
// (no "_", unlike tenant ids in general) and its functions.
var siloTenantPattern = regexp.MustCompile(`^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$`)

// ValidSiloTenantID reports whether id can have a silo stack.
func ValidSiloTenantID(id string) bool {
	return len(id) <= MaxSiloTenantIDLength && siloTenantPattern.MatchString(id)
}

// DefaultSiloConcurrency is the concurrency a silo stack reserves per
// function: the tenant can always run that much, and never more. It comes out
// of the account's unreserved concurrency (about 100 per silo).
func DefaultSiloConcurrency() map[string]int {
	return map[string]int{
		api.FnExecute:    50,
		api.FnAuthorizer: 20,
		api.FnAgents:     10,
		api.FnUsage:      4,
		api.FnKeys:       4,
		api.FnBilling:    2,
		api.FnAdmin:      2,
		api.FnHealth:     2,
	}
}

// PoolStackProps configure the pool stack.
type PoolStackProps struct {
	awscdk.StackProps
	// Platform configures the deployment; its TenantID must be empty.
	Platform PlatformProps
}

// PoolStack is the deployment every non-silo tenant shares.
type PoolStack struct {
	awscdk.Stack
	Platform *Platform
}

// NewPoolStack creates the pool stack. It also manages the account's API
// Gateway logging role, which the silo stacks rely on.
func NewPoolStack(scope constructs.Construct, id string, props *PoolStackProps) *PoolStack {
	if props == nil {
		props = &PoolStackProps{}
	}
	sp := props.StackProps
	if sp.Description == nil {
		sp.Description = jsii.String("Bulkhead pool: the API, functions, table and bucket shared by every pooled tenant")
	}
	if sp.TerminationProtection == nil {
		sp.TerminationProtection = jsii.Bool(!props.Platform.DestroyData)
	}
	stack := awscdk.NewStack(scope, jsii.String(id), &sp)
	awscdk.Tags_Of(stack).Add(jsii.String("bulkhead:deployment"), jsii.String("pool"), nil)

	pp := props.Platform
	if pp.TenantID != "" {
		panic("NewPoolStack: a pool has no tenant id")
	}
	pp.ManageAPIGatewayAccount = true
	return &PoolStack{Stack: stack, Platform: NewPlatform(stack, "Platform", &pp)}
}

// SiloStackProps configure a silo stack.
type SiloStackProps struct {
	awscdk.StackProps
	// TenantID is the silo's only tenant (ValidSiloTenantID).
	TenantID string
	// Platform configures the deployment. ReservedConcurrency defaults to
	// DefaultSiloConcurrency().
	Platform PlatformProps
}

// SiloStack is one dedicated tenant's deployment: the same Platform as the
// pool, with its own table, bucket, functions (with reserved concurrency),
// API and usage plans.
type SiloStack struct {
	awscdk.Stack
	TenantID string
	Platform *Platform
}

// NewSiloStack creates a silo stack. Deploy the pool first in the account and
// Region: the silo's API logs through the account role the pool manages.
func NewSiloStack(scope constructs.Construct, id string, props *SiloStackProps) *SiloStack {
	if props == nil || !ValidSiloTenantID(props.TenantID) {
		panic(fmt.Sprintf("NewSiloStack %s: tenant id must match %s and be at most %d characters", id, siloTenantPattern, MaxSiloTenantIDLength))
	}
	sp := props.StackProps
	if sp.Description == nil {
		sp.Description = jsii.String("Bulkhead silo for tenant " + props.TenantID + ": its own API, functions, table and bucket")
	}
	if sp.TerminationProtection == nil {
		sp.TerminationProtection = jsii.Bool(!props.Platform.DestroyData)
	}
	stack := awscdk.NewStack(scope, jsii.String(id), &sp)
	awscdk.Tags_Of(stack).Add(jsii.String("bulkhead:deployment"), jsii.String("silo"), nil)
	awscdk.Tags_Of(stack).Add(jsii.String("bulkhead:tenant_id"), jsii.String(props.TenantID), nil)

	pp := props.Platform
	pp.TenantID = props.TenantID
	pp.ManageAPIGatewayAccount = false
	if pp.ReservedConcurrency == nil {
		pp.ReservedConcurrency = DefaultSiloConcurrency()
	}
	return &SiloStack{Stack: stack, TenantID: props.TenantID, Platform: NewPlatform(stack, "Platform", &pp)}
}
