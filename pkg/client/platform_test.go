package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bulkhead-dev/bulkhead/pkg/api/apispec"
	"github.com/bulkhead-dev/bulkhead/pkg/client"
	"github.com/bulkhead-dev/bulkhead/pkg/platform/platformtest"
)

const adminToken = "sdk-test-admin-token"

// platform is the whole platform (embedded DynamoDB and S3, the offline
// model) behind the local API Gateway, served over real HTTP.
type platform struct {
	url string
	op  *client.Operator
}

func startPlatform(tb testing.TB, opts ...platformtest.Option) *platform {
	tb.Helper()
	gw := platformtest.Start(tb, opts...).Gateway(tb, adminToken)
	oracle, err := apispec.Load()
	if err != nil {
		tb.Fatalf("OpenAPI document: %v", err)
	}
	// Every answer the SDK gets is held to the OpenAPI document.
	srv := httptest.NewServer(oracle.Handler(gw, func(err error) { tb.Error(err) }))
	tb.Cleanup(srv.Close)
	return &platform{url: srv.URL, op: client.NewOperator(srv.URL, adminToken)}
}

// tenant creates a tenant with the operator client and returns it with a
// client on its key.
func (p *platform) tenant(tb testing.TB, name string, opts ...client.Option) (*client.Tenant, *client.Client) {
	tb.Helper()
	tn, err := p.op.CreateTenant(context.Background(), name, "professional")
	if err != nil {
		tb.Fatalf("create tenant: %v", err)
	}
	if tn.APIKey == "" || tn.KeyID == "" || tn.Tier != "professional" || tn.Status != "active" {
		tb.Fatalf("created tenant: %+v", tn)
	}
	return tn, client.New(p.url, tn.APIKey, opts...)
}

func newAgent(tb testing.TB, c *client.Client, name string) *client.Agent {
	tb.Helper()
	a, err := c.CreateAgent(context.Background(), client.CreateAgentRequest{Name: name, SystemPrompt: "You are brief.", Tools: []string{"search_kb"}})
	if err != nil {
		tb.Fatalf("create agent: %v", err)
	}
	return a
}

func collect[T any](tb testing.TB, seq func(func(T, error) bool)) []T {
	tb.Helper()
	var out []T
	for v, err := range seq {
		if err != nil {
			tb.Fatalf("list: %v", err)
		}
		out = append(out, v)
	}
	return out
}

