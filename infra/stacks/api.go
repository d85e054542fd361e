package stacks

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsapigateway"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/jsii-runtime-go"

	"github.com/bulkhead-dev/bulkhead/pkg/api"
	"github.com/bulkhead-dev/bulkhead/pkg/bulkhead"
)

// AuthorizerCacheTTLSeconds is how long API Gateway caches the authorizer's
// answer per token: the worst-case delay between revoking a key (or
// suspending a tenant) and its refusal at the edge.
const AuthorizerCacheTTLSeconds = 60

// TokenValidationRegex is the authorizer's identity validation: API Gateway
// answers 401 itself, without invoking the authorizer, when the Authorization
// header cannot hold an API key. It accepts at least what the authorizer
// accepts (pkg/api: a case-insensitive "Bearer", then bk_live_, the tenant id
// and _ (tn_ and 16 base32 characters; absent from keys made before keys
// named their tenant), and 43 base64url characters) so that it only ever
// saves invocations.
const TokenValidationRegex = `^[Bb][Ee][Aa][Rr][Ee][Rr]\s+bk_live_(tn_[a-z2-7]{16}_)?[A-Za-z0-9_-]{43}\s*$`

// accessLogFormat is one JSON line per request. tenant_id and status share
// their names with the functions' logs, so the same Contributor Insights
// rules read both; status is a number for the rules' numeric filters. No
// header, body or key value is logged.
const accessLogFormat = `{"requestId":"$context.requestId","extendedRequestId":"$context.extendedRequestId",` +
	`"requestTime":"$context.requestTime","ip":"$context.identity.sourceIp","caller":"$context.identity.caller",` +
	`"userArn":"$context.identity.userArn","httpMethod":"$context.httpMethod","resourcePath":"$context.resourcePath",` +
	`"path":"$context.path","status":$context.status,"protocol":"$context.protocol","responseLength":"$context.responseLength",` +
	`"responseLatency":"$context.responseLatency","integrationLatency":"$context.integrationLatency",` +
	`"tenant_id":"$context.authorizer.tenant_id","tier":"$context.authorizer.tier","key_id":"$context.authorizer.key_id",` +
	`"apiKeyId":"$context.identity.apiKeyId","error":"$context.error.responseType","xrayTraceId":"$context.xrayTraceId"}`

// GatewayResponse is one of API Gateway's own answers, rewritten into the
// platform's error shape {"error":{"code":...,"message":...}}.
type GatewayResponse struct {
	Type       string // API Gateway response type, e.g. "THROTTLED"
	StatusCode string
	Code       string // the platform's error code (a literal or a $context variable)
	// Message is a JSON string literal, or an unquoted $context variable
	// that renders as one ($context.error.messageString).
	Message string
	Headers map[string]string
}

// GatewayResponses are the responses API Gateway answers with on its own:
// the authorizer's refusals, the usage plans' throttle and quota, and every
// other 4XX and 5XX. Gateway response templates are plain variable
// substitution (no VTL), so a Deny from the authorizer carries its code and
// message in its context (error_code, message).
func GatewayResponses() []GatewayResponse {
	return []GatewayResponse{
		{Type: "UNAUTHORIZED", StatusCode: "401", Code: "unauthenticated", Message: `"Missing or invalid API key"`,
			Headers: map[string]string{"WWW-Authenticate": "'Bearer'"}},
		{Type: "ACCESS_DENIED", StatusCode: "403", Code: "$context.authorizer." + api.CtxErrorCode, Message: `"$context.authorizer.` + api.CtxMessage + `"`},
		{Type: "THROTTLED", StatusCode: "429", Code: "rate_limited", Message: `"Request rate of the tier exceeded"`,
			Headers: map[string]string{"Retry-After": "'1'"}},
		{Type: "QUOTA_EXCEEDED", StatusCode: "429", Code: "rate_limited", Message: `"Daily request quota of the tier exceeded"`},
		{Type: "MISSING_AUTHENTICATION_TOKEN", StatusCode: "403", Code: "forbidden",
			Message: `"Missing authentication: unknown route, or an operator route without a SigV4 signature"`},
		{Type: "INVALID_API_KEY", StatusCode: "403", Code: "forbidden", Message: `"API key is not enabled for this API"`},
		{Type: "RESOURCE_NOT_FOUND", StatusCode: "404", Code: "not_found", Message: "$context.error.messageString"},
		{Type: "REQUEST_TOO_LARGE", StatusCode: "413", Code: "too_large", Message: "$context.error.messageString"},
		{Type: "AUTHORIZER_FAILURE", StatusCode: "503", Code: "unavailable", Message: `"Authorization is temporarily unavailable"`,
			Headers: map[string]string{"Retry-After": "'1'"}},
		{Type: "DEFAULT_4XX", Code: "invalid_request", Message: "$context.error.messageString"},
		{Type: "DEFAULT_5XX", Code: "internal", Message: "$context.error.messageString"},
	}
}

