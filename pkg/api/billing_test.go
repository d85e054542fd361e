package api_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestCountersEqualRecordsAfter500Concurrent runs 500 executions at once.
func TestCountersEqualRecordsAfter500Concurrent(t *testing.T) {
	h := newHarness(t, 10*time.Millisecond)
	a := h.newTenant("acme", "enterprise")
	h.setQuota(a, map[string]any{"max_concurrent_agents": 500})
	agents := []string{h.agentWith(a, nil, map[string]any{"max_tokens": 2000}), h.agentWith(a, nil, map[string]any{"max_tokens": 2000})}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var tokens int64
	for i := range 500 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := h.execute(a, agents[i%2], fmt.Sprintf("question %d", i))
			if r.status != 200 {
				t.Errorf("execute %d: %d %s", i, r.status, r.raw)
				return
			}
			mu.Lock()
			tokens += num(t, r.body["tokens_used"])
			mu.Unlock()
		}()
	}
	wg.Wait()
	u := h.assertBalanced(a)
	if got := num(t, u["tokens_this_month"]); got != tokens || num(t, u["executions_this_month"]) != 500 {
		t.Errorf("usage %v, want 500 executions and %d tokens", u, tokens)
	}
	// The per-day aggregate and the records endpoint agree too.
	d := h.must(200, "GET", "/v1/usage/daily?month=2026-11", a.key, nil)
	days := d.body["data"].([]any)
	if len(days) != 1 || num(t, days[0].(map[string]any)["tokens"]) != tokens || days[0].(map[string]any)["date"] != "2026-11-28" {
		t.Errorf("daily: %s", d.raw)
	}
	var recTokens int64
	n := 0
	path := "/v1/usage/records?limit=100&agent_id=" + agents[0]
	for {
		r := h.must(200, "GET", path, a.key, nil)
		for _, it := range r.body["data"].([]any) {
			rec := it.(map[string]any)
			if rec["agent_id"] != agents[0] {
				t.Fatalf("agent filter leaked %v", rec["agent_id"])
			}
			recTokens += num(t, rec["input_tokens"]) + num(t, rec["output_tokens"])
			n++
		}
		if !r.body["has_more"].(bool) {
			break
		}
		path = "/v1/usage/records?limit=100&agent_id=" + agents[0] + "&cursor=" + r.str("next_cursor")
	}
	if n != 250 {
		t.Errorf("records of the first agent: %d, want 250", n)
	}
	if recTokens == 0 || recTokens >= tokens {
		t.Errorf("first agent's tokens %d of %d", recTokens, tokens)
	}
}

