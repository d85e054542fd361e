//go:build unix

package main_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// adminToken is the operator token the tests give the platform.
const adminToken = "bk_admin_e2e-operator-token-5f1c0a"

// tenant is a tenant as the operator created it.
type tenant struct {
	ID, Key, KeyID string
}

// e2e is what the steps of TestEndToEnd learn and later steps check.
type e2e struct {
	// root is TestEndToEnd's t: the processes live as long as it does.
	root    *testing.T
	dataDir string
	p       *proc
	c       *client
	// procs are every process started, for the final log check.
	procs []*proc

	a, b tenant
	// demoTenant is the demo tenant created on the first start.
	demoTenant string

	agent        string // A's agent
	agentName    string // after the PATCH
	agentVersion int64
	bAgent       string // B's own agent
	conv         string // A's conversation
	msgs         []string
	replies      []string
	executions   [2]execution
	// execHour is the UTC hour both executions ran in ("" when they straddled two).
	execHour       string
	transcript     []map[string]any
	ciKey, ciKeyID string // A's second key, revoked in the keys step

	// usageBefore is A's usage just before the graceful restart.
	usageBefore *response

	// secrets must never be logged: keys, the admin token, and bodies sent.
	secrets []string
}

// Distinctive texts sent in request bodies; the log check looks for them.
const (
	msg1         = "zebra-quartz-7431: where is my order #8812?"
	msg2         = "heliotrope-9920: and can you open a ticket for it?"
	systemPrompt = "You are the ACME support agent; marker prompt-mauve-3316."
)

// TestEndToEnd runs `bulkhead dev` as a user would and drives the API over
// HTTP: operator, tenants, agents, executions, conversations, usage and
// billing, isolation, keys, suspension, validation, logs, graceful restart and
// a kill -9. The steps depend on each other and run in order.
func TestEndToEnd(t *testing.T) {
	t.Parallel()
	e := &e2e{root: t, dataDir: t.TempDir(), secrets: []string{adminToken, msg1, msg2, systemPrompt}}
	e.p = startDev(t, t, e.dataDir, adminToken)
	e.procs = append(e.procs, e.p)
	e.c = newClient(e.p.URL)

	steps := []struct {
		name string
		fn   func(*testing.T)
	}{
		{"banner", e.banner},
		{"operator creates tenants", e.createTenants},
		{"agent lifecycle", e.agentLifecycle},
		{"execute twice in one conversation", e.execute},
		{"conversation transcript", e.transcriptStep},
		{"usage and billing", e.usageAndBilling},
		{"tenant isolation", e.isolation},
		{"api keys", e.keys},
		{"suspension and quota override", e.suspension},
		{"bad inputs", e.badInputs},
		{"logs hold no secrets", e.logs},
		{"graceful restart keeps everything", e.restart},
		{"kill -9 loses at most the last second", e.killDurability},
		{"logs of every process hold no secrets", e.allLogs},
	}
	for _, s := range steps {
		if !t.Run(s.name, s.fn) {
			// Later steps build on this one; their failures would be noise.
			t.Fatalf("step %q failed; later steps skipped", s.name)
		}
	}
}

// start starts a new platform process on e's data dir; it is killed when
// TestEndToEnd ends, not when the step that started it does.
func (e *e2e) start(t *testing.T) {
	t.Helper()
	e.p = startDev(t, e.root, e.dataDir, adminToken)
	e.procs = append(e.procs, e.p)
	e.c = newClient(e.p.URL)
}

func (e *e2e) banner(t *testing.T) {
	p := e.p
	for name, prefix := range map[string]string{
		"DynamoDB (embedded)": "http://127.0.0.1:",
		"S3 (embedded)":       "http://127.0.0.1:",
		"Bulkhead API":        "http://127.0.0.1:",
		"Portal":              "http://127.0.0.1:",
		"Admin token":         adminToken,
		"Demo tenant":         "tn_",
		"Demo API key":        "bk_live_",
	} {
		if got := p.mustValue(t, name); !strings.HasPrefix(got, prefix) {
			t.Errorf("banner %q = %q, want prefix %q", name, got, prefix)
		}
	}
	e.demoTenant = p.mustValue(t, "Demo tenant")
	e.secrets = append(e.secrets, p.mustValue(t, "Demo API key"))
	r := e.c.must(t, http.StatusOK, "GET", "/health", "", nil)
	if got := r.str(t, "status"); got != "healthy" {
		t.Errorf("health status = %q, want healthy", got)
	}
}

