package api

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/bulkhead-dev/bulkhead/pkg/bulkhead"
	"github.com/bulkhead-dev/bulkhead/pkg/dynamo"
	"github.com/bulkhead-dev/bulkhead/pkg/metrics"
	"github.com/bulkhead-dev/bulkhead/pkg/runtime"
	"github.com/bulkhead-dev/bulkhead/pkg/s3store"
	"github.com/bulkhead-dev/bulkhead/pkg/ssrf"
	"github.com/bulkhead-dev/bulkhead/pkg/tracing"
)

// Config is what the handlers are built from; both the Lambda functions and
// the local platform build it once at start.
type Config struct {
	Store       *dynamo.Store
	Transcripts *s3store.Store
	Runner      *runtime.Runner
	// Now is the clock; time.Now when nil.
	Now    func() time.Time
	Logger *slog.Logger
	// Edge manages tenants' API Gateway keys in AWS; nil locally, where the
	// local gateway throttles by tenant id.
	Edge Edge
	// Metrics receives CloudWatch EMF lines in Lambda and feeds the
	// Prometheus registry locally; nil records none.
	Metrics *metrics.Emitter
	// ToolGuard checks tenant tools' URLs (nil: tools cannot be created).
	ToolGuard *ssrf.Guard
	// Sealer seals tool secrets at rest (nil: tools cannot be created).
	Sealer runtime.Sealer
}

// Edge is the tenants' API Gateway keys on their tiers' usage plans.
// Errors: NotFound, Conflict, Invalid, Unavailable.
type Edge interface {
	Onboard(ctx context.Context, tenantID string, tier bulkhead.TierName) (bulkhead.EdgeKey, error)
	ChangeTier(ctx context.Context, key bulkhead.EdgeKey, from, to bulkhead.TierName) (bulkhead.EdgeKey, error)
	Suspend(ctx context.Context, key bulkhead.EdgeKey) error
	Resume(ctx context.Context, key bulkhead.EdgeKey) error
	Offboard(ctx context.Context, key bulkhead.EdgeKey) error
}

// API serves every route of the route table.
type API struct {
	store       *dynamo.Store
	transcripts *s3store.Store
	runner      *runtime.Runner
	now         func() time.Time
	log         *slog.Logger
	endpoints   map[string]endpoint
	edge        Edge
	metrics     *metrics.Emitter
	guard       *ssrf.Guard
	sealer      runtime.Sealer
}

// request is an API Gateway event with what the handler learnt from it.
type request struct {
	events.APIGatewayProxyRequest
	log *slog.Logger
	// tenant is set on tenant routes, from the authorizer's context only.
	tenant string
	// idem is the request's claimed Idempotency-Key, if it sent one.
	idem *dynamo.IdemClaim
	// stream is set when the client asked for Server-Sent Events.
	stream *sseStream
}

// completion is the idempotent result to store with a handler's write:
// exactly the bytes the response will carry. Nil without a key.
func (r *request) completion(status int, body any) *dynamo.IdemCompletion {
	if r.idem == nil {
		return nil
	}
	b, err := json.Marshal(body)
	if err != nil {
		return nil
	}
	return &dynamo.IdemCompletion{Claim: *r.idem, Status: status, Body: string(b)}
}

type endpoint struct {
	fn   string
	auth Auth
	// idempotent endpoints honour Idempotency-Key.
	idempotent bool
	// status is the success status.
	status int
	serve  func(ctx context.Context, r *request) (any, error)
}

// New builds the API.
func New(cfg Config) *API {
	a := &API{store: cfg.Store, transcripts: cfg.Transcripts, runner: cfg.Runner, now: cfg.Now, log: cfg.Logger, edge: cfg.Edge, metrics: cfg.Metrics,
		guard: cfg.ToolGuard, sealer: cfg.Sealer}
	if a.now == nil {
		a.now = time.Now
	}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	a.endpoints = a.table()
	return a
}

func routeKey(method, resource string) string { return method + " " + resource }

