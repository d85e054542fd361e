package gateway_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/bulkhead-dev/bulkhead/pkg/api"
	"github.com/bulkhead-dev/bulkhead/pkg/gateway"
)

func TestNewValidates(t *testing.T) {
	fn := (&recorder{}).Handle
	authorizer := newAuthz().Authorize
	tests := []struct {
		name    string
		cfg     gateway.Config
		wantErr string // "" means New must succeed
	}{
		{
			name: "the real route table with every function",
			cfg: gateway.Config{
				Routes: api.Routes(),
				Functions: map[string]api.Handler{
					api.FnHealth: fn, api.FnAgents: fn, api.FnExecute: fn, api.FnUsage: fn,
					api.FnBilling: fn, api.FnKeys: fn, api.FnAdmin: fn,
				},
				Authorizer: authorizer, AdminToken: "t",
			},
		},
		{
			name:    "function without a handler",
			cfg:     gateway.Config{Routes: []api.Route{route("GET", "/health", "health", api.AuthNone)}},
			wantErr: `no handler for function "health"`,
		},
		{
			name: "tenant route without authorizer",
			cfg: gateway.Config{Routes: []api.Route{route("GET", "/v1/usage", "fn", api.AuthTenant)},
				Functions: map[string]api.Handler{"fn": fn}},
			wantErr: "needs an Authorizer",
		},
		{
			name: "admin route without token",
			cfg: gateway.Config{Routes: []api.Route{route("GET", "/v1/admin/tenants", "fn", api.AuthAdmin)},
				Functions: map[string]api.Handler{"fn": fn}},
			wantErr: "needs an AdminToken",
		},
		{
			name: "unknown auth",
			cfg: gateway.Config{Routes: []api.Route{route("GET", "/x", "fn", api.Auth("iam"))},
				Functions: map[string]api.Handler{"fn": fn}},
			wantErr: `unknown auth "iam"`,
		},
		{
			name: "duplicate route",
			cfg: gateway.Config{Routes: []api.Route{route("GET", "/x", "fn", api.AuthNone), route("GET", "/x", "fn", api.AuthNone)},
				Functions: map[string]api.Handler{"fn": fn}},
			wantErr: "defined twice",
		},
		{
			name: "sibling parameters with different names",
			cfg: gateway.Config{Routes: []api.Route{route("GET", "/a/{x}", "fn", api.AuthNone), route("GET", "/a/{y}/b", "fn", api.AuthNone)},
				Functions: map[string]api.Handler{"fn": fn}},
			wantErr: "conflicts with",
		},
		{
			name: "malformed parameter",
			cfg: gateway.Config{Routes: []api.Route{route("GET", "/a/{x", "fn", api.AuthNone)},
				Functions: map[string]api.Handler{"fn": fn}},
			wantErr: "malformed",
		},
		{
			name: "greedy parameter",
			cfg: gateway.Config{Routes: []api.Route{route("GET", "/a/{proxy+}", "fn", api.AuthNone)},
				Functions: map[string]api.Handler{"fn": fn}},
			wantErr: "greedy",
		},
		{
			name: "relative resource",
			cfg: gateway.Config{Routes: []api.Route{route("GET", "a", "fn", api.AuthNone)},
				Functions: map[string]api.Handler{"fn": fn}},
			wantErr: "must start with /",
		},
		{
			name: "lower-case method",
			cfg: gateway.Config{Routes: []api.Route{route("get", "/a", "fn", api.AuthNone)},
				Functions: map[string]api.Handler{"fn": fn}},
			wantErr: "upper case",
		},
		{
			name: "negative body limit",
			cfg: gateway.Config{Routes: []api.Route{route("GET", "/a", "fn", api.AuthNone)},
				Functions: map[string]api.Handler{"fn": fn}, MaxBodyBytes: -1},
			wantErr: "negative",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := gateway.New(tt.cfg)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("New: got error %v, want none", err)
			case tt.wantErr != "" && err == nil:
				t.Fatalf("New: got no error, want one containing %q", tt.wantErr)
			case tt.wantErr != "" && !strings.Contains(err.Error(), tt.wantErr):
				t.Fatalf("New: got error %q, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

func TestRouting(t *testing.T) {
	fn := &recorder{}
	routes := []api.Route{
		route("GET", "/", "fn", api.AuthNone),
		route("GET", "/v1/agents", "fn", api.AuthNone),
		route("POST", "/v1/agents", "fn", api.AuthNone),
		route("GET", "/v1/agents/{agent_id}", "fn", api.AuthNone),
		route("DELETE", "/v1/agents/{agent_id}", "fn", api.AuthNone),
		route("GET", "/v1/agents/search", "fn", api.AuthNone),
		route("GET", "/v1/agents/search/recent", "fn", api.AuthNone),
		route("GET", "/v1/agents/{agent_id}/runs", "fn", api.AuthNone),
	}
	g := mustGateway(t, gateway.Config{Routes: routes, Functions: map[string]api.Handler{"fn": fn.Handle}})
	tests := []struct {
		method, path string
		wantStatus   int
		wantResource string
		wantParams   map[string]string
		wantAllow    string
	}{
		{"GET", "/", 200, "/", nil, ""},
		{"GET", "/v1/agents", 200, "/v1/agents", nil, ""},
		{"GET", "/v1/agents/", 200, "/v1/agents", nil, ""},
		{"POST", "/v1/agents", 200, "/v1/agents", nil, ""},
		{"GET", "/v1/agents/search", 200, "/v1/agents/search", nil, ""},
		{"GET", "/v1/agents/ag-1", 200, "/v1/agents/{agent_id}", map[string]string{"agent_id": "ag-1"}, ""},
		{"DELETE", "/v1/agents/ag-1", 200, "/v1/agents/{agent_id}", map[string]string{"agent_id": "ag-1"}, ""},
		{"GET", "/v1/agents/a%20b", 200, "/v1/agents/{agent_id}", map[string]string{"agent_id": "a b"}, ""},
		{"GET", "/v1/agents/a%2Fb", 200, "/v1/agents/{agent_id}", map[string]string{"agent_id": "a/b"}, ""},
		{"GET", "/v1/agents/search/recent", 200, "/v1/agents/search/recent", nil, ""},
		// The literal branch has no /runs, so the parameter branch serves it.
		{"GET", "/v1/agents/search/runs", 200, "/v1/agents/{agent_id}/runs", map[string]string{"agent_id": "search"}, ""},
		{"GET", "/v1/nope", 404, "", nil, ""},
		{"GET", "/v1/agents//runs", 404, "", nil, ""},
		{"GET", "/v1/agents/ag-1/runs/x", 404, "", nil, ""},
		{"PUT", "/v1/agents", 405, "", nil, "GET, POST"},
		// The literal resource is chosen first, and it has no POST.
		{"POST", "/v1/agents/search", 405, "", nil, "GET"},
		{"PATCH", "/v1/agents/ag-1", 405, "", nil, "DELETE, GET"},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			before := fn.calls()
			rec := do(g, tt.method, tt.path, nil)
			switch tt.wantStatus {
			case 404:
				mustError(t, rec, 404, "not_found")
			case 405:
				mustError(t, rec, 405, "method_not_allowed")
				if got := rec.Header().Get("Allow"); got != tt.wantAllow {
					t.Errorf("Allow: got %q, want %q", got, tt.wantAllow)
				}
			default:
				mustStatus(t, rec, tt.wantStatus)
			}
			if tt.wantStatus != 200 {
				if fn.calls() != before {
					t.Errorf("function invoked for a %d", tt.wantStatus)
				}
				return
			}
			ev := fn.last(t)
			if ev.Resource != tt.wantResource {
				t.Errorf("Resource: got %q, want %q", ev.Resource, tt.wantResource)
			}
			if !reflect.DeepEqual(ev.PathParameters, tt.wantParams) {
				t.Errorf("PathParameters: got %#v, want %#v", ev.PathParameters, tt.wantParams)
			}
		})
	}
}

func TestEventFields(t *testing.T) {
	f := newFixture(t, nil)
	req := httptest.NewRequest("POST", "/v1/agents/ag-1/execute?x=1&x=2&y=hello%20world&empty", strings.NewReader(`{"input":"hi"}`))
	req.RemoteAddr = "203.0.113.7:54321"
	req.Header.Set("Authorization", "Bearer "+keyA)
	req.Header.Set("User-Agent", "bulkhead-sdk/1.0")
	req.Header.Set("Content-Type", "application/json")
	req.Header.Add("X-Multi", "first")
	req.Header.Add("X-Multi", "second")
	rec := httptest.NewRecorder()
	f.gw.ServeHTTP(rec, req)
	mustStatus(t, rec, 200)
	ev := f.fn.last(t)

	checks := []struct {
		field     string
		got, want any
	}{
		{"Resource", ev.Resource, "/v1/agents/{agent_id}/execute"},
		{"Path", ev.Path, "/v1/agents/ag-1/execute"},
		{"HTTPMethod", ev.HTTPMethod, "POST"},
		{"PathParameters", ev.PathParameters, map[string]string{"agent_id": "ag-1"}},
		{"QueryStringParameters", ev.QueryStringParameters, map[string]string{"x": "2", "y": "hello world", "empty": ""}},
		{"MultiValueQueryStringParameters", ev.MultiValueQueryStringParameters,
			map[string][]string{"x": {"1", "2"}, "y": {"hello world"}, "empty": {""}}},
		{"Headers[X-Multi]", ev.Headers["X-Multi"], "second"},
		{"MultiValueHeaders[X-Multi]", ev.MultiValueHeaders["X-Multi"], []string{"first", "second"}},
		{"Headers[Content-Type]", ev.Headers["Content-Type"], "application/json"},
		{"Headers[Host]", ev.Headers["Host"], "example.com"},
		{"Headers[X-Forwarded-For]", ev.Headers["X-Forwarded-For"], "203.0.113.7"},
		{"StageVariables", ev.StageVariables, map[string]string(nil)},
		{"Body", ev.Body, `{"input":"hi"}`},
		{"IsBase64Encoded", ev.IsBase64Encoded, false},
		{"RequestContext.AccountID", ev.RequestContext.AccountID, "000000000000"},
		{"RequestContext.APIID", ev.RequestContext.APIID, "local"},
		{"RequestContext.Stage", ev.RequestContext.Stage, "test"},
		{"RequestContext.ResourcePath", ev.RequestContext.ResourcePath, "/v1/agents/{agent_id}/execute"},
		{"RequestContext.HTTPMethod", ev.RequestContext.HTTPMethod, "POST"},
		{"RequestContext.Path", ev.RequestContext.Path, "/test/v1/agents/ag-1/execute"},
		{"RequestContext.Protocol", ev.RequestContext.Protocol, "HTTP/1.1"},
		{"RequestContext.RequestTime", ev.RequestContext.RequestTime, "28/Nov/2026:12:00:00 +0000"},
		{"RequestContext.RequestTimeEpoch", ev.RequestContext.RequestTimeEpoch, f.clock.Now().UnixMilli()},
		{"RequestContext.RequestID", ev.RequestContext.RequestID, rec.Header().Get("X-Request-Id")},
		{"Identity.SourceIP", ev.RequestContext.Identity.SourceIP, "203.0.113.7"},
		{"Identity.UserAgent", ev.RequestContext.Identity.UserAgent, "bulkhead-sdk/1.0"},
		{"Identity.APIKey", ev.RequestContext.Identity.APIKey, "apigw-key-a"},
		{"Identity.UserArn", ev.RequestContext.Identity.UserArn, ""},
		// Context values arrive stringified, as API Gateway delivers them.
		{"RequestContext.Authorizer", ev.RequestContext.Authorizer, map[string]any{
			"principalId": "t-a", "tenant_id": "t-a", "tier": "starter", "key_id": "key-t-a", "seats": "3", "beta": "true",
		}},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s: got %#v, want %#v", c.field, c.got, c.want)
		}
	}
	if id := ev.RequestContext.RequestID; len(id) != 36 || strings.Count(id, "-") != 4 {
		t.Errorf("RequestID: got %q, want a UUID", id)
	}
	// The authorizer's verdict on this request is what reached the handler.
	if got, want := f.authz.lastReq.MethodArn, "arn:aws:execute-api:local:000000000000:local/test/POST/v1/agents/ag-1/execute"; got != want {
		t.Errorf("MethodArn: got %q, want %q", got, want)
	}
	if got, want := f.authz.lastReq.AuthorizationToken, "Bearer "+keyA; got != want {
		t.Errorf("AuthorizationToken: got %q, want %q", got, want)
	}
	if got := f.authz.lastReq.Type; got != "TOKEN" {
		t.Errorf("authorizer Type: got %q, want TOKEN", got)
	}
}

func TestEventEmptyMapsAreNil(t *testing.T) {
	f := newFixture(t, nil)
	mustStatus(t, do(f.gw, "GET", "/health", nil), 200)
	ev := f.fn.last(t)
	if ev.QueryStringParameters != nil || ev.MultiValueQueryStringParameters != nil {
		t.Errorf("query maps: got %#v / %#v, want nil", ev.QueryStringParameters, ev.MultiValueQueryStringParameters)
	}
	if ev.PathParameters != nil {
		t.Errorf("PathParameters: got %#v, want nil", ev.PathParameters)
	}
	if ev.RequestContext.Authorizer != nil {
		t.Errorf("Authorizer on an open route: got %#v, want nil", ev.RequestContext.Authorizer)
	}
	if ev.Body != "" || ev.IsBase64Encoded {
		t.Errorf("Body: got %q (base64 %v), want empty", ev.Body, ev.IsBase64Encoded)
	}
}

func TestBinaryBodyIsBase64(t *testing.T) {
	f := newFixture(t, nil)
	raw := []byte{0xff, 0xfe, 0x00, 'a'}
	mustStatus(t, do(f.gw, "POST", "/v1/agents", bytes.NewReader(raw), bearer(keyA)...), 200)
	ev := f.fn.last(t)
	if !ev.IsBase64Encoded {
		t.Fatalf("IsBase64Encoded: got false, want true")
	}
	got, err := base64.StdEncoding.DecodeString(ev.Body)
	if err != nil || !bytes.Equal(got, raw) {
		t.Errorf("Body: got %q (decode error %v), want base64 of %v", ev.Body, err, raw)
	}
}

func TestTenantAuth(t *testing.T) {
	tests := []struct {
		name        string
		header      []string
		wantStatus  int
		wantCode    string
		wantMessage string
		wantCalls   int64
	}{
		{"no header", nil, 401, "unauthenticated", "Invalid or missing API key", 0},
		{"empty header", []string{"Authorization", ""}, 401, "unauthenticated", "Invalid or missing API key", 0},
		{"unknown key", bearer("bk_live_nobody"), 401, "unauthenticated", "Invalid or missing API key", 1},
		{"not a bearer", []string{"Authorization", "Basic Zm9v"}, 401, "unauthenticated", "Invalid or missing API key", 1},
		{"deny with context", bearer(keySuspended), 403, "tenant_suspended", "Tenant t-s is suspended", 1},
		{"allow for another method only", bearer(keyElsewhere), 403, "forbidden", "Forbidden", 1},
		{"deny beats allow", bearer(keyAllowDeny), 403, "forbidden", "Forbidden", 1},
		{"authorizer failure", bearer(keyBoom), 503, "unavailable", "Service temporarily unavailable; retry", 1},
		{"object in context", bearer(keyBadCtx), 500, "internal", "Internal server error", 1},
		{"tier in no usage plan", bearer(keyNoTier), 403, "forbidden", "Forbidden", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, nil)
			rec := do(f.gw, "GET", "/v1/agents", nil, tt.header...)
			b := mustError(t, rec, tt.wantStatus, tt.wantCode)
			if b.Error.Message != tt.wantMessage {
				t.Errorf("message: got %q, want %q", b.Error.Message, tt.wantMessage)
			}
			if got := f.authz.calls.Load(); got != tt.wantCalls {
				t.Errorf("authorizer calls: got %d, want %d", got, tt.wantCalls)
			}
			if f.fn.calls() != 0 {
				t.Errorf("function invoked for a %d", rec.Code)
			}
		})
	}
}

