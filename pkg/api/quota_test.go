package api_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/truora/minidyn/server"

	"github.com/bulkhead-dev/bulkhead/pkg/bulkhead"
	"github.com/bulkhead-dev/bulkhead/pkg/dynamo"
)

func (h *harness) setQuota(t tenant, q map[string]any) {
	h.t.Helper()
	h.must(200, "PATCH", "/v1/admin/tenants/"+t.id, adminToken, map[string]any{"quota": q})
}

func (h *harness) agentWith(t tenant, tools []string, limits map[string]any) string {
	h.t.Helper()
	body := map[string]any{"name": "a", "system_prompt": "Be brief.", "tools": tools}
	if limits != nil {
		body["limits"] = limits
	}
	return h.must(201, "POST", "/v1/agents", t.key, body).str("agent_id")
}

func (h *harness) execute(t tenant, agent, msg string) response {
	h.t.Helper()
	return h.do("POST", "/v1/agents/"+agent+"/execute", t.key, map[string]any{"message": msg})
}

// sumRecords adds up a tenant's usage records of the clock's month.
func (h *harness) sumRecords(t tenant) (n int, tokens int64, cost bulkhead.Micros) {
	h.t.Helper()
	cursor := ""
	for {
		page, err := h.env.API.Store().Tenant(t.id).ListExecutions(context.Background(), cursor, 100)
		if err != nil {
			h.t.Fatal(err)
		}
		for _, e := range page.Items {
			if bulkhead.MonthKey(e.StartedAt) != bulkhead.MonthKey(h.clock.Now()) {
				continue
			}
			n++
			tokens += e.InputTokens + e.OutputTokens
			cost += e.Cost
		}
		if cursor = page.NextCursor; cursor == "" {
			return
		}
	}
}

// assertBalanced checks the invariants that must hold whenever nothing runs:
// counters equal the records, committed equals used, no slot is held.
func (h *harness) assertBalanced(t tenant) map[string]any {
	h.t.Helper()
	u := h.usage(t)
	n, tokens, cost := h.sumRecords(t)
	if got := num(h.t, u["tokens_this_month"]); got != tokens {
		h.t.Errorf("tokens_this_month = %d, records sum to %d", got, tokens)
	}
	if got := micros(h.t, u["spend_this_month"]); got != int64(cost) {
		h.t.Errorf("spend_this_month = %d µ$, records sum to %d µ$", got, cost)
	}
	if got := num(h.t, u["executions_this_month"]); got != int64(n) {
		h.t.Errorf("executions_this_month = %d, records = %d", got, n)
	}
	if c, used := num(h.t, u["committed_tokens"]), num(h.t, u["tokens_this_month"]); c != used {
		h.t.Errorf("committed_tokens = %d, used = %d: a reservation leaked", c, used)
	}
	if c, used := micros(h.t, u["committed_spend"]), micros(h.t, u["spend_this_month"]); c != used {
		h.t.Errorf("committed_spend = %d µ$, used = %d µ$: a reservation leaked", c, used)
	}
	if got := num(h.t, u["concurrent_agents"]); got != 0 {
		h.t.Errorf("concurrent_agents = %d with nothing running: a slot leaked", got)
	}
	return u
}

