package tracing_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"go.opentelemetry.io/otel/trace"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/bulkhead-dev/bulkhead/pkg/awsclients"
	"github.com/bulkhead-dev/bulkhead/pkg/embedded"
	"github.com/bulkhead-dev/bulkhead/pkg/tracing"
	"github.com/bulkhead-dev/bulkhead/pkg/tracing/tracingtest"
)

// The tests share the process's one tracer provider, so none runs in parallel.

// mustStart starts tracing with c and stops it when the test ends.
func mustStart(tb testing.TB, c tracing.Config) func() {
	tb.Helper()
	stop, err := tracing.Start(context.Background(), c)
	if err != nil {
		tb.Fatalf("start tracing: %v", err)
	}
	var stopped bool
	shutdown := func() {
		if !stopped {
			stopped = true
			if err := stop(context.Background()); err != nil {
				tb.Errorf("stop tracing: %v", err)
			}
		}
	}
	tb.Cleanup(shutdown)
	return shutdown
}

// lambdaHeader is a trace header as Lambda gives an invocation, with a trace
// started now.
func lambdaHeader(sampled string) (header, traceID, parent string) {
	epoch := fmt.Sprintf("%08x", time.Now().Unix())
	traceID = epoch + "3f1c2b7a9d4e5f60718293a4"
	parent = "53995c3f42cd8ad8"
	return "Root=1-" + epoch + "-3f1c2b7a9d4e5f60718293a4;Parent=" + parent + ";Sampled=" + sampled + ";Lineage=a87bd80c:1", traceID, parent
}

// mustDynamoDB is an embedded DynamoDB and a client for it built from an
// instrumented configuration.
func mustDynamoDB(tb testing.TB) *dynamodb.Client {
	tb.Helper()
	d, err := embedded.StartDynamoDB(context.Background(), embedded.DynamoDBOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = d.Close(context.Background()) })
	cfg := awsclients.Static("us-east-1")
	tracing.InstrumentAWS(&cfg)
	return awsclients.NewDynamoDB(cfg, d.URL())
}

// execution stands for the execute function: the tenant annotation, the
// phases as spans, an AWS call inside one, and a failing persist.
func execution(ddb *dynamodb.Client) func(context.Context, string) (string, error) {
	return func(ctx context.Context, _ string) (string, error) {
		tracing.Annotate(ctx, "tenant_id", "tn_abcdefghijklmnop")
		_ = tracing.Span(ctx, "admit", func(ctx context.Context) error {
			_, err := ddb.ListTables(ctx, &dynamodb.ListTablesInput{})
			return err
		})
		_ = tracing.Span(ctx, "model", func(context.Context) error { return nil })
		err := tracing.Span(ctx, "persist", func(context.Context) error { return errors.New("settle: conflict") })
		return "done", err
	}
}

func byName(spans []tracingtest.Span) map[string]tracingtest.Span {
	m := map[string]tracingtest.Span{}
	for _, s := range spans {
		m[s.Name] = s
	}
	return m
}

// TestInvocationSpanTree runs one invocation as Lambda does (its trace
// header, sampled) and checks what the OTLP receiver got when the handler
// returned: the tree, the tenant attribute and the AWS SDK client span.
func TestInvocationSpanTree(t *testing.T) {
	rcv := tracingtest.NewReceiver(t)
	mustStart(t, tracing.Config{Exporter: rcv.URL(), Service: "bulkhead-execute"})
	ddb := mustDynamoDB(t)
	header, traceID, parent := lambdaHeader("1")
	t.Setenv("_X_AMZN_TRACE_ID", header)

	out, err := tracing.Handler("execute", execution(ddb))(context.Background(), "event")
	if out != "done" || err == nil {
		t.Fatalf("handler returned %q, %v; want the function's result and error", out, err)
	}
	// No shutdown yet: the invocation flushed its spans before returning.
	spans := byName(rcv.Spans())
	if len(rcv.Errors()) > 0 {
		t.Fatalf("receiver refused exports: %v", rcv.Errors())
	}
	for _, name := range []string{"execute", "admit", "model", "persist", "DynamoDB.ListTables"} {
		s, ok := spans[name]
		if !ok {
			t.Fatalf("no %s span among %v", name, rcv.Spans())
		}
		if s.TraceID != traceID {
			t.Errorf("%s: trace id %s, want Lambda's %s", name, s.TraceID, traceID)
		}
		if s.Service != "bulkhead-execute" {
			t.Errorf("%s: service.name %q, want bulkhead-execute", name, s.Service)
		}
	}
	root := spans["execute"]
	if root.ParentID != parent || root.Kind != tracepb.Span_SPAN_KIND_SERVER {
		t.Errorf("execute: parent %s kind %v, want Lambda's segment %s and server", root.ParentID, root.Kind, parent)
	}
	if got := root.Attrs["tenant_id"]; got != "tn_abcdefghijklmnop" {
		t.Errorf("execute: tenant_id = %v, want tn_abcdefghijklmnop", got)
	}
	if got := root.Attrs[tracing.AnnotationsKey]; !reflect.DeepEqual(got, []string{"tenant_id"}) {
		t.Errorf("execute: %s = %v, want [tenant_id]", tracing.AnnotationsKey, got)
	}
	for _, name := range []string{"admit", "model", "persist"} {
		if spans[name].ParentID != root.SpanID {
			t.Errorf("%s: parent %s, want the invocation's span %s", name, spans[name].ParentID, root.SpanID)
		}
	}
	if p := spans["persist"]; !p.StatusError || p.StatusMessage != "settle: conflict" {
		t.Errorf("persist: error %v %q, want the error recorded", p.StatusError, p.StatusMessage)
	}
	if !root.StatusError {
		t.Error("execute: the invocation's error is not recorded")
	}
	call := spans["DynamoDB.ListTables"]
	if call.ParentID != spans["admit"].SpanID || call.Kind != tracepb.Span_SPAN_KIND_CLIENT {
		t.Errorf("DynamoDB.ListTables: parent %s kind %v, want admit's %s and client", call.ParentID, call.Kind, spans["admit"].SpanID)
	}
	want := map[string]any{"rpc.system": "aws-api", "rpc.service": "DynamoDB", "rpc.method": "ListTables", "cloud.region": "us-east-1", "http.response.status_code": int64(200)}
	for k, v := range want {
		if call.Attrs[k] != v {
			t.Errorf("DynamoDB.ListTables: %s = %v, want %v", k, call.Attrs[k], v)
		}
	}
}