func (e *e2e) createTenant(t *testing.T, name string) tenant {
	t.Helper()
	r := e.c.must(t, http.StatusCreated, "POST", "/v1/admin/tenants", adminToken,
		map[string]any{"name": name, "tier": "professional"})
	tn := tenant{ID: r.str(t, "tenant_id"), Key: r.str(t, "api_key"), KeyID: r.str(t, "key_id")}
	if !strings.HasPrefix(tn.ID, "tn_") || !strings.HasPrefix(tn.Key, "bk_live_") || !strings.HasPrefix(tn.KeyID, "key_") {
		t.Errorf("%v\nids = %+v, want tn_..., bk_live_..., key_...", r, tn)
	}
	for path, want := range map[string]string{"name": name, "tier": "professional", "status": "active"} {
		if got := r.str(t, path); got != want {
			t.Errorf("created tenant %s = %q, want %q", path, got, want)
		}
	}
	if got := r.int(t, "quota.max_tokens_per_month"); got != 10_000_000 {
		t.Errorf("professional quota.max_tokens_per_month = %d, want 10000000", got)
	}
	if got := r.int(t, "quota.max_requests_per_hour"); got != 10_000 {
		t.Errorf("professional quota.max_requests_per_hour = %d, want 10000", got)
	}
	e.secrets = append(e.secrets, tn.Key)
	return tn
}

func (e *e2e) createTenants(t *testing.T) {
	e.a = e.createTenant(t, "acme")
	e.b = e.createTenant(t, "globex")
	if e.a.ID == e.b.ID || e.a.Key == e.b.Key {
		t.Fatalf("two tenants share an id or key: %+v %+v", e.a, e.b)
	}
	r := e.c.must(t, http.StatusOK, "GET", "/v1/admin/tenants/"+e.a.ID, adminToken, nil)
	if got := r.str(t, "name"); got != "acme" {
		t.Errorf("GET tenant A name = %q, want acme", got)
	}
	if strings.Contains(string(r.Body), e.a.Key) {
		t.Errorf("GET tenant A shows the API key secret: %s", r.Body)
	}
}

// tools returns the tools of an agent response as strings.
func tools(t *testing.T, r *response) []string {
	t.Helper()
	arr, ok := r.get(t, "tools").([]any)
	if !ok {
		t.Fatalf("%v\ntools is not an array", r)
	}
	out := make([]string, len(arr))
	for i, v := range arr {
		out[i], _ = v.(string)
	}
	return out
}

func (e *e2e) agentLifecycle(t *testing.T) {
	wantTools := []string{"search_kb", "create_ticket"}
	r := e.c.must(t, http.StatusCreated, "POST", "/v1/agents", e.a.Key, map[string]any{
		"name": "support-bot", "system_prompt": systemPrompt, "tools": wantTools,
	})
	e.agent = r.str(t, "agent_id")
	if !strings.HasPrefix(e.agent, "agt_") {
		t.Errorf("agent_id = %q, want agt_...", e.agent)
	}
	if got := r.str(t, "status"); got != "active" {
		t.Errorf("status = %q, want active", got)
	}
	if got := tools(t, r); !reflect.DeepEqual(got, wantTools) {
		t.Errorf("tools = %q, want %q", got, wantTools)
	}
	if got := r.int(t, "version"); got != 1 {
		t.Errorf("version = %d, want 1", got)
	}
	created := r.JSON

	list := e.c.must(t, http.StatusOK, "GET", "/v1/agents", e.a.Key, nil)
	if ids := list.ids(t, "agent_id"); !reflect.DeepEqual(ids, []string{e.agent}) {
		t.Errorf("A's agents = %q, want [%s]", ids, e.agent)
	}
	got := e.c.must(t, http.StatusOK, "GET", "/v1/agents/"+e.agent, e.a.Key, nil)
	if !reflect.DeepEqual(got.JSON, created) {
		t.Errorf("GET agent = %v\nwant what POST returned: %v", got.JSON, created)
	}

	e.agentName = "support-bot-v2"
	r = e.c.must(t, http.StatusOK, "PATCH", "/v1/agents/"+e.agent, e.a.Key, map[string]any{"name": e.agentName})
	if got := r.str(t, "name"); got != e.agentName {
		t.Errorf("patched name = %q, want %q", got, e.agentName)
	}
	if got := r.int(t, "version"); got != 2 {
		t.Errorf("version after PATCH = %d, want 2", got)
	}
	if got := tools(t, r); !reflect.DeepEqual(got, wantTools) {
		t.Errorf("tools after a name PATCH = %q, want %q (unchanged)", got, wantTools)
	}
	if got := r.str(t, "system_prompt"); got != systemPrompt {
		t.Errorf("system_prompt after a name PATCH = %q, want unchanged %q", got, systemPrompt)
	}
	got = e.c.must(t, http.StatusOK, "GET", "/v1/agents/"+e.agent, e.a.Key, nil)
	if !reflect.DeepEqual(got.JSON, r.JSON) {
		t.Errorf("GET after PATCH = %v\nwant what PATCH returned: %v", got.JSON, r.JSON)
	}
	e.agentVersion = 2
}

// execution is one execute response's numbers.
type execution struct {
	ID, Conv, Reply string
	Tokens, In, Out int64
	Cost            int64 // micro-dollars
}