func TestAuthorizerRunsOnEveryRequest(t *testing.T) {
	f := newFixture(t, nil)
	for i := range 5 {
		mustStatus(t, do(f.gw, "GET", "/v1/agents", nil, bearer(keyA)...), 200)
		if got, want := f.authz.calls.Load(), int64(i+1); got != want {
			t.Fatalf("after %d requests: authorizer calls got %d, want %d", i+1, got, want)
		}
	}
	// No cache: a revoked key is refused on the very next request.
	f.authz.revoke(keyA)
	mustError(t, do(f.gw, "GET", "/v1/agents", nil, bearer(keyA)...), 401, "unauthenticated")
}

func TestAdminAuth(t *testing.T) {
	tests := []struct {
		name       string
		header     []string
		wantStatus int
		wantCode   string
	}{
		{"missing", nil, 401, "unauthenticated"},
		{"wrong token", []string{"Authorization", "Bearer nope"}, 403, "forbidden"},
		{"token prefix", []string{"Authorization", "Bearer " + adminToken[:5]}, 403, "forbidden"},
		{"wrong scheme", []string{"Authorization", "Basic " + adminToken}, 403, "forbidden"},
		{"tenant key", bearer(keyA), 403, "forbidden"},
		{"good", []string{"Authorization", "Bearer " + adminToken}, 200, ""},
		{"good, scheme in lower case", []string{"Authorization", "bearer " + adminToken}, 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, nil)
			rec := do(f.gw, "GET", "/v1/admin/tenants/t-a", nil, tt.header...)
			if f.authz.calls.Load() != 0 {
				t.Errorf("the tenant authorizer ran for an admin route")
			}
			if tt.wantStatus != 200 {
				mustError(t, rec, tt.wantStatus, tt.wantCode)
				if f.fn.calls() != 0 {
					t.Errorf("function invoked for a %d", rec.Code)
				}
				return
			}
			mustStatus(t, rec, 200)
			id := f.fn.last(t).RequestContext.Identity
			if id.UserArn != "local-admin" || id.Caller != "local-admin" {
				t.Errorf("identity: got UserArn %q Caller %q, want the local admin", id.UserArn, id.Caller)
			}
		})
	}
}