func TestAgentsAndExecution(t *testing.T) {
	p := startPlatform(t)
	ctx := context.Background()
	_, c := p.tenant(t, "acme")
	if err := c.Health(ctx); err != nil {
		t.Fatalf("health: %v", err)
	}

	a := newAgent(t, c, "support")
	if a.AgentID == "" || a.Name != "support" || a.Status != "active" || a.Model != "bulkhead-offline-1" || a.Version != 1 ||
		a.CreatedAt.IsZero() || len(a.Tools) != 1 || string(a.Tools[0]) != `"search_kb"` || a.FallbackModels == nil {
		t.Fatalf("created agent: %+v", a)
	}
	got, err := c.GetAgent(ctx, a.AgentID)
	if err != nil || got.AgentID != a.AgentID || got.SystemPrompt != "You are brief." {
		t.Fatalf("get agent: %+v, %v", got, err)
	}
	name, steps := "helpdesk", int64(3)
	up, err := c.UpdateAgent(ctx, a.AgentID, client.UpdateAgentRequest{Name: &name, Limits: &client.AgentLimits{MaxSteps: &steps}})
	if err != nil || up.Name != "helpdesk" || up.Version != 2 || up.Limits.MaxSteps == nil || *up.Limits.MaxSteps != 3 {
		t.Fatalf("update agent: %+v, %v", up, err)
	}

	res, err := c.Execute(ctx, a.AgentID, client.ExecuteRequest{Message: "My order is late."})
	if err != nil {
		t.Fatalf("execute: %v", err)
	}
	if res.ExecutionID == "" || res.ConversationID == "" || res.AgentID != a.AgentID || res.Status != "completed" || res.Message == "" ||
		res.TokensUsed != res.Usage.InputTokens+res.Usage.OutputTokens || res.TokensUsed == 0 || res.Cost == "" || res.Replayed {
		t.Fatalf("execute result: %+v", res)
	}
	// A second turn of the same conversation.
	res2, err := c.Execute(ctx, a.AgentID, client.ExecuteRequest{Message: "Order 1234.", ConversationID: res.ConversationID})
	if err != nil || res2.ConversationID != res.ConversationID {
		t.Fatalf("second turn: %+v, %v", res2, err)
	}

	ex, err := c.GetExecution(ctx, res.ExecutionID)
	if err != nil || ex.ExecutionID != res.ExecutionID || ex.Message == nil || *ex.Message != res.Message || ex.TokensUsed != res.TokensUsed ||
		ex.StartedAt.IsZero() || ex.FinishedAt.Before(ex.StartedAt.Time) {
		t.Fatalf("get execution: %+v, %v", ex, err)
	}
	lg, err := c.ExecutionLog(ctx, res.ExecutionID)
	if err != nil || lg.ExecutionID != res.ExecutionID || len(lg.Steps) < 2 || lg.Steps[0].Kind != "model" ||
		lg.Steps[len(lg.Steps)-1].Kind != "end" || lg.StoredBytes <= 0 || lg.Steps[0].Input != "" {
		t.Fatalf("execution log: %+v, %v", lg, err)
	}
	var logged int64
	for _, s := range lg.Steps {
		logged += s.InputTokens + s.OutputTokens
	}
	if logged != res.TokensUsed {
		t.Errorf("the log's steps used %d tokens, the execution %d", logged, res.TokensUsed)
	}

	conv, err := c.GetConversation(ctx, res.ConversationID, &client.ListOptions{Limit: 1})
	if err != nil || conv.Turns != 2 || len(conv.Messages) != 1 || !conv.HasMore || conv.NextCursor == nil || conv.Messages[0].Role != "user" {
		t.Fatalf("conversation page: %+v, %v", conv, err)
	}
	msgs := collect(t, c.Messages(ctx, res.ConversationID, &client.ListOptions{Limit: 1}))
	if len(msgs) != 4 || msgs[0].Content != "My order is late." || msgs[1].Role != "assistant" || msgs[1].Content != res.Message ||
		msgs[3].Content != res2.Message {
		t.Fatalf("messages: %+v", msgs)
	}
	convs := collect(t, c.ListConversations(ctx, a.AgentID, nil))
	if len(convs) != 1 || convs[0].ConversationID != res.ConversationID || convs[0].Turns != 2 {
		t.Fatalf("conversations: %+v", convs)
	}

	u, err := c.Usage(ctx)
	if err != nil || u.Usage.ExecutionsThisMonth != 2 || u.Usage.TokensThisMonth != res.TokensUsed+res2.TokensUsed || u.Tier != "professional" {
		t.Fatalf("usage: %+v, %v", u, err)
	}
	recs := collect(t, c.UsageRecords(ctx, client.UsageRecordsQuery{AgentID: a.AgentID, ListOptions: client.ListOptions{Limit: 1}}))
	if len(recs) != 2 || recs[0].ExecutionID != res.ExecutionID || recs[1].ExecutionID != res2.ExecutionID || recs[0].Tokens != res.TokensUsed {
		t.Fatalf("usage records: %+v", recs)
	}
	daily, err := c.DailyUsage(ctx, "")
	if err != nil || len(daily.Data) != 1 || daily.Data[0].Executions != 2 {
		t.Fatalf("daily usage: %+v, %v", daily, err)
	}
	bill, err := c.CurrentBill(ctx)
	if err != nil || !bill.Estimate || bill.TokensUsed != u.Usage.TokensThisMonth || bill.Tier != "professional" || bill.Total == "" {
		t.Fatalf("bill: %+v, %v", bill, err)
	}
	if inv := collect(t, c.ListInvoices(ctx, nil)); len(inv) != 0 {
		t.Fatalf("invoices of a new tenant: %+v", inv)
	}
	if _, err := c.GetInvoice(ctx, "2026-01"); !client.IsNotFound(err) {
		t.Fatalf("invoice of a month never closed: %v", err)
	}
	models := collect(t, c.ListModels(ctx, nil))
	found := false
	for _, m := range models {
		found = found || m.Model == "bulkhead-offline-1"
	}
	if !found {
		t.Fatalf("models: %+v", models)
	}

	if err := c.DeleteConversation(ctx, res.ConversationID); err != nil {
		t.Fatalf("delete conversation: %v", err)
	}
	if _, err := c.GetConversation(ctx, res.ConversationID, nil); !client.IsNotFound(err) {
		t.Fatalf("deleted conversation: %v", err)
	}
	disabled := "disabled"
	if _, err := c.UpdateAgent(ctx, a.AgentID, client.UpdateAgentRequest{Status: &disabled}); err != nil {
		t.Fatalf("disable: %v", err)
	}
	if _, err := c.Execute(ctx, a.AgentID, client.ExecuteRequest{Message: "hi"}); !client.IsCode(err, "conflict") {
		t.Fatalf("execute a disabled agent: %v", err)
	}
	if err := c.DeleteAgent(ctx, a.AgentID); err != nil {
		t.Fatalf("delete agent: %v", err)
	}
	if _, err := c.GetAgent(ctx, a.AgentID); !client.IsNotFound(err) {
		t.Fatalf("deleted agent: %v", err)
	}
}

