package api_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"sync"
	"testing"

	"github.com/bulkhead-dev/bulkhead/pkg/metrics"
	"github.com/bulkhead-dev/bulkhead/pkg/platform"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) lines() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Split(strings.TrimSpace(s.b.String()), "\n")
}

// TestExecutionsAndRefusalsEmitMetrics checks the EMF lines the dashboard
// and alarms read: tokens and spend per execution, and quota violations by type.
func TestExecutionsAndRefusalsEmitMetrics(t *testing.T) {
	var buf syncBuffer
	h := newHarness(t, 0, func(o *platform.Options) { o.Metrics = metrics.New(&buf, nil) })
	a := h.newTenant("acme", "starter")
	agent := h.agentWith(a, nil, map[string]any{"max_tokens": 1000})
	r := h.must(200, "POST", "/v1/agents/"+agent+"/execute", a.key, map[string]any{"message": "hi"})
	h.setQuota(a, map[string]any{"max_requests_per_hour": 1})
	h.must(429, "POST", "/v1/agents/"+agent+"/execute", a.key, map[string]any{"message": "again"})

	lines := buf.lines()
	if len(lines) != 2 {
		t.Fatalf("EMF lines: %q", lines)
	}
	var exec, refusal map[string]any
	_ = json.Unmarshal([]byte(lines[0]), &exec)
	_ = json.Unmarshal([]byte(lines[1]), &refusal)
	if exec["Tokens"] != float64(num(t, r.body["tokens_used"])) || exec["Executions"] != float64(1) || exec["tenant_id"] != a.id || exec["_aws"] == nil {
		t.Errorf("execution line: %s", lines[0])
	}
	if refusal["QuotaViolations"] != float64(1) || refusal["quota_type"] != "requests" || refusal["tenant_id"] != a.id {
		t.Errorf("refusal line: %s", lines[1])
	}
}
