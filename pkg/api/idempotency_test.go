package api_test

import (
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestIdempotentExecuteChargesOnce sends 20 concurrent requests with one
// Idempotency-Key while the first is still running: the execution runs once,
// is charged once; the others are told 409 at once and, retrying as told
// (Retry-After), every request gets its response.
func TestIdempotentExecuteChargesOnce(t *testing.T) {
	h := newHarness(t, 200*time.Millisecond)
	a := h.newTenant("acme", "enterprise")
	agent := h.newAgent(a)
	body := map[string]any{"message": "charge me once"}
	var wg sync.WaitGroup
	var conflicts atomic.Int64
	results := make([]response, 20)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 400 {
				results[i] = h.doWithHeader("POST", "/v1/agents/"+agent+"/execute", a.key, body, "Idempotency-Key", "order-1234")
				if results[i].status != 409 {
					return
				}
				if results[i].errCode() != "idempotency_in_progress" || results[i].header.Get("Retry-After") == "" {
					t.Errorf("request %d: %d %s", i, results[i].status, results[i].raw)
					return
				}
				conflicts.Add(1)
				time.Sleep(25 * time.Millisecond) // a client honouring Retry-After, shortened
			}
		}()
	}
	wg.Wait()
	if conflicts.Load() == 0 {
		t.Errorf("no request saw the first in progress: the test proves nothing")
	}
	first := ""
	replays := 0
	for i, r := range results {
		if r.status != 200 {
			t.Fatalf("request %d: %d %s", i, r.status, r.raw)
		}
		if first == "" {
			first = r.str("execution_id")
		}
		if r.str("execution_id") != first {
			t.Errorf("request %d got execution %s, want %s", i, r.str("execution_id"), first)
		}
		if r.header.Get("Idempotent-Replayed") == "true" {
			replays++
		}
	}
	if replays != 19 {
		t.Errorf("%d replays, want 19", replays)
	}
	if got := h.model.calls.Load(); got != 1 {
		t.Errorf("model ran %d times, want 1", got)
	}
	u := h.assertBalanced(a)
	if num(t, u["executions_this_month"]) != 1 || num(t, u["requests_this_hour"]) != 1 {
		t.Errorf("usage after 20 retries: %v", u)
	}
	// A later retry replays byte for byte.
	again := h.doWithHeader("POST", "/v1/agents/"+agent+"/execute", a.key, body, "Idempotency-Key", "order-1234")
	if again.raw != results[0].raw {
		t.Errorf("replay differs:\n%s\n%s", again.raw, results[0].raw)
	}
	// The same key with another body is refused; another key runs.
	r := h.doWithHeader("POST", "/v1/agents/"+agent+"/execute", a.key, map[string]any{"message": "different"}, "Idempotency-Key", "order-1234")
	if r.status != 422 || r.errCode() != "idempotency_mismatch" {
		t.Errorf("same key, other body: %d %s", r.status, r.raw)
	}
	h.must(200, "POST", "/v1/agents/"+agent+"/execute", a.key, body)
	// Keys are per tenant: another tenant's identical key is its own.
	b := h.newTenant("globex", "starter")
	agentB := h.newAgent(b)
	rb := h.doWithHeader("POST", "/v1/agents/"+agentB+"/execute", b.key, body, "Idempotency-Key", "order-1234")
	if rb.status != 200 || rb.header.Get("Idempotent-Replayed") != "" {
		t.Errorf("another tenant's same key: %d replayed=%q", rb.status, rb.header.Get("Idempotent-Replayed"))
	}
	if r := h.doWithHeader("POST", "/v1/agents/"+agent+"/execute", a.key, body, "Idempotency-Key", strings.Repeat("k", 256)); r.status != 400 {
		t.Errorf("256-character key: %d", r.status)
	}
	// Kept at least 24 hours.
	h.clock.Set(h.clock.Now().Add(23 * time.Hour))
	if r := h.doWithHeader("POST", "/v1/agents/"+agent+"/execute", a.key, body, "Idempotency-Key", "order-1234"); r.header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("after 23 h: %d %s, want a replay", r.status, r.raw)
	}
}

