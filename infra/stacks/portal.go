package stacks

import (
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudfront"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudfrontorigins"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awss3"
	"github.com/aws/aws-cdk-go/awscdk/v2/awss3deployment"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/bulkhead-dev/bulkhead/pkg/api"
)

// DefaultPortalDir holds the portal's static files (index.html, app.js,
// app.css), relative to the repository root: the files `bulkhead dev`
// serves locally are the ones the stack deploys.
const DefaultPortalDir = "pkg/portal/static"

// PortalContentSecurityPolicy is the Content-Security-Policy CloudFront adds
// to the portal's files: scripts, styles and API calls from the same origin
// only, nothing inline, no framing.
const PortalContentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; " +
	"img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// PortalURLOutput is the stack output with the portal's URL.
const PortalURLOutput = "PortalUrl"

// PortalAPIPaths are the distribution's path patterns that go to the REST
// API's stage instead of the portal bucket: the browser calls the API on the
// portal's own origin, so no CORS.
func PortalAPIPaths() []string {
	return []string{"/v1/*", "/health", api.OpenAPIPath, api.DocsPath, api.DocsPath + "/*"}
}

// portalOriginReadTimeout is how long CloudFront waits for the API's first
// byte, and between two bytes of a streamed response: 60 s is the most
// CloudFront allows without a quota increase.
const portalOriginReadTimeout = 60

