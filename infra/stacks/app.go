package stacks

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
	"github.com/cdklabs/cdk-nag-go/cdknag/v2"
)

// Context keys the app reads (cdk.json, or -c key=value on the cdk CLI).
const (
	// CtxSiloTenants: comma-separated tenant ids, one silo stack each.
	CtxSiloTenants = "siloTenants"
	// CtxExampleSilo: with no silo tenant, synthesize BulkheadTenant-example
	// (default true; `make deploy` turns it off).
	CtxExampleSilo = "exampleSilo"
	// CtxDestroyData: "true" lets the table, buckets and log groups go with
	// their stack (default: retained, with deletion protection).
	CtxDestroyData = "destroyData"
	// CtxNag: "true" runs the cdk-nag AwsSolutions checks at synthesis and
	// fails on any unsuppressed error.
	CtxNag = "nag"
	// CtxAssetDir: where the function zips are (default "dist").
	CtxAssetDir = "assetDir"
	// CtxPortalDir: the portal's static files the stacks deploy (default
	// DefaultPortalDir).
	CtxPortalDir = "portalDir"
	// CtxAlarmEmail: an address subscribed to the alarm topic.
	CtxAlarmEmail = "alarmEmail"
	// CtxMaxTenantKeys: BULKHEAD_MAX_TENANT_KEYS for the admin function.
	CtxMaxTenantKeys = "maxTenantKeys"
	// CtxOpenAIBaseURL: an OpenAI-compatible endpoint for openai/<model>
	// agents; CtxOpenAIKeySecret: the Secrets Manager secret (name) with its key.
	CtxOpenAIBaseURL   = "openaiBaseUrl"
	CtxOpenAIKeySecret = "openaiApiKeySecret"
	// CtxExecuteTimeout: API Gateway's timeout for execute, in seconds
	// (default: the execute function timeout; at most 15 minutes, as the
	// integration streams its response).
	CtxExecuteTimeout = "executeIntegrationTimeoutSeconds"
)

// AppConfig is the app's configuration, from its context.
type AppConfig struct {
	SiloTenants    []string
	ExampleSilo    bool
	DestroyData    bool
	Nag            bool
	AssetDir       string
	PortalDir      string
	AlarmEmail     string
	MaxTenantKeys  int
	ExecuteTimeout time.Duration
	Models         ModelProps
}

// ConfigFromContext reads the app's configuration through get (the app
// node's TryGetContext). Values may be JSON values (cdk.json) or strings
// (-c key=value).
func ConfigFromContext(get func(key string) any) (AppConfig, error) {
	cfg := AppConfig{ExampleSilo: true, AssetDir: "dist", PortalDir: DefaultPortalDir}
	var err error
	str := func(k string) string {
		switch v := get(k).(type) {
		case nil:
			return ""
		case string:
			return strings.TrimSpace(v)
		default:
			return strings.TrimSpace(fmt.Sprint(v))
		}
	}
	boolean := func(k string, def bool) bool {
		s := str(k)
		if s == "" {
			return def
		}
		b, perr := strconv.ParseBool(s)
		if perr != nil && err == nil {
			err = fmt.Errorf("context %s=%q: want true or false", k, s)
		}
		return b
	}
	integer := func(k string) int {
		s := str(k)
		if s == "" {
			return 0
		}
		n, perr := strconv.Atoi(s)
		if (perr != nil || n < 0) && err == nil {
			err = fmt.Errorf("context %s=%q: want a non-negative integer", k, s)
		}
		return n
	}

	cfg.SiloTenants, err = ParseSiloTenants(str(CtxSiloTenants))
	cfg.ExampleSilo = boolean(CtxExampleSilo, true)
	cfg.DestroyData = boolean(CtxDestroyData, false)
	cfg.Nag = boolean(CtxNag, false)
	if s := str(CtxAssetDir); s != "" {
		cfg.AssetDir = s
	}
	if s := str(CtxPortalDir); s != "" {
		cfg.PortalDir = s
	}
	cfg.AlarmEmail = str(CtxAlarmEmail)
	cfg.MaxTenantKeys = integer(CtxMaxTenantKeys)
	cfg.Models = ModelProps{OpenAIBaseURL: str(CtxOpenAIBaseURL), OpenAIKeySecret: str(CtxOpenAIKeySecret)}
	if u := cfg.Models.OpenAIBaseURL; u != "" && !strings.HasPrefix(u, "https://") && !strings.HasPrefix(u, "http://") && err == nil {
		err = fmt.Errorf("context %s=%q: want an http(s) URL", CtxOpenAIBaseURL, u)
	}
	if n := integer(CtxExecuteTimeout); n > 0 {
		cfg.ExecuteTimeout = time.Duration(n) * time.Second
	}
	return cfg, err
}

// ParseSiloTenants splits a comma-separated list of silo tenant ids,
// refusing invalid and duplicate ids.
func ParseSiloTenants(s string) ([]string, error) {
	var ids []string
	seen := map[string]bool{}
	for _, id := range strings.Split(s, ",") {
		id = strings.TrimSpace(id)
		if id == "" {
			continue
		}
		if !ValidSiloTenantID(id) {
			return nil, fmt.Errorf("silo tenant %q: want 1 to %d characters of a-z, 0-9 and inner '-'", id, MaxSiloTenantIDLength)
		}
		if seen[id] {
			return nil, fmt.Errorf("silo tenant %q is listed twice", id)
		}
		seen[id] = true
		ids = append(ids, id)
	}
	return ids, nil
}

