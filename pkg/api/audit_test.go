package api_test

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/truora/minidyn/server"

	"github.com/bulkhead-dev/bulkhead/pkg/api"
)

// auditPages follows the cursors of an audit listing (path has its query
// already, or none) and returns every entry.
func (h *harness) auditPages(path, key string, limit int) []map[string]any {
	h.t.Helper()
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	var all []map[string]any
	cursor := ""
	for range 1000 {
		p := fmt.Sprintf("%s%slimit=%d", path, sep, limit)
		if cursor != "" {
			p += "&cursor=" + url.QueryEscape(cursor)
		}
		r := h.must(200, "GET", p, key, nil)
		data, _ := r.body["data"].([]any)
		for _, d := range data {
			all = append(all, d.(map[string]any))
		}
		if r.body["has_more"] != true {
			return all
		}
		cursor = r.str("next_cursor")
	}
	h.t.Fatalf("%s: too many pages", path)
	return nil
}

// tenantAudit is every entry of the tenant's audit log, as the operator reads it.
func (h *harness) tenantAudit(tid string) []map[string]any {
	h.t.Helper()
	return h.auditPages("/v1/admin/audit?tenant_id="+tid, adminToken, 100)
}

// newEntries are the entries of after whose ids are not in before.
func newEntries(before, after []map[string]any) []map[string]any {
	seen := map[string]bool{}
	for _, e := range before {
		seen[e["audit_id"].(string)] = true
	}
	var out []map[string]any
	for _, e := range after {
		if !seen[e["audit_id"].(string)] {
			out = append(out, e)
		}
	}
	return out
}

func actorOf(e map[string]any) (string, string) {
	a, _ := e["actor"].(map[string]any)
	t, _ := a["type"].(string)
	id, _ := a["id"].(string)
	return t, id
}

// auditFixture is a tenant with one of everything a mutating route acts on.
type auditFixture struct {
	a                             tenant
	keyID, spareKey               string
	agent, doomedAgent, killAgent string
	tool, doomedTool              string
	ticket, conv                  string
}

func newAuditFixture(h *harness) *auditFixture {
	h.t.Helper()
	f := &auditFixture{a: h.newTenant("acme", "professional")}
	f.agent = h.newAgent(f.a)
	f.doomedAgent = h.newAgent(f.a)
	f.killAgent = h.newAgent(f.a)
	f.tool = h.must(201, "POST", "/v1/tools", f.a.key, toolBody("lookup")).str("tool_id")
	f.doomedTool = h.must(201, "POST", "/v1/tools", f.a.key, toolBody("doomed")).str("tool_id")
	f.spareKey = h.must(201, "POST", "/v1/keys", f.a.key, map[string]any{"name": "spare"}).str("key_id")
	keys := h.must(200, "GET", "/v1/keys", f.a.key, nil).body["data"].([]any)
	for _, k := range keys {
		if k := k.(map[string]any); k["key_id"] != f.spareKey {
			f.keyID = k["key_id"].(string)
		}
	}
	f.ticket = h.newTicket(f.a, "call_1")
	f.conv = h.execute(f.a, f.agent, "hello").str("conversation_id")
	if r := h.putDoc(f.a, "faq", "Refunds take five days.", "text/plain"); r.status != 200 {
		h.t.Fatalf("put doc: %d %s", r.status, r.raw)
	}
	return f
}

// auditCase is one mutating route: the request that exercises it and the
// entry it must leave.
type auditCase struct {
	method, path string
	operator     bool
	body         any
	status       int
	action       string
	target       string
	// platform: the entry is the platform's own (no tenant).
	platform bool
	// before runs first (moves the clock, say); after undoes it.
	before, after func()
}

// exemptFromAudit are the mutating routes that write no entry, and why.
var exemptFromAudit = map[string]string{
	// Executions are not audited: each leaves a usage record, their trail.
	"POST /v1/agents/{agent_id}/execute": "usage records",
}

