package tracing

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// InstrumentAWS makes every client built from cfg record each call (its
// retries included) as a client span named <Service>.<Operation>, with the
// rpc.* attributes X-Ray reads to draw the AWS service, when tracing is on.
// (OpenTelemetry's contrib instrumentation for the SDK is unowned and
// deprecated, and links the SQS and SNS clients.)
func InstrumentAWS(cfg *aws.Config) {
	if Enabled() {
		cfg.APIOptions = append(cfg.APIOptions, addSDKMiddleware)
	}
}

func addSDKMiddleware(stack *middleware.Stack) error {
	return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("BulkheadTracing", sdkSpan), middleware.After)
}

func sdkSpan(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
	s := current.Load()
	if s == nil {
		return next.HandleInitialize(ctx, in)
	}
	service, op := awsmiddleware.GetServiceID(ctx), awsmiddleware.GetOperationName(ctx)
	ctx, span := s.tracer.Start(ctx, service+"."+op, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(
		attribute.String("rpc.system", "aws-api"), attribute.String("rpc.service", service),
		attribute.String("rpc.method", op), attribute.String("cloud.region", awsmiddleware.GetRegion(ctx))))
	out, md, err := next.HandleInitialize(ctx, in)
	if span.IsRecording() {
		if id, ok := awsmiddleware.GetRequestIDMetadata(md); ok {
			span.SetAttributes(attribute.String("aws.request_id", id))
		}
		if resp, ok := awsmiddleware.GetRawResponse(md).(*smithyhttp.Response); ok {
			span.SetAttributes(attribute.Int("http.response.status_code", resp.StatusCode))
		}
	}
	end(span, err)
	return out, md, err
}
