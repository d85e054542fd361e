package api_test

import (
	"math/big"
	"net/url"
	"testing"

	"github.com/bulkhead-dev/bulkhead/pkg/bulkhead"
)

// queryRoute is a list or read route and the query parameter (beyond
// ?limit= and ?cursor=) that the fuzzer's third string fills.
type queryRoute struct {
	path, param string
	admin       bool
	// paged routes take ?limit= and ?cursor=.
	paged bool
}

// FuzzQueryParams sends arbitrary ?limit=, ?cursor= and the route's own
// parameter (agent_id, from/to, month) to every list and read route. Never a
// 5xx; a refusal is the error shape; an accepted ?limit= is an integer from 1
// to 100 and bounds the page; a page's next_cursor, sent back with the same
// parameters, is accepted.
func FuzzQueryParams(f *testing.F) {
	p := newFuzzPlatform(f)
	// Enough of everything for a page of one to have a next page.
	for range 2 {
		p.h.newAgent(p.tenant)
		p.h.newTenant("other", "starter")
		p.h.must(201, "POST", "/v1/keys", p.tenant.key, map[string]any{"name": "k"})
	}
	exec := p.h.must(200, "POST", "/v1/agents/"+p.agent+"/execute", p.tenant.key, map[string]any{"message": "one"})
	conv := exec.str("conversation_id")
	p.h.must(200, "POST", "/v1/agents/"+p.agent+"/execute", p.tenant.key, map[string]any{"message": "two", "conversation_id": conv})
	p.h.must(200, "POST", "/v1/agents/"+p.agent+"/execute", p.tenant.key, map[string]any{"message": "three"})
	routes := []queryRoute{
		{path: "/v1/agents", paged: true},
		{path: "/v1/conversations", param: "agent_id", paged: true},
		{path: "/v1/conversations/" + conv, paged: true},
		{path: "/v1/keys", paged: true},
		{path: "/v1/usage/records", param: "from", paged: true},
		{path: "/v1/usage/records", param: "to", paged: true},
		{path: "/v1/usage/records", param: "agent_id", paged: true},
		{path: "/v1/usage/daily", param: "month"},
		{path: "/v1/billing/invoices", paged: true},
		{path: "/v1/admin/tenants", admin: true, paged: true},
		{path: "/v1/admin/invoices", param: "month", admin: true, paged: true},
		{path: "/v1/billing/invoices/", param: "{path}"},
	}
	for i := range routes {
		f.Add(uint8(i), true, "1", "", p.agent)
	}
	for i, s := range []struct {
		limit, cursor, param string
	}{
		{"100", "", "2026-11-01"}, {"0", "!!", "2026-11-28T10:00:00Z"}, {"101", "Q09OViN4", "2026-11"}, {"+5", "QUdFTlQj", "2026-13"},
		{"007", "QUdFTlQj_w", "agt_aaaaaaaaaaaaaaaa"}, {"-1", "RVhFQyM", "0000-01-01"}, {"ten", "MTow", "9999-12-31T23:59:59Z"},
		{"", "VEVOQU5UIw", "x"}, {"99999999999999999999", "S0VZIw", "2026-11-28T10:00:00+99:00"},
	} {
		f.Add(uint8(i), s.limit != "", s.limit, s.cursor, s.param)
		f.Add(uint8(i+len(routes)/2), true, s.limit, s.cursor, s.param)
	}
	f.Fuzz(func(t *testing.T, which uint8, hasLimit bool, limit, cursor, param string) {
		rt := routes[int(which)%len(routes)]
		q := url.Values{}
		if rt.paged && hasLimit {
			q.Set("limit", limit)
		}
		if rt.paged && cursor != "" {
			q.Set("cursor", cursor)
		}
		path := rt.path
		switch rt.param {
		case "":
		case "{path}":
			if param == "" {
				return
			}
			path += url.PathEscape(param)
		default:
			if param != "" {
				q.Set(rt.param, param)
			}
		}
		key := p.tenant.key
		if rt.admin {
			key = adminToken
		}
		target := path
		if len(q) > 0 {
			target += "?" + q.Encode()
		}
		r := p.send(t, "GET", target, key, nil)
		if !answered(t, "GET "+target, r, 200) || !rt.paged {
			return
		}
		want := bulkhead.DefaultPageSize
		if hasLimit {
			n, ok := new(big.Int).SetString(limit, 10)
			if !ok || !n.IsInt64() || n.Int64() < 1 || n.Int64() > bulkhead.MaxPageSize {
				t.Fatalf("GET %s: limit %q was accepted", target, limit)
			}
			want = int(n.Int64())
		}
		items, _ := r.body["data"].([]any)
		if items == nil {
			items, _ = r.body["messages"].([]any)
		}
		if len(items) > want {
			t.Fatalf("GET %s: %d items for a limit of %d", target, len(items), want)
		}
		next, _ := r.body["next_cursor"].(string)
		if next == "" {
			return
		}
		q.Set("cursor", next)
		if again := p.send(t, "GET", path+"?"+q.Encode(), key, nil); again.status != 200 {
			t.Fatalf("GET %s: its next_cursor %q was refused: %d %s", target, next, again.status, again.raw)
		}
	})
}
