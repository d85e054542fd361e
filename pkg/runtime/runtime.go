package runtime

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bulkhead-dev/bulkhead/pkg/bulkhead"
	"github.com/bulkhead-dev/bulkhead/pkg/dynamo"
	"github.com/bulkhead-dev/bulkhead/pkg/mcptool"
	"github.com/bulkhead-dev/bulkhead/pkg/metrics"
	"github.com/bulkhead-dev/bulkhead/pkg/s3store"
	"github.com/bulkhead-dev/bulkhead/pkg/tracing"
)

// Defaults for a Runner's zero fields.
const (
	DefaultWindow          = 10
	DefaultMaxOutputTokens = 1024
	// DefaultLeaseMargin is how much longer than its wall time an
	// execution's lease lasts, so a live execution never outlasts it.
	DefaultLeaseMargin = time.Minute
	settleTimeout      = 30 * time.Second
	// settleAttemptTimeout bounds one settlement transaction (the SDK's own
	// retries included) or one transcript write: a guard against a hung
	// connection, not a latency target.
	settleAttemptTimeout = 5 * time.Minute
	// settleReserve is the time kept, under a host deadline, to write the
	// transcript turn and settle after the model loop.
	settleReserve = 5 * time.Second
	// maxToolResultBytes bounds what one tool result adds to the transcript.
	maxToolResultBytes = 8192
	// spendCheckEvery bounds how often one process reads a tenant's spend
	// velocity when nothing failed.
	spendCheckEvery = 5 * time.Second
)

// Runner executes agents. It is safe for concurrent use.
type Runner struct {
	// Model is the offline provider's model (when Providers has none).
	Model bulkhead.Model
	// Providers are the model clients by provider name (bulkhead.Provider*).
	Providers map[string]bulkhead.Model
	// Catalogue prices models and says who may use them; the shipped
	// catalogue when nil.
	Catalogue Catalogue
	// ModelCacheTTL is how long the Catalogue's answer for a model (its
	// entry, or that it is not in the catalogue) is kept in this process
	// and used by later executions without reading the Catalogue again
	// (DefaultModelCacheTTL, 60 s, when zero; negative reads it at every
	// execution). Errors are not kept. So an operator's change of a price,
	// tiers or limits applies to the executions this process admits up to
	// ModelCacheTTL later; the catalogue lists show it at once.
	ModelCacheTTL time.Duration
	// ModelAttempts, CircuitFailures and CircuitOpen tune model retries and
	// the per-model circuits (the Default* constants when zero).
	ModelAttempts   int
	CircuitFailures int
	CircuitOpen     time.Duration
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Window is how many earlier turns the model sees.
	Window int
	// LeaseMargin is added to an execution's wall time to make its lease.
	LeaseMargin time.Duration
	// MaxOutputTokens caps each model reply.
	MaxOutputTokens int64
	Logger          *slog.Logger
	// Metrics receives the TokensOverReserved metric (nil writes nothing).
	Metrics *metrics.Emitter
	// ToolHTTP calls tenants' HTTP tools; it must be the SSRF guard's client
	// (tenant tools do not run when nil).
	ToolHTTP *http.Client
	// MCP lists and calls tenants' MCP servers through the SSRF guard's
	// client (not run when nil).
	MCP *mcptool.Client
	// Sealer opens tool secrets sealed at rest.
	Sealer Sealer

	spendChecks sync.Map // tenant id -> time.Time of the last spend check

	// life ends when the platform abandons its running executions (Abandon);
	// inflight counts the admitted executions not yet settled.
	lifeOnce sync.Once
	life     context.Context
	abandon  context.CancelFunc
	inflight sync.WaitGroup
	running  atomic.Int64
	circuits circuits
	models   modelCache
	schemas  schemaCache
	mcpLists mcpCache
}

// errAbandoned is the cause of a model loop cut short by Abandon.
var errAbandoned = errors.New("execution abandoned: the platform is stopping")

// errClientGone is the cause of a streamed execution stopped because its
// client went away.
var errClientGone = errors.New("execution stopped: the streaming client went away")