func (e *e2e) executeOnce(t *testing.T, body map[string]any) execution {
	t.Helper()
	r := e.c.must(t, http.StatusOK, "POST", "/v1/agents/"+e.agent+"/execute", e.a.Key, body)
	x := execution{
		ID: r.str(t, "execution_id"), Conv: r.str(t, "conversation_id"), Reply: r.str(t, "message"),
		Tokens: r.int(t, "tokens_used"), In: r.int(t, "usage.input_tokens"), Out: r.int(t, "usage.output_tokens"),
		Cost: r.micros(t, "cost"),
	}
	if x.Tokens != x.In+x.Out {
		t.Errorf("tokens_used = %d, want input %d + output %d = %d", x.Tokens, x.In, x.Out, x.In+x.Out)
	}
	if x.In <= 0 || x.Out <= 0 || x.Cost <= 0 {
		t.Errorf("input %d, output %d tokens, cost %d micro-dollars: want all positive", x.In, x.Out, x.Cost)
	}
	if !strings.HasPrefix(x.ID, "exec_") || !strings.HasPrefix(x.Conv, "conv_") {
		t.Errorf("execution_id %q, conversation_id %q: want exec_..., conv_...", x.ID, x.Conv)
	}
	return x
}

func (e *e2e) execute(t *testing.T) {
	e.execHour = currentHour()
	first := e.executeOnce(t, map[string]any{"message": msg1})
	if !strings.Contains(first.Reply, "This is the first thing you have said") {
		t.Errorf("first reply = %q, want it to say this is the first message", first.Reply)
	}
	second := e.executeOnce(t, map[string]any{"message": msg2, "conversation_id": first.Conv})
	if second.Conv != first.Conv {
		t.Errorf("second conversation_id = %q, want %q", second.Conv, first.Conv)
	}
	if second.ID == first.ID {
		t.Errorf("both executions have id %q", first.ID)
	}
	// The offline model quotes the previous user message: proof it saw turn 1.
	if want := fmt.Sprintf("Before that you said %q", msg1); !strings.Contains(second.Reply, want) {
		t.Errorf("second reply = %q, want it to contain %q", second.Reply, want)
	}
	if second.In <= first.In {
		t.Errorf("second input tokens %d <= first %d, want more (the history is in the context)", second.In, first.In)
	}
	e.executions = [2]execution{first, second}
	if currentHour() != e.execHour {
		e.execHour = ""
	}
	e.conv = first.Conv
	e.msgs = []string{msg1, msg2}
	e.replies = []string{first.Reply, second.Reply}
}

func (e *e2e) transcriptStep(t *testing.T) {
	r := e.c.must(t, http.StatusOK, "GET", "/v1/conversations/"+e.conv, e.a.Key, nil)
	msgs := r.objects(t, "messages")
	wantRoles := []string{"user", "assistant", "user", "assistant"}
	wantContent := []string{e.msgs[0], e.replies[0], e.msgs[1], e.replies[1]}
	var roles, content []string
	for _, m := range msgs {
		role, _ := m["role"].(string)
		text, _ := m["content"].(string)
		roles, content = append(roles, role), append(content, text)
	}
	if !reflect.DeepEqual(roles, wantRoles) {
		t.Errorf("roles = %q, want %q", roles, wantRoles)
	}
	if !reflect.DeepEqual(content, wantContent) {
		t.Errorf("contents = %q\nwant %q", content, wantContent)
	}
	if got := r.int(t, "turns"); got != 2 {
		t.Errorf("turns = %d, want 2", got)
	}
	if got, want := r.int(t, "tokens_used"), e.executions[0].Tokens+e.executions[1].Tokens; got != want {
		t.Errorf("conversation tokens_used = %d, want %d", got, want)
	}
	if got := r.str(t, "agent_id"); got != e.agent {
		t.Errorf("agent_id = %q, want %q", got, e.agent)
	}
	if r.get(t, "has_more") != false || r.get(t, "next_cursor") != nil {
		t.Errorf("whole conversation: has_more %v, next_cursor %v, want false, null", r.get(t, "has_more"), r.get(t, "next_cursor"))
	}
	e.transcript = msgs

	// One message per page, following next_cursor.
	var paged []map[string]any
	cursor := ""
	for page := 0; ; page++ {
		if page > len(wantRoles) {
			t.Fatalf("more than %d pages of one message for a %d-message conversation", page, len(wantRoles))
		}
		path := "/v1/conversations/" + e.conv + "?limit=1"
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		r := e.c.must(t, http.StatusOK, "GET", path, e.a.Key, nil)
		got := r.objects(t, "messages")
		if len(got) != 1 {
			t.Fatalf("%v\npage %d has %d messages, want 1", r, page, len(got))
		}
		paged = append(paged, got[0])
		next, _ := r.get(t, "next_cursor").(string)
		if more := r.get(t, "has_more") == true; more != (next != "") {
			t.Errorf("page %d: has_more %v but next_cursor %q", page, more, next)
		}
		if next == "" {
			break
		}
		cursor = next
	}
	if !reflect.DeepEqual(paged, msgs) {
		t.Errorf("messages one page at a time = %v\nwant %v", paged, msgs)
	}

	l := e.c.must(t, http.StatusOK, "GET", "/v1/conversations?agent_id="+e.agent, e.a.Key, nil)
	items := l.items(t)
	if len(items) != 1 || items[0]["conversation_id"] != e.conv {
		t.Fatalf("%v\nconversations of the agent: want exactly %s", l, e.conv)
	}
	if got := items[0]["turns"]; got != json.Number("2") {
		t.Errorf("listed conversation turns = %v, want 2", got)
	}
}