// Template renders the response's body template.
func (g GatewayResponse) Template() string {
	return fmt.Sprintf(`{"error":{"code":"%s","message":%s,"request_id":"$context.requestId"}}`, g.Code, g.Message)
}

// restAPI creates the REST API: authorizer, one method per route of
// api.Routes(), usage plans and gateway responses.
func (p *Platform) restAPI() {
	p.AccessLogs = awslogs.NewLogGroup(p.Construct, jsii.String("ApiAccessLogs"), &awslogs.LogGroupProps{
		Retention:     awslogs.RetentionDays_ONE_MONTH,
		RemovalPolicy: p.removal(),
	})
	props := &awsapigateway.RestApiProps{
		RestApiName:      p.stack.StackName(),
		Description:      jsii.String("Bulkhead multi-tenant agent platform API"),
		EndpointTypes:    &[]awsapigateway.EndpointType{awsapigateway.EndpointType_REGIONAL},
		ApiKeySourceType: awsapigateway.ApiKeySourceType_AUTHORIZER,
		CloudWatchRole:   jsii.Bool(p.props.ManageAPIGatewayAccount),
		Deploy:           jsii.Bool(true),
		DeployOptions: &awsapigateway.StageOptions{
			StageName:      jsii.String(p.props.StageName),
			TracingEnabled: jsii.Bool(true),
			// Execution logs at ERROR: authorizer and integration failures,
			// never request or response bodies (DataTraceEnabled stays off).
			LoggingLevel:         awsapigateway.MethodLoggingLevel_ERROR,
			DataTraceEnabled:     jsii.Bool(false),
			MetricsEnabled:       jsii.Bool(false),
			AccessLogDestination: awsapigateway.NewLogGroupLogDestination(p.AccessLogs),
			AccessLogFormat:      awsapigateway.AccessLogFormat_Custom(jsii.String(accessLogFormat)),
		},
	}
	if p.props.ManageAPIGatewayAccount {
		// The role is account-wide: deleting this stack must not take
		// execution logging away from the silo stacks.
		props.CloudWatchRoleRemovalPolicy = awscdk.RemovalPolicy_RETAIN
	}
	p.API = awsapigateway.NewRestApi(p.Construct, jsii.String("Api"), props)

	// API Gateway would create the execution log group itself, without a
	// retention; creating it first gives it one.
	execLogs := awslogs.NewLogGroup(p.Construct, jsii.String("ApiExecutionLogs"), &awslogs.LogGroupProps{
		LogGroupName:  awscdk.Fn_Join(jsii.String(""), &[]*string{jsii.String("API-Gateway-Execution-Logs_"), p.API.RestApiId(), jsii.String("/" + p.props.StageName)}),
		Retention:     awslogs.RetentionDays_ONE_MONTH,
		RemovalPolicy: p.removal(),
	})
	p.API.DeploymentStage().Node().AddDependency(execLogs)

	p.Authorizer = awsapigateway.NewTokenAuthorizer(p.Construct, jsii.String("Authorizer"), &awsapigateway.TokenAuthorizerProps{
		AuthorizerName:  jsii.String("api-key"),
		Handler:         p.Functions[api.FnAuthorizer],
		IdentitySource:  awsapigateway.IdentitySource_Header(jsii.String("Authorization")),
		ResultsCacheTtl: awscdk.Duration_Seconds(jsii.Number(AuthorizerCacheTTLSeconds)),
		ValidationRegex: jsii.String(TokenValidationRegex),
	})

	integrations := map[string]awsapigateway.LambdaIntegration{}
	for _, r := range api.Routes() {
		integ, ok := integrations[r.Function]
		if !ok {
			integ = p.integration(r.Function)
			integrations[r.Function] = integ
		}
		opts := &awsapigateway.MethodOptions{OperationName: jsii.String(operationName(r))}
		switch r.Auth {
		case api.AuthNone:
			opts.AuthorizationType = awsapigateway.AuthorizationType_NONE
		case api.AuthTenant:
			opts.AuthorizationType = awsapigateway.AuthorizationType_CUSTOM
			opts.Authorizer = p.Authorizer
			opts.ApiKeyRequired = jsii.Bool(true)
		case api.AuthAdmin:
			opts.AuthorizationType = awsapigateway.AuthorizationType_IAM
		default:
			panic(fmt.Sprintf("route %s %s: unknown auth %q", r.Method, r.Resource, r.Auth))
		}
		res := p.API.Root().ResourceForPath(jsii.String(r.Resource))
		p.Methods[r.Method+" "+r.Resource] = res.AddMethod(jsii.String(r.Method), integ, opts)
	}

	for _, t := range bulkhead.Tiers() {
		p.UsagePlans[t.Name] = p.API.AddUsagePlan(jsii.String("UsagePlan"+exportName(string(t.Name))), &awsapigateway.UsagePlanProps{
			Name:        jsii.String(p.name(string(t.Name))),
			Description: jsii.String(fmt.Sprintf("Bulkhead %s tier: %d req/s, burst %d, %d requests a day (pkg/bulkhead/tiers.go)", t.Name, t.Throttle.RatePerSecond, t.Throttle.Burst, t.Throttle.DailyRequests)),
			Throttle: &awsapigateway.ThrottleSettings{
				RateLimit:  jsii.Number(float64(t.Throttle.RatePerSecond)),
				BurstLimit: jsii.Number(float64(t.Throttle.Burst)),
			},
			Quota: &awsapigateway.QuotaSettings{
				Limit:  jsii.Number(float64(t.Throttle.DailyRequests)),
				Period: awsapigateway.Period_DAY,
			},
			ApiStages: &[]*awsapigateway.UsagePlanPerApiStage{{Api: p.API, Stage: p.API.DeploymentStage()}},
		})
	}

	for _, g := range GatewayResponses() {
		opts := &awsapigateway.GatewayResponseOptions{
			Type:      awsapigateway.ResponseType_Of(jsii.String(g.Type)),
			Templates: &map[string]*string{"application/json": jsii.String(g.Template())},
		}
		if g.StatusCode != "" {
			opts.StatusCode = jsii.String(g.StatusCode)
		}
		headers := map[string]*string{"Content-Type": jsii.String("'application/json'")}
		for k, v := range g.Headers {
			headers[k] = jsii.String(v)
		}
		opts.ResponseHeaders = &headers
		p.API.AddGatewayResponse(jsii.String("Response"+strings.ReplaceAll(g.Type, "_", "")), opts)
	}
}

