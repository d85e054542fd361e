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

	// The execution and refusal lines, in order; the request, admission and
	// breaker lines besides them are counted apart.
	var lines []string
	requests, admissions := 0, 0
	for _, l := range buf.lines() {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("EMF line %q: %v", l, err)
		}
		switch {
		case m["Tokens"] != nil || m["QuotaViolations"] != nil:
			lines = append(lines, l)
		case m["Requests"] != nil:
			requests++
			if m["RequestLatency"] == nil || m["function"] == nil || m["status_class"] == nil {
				t.Errorf("request line: %s", l)
			}
		case m["AdmissionLatency"] != nil:
			admissions++
		}
	}
	if len(lines) != 2 || requests < 2 || admissions != 2 {
		t.Fatalf("EMF lines: %q (%d request lines, %d admission lines)", lines, requests, admissions)
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
