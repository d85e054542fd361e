package api_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/truora/minidyn/server"
)

// TestConcurrentExecutionsCountExactly runs executions concurrently and checks
// that the counters equal the sum of what the responses reported.
func TestConcurrentExecutionsCountExactly(t *testing.T) {
	h := newHarness(t, 20*time.Millisecond)
	a := h.newTenant("acme", "enterprise")
	agent := h.newAgent(a)

	const n = 40
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		tokens int64
		cost   int64
	)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := h.do("POST", "/v1/agents/"+agent+"/execute", a.key, map[string]any{"message": fmt.Sprintf("question %d", i)})
			if r.status != 200 {
				t.Errorf("execute %d: status %d %s", i, r.status, r.raw)
				return
			}
			u := r.body["usage"].(map[string]any)
			used := num(t, r.body["tokens_used"])
			if in, out := num(t, u["input_tokens"]), num(t, u["output_tokens"]); in+out != used {
				t.Errorf("tokens_used %d != input %d + output %d", used, in, out)
			}
			mu.Lock()
			tokens += used
			cost += micros(t, r.body["cost"])
			mu.Unlock()
		}()
	}
	wg.Wait()

	u := h.usage(a)
	if got := num(t, u["tokens_this_month"]); got != tokens {
		t.Errorf("tokens_this_month = %d, want sum of tokens_used %d", got, tokens)
	}
	if got := micros(t, u["spend_this_month"]); got != cost {
		t.Errorf("spend_this_month = %d µ$, want sum of costs %d µ$", got, cost)
	}
	if got := num(t, u["requests_this_hour"]); got != n {
		t.Errorf("requests_this_hour = %d, want %d", got, n)
	}
	if got := num(t, u["executions_this_month"]); got != n {
		t.Errorf("executions_this_month = %d, want %d", got, n)
	}
	if got := num(t, u["concurrent_agents"]); got != 0 {
		t.Errorf("concurrent_agents = %d after all finished, want 0", got)
	}
	// The usage records add up to the counters too.
	var recTokens int64
	var recs int
	cursor := ""
	for {
		page, err := h.env.API.Store().Tenant(a.id).ListExecutions(context.Background(), cursor, 100)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range page.Items {
			recTokens += e.InputTokens + e.OutputTokens
			recs++
		}
		if cursor = page.NextCursor; cursor == "" {
			break
		}
	}
	if recs != n || recTokens != tokens {
		t.Errorf("usage records: %d records with %d tokens, want %d with %d", recs, recTokens, n, tokens)
	}
}

// TestOneTurnAtATimePerConversation races executions on one conversation:
// each either wins the turn or is refused with 409, and the transcript and
// counters agree with the winners.
func TestOneTurnAtATimePerConversation(t *testing.T) {
	h := newHarness(t, 30*time.Millisecond)
	a := h.newTenant("acme", "starter")
	agent := h.newAgent(a)
	first := h.must(200, "POST", "/v1/agents/"+agent+"/execute", a.key, map[string]any{"message": "hello"})
	conv := first.str("conversation_id")
	tokens := num(t, first.body["tokens_used"])

	var wg sync.WaitGroup
	var mu sync.Mutex
	won, refused := 0, 0
	for i := range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := h.do("POST", "/v1/agents/"+agent+"/execute", a.key, map[string]any{"message": fmt.Sprintf("m%d", i), "conversation_id": conv})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case r.status == 200:
				won++
				tokens += num(t, r.body["tokens_used"])
			case r.status == 409 && r.errCode() == "conflict":
				refused++
			default:
				t.Errorf("status %d %s", r.status, r.raw)
			}
		}()
	}
	wg.Wait()
	if won == 0 || won+refused != 10 {
		t.Fatalf("won %d, refused %d; want at least one winner and 10 in all", won, refused)
	}
	c := h.must(200, "GET", "/v1/conversations/"+conv+"?limit=100", a.key, nil)
	if got, want := num(t, c.body["turns"]), int64(won+1); got != want {
		t.Errorf("turns = %d, want %d", got, want)
	}
	if got, want := len(c.body["messages"].([]any)), 2*(won+1); got != want {
		t.Errorf("messages = %d, want %d", got, want)
	}
	if got := num(t, h.usage(a)["tokens_this_month"]); got != tokens {
		t.Errorf("tokens_this_month = %d, want %d (refused executions must cost nothing)", got, tokens)
	}
}

// TestModelFailureIsRecordedAndReleases checks that a failed model call
// answers 502, leaves a failed usage record, and frees the conversation.
func TestModelFailureIsRecordedAndReleases(t *testing.T) {
	h := newHarness(t, 0)
	a := h.newTenant("acme", "starter")
	agent := h.newAgent(a)
	conv := h.must(200, "POST", "/v1/agents/"+agent+"/execute", a.key, map[string]any{"message": "hi"}).str("conversation_id")
	tokens := num(t, h.usage(a)["tokens_this_month"])

	r := h.must(502, "POST", "/v1/agents/"+agent+"/execute", a.key, map[string]any{"message": "please [[fail]]", "conversation_id": conv})
	if r.errCode() != "model_error" {
		t.Errorf("code = %q, want model_error", r.errCode())
	}
	u := h.usage(a)
	if got := num(t, u["requests_this_hour"]); got != 2 {
		t.Errorf("requests_this_hour = %d, want 2", got)
	}
	if got := num(t, u["tokens_this_month"]); got != tokens {
		t.Errorf("tokens_this_month = %d, want %d", got, tokens)
	}
	if got := num(t, u["concurrent_agents"]); got != 0 {
		t.Errorf("concurrent_agents = %d, want 0", got)
	}
	page, err := h.env.API.Store().Tenant(a.id).ListExecutions(context.Background(), "", 10)
	if err != nil {
		t.Fatal(err)
	}
	failed := 0
	for _, e := range page.Items {
		if e.Status == "model_error" {
			failed++
		}
	}
	if failed != 1 {
		t.Errorf("usage records with status model_error = %d, want 1", failed)
	}
	// The conversation is free again.
	h.must(200, "POST", "/v1/agents/"+agent+"/execute", a.key, map[string]any{"message": "again", "conversation_id": conv})
}

