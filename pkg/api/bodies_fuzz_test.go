package api_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/bulkhead-dev/bulkhead/pkg/api"
	"github.com/bulkhead-dev/bulkhead/pkg/bulkhead"
)

// The body targets send arbitrary bytes as the body of each route that reads
// one. Properties, for every input: no 5xx; a refusal is a 4xx in the error
// shape and writes nothing to DynamoDB or S3; a success is what a read
// returns afterwards.

// keyShape is a new key: it names its tenant.
var keyShape = regexp.MustCompile(`^bk_live_tn_[a-z2-7]{16}_[A-Za-z0-9_-]{43}$`)

// sameJSON compares two decoded JSON documents.
func sameJSON(a, b map[string]any) bool { return reflect.DeepEqual(a, b) }

// FuzzCreateAgentBody: POST /v1/agents. A created agent reads back as created.
func FuzzCreateAgentBody(f *testing.F) {
	p := newFuzzPlatform(f)
	bodySeeds(f,
		`{"name":"a","system_prompt":"Be brief."}`,
		`{"name":"a","system_prompt":"b","tools":["search_kb",{"name":"x","url":"https://t.example"}],"model":"`+bulkhead.DefaultModel+`"}`,
		`{"name":"a","system_prompt":"b","limits":{"max_steps":3,"max_tokens":1000,"max_wall_time_seconds":10}}`,
		`{"name":"a","system_prompt":"b","limits":{"max_steps":0}}`,
		`{"name":"a","system_prompt":"b","tools":["x","x"]}`,
		`{"name":"a","system_prompt":"b","status":"active"}`,
		`{"name":"a","system_prompt":"b","tools":[{"name":""}]}`,
	)
	f.Fuzz(func(t *testing.T, body []byte) {
		r := p.send(t, "POST", "/v1/agents", p.tenant.key, body)
		if !answered(t, "create agent", r, 201) {
			p.refusedCleanly(t, "create agent", r)
			return
		}
		id := r.str("agent_id")
		if !bulkhead.ValidID("agt", id) {
			t.Fatalf("created agent id %q", id)
		}
		got := p.send(t, "GET", "/v1/agents/"+id, p.tenant.key, nil)
		if got.status != 200 || !sameJSON(got.body, r.body) {
			t.Fatalf("created %s, read back %d %s", r.raw, got.status, got.raw)
		}
		// Keep the table small: the embedded DynamoDB slows as it grows.
		if d := p.send(t, "DELETE", "/v1/agents/"+id, p.tenant.key, nil); d.status != 200 {
			t.Fatalf("delete agent: %d %s", d.status, d.raw)
		}
	})
}

// FuzzPatchAgentBody: PATCH /v1/agents/{agent_id}. An accepted patch moves
// the version by one and reads back as answered.
func FuzzPatchAgentBody(f *testing.F) {
	p := newFuzzPlatform(f)
	bodySeeds(f,
		`{"name":"renamed"}`, `{"status":"disabled"}`, `{"status":"active"}`, `{"status":"paused"}`,
		`{"system_prompt":""}`, `{"tools":[]}`, `{"limits":{"max_tokens":262144}}`, `{"limits":{"max_tokens":262145}}`,
		`{"model":"gpt-9"}`, `{"limits":null}`,
	)
	path := "/v1/agents/" + p.agent
	f.Fuzz(func(t *testing.T, body []byte) {
		before := p.send(t, "GET", path, p.tenant.key, nil)
		r := p.send(t, "PATCH", path, p.tenant.key, body)
		if !answered(t, "patch agent", r, 200) {
			p.refusedCleanly(t, "patch agent", r)
			return
		}
		if num(t, r.body["version"]) != num(t, before.body["version"])+1 {
			t.Fatalf("patch moved version %v -> %v", before.body["version"], r.body["version"])
		}
		if got := p.send(t, "GET", path, p.tenant.key, nil); !sameJSON(got.body, r.body) {
			t.Fatalf("patched to %s, read back %s", r.raw, got.raw)
		}
	})
}