func TestExecuteStream(t *testing.T) {
	p := startPlatform(t)
	ctx := context.Background()
	_, c := p.tenant(t, "acme")
	a := newAgent(t, c, "support")

	var deltas strings.Builder
	var events []string
	var result *client.ExecuteResult
	for ev, err := range c.ExecuteStream(ctx, a.AgentID, client.ExecuteRequest{Message: "use tool search_kb refunds"}) {
		if err != nil {
			t.Fatalf("stream: %v", err)
		}
		events = append(events, ev.Type)
		switch ev.Type {
		case client.EventDelta:
			deltas.WriteString(ev.Text)
		case client.EventToolCall:
			if ev.ToolCall.Name != "search_kb" || ev.ToolCall.ID == "" || len(ev.ToolCall.Arguments) == 0 {
				t.Errorf("tool call: %+v", ev.ToolCall)
			}
		case client.EventToolResult:
			if ev.ToolResult.Name != "search_kb" || ev.ToolResult.ToolCallID == "" {
				t.Errorf("tool result: %+v", ev.ToolResult)
			}
		case client.EventDone:
			result = ev.Result
		}
	}
	if result == nil || result.Status != "completed" || result.Message == "" {
		t.Fatalf("no done event or a bad one (events %v): %+v", events, result)
	}
	if deltas.String() != result.Message {
		t.Errorf("deltas %q, reply %q", deltas.String(), result.Message)
	}
	if !contains(events, client.EventToolCall) || !contains(events, client.EventToolResult) || len(result.ToolCalls) != 1 {
		t.Errorf("events %v, tool calls %+v", events, result.ToolCalls)
	}
	if events[len(events)-1] != client.EventDone {
		t.Errorf("last event %q", events[len(events)-1])
	}
	ex, err := c.GetExecution(ctx, result.ExecutionID)
	if err != nil || ex.Status != "completed" || ex.ToolCallCount != 1 {
		t.Fatalf("streamed execution: %+v, %v", ex, err)
	}

	// A refusal before the stream begins is a typed error.
	n := 0
	for _, err := range c.ExecuteStream(ctx, "agt_unknown", client.ExecuteRequest{Message: "hi"}) {
		n++
		if !client.IsNotFound(err) {
			t.Fatalf("stream of an unknown agent: %v", err)
		}
	}
	if n != 1 {
		t.Fatalf("stream of an unknown agent yielded %d times", n)
	}

	// The same Idempotency-Key replays the stored result as a single done event.
	kctx := client.WithIdempotencyKey(ctx, "stream-once")
	first := lastResult(t, c.ExecuteStream(kctx, a.AgentID, client.ExecuteRequest{Message: "hello"}))
	again := lastResult(t, c.ExecuteStream(kctx, a.AgentID, client.ExecuteRequest{Message: "hello"}))
	if first.Replayed || !again.Replayed || again.ExecutionID != first.ExecutionID {
		t.Fatalf("replayed stream: first %+v, again %+v", first, again)
	}
}