// TestQuotaRefusalShape checks the 429 body and Retry-After for each quota.
func TestQuotaRefusalShape(t *testing.T) {
	h := newHarness(t, 0)
	h.clock.Set(time.Date(2026, 11, 28, 10, 59, 30, 0, time.UTC))
	a := h.newTenant("acme", "starter")
	agent := h.agentWith(a, nil, map[string]any{"max_tokens": 1000})

	h.setQuota(a, map[string]any{"max_requests_per_hour": 1})
	h.must(200, "POST", "/v1/agents/"+agent+"/execute", a.key, map[string]any{"message": "one"})
	r := h.execute(a, agent, "two")
	e := r.body["error"].(map[string]any)
	if r.status != 429 || e["code"] != "rate_limited" || e["quota_type"] != "requests" || num(t, e["limit"]) != 1 || num(t, e["used"]) != 1 ||
		e["resets_at"] != "2026-11-28T11:00:00Z" || r.header.Get("Retry-After") != "30" || !strings.Contains(e["message"].(string), "(1 requests)") {
		t.Errorf("hourly refusal: %d Retry-After %q %s", r.status, r.header.Get("Retry-After"), r.raw)
	}

	// Room for exactly one more reservation of 1000 tokens.
	limit := num(t, h.usage(a)["tokens_this_month"]) + 1010
	h.setQuota(a, map[string]any{"max_requests_per_hour": 100, "max_tokens_per_month": limit})
	r = h.execute(a, agent, "three")
	if r.status != 200 {
		t.Fatalf("after raising the hourly quota: %d %s", r.status, r.raw)
	}
	r = h.execute(a, agent, "four")
	e = r.body["error"].(map[string]any)
	if r.status != 429 || e["code"] != "quota_exceeded" || e["quota_type"] != "tokens" || num(t, e["limit"]) != limit ||
		e["message"] != fmt.Sprintf("Monthly token quota exceeded (%d tokens)", limit) || e["resets_at"] != "2026-12-01T00:00:00Z" ||
		num(t, e["used"]) > limit {
		t.Errorf("token refusal: %d %s", r.status, r.raw)
	}
	if ra, _ := strconv.Atoi(r.header.Get("Retry-After")); ra < 2*86400 {
		t.Errorf("token refusal Retry-After = %q, want the seconds to the next month", r.header.Get("Retry-After"))
	}

	h.setQuota(a, map[string]any{"max_tokens_per_month": 1_000_000, "max_spend_per_month": 0.001})
	r = h.execute(a, agent, "five")
	if r.status != 429 {
		t.Fatalf("spend refusal: %d %s (usage %v)", r.status, r.raw, h.must(200, "GET", "/v1/usage", a.key, nil).raw)
	}
	e = r.body["error"].(map[string]any)
	if r.status != 429 || e["code"] != "quota_exceeded" || e["quota_type"] != "spend" || micros(t, e["limit"]) != 1000 {
		t.Errorf("spend refusal: %d %s", r.status, r.raw)
	}
	h.assertBalanced(a)
}

// TestQuotaChangesApplyAtOnce raises and lowers limits mid-month: the next
// request sees the new limit, and raising never produces a 429.
func TestQuotaChangesApplyAtOnce(t *testing.T) {
	h := newHarness(t, 0)
	a := h.newTenant("acme", "starter")
	agent := h.agentWith(a, nil, map[string]any{"max_tokens": 1000})
	h.setQuota(a, map[string]any{"max_requests_per_hour": 3})
	for i := range 3 {
		h.must(200, "POST", "/v1/agents/"+agent+"/execute", a.key, map[string]any{"message": fmt.Sprint(i)})
	}
	if r := h.execute(a, agent, "over"); r.status != 429 {
		t.Fatalf("at the limit: %d", r.status)
	}
	h.setQuota(a, map[string]any{"max_requests_per_hour": 4})
	h.must(200, "POST", "/v1/agents/"+agent+"/execute", a.key, map[string]any{"message": "raised"})
	h.must(200, "PATCH", "/v1/admin/tenants/"+a.id, adminToken, map[string]any{"tier": "professional"})
	if r := h.execute(a, agent, "still 4 by override"); r.status != 429 {
		t.Errorf("the override survives a tier change: %d", r.status)
	}
	h.setQuota(a, map[string]any{"max_requests_per_hour": 10_000})
	h.must(200, "POST", "/v1/agents/"+agent+"/execute", a.key, map[string]any{"message": "ok"})
	h.assertBalanced(a)
}

// TestWindowsRollOverExactly moves the clock across the hour and the month
// with the quotas exhausted.
func TestWindowsRollOverExactly(t *testing.T) {
	h := newHarness(t, 0)
	a := h.newTenant("acme", "starter")
	agent := h.agentWith(a, nil, map[string]any{"max_tokens": 1000})
	h.setQuota(a, map[string]any{"max_requests_per_hour": 1})

	h.clock.Set(time.Date(2026, 11, 30, 22, 59, 59, 999_000_000, time.UTC))
	h.must(200, "POST", "/v1/agents/"+agent+"/execute", a.key, map[string]any{"message": "a"})
	if r := h.execute(a, agent, "b"); r.status != 429 || r.header.Get("Retry-After") != "1" {
		t.Errorf("last millisecond of the hour: %d Retry-After %q", r.status, r.header.Get("Retry-After"))
	}
	h.clock.Set(time.Date(2026, 11, 30, 23, 0, 0, 0, time.UTC))
	h.must(200, "POST", "/v1/agents/"+agent+"/execute", a.key, map[string]any{"message": "c"})

	// The month: exhaust tokens on the last hour of November.
	used := num(t, h.usage(a)["tokens_this_month"])
	h.setQuota(a, map[string]any{"max_requests_per_hour": 100, "max_tokens_per_month": used + 999})
	if r := h.execute(a, agent, "d"); r.status != 429 || r.errCode() != "quota_exceeded" {
		t.Fatalf("November exhausted: %d %s", r.status, r.raw)
	}
	h.clock.Set(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC))
	h.must(200, "POST", "/v1/agents/"+agent+"/execute", a.key, map[string]any{"message": "e"})
	u := h.assertBalanced(a)
	if got := num(t, u["requests_this_hour"]); got != 1 {
		t.Errorf("December's first hour: %d requests", got)
	}
	h.clock.Set(time.Date(2026, 11, 30, 23, 30, 0, 0, time.UTC))
	if got := num(t, h.usage(a)["tokens_this_month"]); got != used {
		t.Errorf("November kept %d tokens, want %d", got, used)
	}
}