// FuzzExecuteBody: POST /v1/agents/{agent_id}/execute, with the two headers
// execute reads: X-Bulkhead-Depth (a non-negative integer below the tier's
// depth ceiling) and Idempotency-Key (at most 255 characters). With a key, a
// retry of the same request gets the same answer: the stored one after a
// success (marked as a replay), a fresh one after a refusal (whose claim was
// released).
func FuzzExecuteBody(f *testing.F) {
	p := newFuzzPlatform(f)
	for _, s := range []struct{ body, depth, idem string }{
		{`{"message":"hi"}`, "", ""},
		{`{"message":"hi"}`, "0", "k1"},
		{`{"message":"hi"}`, "4", ""},
		{`{"message":"hi"}`, "5", ""},
		{`{"message":"hi"}`, "-1", ""},
		{`{"message":"hi"}`, "+1", ""},
		{`{"message":"hi"}`, "1e1", ""},
		{`{"message":"hi"}`, "9223372036854775807", ""},
		{`{"message":"hi"}`, "", strings.Repeat("k", 255)},
		{`{"message":"hi"}`, "", strings.Repeat("k", 256)},
		{`{"message":"hi","conversation_id":"conv_aaaaaaaaaaaaaaaa"}`, "", ""},
		{`{"message":"hi","conversation_id":"../x"}`, "", "k2"},
		{`{"message":"   "}`, "", "k3"},
		{`{"message":""}`, "", ""},
		{`{}`, "", ""},
		{`null`, "", ""},
		{`{"message":"` + strings.Repeat("m", bulkhead.MaxMessageBytes+1) + `"}`, "", ""},
	} {
		f.Add([]byte(s.body), s.depth, s.idem)
	}
	path := "/v1/agents/" + p.agent + "/execute"
	maxDepth := func() int64 { t, _ := bulkhead.LookupTier(bulkhead.Enterprise); return t.Ceiling.MaxDepth }()
	f.Fuzz(func(t *testing.T, body []byte, depth, idem string) {
		if !headerValue(depth) || !headerValue(idem) {
			return
		}
		var hdr []string
		if depth != "" {
			hdr = append(hdr, api.DepthHeader, depth)
		}
		if idem != "" {
			hdr = append(hdr, api.IdempotencyHeader, idem)
		}
		key := trimOWS(idem)
		r := p.send(t, "POST", path, p.tenant.key, body, hdr...)
		ok := answered(t, "execute", r, 200)
		// A replay answers the first request with the key (its identity is
		// the method, path and body, not the other headers).
		replayed := r.header.Get(api.ReplayedHeader) == "true"
		if ok {
			if d := trimOWS(depth); d != "" && !replayed {
				n, err := strconv.ParseInt(d, 10, 64)
				if err != nil || n < 0 || n >= maxDepth {
					t.Fatalf("execute with %s %q ran", api.DepthHeader, depth)
				}
			}
			if s, _ := r.body["message"].(string); s == "" || !bulkhead.ValidID("conv", r.str("conversation_id")) {
				t.Fatalf("execute answered %s", r.raw)
			}
		}
		if len(key) > 255 && (r.status != 400 || r.errCode() != string(bulkhead.Invalid)) {
			t.Fatalf("a %d-character Idempotency-Key got %d %s", len(key), r.status, r.raw)
		}
		if key == "" {
			if !ok {
				p.refusedCleanly(t, "execute", r)
			}
			return
		}
		if len(key) > 255 {
			p.refusedCleanly(t, "execute", r)
			return
		}
		again := p.send(t, "POST", path, p.tenant.key, body, hdr...)
		if ok && (again.status != 200 || again.raw != r.raw || again.header.Get(api.ReplayedHeader) != "true") {
			t.Fatalf("retry of a success with the same key: %d %q %s, want the replay of %s", again.status,
				again.header.Get(api.ReplayedHeader), again.raw, r.raw)
		}
		if !ok && again.status != r.status && r.status != 429 {
			t.Fatalf("retry of a %d refusal with the same key: %d %s", r.status, again.status, again.raw)
		}
	})
}