func TestThrottleBurstAndRefill(t *testing.T) {
	// starter: 50/s, burst 100.
	f := newFixture(t, nil)
	get := func() *httptest.ResponseRecorder { return do(f.gw, "GET", "/v1/agents", nil, bearer(keyA)...) }
	for i := range 100 {
		if rec := get(); rec.Code != 200 {
			t.Fatalf("request %d of the burst: got %d, want 200", i+1, rec.Code)
		}
	}
	rec := get()
	b := mustError(t, rec, 429, "rate_limited")
	if want := "Too many requests: usage plan throttle (50/s, burst 100)"; b.Error.Message != want {
		t.Errorf("message: got %q, want %q", b.Error.Message, want)
	}
	if got := rec.Header().Get("Retry-After"); got != "1" {
		t.Errorf("Retry-After: got %q, want 1", got)
	}

	// One token comes back every 1/50 s, and not a nanosecond earlier.
	f.clock.Advance(20*time.Millisecond - time.Nanosecond)
	mustError(t, get(), 429, "rate_limited")
	f.clock.Advance(time.Nanosecond)
	mustStatus(t, get(), 200)
	mustError(t, get(), 429, "rate_limited")

	// A long pause refills to the burst, not beyond.
	f.clock.Advance(time.Hour)
	for i := range 100 {
		if rec := get(); rec.Code != 200 {
			t.Fatalf("request %d after refill: got %d, want 200", i+1, rec.Code)
		}
	}
	mustError(t, get(), 429, "rate_limited")
	if got, want := f.fn.calls(), 201; got != want {
		t.Errorf("function calls: got %d, want %d (throttled requests must not reach it)", got, want)
	}
}

