package stacks

import (
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssecretsmanager"
	"github.com/aws/jsii-runtime-go"

	"github.com/bulkhead-dev/bulkhead/pkg/api"
)

// Environment variables of the model providers (pkg/platform.ModelsFromEnv).
const (
	EnvBedrock         = "BULKHEAD_BEDROCK"
	EnvOpenAIBaseURL   = "BULKHEAD_OPENAI_BASE_URL"
	EnvOpenAIKeySecret = "BULKHEAD_OPENAI_API_KEY_SECRET"
)

// ModelProps configure the model providers the execute function calls.
type ModelProps struct {
	// OpenAIBaseURL, when set, gives executions an OpenAI-compatible
	// endpoint for openai/<model> agents.
	OpenAIBaseURL string
	// OpenAIKeySecret names the Secrets Manager secret holding the
	// endpoint's key: the function reads it once per cold start, so the key
	// is in neither the template nor the function's environment.
	OpenAIKeySecret string
}

// modelAccess lets the execute function call the model providers: Bedrock
// (invoke and invoke-with-response-stream, on foundation models and the
// account's inference profiles) always, and the OpenAI-compatible endpoint
// with its key's secret when configured.
func (p *Platform) modelAccess() {
	fn, role := p.Functions[api.FnExecute], p.Roles[api.FnExecute]
	fn.AddEnvironment(jsii.String(EnvBedrock), jsii.String("on"), nil)
	role.AddToPrincipalPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:     jsii.String("InvokeBedrockModels"),
		Actions: jsii.Strings("bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream"),
		Resources: jsii.Strings(
			"arn:"+*p.stack.Partition()+":bedrock:*::foundation-model/*",
			"arn:"+*p.stack.Partition()+":bedrock:"+*p.stack.Region()+":"+*p.stack.Account()+":inference-profile/*",
		),
	}))
	suppress(role, true, Suppression{
		Rule: "AwsSolutions-IAM5",
		Reason: "Agents name their model at run time (bedrock/<model or inference profile id>, checked against the priced " +
			"catalogue and the tenant's tier): the execute function may invoke foundation models and this account's " +
			"inference profiles, InvokeModel and InvokeModelWithResponseStream only.",
		AppliesTo: []string{
			"Resource::arn:<AWS::Partition>:bedrock:*::foundation-model/*",
			"Resource::arn:<AWS::Partition>:bedrock:<AWS::Region>:<AWS::AccountId>:inference-profile/*",
		},
	})
	if p.props.Models.OpenAIBaseURL != "" {
		fn.AddEnvironment(jsii.String(EnvOpenAIBaseURL), jsii.String(p.props.Models.OpenAIBaseURL), nil)
	}
	if name := p.props.Models.OpenAIKeySecret; name != "" {
		secret := awssecretsmanager.Secret_FromSecretNameV2(p.Construct, jsii.String("OpenAIKeySecret"), jsii.String(name))
		secret.GrantRead(role, nil)
		suppress(role, true, Suppression{
			Rule: "AwsSolutions-IAM5",
			Reason: "A secret imported by name is matched with Secrets Manager's six-character suffix (-??????): " +
				"GetSecretValue and DescribeSecret on that one secret only.",
			AppliesTo: []string{"Resource::arn:<AWS::Partition>:secretsmanager:<AWS::Region>:<AWS::AccountId>:secret:" + name + "-??????"},
		})
		fn.AddEnvironment(jsii.String(EnvOpenAIKeySecret), secret.SecretName(), nil)
	}
}