// TestIdempotencyInProgressAndRefusals: a retry while the first runs gets
// 409 at once (it does not wait, so it holds no invocation); a refused
// request (quota) stores no result, so its retry runs.
func TestIdempotencyInProgressAndRefusals(t *testing.T) {
	h := newHarness(t, 500*time.Millisecond)
	a := h.newTenant("acme", "starter")
	agent := h.agentWith(a, nil, map[string]any{"max_tokens": 1000})
	body := map[string]any{"message": "slow"}
	var wg sync.WaitGroup
	wg.Add(1)
	var first response
	go func() {
		defer wg.Done()
		first = h.doWithHeader("POST", "/v1/agents/"+agent+"/execute", a.key, body, "Idempotency-Key", "k1")
	}()
	deadline := time.Now().Add(5 * time.Second)
	for h.model.calls.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	r := h.doWithHeader("POST", "/v1/agents/"+agent+"/execute", a.key, body, "Idempotency-Key", "k1")
	if r.status != 409 || r.errCode() != "idempotency_in_progress" || r.header.Get("Retry-After") != "1" {
		t.Errorf("retry during the first: %d %s", r.status, r.raw)
	}
	if h.model.calls.Load() != 1 {
		t.Errorf("the retry reached the model: %d calls", h.model.calls.Load())
	}
	wg.Wait()
	if first.status != 200 {
		t.Fatalf("first: %d %s", first.status, first.raw)
	}

	h.setQuota(a, map[string]any{"max_requests_per_hour": 1})
	if r := h.doWithHeader("POST", "/v1/agents/"+agent+"/execute", a.key, body, "Idempotency-Key", "k2"); r.status != 429 {
		t.Fatalf("over quota: %d %s", r.status, r.raw)
	}
	h.setQuota(a, map[string]any{"max_requests_per_hour": 10})
	if r := h.doWithHeader("POST", "/v1/agents/"+agent+"/execute", a.key, body, "Idempotency-Key", "k2"); r.status != 200 || r.header.Get("Idempotent-Replayed") != "" {
		t.Errorf("retry after the refusal: %d %s, want a fresh run", r.status, r.raw)
	}
	// A model failure after admission is charged, and its 502 is replayed.
	fail := map[string]any{"message": "[[fail]]"}
	r1 := h.doWithHeader("POST", "/v1/agents/"+agent+"/execute", a.key, fail, "Idempotency-Key", "k3")
	r2 := h.doWithHeader("POST", "/v1/agents/"+agent+"/execute", a.key, fail, "Idempotency-Key", "k3")
	if r1.status != 502 || r2.status != 502 || r2.header.Get("Idempotent-Replayed") != "true" || r1.raw != r2.raw {
		t.Errorf("failed execution replay: %d %s / %d %s", r1.status, r1.raw, r2.status, r2.raw)
	}
	h.assertBalanced(a)
}

// TestIdempotentCreates: POST /v1/agents and POST /v1/keys create once per key.
func TestIdempotentCreates(t *testing.T) {
	h := newHarness(t, 0)
	a := h.newTenant("acme", "starter")
	body := map[string]any{"name": "once", "system_prompt": "p"}
	var ids []string
	for range 3 {
		r := h.doWithHeader("POST", "/v1/agents", a.key, body, "Idempotency-Key", "create-agent")
		if r.status != 201 {
			t.Fatalf("create: %d %s", r.status, r.raw)
		}
		ids = append(ids, r.str("agent_id"))
	}
	if ids[0] != ids[1] || ids[1] != ids[2] {
		t.Errorf("agent ids %v, want one agent", ids)
	}
	if got := len(h.must(200, "GET", "/v1/agents", a.key, nil).body["data"].([]any)); got != 1 {
		t.Errorf("%d agents, want 1", got)
	}
	k1 := h.doWithHeader("POST", "/v1/keys", a.key, map[string]any{"name": "ci"}, "Idempotency-Key", "create-key")
	k2 := h.doWithHeader("POST", "/v1/keys", a.key, map[string]any{"name": "ci"}, "Idempotency-Key", "create-key")
	// The replay is the same key without its secret, which is never stored.
	if k1.status != 201 || k2.status != 201 || k1.str("key_id") != k2.str("key_id") || k1.str("api_key") == "" || k2.str("api_key") != "" {
		t.Errorf("key create replay: %s / %s", k1.raw, k2.raw)
	}
	if got := len(h.must(200, "GET", "/v1/keys", a.key, nil).body["data"].([]any)); got != 2 {
		t.Errorf("%d keys, want 2 (the tenant's first and one created once)", got)
	}
	// A validation failure stores nothing: the same key with a fixed body works.
	if r := h.doWithHeader("POST", "/v1/agents", a.key, map[string]any{"name": ""}, "Idempotency-Key", "bad"); r.status != 400 {
		t.Errorf("invalid create: %d", r.status)
	}
	if r := h.doWithHeader("POST", "/v1/agents", a.key, map[string]any{"name": "fixed", "system_prompt": "p"}, "Idempotency-Key", "bad"); r.status != 201 {
		t.Errorf("the same key after a refused request: %d %s", r.status, r.raw)
	}
}
