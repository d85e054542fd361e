// Command infra is Bulkhead's AWS CDK app: the pool stack and one silo stack
// per tenant listed in the siloTenants context (see infra/stacks).
//
//	make synth                        # cdk.out/, offline, no AWS credentials
//	make synth SILO_TENANTS=acme,globex
//	make deploy                       # npx aws-cdk@2 deploy --all
package main

import (
	"fmt"
	"os"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/cxapi"
	"github.com/aws/jsii-runtime-go"

	"github.com/bulkhead-dev/bulkhead/infra/stacks"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "infra:", err)
		os.Exit(1)
	}
}

func run() error {
	defer jsii.Close()
	// The cdk CLI hands the app cdk.json's context (CDK_CONTEXT_JSON, which
	// takes precedence); run directly, the app reads it itself.
	ctx, err := stacks.ContextFromFile("cdk.json")
	if err != nil {
		return err
	}
	// The context the cdk CLI adds (stacks.CLIContext) is set here too: the
	// template is the same whichever way the app runs.
	app := stacks.NewApp(ctx, "")
	cfg, err := stacks.ConfigFromContext(func(k string) any { return app.Node().TryGetContext(jsii.String(k)) })
	if err != nil {
		return err
	}
	stacks.Build(app, cfg, environment())
	asm, err := synth(app)
	if err != nil {
		return err
	}
	if n := reportErrors(asm); n > 0 {
		return fmt.Errorf("%d synthesis errors", n)
	}
	return nil
}

// synth synthesizes the app. The CDK fails a synthesis with error annotations
// (unsuppressed cdk-nag findings when nag=true) by throwing, which jsii turns
// into a panic: that becomes an error listing the violations.
func synth(app awscdk.App) (asm cxapi.CloudAssembly, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("synthesis failed: %v%s", r, stacks.ValidationReport(*app.Outdir()))
		}
	}()
	return app.Synth(nil), nil
}

// environment pins the stacks to the account and Region the cdk CLI
// resolved (CDK_DEFAULT_ACCOUNT, CDK_DEFAULT_REGION); without them (make
// synth, tests) the stacks are environment-agnostic and need no credentials.
func environment() *awscdk.Environment {
	account, region := os.Getenv("CDK_DEFAULT_ACCOUNT"), os.Getenv("CDK_DEFAULT_REGION")
	if account == "" || region == "" {
		return nil
	}
	return &awscdk.Environment{Account: jsii.String(account), Region: jsii.String(region)}
}

// reportErrors prints every error annotation of the assembly and counts them.
func reportErrors(asm cxapi.CloudAssembly) int {
	n := 0
	for _, s := range *asm.Stacks() {
		for _, m := range *s.Messages() {
			if m.Level != cxapi.SynthesisMessageLevel_ERROR {
				continue
			}
			n++
			fmt.Fprintf(os.Stderr, "%s %s: %v\n", *s.StackName(), *m.Id, m.Entry.Data)
		}
	}
	return n
}
