package stacks

import (
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/jsii-runtime-go"

	"github.com/bulkhead-dev/bulkhead/pkg/api"
	"github.com/bulkhead-dev/bulkhead/pkg/sealed"
)

// EnvSealingKeyID names the KMS key tenant tool secrets are sealed with
// (pkg/sealed.FromEnv).
const EnvSealingKeyID = sealed.EnvKeyID

// sealingActions are the KMS actions each function that touches tenant tool
// secrets needs: the agents function seals them when a tool is written (and
// opens them to check a change), the execute function only opens them.
var sealingActions = map[string][]string{
	api.FnAgents:  {"kms:GenerateDataKey", "kms:Decrypt"},
	api.FnExecute: {"kms:Decrypt"},
}

// sealing creates the key tenant tool secrets are sealed with (envelope
// encryption, pkg/sealed) and lets the functions that seal or open them use
// it. The key holds data: losing it loses every sealed secret, so it is kept
// when the stack goes unless the data goes too.
func (p *Platform) sealing() {
	p.SealingKey = awskms.NewKey(p.Construct, jsii.String("SealingKey"), &awskms.KeyProps{
		Description:       jsii.String("Seals tenant tool secrets (pkg/sealed)"),
		EnableKeyRotation: jsii.Bool(true),
		RemovalPolicy:     p.removal(),
	})
	for _, name := range FunctionNames() {
		actions, ok := sealingActions[name]
		if !ok {
			continue
		}
		// The exact actions rather than the grant helpers, which add
		// Encrypt and ReEncrypt*; and every call must name a tenant in its
		// encryption context, as pkg/sealed always does.
		p.Roles[name].AddToPrincipalPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Sid:       jsii.String("SealTenantSecrets"),
			Actions:   jsii.Strings(actions...),
			Resources: &[]*string{p.SealingKey.KeyArn()},
			Conditions: &map[string]any{
				"StringLike": map[string]any{"kms:EncryptionContext:" + tenantTagKey: "?*"},
			},
		}))
		p.Functions[name].AddEnvironment(jsii.String(EnvSealingKeyID), p.SealingKey.KeyArn(), nil)
	}
}