func (e *e2e) usageAndBilling(t *testing.T) {
	u := e.c.must(t, http.StatusOK, "GET", "/v1/usage", e.a.Key, nil)
	x0, x1 := e.executions[0], e.executions[1]
	for _, c := range []struct {
		path string
		want int64
	}{
		{"usage.tokens_this_month", x0.Tokens + x1.Tokens},
		{"usage.input_tokens", x0.In + x1.In},
		{"usage.output_tokens", x0.Out + x1.Out},
		{"usage.executions_this_month", 2},
		{"usage.concurrent_agents", 0},
		{"usage.remaining_tokens", 10_000_000 - x0.Tokens - x1.Tokens},
		{"quota.max_tokens_per_month", 10_000_000},
	} {
		if got := u.int(t, c.path); got != c.want {
			t.Errorf("%s = %d, want %d", c.path, got, c.want)
		}
	}
	// An hour boundary since the executions resets the hourly window.
	if hour := u.str(t, "period.hour"); hour == e.execHour {
		if got := u.int(t, "usage.requests_this_hour"); got != 2 {
			t.Errorf("usage.requests_this_hour = %d, want 2", got)
		}
	} else {
		t.Logf("usage window %s is not the executions' hour %q: requests_this_hour not checked", hour, e.execHour)
	}
	if got, want := u.micros(t, "usage.spend_this_month"), x0.Cost+x1.Cost; got != want {
		t.Errorf("spend_this_month = %d micro-dollars (%s), want %d + %d = %d",
			got, u.num(t, "usage.spend_this_month"), x0.Cost, x1.Cost, want)
	}
	if got := u.str(t, "tier"); got != "professional" {
		t.Errorf("usage tier = %q, want professional", got)
	}

	b := e.c.must(t, http.StatusOK, "GET", "/v1/billing/current", e.a.Key, nil)
	if got := b.str(t, "tier"); got != "professional" {
		t.Errorf("billing tier = %q, want professional", got)
	}
	for path, want := range map[string]int64{"base_fee": 99_000_000, "total": 99_000_000, "overage_fee": 0} {
		if got := b.micros(t, path); got != want {
			t.Errorf("billing %s = %s USD, want %d micro-dollars", path, b.num(t, path), want)
		}
	}
	if got, want := b.int(t, "tokens_used"), x0.Tokens+x1.Tokens; got != want {
		t.Errorf("billing tokens_used = %d, want %d", got, want)
	}
	if got := b.int(t, "overage_tokens"); got != 0 {
		t.Errorf("billing overage_tokens = %d, want 0", got)
	}
	if got := b.str(t, "currency"); got != "USD" {
		t.Errorf("currency = %q, want USD", got)
	}
}

// currentHour is the hourly usage window of now, as /v1/usage names it.
func currentHour() string { return time.Now().UTC().Format("2006-01-02T15") }

