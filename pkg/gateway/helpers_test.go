package gateway_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/bulkhead-dev/bulkhead/pkg/api"
	"github.com/bulkhead-dev/bulkhead/pkg/gateway"
)

// clock is an injected clock the tests move by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock(t time.Time) *clock { return &clock{t: t} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// recorder is a function that remembers the events it was invoked with.
type recorder struct {
	mu     sync.Mutex
	events []events.APIGatewayProxyRequest
	resp   events.APIGatewayProxyResponse
	err    error
}

func (rc *recorder) Handle(_ context.Context, ev events.APIGatewayProxyRequest) (events.APIGatewayProxyResponse, error) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.events = append(rc.events, ev)
	if rc.err != nil {
		return events.APIGatewayProxyResponse{}, rc.err
	}
	if rc.resp.StatusCode == 0 {
		return events.APIGatewayProxyResponse{StatusCode: 200, Body: `{"ok":true}`}, nil
	}
	return rc.resp, nil
}

func (rc *recorder) calls() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return len(rc.events)
}

func (rc *recorder) last(tb testing.TB) events.APIGatewayProxyRequest {
	tb.Helper()
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if len(rc.events) == 0 {
		tb.Fatal("function was not invoked")
	}
	return rc.events[len(rc.events)-1]
}

// tenant is what the fake authorizer knows about one API key.
type tenant struct {
	id, tier, usageKey string
}

// authz is a fake Lambda authorizer over a table of keys; it counts its calls
// so tests can tell whether API Gateway would have invoked it.
type authz struct {
	mu      sync.Mutex
	keys    map[string]tenant
	calls   atomic.Int64
	lastReq events.APIGatewayCustomAuthorizerRequest
}

const (
	keyA         = "bk_live_tenantA"
	keyB         = "bk_live_tenantB"
	keyPrincipal = "bk_live_noUsageKey"
	keySuspended = "bk_live_suspended"
	keyBoom      = "bk_live_boom"
	keyElsewhere = "bk_live_elsewhere"
	keyBadCtx    = "bk_live_badctx"
	keyAllowDeny = "bk_live_allowdeny"
	keyNoTier    = "bk_live_notier"
)

func newAuthz() *authz {
	return &authz{keys: map[string]tenant{
		keyA:         {"t-a", "starter", "apigw-key-a"},
		keyB:         {"t-b", "starter", "apigw-key-b"},
		keyPrincipal: {"t-p", "starter", ""},
		keyNoTier:    {"t-x", "platinum", "apigw-key-x"},
	}}
}

func (a *authz) revoke(key string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.keys, key)
}

func (a *authz) Authorize(_ context.Context, req events.APIGatewayCustomAuthorizerRequest) (events.APIGatewayCustomAuthorizerResponse, error) {
	a.calls.Add(1)
	a.mu.Lock()
	a.lastReq = req
	a.mu.Unlock()
	token, ok := strings.CutPrefix(req.AuthorizationToken, "Bearer ")
	if !ok {
		return events.APIGatewayCustomAuthorizerResponse{}, errors.New("Unauthorized")
	}
	switch token {
	case keySuspended:
		return policy("t-s", "Deny", req.MethodArn, map[string]any{"error_code": "tenant_suspended", "message": "Tenant t-s is suspended"}), nil
	case keyBoom:
		return events.APIGatewayCustomAuthorizerResponse{}, errors.New("dynamodb unavailable while checking " + req.AuthorizationToken)
	case keyElsewhere:
		return policy("t-e", "Allow", "arn:aws:execute-api:local:000000000000:local/test/GET/v1/other", map[string]any{"tier": "starter"}), nil
	case keyBadCtx:
		return policy("t-c", "Allow", req.MethodArn, map[string]any{"tier": "starter", "nested": map[string]any{"a": 1}}), nil
	case keyAllowDeny:
		resp := policy("t-d", "Allow", "arn:aws:execute-api:local:000000000000:local/*", map[string]any{"tier": "starter"})
		resp.PolicyDocument.Statement = append(resp.PolicyDocument.Statement, events.IAMPolicyStatement{
			Action: []string{"execute-api:Invoke"}, Effect: "Deny", Resource: []string{req.MethodArn},
		})
		return resp, nil
	}
	a.mu.Lock()
	t, ok := a.keys[token]
	a.mu.Unlock()
	if !ok {
		return events.APIGatewayCustomAuthorizerResponse{}, errors.New("Unauthorized")
	}
	// A wildcard resource, as a cached policy must cover every method.
	resp := policy(t.id, "Allow", "arn:aws:execute-api:local:000000000000:local/*/*", map[string]any{
		api.CtxTenantID: t.id, api.CtxTier: t.tier, api.CtxKeyID: "key-" + t.id, "seats": 3, "beta": true,
	})
	resp.UsageIdentifierKey = t.usageKey
	return resp, nil
}