func (f *auditFixture) cases(h *harness) map[string]auditCase {
	month := func() { h.clock.Set(time.Date(2026, 12, 1, 1, 0, 0, 0, time.UTC)) }
	back := func() { h.clock.Set(time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)) }
	return map[string]auditCase{
		"POST /v1/agents": {"POST", "/v1/agents", false, map[string]any{"name": "b", "system_prompt": "Hi."}, 201,
			"agent.created", "", false, nil, nil},
		"PATCH /v1/agents/{agent_id}": {"PATCH", "/v1/agents/" + f.agent, false, map[string]any{"name": "renamed"}, 200,
			"agent.updated", f.agent, false, nil, nil},
		"DELETE /v1/agents/{agent_id}": {"DELETE", "/v1/agents/" + f.doomedAgent, false, nil, 200,
			"agent.deleted", f.doomedAgent, false, nil, nil},
		"DELETE /v1/conversations/{conversation_id}": {"DELETE", "/v1/conversations/" + f.conv, false, nil, 200,
			"conversation.deleted", f.conv, false, nil, nil},
		"POST /v1/tools": {"POST", "/v1/tools", false, toolBody("another"), 201, "tool.created", "", false, nil, nil},
		"PATCH /v1/tools/{tool_id}": {"PATCH", "/v1/tools/" + f.tool, false, map[string]any{"description": "Looks up."}, 200,
			"tool.updated", f.tool, false, nil, nil},
		"DELETE /v1/tools/{tool_id}": {"DELETE", "/v1/tools/" + f.doomedTool, false, nil, 200,
			"tool.deleted", f.doomedTool, false, nil, nil},
		"POST /v1/tools/{tool_id}/rotate-secret": {"POST", "/v1/tools/" + f.tool + "/rotate-secret", false, nil, 200,
			"tool.secret_rotated", f.tool, false, nil, nil},
		"PATCH /v1/tickets/{ticket_id}": {"PATCH", "/v1/tickets/" + f.ticket, false, map[string]any{"status": "closed"}, 200,
			"ticket.updated", f.ticket, false, nil, nil},
		"PUT /v1/kb/documents/{doc_id}": {"PUT", "/v1/kb/documents/returns", false, "Returns within 30 days.", 200,
			"kb.document_written", "returns", false, nil, nil},
		"DELETE /v1/kb/documents/{doc_id}": {"DELETE", "/v1/kb/documents/faq", false, nil, 200,
			"kb.document_deleted", "faq", false, nil, nil},
		"POST /v1/keys":            {"POST", "/v1/keys", false, map[string]any{"name": "ci"}, 201, "key.created", "", false, nil, nil},
		"DELETE /v1/keys/{key_id}": {"DELETE", "/v1/keys/" + f.spareKey, false, nil, 200, "key.revoked", f.spareKey, false, nil, nil},
		"POST /v1/admin/tenants": {"POST", "/v1/admin/tenants", true, map[string]any{"name": "newco"}, 201,
			"tenant.created", "", false, nil, nil},
		"PATCH /v1/admin/tenants/{tenant_id}": {"PATCH", "/v1/admin/tenants/" + f.a.id, true, map[string]any{"tier": "enterprise"}, 200,
			"tenant.tier_changed", f.a.id, false, nil, nil},
		"PATCH /v1/admin/tenants/{tenant_id}/agents/{agent_id}": {"PATCH", "/v1/admin/tenants/" + f.a.id + "/agents/" + f.killAgent, true,
			map[string]any{"status": "disabled"}, 200, "agent.disabled", f.killAgent, false, nil, nil},
		"POST /v1/admin/billing/close": {"POST", "/v1/admin/billing/close", true, map[string]any{"month": "2026-11"}, 200,
			"month.closed", "2026-11", false, month, back},
		"PUT /v1/admin/models/{provider}/{model_id}": {"PUT", "/v1/admin/models/openai/gpt-4o-mini", true, modelBody(0.2, 0.8), 200,
			"model.priced", "openai/gpt-4o-mini", true, nil, nil},
	}
}