// portal creates the portal: a private bucket with the static files and a
// CloudFront distribution serving them, with the API's paths routed to the
// REST API's stage on the same origin.
func (p *Platform) portal() {
	// Server access logs need SSE-S3; the files are rebuilt from the
	// repository on every deployment, so no versioning.
	p.PortalBucket = awss3.NewBucket(p.Construct, jsii.String("PortalBucket"), &awss3.BucketProps{
		BlockPublicAccess:      awss3.BlockPublicAccess_BLOCK_ALL(),
		Encryption:             awss3.BucketEncryption_S3_MANAGED,
		EnforceSSL:             jsii.Bool(true),
		ObjectOwnership:        awss3.ObjectOwnership_BUCKET_OWNER_ENFORCED,
		ServerAccessLogsBucket: p.AccessLogBucket,
		ServerAccessLogsPrefix: jsii.String("portal-bucket/"),
		RemovalPolicy:          p.removal(),
	})

	headers := awscloudfront.NewResponseHeadersPolicy(p.Construct, jsii.String("PortalHeaders"), &awscloudfront.ResponseHeadersPolicyProps{
		ResponseHeadersPolicyName: jsii.String(p.name("portal-headers")),
		Comment:                   jsii.String("Security headers of the Bulkhead portal's static files"),
		SecurityHeadersBehavior: &awscloudfront.ResponseSecurityHeadersBehavior{
			ContentSecurityPolicy: &awscloudfront.ResponseHeadersContentSecurityPolicy{
				ContentSecurityPolicy: jsii.String(PortalContentSecurityPolicy),
				Override:              jsii.Bool(true),
			},
			StrictTransportSecurity: &awscloudfront.ResponseHeadersStrictTransportSecurity{
				AccessControlMaxAge: awscdk.Duration_Days(jsii.Number(365)),
				IncludeSubdomains:   jsii.Bool(true),
				Override:            jsii.Bool(true),
			},
			ContentTypeOptions: &awscloudfront.ResponseHeadersContentTypeOptions{Override: jsii.Bool(true)},
			ReferrerPolicy: &awscloudfront.ResponseHeadersReferrerPolicy{
				ReferrerPolicy: awscloudfront.HeadersReferrerPolicy_NO_REFERRER,
				Override:       jsii.Bool(true),
			},
			FrameOptions: &awscloudfront.ResponseHeadersFrameOptions{
				FrameOption: awscloudfront.HeadersFrameOption_DENY,
				Override:    jsii.Bool(true),
			},
		},
	})

	// The API's stage: the execute-api domain, the stage as origin path.
	apiOrigin := awscloudfrontorigins.NewRestApiOrigin(p.API, &awscloudfrontorigins.RestApiOriginProps{
		ReadTimeout: awscdk.Duration_Seconds(jsii.Number(portalOriginReadTimeout)),
	})
	apiBehavior := &awscloudfront.BehaviorOptions{
		Origin: apiOrigin,
		// A redirect would turn a POST into a GET: plain HTTP is refused.
		ViewerProtocolPolicy: awscloudfront.ViewerProtocolPolicy_HTTPS_ONLY,
		AllowedMethods:       awscloudfront.AllowedMethods_ALLOW_ALL(),
		CachePolicy:          awscloudfront.CachePolicy_CACHING_DISABLED(),
		// Every viewer header but Host (API Gateway answers to its own
		// name): Authorization, Idempotency-Key, X-Bulkhead-Depth, Accept;
		// and the query string.
		OriginRequestPolicy: awscloudfront.OriginRequestPolicy_ALL_VIEWER_EXCEPT_HOST_HEADER(),
		Compress:            jsii.Bool(false),
	}
	behaviors := map[string]*awscloudfront.BehaviorOptions{}
	for _, path := range PortalAPIPaths() {
		behaviors[path] = apiBehavior
	}

	p.Distribution = awscloudfront.NewDistribution(p.Construct, jsii.String("PortalDistribution"), &awscloudfront.DistributionProps{
		Comment:           jsii.String(p.name("portal")),
		DefaultRootObject: jsii.String("index.html"),
		DefaultBehavior: &awscloudfront.BehaviorOptions{
			Origin:                awscloudfrontorigins.S3BucketOrigin_WithOriginAccessControl(p.PortalBucket, nil),
			ViewerProtocolPolicy:  awscloudfront.ViewerProtocolPolicy_REDIRECT_TO_HTTPS,
			AllowedMethods:        awscloudfront.AllowedMethods_ALLOW_GET_HEAD(),
			CachePolicy:           awscloudfront.CachePolicy_CACHING_OPTIMIZED(),
			ResponseHeadersPolicy: headers,
			Compress:              jsii.Bool(true),
		},
		AdditionalBehaviors: &behaviors,
		HttpVersion:         awscloudfront.HttpVersion_HTTP2_AND_3,
		// Standard logs to the stack's access-log bucket (90 days).
		EnableLogging: jsii.Bool(true),
		LogBucket:     p.AccessLogBucket,
		LogFilePrefix: jsii.String("portal-distribution/"),
	})

	// The deployment's handler logs to a group of the stack with a
	// retention, with a role of its own and no managed policy (the CDK's
	// default role carries AWSLambdaBasicExecutionRole): the log group's
	// write grant, and what BucketDeployment grants it on the asset and
	// portal buckets and the distribution.
	logs := awslogs.NewLogGroup(p.Construct, jsii.String("PortalDeploymentLogs"), &awslogs.LogGroupProps{
		Retention:     awslogs.RetentionDays_ONE_MONTH,
		RemovalPolicy: p.removal(),
	})
	p.PortalDeploymentRole = awsiam.NewRole(p.Construct, jsii.String("PortalDeploymentRole"), &awsiam.RoleProps{
		AssumedBy:   awsiam.NewServicePrincipal(jsii.String("lambda.amazonaws.com"), nil),
		Description: jsii.String("Execution role of the function copying the portal's files to the portal bucket"),
	})
	logs.GrantWrite(p.PortalDeploymentRole)
	p.PortalDeployment = awss3deployment.NewBucketDeployment(p.Construct, jsii.String("PortalDeployment"), &awss3deployment.BucketDeploymentProps{
		Sources:           &[]awss3deployment.ISource{awss3deployment.Source_Asset(jsii.String(p.props.PortalDir), nil)},
		DestinationBucket: p.PortalBucket,
		// Files no longer in the directory are removed; the cached copies
		// are invalidated on every change.
		Prune:             jsii.Bool(true),
		Distribution:      p.Distribution,
		DistributionPaths: jsii.Strings("/*"),
		// With destroyData the files go with the stack, so the bucket can.
		RetainOnDelete: jsii.Bool(!p.props.DestroyData),
		LogGroup:       logs,
		Role:           p.PortalDeploymentRole,
	})

	awscdk.NewCfnOutput(p.stack, jsii.String(PortalURLOutput), &awscdk.CfnOutputProps{
		Description: jsii.String("The Bulkhead portal (CloudFront): its files from S3, /v1/*, /health, /openapi.json and /docs from the API"),
		Value:       awscdk.Fn_Join(jsii.String(""), &[]*string{jsii.String("https://"), p.Distribution.DistributionDomainName()}),
	})
}