// integration is the Lambda proxy integration of one function. The admin
// function is referenced by ARN, not by construct: it reads the usage-plan
// ids from its environment, the plans depend on the stage, the stage on the
// deployment and the deployment on every method, so a method referring to
// the admin function itself would close a cycle. Its invoke permission is
// granted below, scoped to the operator routes.
func (p *Platform) integration(name string) awsapigateway.LambdaIntegration {
	opts := &awsapigateway.LambdaIntegrationOptions{
		Proxy: jsii.Bool(true),
		// No console test invocations: one permission per method, not two.
		AllowTestInvoke: jsii.Bool(false),
	}
	if name == api.FnExecute {
		// Response streaming (InvokeWithResponseStream, the
		// 2021-11-15/.../response-streaming-invocations URI): streamed and
		// buffered executions alike may run past 29 seconds, up to 15 minutes.
		opts.ResponseTransferMode = awsapigateway.ResponseTransferMode_STREAM
		opts.Timeout = awscdk.Duration_Millis(jsii.Number(float64(p.props.ExecuteIntegrationTimeout.Milliseconds())))
	}
	var fn awslambda.IFunction = p.Functions[name]
	if name == api.FnAdmin {
		adminFn := p.Functions[name]
		fn = awslambda.Function_FromFunctionAttributes(p.Construct, jsii.String("AdminByArn"), &awslambda.FunctionAttributes{
			FunctionArn: p.stack.FormatArn(&awscdk.ArnComponents{
				Service:      jsii.String("lambda"),
				Resource:     jsii.String("function"),
				ResourceName: jsii.String(p.name(name)),
				ArnFormat:    awscdk.ArnFormat_COLON_RESOURCE_NAME,
			}),
			// No permission per method from the integration (it would name
			// the function by ARN only, with no dependency on it): the
			// function's own permission below covers the operator routes.
			SameEnvironment: jsii.Bool(false),
			SkipPermissions: jsii.Bool(true),
		})
		adminFn.AddPermission(jsii.String("InvokeFromOperatorRoutes"), &awslambda.Permission{
			Principal: awsiam.NewServicePrincipal(jsii.String("apigateway.amazonaws.com"), nil),
			SourceArn: p.API.ArnForExecuteApi(jsii.String("*"), jsii.String("/v1/admin/*"), jsii.String(p.props.StageName)),
		})
	}
	return awsapigateway.NewLambdaIntegration(fn, opts)
}