// TestEveryMutatingRouteWritesOneAuditEntry: each route that changes state
// leaves exactly one new entry, with its action, target, actor, request id
// and source address; a route added without a case here fails the test.
func TestEveryMutatingRouteWritesOneAuditEntry(t *testing.T) {
	h := newHarness(t, 0)
	f := newAuditFixture(h)
	cases := f.cases(h)
	for _, rt := range api.Routes() {
		k := rt.Method + " " + rt.Resource
		_, covered := cases[k]
		if _, exempt := exemptFromAudit[k]; rt.Method != "GET" && !covered && !exempt {
			t.Errorf("%s changes state but has no audit case: add one", k)
		}
	}
	keys := slices.Sorted(func(yield func(string) bool) {
		for k := range cases {
			if !yield(k) {
				return
			}
		}
	})
	for _, k := range keys {
		c := cases[k]
		t.Run(k, func(t *testing.T) {
			if c.before != nil {
				c.before()
			}
			read := func() []map[string]any {
				if c.platform {
					return h.auditPages("/v1/admin/audit", adminToken, 100)
				}
				return h.tenantAudit(f.a.id)
			}
			before := read()
			key := f.a.key
			if c.operator {
				key = adminToken
			}
			var r response
			if s, ok := c.body.(string); ok {
				r = h.doWithHeader(c.method, c.path, key, s, "Content-Type", "text/plain")
			} else {
				r = h.do(c.method, c.path, key, c.body)
			}
			if r.status != c.status {
				t.Fatalf("%s %s: %d %s, want %d", c.method, c.path, r.status, r.raw, c.status)
			}
			var got []map[string]any
			if k == "POST /v1/admin/tenants" {
				got = h.tenantAudit(r.str("tenant_id"))
				c.target = r.str("tenant_id")
			} else {
				got = newEntries(before, read())
			}
			if c.after != nil {
				c.after()
			}
			if len(got) != 1 {
				t.Fatalf("%d new entries, want 1: %v", len(got), got)
			}
			e := got[0]
			if c.target == "" {
				for _, idField := range []string{"agent_id", "tool_id", "key_id"} {
					if id := r.str(idField); id != "" {
						c.target = id
					}
				}
			}
			wantActor, wantID := "key", f.keyID
			if c.operator {
				wantActor, wantID = "operator", "local-admin"
			}
			if at, aid := actorOf(e); e["action"] != c.action || e["target"] != c.target || at != wantActor || aid != wantID {
				t.Errorf("entry %v: want action %s target %s actor %s/%s", e, c.action, c.target, wantActor, wantID)
			}
			if e["request_id"] != r.header.Get("X-Request-Id") || e["request_id"] == "" || e["source_ip"] != "127.0.0.1" {
				t.Errorf("entry request_id %v source_ip %v, want %s from 127.0.0.1", e["request_id"], e["source_ip"], r.header.Get("X-Request-Id"))
			}
			wantTenant := any(f.a.id)
			switch {
			case c.platform:
				wantTenant = nil
			case k == "POST /v1/admin/tenants":
				wantTenant = c.target
			}
			if e["tenant_id"] != wantTenant {
				t.Errorf("entry tenant_id %v, want %v", e["tenant_id"], wantTenant)
			}
			if _, err := time.Parse(time.RFC3339, e["time"].(string)); err != nil {
				t.Errorf("entry time %v: %v", e["time"], err)
			}
		})
	}
	// What the tenant itself reads is the same log, secrets never in it.
	own := h.auditPages("/v1/audit", f.a.key, 7)
	if all := h.tenantAudit(f.a.id); len(own) != len(all) {
		t.Errorf("the tenant reads %d entries, the operator %d", len(own), len(all))
	}
	for _, e := range own {
		raw := fmt.Sprint(e)
		if strings.Contains(raw, "bk_live_") || strings.Contains(raw, "whsec") {
			t.Errorf("an entry holds key or secret material: %s", raw)
		}
	}
}