// TestCrashedExecutionsLeaseComesBack fills the tenant's slots with
// executions that never settle (as a crashed process leaves them); once
// their leases expire they are reclaimed by the next admission.
func TestCrashedExecutionsLeaseComesBack(t *testing.T) {
	h := newHarness(t, 0)
	a := h.newTenant("acme", "starter") // 5 concurrent executions
	agent := h.agentWith(a, nil, map[string]any{"max_tokens": 1000})
	ts := h.env.API.Store().Tenant(a.id)
	tn, err := ts.Profile(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		err := ts.Admit(context.Background(), dynamo.Admission{ExecutionID: bulkhead.NewID("exec"), AgentID: agent, Now: h.clock.Now(),
			Lease: 90 * time.Second, Quota: tn.Quota(), Reserve: dynamo.Reservation{Tokens: 1000, Spend: 15_000, Bytes: 10_000}})
		if err != nil {
			t.Fatal(err)
		}
	}
	r := h.execute(a, agent, "blocked")
	if r.status != 429 || r.errCode() != "concurrency_limited" || r.header.Get("Retry-After") == "" {
		t.Fatalf("with every slot held: %d %s", r.status, r.raw)
	}
	if got := num(t, h.usage(a)["committed_tokens"]); got != 5000 {
		t.Errorf("committed_tokens = %d while 5 crashed executions hold 1000 each", got)
	}
	h.clock.Set(h.clock.Now().Add(91 * time.Second))
	h.must(200, "POST", "/v1/agents/"+agent+"/execute", a.key, map[string]any{"message": "after the leases expired"})
	h.assertBalanced(a)
}

// TestFaultsLeaveNothingUnmeteredOrLeaked runs executions while DynamoDB
// fails on and off, then checks that nothing leaked and the counters equal
// the records.
func TestFaultsLeaveNothingUnmeteredOrLeaked(t *testing.T) {
	h := newHarness(t, 5*time.Millisecond)
	a := h.newTenant("acme", "enterprise")
	agent := h.agentWith(a, nil, map[string]any{"max_tokens": 2000})

	stop := make(chan struct{})
	var flips atomic.Int64
	go func() {
		ticker := time.NewTicker(3 * time.Millisecond)
		defer ticker.Stop()
		on := false
		for {
			select {
			case <-stop:
				h.env.Dynamo.EmulateFailure(server.FailureConditionNone)
				return
			case <-ticker.C:
				on = !on
				cond := server.FailureConditionNone
				if on {
					cond = server.FailureConditionInternalServerError
				}
				h.env.Dynamo.EmulateFailure(cond)
				flips.Add(1)
			}
		}
	}()
	var wg sync.WaitGroup
	var ok, unavailable, other atomic.Int64
	for i := range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := h.execute(a, agent, fmt.Sprintf("m%d", i))
			switch {
			case r.status == 200:
				ok.Add(1)
			case r.status == 503:
				unavailable.Add(1)
			default:
				other.Add(1)
				t.Errorf("status %d %s", r.status, r.raw)
			}
		}()
	}
	wg.Wait()
	close(stop)
	time.Sleep(10 * time.Millisecond)
	h.env.Dynamo.EmulateFailure(server.FailureConditionNone)
	t.Logf("%d ok, %d refused with 503, %d failure flips, %d model calls", ok.Load(), unavailable.Load(), flips.Load(), h.model.calls.Load())
	if ok.Load() == 0 || unavailable.Load() == 0 {
		t.Fatalf("the fault injection did not bite (ok %d, 503 %d): the test proves nothing", ok.Load(), unavailable.Load())
	}
	// Executions that were admitted but could not settle hold leases until
	// they expire; move past them and let an admission reclaim them.
	h.clock.Set(h.clock.Now().Add(10 * time.Minute))
	if _, err := h.env.API.ReclaimTenantLeases(context.Background(), a.id); err != nil {
		t.Fatal(err)
	}
	h.clock.Set(h.clock.Now().Add(-10 * time.Minute))
	u := h.assertBalanced(a)
	// Every model call belongs to a settled execution: nothing ran unmetered.
	if calls, execs := h.model.calls.Load(), num(t, u["executions_this_month"]); calls != execs {
		t.Errorf("model calls = %d, settled executions = %d: some ran unmetered", calls, execs)
	}
}