// TestXRayTraceIDs: a trace started here (no parent) has an X-Ray trace id,
// whose first 8 hex digits are the trace's start in epoch seconds.
func TestXRayTraceIDs(t *testing.T) {
	rcv := tracingtest.NewReceiver(t)
	stop := mustStart(t, tracing.Config{Exporter: rcv.URL(), Service: "bulkhead", SampleRoots: true})
	before := time.Now().Unix()
	_ = tracing.Span(context.Background(), "admit", func(context.Context) error { return nil })
	after := time.Now().Unix()
	stop() // flushes
	spans := rcv.Spans()
	if len(spans) != 1 {
		t.Fatalf("got %d spans, want 1: %v", len(spans), spans)
	}
	id := spans[0].TraceID
	epoch, err := strconv.ParseInt(id[:8], 16, 64)
	if err != nil || epoch < before || epoch > after {
		t.Errorf("trace id %s starts with %s = %d, want the epoch seconds in [%d, %d]", id, id[:8], epoch, before, after)
	}
	if x := tracing.XRayTraceID(mustTraceID(t, id)); !strings.HasPrefix(x, "1-"+id[:8]+"-") || len(x) != 35 {
		t.Errorf("X-Ray form %s, want 1-%s-<24 hex digits>", x, id[:8])
	}
}

// TestUnsampledInvocationExportsNothing: Lambda's Sampled=0 is obeyed; no
// span is recorded, so there is nothing to flush or send.
func TestUnsampledInvocationExportsNothing(t *testing.T) {
	rcv := tracingtest.NewReceiver(t)
	stop := mustStart(t, tracing.Config{Exporter: rcv.URL(), Service: "bulkhead-execute"})
	ddb := mustDynamoDB(t)
	header, _, _ := lambdaHeader("0")
	t.Setenv("_X_AMZN_TRACE_ID", header)
	if _, err := tracing.Handler("execute", execution(ddb))(context.Background(), "event"); err == nil {
		t.Fatal("the function's error was lost")
	}
	stop()
	if n := len(rcv.Headers()); n != 0 {
		t.Errorf("%d export requests for an unsampled invocation, want none: %v", n, rcv.Spans())
	}
}

// TestOffByDefault: without BULKHEAD_OTEL_EXPORTER no provider runs, the
// handlers are the functions themselves and the SDK gets no middleware.
func TestOffByDefault(t *testing.T) {
	c := tracing.ConfigFromEnv(func(string) string { return "" })
	stop := mustStart(t, c)
	defer stop()
	if tracing.Enabled() {
		t.Fatal("tracing on with no exporter configured")
	}
	h := func(context.Context, string) (string, error) { return "ok", nil }
	if w := tracing.Handler("execute", h); reflect.ValueOf(w).Pointer() != reflect.ValueOf(h).Pointer() {
		t.Error("Handler wrapped the function with tracing off")
	}
	var cfg aws.Config
	tracing.InstrumentAWS(&cfg)
	if len(cfg.APIOptions) != 0 {
		t.Errorf("InstrumentAWS added %d middlewares with tracing off", len(cfg.APIOptions))
	}
	ran := false
	boom := errors.New("boom")
	if err := tracing.Span(context.Background(), "admit", func(context.Context) error { ran = true; return boom }); !ran || !errors.Is(err, boom) {
		t.Errorf("Span ran %v returned %v, want the function run and its error", ran, err)
	}
}