func (e *e2e) isolation(t *testing.T) {
	b := e.b.Key
	r := e.c.must(t, http.StatusCreated, "POST", "/v1/agents", b, map[string]any{"name": "globex-bot", "system_prompt": "Globex.", "tools": []string{"search_kb"}})
	e.bAgent = r.str(t, "agent_id")

	for _, c := range []struct {
		method, path string
		body         any
	}{
		{"GET", "/v1/agents/" + e.agent, nil},
		{"PATCH", "/v1/agents/" + e.agent, map[string]any{"name": "stolen"}},
		{"DELETE", "/v1/agents/" + e.agent, nil},
		{"POST", "/v1/agents/" + e.agent + "/execute", map[string]any{"message": "hello from globex"}},
		{"GET", "/v1/conversations/" + e.conv, nil},
		{"DELETE", "/v1/conversations/" + e.conv, nil},
		{"POST", "/v1/agents/" + e.bAgent + "/execute", map[string]any{"message": "continue theirs", "conversation_id": e.conv}},
		{"DELETE", "/v1/keys/" + e.a.KeyID, nil},
	} {
		r := e.c.do(t, c.method, c.path, b, c.body)
		wantError(t, r, "not_found", http.StatusNotFound)
	}

	for _, c := range []struct{ path, field, foreign string }{
		{"/v1/agents", "agent_id", e.agent},
		{"/v1/conversations", "conversation_id", e.conv},
		{"/v1/keys", "key_id", e.a.KeyID},
	} {
		r := e.c.must(t, http.StatusOK, "GET", c.path+"?limit=100", b, nil)
		if ids := r.ids(t, c.field); contains(ids, c.foreign) {
			t.Errorf("B's %s = %q, contains A's %s", c.path, ids, c.foreign)
		}
	}
	if ids := e.c.must(t, http.StatusOK, "GET", "/v1/agents", b, nil).ids(t, "agent_id"); !reflect.DeepEqual(ids, []string{e.bAgent}) {
		t.Errorf("B's agents = %q, want only [%s]", ids, e.bAgent)
	}
	if n := len(e.c.must(t, http.StatusOK, "GET", "/v1/conversations", b, nil).items(t)); n != 0 {
		t.Errorf("B has %d conversations, want 0", n)
	}
	u := e.c.must(t, http.StatusOK, "GET", "/v1/usage", b, nil)
	for _, path := range []string{"usage.tokens_this_month", "usage.executions_this_month", "usage.requests_this_hour"} {
		if got := u.int(t, path); got != 0 {
			t.Errorf("B's %s = %d, want 0", path, got)
		}
	}
	if got := u.micros(t, "usage.spend_this_month"); got != 0 {
		t.Errorf("B's spend_this_month = %d micro-dollars, want 0", got)
	}

	// And nothing B tried changed A's resources.
	ag := e.c.must(t, http.StatusOK, "GET", "/v1/agents/"+e.agent, e.a.Key, nil)
	if ag.str(t, "name") != e.agentName || ag.int(t, "version") != e.agentVersion {
		t.Errorf("A's agent after B's attempts: name %q version %d, want %q %d",
			ag.str(t, "name"), ag.int(t, "version"), e.agentName, e.agentVersion)
	}
	conv := e.c.must(t, http.StatusOK, "GET", "/v1/conversations/"+e.conv, e.a.Key, nil)
	if got := conv.objects(t, "messages"); !reflect.DeepEqual(got, e.transcript) {
		t.Errorf("A's conversation after B's attempts = %v\nwant %v", got, e.transcript)
	}
	keys := e.c.must(t, http.StatusOK, "GET", "/v1/keys", e.a.Key, nil)
	if !reflect.DeepEqual(keys.ids(t, "status"), []string{"active"}) {
		t.Errorf("A's keys after B's attempts: %s, want one active key", keys.Body)
	}
}

func (e *e2e) keys(t *testing.T) {
	r := e.c.must(t, http.StatusCreated, "POST", "/v1/keys", e.a.Key, map[string]any{"name": "ci"})
	e.ciKey, e.ciKeyID = r.str(t, "api_key"), r.str(t, "key_id")
	e.secrets = append(e.secrets, e.ciKey)
	if !strings.HasPrefix(e.ciKey, "bk_live_") || e.ciKey == e.a.Key {
		t.Errorf("new api_key = %q, want a new bk_live_ key", e.ciKey)
	}
	if got := r.str(t, "name"); got != "ci" {
		t.Errorf("new key name = %q, want ci", got)
	}
	if got := r.str(t, "prefix"); !strings.HasPrefix(e.ciKey, got) || len(got) >= len(e.ciKey) {
		t.Errorf("prefix = %q, want a short prefix of the key", got)
	}
	e.c.must(t, http.StatusOK, "GET", "/v1/agents/"+e.agent, e.ciKey, nil)

	list := e.c.must(t, http.StatusOK, "GET", "/v1/keys", e.a.Key, nil)
	for _, secret := range []string{e.ciKey, e.a.Key} {
		if strings.Contains(string(list.Body), secret) {
			t.Errorf("GET /v1/keys contains a key secret: %s", list.Body)
		}
	}
	for _, it := range list.items(t) {
		if _, ok := it["api_key"]; ok {
			t.Errorf("listed key %v has an api_key field", it)
		}
	}
	if ids := list.ids(t, "key_id"); len(ids) != 2 || !contains(ids, e.a.KeyID) || !contains(ids, e.ciKeyID) {
		t.Errorf("A's key ids = %q, want %s and %s", ids, e.a.KeyID, e.ciKeyID)
	}

	rev := e.c.must(t, http.StatusOK, "DELETE", "/v1/keys/"+e.ciKeyID, e.a.Key, nil)
	if got := rev.str(t, "status"); got != "revoked" {
		t.Errorf("revoked key status = %q, want revoked", got)
	}
	if _, ok := rev.get(t, "revoked_at").(string); !ok {
		t.Errorf("revoked key revoked_at = %v, want a time", rev.get(t, "revoked_at"))
	}
	wantError(t, e.c.do(t, "GET", "/v1/agents", e.ciKey, nil), "", http.StatusUnauthorized, http.StatusForbidden)
	e.c.must(t, http.StatusOK, "GET", "/v1/agents", e.a.Key, nil)
}

