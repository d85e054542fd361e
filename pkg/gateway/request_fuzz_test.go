package gateway_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/bulkhead-dev/bulkhead/pkg/api"
	"github.com/bulkhead-dev/bulkhead/pkg/bulkhead"
	"github.com/bulkhead-dev/bulkhead/pkg/gateway"
)

var fuzzMethods = []string{"GET", "POST", "PATCH", "DELETE", "PUT", "HEAD", "OPTIONS"}

// FuzzGatewayRequest sends arbitrary paths, queries, Authorization headers
// and bodies through the gateway over the real route table, with functions
// that always succeed: the gateway itself never answers 5xx, every refusal
// is the platform's error shape with the status of its code, and a function
// is only reached on a route whose path parameters are the request's own
// non-empty segments.
func FuzzGatewayRequest(f *testing.F) {
	fn := &recorder{}
	functions := map[string]api.Handler{}
	for _, r := range api.Routes() {
		functions[r.Function] = fn.Handle
	}
	clk := newClock(time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC))
	g := mustGateway(f, gateway.Config{Routes: api.Routes(), Functions: functions, Authorizer: newAuthz().Authorize,
		AdminToken: adminToken, Now: clk.Now, MaxBodyBytes: 1 << 10})
	seeds := []struct {
		method uint8
		target string
		auth   string
		body   []byte
	}{
		{0, "/health", "", nil},
		{0, "/v1/agents?limit=5&cursor=abc", "Bearer " + keyA, nil},
		{1, "/v1/agents", "Bearer " + keyA, []byte(`{"name":"a","system_prompt":"b"}`)},
		{1, "/v1/agents/agt_abcdefghijklmnop/execute", "bearer  " + keyB + " ", []byte("\xff\xfe")},
		{2, "/v1/admin/tenants/tn_abcdefghijklmnop", "Bearer " + adminToken, []byte(`{}`)},
		{3, "/v1/agents/a%2Fb", "Bearer " + keySuspended, nil},
		{4, "/v1/agents", "Bearer " + keyA, nil},
		{0, "/v1/agents/%zz", "Bearer " + keyA, nil},
		{0, "/v1/agents?%zz=1&a=%", "Basic " + keyA, nil},
		{0, "/v1/usage", "Bearer " + keyNoTier, nil},
		{0, "/v1/usage", "Bearer " + keyPrincipal, nil},
		{1, "/v1/keys", "Bearer " + keyA, bytes.Repeat([]byte("x"), 2000)},
		{0, "//v1//agents", "   ", nil},
		{5, "/v1/agents/", "Bearer " + keyElsewhere, nil},
	}
	for _, s := range seeds {
		f.Add(s.method, s.target, s.auth, s.body)
	}
	f.Fuzz(func(t *testing.T, m uint8, target, auth string, body []byte) {
		method := fuzzMethods[int(m)%len(fuzzMethods)]
		u, err := url.ParseRequestURI(target)
		if err != nil || !strings.HasPrefix(target, "/") || strings.ContainsAny(target, " \t\r\n#") {
			return // Go's server refuses these before any handler runs
		}
		req := &http.Request{Method: method, URL: u, RequestURI: target, Host: "localhost", Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
			Header: http.Header{}, Body: io.NopCloser(bytes.NewReader(body)), ContentLength: int64(len(body)), RemoteAddr: "192.0.2.1:1234"}
		if strings.Contains(auth, keyBoom) || strings.Contains(auth, keyBadCtx) {
			return // the fake authorizer's deliberate failures (503, 500)
		}
		if auth != "" && !strings.ContainsAny(auth, "\r\n\x00") {
			req.Header.Set("Authorization", auth)
		}
		before := fn.calls()
		// A minute refills the burst, and 1,440 a day stay within the daily quota:
		// the usage plan never decides the outcome.
		clk.Advance(time.Minute)
		rec := httptest.NewRecorder()
		g.ServeHTTP(rec, req)

		if rec.Code >= 500 {
			t.Fatalf("%s %q (auth %q): gateway answered %d %s", method, target, auth, rec.Code, rec.Body)
		}
		if fn.calls() == before {
			var e errorBody
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error.Code == "" || e.Error.Message == "" {
				t.Fatalf("%s %q: refusal %d is not the error shape: %s", method, target, rec.Code, rec.Body)
			}
			// A 405 and an authorizer's Deny (always 403, with the code the
			// authorizer chose) are API Gateway's own; the rest follow the table.
			if want := bulkhead.Code(e.Error.Code).HTTPStatus(); want != rec.Code && rec.Code != 405 && rec.Code != 403 {
				t.Fatalf("%s %q: status %d with code %q, whose status is %d", method, target, rec.Code, e.Error.Code, want)
			}
			return
		}
		ev := fn.last(t)
		var route *api.Route
		for _, r := range api.Routes() {
			if r.Method == ev.HTTPMethod && r.Resource == ev.Resource {
				route = &r
			}
		}
		if route == nil || ev.HTTPMethod != method {
			t.Fatalf("%s %q reached a function as %s %s, not a route", method, target, ev.HTTPMethod, ev.Resource)
		}
		segs := strings.Split(strings.Trim(route.Resource, "/"), "/")
		parts := strings.Split(strings.Trim(u.EscapedPath(), "/"), "/")
		for i, s := range segs {
			if name, ok := strings.CutPrefix(s, "{"); ok {
				name = strings.TrimSuffix(name, "}")
				want, _ := url.PathUnescape(parts[i])
				if v := ev.PathParameters[name]; v == "" || v != want {
					t.Fatalf("%s %q: parameter %s = %q, want the segment %q", method, target, name, v, want)
				}
			}
		}
	})
}
