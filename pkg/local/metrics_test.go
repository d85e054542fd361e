package local

import (
	"context"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/truora/minidyn/server"

	"github.com/bulkhead-dev/bulkhead/pkg/bulkhead"
)

// call sends one request to the local server with a bearer token.
func call(t *testing.T, method, url, token, body string) (int, http.Header, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

var promSample = regexp.MustCompile(`^([a-z_]+)\{([^}]*)\} (\S+)$`)

// metricValue sums the samples of name whose labels include every one of
// want (each `k="v"`).
func metricValue(t *testing.T, text, name string, want ...string) float64 {
	t.Helper()
	var sum float64
	for _, line := range strings.Split(text, "\n") {
		m := promSample.FindStringSubmatch(line)
		if m == nil || m[1] != name {
			continue
		}
		labels := "," + m[2] + ","
		ok := true
		for _, w := range want {
			ok = ok && strings.Contains(labels, ","+w+",")
		}
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(m[3], 64)
		if err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		sum += v
	}
	return sum
}

// TestMetricsNeedTheAdminToken: /metrics answers 401 in the API's error
// shape without the admin token or with another, and the text format with it.
func TestMetricsNeedTheAdminToken(t *testing.T) {
	p, demo := startLocal(t, readTimeout, 0)
	for _, token := range []string{"", "wrong", demo.APIKey} {
		status, h, body := call(t, "GET", p.URL+MetricsPath, token, "")
		var e struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		if status != 401 || json.Unmarshal([]byte(body), &e) != nil || e.Error.Code != "unauthenticated" ||
			h.Get("Content-Type") != "application/json" {
			t.Errorf("GET /metrics with token %q: %d %s %s", token, status, h.Get("Content-Type"), body)
		}
	}
	status, h, body := call(t, "GET", p.URL+MetricsPath, p.AdminToken, "")
	if status != 200 || !strings.HasPrefix(h.Get("Content-Type"), "text/plain; version=0.0.4") || !strings.Contains(body, "# TYPE bulkhead_requests_total counter") {
		t.Errorf("GET /metrics with the admin token: %d %s %.300s", status, h.Get("Content-Type"), body)
	}
	if status, _, _ := call(t, "POST", p.URL+MetricsPath, p.AdminToken, ""); status == 200 {
		t.Errorf("POST /metrics: 200, want the API's refusal")
	}
}

// TestMetricsEqualUsage runs executions for two tenants through the local
// server and checks that /metrics counts the tokens, spend and executions of
// each as GET /v1/usage does.
func TestMetricsEqualUsage(t *testing.T) {
	p, demo := startLocal(t, readTimeout, 0)
	_, key2, agent2 := tenantWithAgent(t, p, "Second")
	tenants := []struct{ key, agent string }{{demo.APIKey, demo.AgentID}, {key2, agent2}}
	for i, tn := range tenants {
		for j := 0; j < 2+i; j++ {
			if status, _, body := call(t, "POST", p.URL+"/v1/agents/"+tn.agent+"/execute", tn.key, `{"message":"hello there"}`); status != 200 {
				t.Fatalf("execute: %d %s", status, body)
			}
		}
	}
	_, _, text := call(t, "GET", p.URL+MetricsPath, p.AdminToken, "")
	for i, tn := range tenants {
		status, _, body := call(t, "GET", p.URL+"/v1/usage", tn.key, "")
		var u struct {
			TenantID string `json:"tenant_id"`
			Usage    struct {
				Tokens     int64       `json:"tokens_this_month"`
				Executions int64       `json:"executions_this_month"`
				Spend      json.Number `json:"spend_this_month"`
			} `json:"usage"`
		}
		if status != 200 || json.Unmarshal([]byte(body), &u) != nil {
			t.Fatalf("usage: %d %s", status, body)
		}
		tl := `tenant_id="` + u.TenantID + `"`
		spend, _ := u.Usage.Spend.Float64()
		if u.Usage.Executions != int64(2+i) || u.Usage.Tokens == 0 {
			t.Errorf("tenant %s usage %+v, want %d executions", u.TenantID, u.Usage, 2+i)
		}
		if got := metricValue(t, text, "bulkhead_tokens_total", tl); got != float64(u.Usage.Tokens) {
			t.Errorf("tenant %s: tokens %v in /metrics, %d in usage", u.TenantID, got, u.Usage.Tokens)
		}
		if got := metricValue(t, text, "bulkhead_executions_total", tl); got != float64(u.Usage.Executions) {
			t.Errorf("tenant %s: executions %v in /metrics, %d in usage", u.TenantID, got, u.Usage.Executions)
		}
		if got := metricValue(t, text, "bulkhead_executions_total", tl, `status="completed"`); got != float64(u.Usage.Executions) {
			t.Errorf("tenant %s: completed executions %v in /metrics", u.TenantID, got)
		}
		if got := metricValue(t, text, "bulkhead_spend_usd_total", tl); math.Abs(got-spend) > 1e-9 || spend <= 0 {
			t.Errorf("tenant %s: spend %v in /metrics, %v in usage", u.TenantID, got, spend)
		}
		if got := metricValue(t, text, "bulkhead_requests_total", tl, `function="execute"`, `status_class="2xx"`); got != float64(2+i) {
			t.Errorf("tenant %s: execute requests %v in /metrics, want %d", u.TenantID, got, 2+i)
		}
		if got := metricValue(t, text, "bulkhead_request_duration_seconds_count", tl, `function="execute"`); got != float64(2+i) {
			t.Errorf("tenant %s: execute latencies %v in /metrics, want %d", u.TenantID, got, 2+i)
		}
		if got := metricValue(t, text, "bulkhead_breaker_state", tl); got != 0 || !strings.Contains(text, "bulkhead_breaker_state{"+tl+"} 0\n") {
			t.Errorf("tenant %s: breaker state missing or not closed", u.TenantID)
		}
	}
	if !strings.Contains(text, "bulkhead_admission_duration_seconds_count 5\n") {
		t.Errorf("admission latency: want 5 admissions:\n%s", text)
	}
}

// TestMetricsCountRefusalsBreakerAndStoreErrors: quota refusals are counted
// by tenant and quota type as the 429s said; a breaker the platform opened
// shows as 1 on the tenant's gauge; and store errors are counted in the
// store's clients: a refused condition (each 429) is not one, a store that
// answers 500 is.
func TestMetricsCountRefusalsBreakerAndStoreErrors(t *testing.T) {
	p, demo := startLocal(t, readTimeout, 0)
	tenant2, key2, agent2 := tenantWithAgent(t, p, "Refused")
	if status, _, body := call(t, "PATCH", p.URL+"/v1/admin/tenants/"+tenant2, p.AdminToken, `{"quota":{"max_requests_per_hour":2}}`); status != 200 {
		t.Fatalf("set the second tenant's quota: %d %s", status, body)
	}
	refused := map[string]int{}
	for range 6 {
		status, _, body := call(t, "POST", p.URL+"/v1/agents/"+agent2+"/execute", key2, `{"message":"hello"}`)
		if status == 200 {
			continue
		}
		var e struct {
			Error struct {
				Code      string `json:"code"`
				QuotaType string `json:"quota_type"`
			} `json:"error"`
		}
		if status != 429 || json.Unmarshal([]byte(body), &e) != nil || e.Error.QuotaType == "" {
			t.Fatalf("execute over the hourly quota: %d %s", status, body)
		}
		refused[e.Error.QuotaType]++
	}
	if len(refused) != 1 || refused["requests"] != 4 {
		t.Errorf("refusals by quota type %v, want 4 of the hourly request quota", refused)
	}

	// The demo tenant's breaker opens after two failed executions out of two.
	demoID := demo.TenantID
	if status, _, body := call(t, "PATCH", p.URL+"/v1/admin/tenants/"+demoID, p.AdminToken,
		`{"circuit_breaker_config":{"min_executions":2,"error_rate_pct":50}}`); status != 200 {
		t.Fatalf("set the demo tenant's breaker: %d %s", status, body)
	}
	for range 2 {
		if status, _, body := call(t, "POST", p.URL+"/v1/agents/"+demo.AgentID+"/execute", demo.APIKey, `{"message":"[[fail]]"}`); status < 500 {
			t.Fatalf("a failing execution: %d %s", status, body)
		}
	}

	_, _, text := call(t, "GET", p.URL+MetricsPath, p.AdminToken, "")
	tl2 := `tenant_id="` + tenant2 + `"`
	for qt, n := range refused {
		if got := metricValue(t, text, "bulkhead_quota_violations_total", tl2, `quota_type="`+qt+`"`); got != float64(n) {
			t.Errorf("quota violations %s: %v in /metrics, %d refused", qt, got, n)
		}
	}
	if got := metricValue(t, text, "bulkhead_quota_violations_total"); got != 4 {
		t.Errorf("quota violations of every tenant: %v, want 4", got)
	}
	tl := `tenant_id="` + demoID + `"`
	if !strings.Contains(text, "bulkhead_breaker_state{"+tl+"} 1\n") {
		t.Errorf("the demo tenant's breaker is not open (1) in /metrics:\n%s", grepLines(text, "bulkhead_breaker_state"))
	}
	if got := metricValue(t, text, "bulkhead_executions_total", tl, `status="model_error"`); got != 2 {
		t.Errorf("model_error executions of the demo tenant: %v, want 2:\n%s", got, grepLines(text, "bulkhead_executions_total"))
	}
	if strings.Contains(text, "bulkhead_store_errors_total{") {
		t.Errorf("store errors counted though the store never failed (a refused condition is not one):\n%s", grepLines(text, "bulkhead_store_errors_total"))
	}

	// The embedded DynamoDB answers 500 to everything: each failed call
	// (after the SDK's retries) is one store error, named by its code.
	p.Dynamo.EmulateFailure(server.FailureConditionInternalServerError)
	status, _, body := call(t, "GET", p.URL+"/v1/agents", key2, "")
	p.Dynamo.EmulateFailure(server.FailureConditionNone)
	if status < 500 {
		t.Fatalf("GET /v1/agents with the store failing: %d %s", status, body)
	}
	_, _, text = call(t, "GET", p.URL+MetricsPath, p.AdminToken, "")
	if got := metricValue(t, text, "bulkhead_store_errors_total", `service="DynamoDB"`, `code="InternalServerError"`); got < 1 {
		t.Errorf("no DynamoDB InternalServerError counted:\n%s", grepLines(text, "bulkhead_store_errors_total"))
	}
	if all, ise := metricValue(t, text, "bulkhead_store_errors_total"), metricValue(t, text, "bulkhead_store_errors_total", `code="InternalServerError"`); all != ise {
		t.Errorf("store errors other than the injected one:\n%s", grepLines(text, "bulkhead_store_errors_total"))
	}
}

// tenantWithAgent creates a starter tenant and one agent of its own: its
// id, key and agent id.
func tenantWithAgent(t *testing.T, p *Platform, name string) (tenantID, key, agentID string) {
	t.Helper()
	tn, key, _, err := p.API.CreateTenant(context.Background(), name, bulkhead.Starter)
	if err != nil {
		t.Fatal(err)
	}
	status, _, body := call(t, "POST", p.URL+"/v1/agents", key, `{"name":"second","system_prompt":"Be brief."}`)
	var agent struct {
		AgentID string `json:"agent_id"`
	}
	if status != 201 || json.Unmarshal([]byte(body), &agent) != nil {
		t.Fatalf("create agent: %d %s", status, body)
	}
	return tn.ID, key, agent.AgentID
}

// grepLines is the lines of text that start with prefix.
func grepLines(text, prefix string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