func (e *e2e) suspension(t *testing.T) {
	path := "/v1/admin/tenants/" + e.b.ID
	r := e.c.must(t, http.StatusOK, "PATCH", path, adminToken, map[string]any{"status": "suspended"})
	if got := r.str(t, "status"); got != "suspended" {
		t.Errorf("status after suspend = %q, want suspended", got)
	}
	wantError(t, e.c.do(t, "GET", "/v1/agents", e.b.Key, nil), "forbidden", http.StatusForbidden)
	wantError(t, e.c.do(t, "POST", "/v1/agents/"+e.bAgent+"/execute", e.b.Key, map[string]any{"message": "hi"}),
		"forbidden", http.StatusForbidden)
	e.c.must(t, http.StatusOK, "GET", "/v1/agents", e.a.Key, nil) // A is not affected

	r = e.c.must(t, http.StatusOK, "PATCH", path, adminToken, map[string]any{"status": "active"})
	if got := r.str(t, "status"); got != "active" {
		t.Errorf("status after resume = %q, want active", got)
	}
	e.c.must(t, http.StatusOK, "GET", "/v1/agents", e.b.Key, nil)

	r = e.c.must(t, http.StatusOK, "PATCH", path, adminToken, map[string]any{"quota": map[string]any{"max_tokens_per_month": 12345}})
	if got := r.int(t, "quota.max_tokens_per_month"); got != 12345 {
		t.Errorf("PATCH quota: max_tokens_per_month = %d, want 12345", got)
	}
	if got := r.int(t, "quota.max_requests_per_hour"); got != 10_000 {
		t.Errorf("PATCH quota: max_requests_per_hour = %d, want the tier's 10000 (not overridden)", got)
	}
	if got := e.c.must(t, http.StatusOK, "GET", path, adminToken, nil).int(t, "quota.max_tokens_per_month"); got != 12345 {
		t.Errorf("GET tenant B: max_tokens_per_month = %d, want 12345", got)
	}
	u := e.c.must(t, http.StatusOK, "GET", "/v1/usage", e.b.Key, nil)
	if got := u.int(t, "quota.max_tokens_per_month"); got != 12345 {
		t.Errorf("B's /v1/usage quota.max_tokens_per_month = %d, want 12345", got)
	}
	if got := u.int(t, "usage.remaining_tokens"); got != 12345 {
		t.Errorf("B's /v1/usage remaining_tokens = %d, want 12345", got)
	}
}

// count returns how many items a list has (at most 100, plenty here).
func (e *e2e) count(t *testing.T, path, key string) int {
	t.Helper()
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	return len(e.c.must(t, http.StatusOK, "GET", path+sep+"limit=100", key, nil).items(t))
}