// TestAuditChangedFields: an entry holds the changed fields only, before
// and after, from the public view.
func TestAuditChangedFields(t *testing.T) {
	h := newHarness(t, 0)
	a := h.newTenant("acme", "starter")
	agent := h.newAgent(a)
	h.must(200, "PATCH", "/v1/agents/"+agent, a.key, map[string]any{"name": "renamed", "status": "disabled"})
	h.must(200, "PATCH", "/v1/admin/tenants/"+a.id, adminToken, map[string]any{"status": "suspended"})
	all := h.tenantAudit(a.id)
	byAction := map[string]map[string]any{}
	for _, e := range all {
		byAction[e["action"].(string)] = e
	}
	ch, _ := byAction["agent.disabled"]["changes"].(map[string]any)
	name, _ := ch["name"].(map[string]any)
	if len(ch) != 2 || name["before"] != "a" || name["after"] != "renamed" {
		t.Errorf("agent.disabled changes = %v, want name and status only", ch)
	}
	st, _ := byAction["tenant.suspended"]["changes"].(map[string]any)["status"].(map[string]any)
	if st["before"] != "active" || st["after"] != "suspended" {
		t.Errorf("tenant.suspended changes = %v", byAction["tenant.suspended"])
	}
	if _, ok := byAction["key.created"]; ok {
		t.Errorf("the first key is part of tenant.created, not an entry of its own")
	}
}

// TestFailedChangesWriteNoAuditEntry: a refused request (validation, a
// conflict) and a change the store could not make write no entry.
func TestFailedChangesWriteNoAuditEntry(t *testing.T) {
	h := newHarness(t, 0)
	a := h.newTenant("acme", "starter")
	agent := h.newAgent(a)
	h.must(201, "POST", "/v1/tools", a.key, toolBody("lookup"))
	before := h.tenantAudit(a.id)

	h.must(400, "POST", "/v1/agents", a.key, map[string]any{"name": ""})
	h.must(409, "POST", "/v1/tools", a.key, toolBody("lookup"))
	h.must(404, "DELETE", "/v1/agents/agt_aaaaaaaaaaaaaaaa", a.key, nil)
	h.env.Dynamo.EmulateFailure(server.FailureConditionInternalServerError)
	r := h.do("PATCH", "/v1/agents/"+agent, a.key, map[string]any{"name": "x"})
	h.env.Dynamo.EmulateFailure(server.FailureConditionNone)
	if r.status < 500 {
		t.Fatalf("patch with the store failing: %d %s", r.status, r.raw)
	}
	if got := newEntries(before, h.tenantAudit(a.id)); len(got) != 0 {
		t.Errorf("failed changes wrote entries: %v", got)
	}
	if g := h.must(200, "GET", "/v1/agents/"+agent, a.key, nil); g.str("name") != "a" {
		t.Errorf("the failed patch changed the agent: %s", g.raw)
	}
}

// TestIdempotentReplayWritesNoAuditEntry: a replay changes nothing, so it
// records nothing.
func TestIdempotentReplayWritesNoAuditEntry(t *testing.T) {
	h := newHarness(t, 0)
	a := h.newTenant("acme", "starter")
	body := map[string]any{"name": "b", "system_prompt": "Hi."}
	h.doWithHeader("POST", "/v1/agents", a.key, body, api.IdempotencyHeader, "once")
	before := h.tenantAudit(a.id)
	if r := h.doWithHeader("POST", "/v1/agents", a.key, body, api.IdempotencyHeader, "once"); r.status != 201 {
		t.Fatalf("replay: %d %s", r.status, r.raw)
	}
	if got := newEntries(before, h.tenantAudit(a.id)); len(got) != 0 {
		t.Errorf("the replay wrote entries: %v", got)
	}
}