// TestStorageDownFailsClosed injects DynamoDB failures: nothing runs.
func TestStorageDownFailsClosed(t *testing.T) {
	h := newHarness(t, 0)
	a := h.newTenant("acme", "starter")
	agent := h.newAgent(a)

	h.env.Dynamo.EmulateFailure(server.FailureConditionInternalServerError)
	r := h.do("POST", "/v1/agents/"+agent+"/execute", a.key, map[string]any{"message": "hi"})
	h.env.Dynamo.EmulateFailure(server.FailureConditionNone)
	if r.status != http.StatusServiceUnavailable || r.errCode() != "unavailable" {
		t.Errorf("with DynamoDB down: status %d code %q, want 503 unavailable (%s)", r.status, r.errCode(), r.raw)
	}
	if got := h.model.calls.Load(); got != 0 {
		t.Errorf("model called %d times while DynamoDB was down, want 0", got)
	}
	u := h.usage(a)
	if got := num(t, u["requests_this_hour"]); got != 0 {
		t.Errorf("requests_this_hour = %d, want 0", got)
	}
}

// TestClientDisconnectStillSettles cancels the request while the model runs.
func TestClientDisconnectStillSettles(t *testing.T) {
	h := newHarness(t, 300*time.Millisecond)
	a := h.newTenant("acme", "starter")
	agent := h.newAgent(a)

	// Cancel once the model is running (the execution is admitted by then).
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		for h.model.calls.Load() == 0 {
			time.Sleep(2 * time.Millisecond)
		}
		cancel()
	}()
	req, _ := http.NewRequestWithContext(ctx, "POST", h.srv.URL+"/v1/agents/"+agent+"/execute", strings.NewReader(`{"message":"slow"}`))
	req.Header.Set("Authorization", "Bearer "+a.key)
	if resp, err := h.srv.Client().Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("request finished with %d before the model answered", resp.StatusCode)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		u := h.usage(a)
		if num(t, u["executions_this_month"]) == 1 && num(t, u["concurrent_agents"]) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("cancelled execution never settled: %v", u)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestWindowsRollOver moves the injected clock across the hour and the month.
func TestWindowsRollOver(t *testing.T) {
	h := newHarness(t, 0)
	a := h.newTenant("acme", "starter")
	agent := h.newAgent(a)

	h.clock.Set(time.Date(2026, 11, 30, 23, 59, 59, 0, time.UTC))
	tokens := num(t, h.must(200, "POST", "/v1/agents/"+agent+"/execute", a.key, map[string]any{"message": "late"}).body["tokens_used"])
	u := h.usage(a)
	if num(t, u["requests_this_hour"]) != 1 || num(t, u["tokens_this_month"]) != tokens {
		t.Fatalf("before rollover: %v", u)
	}
	h.clock.Set(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC))
	u = h.usage(a)
	if got := num(t, u["requests_this_hour"]); got != 0 {
		t.Errorf("requests_this_hour after the hour rolled = %d, want 0", got)
	}
	if got := num(t, u["tokens_this_month"]); got != 0 {
		t.Errorf("tokens_this_month after the month rolled = %d, want 0", got)
	}
	b := h.must(200, "GET", "/v1/billing/current", a.key, nil)
	if b.str("month") != "2026-12" || num(t, b.body["tokens_used"]) != 0 {
		t.Errorf("billing after rollover: %s", b.raw)
	}
	h.clock.Set(time.Date(2026, 11, 30, 23, 59, 59, 0, time.UTC))
	if got := num(t, h.usage(a)["tokens_this_month"]); got != tokens {
		t.Errorf("November still holds %d tokens, want %d", got, tokens)
	}
}

// TestStorageCountedAndReleased checks storage bytes follow the transcripts.
func TestStorageCountedAndReleased(t *testing.T) {
	h := newHarness(t, 0)
	a := h.newTenant("acme", "starter")
	agent := h.newAgent(a)
	first := h.must(200, "POST", "/v1/agents/"+agent+"/execute", a.key, map[string]any{"message": "one"})
	conv := first.str("conversation_id")
	second := h.must(200, "POST", "/v1/agents/"+agent+"/execute", a.key, map[string]any{"message": "two", "conversation_id": conv})
	logs := h.logBytes(a, first.str("execution_id"), second.str("execution_id"))
	if got := num(t, h.usage(a)["storage_bytes"]); got <= logs {
		t.Fatalf("storage_bytes = %d after two turns, want more than the logs' %d", got, logs)
	}
	h.must(200, "DELETE", "/v1/conversations/"+conv, a.key, nil)
	// The transcript's bytes go back; the executions' logs stay counted.
	if got := num(t, h.usage(a)["storage_bytes"]); got != logs {
		t.Errorf("storage_bytes = %d after delete, want the logs' %d", got, logs)
	}
	h.must(404, "GET", "/v1/conversations/"+conv, a.key, nil)
	h.must(404, "POST", "/v1/agents/"+agent+"/execute", a.key, map[string]any{"message": "x", "conversation_id": conv})
}
