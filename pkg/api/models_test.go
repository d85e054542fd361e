package api_test

import (
	"net/http/httptest"
	"net/url"
	"slices"
	"testing"

	"github.com/bulkhead-dev/bulkhead/pkg/api"
	"github.com/bulkhead-dev/bulkhead/pkg/bulkhead"
	"github.com/bulkhead-dev/bulkhead/pkg/gateway"
	"github.com/bulkhead-dev/bulkhead/pkg/platform"
)

// second is another process of the same platform: its own API and gateway
// over the same table.
func (h *harness) second() *harness {
	h.t.Helper()
	a := platform.New(h.env.Options)
	functions := map[string]api.Handler{}
	for _, r := range api.Routes() {
		functions[r.Function] = a.Function(r.Function)
	}
	gw, err := gateway.New(gateway.Config{Routes: api.Routes(), Functions: functions, Authorizer: a.Authorizer,
		AdminToken: adminToken, Now: h.clock.Now})
	if err != nil {
		h.t.Fatalf("gateway: %v", err)
	}
	other := *h
	other.srv = httptest.NewServer(gw)
	h.t.Cleanup(other.srv.Close)
	return &other
}

func modelBody(in, out any) map[string]any {
	return map[string]any{"input_per_million": in, "output_per_million": out, "context_window": 128000, "max_output_tokens": 16384}
}