func idempotent(e endpoint) endpoint { e.idempotent = true; return e }

// table binds each route of Routes to its code. A test checks that the two agree.
func (a *API) table() map[string]endpoint {
	ep := func(fn string, auth Auth, status int, serve func(context.Context, *request) (any, error)) endpoint {
		return endpoint{fn: fn, auth: auth, status: status, serve: serve}
	}
	ok, created := http.StatusOK, http.StatusCreated
	return map[string]endpoint{
		routeKey("GET", "/health"):     ep(FnHealth, AuthNone, ok, a.health),
		routeKey("GET", OpenAPIPath):   ep(FnHealth, AuthNone, ok, a.openAPIDocument),
		routeKey("GET", DocsPath):      ep(FnHealth, AuthNone, ok, a.docsPage),
		routeKey("GET", DocsStylePath): ep(FnHealth, AuthNone, ok, a.docsStyle),

		routeKey("POST", "/v1/agents"):                            idempotent(ep(FnAgents, AuthTenant, created, a.createAgent)),
		routeKey("GET", "/v1/agents"):                             ep(FnAgents, AuthTenant, ok, a.listAgents),
		routeKey("GET", "/v1/agents/{agent_id}"):                  ep(FnAgents, AuthTenant, ok, a.getAgent),
		routeKey("PATCH", "/v1/agents/{agent_id}"):                ep(FnAgents, AuthTenant, ok, a.patchAgent),
		routeKey("DELETE", "/v1/agents/{agent_id}"):               ep(FnAgents, AuthTenant, ok, a.deleteAgent),
		routeKey("GET", "/v1/conversations"):                      ep(FnAgents, AuthTenant, ok, a.listConversations),
		routeKey("GET", "/v1/conversations/{conversation_id}"):    ep(FnAgents, AuthTenant, ok, a.getConversation),
		routeKey("DELETE", "/v1/conversations/{conversation_id}"): ep(FnAgents, AuthTenant, ok, a.deleteConversation),
		routeKey("GET", "/v1/models"):                             ep(FnAgents, AuthTenant, ok, a.listModels),
		routeKey("POST", "/v1/tools"):                             idempotent(ep(FnAgents, AuthTenant, created, a.createTool)),
		routeKey("GET", "/v1/tools"):                              ep(FnAgents, AuthTenant, ok, a.listTools),
		routeKey("GET", "/v1/tools/{tool_id}"):                    ep(FnAgents, AuthTenant, ok, a.getTool),
		routeKey("PATCH", "/v1/tools/{tool_id}"):                  ep(FnAgents, AuthTenant, ok, a.patchTool),
		routeKey("DELETE", "/v1/tools/{tool_id}"):                 ep(FnAgents, AuthTenant, ok, a.deleteTool),
		routeKey("POST", "/v1/tools/{tool_id}/rotate-secret"):     ep(FnAgents, AuthTenant, ok, a.rotateToolSecret),
		routeKey("GET", "/v1/tickets"):                            ep(FnAgents, AuthTenant, ok, a.listTickets),
		routeKey("GET", "/v1/tickets/{ticket_id}"):                ep(FnAgents, AuthTenant, ok, a.getTicket),
		routeKey("PATCH", "/v1/tickets/{ticket_id}"):              ep(FnAgents, AuthTenant, ok, a.patchTicket),
		routeKey("PUT", "/v1/kb/documents/{doc_id}"):              ep(FnAgents, AuthTenant, ok, a.putKBDocument),
		routeKey("GET", "/v1/kb/documents"):                       ep(FnAgents, AuthTenant, ok, a.listKBDocuments),
		routeKey("GET", "/v1/kb/documents/{doc_id}"):              ep(FnAgents, AuthTenant, ok, a.getKBDocument),
		routeKey("DELETE", "/v1/kb/documents/{doc_id}"):           ep(FnAgents, AuthTenant, ok, a.deleteKBDocument),

		routeKey("POST", "/v1/agents/{agent_id}/execute"): idempotent(ep(FnExecute, AuthTenant, ok, a.execute)),

		routeKey("GET", "/v1/usage"):                              ep(FnUsage, AuthTenant, ok, a.usage),
		routeKey("GET", "/v1/billing/current"):                    ep(FnBilling, AuthTenant, ok, a.billingCurrent),
		routeKey("GET", "/v1/usage/records"):                      ep(FnUsage, AuthTenant, ok, a.usageRecords),
		routeKey("GET", "/v1/usage/daily"):                        ep(FnUsage, AuthTenant, ok, a.usageDaily),
		routeKey("GET", "/v1/executions/{execution_id}"):          ep(FnUsage, AuthTenant, ok, a.getExecution),
		routeKey("GET", "/v1/executions/{execution_id}/log"):      ep(FnUsage, AuthTenant, ok, a.getExecutionLog),
		routeKey("GET", "/v1/audit"):                              ep(FnUsage, AuthTenant, ok, a.listAudit),
		routeKey("GET", "/v1/admin/audit"):                        ep(FnAdmin, AuthAdmin, ok, a.adminAudit),
		routeKey("GET", "/v1/billing/invoices"):                   ep(FnBilling, AuthTenant, ok, a.listInvoices),
		routeKey("GET", "/v1/billing/invoices/{month}"):           ep(FnBilling, AuthTenant, ok, a.getInvoice),
		routeKey("GET", "/v1/admin/invoices"):                     ep(FnAdmin, AuthAdmin, ok, a.adminInvoices),
		routeKey("POST", "/v1/admin/billing/close"):               ep(FnAdmin, AuthAdmin, ok, a.adminCloseMonth),
		routeKey("PUT", "/v1/admin/models/{provider}/{model_id}"): ep(FnAdmin, AuthAdmin, ok, a.putModel),
		routeKey("GET", "/v1/admin/models"):                       ep(FnAdmin, AuthAdmin, ok, a.adminModels),

		routeKey("POST", "/v1/keys"):            idempotent(ep(FnKeys, AuthTenant, created, a.createKey)),
		routeKey("GET", "/v1/keys"):             ep(FnKeys, AuthTenant, ok, a.listKeys),
		routeKey("DELETE", "/v1/keys/{key_id}"): ep(FnKeys, AuthTenant, ok, a.revokeKey),

		routeKey("POST", "/v1/admin/tenants"):                                ep(FnAdmin, AuthAdmin, created, a.createTenant),
		routeKey("GET", "/v1/admin/tenants"):                                 ep(FnAdmin, AuthAdmin, ok, a.listTenants),
		routeKey("GET", "/v1/admin/tenants/{tenant_id}"):                     ep(FnAdmin, AuthAdmin, ok, a.getTenant),
		routeKey("PATCH", "/v1/admin/tenants/{tenant_id}"):                   ep(FnAdmin, AuthAdmin, ok, a.patchTenant),
		routeKey("PATCH", "/v1/admin/tenants/{tenant_id}/agents/{agent_id}"): ep(FnAdmin, AuthAdmin, ok, a.operatorAgentStatus),
	}
}