// adminGrants lets the admin function manage API keys and attach them to
// this API's usage plans (pkg/apigw), and nothing else of API Gateway.
func (p *Platform) adminGrants() {
	role := p.Roles[api.FnAdmin]
	apigwArn := func(path string) *string {
		return awscdk.Fn_Join(jsii.String(""), &[]*string{
			jsii.String("arn:"), awscdk.Aws_PARTITION(), jsii.String(":apigateway:"), awscdk.Aws_REGION(), jsii.String("::" + path),
		})
	}
	var planKeys []*string
	for _, t := range bulkhead.Tiers() {
		plan := p.UsagePlans[t.Name]
		planKeys = append(planKeys,
			awscdk.Fn_Join(jsii.String(""), &[]*string{apigwArn("/usageplans/"), plan.UsagePlanId(), jsii.String("/keys")}),
			awscdk.Fn_Join(jsii.String(""), &[]*string{apigwArn("/usageplans/"), plan.UsagePlanId(), jsii.String("/keys/*")}),
		)
		p.Functions[api.FnAdmin].AddEnvironment(jsii.String(EnvUsagePlan+strings.ToUpper(string(t.Name))), plan.UsagePlanId(), nil)
	}
	if p.props.MaxTenantKeys > 0 {
		p.Functions[api.FnAdmin].AddEnvironment(jsii.String(EnvMaxTenantKeys), jsii.String(fmt.Sprint(p.props.MaxTenantKeys)), nil)
	}
	role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid: jsii.String("ApiKeys"),
		// CreateApiKey and GetApiKeys (POST, GET /apikeys); UpdateApiKey
		// and DeleteApiKey (PATCH, DELETE /apikeys/{id}).
		Actions:   jsii.Strings("apigateway:GET", "apigateway:POST", "apigateway:PATCH", "apigateway:DELETE"),
		Resources: &[]*string{apigwArn("/apikeys"), apigwArn("/apikeys/*")},
	}))
	role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid: jsii.String("UsagePlanKeys"),
		// CreateUsagePlanKey, GetUsagePlanKey, DeleteUsagePlanKey on this
		// API's plans only.
		Actions:   jsii.Strings("apigateway:GET", "apigateway:POST", "apigateway:DELETE"),
		Resources: &planKeys,
	}))
	role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid: jsii.String("TagApiKeysOnCreate"),
		// CreateApiKey passes tags (tenant_id or bulkhead_shared_tier), which
		// API Gateway authorises as a PUT on /tags; only those keys.
		Actions:   jsii.Strings("apigateway:PUT"),
		Resources: &[]*string{apigwArn("/tags/*")},
		Conditions: &map[string]any{
			"ForAllValues:StringEquals": map[string]any{"aws:TagKeys": []string{"tenant_id", "bulkhead_shared_tier"}},
		},
	}))
}

var pathParam = regexp.MustCompile(`\{([a-z_]+)\}`)

// operationName names a route for API Gateway (and SDK generators):
// "GET /v1/agents/{agent_id}" → "GetV1AgentsByAgentId".
func operationName(r api.Route) string {
	var b strings.Builder
	b.WriteString(exportName(strings.ToLower(r.Method)))
	for _, seg := range strings.Split(strings.Trim(r.Resource, "/"), "/") {
		if m := pathParam.FindStringSubmatch(seg); m != nil {
			b.WriteString("By")
			seg = m[1]
		}
		for _, w := range strings.FieldsFunc(seg, func(c rune) bool { return c == '_' || c == '.' }) {
			b.WriteString(exportName(w))
		}
	}
	return b.String()
}