func TestDailyQuotaResetsAtUTCMidnight(t *testing.T) {
	// starter: 20,000 requests a day. Start late in the UTC day and pace at
	// the plan's rate so only the quota can refuse.
	f := newFixture(t, nil)
	f.clock.Set(time.Date(2026, 11, 28, 23, 50, 0, 0, time.UTC))
	get := func() *httptest.ResponseRecorder { return do(f.gw, "GET", "/v1/agents", nil, bearer(keyA)...) }
	for i := range 20_000 {
		if i > 0 && i%50 == 0 {
			f.clock.Advance(time.Second)
		}
		if rec := get(); rec.Code != 200 {
			t.Fatalf("request %d: got %d %s, want 200", i+1, rec.Code, rec.Body)
		}
	}
	// 23:50:00 + 399 s = 23:56:39; the next UTC midnight is 201 s away.
	rec := get()
	b := mustError(t, rec, 429, "rate_limited")
	if want := "Daily request quota exceeded (20000)"; b.Error.Message != want {
		t.Errorf("message: got %q, want %q", b.Error.Message, want)
	}
	if got := rec.Header().Get("Retry-After"); got != "201" {
		t.Errorf("Retry-After: got %q, want 201", got)
	}
	// Another tenant's quota is its own.
	mustStatus(t, do(f.gw, "GET", "/v1/agents", nil, bearer(keyB)...), 200)

	f.clock.Set(time.Date(2026, 11, 28, 23, 59, 59, 999_000_000, time.UTC))
	rec = get()
	mustError(t, rec, 429, "rate_limited")
	if got := rec.Header().Get("Retry-After"); got != "1" {
		t.Errorf("Retry-After a millisecond before midnight: got %q, want 1", got)
	}
	f.clock.Set(time.Date(2026, 11, 29, 0, 0, 0, 0, time.UTC))
	mustStatus(t, get(), 200)
}