// Function returns the Lambda handler of one function: it serves that
// function's routes and answers 404 to any other.
func (a *API) Function(name string) Handler {
	return func(ctx context.Context, ev events.APIGatewayProxyRequest) (events.APIGatewayProxyResponse, error) {
		return a.serveEvent(ctx, name, ev, nil), nil
	}
}

func (a *API) dispatch(ctx context.Context, name string, r *request) events.APIGatewayProxyResponse {
	ep, ok := a.endpoints[routeKey(r.HTTPMethod, r.Resource)]
	if !ok || ep.fn != name {
		return respondError(r.log, bulkhead.Errorf(bulkhead.NotFound, "no route %s %s", r.HTTPMethod, r.Resource))
	}
	switch ep.auth {
	case AuthTenant:
		tid, _ := r.RequestContext.Authorizer[CtxTenantID].(string)
		if tid == "" {
			// API Gateway always runs the authorizer first; a missing
			// context means a misconfigured deployment: refuse.
			return respondError(r.log, bulkhead.Errorf(bulkhead.Unauthenticated, "missing tenant identity"))
		}
		r.tenant = tid
		r.log = r.log.With("tenant_id", tid)
		tracing.Annotate(ctx, "tenant_id", tid)
		kid, _ := r.RequestContext.Authorizer[CtxKeyID].(string)
		ctx = r.auditSource(ctx, bulkhead.Actor{Type: bulkhead.ActorKey, ID: kid})
	case AuthAdmin:
		if r.RequestContext.Identity.UserArn == "" {
			return respondError(r.log, bulkhead.Errorf(bulkhead.Forbidden, "operator routes need operator credentials"))
		}
		// The operator is the IAM principal that signed the request (the
		// local gateway names its admin local-admin).
		ctx = r.auditSource(ctx, bulkhead.Actor{Type: bulkhead.ActorOperator, ID: r.RequestContext.Identity.UserArn})
	}
	if ep.idempotent && header(r.APIGatewayProxyRequest, IdempotencyHeader) != "" {
		return a.serveIdempotent(ctx, ep, r)
	}
	body, err := ep.serve(ctx, r)
	if err != nil {
		a.countRefusal(ctx, r, err)
		return respondError(r.log, err)
	}
	if raw, ok := body.(rawAnswer); ok {
		return raw.response(ep.status)
	}
	return respond(ep.status, body)
}

