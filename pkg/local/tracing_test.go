package local

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/bulkhead-dev/bulkhead/pkg/tracing"
	"github.com/bulkhead-dev/bulkhead/pkg/tracing/tracingtest"
)

// TestTracesToOTLPEndpoint: with BULKHEAD_OTEL_EXPORTER's tracing started
// (as bulkhead dev does), a request to the local platform is a trace at the
// OTLP receiver: the execute span with the tenant, its phases and the store
// calls under them, sent when the request is done.
func TestTracesToOTLPEndpoint(t *testing.T) {
	rcv := tracingtest.NewReceiver(t)
	stop, err := tracing.Start(context.Background(), tracing.ConfigFromEnv(func(k string) string {
		return map[string]string{tracing.EnvExporter: strings.TrimSuffix(rcv.URL(), "/v1/traces")}[k]
	}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = stop(context.Background()) })
	p, demo := startLocal(t, time.Minute, 0)

	req, err := http.NewRequest("POST", p.URL+"/v1/agents/"+demo.AgentID+"/execute", strings.NewReader(`{"message":"hello"}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+demo.APIKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("execute: %d %s", resp.StatusCode, body)
	}

	spans := rcv.Spans()
	var root tracingtest.Span
	for _, s := range spans {
		if s.Name == "execute" && s.Attrs["tenant_id"] == demo.TenantID {
			root = s
		}
	}
	if root.SpanID == "" {
		t.Fatalf("no execute span with tenant_id %s among %+v", demo.TenantID, spans)
	}
	if root.ParentID != "" || root.Service != "bulkhead" {
		t.Errorf("execute: parent %q service %q, want a root span of service bulkhead", root.ParentID, root.Service)
	}
	phases := map[string]string{}
	stores := 0
	for _, s := range spans {
		if s.TraceID != root.TraceID {
			continue
		}
		if s.ParentID == root.SpanID {
			phases[s.Name] = s.SpanID
		}
		if s.Attrs["rpc.service"] == "DynamoDB" {
			stores++
		}
	}
	for _, name := range []string{"admit", "model", "persist"} {
		if phases[name] == "" {
			t.Errorf("no %s span under execute; spans of the trace: %+v", name, spans)
		}
	}
	if stores == 0 {
		t.Error("no DynamoDB client span in the execution's trace")
	}
}