func TestThrottleIsPerKey(t *testing.T) {
	f := newFixture(t, nil)
	for range 100 {
		do(f.gw, "GET", "/v1/agents", nil, bearer(keyA)...)
	}
	mustError(t, do(f.gw, "GET", "/v1/agents", nil, bearer(keyA)...), 429, "rate_limited")
	// Tenant B, and a tenant keyed by its principal (no usage key), are untouched.
	mustStatus(t, do(f.gw, "GET", "/v1/agents", nil, bearer(keyB)...), 200)
	for i := range 100 {
		if rec := do(f.gw, "GET", "/v1/agents", nil, bearer(keyPrincipal)...); rec.Code != 200 {
			t.Fatalf("principal-keyed request %d: got %d, want 200", i+1, rec.Code)
		}
	}
	mustError(t, do(f.gw, "GET", "/v1/agents", nil, bearer(keyPrincipal)...), 429, "rate_limited")
	// Open and admin routes have no usage plan.
	mustStatus(t, do(f.gw, "GET", "/health", nil), 200)
}

func TestFunctionErrorIs502(t *testing.T) {
	tests := []struct {
		name string
		fn   api.Handler
	}{
		{"error", func(context.Context, events.APIGatewayProxyRequest) (events.APIGatewayProxyResponse, error) {
			return events.APIGatewayProxyResponse{}, errors.New("table missing")
		}},
		{"panic", func(context.Context, events.APIGatewayProxyRequest) (events.APIGatewayProxyResponse, error) {
			panic("nil map")
		}},
		{"no status code", func(context.Context, events.APIGatewayProxyRequest) (events.APIGatewayProxyResponse, error) {
			return events.APIGatewayProxyResponse{Body: "{}"}, nil
		}},
		{"bad base64", func(context.Context, events.APIGatewayProxyRequest) (events.APIGatewayProxyResponse, error) {
			return events.APIGatewayProxyResponse{StatusCode: 200, Body: "%%%", IsBase64Encoded: true}, nil
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			f := newFixture(t, func(c *gateway.Config) {
				c.Functions["health"] = tt.fn
				c.Logger = newJSONLogger(&logs)
			})
			rec := do(f.gw, "GET", "/health", nil)
			b := mustError(t, rec, 502, "internal")
			if b.Error.Message != "Internal server error" {
				t.Errorf("message: got %q, want %q", b.Error.Message, "Internal server error")
			}
			if !strings.Contains(logs.String(), `"level":"ERROR"`) {
				t.Errorf("the failure was not logged: %s", logs.String())
			}
		})
	}
}