func lastResult(tb testing.TB, seq func(func(client.StreamEvent, error) bool)) *client.ExecuteResult {
	tb.Helper()
	var res *client.ExecuteResult
	for ev, err := range seq {
		if err != nil {
			tb.Fatalf("stream: %v", err)
		}
		if ev.Type == client.EventDone {
			res = ev.Result
		}
	}
	if res == nil {
		tb.Fatal("no done event")
	}
	return res
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func TestListIteratorFollowsCursors(t *testing.T) {
	p := startPlatform(t)
	ctx := context.Background()
	_, c := p.tenant(t, "acme")
	want := map[string]bool{}
	for i := range 7 {
		want[newAgent(t, c, "agent-"+string(rune('a'+i))).AgentID] = true
	}
	counting := &countingTransport{next: http.DefaultTransport}
	cc := client.New(p.url, mustKey(t, c), client.WithHTTPClient(&http.Client{Transport: counting}))
	got := collect(t, cc.ListAgents(ctx, &client.ListOptions{Limit: 2}))
	if len(got) != 7 {
		t.Fatalf("listed %d agents, want 7", len(got))
	}
	for _, a := range got {
		if !want[a.AgentID] {
			t.Errorf("unexpected agent %s", a.AgentID)
		}
		delete(want, a.AgentID)
	}
	if pages := counting.count("GET /v1/agents"); pages != 4 {
		t.Errorf("read %d pages of 2 for 7 agents, want 4", pages)
	}
	// Stopping the range stops reading.
	n := 0
	for _, err := range cc.ListAgents(ctx, &client.ListOptions{Limit: 2}) {
		if err != nil {
			t.Fatal(err)
		}
		if n++; n == 3 {
			break
		}
	}
	if pages := counting.count("GET /v1/agents"); pages != 4+2 {
		t.Errorf("a range stopped after 3 items read %d pages, want 2", pages-4)
	}
	// An error ends the list.
	for _, err := range cc.ListAgents(ctx, &client.ListOptions{Limit: 1000}) {
		if !client.IsCode(err, "invalid_request") {
			t.Fatalf("limit 1000: %v", err)
		}
	}
}

// mustKey creates another key of c's tenant.
func mustKey(tb testing.TB, c *client.Client) string {
	tb.Helper()
	k, err := c.CreateKey(context.Background(), "lister")
	if err != nil {
		tb.Fatal(err)
	}
	return k.APIKey
}

// countingTransport counts requests by "METHOD path".
type countingTransport struct {
	next http.RoundTripper
	mu   sync.Mutex
	n    map[string]int
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.mu.Lock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	c.n[r.Method+" "+r.URL.Path]++
	c.mu.Unlock()
	return c.next.RoundTrip(r)
}

func (c *countingTransport) count(key string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[key]
}

func TestHourlyQuotaIsATyped429(t *testing.T) {
	p := startPlatform(t)
	ctx := context.Background()
	tn, _ := p.tenant(t, "acme")
	one := int64(1)
	up, err := p.op.UpdateTenant(ctx, tn.TenantID, client.UpdateTenantRequest{Quota: &client.QuotaOverrides{MaxRequestsPerHour: &one}})
	if err != nil || up.Quota.MaxRequestsPerHour != 1 || up.CircuitBreaker == nil || up.Usage == nil {
		t.Fatalf("set the hourly quota: %+v, %v", up, err)
	}
	c := client.New(p.url, tn.APIKey)
	a := newAgent(t, c, "support")
	if _, err := c.Execute(ctx, a.AgentID, client.ExecuteRequest{Message: "one"}); err != nil {
		t.Fatalf("first execution: %v", err)
	}
	start := time.Now()
	_, err = c.Execute(ctx, a.AgentID, client.ExecuteRequest{Message: "two"})
	e := client.AsError(err)
	if e == nil || e.Status != 429 || e.Code != "rate_limited" || !client.IsCode(err, "rate_limited") || e.QuotaType != "requests" ||
		e.Limit != "1" || e.Used != "1" || e.ResetsAt.IsZero() || e.RetryAfter <= 0 || e.RetryAfter > time.Hour || e.Message == "" {
		t.Fatalf("second execution: %#v", e)
	}
	if !e.ResetsAt.After(time.Now()) || e.ResetsAt.Minute() != 0 {
		t.Errorf("resets_at %v is not the next hour", e.ResetsAt)
	}
	// Unless the hour is about to end, the wait is longer than the client
	// waits for: it answers at once rather than sleep.
	if e.RetryAfter > client.DefaultMaxRetryWait && time.Since(start) > 10*time.Second {
		t.Errorf("a refusal with Retry-After %s took %s", e.RetryAfter, time.Since(start))
	}
	if !strings.Contains(err.Error(), "rate_limited") {
		t.Errorf("error text %q", err)
	}
}

// dropFirstExecute performs the first execute request, then loses its
// answer as a dropped connection would; later requests pass.
type dropFirstExecute struct {
	next    http.RoundTripper
	mu      sync.Mutex
	dropped bool
	keys    []string
}

func (d *dropFirstExecute) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method != http.MethodPost || !strings.HasSuffix(r.URL.Path, "/execute") {
		return d.next.RoundTrip(r)
	}
	d.mu.Lock()
	d.keys = append(d.keys, r.Header.Get(client.IdempotencyHeader))
	drop := !d.dropped
	d.dropped = true
	d.mu.Unlock()
	resp, err := d.next.RoundTrip(r)
	if err != nil || !drop {
		return resp, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, errors.New("the first execute failed: " + resp.Status)
	}
	return nil, errors.New("connection reset by peer")
}

