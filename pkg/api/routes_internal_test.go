package api

import "testing"

// TestRouteTableMatchesEndpoints keeps the route table (what API Gateway and
// the local gateway expose) and the handlers' table (what the code serves) equal.
func TestRouteTableMatchesEndpoints(t *testing.T) {
	a := New(Config{})
	seen := map[string]bool{}
	for _, r := range Routes() {
		k := routeKey(r.Method, r.Resource)
		if seen[k] {
			t.Errorf("route %s listed twice", k)
		}
		seen[k] = true
		ep, ok := a.endpoints[k]
		if !ok {
			t.Errorf("route %s has no endpoint", k)
			continue
		}
		if ep.fn != r.Function || ep.auth != r.Auth {
			t.Errorf("route %s: table says %s/%s, endpoint says %s/%s", k, r.Function, r.Auth, ep.fn, ep.auth)
		}
	}
	for k := range a.endpoints {
		if !seen[k] {
			t.Errorf("endpoint %s is not in Routes()", k)
		}
	}
}