func TestResponseMapping(t *testing.T) {
	f := newFixture(t, nil)
	f.fn.resp = events.APIGatewayProxyResponse{
		StatusCode:        201,
		Headers:           map[string]string{"X-One": "1", "Set-Cookie": "ignored=1", "Content-Length": "999"},
		MultiValueHeaders: map[string][]string{"Set-Cookie": {"a=1", "b=2"}},
		Body:              base64.StdEncoding.EncodeToString([]byte{0, 1, 2}),
		IsBase64Encoded:   true,
	}
	rec := do(f.gw, "GET", "/health", nil)
	mustStatus(t, rec, 201)
	if got := rec.Body.Bytes(); !bytes.Equal(got, []byte{0, 1, 2}) {
		t.Errorf("body: got %v, want decoded base64 [0 1 2]", got)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"X-One", rec.Header().Values("X-One"), []string{"1"}},
		{"Set-Cookie", rec.Header().Values("Set-Cookie"), []string{"a=1", "b=2"}},
		{"Content-Type", rec.Header().Get("Content-Type"), "application/json"},
		{"Content-Length", rec.Header().Get("Content-Length"), ""},
		{"X-Request-Id set", rec.Header().Get("X-Request-Id") != "", true},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s: got %#v, want %#v", c.name, c.got, c.want)
		}
	}
}