func (e *e2e) badInputs(t *testing.T) {
	a := e.a.Key
	agentsBefore := e.count(t, "/v1/agents", a)
	convsBefore := e.count(t, "/v1/conversations", a)
	tenantsBefore := e.count(t, "/v1/admin/tenants", adminToken)
	exec := "/v1/agents/" + e.agent + "/execute"
	// A marker at the start of the large message, for the log check.
	big := func(n int) string {
		const marker = "bigmsg-ochre-5521 "
		return marker + strings.Repeat("x", n-len(marker))
	}
	e.secrets = append(e.secrets, "bigmsg-ochre-5521")

	for _, c := range []struct {
		name         string
		method, path string
		key          string
		body         any
		status       []int
		code         string
	}{
		{"no authorization", "GET", "/v1/agents", "", nil, []int{401}, "unauthenticated"},
		{"malformed key", "GET", "/v1/agents", "not-a-key", nil, []int{401}, "unauthenticated"},
		{"malformed JSON", "POST", "/v1/agents", a, rawJSON(`{"name": "x", `), []int{400}, "invalid_request"},
		{"not an object", "POST", "/v1/agents", a, rawJSON(`["x"]`), []int{400}, "invalid_request"},
		{"trailing data", "POST", "/v1/agents", a, rawJSON(`{"name":"x","system_prompt":"y"} {}`), []int{400}, "invalid_request"},
		{"unknown field", "POST", "/v1/agents", a, map[string]any{"name": "x", "system_prompt": "y", "colour": "red"}, []int{400}, "invalid_request"},
		{"missing name", "POST", "/v1/agents", a, map[string]any{"system_prompt": "y"}, []int{400}, "invalid_request"},
		{"blank name", "POST", "/v1/agents", a, map[string]any{"name": "  ", "system_prompt": "y"}, []int{400}, "invalid_request"},
		{"bad tool", "POST", "/v1/agents", a, map[string]any{"name": "x", "system_prompt": "y", "tools": []string{"no spaces"}}, []int{400}, "invalid_request"},
		{"empty body", "POST", "/v1/agents", a, nil, []int{400}, "invalid_request"},
		{"empty message", "POST", exec, a, map[string]any{"message": ""}, []int{400}, "invalid_request"},
		{"blank message", "POST", exec, a, map[string]any{"message": "   "}, []int{400}, "invalid_request"},
		{"missing message", "POST", exec, a, map[string]any{}, []int{400}, "invalid_request"},
		{"message of 65537 bytes", "POST", exec, a, map[string]any{"message": big(65537)}, []int{413}, "too_large"},
		{"unknown tier", "POST", "/v1/admin/tenants", adminToken, map[string]any{"name": "initech", "tier": "platinum"}, []int{400}, "invalid_request"},
		{"limit=0", "GET", "/v1/agents?limit=0", a, nil, []int{400}, "invalid_request"},
		{"limit=101", "GET", "/v1/agents?limit=101", a, nil, []int{400}, "invalid_request"},
		{"limit=abc", "GET", "/v1/conversations?limit=abc", a, nil, []int{400}, "invalid_request"},
		{"message limit=0", "GET", "/v1/conversations/" + e.conv + "?limit=0", a, nil, []int{400}, "invalid_request"},
		{"bad cursor", "GET", "/v1/agents?cursor=not-a-cursor", a, nil, []int{400}, "invalid_request"},
		{"bad message cursor", "GET", "/v1/conversations/" + e.conv + "?cursor=bogus", a, nil, []int{400}, "invalid_request"},
		{"unknown route", "GET", "/v1/nothing-here", a, nil, []int{404}, "not_found"},
		{"wrong method", "PUT", "/v1/agents", a, map[string]any{"name": "x"}, []int{405}, "method_not_allowed"},
		{"admin route with a tenant key", "GET", "/v1/admin/tenants", a, nil, []int{403, 401}, ""},
		{"admin route with a wrong token", "GET", "/v1/admin/tenants", "bk_admin_wrong", nil, []int{403, 401}, ""},
		{"admin route without a token", "GET", "/v1/admin/tenants", "", nil, []int{401}, "unauthenticated"},
		{"unknown tenant status", "PATCH", "/v1/admin/tenants/" + e.b.ID, adminToken, map[string]any{"status": "deleted"}, []int{400}, "invalid_request"},
	} {
		t.Run(c.name, func(t *testing.T) {
			wantError(t, e.c.do(t, c.method, c.path, c.key, c.body), c.code, c.status...)
		})
	}

	t.Run("message of 65536 bytes is accepted", func(t *testing.T) {
		r := e.c.must(t, http.StatusOK, "POST", exec, a, map[string]any{"message": big(65536)})
		if r.int(t, "tokens_used") <= 65536/4 {
			t.Errorf("tokens_used = %d, want more than the message's %d tokens", r.int(t, "tokens_used"), 65536/4)
		}
	})
	t.Run("wrong method names the allowed ones", func(t *testing.T) {
		r := e.c.do(t, "PUT", "/v1/agents", a, nil)
		if got := r.Header.Get("Allow"); got != "GET, POST" {
			t.Errorf("Allow = %q, want %q", got, "GET, POST")
		}
	})

	if got := e.count(t, "/v1/agents", a); got != agentsBefore {
		t.Errorf("A has %d agents after the bad requests, want %d (unchanged)", got, agentsBefore)
	}
	if got := e.count(t, "/v1/conversations", a); got != convsBefore+1 {
		t.Errorf("A has %d conversations, want %d (only the accepted 65536-byte message added one)", got, convsBefore+1)
	}
	if got := e.count(t, "/v1/admin/tenants", adminToken); got != tenantsBefore {
		t.Errorf("%d tenants after the bad create, want %d (unchanged)", got, tenantsBefore)
	}
	if got := e.c.must(t, http.StatusOK, "GET", "/v1/admin/tenants/"+e.b.ID, adminToken, nil).str(t, "status"); got != "active" {
		t.Errorf("B's status after a bad PATCH = %q, want active (unchanged)", got)
	}
}

// checkLogs fails when a process's stderr holds a secret or a body sent, or
// is not JSON lines.
func (e *e2e) checkLogs(t *testing.T, p *proc) {
	t.Helper()
	logs := p.stderr.String()
	if !strings.Contains(logs, `"msg":"request"`) {
		t.Errorf("stderr has no request log line; the check would prove nothing:\n%s", tail(logs, 2000))
	}
	for _, s := range e.secrets {
		if s != "" && strings.Contains(logs, s) {
			t.Errorf("stderr contains %q", s)
		}
	}
	for i, line := range strings.Split(strings.TrimRight(logs, "\n"), "\n") {
		if !json.Valid([]byte(line)) {
			t.Errorf("stderr line %d is not JSON: %q", i+1, line)
		}
	}
}

func (e *e2e) logs(t *testing.T) { e.checkLogs(t, e.p) }

func (e *e2e) restart(t *testing.T) {
	e.usageBefore = e.c.must(t, http.StatusOK, "GET", "/v1/usage", e.a.Key, nil)
	hourBefore := e.usageBefore.str(t, "period.hour")
	e.p.stop(t)

	e.start(t)
	if v, ok := e.p.value("Demo API key"); ok {
		t.Errorf("restart printed a new demo API key %q: a second demo tenant was created", v)
	}
	if got := e.p.mustValue(t, "Demo tenant"); !strings.HasPrefix(got, e.demoTenant+" ") {
		t.Errorf("banner after restart: Demo tenant %q, want the first start's %s", got, e.demoTenant)
	}
	if n := e.count(t, "/v1/admin/tenants", adminToken); n != 3 {
		t.Errorf("%d tenants after restart, want 3 (demo, acme, globex)", n)
	}
	e.checkState(t, hourBefore)
}

