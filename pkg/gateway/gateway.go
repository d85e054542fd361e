package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/bulkhead-dev/bulkhead/pkg/api"
	"github.com/bulkhead-dev/bulkhead/pkg/bulkhead"
)

// DefaultMaxBodyBytes is API Gateway's REST payload limit (10 MiB).
const DefaultMaxBodyBytes int64 = 10 << 20

// DefaultStage is the stage name used when Config.Stage is empty.
const DefaultStage = "local"

// Config describes the API the gateway serves and the functions behind it.
type Config struct {
	// Routes is the route table, normally api.Routes().
	Routes []api.Route
	// Functions holds one handler per Route.Function name.
	Functions map[string]api.Handler
	// Streams holds the functions whose integration streams its response
	// (API Gateway's response transfer mode STREAM): the gateway invokes
	// these instead of Functions and flushes every write of their body.
	Streams map[string]api.StreamHandler
	// Authorizer is the Lambda TOKEN authorizer for api.AuthTenant routes;
	// required when any route uses it.
	Authorizer func(ctx context.Context, req events.APIGatewayCustomAuthorizerRequest) (events.APIGatewayCustomAuthorizerResponse, error)
	// AdminToken stands in for IAM auth on api.AuthAdmin routes; required
	// when any route uses it.
	AdminToken string
	// Stage is the API Gateway stage name; DefaultStage when empty.
	Stage string
	// Now is the clock for throttling, quotas and request times; time.Now when nil.
	Now func() time.Time
	// Logger receives the JSON access log and internal errors; discarded when nil.
	Logger *slog.Logger
	// MaxBodyBytes caps request bodies (413 beyond); DefaultMaxBodyBytes when zero.
	MaxBodyBytes int64
}

// Gateway is an http.Handler that does what API Gateway does in front of
// the platform's Lambda handlers: routing, authorization, usage-plan
// throttling, proxy event building and response mapping.
type Gateway struct {
	router     *router
	functions  map[string]api.Handler
	streams    map[string]api.StreamHandler
	authorizer func(context.Context, events.APIGatewayCustomAuthorizerRequest) (events.APIGatewayCustomAuthorizerResponse, error)
	adminToken string
	stage      string
	now        func() time.Time
	log        *slog.Logger
	maxBody    int64
	limiter    *limiter
}

var _ http.Handler = (*Gateway)(nil)

