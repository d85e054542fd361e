package stacks

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
	"github.com/cdklabs/cdk-nag-go/cdknag/v2"

	"github.com/bulkhead-dev/bulkhead/pkg/api"
	"github.com/bulkhead-dev/bulkhead/pkg/bulkhead"
)

// Suppression is one accepted cdk-nag AwsSolutions finding.
type Suppression struct {
	Rule   string
	Reason string
	// AppliesTo narrows a granular finding (IAM4, IAM5) to these values.
	AppliesTo []string
}

// suppress records suppressions on c (and, with children, on everything in it).
func suppress(c constructs.IConstruct, children bool, ss ...Suppression) {
	var list []*cdknag.NagPackSuppression
	for _, s := range ss {
		n := &cdknag.NagPackSuppression{Id: jsii.String(s.Rule), Reason: jsii.String(s.Reason)}
		if len(s.AppliesTo) > 0 {
			applies := make([]any, len(s.AppliesTo))
			for i, a := range s.AppliesTo {
				applies[i] = a
			}
			n.AppliesTo = &applies
		}
		list = append(list, n)
	}
	cdknag.NagSuppressions_AddResourceSuppressions(c, &list, jsii.Bool(children))
}

// logicalID is the logical id of a construct's CloudFormation resource, as
// cdk-nag writes it in granular findings ("<LogicalId.Arn>").
func (p *Platform) logicalID(c constructs.IConstruct) string {
	return *p.stack.GetLogicalId(c.Node().DefaultChild().(awscdk.CfnElement))
}

// suppressions records, next to the resources they concern, the cdk-nag
// AwsSolutions findings this design accepts, each with its reason. Every
// other finding fails the tests (and `make synth`, which runs the checks).
func (p *Platform) suppressions() {
	xray := Suppression{
		Rule: "AwsSolutions-IAM5",
		Reason: "Active tracing, and the spans sent to X-Ray's OTLP endpoint (authorized as xray:PutTraceSegments): " +
			"xray:PutTraceSegments and xray:PutTelemetryRecords support no resource-level permissions " +
			"(https://docs.aws.amazon.com/service-authorization/latest/reference/list_awsx-ray.html), so their resource is *.",
		AppliesTo: []string{"Resource::*"},
	}
	for _, name := range FunctionNames() {
		suppress(p.Roles[name], true, xray)
	}

	bucket := "<" + p.logicalID(p.Bucket) + ".Arn>"
	suppress(p.Roles[api.FnBilling], true, Suppression{
		Rule: "AwsSolutions-IAM5",
		Reason: "The monthly close writes tenants/<tenant>/invoices/<month>.json for every tenant: PutObject only, " +
			"and only under the invoices folder of each tenant prefix.",
		AppliesTo: []string{"Resource::" + bucket + "/tenants/*/invoices/*"},
	})
	suppress(p.Roles[api.FnBilling], true, Suppression{
		Rule: "AwsSolutions-IAM5",
		Reason: "Reclaiming a dead execution's lease removes the transcript turn it may have written, in any tenant: " +
			"DeleteObject only, and only on turn objects (tenants/<tenant>/conversations/<conversation>/turns/<turn>.json).",
		AppliesTo: []string{"Resource::" + bucket + "/tenants/*/conversations/*/turns/*"},
	})
	suppress(p.TenantRole, true, Suppression{
		Rule: "AwsSolutions-IAM5",
		Reason: "The wildcard is inside one tenant's prefix: tenants/${aws:PrincipalTag/tenant_id}/*, the tenant being the " +
			"session tag the trust policy demands; the STS session policy (pkg/tenantcreds) narrows it to the same prefix again.",
		AppliesTo: []string{"Resource::" + bucket + "/tenants/<aws:PrincipalTag/tenant_id>/*"},
	})

	planKeys := []string{
		"Resource::arn:<AWS::Partition>:apigateway:<AWS::Region>::/apikeys/*",
		"Resource::arn:<AWS::Partition>:apigateway:<AWS::Region>::/tags/*",
	}
	for _, t := range bulkhead.Tiers() {
		planKeys = append(planKeys, "Resource::arn:<AWS::Partition>:apigateway:<AWS::Region>::/usageplans/<"+p.logicalID(p.UsagePlans[t.Name])+">/keys/*")
	}
	suppress(p.Roles[api.FnAdmin], true, Suppression{
		Rule: "AwsSolutions-IAM5",
		Reason: "Onboarding (pkg/apigw) creates one API Gateway key per tenant at run time, so their ids cannot be named: " +
			"the admin function may manage API keys (/apikeys/*), tag them at creation with tenant_id or bulkhead_shared_tier only " +
			"(/tags/*, conditioned on aws:TagKeys), and attach keys to this API's three usage plans only (/usageplans/<plan>/keys/*).",
		AppliesTo: planKeys,
	})

	suppress(p.API, false, Suppression{
		Rule: "AwsSolutions-APIG2",
		Reason: "Every handler validates its own input (strict JSON, unknown fields refused, limits) and answers in the platform's " +
			"error shape; a gateway validator would duplicate those rules and answer in another shape.",
	})
	suppress(p.API, true, Suppression{
		Rule: "AwsSolutions-COG4",
		Reason: "No Cognito by design: tenants authenticate with API keys through the Lambda TOKEN authorizer, operators with " +
			"SigV4 (AWS_IAM); only GET /health and the API reference (/openapi.json, /docs) are open.",
	})
	suppress(p.API.DeploymentStage(), true, Suppression{
		Rule: "AwsSolutions-APIG3",
		Reason: "No WAF web ACL in the stack (per-request cost): abuse is bounded by the authorizer's token validation, the " +
			"per-tenant usage plans, and the quotas enforced in DynamoDB. Associate a web ACL per deployment if needed.",
	})
	open := map[string]string{
		"GET /health":              "GET /health is the unauthenticated liveness check; it reads no data and answers a constant.",
		"GET " + api.OpenAPIPath:   "GET /openapi.json is the API's public OpenAPI document; it reads no data and answers a constant.",
		"GET " + api.DocsPath:      "GET /docs is the API's public reference, rendered from the OpenAPI document; it reads no data.",
		"GET " + api.DocsStylePath: "GET /docs/style.css is the reference's style sheet; it reads no data and answers a constant.",
	}
	for _, r := range api.Routes() {
		if r.Auth != api.AuthNone {
			continue
		}
		key := r.Method + " " + r.Resource
		reason, ok := open[key]
		if !ok {
			panic("route " + key + " has no authorization and no reason to be open")
		}
		if m := p.Methods[key]; m != nil {
			suppress(m, true, Suppression{Rule: "AwsSolutions-APIG4", Reason: reason})
		}
	}
	p.portalSuppressions()
	if p.props.ManageAPIGatewayAccount {
		if role := p.API.Node().TryFindChild(jsii.String("CloudWatchRole")); role != nil {
			suppress(role, true, Suppression{
				Rule: "AwsSolutions-IAM4",
				Reason: "The account-wide role API Gateway writes execution logs with uses AmazonAPIGatewayPushToCloudWatchLogs, " +
					"the policy AWS documents for it; API Gateway names the log groups itself, so no narrower policy can be written.",
				AppliesTo: []string{"Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs"},
			})
		}
	}
}