// FuzzCreateKeyBody: POST /v1/keys. A created key is well formed and
// authenticates at once.
func FuzzCreateKeyBody(f *testing.F) {
	p := newFuzzPlatform(f)
	bodySeeds(f, `{"name":"ci"}`, `{"name":"`+strings.Repeat("n", 128)+`"}`, `{"name":"`+strings.Repeat("n", 129)+`"}`, `{"name":" "}`)
	f.Fuzz(func(t *testing.T, body []byte) {
		r := p.send(t, "POST", "/v1/keys", p.tenant.key, body)
		if !answered(t, "create key", r, 201) {
			p.refusedCleanly(t, "create key", r)
			return
		}
		secret := r.str("api_key")
		if !keyShape.MatchString(secret) || !bulkhead.ValidID("key", r.str("key_id")) || !strings.HasPrefix(secret, r.str("prefix")) {
			t.Fatalf("created key %s", r.raw)
		}
		if got := p.send(t, "GET", "/v1/keys?limit=1", secret, nil); got.status != 200 {
			t.Fatalf("the new key does not authenticate: %d %s", got.status, got.raw)
		}
	})
}

// FuzzAdminCreateTenantBody: POST /v1/admin/tenants. A created tenant reads
// back as created, and its first key authenticates as that tenant.
func FuzzAdminCreateTenantBody(f *testing.F) {
	p := newFuzzPlatform(f)
	bodySeeds(f, `{"name":"acme"}`, `{"name":"acme","tier":"professional"}`, `{"name":"acme","tier":"platinum"}`, `{"tier":"starter"}`,
		`{"name":"acme","tier":null}`)
	f.Fuzz(func(t *testing.T, body []byte) {
		r := p.send(t, "POST", "/v1/admin/tenants", adminToken, body)
		if !answered(t, "create tenant", r, 201) {
			p.refusedCleanly(t, "create tenant", r)
			return
		}
		id, secret := r.str("tenant_id"), r.str("api_key")
		if !bulkhead.ValidID("tn", id) || !keyShape.MatchString(secret) || !strings.HasPrefix(secret, "bk_live_"+id+"_") {
			t.Fatalf("created tenant %s", r.raw)
		}
		got := p.send(t, "GET", "/v1/admin/tenants/"+id, adminToken, nil)
		if got.status != 200 || got.str("name") != r.str("name") || got.str("tier") != r.str("tier") {
			t.Fatalf("created %s, read back %d %s", r.raw, got.status, got.raw)
		}
		if u := p.send(t, "GET", "/v1/usage", secret, nil); u.status != 200 || u.str("tenant_id") != id {
			t.Fatalf("the new tenant's key: %d %s", u.status, u.raw)
		}
	})
}

// lookupFold finds the value of a JSON object member the way encoding/json
// does (names match case-insensitively); ok is false when the name appears in
// more than one spelling, whose precedence depends on the order in the text.
func lookupFold(m map[string]any, name string) (v any, ok bool) {
	n := 0
	for k, x := range m {
		if strings.EqualFold(k, name) {
			v, n = x, n+1
		}
	}
	return v, n == 1
}