func policy(principal, effect, resource string, ctx map[string]any) events.APIGatewayCustomAuthorizerResponse {
	return events.APIGatewayCustomAuthorizerResponse{
		PrincipalID: principal,
		PolicyDocument: events.APIGatewayCustomAuthorizerPolicy{
			Version: "2012-10-17",
			Statement: []events.IAMPolicyStatement{
				{Action: []string{"execute-api:Invoke"}, Effect: effect, Resource: []string{resource}},
			},
		},
		Context: ctx,
	}
}

// fixture is a gateway over a small route table whose functions all record.
type fixture struct {
	gw    *gateway.Gateway
	fn    *recorder
	authz *authz
	clock *clock
}

const adminToken = "admin-secret-token"

func route(method, resource, function string, auth api.Auth) api.Route {
	return api.Route{Method: method, Resource: resource, Function: function, Auth: auth}
}

func testRoutes() []api.Route {
	return []api.Route{
		{Method: "GET", Resource: "/health", Function: "health", Auth: api.AuthNone},
		{Method: "GET", Resource: "/v1/agents", Function: "fn", Auth: api.AuthTenant},
		{Method: "POST", Resource: "/v1/agents", Function: "fn", Auth: api.AuthTenant},
		{Method: "GET", Resource: "/v1/agents/{agent_id}", Function: "fn", Auth: api.AuthTenant},
		{Method: "POST", Resource: "/v1/agents/{agent_id}/execute", Function: "fn", Auth: api.AuthTenant},
		{Method: "GET", Resource: "/v1/admin/tenants/{tenant_id}", Function: "fn", Auth: api.AuthAdmin},
	}
}

func newFixture(tb testing.TB, mutate func(*gateway.Config)) *fixture {
	tb.Helper()
	f := &fixture{
		fn:    &recorder{},
		authz: newAuthz(),
		clock: newClock(time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)),
	}
	cfg := gateway.Config{
		Routes:     testRoutes(),
		Functions:  map[string]api.Handler{"fn": f.fn.Handle, "health": f.fn.Handle},
		Authorizer: f.authz.Authorize,
		AdminToken: adminToken,
		Stage:      "test",
		Now:        f.clock.Now,
	}
	if mutate != nil {
		mutate(&cfg)
	}
	f.gw = mustGateway(tb, cfg)
	return f
}

func mustGateway(tb testing.TB, cfg gateway.Config) *gateway.Gateway {
	tb.Helper()
	g, err := gateway.New(cfg)
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	return g
}

// do serves one request; header pairs are name, value, name, value...
func do(g http.Handler, method, target string, body io.Reader, header ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, target, body)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Add(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	g.ServeHTTP(rec, req)
	return rec
}

func bearer(key string) []string { return []string{"Authorization", "Bearer " + key} }

type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// mustError checks the status and the platform's error shape, and returns the body.
func mustError(tb testing.TB, rec *httptest.ResponseRecorder, status int, code string) errorBody {
	tb.Helper()
	if rec.Code != status {
		tb.Fatalf("status: got %d, want %d (body %s)", rec.Code, status, rec.Body)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		tb.Errorf("Content-Type: got %q, want application/json", ct)
	}
	var b errorBody
	if err := json.Unmarshal(rec.Body.Bytes(), &b); err != nil {
		tb.Fatalf("error body %q: %v", rec.Body, err)
	}
	if b.Error.Code != code {
		tb.Errorf("error code: got %q, want %q (message %q)", b.Error.Code, code, b.Error.Message)
	}
	if b.Error.Message == "" {
		tb.Errorf("error message is empty")
	}
	return b
}

func mustStatus(tb testing.TB, rec *httptest.ResponseRecorder, want int) {
	tb.Helper()
	if rec.Code != want {
		tb.Fatalf("status: got %d, want %d (body %s)", rec.Code, want, rec.Body)
	}
}

func newJSONLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
