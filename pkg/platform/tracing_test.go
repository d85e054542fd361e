package platform_test

import (
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/bulkhead-dev/bulkhead/pkg/api"
	"github.com/bulkhead-dev/bulkhead/pkg/platform/platformtest"
	"github.com/bulkhead-dev/bulkhead/pkg/tracing"
	"github.com/bulkhead-dev/bulkhead/pkg/tracing/tracingtest"
)

// TestBootstrapTracesAnExecution runs the execute function's real bootstrap
// against the fake Runtime API with a sampled X-Ray trace header, exporting
// to a local OTLP receiver, and checks one execution's span tree as the
// receiver got it by the time the function responded.
func TestBootstrapTracesAnExecution(t *testing.T) {
	t.Parallel()
	bootstrap := buildFunction(t, api.FnExecute)
	env := platformtest.Start(t)
	f := mustFixture(t, env)
	rcv := tracingtest.NewReceiver(t)

	epoch := fmt.Sprintf("%08x", time.Now().Unix())
	traceID, parent := epoch+"5b1e0a7c9d2f4e6a8b0c1d2e", "7a3f9c1e5b2d4f60"
	header := "Root=1-" + epoch + "-5b1e0a7c9d2f4e6a8b0c1d2e;Parent=" + parent + ";Sampled=1;Lineage=1f2e3d4c:0"

	overrides := maps.Clone(samEnvFileParameters(t))
	overrides["AWS_ENDPOINT_URL_DYNAMODB"], overrides["AWS_ENDPOINT_URL_S3"] = env.Dynamo.URL(), env.S3.URL()
	fnEnv := samEnvironment(t.TempDir(), overrides)
	fnEnv[tracing.EnvExporter] = rcv.URL()
	s := startTracedBootstrap(t, bootstrap, f.rewrite(mustReadEvent(t, api.FnExecute)), fnEnv, header)
	var got reported
	select {
	case got = <-s.fake.response:
	case r := <-s.fake.initErr:
		t.Fatalf("init error %s: %s", r.errorType, r.body)
	case r := <-s.fake.invError:
		t.Fatalf("invocation error %s: %s", r.errorType, r.body)
	case <-s.exited:
		t.Fatalf("bootstrap exited before responding: %v", s.err)
	case <-time.After(waitFor):
		t.Fatal("no response from the bootstrap")
	}
	// A streaming response: the JSON prelude with the status, then the body.
	if !strings.Contains(string(got.body), `"statusCode":200`) || !strings.Contains(string(got.body), "execution_id") {
		t.Fatalf("execute did not succeed: %s", got.body)
	}
	if errs := rcv.Errors(); len(errs) > 0 {
		t.Fatalf("receiver refused exports: %v", errs)
	}
	// The spans were flushed before the response was complete.
	spans := rcv.Spans()
	byName := map[string]tracingtest.Span{}
	var sdkCalls []tracingtest.Span
	for _, sp := range spans {
		if sp.TraceID != traceID {
			t.Errorf("%s: trace id %s, want Lambda's %s", sp.Name, sp.TraceID, traceID)
		}
		if sp.Kind == tracepb.Span_SPAN_KIND_CLIENT {
			sdkCalls = append(sdkCalls, sp)
		} else {
			byName[sp.Name] = sp
		}
	}
	root, ok := byName[api.FnExecute]
	if !ok {
		t.Fatalf("no %s span among %+v", api.FnExecute, spans)
	}
	if root.ParentID != parent || root.Kind != tracepb.Span_SPAN_KIND_SERVER {
		t.Errorf("execute: parent %s kind %v, want Lambda's segment %s, server", root.ParentID, root.Kind, parent)
	}
	if root.Attrs["tenant_id"] != f.tenant.ID {
		t.Errorf("execute: tenant_id = %v, want %s", root.Attrs["tenant_id"], f.tenant.ID)
	}
	ids := map[string]string{root.SpanID: root.Name}
	for _, phase := range []string{"admit", "model", "persist"} {
		sp, ok := byName[phase]
		if !ok {
			t.Errorf("no %s span among %+v", phase, spans)
			continue
		}
		if sp.ParentID != root.SpanID {
			t.Errorf("%s: parent %s, want the invocation's span %s", phase, sp.ParentID, root.SpanID)
		}
		ids[sp.SpanID] = phase
	}
	services := map[string]bool{}
	for _, c := range sdkCalls {
		services[fmt.Sprint(c.Attrs["rpc.service"])] = true
		if c.Attrs["rpc.system"] != "aws-api" || c.Attrs["rpc.method"] == nil || c.Name != fmt.Sprint(c.Attrs["rpc.service"], ".", c.Attrs["rpc.method"]) {
			t.Errorf("SDK span %s: attributes %v, want rpc.system aws-api, rpc.service and rpc.method", c.Name, c.Attrs)
		}
	}
	if !services["DynamoDB"] {
		t.Errorf("no DynamoDB client span among %v", sdkCalls)
	}
	if inPhase := func() bool {
		for _, c := range sdkCalls {
			if ids[c.ParentID] == "admit" || ids[c.ParentID] == "persist" {
				return true
			}
		}
		return false
	}(); !inPhase {
		t.Errorf("no SDK call under admit or persist: %+v", sdkCalls)
	}
}