func TestRetriedExecuteRunsOnce(t *testing.T) {
	p := startPlatform(t)
	ctx := context.Background()
	tn, c := p.tenant(t, "acme")
	a := newAgent(t, c, "support")
	drop := &dropFirstExecute{next: http.DefaultTransport}
	rc := client.New(p.url, tn.APIKey, client.WithHTTPClient(&http.Client{Transport: drop}))
	res, err := rc.Execute(ctx, a.AgentID, client.ExecuteRequest{Message: "Run me once."})
	if err != nil {
		t.Fatalf("execute: %v", err)
	}
	if !res.Replayed || res.Status != "completed" {
		t.Fatalf("the retry's answer: %+v", res)
	}
	if len(drop.keys) != 2 || drop.keys[0] == "" || drop.keys[0] != drop.keys[1] {
		t.Fatalf("Idempotency-Keys sent: %q", drop.keys)
	}
	u, err := c.Usage(ctx)
	if err != nil || u.Usage.ExecutionsThisMonth != 1 || u.Usage.RequestsThisHour != 1 || u.Usage.TokensThisMonth != res.TokensUsed {
		t.Fatalf("usage after a retried execute: %+v, %v", u.Usage, err)
	}
	recs := collect(t, c.UsageRecords(ctx, client.UsageRecordsQuery{}))
	if len(recs) != 1 || recs[0].ExecutionID != res.ExecutionID {
		t.Fatalf("usage records: %+v", recs)
	}

	// A caller's own key: a second call (another process, say) is a replay.
	kctx := client.WithIdempotencyKey(ctx, "order-1234-reply")
	first, err := c.Execute(kctx, a.AgentID, client.ExecuteRequest{Message: "Once."})
	if err != nil || first.Replayed {
		t.Fatalf("first keyed execute: %+v, %v", first, err)
	}
	second, err := c.Execute(kctx, a.AgentID, client.ExecuteRequest{Message: "Once."})
	if err != nil || !second.Replayed || second.ExecutionID != first.ExecutionID {
		t.Fatalf("second keyed execute: %+v, %v", second, err)
	}
	// The same key with another request is refused, and not retried.
	if _, err := c.Execute(kctx, a.AgentID, client.ExecuteRequest{Message: "Other."}); !client.IsCode(err, "idempotency_mismatch") ||
		client.AsError(err).Status != 422 {
		t.Fatalf("reused key: %v", err)
	}
}