// New validates cfg and returns a gateway. It fails when a route names a
// function without a handler, when a template is malformed or ambiguous, or
// when tenant or admin routes exist without an authorizer or admin token.
func New(cfg Config) (*Gateway, error) {
	rt, err := newRouter(cfg.Routes)
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	var errs []error
	for _, r := range cfg.Routes {
		if cfg.Functions[r.Function] == nil && cfg.Streams[r.Function] == nil {
			errs = append(errs, fmt.Errorf("route %s %s: no handler for function %q", r.Method, r.Resource, r.Function))
		}
		switch r.Auth {
		case api.AuthNone:
		case api.AuthTenant:
			if cfg.Authorizer == nil {
				errs = append(errs, fmt.Errorf("route %s %s: tenant auth needs an Authorizer", r.Method, r.Resource))
			}
		case api.AuthAdmin:
			// An empty token would otherwise leave operator routes unreachable
			// (or, compared carelessly, open).
			if cfg.AdminToken == "" {
				errs = append(errs, fmt.Errorf("route %s %s: admin auth needs an AdminToken", r.Method, r.Resource))
			}
		default:
			errs = append(errs, fmt.Errorf("route %s %s: unknown auth %q", r.Method, r.Resource, r.Auth))
		}
	}
	if cfg.MaxBodyBytes < 0 {
		errs = append(errs, fmt.Errorf("MaxBodyBytes %d is negative", cfg.MaxBodyBytes))
	}
	if strings.Contains(cfg.Stage, "/") {
		errs = append(errs, fmt.Errorf("stage %q contains a slash", cfg.Stage))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	g := &Gateway{
		router:     rt,
		functions:  cfg.Functions,
		streams:    cfg.Streams,
		authorizer: cfg.Authorizer,
		adminToken: cfg.AdminToken,
		stage:      cfg.Stage,
		now:        cfg.Now,
		log:        cfg.Logger,
		maxBody:    cfg.MaxBodyBytes,
		limiter:    newLimiter(),
	}
	if g.stage == "" {
		g.stage = DefaultStage
	}
	if g.now == nil {
		g.now = time.Now
	}
	if g.log == nil {
		g.log = slog.New(slog.DiscardHandler)
	}
	if g.maxBody == 0 {
		g.maxBody = DefaultMaxBodyBytes
	}
	return g, nil
}

// ServeHTTP serves one request as API Gateway would, then writes one access
// log line (never the Authorization header, keys or bodies).
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Durations come from the real monotonic clock: an injected clock that
	// stands still would report zero.
	start := time.Now()
	now := g.now()
	requestID := newRequestID()
	w.Header().Set("X-Request-Id", requestID)

	route, tenantID, status := "", "", 0
	defer func() {
		attrs := []any{
			slog.String("request_id", requestID),
			slog.String("method", r.Method),
			slog.String("route", route),
			slog.Int("status", status),
			slog.Float64("duration_ms", float64(time.Since(start).Microseconds())/1000),
		}
		if tenantID != "" {
			attrs = append(attrs, slog.String("tenant_id", tenantID))
		}
		g.log.InfoContext(r.Context(), "request", attrs...)
	}()
	deny := func(rep *reply) {
		if rep.cause != nil {
			g.log.ErrorContext(r.Context(), "gateway error", "request_id", requestID, "route", route, "err", rep.cause)
		}
		status = rep.write(w)
	}

	res, params := g.router.match(r.URL.EscapedPath())
	if res == nil {
		deny(fail(bulkhead.NotFound, "No route for "+r.Method+" "+r.URL.Path))
		return
	}
	route = res.template
	rt, ok := res.methods[r.Method]
	if !ok {
		w.Header().Set("Allow", res.allow)
		deny(&reply{status: http.StatusMethodNotAllowed, code: "method_not_allowed",
			message: "Method " + r.Method + " not allowed on " + res.template})
		return
	}

	body, rep := g.readBody(r)
	if rep != nil {
		deny(rep)
		return
	}

	identity := events.APIGatewayRequestIdentity{SourceIP: sourceIP(r.RemoteAddr), UserAgent: r.UserAgent()}
	var authorizer map[string]any
	// The identity source is the single-value header, which holds the last value sent.
	authorization := lastValue(r.Header, "Authorization")
	switch rt.Auth {
	case api.AuthAdmin:
		if rep := g.checkAdmin(authorization); rep != nil {
			deny(rep)
			return
		}
		identity.AccountID = accountID
		identity.Caller = adminCaller
		identity.UserArn = adminUserArn
	case api.AuthTenant:
		auth, rep := g.authorizeTenant(r.Context(), authorization, g.methodARN(r.Method, r.URL.Path))
		if rep != nil {
			deny(rep)
			return
		}
		authorizer = auth.context
		tenantID, _ = auth.context[api.CtxTenantID].(string)
		if rep := g.throttle(auth, now); rep != nil {
			deny(rep)
			return
		}
		// With apiKeySource=AUTHORIZER, API Gateway reports the usage key as the caller's API key.
		identity.APIKey = auth.usageKey
	}

	event := g.buildEvent(r, res, params, body, requestID, now, identity, authorizer)
	// In AWS a Lambda invocation is not cancelled when the API client goes
	// away: the function runs to its end (or its timeout) and its response is
	// dropped. The local gateway behaves the same, so that leases, the
	// circuit breaker and Idempotency-Key results behave here as there.
	if h := g.streams[rt.Function]; h != nil {
		// A streaming handler gets the request's own context, to learn
		// that the client left; it runs the execution without it.
		sresp, err := g.invokeStream(r.Context(), h, event)
		if err == nil {
			status, err = writeStream(w, sresp, requestID)
		}
		if err != nil && status == 0 {
			deny(&reply{status: http.StatusBadGateway, code: string(bulkhead.Internal), message: "Internal server error",
				cause: fmt.Errorf("function %s: %w", rt.Function, err)})
		}
		return
	}
	resp, err := g.invoke(context.WithoutCancel(r.Context()), rt.Function, event)
	if err != nil {
		// The handler's error is a failed invocation, which API Gateway
		// reports as a bare 502; the detail stays in the log.
		deny(&reply{status: http.StatusBadGateway, code: string(bulkhead.Internal), message: "Internal server error",
			cause: fmt.Errorf("function %s: %w", rt.Function, err)})
		return
	}
	status, err = writeResponse(w, resp, requestID)
	if err != nil {
		deny(&reply{status: http.StatusBadGateway, code: string(bulkhead.Internal), message: "Internal server error",
			cause: fmt.Errorf("function %s: malformed proxy response: %w", rt.Function, err)})
	}
}