// listAll follows the cursors of a model list and returns its entries.
func (h *harness) listAll(path, key string, limit int) []map[string]any {
	h.t.Helper()
	var all []map[string]any
	cursor := ""
	for range 50 {
		q := url.Values{"limit": {string(rune('0' + limit))}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		r := h.must(200, "GET", path+"?"+q.Encode(), key, nil)
		data, _ := r.body["data"].([]any)
		if len(data) > limit {
			h.t.Fatalf("page of %d, limit %d", len(data), limit)
		}
		for _, d := range data {
			all = append(all, d.(map[string]any))
		}
		if r.body["has_more"] != true {
			if r.body["next_cursor"] != nil {
				h.t.Fatalf("last page with a cursor: %s", r.raw)
			}
			return all
		}
		cursor = r.str("next_cursor")
	}
	h.t.Fatal("too many pages")
	return nil
}

func names(entries []map[string]any) []string {
	var out []string
	for _, e := range entries {
		out = append(out, e["model"].(string))
	}
	return out
}

func TestModelCatalogueAPI(t *testing.T) {
	h := newHarness(t, 0)
	other := h.second()
	starter := h.newTenant("small", "starter")
	pro := h.newTenant("big", "professional")

	// An override of a default price, seen at once by this and another process.
	r := h.must(200, "PUT", "/v1/admin/models/openai/gpt-4o-mini", adminToken, modelBody(0.2, 0.8))
	if r.str("model") != "openai/gpt-4o-mini" || r.str("provider") != "openai" || micros(t, r.body["input_per_million"]) != 200_000 ||
		micros(t, r.body["output_per_million"]) != 800_000 || len(r.body["tiers"].([]any)) != 3 {
		t.Fatalf("PUT answered %s", r.raw)
	}
	for _, p := range []*harness{h, other} {
		var found bool
		for _, e := range p.listAll("/v1/models", starter.key, 3) {
			if e["model"] == "openai/gpt-4o-mini" {
				found = true
				if micros(t, e["input_per_million"]) != 200_000 || micros(t, e["output_per_million"]) != 800_000 {
					t.Errorf("listed %v, want the new price", e)
				}
				if _, ok := e["tiers"]; ok {
					t.Errorf("tenant view shows tiers: %v", e)
				}
			}
		}
		if !found {
			t.Errorf("gpt-4o-mini missing from the starter list")
		}
	}

	// A new model for professional only: the starter list leaves it out, the
	// professional list and the admin list have it; no duplicates anywhere.
	body := modelBody("0.05", "0.1")
	body["tiers"] = []string{"professional"}
	h.must(200, "PUT", "/v1/admin/models/openai/llama-3.1-8b", adminToken, body)
	small := names(other.listAll("/v1/models", starter.key, 2))
	big := names(other.listAll("/v1/models", pro.key, 4))
	admin := other.listAll("/v1/admin/models", adminToken, 3)
	for name, l := range map[string][]string{"starter": small, "professional": big, "admin": names(admin)} {
		if !slices.IsSorted(l) || len(slices.Compact(slices.Clone(l))) != len(l) {
			t.Errorf("%s list %v: not sorted or has duplicates", name, l)
		}
	}
	if slices.Contains(small, "openai/llama-3.1-8b") || slices.Contains(small, "openai/gpt-4o") || !slices.Contains(big, "openai/llama-3.1-8b") {
		t.Errorf("starter %v, professional %v", small, big)
	}
	if len(admin) != len(bulkhead.DefaultCatalogue())+1 {
		t.Errorf("admin list has %d entries, want %d", len(admin), len(bulkhead.DefaultCatalogue())+1)
	}
	for _, e := range admin {
		if e["model"] == "openai/llama-3.1-8b" && (len(e["tiers"].([]any)) != 1 || e["tiers"].([]any)[0] != "professional") {
			t.Errorf("admin entry %v", e)
		}
	}

	// Bad input.
	for _, c := range []struct {
		name, path string
		body       any
		status     int
	}{
		{"unknown provider", "/v1/admin/models/azure/gpt-4o", modelBody(1, 1), 400},
		{"offline model id", "/v1/admin/models/offline/other", modelBody(1, 1), 400},
		{"zero price", "/v1/admin/models/openai/x", modelBody(0, 1), 400},
		{"negative price", "/v1/admin/models/openai/x", modelBody(1, -1), 400},
		{"price with 7 decimals", "/v1/admin/models/openai/x", modelBody(0.0000001, 1), 400},
		{"unknown tier", "/v1/admin/models/openai/x", map[string]any{"input_per_million": 1, "output_per_million": 1, "tiers": []string{"gold"}, "context_window": 10, "max_output_tokens": 5}, 400},
		{"output above window", "/v1/admin/models/openai/x", map[string]any{"input_per_million": 1, "output_per_million": 1, "context_window": 10, "max_output_tokens": 11}, 400},
		{"no window", "/v1/admin/models/openai/x", map[string]any{"input_per_million": 1, "output_per_million": 1, "max_output_tokens": 11}, 400},
		{"unknown field", "/v1/admin/models/openai/x", map[string]any{"input_per_million": 1, "output_per_million": 1, "context_window": 10, "max_output_tokens": 5, "colour": "red"}, 400},
	} {
		if r := h.do("PUT", c.path, adminToken, c.body); r.status != c.status || r.errCode() != "invalid_request" {
			t.Errorf("%s: %d %s", c.name, r.status, r.raw)
		}
	}
	if r := h.do("PUT", "/v1/admin/models/openai/x", starter.key, modelBody(1, 1)); r.status != 403 {
		t.Errorf("tenant key on the admin route: %d", r.status)
	}
	h.must(200, "PUT", "/v1/admin/models/offline/"+bulkhead.DefaultModel, adminToken, modelBody(3, 15))
	for _, c := range []string{"!!", "QUJDREVGR0g", ""} {
		if c == "" {
			// A cursor of the professional list does not continue the starter list.
			c = h.must(200, "GET", "/v1/models?limit=1", pro.key, nil).str("next_cursor")
		}
		if r := h.do("GET", "/v1/models?cursor="+url.QueryEscape(c), starter.key, nil); r.status != 400 || r.errCode() != "invalid_request" {
			t.Errorf("cursor %q: %d %s", c, r.status, r.raw)
		}
	}
}

func TestAgentModels(t *testing.T) {
	h := newHarness(t, 0)
	a := h.newTenant("acme", "starter")
	create := func(extra map[string]any) response {
		b := map[string]any{"name": "a", "system_prompt": "b"}
		for k, v := range extra {
			b[k] = v
		}
		return h.do("POST", "/v1/agents", a.key, b)
	}
	field := func(r response) string {
		e, _ := r.body["error"].(map[string]any)
		s, _ := e["field"].(string)
		return s
	}

	// Existing behaviour: no model names the offline model, no fallbacks.
	r := create(nil)
	if r.status != 201 || r.str("model") != bulkhead.DefaultModel || r.raw == "" || len(r.body["fallback_models"].([]any)) != 0 {
		t.Fatalf("plain agent: %d %s", r.status, r.raw)
	}
	id := r.str("agent_id")

	r = create(map[string]any{"model": "openai/gpt-4o-mini", "fallback_models": []string{"bedrock/amazon.nova-micro-v1:0", bulkhead.DefaultModel}})
	if r.status != 201 || r.str("model") != "openai/gpt-4o-mini" || !slices.Equal(anyStrings(r.body["fallback_models"]), []string{"bedrock/amazon.nova-micro-v1:0", bulkhead.DefaultModel}) {
		t.Fatalf("agent with fallbacks: %d %s", r.status, r.raw)
	}
	got := h.must(200, "GET", "/v1/agents/"+r.str("agent_id"), a.key, nil)
	if len(got.body["fallback_models"].([]any)) != 2 {
		t.Errorf("GET after create: %s", got.raw)
	}

	for _, c := range []struct {
		name   string
		body   map[string]any
		status int
		code   string
		field  string
	}{
		{"unknown model", map[string]any{"model": "openai/gpt-9"}, 400, "invalid_request", "model"},
		{"unparsable model", map[string]any{"model": "gpt-9"}, 400, "invalid_request", "model"},
		{"unknown fallback", map[string]any{"fallback_models": []string{"openai/gpt-4o-mini", "bedrock/nope"}}, 400, "invalid_request", "fallback_models[1]"},
		{"fallback equal to model", map[string]any{"fallback_models": []string{bulkhead.DefaultModel}}, 400, "invalid_request", "fallback_models[0]"},
		{"duplicate fallback", map[string]any{"fallback_models": []string{"openai/gpt-4o-mini", "openai/gpt-4o-mini"}}, 400, "invalid_request", "fallback_models[1]"},
		{"too many fallbacks", map[string]any{"fallback_models": []string{"openai/gpt-4o-mini", "openai/gpt-4.1-mini", "amazon.x", "y"}}, 400, "invalid_request", "fallback_models"},
		{"model of a higher tier", map[string]any{"model": "openai/gpt-4o"}, 403, "model_not_allowed", "model"},
		{"fallback of a higher tier", map[string]any{"fallback_models": []string{"openai/gpt-4o"}}, 403, "model_not_allowed", "fallback_models[0]"},
	} {
		for _, method := range []string{"POST", "PATCH"} {
			var r response
			if method == "POST" {
				r = create(c.body)
			} else {
				r = h.do("PATCH", "/v1/agents/"+id, a.key, c.body)
			}
			if r.status != c.status || r.errCode() != c.code || field(r) != c.field {
				t.Errorf("%s %s: %d %s", method, c.name, r.status, r.raw)
			}
		}
	}

	// A patch sets and clears the fallbacks.
	r = h.must(200, "PATCH", "/v1/agents/"+id, a.key, map[string]any{"fallback_models": []string{"openai/gpt-4o-mini"}})
	if !slices.Equal(anyStrings(r.body["fallback_models"]), []string{"openai/gpt-4o-mini"}) {
		t.Errorf("patched: %s", r.raw)
	}
	r = h.must(200, "PATCH", "/v1/agents/"+id, a.key, map[string]any{"fallback_models": []string{}})
	if len(r.body["fallback_models"].([]any)) != 0 {
		t.Errorf("cleared: %s", r.raw)
	}

	// Once the tier may use it, the model is accepted.
	h.must(200, "PATCH", "/v1/admin/tenants/"+a.id, adminToken, map[string]any{"tier": "professional"})
	h.must(200, "PATCH", "/v1/agents/"+id, a.key, map[string]any{"model": "openai/gpt-4o"})
}

func anyStrings(v any) []string {
	var out []string
	l, _ := v.([]any)
	for _, s := range l {
		out = append(out, s.(string))
	}
	return out
}