// portalSuppressions records the cdk-nag findings the portal accepts.
func (p *Platform) portalSuppressions() {
	suppress(p.Distribution, true,
		Suppression{
			Rule: "AwsSolutions-CFR1",
			Reason: "Tenants and their users may be anywhere: the portal has no geographic restriction, " +
				"and the API it calls has none either.",
		},
		Suppression{
			Rule: "AwsSolutions-CFR2",
			Reason: "No WAF web ACL, as on the API's stage (APIG3): a web ACL has a monthly and a per-request cost, and the API " +
				"stays reachable at its execute-api URL, so a web ACL on the distribution alone would not cover it. Abuse is " +
				"bounded by the authorizer's token validation, the per-tenant usage plans and the quotas enforced in DynamoDB; " +
				"the portal's own files are static. Associate a web ACL per deployment if needed.",
		},
		Suppression{
			Rule: "AwsSolutions-CFR4",
			Reason: "No custom domain: the distribution serves *.cloudfront.net with CloudFront's default certificate, with " +
				"which CloudFront sets the minimum protocol itself (a minimum such as TLSv1.2_2021 needs a custom domain and an " +
				"ACM certificate in us-east-1). Viewers are redirected to HTTPS or refused plain HTTP; the origins are reached " +
				"over TLS only.",
		},
	)

	bucket := "<" + p.logicalID(p.PortalBucket) + ".Arn>"
	suppress(p.PortalDeploymentRole, true,
		Suppression{
			Rule: "AwsSolutions-IAM5",
			Reason: "BucketDeployment's grants to the function copying the portal's files: read on the CDK asset bucket's objects " +
				"(the zipped directory), read, write and delete on the portal bucket's objects (it syncs the bucket with the " +
				"directory, removing files no longer there), nothing on any other bucket.",
			AppliesTo: []string{
				"Action::s3:GetBucket*", "Action::s3:GetObject*", "Action::s3:List*", "Action::s3:Abort*", "Action::s3:DeleteObject*",
				"Resource::arn:<AWS::Partition>:s3:::cdk-hnb659fds-assets-<AWS::AccountId>-<AWS::Region>/*",
				"Resource::" + bucket + "/*",
			},
		},
		Suppression{
			Rule: "AwsSolutions-IAM5",
			Reason: "BucketDeployment grants cloudfront:CreateInvalidation and cloudfront:GetInvalidation on *; the function " +
				"invalidates only the portal distribution named in its custom resource's properties, after each copy.",
			AppliesTo: []string{"Resource::*"},
		},
	)

	// BucketDeployment's handler is one function per stack, created by the
	// CDK at the stack's root with the runtime the CDK chooses.
	for _, c := range *p.stack.Node().Children() {
		if strings.HasPrefix(*c.Node().Id(), "Custom::CDKBucketDeployment") {
			suppress(c.(constructs.IConstruct), true, Suppression{
				Rule: "AwsSolutions-L1",
				Reason: "The aws-s3-deployment handler (Python, with the AWS CLI layer) runs on the runtime aws-cdk-lib " +
					"pins for it, which moves with the CDK version in go.mod.",
			})
		}
	}
}
