// Package tracing traces the platform with AWS X-Ray inside Lambda: the AWS
// SDK clients are instrumented and execution phases become subsegments
// annotated with the tenant. Outside Lambda (the local platform, tests)
// every call here is a plain function call, so nothing waits on a daemon
// that is not there.
package tracing

import (
	"context"
	"os"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-xray-sdk-go/instrumentation/awsv2"
	"github.com/aws/aws-xray-sdk-go/strategy/ctxmissing"
	"github.com/aws/aws-xray-sdk-go/xray"
)

var (
	enabled   bool
	configure sync.Once
)

// Enabled reports whether X-Ray tracing is on: inside a Lambda function with
// active tracing, which sets AWS_XRAY_DAEMON_ADDRESS.
func Enabled() bool {
	configure.Do(func() {
		enabled = os.Getenv("AWS_LAMBDA_FUNCTION_NAME") != "" && os.Getenv("AWS_XRAY_DAEMON_ADDRESS") != ""
		if enabled {
			// A call outside any segment (a background goroutine) is
			// logged, never a panic.
			_ = xray.Configure(xray.Config{ContextMissingStrategy: ctxmissing.NewDefaultLogErrorStrategy()})
		}
	})
	return enabled
}

// InstrumentAWS makes every client built from cfg record its calls as X-Ray
// subsegments, when tracing is on.
func InstrumentAWS(cfg *aws.Config) {
	if Enabled() {
		awsv2.AWSV2Instrumentor(&cfg.APIOptions)
	}
}

// Span runs fn as the named subsegment (authorize, admit, model, tools,
// persist), recording its error, when tracing is on; otherwise it just runs fn.
func Span(ctx context.Context, name string, fn func(context.Context) error) error {
	if !Enabled() {
		return fn(ctx)
	}
	return xray.Capture(ctx, name, fn)
}

// Annotate adds an indexed annotation (tenant_id) to the current segment,
// when tracing is on.
func Annotate(ctx context.Context, key, value string) {
	if Enabled() && value != "" {
		_ = xray.AddAnnotation(ctx, key, value)
	}
}