// checkState checks that everything the earlier steps did is still there.
func (e *e2e) checkState(t *testing.T, hourBefore string) {
	t.Helper()
	ag := e.c.must(t, http.StatusOK, "GET", "/v1/agents/"+e.agent, e.a.Key, nil)
	if ag.str(t, "name") != e.agentName || ag.int(t, "version") != e.agentVersion || ag.str(t, "system_prompt") != systemPrompt {
		t.Errorf("A's agent after restart: %s\nwant name %q, version %d", ag.Body, e.agentName, e.agentVersion)
	}
	conv := e.c.must(t, http.StatusOK, "GET", "/v1/conversations/"+e.conv, e.a.Key, nil)
	if got := conv.objects(t, "messages"); !reflect.DeepEqual(got, e.transcript) {
		t.Errorf("A's conversation after restart = %v\nwant the 4 messages %v", got, e.transcript)
	}

	wantError(t, e.c.do(t, "GET", "/v1/agents", e.ciKey, nil), "", http.StatusUnauthorized, http.StatusForbidden)
	keys := e.c.must(t, http.StatusOK, "GET", "/v1/keys", e.a.Key, nil)
	status := map[string]string{}
	for _, it := range keys.items(t) {
		id, _ := it["key_id"].(string)
		status[id], _ = it["status"].(string)
	}
	if want := map[string]string{e.a.KeyID: "active", e.ciKeyID: "revoked"}; !reflect.DeepEqual(status, want) {
		t.Errorf("A's keys after restart = %v, want %v", status, want)
	}

	u := e.c.must(t, http.StatusOK, "GET", "/v1/usage", e.a.Key, nil)
	fields := []string{"tokens_this_month", "input_tokens", "output_tokens", "executions_this_month", "storage_bytes"}
	if u.str(t, "period.hour") == hourBefore {
		fields = append(fields, "requests_this_hour")
	}
	for _, f := range fields {
		if got, want := u.int(t, "usage."+f), e.usageBefore.int(t, "usage."+f); got != want {
			t.Errorf("A's usage.%s after restart = %d, want %d", f, got, want)
		}
	}
	if got, want := u.micros(t, "usage.spend_this_month"), e.usageBefore.micros(t, "usage.spend_this_month"); got != want {
		t.Errorf("A's spend after restart = %d micro-dollars, want %d", got, want)
	}

	bt := e.c.must(t, http.StatusOK, "GET", "/v1/admin/tenants/"+e.b.ID, adminToken, nil)
	if got := bt.int(t, "quota.max_tokens_per_month"); got != 12345 {
		t.Errorf("B's quota after restart = %d, want the override 12345", got)
	}
	if got := e.c.must(t, http.StatusOK, "GET", "/v1/usage", e.b.Key, nil).int(t, "quota.max_tokens_per_month"); got != 12345 {
		t.Errorf("B's /v1/usage quota after restart = %d, want 12345", got)
	}
}

// killDurability checks the platform's durability promise: a graceful stop
// loses nothing; kill -9 loses at most about the last second of writes, the
// embedded DynamoDB's snapshot interval (S3 objects are in a bolt file, which
// commits every write).
func (e *e2e) killDurability(t *testing.T) {
	r := e.c.must(t, http.StatusCreated, "POST", "/v1/agents", e.a.Key,
		map[string]any{"name": "after-the-crash", "system_prompt": "Survive."})
	id := r.str(t, "agent_id")
	// The one fixed sleep: long enough for the 1 s snapshot ticker to have
	// written the change, with margin for a slow machine.
	time.Sleep(2500 * time.Millisecond)
	hourBefore := e.c.must(t, http.StatusOK, "GET", "/v1/usage", e.a.Key, nil).str(t, "period.hour")
	e.p.kill(t)

	e.start(t)
	got := e.c.must(t, http.StatusOK, "GET", "/v1/agents/"+id, e.a.Key, nil)
	if name := got.str(t, "name"); name != "after-the-crash" {
		t.Errorf("agent after kill -9 is named %q, want after-the-crash", name)
	}
	if ids := e.c.must(t, http.StatusOK, "GET", "/v1/agents", e.a.Key, nil).ids(t, "agent_id"); !contains(ids, id) || !contains(ids, e.agent) {
		t.Errorf("A's agents after kill -9 = %q, want %s and %s", ids, e.agent, id)
	}
	if _, ok := e.p.value("Demo API key"); ok {
		t.Errorf("restart after kill -9 created a new demo tenant")
	}
	e.checkState(t, hourBefore)

	// The data dir holds the state, and only there.
	for _, f := range []string{"dynamodb.json", "s3.bolt"} {
		if _, err := os.Stat(filepath.Join(e.dataDir, f)); err != nil {
			t.Errorf("data dir: %v", err)
		}
	}
}

func (e *e2e) allLogs(t *testing.T) {
	for i, p := range e.procs {
		t.Run(fmt.Sprintf("process %d", i+1), func(t *testing.T) { e.checkLogs(t, p) })
	}
}