// SiloTenantsToSynthesize is the configured silo tenants, or the example
// tenant when there is none and the example is wanted.
func (c AppConfig) SiloTenantsToSynthesize() []string {
	if len(c.SiloTenants) == 0 && c.ExampleSilo {
		return []string{ExampleSiloTenant}
	}
	return c.SiloTenants
}

// ContextFromFile returns the "context" object of a cdk.json file. The cdk
// CLI passes it to the app itself; `go run ./infra` and the tests read it
// here, so the feature flags are the same however the app is run.
func ContextFromFile(path string) (map[string]any, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var f struct {
		Context map[string]any `json:"context"`
	}
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return f.Context, nil
}

// CLIContext is the context the cdk CLI gives every app it runs (cdk synth,
// cdk deploy) on top of cdk.json's, with the CLI's defaults. NewApp sets it
// too, so the app synthesized directly (`make synth`, the tests) writes the
// templates the CLI deploys: path metadata on every resource (which also
// changes the API deployment's logical id, a hash of the methods' rendered
// CloudFormation) and asset metadata (which sam local reads). These keys are
// reserved to the CLI: cdk.json must not set them.
func CLIContext() map[string]any {
	return map[string]any{
		"aws:cdk:enable-path-metadata":  true,
		"aws:cdk:enable-asset-metadata": true,
		"aws:cdk:bundling-stacks":       []any{"**"},
	}
}

// NewApp returns the app with context (cdk.json's, see ContextFromFile) over
// CLIContext, writing to outdir ("" = CDK_OUTDIR, as the CLI sets it). The
// CLI's own CDK_CONTEXT_JSON overrides both. Version reporting is off however
// the app runs: no AWS::CDK::Metadata resource.
func NewApp(context map[string]any, outdir string) awscdk.App {
	ctx := CLIContext()
	for k, v := range context {
		ctx[k] = v
	}
	props := &awscdk.AppProps{
		Context:            &ctx,
		AnalyticsReporting: jsii.Bool(false),
		StackTraces:        jsii.Bool(false),
	}
	if outdir != "" {
		props.Outdir = jsii.String(outdir)
	}
	return awscdk.NewApp(props)
}

// Stacks are the stacks of one app.
type Stacks struct {
	Pool  *PoolStack
	Silos []*SiloStack
}

// Build adds the pool stack and one silo stack per tenant to app.
func Build(app awscdk.App, cfg AppConfig, env *awscdk.Environment) Stacks {
	platform := PlatformProps{
		AssetDir:                  cfg.AssetDir,
		PortalDir:                 cfg.PortalDir,
		DestroyData:               cfg.DestroyData,
		AlarmEmail:                cfg.AlarmEmail,
		MaxTenantKeys:             cfg.MaxTenantKeys,
		ExecuteIntegrationTimeout: cfg.ExecuteTimeout,
		Models:                    cfg.Models,
	}
	out := Stacks{Pool: NewPoolStack(app, PoolStackName, &PoolStackProps{
		StackProps: awscdk.StackProps{Env: env},
		Platform:   platform,
	})}
	for _, id := range cfg.SiloTenantsToSynthesize() {
		silo := NewSiloStack(app, SiloStackPrefix+id, &SiloStackProps{
			StackProps: awscdk.StackProps{Env: env},
			TenantID:   id,
			Platform:   platform,
		})
		// The silo's API logs through the account role the pool manages:
		// the cdk CLI deploys the pool first.
		silo.AddStackDependency(out.Pool.Stack, jsii.String("the pool manages the account's API Gateway logging role"))
		out.Silos = append(out.Silos, silo)
	}
	if cfg.Nag {
		AddNagChecks(app)
	}
	return out
}

// AddNagChecks applies the cdk-nag AwsSolutions pack to everything in scope.
func AddNagChecks(scope constructs.IConstruct) {
	awscdk.Aspects_Of(scope).Add(cdknag.NewAwsSolutionsChecks(&cdknag.NagPackProps{Verbose: jsii.Bool(true)}), nil)
}

// ValidationReport lists, one per line, the violations recorded in outdir's
// validation-report.json by a synthesis that failed validation (the CDK
// fails synthesis on error annotations, unsuppressed cdk-nag findings
// among them), or "" when there is no report.
func ValidationReport(outdir string) string {
	b, err := os.ReadFile(filepath.Join(outdir, "validation-report.json"))
	if err != nil {
		return ""
	}
	var report struct {
		PluginReports []struct {
			Violations []struct {
				Description         string `json:"description"`
				ViolatingConstructs []struct {
					ConstructPath string `json:"constructPath"`
				} `json:"violatingConstructs"`
			} `json:"violations"`
		} `json:"pluginReports"`
	}
	if json.Unmarshal(b, &report) != nil {
		return ""
	}
	var out strings.Builder
	for _, p := range report.PluginReports {
		for _, v := range p.Violations {
			desc, _, _ := strings.Cut(v.Description, ":")
			for _, c := range v.ViolatingConstructs {
				fmt.Fprintf(&out, "\n\t%s at %s", desc, c.ConstructPath)
			}
		}
	}
	return out.String()
}