func (r *Runner) lifetime() context.Context {
	r.lifeOnce.Do(func() { r.life, r.abandon = context.WithCancel(context.Background()) })
	return r.life
}

// Abandon stops every running execution at once, as a platform that must stop
// now does: each ends with status "stopped", is charged for what the model
// reported, and settles as usual (Wait waits for that). New executions are
// still admitted; stop accepting requests first.
func (r *Runner) Abandon() {
	r.lifetime()
	r.abandon()
}

// Running is how many admitted executions have not settled yet.
func (r *Runner) Running() int { return int(r.running.Load()) }

// Wait blocks until every admitted execution has settled, or ctx ends.
func (r *Runner) Wait(ctx context.Context) error {
	done := make(chan struct{})
	go func() { r.inflight.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Request is one execution asked for by a tenant.
type Request struct {
	AgentID        string
	Message        string
	ConversationID string // "" starts a new conversation
	// Depth is how many agent invocations led to this one (0 for a call
	// from outside).
	Depth int64
	// Idem, when set, is the request's claimed Idempotency-Key: the response
	// it renders is stored in the settlement's transaction, with the charge.
	Idem *Idempotency
	// ExecutionID and StartedAt, when set, name the execution before it
	// runs (an Idempotency-Key claim points at its usage record).
	ExecutionID string
	StartedAt   time.Time
	// OnEvent, when set, is told of the execution's progress as it runs (a
	// streamed execution): text deltas, tool calls and tool results, in
	// order. It is called from the execution's goroutine and must not block
	// for long; an execution whose client is gone keeps running.
	OnEvent func(Event)
	// OnAdmitted, when set, is called once the execution is admitted (its
	// quotas reserved), before the model runs: a streamed response starts
	// there, so refusals before it are ordinary HTTP errors.
	OnAdmitted func()
	// ClientGone, when set, is closed when a streaming client has gone
	// away: the execution then stops at once (status "stopped") and is
	// settled and charged for what the model generated.
	ClientGone <-chan struct{}
}

// Event kinds told to Request.OnEvent.
const (
	EventDelta      = "delta"
	EventToolCall   = "tool_call"
	EventToolResult = "tool_result"
)

// Event is one step of a running execution's progress.
type Event struct {
	Kind string
	// Text is a delta's text.
	Text string
	// Call is the tool call (EventToolCall) or the call answered (EventToolResult).
	Call bulkhead.ToolCall
	// Result is a tool's output (EventToolResult).
	Result string
}

// Idempotency ties an execution to its caller's Idempotency-Key.
type Idempotency struct {
	Claim dynamo.IdemClaim
	// Render turns the execution's outcome into the response to replay.
	Render func(Result, error) (status int, body string)
}

// Result is a finished execution.
type Result struct {
	Execution bulkhead.Execution
	Reply     string
	Steps     int64
}

func (r *Runner) now() time.Time {
	if r.Now != nil {
		return r.Now().UTC()
	}
	return time.Now().UTC()
}

func (r *Runner) logger() *slog.Logger {
	if r.Logger != nil {
		return r.Logger
	}
	return slog.New(slog.DiscardHandler)
}

// stores is the tenant-bound storage an execution uses.
type stores struct {
	ts *dynamo.TenantStore
	tr *s3store.TenantStore
}

// Execute runs one turn of an agent for the tenant the stores are bound to.
// It reserves the most the execution may use before the model runs, so the
// tenant's monthly limits hold under any concurrency, and it records what was
// used exactly once, also when the model fails, the transcript cannot be
// written, or the client goes away. Runaway guards (steps, tokens, wall time)
// end an execution with a status instead of an error. Errors: NotFound
// (agent, conversation), Invalid, Conflict (agent disabled, conversation
// busy), Forbidden (tenant suspended), DepthExceeded, RateLimited,
// QuotaExceeded, ConcurrencyLimited, CircuitOpen, ModelError, Unavailable.
//
// An execution belongs to the platform, not to the caller's connection: ctx's
// cancellation is ignored (in AWS a Lambda invocation is not cancelled when
// the API client disconnects, and locally it must not be either), while its
// deadline, if any (a Lambda function's timeout), ends the model loop early
// enough to settle.
func (r *Runner) Execute(ctx context.Context, ts *dynamo.TenantStore, tr *s3store.TenantStore, req Request) (Result, error) {
	deadline, _ := ctx.Deadline()
	return r.execute(context.WithoutCancel(ctx), stores{ts, tr}, req, deadline)
}

func (r *Runner) execute(ctx context.Context, st stores, req Request, deadline time.Time) (Result, error) {
	ec, err := st.ts.LoadExecution(ctx, req.AgentID, req.ConversationID)
	if err != nil {
		return Result{}, err
	}
	agent, tenant := ec.Agent, ec.Tenant
	if tenant.Status != bulkhead.TenantActive {
		return Result{}, bulkhead.Errorf(bulkhead.Forbidden, "Tenant is suspended")
	}
	if agent.Status != bulkhead.AgentActive {
		return Result{}, bulkhead.Errorf(bulkhead.Conflict, "agent %s is disabled", agent.ID)
	}
	chain, err := r.chain(ctx, agent, tenant.Tier)
	if err != nil {
		return Result{}, err
	}
	if ok, wait := r.available(chain); !ok {
		// Every model's circuit is open: say so at once, before anything
		// is reserved, instead of waiting on a provider that is down.
		return Result{}, unavailable(agent.ModelNames(), wait, nil)
	}
	tier, _ := bulkhead.LookupTier(tenant.Tier)
	limits := agent.Limits.Effective(tier)
	if req.Depth >= limits.MaxDepth {
		return Result{}, &bulkhead.Error{Code: bulkhead.DepthExceeded, Message: fmt.Sprintf("Agent call depth limit reached (%d)", limits.MaxDepth),
			Fields: map[string]any{"limit": limits.MaxDepth, "depth": req.Depth + 1}}
	}

	var (
		history []bulkhead.Message
		claim   *dynamo.ConversationClaim
		convID  = req.ConversationID
		turn    = int64(1)
		created time.Time
	)
	if c := ec.Conversation; c != nil {
		if c.AgentID != agent.ID {
			return Result{}, bulkhead.Errorf(bulkhead.Invalid, "conversation %s belongs to another agent", convID)
		}
		if history, _, err = st.tr.WithInline(st.ts.TurnSource(*c)).RecentMessages(ctx, convID, c.Turns, r.window()); err != nil {
			return Result{}, fmt.Errorf("read conversation %s: %w", convID, err)
		}
		claim = &dynamo.ConversationClaim{ID: convID, Turns: c.Turns}
		turn = c.Turns + 1
		created = c.CreatedAt
	} else {
		convID = bulkhead.NewID("conv")
	}

	targets, err := r.resolveTools(ctx, st.ts, agent.Tools, false)
	if err != nil {
		return Result{}, err
	}
	tools := toolSet{targets: targets, specs: specs(agent.Tools, targets)}
	user := bulkhead.Message{Role: bulkhead.RoleUser, Content: req.Message, ExecutionID: ""}
	first := bulkhead.ModelRequest{Model: agent.Model, SystemPrompt: agent.SystemPrompt, Messages: append(history, user), Tools: tools.specs}
	if in := countInput(chain, first); in >= limits.MaxTokens {
		// It could never run: refuse before anything is counted.
		return Result{}, &bulkhead.Error{Code: bulkhead.TooLarge,
			Message: fmt.Sprintf("message and context need %d input tokens; the agent's max_tokens is %d", in, limits.MaxTokens),
			Fields:  map[string]any{"input_tokens": in, "max_tokens": limits.MaxTokens}}
	}

	started, execID := r.now(), bulkhead.NewID("exec")
	if req.ExecutionID != "" {
		// Named before it ran (its Idempotency-Key points at its record).
		started, execID = req.StartedAt.UTC(), req.ExecutionID
	}
	exec := bulkhead.Execution{ID: execID, AgentID: agent.ID, ConversationID: convID, Model: agent.Model, StartedAt: started}
	reserve := dynamo.Reservation{
		Tokens: limits.MaxTokens,
		Spend:  maxSpend(chain, limits.MaxTokens, limits.MaxSteps),
		Bytes:  reserveBytes(req.Message, limits),
	}
	lease := limits.MaxWallTime + r.leaseMargin()
	adm := dynamo.Admission{ExecutionID: exec.ID, AgentID: agent.ID, Conversation: claim, ConversationID: convID, Turn: turn,
		Now: started, Lease: lease, Quota: tenant.Quota(), Reserve: reserve, Counter: &ec.Counter}
	admitStart := time.Now()
	err = tracing.Span(ctx, "admit", func(ctx context.Context) error { return r.admit(ctx, st, adm) })
	// The breaker's state as this admission read it, with the admission's latency.
	r.Metrics.Emit(map[string]float64{
		metrics.AdmissionLatency: float64(time.Since(admitStart).Microseconds()) / 1000,
		metrics.BreakerState:     metrics.BreakerStateValue(ec.Breaker.State(started)),
	}, [][]string{{}}, map[string]any{"tenant_id": tenant.ID, "admitted": err == nil})
	if err != nil {
		return Result{}, err
	}
	r.inflight.Add(1)
	r.running.Add(1)
	defer func() { r.running.Add(-1); r.inflight.Done() }()
	if req.OnAdmitted != nil {
		req.OnAdmitted()
	}
	if created.IsZero() {
		created = started
	}

	// From here on the execution is admitted: whatever happens, it settles.
	settleCtx, cancel := context.WithTimeout(ctx, settleTimeout)
	defer cancel()
	// settle records the execution; outcome is what the caller will be told
	// (the reply and steps, or the error), stored with an idempotency key.
	var loop loopResult
	settle := func(t *dynamo.SettledTurn, outcome error) error {
		exec.FinishedAt = r.now()
		s := dynamo.Settlement{Execution: exec, Reserved: reserve, Turn: t, Claimed: claim != nil, Tier: tenant.Tier,
			Log: append(loop.log[:len(loop.log):len(loop.log)], endStep(exec.Status, outcome, loop.sinceStart()))}
		if req.Idem != nil {
			status, body := req.Idem.Render(Result{Execution: exec, Reply: loop.reply, Steps: loop.steps}, outcome)
			s.Idem = &dynamo.IdemCompletion{Claim: req.Idem.Claim, Status: status, Body: body}
		}
		err := tracing.Span(settleCtx, "persist", func(ctx context.Context) error { return settleRetrying(ctx, st.ts, s) })
		if err == nil {
			r.countSettled(tenant.ID, exec)
		}
		r.watchBreaker(settleCtx, st.ts, tenant, tenant.Breaker(), ec.Breaker, exec)
		return err
	}

	user.CreatedAt, user.ExecutionID = started, exec.ID
	loop = r.run(ctx, st, &exec, agent, tools, chain, limits, reserve.Tokens, req, append(history, user), deadline)
	if loop.err != nil {
		exec.Status = cmp.Or(loop.status, bulkhead.ExecFailed)
		if serr := settle(nil, loop.err); serr != nil {
			r.logger().ErrorContext(ctx, "settle failed execution", "execution_id", exec.ID, "error", serr)
		}
		return Result{}, loop.err
	}
	exec.Status = loop.status
	if len(loop.added) == 0 {
		// Nothing came back from the model: no turn to write.
		if err := settle(nil, nil); err != nil {
			return Result{}, err
		}
		return Result{Execution: exec, Steps: loop.steps}, nil
	}

	if claim != nil && !r.now().Before(started.Add(lease)) {
		// The claim has lapsed (a stalled process): another execution may own
		// the conversation now, so the turn is not written; the tokens are.
		exec.Status = bulkhead.ExecFailed
		lapsed := bulkhead.Errorf(bulkhead.Conflict, "execution outlived its claim on conversation %s; the reply was metered but not saved", convID)
		if serr := settle(nil, lapsed); serr != nil {
			r.logger().ErrorContext(ctx, "settle execution after lapsed claim", "execution_id", exec.ID, "error", serr)
		}
		return Result{}, lapsed
	}
	turnMsgs := append([]bulkhead.Message{user}, loop.added...)
	settled := &dynamo.SettledTurn{New: claim == nil, AgentID: agent.ID, CreatedAt: created, Number: turn}
	body, err := json.Marshal(turnMsgs)
	switch {
	case err != nil:
	case len(body) <= dynamo.InlineTurnBytes:
		// A small turn is written with the settlement, in its transaction.
		settled.Messages, settled.Bytes = body, int64(len(body))
	default:
		// A large one goes to its object first; the settlement counts it.
		writeCtx, cancelWrite := context.WithTimeout(ctx, settleAttemptTimeout)
		settled.Bytes, err = st.tr.AppendTurnJSON(writeCtx, convID, turn, body)
		cancelWrite()
	}
	if err != nil {
		// The model ran: its tokens are charged even though the turn is lost.
		exec.Status = bulkhead.ExecFailed
		failed := fmt.Errorf("write turn %d of %s: %w", turn, convID, err)
		if serr := settle(nil, failed); serr != nil {
			r.logger().ErrorContext(ctx, "settle execution after transcript failure", "execution_id", exec.ID, "error", serr)
		}
		return Result{}, failed
	}
	if err := settle(settled, nil); err != nil {
		return Result{}, err
	}
	return Result{Execution: exec, Reply: loop.reply, Steps: loop.steps}, nil
}

// admit admits the execution; when a slot or the budget is held by
// executions whose leases expired, it reclaims them (their orphaned turns
// included) and tries once more.
func (r *Runner) admit(ctx context.Context, st stores, a dynamo.Admission) error {
	err := st.ts.Admit(ctx, a)
	// An admission whose outcome is unknown (the SDK gave up: the update
	// may have committed) is asked again: one that committed finds its own
	// lease on the counter item and is used, not left to hold its slot until
	// its lease expires.
	for backoff := 50 * time.Millisecond; bulkhead.IsCode(err, bulkhead.Unavailable) && backoff <= 200*time.Millisecond; backoff *= 2 {
		time.Sleep(backoff)
		err = st.ts.Admit(ctx, a)
	}
	if !dynamo.Reclaimable(err) {
		return err
	}
	if n, rerr := r.Reclaim(ctx, st.ts, st.tr, a.Now, false); rerr != nil || n == 0 {
		return err
	}
	return st.ts.Admit(ctx, a)
}

// Reclaim gives back what executions of one tenant that died without
// settling still hold: with all false, those whose lease expired; with all
// true, every one (the caller knows that no process is running any of them,
// as the local platform does when it starts on a store it alone uses). For
// each, the slot, tokens and spend go back at once; the transcript turn it
// may have written before dying (which no conversation head counts) is then
// removed, and only then do its reserved bytes leave the storage count, so
// an orphaned object is never uncounted. A reclaim that could not remove the
// object leaves the lease for the next one. It returns how many executions
// it reclaimed now.
func (r *Runner) Reclaim(ctx context.Context, ts *dynamo.TenantStore, tr *s3store.TenantStore, now time.Time, all bool) (int, error) {
	leases, err := ts.Leases(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	var errs []error
	for _, l := range leases {
		if !l.Abandoned {
			if !all && !now.After(l.Until) {
				continue
			}
			var ok bool
			if l, ok, err = ts.AbandonLease(ctx, l, now); err != nil {
				errs = append(errs, err)
				continue
			} else if !ok {
				continue
			}
			n++
			r.logger().WarnContext(ctx, "reclaimed the lease of an execution that did not settle", "tenant_id", ts.TenantID(),
				"execution_id", l.ExecutionID, "conversation_id", l.ConversationID, "lease_until", l.Until)
		}
		if l.CleanupTurn > 0 {
			if err := tr.DeleteTurn(ctx, l.ConversationID, l.CleanupTurn); err != nil {
				errs = append(errs, fmt.Errorf("remove orphaned turn %d of %s: %w", l.CleanupTurn, l.ConversationID, err))
				continue
			}
		}
		if err := ts.ForgetLease(ctx, l); err != nil {
			errs = append(errs, err)
		}
	}
	return n, errors.Join(errs...)
}

// settleRetrying settles, retrying while DynamoDB is unavailable: settling
// is idempotent (the record's conditional put, and the transaction's
// ClientRequestToken, which makes DynamoDB recognise a retry of a settlement
// that committed), and an execution that ran must be recorded. New attempts
// start until ctx ends; an attempt under way is not cut short by that (a
// slow store is not an absent one: cutting it would tell the caller "not
// settled" about a settlement that commits), only by its own bound. If
// DynamoDB stays away longer, the lease expires and is reclaimed: the
// reservation comes back and the execution is not charged.
func settleRetrying(ctx context.Context, ts *dynamo.TenantStore, s dynamo.Settlement) error {
	backoff := 20 * time.Millisecond
	for {
		attempt, cancel := context.WithTimeout(context.WithoutCancel(ctx), settleAttemptTimeout)
		err := ts.Settle(attempt, s)
		cancel()
		if !bulkhead.IsCode(err, bulkhead.Unavailable) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Second)
	}
}

// reserveBytes bounds the bytes one execution can add to the tenant's
// storage: its transcript turn (the message, the replies at most 4 bytes a
// token, doubled for JSON escaping, and the tool results of every step,
// plus framing) and its log (at most MaxExecLogBytes and its attribute's
// name).
func reserveBytes(message string, l bulkhead.Limits) int64 {
	return 2*int64(len(message)) + 8*l.MaxTokens + l.MaxSteps*(maxToolResultBytes+maxCallsPerStep*512) + 4096 + bulkhead.MaxExecLogBytes + 64
}

// loopResult is how the model loop ended.
type loopResult struct {
	status string
	reply  string
	added  []bulkhead.Message
	steps  int64
	err    error
	// log is the execution's steps so far; began is when the loop started
	// (real time: offsets in the log are real durations).
	log   []bulkhead.LogStep
	began time.Time
}

// sinceStart is the milliseconds since the loop began (0 when it did not).
func (l loopResult) sinceStart() int64 {
	if l.began.IsZero() {
		return 0
	}
	return time.Since(l.began).Milliseconds()
}

// run is the model loop: call the model, run the tools it asks for, and
// call it again, within the execution's guards.
func (r *Runner) run(ctx context.Context, st stores, exec *bulkhead.Execution, agent bulkhead.Agent, tools toolSet, chain []candidate, limits bulkhead.Limits,
	budget int64, req Request, msgs []bulkhead.Message, deadline time.Time) loopResult {
	res := loopResult{began: time.Now()}
	// Real time, not the injected clock: this bounds a real call. Under a
	// host deadline (a Lambda function's timeout), the loop ends early
	// enough to settle before the host stops the process.
	wall := limits.MaxWallTime
	if !deadline.IsZero() {
		wall = min(wall, time.Until(deadline)-settleReserve)
	}
	wallCtx, cancel := context.WithTimeout(ctx, wall)
	defer cancel()
	wallCtx, abandon := context.WithCancelCause(wallCtx)
	defer abandon(nil)
	stop := context.AfterFunc(r.lifetime(), func() { abandon(errAbandoned) })
	defer stop()
	if req.ClientGone != nil {
		go func() {
			select {
			case <-req.ClientGone:
				abandon(errClientGone)
			case <-wallCtx.Done():
			}
		}()
	}
	emit := func(Event) {}
	var onDelta func(string)
	if req.OnEvent != nil {
		emit = req.OnEvent
		onDelta = func(s string) { emit(Event{Kind: EventDelta, Text: s}) }
	}
	charge := func(c call) {
		exec.InputTokens += c.resp.InputTokens
		exec.OutputTokens += c.resp.OutputTokens
		exec.Cost += c.entry.Price().Cost(c.resp.InputTokens, c.resp.OutputTokens)
		if used := exec.InputTokens + exec.OutputTokens; used > budget {
			// The bound did not hold: the truth is settled, and said loudly.
			r.logger().ErrorContext(ctx, "model reported more tokens than were reserved", "metric", "TokensOverReserved",
				"execution_id", exec.ID, "model", c.entry.Name, "used", used, "reserved", budget)
			r.Metrics.Emit(map[string]float64{metrics.TokensOverReserved: float64(used - budget)}, [][]string{{}, {"model"}},
				map[string]any{"tenant_id": st.ts.TenantID(), "model": c.entry.Name, "execution_id": exec.ID})
		}
	}
	stopped := func() bool {
		switch context.Cause(wallCtx) {
		case errAbandoned, errClientGone:
			return true
		}
		return false
	}
	for {
		if stopped() {
			res.status = bulkhead.ExecStopped
			return res
		}
		if res.steps > 0 {
			// Kill switches take effect at the next step.
			if stop, err := r.stopped(ctx, st.ts, agent.ID); err != nil {
				res.err = err
				return res
			} else if stop {
				res.status = bulkhead.ExecStopped
				return res
			}
		}
		mreq := bulkhead.ModelRequest{SystemPrompt: agent.SystemPrompt, Messages: msgs, Tools: tools.specs}
		used := exec.InputTokens + exec.OutputTokens
		in := countInput(chain, mreq)
		if used+in >= budget {
			res.status = bulkhead.ExecMaxTokens
			return res
		}
		mreq.MaxOutputTokens = min(r.maxOutput(), budget-used-in)
		res.steps++
		var (
			resp     bulkhead.ModelResponse
			answered candidate
		)
		began, inBefore, outBefore := time.Now(), exec.InputTokens, exec.OutputTokens
		err := tracing.Span(wallCtx, "model", func(ctx context.Context) error {
			var gerr error
			answered, resp, gerr = r.generate(ctx, chain, mreq, onDelta, charge)
			return gerr
		})
		if answered.entry.Name != "" {
			exec.Model = answered.entry.Name
		}
		step := bulkhead.LogStep{Kind: bulkhead.LogStepModel, OffsetMS: began.Sub(res.began).Milliseconds(), DurationMS: time.Since(began).Milliseconds(),
			Status: bulkhead.LogStatusOK, Provider: answered.entry.Provider, Model: answered.entry.Name,
			InputTokens: exec.InputTokens - inBefore, OutputTokens: exec.OutputTokens - outBefore}
		if agent.LogContent {
			if res.steps == 1 {
				step.Input = logContent(req.Message)
			}
			step.Output = logContent(resp.Text)
		}
		if err != nil {
			switch {
			case stopped():
				res.status, step.Status = bulkhead.ExecStopped, bulkhead.LogStatusStopped
			case errors.Is(err, context.DeadlineExceeded) || wallCtx.Err() != nil:
				res.status, step.Status = bulkhead.ExecTimedOut, bulkhead.LogStatusTimeout
			case bulkhead.IsCode(err, bulkhead.ModelUnavailable):
				res.status, res.err, step.Status = bulkhead.ExecModelUnavailable, err, bulkhead.LogStatusError
			default:
				res.status, res.err, step.Status = bulkhead.ExecModelError, modelError(err), bulkhead.LogStatusRefused
			}
			res.log = append(res.log, step)
			if len(resp.Text) > 0 || len(resp.ToolCalls) > 0 {
				// A reply cut short still goes into the transcript.
				res.added = append(res.added, bulkhead.Message{Role: bulkhead.RoleAssistant, Content: resp.Text, CreatedAt: r.now(),
					ExecutionID: exec.ID, InputTokens: resp.InputTokens, OutputTokens: resp.OutputTokens})
				if res.err == nil {
					res.reply = resp.Text
				}
			}
			return res
		}
		step.StopReason = bulkhead.LogStopEnd
		if len(resp.ToolCalls) > 0 {
			step.StopReason = bulkhead.LogStopToolUse
		}
		res.log = append(res.log, step)
		now := r.now()
		reply := bulkhead.Message{Role: bulkhead.RoleAssistant, Content: resp.Text, ToolCalls: resp.ToolCalls, CreatedAt: now,
			ExecutionID: exec.ID, InputTokens: resp.InputTokens, OutputTokens: resp.OutputTokens}
		msgs = append(msgs, reply)
		res.added = append(res.added, reply)
		if len(resp.ToolCalls) == 0 {
			res.status, res.reply = bulkhead.ExecCompleted, resp.Text
			return res
		}
		if res.steps >= limits.MaxSteps {
			res.status = bulkhead.ExecMaxSteps
			return res
		}
		// The calls of one step share its bytes of tool results.
		share := max(minToolResultBytes, maxToolResultBytes/max(1, min(len(resp.ToolCalls), maxCallsPerStep)))
		for i, call := range resp.ToolCalls {
			emit(Event{Kind: EventToolCall, Call: call})
			var (
				out     string
				outcome toolOutcome
			)
			began := time.Now()
			if i >= maxCallsPerStep {
				out, outcome = failed(bulkhead.ToolErrLimit, fmt.Sprintf("at most %d tool calls run per step", maxCallsPerStep))
			} else {
				_ = tracing.Span(wallCtx, "tools", func(ctx context.Context) error {
					out, outcome = r.callTool(ctx, st, tools.targets, toolCall{exec: exec, depth: req.Depth, call: call})
					return nil
				})
			}
			out = truncateUTF8(out, share)
			status := bulkhead.ToolCallOK
			if !outcome.ok() {
				status = bulkhead.ToolCallError
			}
			took := time.Since(began).Milliseconds()
			exec.ToolCalls = append(exec.ToolCalls, bulkhead.ToolCallRecord{ID: call.ID, Name: call.Name, Status: status, DurationMS: took})
			res.log = append(res.log, toolStep(call, outcome, began.Sub(res.began).Milliseconds(), took, agent.LogContent, out))
			emit(Event{Kind: EventToolResult, Call: call, Result: out})
			tool := bulkhead.Message{Role: bulkhead.RoleTool, Content: out, ToolCallID: call.ID, Name: call.Name, CreatedAt: r.now(), ExecutionID: exec.ID}
			msgs = append(msgs, tool)
			res.added = append(res.added, tool)
		}
	}
}

// stopped reports whether an operator suspended the tenant or disabled (or
// deleted) the agent since the execution started.
func (r *Runner) stopped(ctx context.Context, ts *dynamo.TenantStore, agentID string) (bool, error) {
	ec, err := ts.LoadExecution(ctx, agentID, "")
	if bulkhead.IsCode(err, bulkhead.NotFound) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	return ec.Tenant.Status != bulkhead.TenantActive || ec.Agent.Status != bulkhead.AgentActive, nil
}

// countTokens is the request's input tokens: exact when the model can count
// them, otherwise a conservative estimate (one token per 2 bytes).
func countTokens(m bulkhead.Model, req bulkhead.ModelRequest) int64 {
	if c, ok := m.(bulkhead.TokenCounter); ok {
		return c.CountTokens(req)
	}
	n := int64(len(req.SystemPrompt))
	for _, msg := range req.Messages {
		n += int64(len(msg.Content)) + 16
	}
	for _, t := range req.Tools {
		n += int64(len(t))
	}
	return (n + 1) / 2
}

// modelError classifies a provider failure for the caller.
func modelError(err error) error {
	msg := "model provider failed"
	if e := bulkhead.AsError(err); e != nil && e.Message != "" {
		msg = e.Message
	}
	return &bulkhead.Error{Code: bulkhead.ModelError, Message: msg, Err: err}
}

func (r *Runner) window() int {
	if r.Window > 0 {
		return r.Window
	}
	return DefaultWindow
}

func (r *Runner) leaseMargin() time.Duration {
	if r.LeaseMargin > 0 {
		return r.LeaseMargin
	}
	return DefaultLeaseMargin
}

func (r *Runner) maxOutput() int64 {
	if r.MaxOutputTokens > 0 {
		return r.MaxOutputTokens
	}
	return DefaultMaxOutputTokens
}
