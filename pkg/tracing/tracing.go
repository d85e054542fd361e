// Package tracing traces the platform with OpenTelemetry: one root span per
// Lambda invocation (a child of Lambda's own X-Ray segment), the execution
// phases (authorize, admit, model, tools, persist) and every AWS SDK call as
// its children, and the tenant as an indexed attribute. Trace ids are X-Ray
// ids, so the spans join the traces Lambda and API Gateway start.
//
// Spans leave as OTLP/HTTP protobuf: in Lambda, signed with SigV4, straight
// to X-Ray's OTLP endpoint (no collector layer, no extension process);
// locally, to any OTLP/HTTP endpoint. With no exporter configured nothing is
// set up and every call here is a plain function call.
package tracing

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/bulkhead-dev/bulkhead/pkg/awsclients"
)

// Environment read by ConfigFromEnv.
const (
	// EnvExporter turns tracing on: "xray" exports to X-Ray's OTLP endpoint
	// in AWS_REGION, signed with the function's credentials (what the stack
	// sets); an http:// or https:// URL exports plain OTLP/HTTP protobuf to
	// that traces endpoint (http://localhost:4318 means
	// http://localhost:4318/v1/traces). Unset or empty, tracing is off.
	EnvExporter = "BULKHEAD_OTEL_EXPORTER"
	// EnvXRayEndpoint replaces X-Ray's OTLP endpoint URL (still signed), as
	// the AWS SDKs' AWS_ENDPOINT_URL_<SERVICE> variables do.
	EnvXRayEndpoint = "AWS_ENDPOINT_URL_XRAY"
	// ExporterXRay is the EnvExporter value that exports to X-Ray.
	ExporterXRay = "xray"
)

// AnnotationsKey is the span attribute naming the attributes X-Ray indexes
// as annotations (searchable in X-Ray's filter expressions).
const AnnotationsKey = "aws.xray.annotations"

// flushTimeout bounds the export at the end of a sampled invocation: a slow
// endpoint costs the invocation at most this, and the spans are dropped.
const flushTimeout = 2 * time.Second

// Config says where spans go.
type Config struct {
	// Exporter is EnvExporter's value: "", ExporterXRay or an OTLP/HTTP URL.
	Exporter string
	// XRayEndpoint replaces https://xray.<Region>.amazonaws.com/v1/traces.
	XRayEndpoint string
	// Region and Credentials sign the exports to X-Ray.
	Region      string
	Credentials aws.CredentialsProvider
	// Service is the service.name of every span (the function's name).
	Service string
	// SampleRoots records spans that have no parent. Off in Lambda, where
	// every invocation carries Lambda's sampling decision and a span outside
	// one (start-up, a background goroutine) would be an orphan trace.
	SampleRoots bool
}

// ConfigFromEnv reads the tracing configuration of a process.
func ConfigFromEnv(getenv func(string) string) Config {
	c := Config{
		Exporter: getenv(EnvExporter), XRayEndpoint: getenv(EnvXRayEndpoint),
		Region: getenv("AWS_REGION"), Service: getenv("AWS_LAMBDA_FUNCTION_NAME"),
		SampleRoots: getenv("AWS_LAMBDA_FUNCTION_NAME") == "",
	}
	if c.Service == "" {
		c.Service = "bulkhead"
	}
	return c
}

// state is the running provider; nil when tracing is off.
type state struct {
	tp     *sdktrace.TracerProvider
	tracer trace.Tracer
}

var current atomic.Pointer[state]