func TestNotFoundIsTyped(t *testing.T) {
	p := startPlatform(t)
	ctx := context.Background()
	_, c := p.tenant(t, "acme")
	counting := &countingTransport{next: http.DefaultTransport}
	cc := client.New(p.url, mustKey(t, c), client.WithHTTPClient(&http.Client{Transport: counting}))
	_, err := cc.GetAgent(ctx, "agt_00000000000000000000000000")
	e := client.AsError(err)
	if e == nil || e.Status != 404 || e.Code != "not_found" || !client.IsNotFound(err) || e.Message == "" || e.Path == "" || e.Method != "GET" {
		t.Fatalf("unknown agent: %#v", err)
	}
	if n := counting.count("GET /v1/agents/agt_00000000000000000000000000"); n != 1 {
		t.Errorf("a 404 was sent %d times, want once", n)
	}
	for name, err := range map[string]error{
		"execution": second(cc.GetExecution(ctx, "exec_nope")),
		"log":       second(cc.ExecutionLog(ctx, "exec_nope")),
		"tool":      second(cc.GetTool(ctx, "tool_nope")),
		"ticket":    second(cc.GetTicket(ctx, "tkt_nope")),
		"document":  second(cc.GetDocument(ctx, "nope.md")),
		"tenant":    second(p.op.GetTenant(ctx, "tn_nope")),
	} {
		if !client.IsNotFound(err) {
			t.Errorf("unknown %s: %v", name, err)
		}
	}
	// A validation error is a 400, not retried either.
	if _, err := cc.CreateAgent(ctx, client.CreateAgentRequest{Name: " ", SystemPrompt: "x"}); !client.IsCode(err, "invalid_request") {
		t.Fatalf("agent without a prompt: %v", err)
	}
	if n := counting.count("POST /v1/agents"); n != 1 {
		t.Errorf("a 400 was sent %d times, want once", n)
	}
	// A wrong key is unauthenticated.
	if _, err := client.New(p.url, "bk_live_nope").Usage(ctx); !client.IsCode(err, "unauthenticated") {
		t.Fatalf("unknown key: %v", err)
	}
}

func second[T any](_ T, err error) error { return err }

func TestKeysCreateListRevoke(t *testing.T) {
	p := startPlatform(t)
	ctx := context.Background()
	tn, c := p.tenant(t, "acme")
	k, err := c.CreateKey(ctx, "ci")
	if err != nil || k.APIKey == "" || k.APIKeyRedacted || k.Name != "ci" || k.Status != "active" || !strings.HasPrefix(k.APIKey, k.Prefix) {
		t.Fatalf("create key: %+v, %v", k, err)
	}
	ci := client.New(p.url, k.APIKey)
	if _, err := ci.Usage(ctx); err != nil {
		t.Fatalf("the new key: %v", err)
	}
	keys := collect(t, c.ListKeys(ctx, &client.ListOptions{Limit: 1}))
	ids := map[string]bool{}
	for _, key := range keys {
		ids[key.KeyID] = true
	}
	if len(keys) != 2 || !ids[tn.KeyID] || !ids[k.KeyID] {
		t.Fatalf("keys: %+v", keys)
	}
	rv, err := c.RevokeKey(ctx, k.KeyID)
	if err != nil || rv.Status != "revoked" || rv.RevokedAt == nil || rv.RevokedAt.IsZero() {
		t.Fatalf("revoke: %+v, %v", rv, err)
	}
	if _, err := ci.Usage(ctx); !client.IsCode(err, "forbidden") || client.AsError(err).Status != 403 {
		t.Fatalf("a revoked key: %v", err)
	}
	// A create replayed with its key has no secret.
	kctx := client.WithIdempotencyKey(ctx, "key-once")
	first, err := c.CreateKey(kctx, "once")
	if err != nil || first.APIKey == "" {
		t.Fatalf("keyed create: %+v, %v", first, err)
	}
	again, err := c.CreateKey(kctx, "once")
	if err != nil || again.APIKey != "" || !again.APIKeyRedacted || again.KeyID != first.KeyID {
		t.Fatalf("replayed create: %+v, %v", again, err)
	}
}