// readBody reads at most maxBody+1 bytes, so an oversized body costs a bounded read.
func (g *Gateway) readBody(r *http.Request) ([]byte, *reply) {
	tooLarge := fail(bulkhead.TooLarge, fmt.Sprintf("Request body exceeds %d bytes", g.maxBody))
	if r.ContentLength > g.maxBody {
		return nil, tooLarge
	}
	if r.Body == nil {
		return nil, nil
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, g.maxBody+1))
	if err != nil {
		return nil, fail(bulkhead.Invalid, "Could not read request body")
	}
	if int64(len(body)) > g.maxBody {
		return nil, tooLarge
	}
	return body, nil
}

// throttle applies the usage plan of the tenant's tier. Like API Gateway with
// apiKeyRequired, a request with no usage key or a key in no plan is refused.
func (g *Gateway) throttle(auth *tenantAuth, now time.Time) *reply {
	if auth.usageKey == "" {
		return fail(bulkhead.Forbidden, "Forbidden")
	}
	tier, ok := bulkhead.LookupTier(bulkhead.TierName(auth.tier))
	if !ok {
		rep := fail(bulkhead.Forbidden, "Forbidden")
		rep.cause = fmt.Errorf("authorizer context tier %q is not a known tier", auth.tier)
		return rep
	}
	if ref := g.limiter.allow(auth.usageKey, tier.Throttle, now); ref != nil {
		rep := fail(bulkhead.RateLimited, ref.message)
		rep.retryAfter = ref.retryAfter
		return rep
	}
	return nil
}

// methodARN is the ARN API Gateway passes to the authorizer for this call.
func (g *Gateway) methodARN(method, path string) string {
	return "arn:aws:execute-api:" + region + ":" + accountID + ":" + apiID + "/" + g.stage + "/" + method + "/" + strings.TrimPrefix(path, "/")
}

// invoke calls a function the way the Lambda runtime would: a panic is a
// failed invocation, not a crashed server.
func (g *Gateway) invoke(ctx context.Context, fn string, event events.APIGatewayProxyRequest) (resp events.APIGatewayProxyResponse, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v", p)
		}
	}()
	return g.functions[fn](ctx, event)
}

// invokeStream calls a streaming function; a panic is a failed invocation.
func (g *Gateway) invokeStream(ctx context.Context, h api.StreamHandler, event events.APIGatewayProxyRequest) (resp *events.LambdaFunctionURLStreamingResponse, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v", p)
		}
	}()
	resp, err = h(ctx, event)
	if err == nil && resp == nil {
		err = errors.New("nil streaming response")
	}
	return resp, err
}

// reply is a response the gateway makes itself, in the platform's error shape.
type reply struct {
	status     int
	code       string
	message    string
	retryAfter int
	// cause is logged, never sent.
	cause error
}

// fail builds a reply whose status comes from the platform's one code table.
func fail(code bulkhead.Code, message string) *reply {
	return &reply{status: code.HTTPStatus(), code: string(code), message: message}
}

func (rep *reply) write(w http.ResponseWriter) int {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	if rep.retryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(rep.retryAfter))
	}
	w.WriteHeader(rep.status)
	_, _ = w.Write(errorBody(rep.code, rep.message))
	return rep.status
}