// TestTenantsCannotReadEachOthersAudit: GET /v1/audit reads the caller's
// partition only; the operator reads any tenant's, or all of them.
func TestTenantsCannotReadEachOthersAudit(t *testing.T) {
	h := newHarness(t, 0)
	a := h.newTenant("acme", "starter")
	b := h.newTenant("bravo", "starter")
	agentB := h.newAgent(b)
	h.newAgent(a)
	for _, e := range h.auditPages("/v1/audit", a.key, 100) {
		if e["tenant_id"] != a.id || e["target"] == agentB || e["target"] == b.id {
			t.Errorf("tenant a reads an entry of b's: %v", e)
		}
	}
	// Query parameters cannot widen it.
	for _, e := range h.auditPages("/v1/audit?tenant_id="+b.id, a.key, 100) {
		if e["tenant_id"] != a.id {
			t.Errorf("tenant_id in the query reached b's entries: %v", e)
		}
	}
	onlyB := h.tenantAudit(b.id)
	if len(onlyB) != 2 {
		t.Errorf("b's log has %d entries, want tenant.created and agent.created: %v", len(onlyB), onlyB)
	}
	for _, e := range onlyB {
		if e["tenant_id"] != b.id {
			t.Errorf("operator's filter on b returned %v", e)
		}
	}
	all := h.auditPages("/v1/admin/audit", adminToken, 3)
	tenants := map[any]int{}
	for _, e := range all {
		tenants[e["tenant_id"]]++
	}
	if tenants[a.id] != 2 || tenants[b.id] != 2 {
		t.Errorf("the operator's listing across tenants: %v", tenants)
	}
	h.must(400, "GET", "/v1/admin/audit?tenant_id=nope", adminToken, nil)
	h.must(403, "GET", "/v1/admin/audit", a.key, nil)
}

