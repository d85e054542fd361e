package tracing

import (
	"context"
	"io"
	"os"
	"sync"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdacontext"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// lambdaTraceKey is where aws-lambda-go puts the invocation's X-Ray trace
// header in the handler's context (it also sets _X_AMZN_TRACE_ID).
const lambdaTraceKey = "x-amzn-trace-id"

// Handler wraps a Lambda (or local) handler so that each invocation is one
// root span named name, a child of Lambda's segment when the invocation
// carries X-Ray's trace header, exported before the handler returns if
// sampled. Tracing off, it returns h itself.
func Handler[E, R any](name string, h func(context.Context, E) (R, error)) func(context.Context, E) (R, error) {
	if !Enabled() {
		return h
	}
	return func(ctx context.Context, ev E) (R, error) {
		ctx, done := invocation(ctx, name)
		r, err := h(ctx, ev)
		done(err)
		return r, err
	}
}

// StreamHandler is Handler for a streaming handler: the invocation goes on
// while Lambda reads the body, so its span ends (and is exported) when the
// body is read to its end or fails.
func StreamHandler[E any](name string, h func(context.Context, E) (*events.LambdaFunctionURLStreamingResponse, error)) func(context.Context, E) (*events.LambdaFunctionURLStreamingResponse, error) {
	if !Enabled() {
		return h
	}
	return func(ctx context.Context, ev E) (*events.LambdaFunctionURLStreamingResponse, error) {
		ctx, done := invocation(ctx, name)
		resp, err := h(ctx, ev)
		if err != nil || resp == nil || resp.Body == nil {
			done(err)
			return resp, err
		}
		resp.Body = &endingReader{r: resp.Body, done: done}
		return resp, nil
	}
}

// endingReader calls done once, when its reader returns an error (io.EOF
// included).
type endingReader struct {
	r    io.Reader
	once sync.Once
	done func(error)
}

func (e *endingReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil {
		e.once.Do(func() {
			if err == io.EOF {
				e.done(nil)
			} else {
				e.done(err)
			}
		})
	}
	return n, err
}

// invocation starts the root span of one invocation and returns the
// function that ends it and, if sampled, exports the invocation's spans.
func invocation(ctx context.Context, name string) (context.Context, func(error)) {
	s := current.Load()
	if s == nil {
		return ctx, func(error) {}
	}
	header, _ := ctx.Value(lambdaTraceKey).(string)
	if header == "" {
		header = os.Getenv("_X_AMZN_TRACE_ID")
	}
	if parent, ok := parseTraceHeader(header); ok {
		ctx = trace.ContextWithRemoteSpanContext(ctx, parent)
	}
	opts := []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindServer)}
	if lc, ok := lambdacontext.FromContext(ctx); ok {
		opts = append(opts, trace.WithAttributes(attribute.String("faas.invocation_id", lc.AwsRequestID)))
	}
	ctx, span := s.tracer.Start(ctx, name, opts...)
	return ctx, func(err error) {
		end(span, err)
		if span.SpanContext().IsSampled() {
			flush(ctx, s)
		}
	}
}