// TestXRayExportIsSigned: exports to X-Ray are OTLP protobuf signed with
// SigV4 for the xray service.
func TestXRayExportIsSigned(t *testing.T) {
	rcv := tracingtest.NewReceiver(t)
	stop := mustStart(t, tracing.Config{
		Exporter: tracing.ExporterXRay, XRayEndpoint: rcv.URL(), Region: "eu-west-1", Service: "bulkhead", SampleRoots: true,
		Credentials: credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "session"),
	})
	_ = tracing.Span(context.Background(), "admit", func(context.Context) error { return nil })
	stop()
	if errs := rcv.Errors(); len(errs) > 0 {
		t.Fatalf("receiver refused exports: %v", errs)
	}
	hs := rcv.Headers()
	if len(hs) != 1 || len(rcv.Spans()) != 1 {
		t.Fatalf("got %d requests with %v, want one with the span", len(hs), rcv.Spans())
	}
	auth := hs[0].Get("Authorization")
	date := time.Now().UTC().Format("20060102")
	if !strings.HasPrefix(auth, "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/") || !strings.Contains(auth, "/eu-west-1/xray/aws4_request") ||
		!strings.Contains(auth, "SignedHeaders=") || !strings.Contains(auth, "Signature=") {
		t.Errorf("Authorization = %q, want a SigV4 signature for xray in eu-west-1 (%s)", auth, date)
	}
	if hs[0].Get("X-Amz-Date") == "" || hs[0].Get("X-Amz-Security-Token") != "session" {
		t.Errorf("X-Amz-Date %q, X-Amz-Security-Token %q: want the signing time and the session token", hs[0].Get("X-Amz-Date"), hs[0].Get("X-Amz-Security-Token"))
	}
	if hs[0].Get("Content-Encoding") != "gzip" {
		t.Errorf("Content-Encoding = %q, want gzip", hs[0].Get("Content-Encoding"))
	}
}

// TestExporterSetting: the accepted forms of BULKHEAD_OTEL_EXPORTER, and a
// clear error for the others.
func TestExporterSetting(t *testing.T) {
	creds := credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", "")
	cases := []struct {
		name    string
		c       tracing.Config
		wantErr string
	}{
		{"url", tracing.Config{Exporter: "http://localhost:4318/v1/traces"}, ""},
		{"url without path", tracing.Config{Exporter: "http://localhost:4318"}, ""},
		{"https", tracing.Config{Exporter: "https://otlp.example.com/v1/traces"}, ""},
		{"xray", tracing.Config{Exporter: "xray", Region: "us-east-1", Credentials: creds}, ""},
		{"no scheme", tracing.Config{Exporter: "localhost:4318"}, "BULKHEAD_OTEL_EXPORTER"},
		{"other scheme", tracing.Config{Exporter: "grpc://localhost:4317"}, "BULKHEAD_OTEL_EXPORTER"},
		{"xray without region", tracing.Config{Exporter: "xray", Credentials: creds}, "AWS_REGION"},
		{"xray without credentials", tracing.Config{Exporter: "xray", Region: "us-east-1"}, "credentials"},
		{"bad xray endpoint", tracing.Config{Exporter: "xray", XRayEndpoint: "xray.local", Region: "us-east-1", Credentials: creds}, "AWS_ENDPOINT_URL_XRAY"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			stop, err := tracing.Start(context.Background(), c.c)
			defer func() { _ = stop(context.Background()) }()
			switch {
			case c.wantErr == "" && err != nil:
				t.Errorf("Start: %v, want no error", err)
			case c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)):
				t.Errorf("Start: %v, want an error naming %s", err, c.wantErr)
			case c.wantErr != "" && tracing.Enabled():
				t.Error("tracing on after a failed start")
			}
		})
	}
	env := map[string]string{"BULKHEAD_OTEL_EXPORTER": "xray", "AWS_REGION": "us-east-1", "AWS_LAMBDA_FUNCTION_NAME": "bulkhead-execute"}
	if c := tracing.ConfigFromEnv(func(k string) string { return env[k] }); c.Exporter != "xray" || c.SampleRoots || c.Service != "bulkhead-execute" || c.Region != "us-east-1" {
		t.Errorf("ConfigFromEnv in Lambda = %+v, want the xray exporter, no root sampling, the function's name", c)
	}
	if c := tracing.ConfigFromEnv(func(string) string { return "" }); c.Exporter != "" || !c.SampleRoots || c.Service != "bulkhead" {
		t.Errorf("ConfigFromEnv locally = %+v, want no exporter, root sampling, service bulkhead", c)
	}
}

func mustTraceID(tb testing.TB, h string) trace.TraceID {
	tb.Helper()
	id, err := trace.TraceIDFromHex(h)
	if err != nil {
		tb.Fatal(err)
	}
	return id
}