func TestBodyLimit(t *testing.T) {
	tests := []struct {
		name       string
		body       string
		wantStatus int
	}{
		{"at the limit", strings.Repeat("x", 16), 200},
		{"one byte over", strings.Repeat("x", 17), 413},
		{"far over", strings.Repeat("x", 1<<20), 413},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, func(c *gateway.Config) { c.MaxBodyBytes = 16 })
			rec := do(f.gw, "POST", "/v1/agents", strings.NewReader(tt.body), bearer(keyA)...)
			if tt.wantStatus == 413 {
				mustError(t, rec, 413, "too_large")
				if f.fn.calls() != 0 {
					t.Errorf("function invoked for an oversized body")
				}
				return
			}
			mustStatus(t, rec, tt.wantStatus)
		})
	}

	// A body with no Content-Length (chunked) is cut off all the same.
	f := newFixture(t, func(c *gateway.Config) { c.MaxBodyBytes = 16 })
	req := httptest.NewRequest("POST", "/v1/agents", strings.NewReader(strings.Repeat("x", 17)))
	req.Header.Set("Authorization", "Bearer "+keyA)
	req.ContentLength = -1
	rec := httptest.NewRecorder()
	f.gw.ServeHTTP(rec, req)
	mustError(t, rec, 413, "too_large")
}

// TestClientDisconnectDoesNotCancelFunction: as in AWS, where a Lambda
// invocation runs on when the API client goes away, the function's context
// is not cancelled by the client's; the request's values still reach it.
func TestClientDisconnectDoesNotCancelFunction(t *testing.T) {
	type key struct{}
	var sawCancel, sawValue bool
	f := newFixture(t, func(c *gateway.Config) {
		c.Functions["health"] = func(ctx context.Context, _ events.APIGatewayProxyRequest) (events.APIGatewayProxyResponse, error) {
			sawCancel, sawValue = ctx.Err() != nil, ctx.Value(key{}) == "v"
			return events.APIGatewayProxyResponse{StatusCode: 200, Body: "{}"}, nil
		}
	})
	ctx, cancel := context.WithCancel(context.WithValue(context.Background(), key{}, "v"))
	cancel() // the client went away
	req := httptest.NewRequest("GET", "/health", nil).WithContext(ctx)
	f.gw.ServeHTTP(httptest.NewRecorder(), req)
	if sawCancel {
		t.Errorf("function context: cancelled with the client's; want it to run on, as a Lambda invocation does")
	}
	if !sawValue {
		t.Errorf("function context: the request's values did not reach it")
	}
}