// FuzzAdminPatchTenantBody covers the operator's overrides: quota (USD with
// at most 6 decimals for spend, non-negative integers for the rest), the
// circuit breaker's configuration, status, tier and silo endpoint. An
// accepted spend limit is rendered exactly as sent, in its canonical
// spelling (no float on the way), and is what a read returns.
func FuzzAdminPatchTenantBody(f *testing.F) {
	p := newFuzzPlatform(f)
	bodySeeds(f,
		`{"quota":{"max_spend_per_month":12.5}}`, `{"quota":{"max_spend_per_month":0.000001}}`, `{"quota":{"max_spend_per_month":999999999999.999999}}`,
		`{"quota":{"max_spend_per_month":1000000000000}}`, `{"quota":{"max_spend_per_month":0.0000001}}`, `{"quota":{"max_spend_per_month":-1}}`,
		`{"quota":{"max_spend_per_month":"5"}}`, `{"quota":{"max_spend_per_month":007.50}}`, `{"quota":{"max_spend_per_month":1.10}}`,
		`{"quota":{"max_tokens_per_month":5,"max_requests_per_hour":0,"max_concurrent_agents":1,"max_storage_mb":9000000000000}}`,
		`{"quota":{"max_tokens_per_month":-1}}`, `{"quota":{"max_tokens_per_month":1.5}}`,
		`{"circuit_breaker_config":{"min_executions":1,"error_rate_pct":100,"error_window_seconds":900,"spend_pct":1,"spend_window_seconds":10,"cooldown_seconds":86400}}`,
		`{"circuit_breaker_config":{"error_window_seconds":15}}`, `{"circuit_breaker_config":{"cooldown_seconds":0}}`,
		`{"circuit_breaker":"open"}`, `{"circuit_breaker":"closed"}`, `{"circuit_breaker":"half"}`,
		`{"status":"suspended"}`, `{"status":"active"}`, `{"tier":"professional"}`, `{"tier":"enterprise"}`,
		`{"endpoint":"https://silo.example/v1"}`, `{"endpoint":"http://x"}`, `{"endpoint":""}`, `{"endpoint":"https://"}`,
	)
	path := "/v1/admin/tenants/" + p.tenant.id
	f.Fuzz(func(t *testing.T, body []byte) {
		r := p.send(t, "PATCH", path, adminToken, body)
		if !answered(t, "patch tenant", r, 200) {
			p.refusedCleanly(t, "patch tenant", r)
			return
		}
		got := p.send(t, "GET", path, adminToken, nil)
		if got.status != 200 || !reflect.DeepEqual(got.body["quota"], r.body["quota"]) || got.str("status") != r.str("status") || got.str("tier") != r.str("tier") {
			t.Fatalf("patched to %s, read back %d %s", r.raw, got.status, got.raw)
		}
		var in map[string]any
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.UseNumber()
		if dec.Decode(&in) != nil {
			return
		}
		qv, ok := lookupFold(in, "quota")
		q, _ := qv.(map[string]any)
		if !ok || q == nil {
			return
		}
		quota, _ := r.body["quota"].(map[string]any)
		if sv, ok := lookupFold(q, "max_spend_per_month"); ok && sv != nil {
			// encoding/json also takes a number spelled as a JSON string.
			sent := fmt.Sprint(sv)
			m, err := bulkhead.ParseMicros(sent)
			if err != nil {
				t.Fatalf("spend %q was accepted but is not an amount", sent)
			}
			if g := quota["max_spend_per_month"].(json.Number).String(); g != m.Decimal() {
				t.Fatalf("spend limit %q came back as %q, want %q", sent, g, m.Decimal())
			}
		}
		for _, name := range []string{"max_requests_per_hour", "max_tokens_per_month", "max_concurrent_agents", "max_storage_mb"} {
			if v, ok := lookupFold(q, name); ok && v != nil {
				sent, err1 := strconv.ParseInt(fmt.Sprint(v), 10, 64)
				g, err2 := strconv.ParseInt(quota[name].(json.Number).String(), 10, 64)
				if err1 != nil || err2 != nil || g != sent {
					t.Fatalf("quota %s %v came back as %v", name, v, quota[name])
				}
			}
		}
	})
}

// FuzzAdminAgentStatusBody: the operator's kill switch for one agent. The
// status set is what the tenant then reads.
func FuzzAdminAgentStatusBody(f *testing.F) {
	p := newFuzzPlatform(f)
	bodySeeds(f, `{"status":"disabled"}`, `{"status":"active"}`, `{"status":"paused"}`, `{"status":""}`)
	path := "/v1/admin/tenants/" + p.tenant.id + "/agents/" + p.agent
	f.Fuzz(func(t *testing.T, body []byte) {
		r := p.send(t, "PATCH", path, adminToken, body)
		if !answered(t, "agent status", r, 200) {
			p.refusedCleanly(t, "agent status", r)
			return
		}
		got := p.send(t, "GET", "/v1/agents/"+p.agent, p.tenant.key, nil)
		if got.status != 200 || !sameJSON(got.body, r.body) {
			t.Fatalf("set %s, read back %d %s", r.raw, got.status, got.raw)
		}
	})
}

// FuzzCloseMonthBody: POST /v1/admin/billing/close. Only a month (YYYY-MM)
// that has ended is closed.
func FuzzCloseMonthBody(f *testing.F) {
	p := newFuzzPlatform(f)
	bodySeeds(f, `{"month":"2026-10"}`, `{"month":"2026-11"}`, `{"month":"0000-01"}`, `{"month":"9999-12"}`, `{"month":"2026-13"}`, `{"month":"2026-1"}`)
	f.Fuzz(func(t *testing.T, body []byte) {
		r := p.send(t, "POST", "/v1/admin/billing/close", adminToken, body)
		if !answered(t, "close month", r, 200) {
			p.refusedCleanly(t, "close month", r)
			return
		}
		if _, _, err := bulkhead.MonthBounds(r.str("month")); err != nil || len(r.str("month")) != 7 {
			t.Fatalf("closed month %s", r.raw)
		}
	})
}