// TestQuotaRefusalFloodIsOneEntryPerMinute: many refused executions in one
// minute leave one quota.refused entry, by the platform; the next minute's
// refusals one more.
func TestQuotaRefusalFloodIsOneEntryPerMinute(t *testing.T) {
	h := newHarness(t, 0)
	a := h.newTenant("acme", "professional")
	agent := h.newAgent(a)
	h.setQuota(a, map[string]any{"max_requests_per_hour": 1})
	h.must(200, "POST", "/v1/agents/"+agent+"/execute", a.key, map[string]any{"message": "ok"})
	refusals := func() []map[string]any {
		return h.auditPages("/v1/audit?action=quota.refused", a.key, 100)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	statuses := map[int]int{}
	for range 30 {
		wg.Go(func() {
			r := h.do("POST", "/v1/agents/"+agent+"/execute", a.key, map[string]any{"message": "more"})
			mu.Lock()
			statuses[r.status]++
			mu.Unlock()
		})
	}
	wg.Wait()
	if statuses[429] != 30 {
		t.Fatalf("statuses %v, want 30 refusals", statuses)
	}
	got := refusals()
	if len(got) != 1 {
		t.Fatalf("%d quota.refused entries after a flood in one minute, want 1: %v", len(got), got)
	}
	if at, id := actorOf(got[0]); at != "platform" || id != "admission" || got[0]["target"] != "requests" {
		t.Errorf("refusal entry %v", got[0])
	}
	h.clock.Set(h.clock.Now().Add(time.Minute))
	h.must(429, "POST", "/v1/agents/"+agent+"/execute", a.key, map[string]any{"message": "later"})
	h.must(429, "POST", "/v1/agents/"+agent+"/execute", a.key, map[string]any{"message": "later"})
	if got := refusals(); len(got) != 2 {
		t.Errorf("%d entries after the next minute's refusals, want 2", len(got))
	}
}

// TestBreakerEntriesNameWhoActed: the platform trips the breaker (failed
// executions), the operator resets it.
func TestBreakerEntriesNameWhoActed(t *testing.T) {
	h := newHarness(t, 0)
	a := h.newTenant("acme", "professional")
	agent := h.agentWith(a, nil, map[string]any{"max_tokens": 1000})
	for i := range 21 {
		msg := fmt.Sprintf("ok %d", i)
		if i%2 == 0 {
			msg = "[[fail]]"
		}
		h.execute(a, agent, msg)
	}
	if r := h.execute(a, agent, "after"); r.errCode() != "circuit_open" {
		t.Fatalf("the breaker did not open: %d %s", r.status, r.raw)
	}
	h.must(200, "PATCH", "/v1/admin/tenants/"+a.id, adminToken, map[string]any{"circuit_breaker": "closed"})
	var tripped, reset []map[string]any
	for _, e := range h.tenantAudit(a.id) {
		switch e["action"] {
		case "breaker.tripped":
			tripped = append(tripped, e)
		case "breaker.reset":
			reset = append(reset, e)
		case "tenant.updated":
			t.Errorf("a breaker-only PATCH recorded a tenant change: %v", e)
		}
	}
	if len(tripped) != 1 || len(reset) != 1 {
		t.Fatalf("tripped %v, reset %v: want one each", tripped, reset)
	}
	if at, id := actorOf(tripped[0]); at != "platform" || id != "circuit_breaker" {
		t.Errorf("trip entry %v, want the platform's circuit breaker", tripped[0])
	}
	if at, id := actorOf(reset[0]); at != "operator" || id != "local-admin" {
		t.Errorf("reset entry %v, want the operator", reset[0])
	}
}

// TestAuditPagesAndRanges: cursors walk the whole log in time order, also
// when the action filter leaves pages empty, and since/until select by time.
func TestAuditPagesAndRanges(t *testing.T) {
	h := newHarness(t, 0)
	a := h.newTenant("acme", "starter")
	start := h.clock.Now()
	var agents []string
	for i := range 5 {
		h.clock.Set(start.Add(time.Duration(i+1) * time.Hour))
		agents = append(agents, h.newAgent(a))
		h.must(200, "PATCH", "/v1/agents/"+agents[i], a.key, map[string]any{"name": fmt.Sprint("n", i)})
	}
	all := h.auditPages("/v1/audit", a.key, 2)
	if len(all) != 11 {
		t.Fatalf("%d entries, want 11", len(all))
	}
	for i := 1; i < len(all); i++ {
		if all[i-1]["time"].(string) > all[i]["time"].(string) {
			t.Errorf("entries out of time order at %d", i)
		}
	}
	created := h.auditPages("/v1/audit?action=agent.created", a.key, 1)
	if len(created) != 5 || created[0]["target"] != agents[0] || created[4]["target"] != agents[4] {
		t.Errorf("agent.created pages: %v", created)
	}
	window := url.Values{"since": {start.Add(2 * time.Hour).Format(time.RFC3339)}, "until": {start.Add(4 * time.Hour).Format(time.RFC3339)}}
	ranged := h.auditPages("/v1/audit?"+window.Encode(), a.key, 1)
	if len(ranged) != 4 || ranged[0]["target"] != agents[1] || ranged[3]["target"] != agents[2] {
		t.Errorf("entries from hour 2 to 4: %v", ranged)
	}
	adminRanged := h.auditPages("/v1/admin/audit?action=agent.updated&"+window.Encode(), adminToken, 1)
	if len(adminRanged) != 2 || adminRanged[0]["target"] != agents[1] {
		t.Errorf("operator's agent.updated entries from hour 2 to 4: %v", adminRanged)
	}
	for _, bad := range []string{"/v1/audit?cursor=nope", "/v1/audit?since=yesterday", "/v1/audit?action=DROP", "/v1/audit?since=2026-11-02&until=2026-11-01"} {
		h.must(400, "GET", bad, a.key, nil)
	}
	// A cursor of one listing does not continue another.
	r := h.must(200, "GET", "/v1/audit?limit=1", a.key, nil)
	h.must(400, "GET", "/v1/audit?action=agent.created&cursor="+url.QueryEscape(r.str("next_cursor")), a.key, nil)
	h.must(400, "GET", "/v1/admin/audit?since=2026-01-01&until=2026-11-01", adminToken, nil)
}