// auditSource is ctx carrying who acts on this request, for the audit
// entries of the changes it makes.
func (r *request) auditSource(ctx context.Context, actor bulkhead.Actor) context.Context {
	return dynamo.WithAuditSource(ctx, dynamo.AuditSource{Actor: actor, RequestID: r.RequestContext.RequestID,
		SourceIP: r.RequestContext.Identity.SourceIP})
}

// countRefusal emits a quota violation metric for a refused execution and
// records the refusal in the tenant's audit log (one entry per quota and
// minute; a failure to record it is logged, the refusal stands).
func (a *API) countRefusal(ctx context.Context, r *request, err error) {
	e := bulkhead.AsError(err)
	if e == nil || (e.Code != bulkhead.QuotaExceeded && e.Code != bulkhead.RateLimited && e.Code != bulkhead.ConcurrencyLimited) {
		return
	}
	qt, _ := e.Fields["quota_type"].(string)
	a.metrics.Emit(map[string]float64{metrics.QuotaViolations: 1}, [][]string{{}, {"quota_type"}},
		map[string]any{"quota_type": qt, "tenant_id": r.tenant, "route": routeKey(r.HTTPMethod, r.Resource)})
	if r.tenant == "" {
		return
	}
	if qt == "" {
		qt = string(e.Code)
	}
	if err := a.tenantStore(r).RecordQuotaRefusal(dynamo.AsPlatform(ctx, bulkhead.PlatformAdmission), qt, a.now()); err != nil {
		r.log.Warn("record quota refusal", "quota_type", qt, "error", err)
	}
}

func (a *API) health(context.Context, *request) (any, error) {
	return map[string]string{"status": "healthy"}, nil
}

// tenantStore is the store bound to the request's tenant.
func (a *API) tenantStore(r *request) *dynamo.TenantStore { return a.store.Tenant(r.tenant) }

// transcriptStore is the transcript store bound to the request's tenant.
func (a *API) transcriptStore(r *request) *s3store.TenantStore { return a.transcripts.Tenant(r.tenant) }

// conversationTranscript is the transcript of conversation c (the head as
// read), its inline turns included.
func (a *API) conversationTranscript(r *request, c bulkhead.Conversation) *s3store.TenantStore {
	return a.transcriptStore(r).WithInline(a.tenantStore(r).TurnSource(c))
}

// Store is the platform store the API was built on (for operator tooling).
func (a *API) Store() *dynamo.Store { return a.store }

// Transcripts is the transcript store the API was built on.
func (a *API) Transcripts() *s3store.Store { return a.transcripts }