func TestTenantsAreIsolated(t *testing.T) {
	p := startPlatform(t)
	ctx := context.Background()
	_, ca := p.tenant(t, "acme")
	tb, cb := p.tenant(t, "globex")
	a := newAgent(t, ca, "acme-agent")
	res, err := ca.Execute(ctx, a.AgentID, client.ExecuteRequest{Message: "hello"})
	if err != nil {
		t.Fatal(err)
	}
	if got := collect(t, cb.ListAgents(ctx, nil)); len(got) != 0 {
		t.Fatalf("globex lists acme's agents: %+v", got)
	}
	if got := collect(t, cb.ListConversations(ctx, "", nil)); len(got) != 0 {
		t.Fatalf("globex lists acme's conversations: %+v", got)
	}
	for name, err := range map[string]error{
		"agent":        second(cb.GetAgent(ctx, a.AgentID)),
		"execute":      second(cb.Execute(ctx, a.AgentID, client.ExecuteRequest{Message: "hi"})),
		"execution":    second(cb.GetExecution(ctx, res.ExecutionID)),
		"log":          second(cb.ExecutionLog(ctx, res.ExecutionID)),
		"conversation": second(cb.GetConversation(ctx, res.ConversationID, nil)),
		"delete agent": cb.DeleteAgent(ctx, a.AgentID),
	} {
		if !client.IsNotFound(err) {
			t.Errorf("globex reads acme's %s: %v", name, err)
		}
	}
	if _, err := ca.GetAgent(ctx, a.AgentID); err != nil {
		t.Fatalf("acme's agent after globex's attempts: %v", err)
	}
	u, err := cb.Usage(ctx)
	if err != nil || u.TenantID != tb.TenantID || u.Usage.ExecutionsThisMonth != 0 {
		t.Fatalf("globex's usage: %+v, %v", u, err)
	}
}

