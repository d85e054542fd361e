package gateway

import (
	"maps"
	"net/url"
	"strings"
	"testing"

	"github.com/bulkhead-dev/bulkhead/pkg/api"
)

// FuzzRouterMatch: any escaped path either matches no resource or matches
// one whose literal segments it spells and whose parameters are the decoded,
// non-empty segments in between; putting those parameters back into the
// template, escaped, matches the same resource with the same parameters.
func FuzzRouterMatch(f *testing.F) {
	rt, err := newRouter(api.Routes())
	if err != nil {
		f.Fatal(err)
	}
	for _, p := range []string{
		"/", "", "/health", "/v1/agents", "/v1/agents/", "/v1/agents//", "/v1/agents/agt_abcdefghijklmnop",
		"/v1/agents/agt_abcdefghijklmnop/execute", "/v1/agents/a%2Fb/execute", "/v1/agents/%zz", "/v1/agents/%",
		"/v1/agents/%2e%2e", "/v1/agents/../keys", "/v1/admin/tenants/tn_x/agents/agt_y", "/v1/billing/invoices/2026-11",
		"/v1/conversations/conv_x", "/v1/keys/key_x", "//v1/agents", "/v1/agents/%00", "/v1/agents/é", "/V1/AGENTS",
		"/v1/agents/%252F", "/v1/usage/records", "v1/agents",
	} {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, path string) {
		res, params := rt.match(path)
		if res == nil {
			if params != nil {
				t.Fatalf("match(%q): no resource but params %v", path, params)
			}
			return
		}
		// Rebuild the path from the template and check the literals agree.
		trimmed := path
		if len(trimmed) > 1 {
			trimmed = strings.TrimSuffix(trimmed, "/")
		}
		raw := strings.Split(strings.TrimPrefix(trimmed, "/"), "/")
		if trimmed == "/" {
			raw = nil
		}
		if len(raw) != len(res.segs) {
			t.Fatalf("match(%q) = %s: %d segments for a %d-segment template", path, res.template, len(raw), len(res.segs))
		}
		var rebuilt strings.Builder
		n := 0
		for i, s := range res.segs {
			rebuilt.WriteString("/")
			if s.param == "" {
				if d, _ := url.PathUnescape(raw[i]); d != s.literal {
					t.Fatalf("match(%q) = %s: segment %q is not the literal %q", path, res.template, raw[i], s.literal)
				}
				rebuilt.WriteString(url.PathEscape(s.literal))
				continue
			}
			n++
			v, ok := params[s.param]
			if !ok || v == "" {
				t.Fatalf("match(%q) = %s: parameter %s missing or empty in %v", path, res.template, s.param, params)
			}
			if d, _ := url.PathUnescape(raw[i]); d != v {
				t.Fatalf("match(%q): parameter %s = %q, want the decoded segment %q", path, s.param, v, d)
			}
			rebuilt.WriteString(url.PathEscape(v))
		}
		if len(params) != n {
			t.Fatalf("match(%q) = %s: params %v, want %d", path, res.template, params, n)
		}
		again, params2 := rt.match(rebuilt.String())
		if again != res || !maps.Equal(params, params2) {
			t.Fatalf("match(%q) = %s %v, but its rebuilt path %q matches %v %v", path, res.template, params, rebuilt.String(), again, params2)
		}
	})
}