func TestAccessLog(t *testing.T) {
	var logs bytes.Buffer
	f := newFixture(t, func(c *gateway.Config) { c.Logger = newJSONLogger(&logs) })
	rec := do(f.gw, "POST", "/v1/agents/ag-1/execute", strings.NewReader(`{"secret":"body-secret"}`), bearer(keyA)...)
	mustStatus(t, rec, 200)
	do(f.gw, "GET", "/v1/agents", nil, bearer(keyBoom)...) // an authorizer error that quotes the key

	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	var access map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &access); err != nil {
		t.Fatalf("first log line %q: %v", lines[0], err)
	}
	want := map[string]any{
		"msg": "request", "request_id": rec.Header().Get("X-Request-Id"), "method": "POST",
		"route": "/v1/agents/{agent_id}/execute", "status": float64(200), "tenant_id": "t-a",
	}
	for k, v := range want {
		if access[k] != v {
			t.Errorf("access log %s: got %#v, want %#v", k, access[k], v)
		}
	}
	if _, ok := access["duration_ms"].(float64); !ok {
		t.Errorf("access log duration_ms: got %#v, want a number", access["duration_ms"])
	}
	for _, secret := range []string{keyA, keyBoom, "apigw-key-a", "body-secret", "Authorization", "Bearer"} {
		if strings.Contains(logs.String(), secret) {
			t.Errorf("log contains %q:\n%s", secret, logs.String())
		}
	}
	if !strings.Contains(logs.String(), "[REDACTED]") {
		t.Errorf("authorizer error not logged with the key redacted:\n%s", logs.String())
	}
}

func TestConcurrentRequests(t *testing.T) {
	// With the clock standing still, exactly the burst gets through, however
	// the requests interleave, and another tenant is not affected.
	f := newFixture(t, nil)
	const n = 300
	var wg sync.WaitGroup
	statuses := make(chan int, 2*n)
	for i := range 2 * n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			key := keyA
			if i%2 == 1 {
				key = keyB
			}
			target := "/v1/agents/ag-" + strconv.Itoa(i) + "/execute"
			statuses <- do(f.gw, "POST", target, strings.NewReader("{}"), bearer(key)...).Code
		}()
	}
	wg.Wait()
	close(statuses)
	counts := map[int]int{}
	for s := range statuses {
		counts[s]++
	}
	if counts[200] != 200 || counts[429] != 400 || len(counts) != 2 {
		t.Errorf("statuses: got %v, want 200 OK (burst 100 per tenant, two tenants) and 400 429s", counts)
	}
	if got := f.fn.calls(); got != 200 {
		t.Errorf("function calls: got %d, want 200", got)
	}
}

func TestOverHTTP(t *testing.T) {
	// Through a real server: the request id header, Host and the listener port.
	f := newFixture(t, nil)
	srv := httptest.NewServer(f.gw)
	defer srv.Close()
	req, err := http.NewRequest("GET", srv.URL+"/v1/agents?limit=5", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+keyA)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status: got %d, want 200", resp.StatusCode)
	}
	ev := f.fn.last(t)
	if got, want := ev.RequestContext.RequestID, resp.Header.Get("X-Request-Id"); got != want || got == "" {
		t.Errorf("request id: event %q, header %q, want equal and non-empty", got, want)
	}
	host := strings.TrimPrefix(srv.URL, "http://")
	if ev.Headers["Host"] != host {
		t.Errorf("Host header: got %q, want %q", ev.Headers["Host"], host)
	}
	if _, port, _ := strings.Cut(host, ":"); ev.Headers["X-Forwarded-Port"] != port {
		t.Errorf("X-Forwarded-Port: got %q, want %q", ev.Headers["X-Forwarded-Port"], port)
	}
	if ev.Headers["Authorization"] != "Bearer "+keyA {
		t.Errorf("Authorization header: got %q, want it passed through like API Gateway", ev.Headers["Authorization"])
	}
}