func TestOperator(t *testing.T) {
	p := startPlatform(t)
	ctx := context.Background()
	tn, c := p.tenant(t, "acme")
	got, err := p.op.GetTenant(ctx, tn.TenantID)
	if err != nil || got.Name != "acme" || got.APIKey != "" || got.CircuitBreaker == nil || got.CircuitBreaker.State != "closed" || got.Usage == nil {
		t.Fatalf("get tenant: %+v, %v", got, err)
	}
	for i := range 3 {
		if _, err := p.op.CreateTenant(ctx, "t"+string(rune('0'+i)), ""); err != nil {
			t.Fatal(err)
		}
	}
	if all := collect(t, p.op.ListTenants(ctx, &client.ListOptions{Limit: 2})); len(all) != 4 {
		t.Fatalf("tenants: %d, want 4", len(all))
	}
	tier, suspended, active, open := "enterprise", "suspended", "active", "open"
	spend := json.Number("12.5")
	up, err := p.op.UpdateTenant(ctx, tn.TenantID, client.UpdateTenantRequest{Tier: &tier, Quota: &client.QuotaOverrides{MaxSpendPerMonth: &spend}})
	if err != nil || up.Tier != "enterprise" || up.Quota.MaxSpendPerMonth != "12.5" {
		t.Fatalf("set tier and spend: %+v, %v", up, err)
	}
	if _, err := p.op.UpdateTenant(ctx, tn.TenantID, client.UpdateTenantRequest{Status: &suspended}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Usage(ctx); !client.IsCode(err, "forbidden") {
		t.Fatalf("a suspended tenant: %v", err)
	}
	if _, err := p.op.UpdateTenant(ctx, tn.TenantID, client.UpdateTenantRequest{Status: &active}); err != nil {
		t.Fatal(err)
	}
	a := newAgent(t, c, "support")
	br, err := p.op.UpdateTenant(ctx, tn.TenantID, client.UpdateTenantRequest{CircuitBreaker: &open})
	if err != nil || br.CircuitBreaker.State != "open" || br.CircuitBreaker.OpenUntil == nil {
		t.Fatalf("open the breaker: %+v, %v", br.CircuitBreaker, err)
	}
	// circuit_open is a 503 whose Retry-After is the cool-down left.
	noRetry := client.New(p.url, tn.APIKey, client.WithMaxRetries(0))
	_, err = noRetry.Execute(ctx, a.AgentID, client.ExecuteRequest{Message: "hi"})
	if e := client.AsError(err); e == nil || e.Code != "circuit_open" || e.Status != 503 || e.RetryAfter < time.Hour || e.Fields["open_until"] == nil {
		t.Fatalf("execute with the breaker open: %#v", err)
	}
	// The default client does not wait for a breaker opened by hand either.
	start := time.Now()
	if _, err := c.Execute(ctx, a.AgentID, client.ExecuteRequest{Message: "hi"}); !client.IsCode(err, "circuit_open") || time.Since(start) > 10*time.Second {
		t.Fatalf("execute with the breaker open, default retries: %v after %s", err, time.Since(start))
	}
	closed := "closed"
	if br, err := p.op.UpdateTenant(ctx, tn.TenantID, client.UpdateTenantRequest{CircuitBreaker: &closed}); err != nil || br.CircuitBreaker.State != "closed" {
		t.Fatalf("close the breaker: %v", err)
	}
	disabled := "disabled"
	if ag, err := p.op.SetAgentStatus(ctx, tn.TenantID, a.AgentID, disabled); err != nil || ag.Status != "disabled" {
		t.Fatalf("operator disables an agent: %+v, %v", ag, err)
	}

	m, err := p.op.PutModel(ctx, "openai", "gpt-4o-mini", client.PutModelRequest{InputPerMillion: "0.15", OutputPerMillion: "0.6",
		Tiers: []string{"enterprise"}, ContextWindow: 128000, MaxOutputTokens: 16384})
	if err != nil || m.Model != "openai/gpt-4o-mini" || m.InputPerMillion != "0.15" || len(m.Tiers) != 1 {
		t.Fatalf("put model: %+v, %v", m, err)
	}
	cat := collect(t, p.op.ListModels(ctx, &client.ListOptions{Limit: 3}))
	if len(cat) < 2 {
		t.Fatalf("catalogue: %+v", cat)
	}
	_, err = p.op.PutModel(ctx, "openai", "gpt-4o-mini", client.PutModelRequest{InputPerMillion: "0", OutputPerMillion: "1", ContextWindow: 1, MaxOutputTokens: 1})
	if e := client.AsError(err); e == nil || e.Code != "invalid_request" || e.Fields["field"] != "input_per_million" {
		t.Fatalf("a model without a price: %#v", err)
	}
	if _, err := p.op.CloseMonth(ctx, "2999-01"); !client.IsCode(err, "invalid_request") {
		t.Fatalf("close a future month: %v", err)
	}
	if inv := collect(t, p.op.ListInvoices(ctx, "2026-01", nil)); len(inv) != 0 {
		t.Fatalf("invoices: %+v", inv)
	}
	if _, err := client.NewOperator(p.url, "wrong").GetTenant(ctx, tn.TenantID); !client.IsCode(err, "forbidden") {
		t.Fatalf("a wrong admin token: %v", err)
	}
}