// TestMonthlyCloseWritesOneInvoiceFromTheRecords closes a month twice and
// checks the invoice against the records behind it.
func TestMonthlyCloseWritesOneInvoiceFromTheRecords(t *testing.T) {
	h := newHarness(t, 0)
	a := h.newTenant("acme", "starter") // 100,000 tokens included, $0.01 per 1K over
	agents := []string{h.agentWith(a, nil, map[string]any{"max_tokens": 32768}), h.agentWith(a, nil, map[string]any{"max_tokens": 32768})}
	big := strings.Repeat("x", 60_000) // 15,000 tokens in
	for i := range 7 {
		h.must(200, "POST", "/v1/agents/"+agents[i%2]+"/execute", a.key, map[string]any{"message": big})
	}
	before := h.assertBalanced(a)
	used := num(t, before["tokens_this_month"])
	if used <= 100_000 {
		t.Fatalf("used %d tokens: the test needs overage", used)
	}

	if r := h.do("POST", "/v1/admin/billing/close", adminToken, map[string]any{"month": "2026-11"}); r.status != 400 {
		t.Errorf("closing a month that is not over: %d %s", r.status, r.raw)
	}
	h.clock.Set(time.Date(2026, 12, 1, 0, 10, 0, 0, time.UTC))
	r := h.must(200, "POST", "/v1/admin/billing/close", adminToken, map[string]any{"month": "2026-11"})
	if num(t, r.body["closed"]) != 1 {
		t.Fatalf("first close: %s", r.raw)
	}
	r = h.must(200, "POST", "/v1/admin/billing/close", adminToken, map[string]any{"month": "2026-11"})
	if num(t, r.body["closed"]) != 0 || num(t, r.body["already_closed"]) != 1 {
		t.Errorf("second close: %s", r.raw)
	}

	inv := h.must(200, "GET", "/v1/billing/invoices/2026-11", a.key, nil)
	overage := used - 100_000
	wantFee := (overage*10_000 + 500) / 1000 // µ$, exact
	wantFee = (wantFee + 5_000) / 10_000 * 10_000
	if num(t, inv.body["tokens_used"]) != used || num(t, inv.body["overage_tokens"]) != overage ||
		micros(t, inv.body["overage_fee"]) != wantFee || micros(t, inv.body["total"]) != 29_000_000+wantFee {
		t.Errorf("invoice %s; want %d tokens, overage %d, fee %d µ$", inv.raw, used, overage, wantFee)
	}
	// The per-agent lines add up to the records.
	var agentTokens, agentCost int64
	for _, it := range inv.body["agents"].([]any) {
		ag := it.(map[string]any)
		agentTokens += num(t, ag["tokens"])
		agentCost += micros(t, ag["model_cost"])
	}
	if agentTokens != used || agentCost != micros(t, before["spend_this_month"]) || micros(t, inv.body["model_cost"]) != agentCost {
		t.Errorf("agent lines: %d tokens %d µ$, want %d tokens and the month's spend", agentTokens, agentCost, used)
	}
	if micros(t, inv.body["margin"]) != micros(t, inv.body["total"])-agentCost {
		t.Errorf("margin %v", inv.body["margin"])
	}
	// S3 holds the same document.
	doc, err := h.env.API.Transcripts().Tenant(a.id).Invoice(context.Background(), "2026-11")
	if err != nil || string(doc) != inv.raw {
		t.Errorf("S3 invoice: %v\n%s\nvs\n%s", err, doc, inv.raw)
	}
	list := h.must(200, "GET", "/v1/billing/invoices", a.key, nil)
	if got := len(list.body["data"].([]any)); got != 1 {
		t.Errorf("%d invoices listed", got)
	}
	op := h.must(200, "GET", "/v1/admin/invoices?month=2026-11", adminToken, nil)
	rows := op.body["data"].([]any)
	if len(rows) != 1 || rows[0].(map[string]any)["tenant_id"] != a.id {
		t.Errorf("operator invoices: %s", op.raw)
	}
	h.must(404, "GET", "/v1/billing/invoices/2026-10", a.key, nil)
	// December starts from zero; November's invoice does not move.
	h.must(200, "POST", "/v1/agents/"+agents[0]+"/execute", a.key, map[string]any{"message": "december"})
	if again := h.must(200, "GET", "/v1/billing/invoices/2026-11", a.key, nil); again.raw != inv.raw {
		t.Error("a closed invoice changed")
	}
}

// TestTierChangeBillsTheHighestTierHeld: an upgrade mid-month bills the
// month at the higher tier; a later downgrade does not lower it.
func TestTierChangeBillsTheHighestTierHeld(t *testing.T) {
	h := newHarness(t, 0)
	a := h.newTenant("acme", "starter")
	agent := h.newAgent(a)
	h.must(200, "POST", "/v1/agents/"+agent+"/execute", a.key, map[string]any{"message": "hi"})
	h.must(200, "PATCH", "/v1/admin/tenants/"+a.id, adminToken, map[string]any{"tier": "professional"})
	h.must(200, "PATCH", "/v1/admin/tenants/"+a.id, adminToken, map[string]any{"tier": "starter"})
	cur := h.must(200, "GET", "/v1/billing/current", a.key, nil)
	if cur.str("tier") != "professional" || micros(t, cur.body["base_fee"]) != 99_000_000 {
		t.Errorf("estimate after an upgrade and a downgrade: %s", cur.raw)
	}
	h.clock.Set(time.Date(2026, 12, 1, 0, 10, 0, 0, time.UTC))
	h.must(200, "POST", "/v1/admin/billing/close", adminToken, map[string]any{"month": "2026-11"})
	inv := h.must(200, "GET", "/v1/billing/invoices/2026-11", a.key, nil)
	held, _ := inv.body["tiers_held"].([]any)
	if inv.str("tier") != "professional" || micros(t, inv.body["total"]) != 99_000_000 || len(held) != 2 {
		t.Errorf("invoice: %s", inv.raw)
	}
	// December, held only at starter, is billed at starter.
	if cur := h.must(200, "GET", "/v1/billing/current", a.key, nil); cur.str("tier") != "starter" {
		t.Errorf("December estimate: %s", cur.raw)
	}
}