// Start sets tracing up as c says and returns the function that flushes and
// stops it. With no exporter it sets nothing up: Enabled stays false and
// shutdown does nothing.
func Start(ctx context.Context, c Config) (shutdown func(context.Context) error, err error) {
	noop := func(context.Context) error { return nil }
	if c.Exporter == "" {
		return noop, nil
	}
	// Traces are best effort: a failed export is dropped, not retried
	// while the invocation waits.
	exp := &otlpExporter{client: &http.Client{Timeout: flushTimeout}}
	if c.Exporter == ExporterXRay {
		endpoint := c.XRayEndpoint
		if endpoint == "" {
			if c.Region == "" {
				return noop, fmt.Errorf("%s=%s needs AWS_REGION", EnvExporter, ExporterXRay)
			}
			endpoint = "https://xray." + c.Region + ".amazonaws.com/v1/traces"
		}
		if c.Credentials == nil {
			return noop, fmt.Errorf("%s=%s needs AWS credentials to sign the exports", EnvExporter, ExporterXRay)
		}
		u, err := otlpURL(endpoint)
		if err != nil {
			return noop, fmt.Errorf("%s: %w", EnvXRayEndpoint, err)
		}
		exp.url, exp.gzip = u, true
		exp.client.Transport = awsclients.NewSigningTransport(nil, c.Credentials, c.Region, "xray")
	} else {
		u, err := otlpURL(c.Exporter)
		if err != nil {
			return noop, fmt.Errorf("%s: %w", EnvExporter, err)
		}
		exp.url = u
	}
	root := sdktrace.NeverSample()
	if c.SampleRoots {
		root = sdktrace.AlwaysSample()
	}
	attrs := []attribute.KeyValue{attribute.String("service.name", c.Service), attribute.String("cloud.provider", "aws")}
	if !c.SampleRoots {
		attrs = append(attrs, attribute.String("cloud.platform", "aws_lambda"), attribute.String("faas.name", c.Service))
	}
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp),
		sdktrace.WithIDGenerator(XRayIDGenerator{}),
		sdktrace.WithSampler(sdktrace.ParentBased(root)),
		sdktrace.WithResource(resource.NewSchemaless(attrs...)),
	)
	s := &state{tp: tp, tracer: tp.Tracer("github.com/bulkhead-dev/bulkhead/pkg/tracing")}
	current.Store(s)
	return func(ctx context.Context) error {
		current.CompareAndSwap(s, nil)
		return tp.Shutdown(ctx)
	}, nil
}

// otlpURL checks an OTLP/HTTP traces URL; one without a path gets OTLP's
// default /v1/traces.
func otlpURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("%q is not an http:// or https:// URL (nor %q)", raw, ExporterXRay)
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = "/v1/traces"
	}
	return u.String(), nil
}

// Enabled reports whether spans are being recorded and exported.
func Enabled() bool { return current.Load() != nil }

// Span runs fn as the named span (authorize, admit, model, tools, persist),
// recording its error, when tracing is on; otherwise it just runs fn.
func Span(ctx context.Context, name string, fn func(context.Context) error) error {
	s := current.Load()
	if s == nil {
		return fn(ctx)
	}
	ctx, span := s.tracer.Start(ctx, name)
	err := fn(ctx)
	end(span, err)
	return err
}

// end records err on span and ends it.
func end(span trace.Span, err error) {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// Annotate sets an attribute (tenant_id) on the current span and lists it
// among the span's X-Ray annotations, so X-Ray indexes it; when tracing is
// on and the span is recorded.
func Annotate(ctx context.Context, key, value string) {
	span := trace.SpanFromContext(ctx)
	if value == "" || !span.IsRecording() {
		return
	}
	keys := []string{key}
	if ro, ok := span.(sdktrace.ReadOnlySpan); ok {
		for _, kv := range ro.Attributes() {
			if kv.Key == AnnotationsKey {
				keys = append(kv.Value.AsStringSlice(), key)
			}
		}
	}
	slices.Sort(keys)
	span.SetAttributes(attribute.String(key, value), attribute.StringSlice(AnnotationsKey, slices.Compact(keys)))
}

// flush exports the ended spans of a sampled invocation before Lambda
// freezes the process.
func flush(ctx context.Context, s *state) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), flushTimeout)
	defer cancel()
	// A failed export is dropped: the exporter has reported it to
	// OpenTelemetry's error handler (the log), and the invocation goes on.
	_ = s.tp.ForceFlush(ctx)
}
