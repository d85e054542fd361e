package runtime_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bulkhead-dev/bulkhead/pkg/bulkhead"
	"github.com/bulkhead-dev/bulkhead/pkg/dynamo"
	"github.com/bulkhead-dev/bulkhead/pkg/metrics"
	"github.com/bulkhead-dev/bulkhead/pkg/offline"
	"github.com/bulkhead-dev/bulkhead/pkg/platform/platformtest"
	"github.com/bulkhead-dev/bulkhead/pkg/runtime"
	"github.com/bulkhead-dev/bulkhead/pkg/s3store"
)

// step is one scripted answer of a provider.
type step struct {
	resp bulkhead.ModelResponse
	err  error
}

// scripted is a provider whose answers are set per model id: each call takes
// the next answer of its model (the last one repeats); a model without a
// script answers like the offline model.
type scripted struct {
	mu      sync.Mutex
	answers map[string][]step
	calls   []string // model ids, in call order
}

func (s *scripted) Generate(ctx context.Context, req bulkhead.ModelRequest) (bulkhead.ModelResponse, error) {
	s.mu.Lock()
	s.calls = append(s.calls, req.Model)
	steps := s.answers[req.Model]
	var st *step
	if len(steps) > 0 {
		st = &steps[0]
		if len(steps) > 1 {
			s.answers[req.Model] = steps[1:]
		}
	}
	s.mu.Unlock()
	if st == nil {
		return offline.New(0).Generate(ctx, req)
	}
	return st.resp, st.err
}

func (s *scripted) count(model string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.calls {
		if c == model {
			n++
		}
	}
	return n
}

// catalogue is a fixed catalogue: the shipped one plus test entries.
type catalogue map[string]bulkhead.ModelEntry

func (c catalogue) Model(_ context.Context, name string) (bulkhead.ModelEntry, error) {
	if e, ok := c[name]; ok {
		return e, nil
	}
	if e, ok := bulkhead.DefaultModelEntry(name); ok {
		return e, nil
	}
	return bulkhead.ModelEntry{}, bulkhead.Errorf(bulkhead.NotFound, "no model %q", name)
}

func entry(name string, in, out float64, tiers ...bulkhead.TierName) bulkhead.ModelEntry {
	provider, id, _ := bulkhead.ParseModelName(name)
	return bulkhead.ModelEntry{Name: name, Provider: provider, ModelID: id, InputPerMillion: bulkhead.Micros(in * 1e6),
		OutputPerMillion: bulkhead.Micros(out * 1e6), Tiers: tiers, ContextWindow: 100_000, MaxOutputTokens: 4096}
}

var (
	primary  = entry("openai/primary", 1, 2)
	fallback = entry("bedrock/fallback", 5, 25)
	premium  = entry("openai/premium", 10, 30, bulkhead.Enterprise)
)

func unavailableErr() error {
	return &bulkhead.Error{Code: bulkhead.Unavailable, Message: "provider down"}
}

type modelEnv struct {
	clock  *clock
	ts     *dynamo.TenantStore
	tr     *s3store.TenantStore
	openai *scripted
	bed    *scripted
	runner *runtime.Runner
}

// newModelEnv makes a tenant whose agent runs on model with fallbacks, and
// a runner with two scripted providers.
func newModelEnv(t *testing.T, model string, fallbacks ...string) *modelEnv {
	t.Helper()
	c := &clock{t: time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)}
	env := platformtest.Start(t, platformtest.WithClock(c.Now))
	ts, tr := mustTenant(t, env, c)
	ctx := context.Background()
	ag, err := ts.GetAgent(ctx, agentID)
	if err != nil {
		t.Fatal(err)
	}
	ag.Model, ag.FallbackModels = model, fallbacks
	if err := ts.PutAgent(ctx, ag, ag.Version); err != nil {
		t.Fatal(err)
	}
	e := &modelEnv{clock: c, ts: ts, tr: tr, openai: &scripted{answers: map[string][]step{}}, bed: &scripted{answers: map[string][]step{}}}
	e.runner = &runtime.Runner{Model: offline.New(0), Now: c.Now, Logger: nil,
		Providers: map[string]bulkhead.Model{bulkhead.ProviderOpenAI: e.openai, bulkhead.ProviderBedrock: e.bed},
		Catalogue: catalogue{primary.Name: primary, fallback.Name: fallback, premium.Name: premium}}
	return e
}

func (e *modelEnv) execute(t *testing.T, msg string) (runtime.Result, error) {
	t.Helper()
	return e.runner.Execute(context.Background(), e.ts, e.tr, runtime.Request{AgentID: agentID, Message: msg})
}

// settledCounters checks that nothing is held and returns the counters.
func (e *modelEnv) settledCounters(t *testing.T) bulkhead.Usage {
	t.Helper()
	u, err := e.ts.Counters(context.Background(), e.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	if u.Running != 0 || u.CommittedTokens != u.TokensThisMonth || u.CommittedSpend != u.SpendThisMonth {
		t.Errorf("counters %+v: something is still held", u)
	}
	return u
}

// TestFallbackAnswersWhenTheModelStaysUnavailable: the agent's model is
// retried, then its fallback answers; the execution names the model that
// answered and is priced at its price.
func TestFallbackAnswersWhenTheModelStaysUnavailable(t *testing.T) {
	e := newModelEnv(t, primary.Name, fallback.Name)
	e.openai.answers["primary"] = []step{{err: unavailableErr()}}
	e.bed.answers["fallback"] = []step{{resp: bulkhead.ModelResponse{Text: "from the fallback", InputTokens: 1000, OutputTokens: 100}}}
	res, err := e.execute(t, "hello")
	if err != nil {
		t.Fatal(err)
	}
	if res.Execution.Model != fallback.Name || res.Reply != "from the fallback" || res.Execution.Status != bulkhead.ExecCompleted {
		t.Errorf("execution %+v reply %q: want completed by %s", res.Execution, res.Reply, fallback.Name)
	}
	if want := fallback.Price().Cost(1000, 100); res.Execution.Cost != want {
		t.Errorf("cost %d µ$, want %d (the fallback's price)", res.Execution.Cost, want)
	}
	if n := e.openai.count("primary"); n != runtime.DefaultModelAttempts {
		t.Errorf("the unavailable model was called %d times, want %d", n, runtime.DefaultModelAttempts)
	}
	u := e.settledCounters(t)
	if u.TokensThisMonth != 1100 || u.SpendThisMonth != res.Execution.Cost {
		t.Errorf("counters %+v: want exactly the fallback's call", u)
	}
}

// TestEachCallPricedAsItsModel: a tool step answered by the agent's model,
// the next by its fallback; the cost is the sum of the calls, each at its
// model's price.
func TestEachCallPricedAsItsModel(t *testing.T) {
	e := newModelEnv(t, primary.Name, fallback.Name)
	call := bulkhead.ToolCall{ID: "c1", Name: "get_time", Arguments: []byte(`{}`)}
	e.openai.answers["primary"] = []step{
		{resp: bulkhead.ModelResponse{ToolCalls: []bulkhead.ToolCall{call}, InputTokens: 300, OutputTokens: 20}},
		{err: &bulkhead.Error{Code: bulkhead.Throttled, Message: "slow down"}},
	}
	e.bed.answers["fallback"] = []step{{resp: bulkhead.ModelResponse{Text: "done", InputTokens: 400, OutputTokens: 30}}}
	var events []runtime.Event
	res, err := e.runner.Execute(context.Background(), e.ts, e.tr, runtime.Request{AgentID: agentID, Message: "what time is it",
		OnEvent: func(ev runtime.Event) { events = append(events, ev) }})
	if err != nil {
		t.Fatal(err)
	}
	want := primary.Price().Cost(300, 20) + fallback.Price().Cost(400, 30)
	if res.Execution.Cost != want || res.Execution.Model != fallback.Name {
		t.Errorf("execution %+v: cost %d µ$, want %d; model %q, want %q", res.Execution, res.Execution.Cost, want, res.Execution.Model, fallback.Name)
	}
	if len(events) != 2 || events[0].Kind != runtime.EventToolCall || events[1].Kind != runtime.EventToolResult || events[1].Call.ID != "c1" {
		t.Errorf("events %+v: want the tool call then its result", events)
	}
	e.settledCounters(t)
}

// TestModelCircuitOpens: a model that keeps failing opens its circuit;
// executions are then refused at once with model_unavailable and a
// Retry-After, nothing reserved or counted; after the open time one probe
// goes through and a success closes it. The tenant's breaker is untouched.
func TestModelCircuitOpens(t *testing.T) {
	e := newModelEnv(t, primary.Name)
	e.openai.answers["primary"] = []step{{err: unavailableErr()}}
	for i := range 2 {
		_, err := e.execute(t, "hello")
		if !bulkhead.IsCode(err, bulkhead.ModelUnavailable) {
			t.Fatalf("execution %d: %v, want model_unavailable", i, err)
		}
	}
	if s := e.runner.CircuitState(primary.Name); s != "open" {
		t.Fatalf("circuit %q after %d failed calls, want open", s, e.openai.count("primary"))
	}
	before := e.settledCounters(t)
	calls := e.openai.count("primary")
	_, err := e.execute(t, "hello")
	if e := bulkhead.AsError(err); e == nil || e.Code != bulkhead.ModelUnavailable || e.RetryAfter < 1 {
		t.Fatalf("with the circuit open: %v, want model_unavailable with Retry-After", err)
	}
	if e.openai.count("primary") != calls {
		t.Error("an open circuit still called the model")
	}
	if after := e.settledCounters(t); after.RequestsThisHour != before.RequestsThisHour || after.Executions != before.Executions {
		t.Errorf("a refusal with the circuit open was counted: %+v then %+v", before, after)
	}
	if b, err := e.ts.Breaker(context.Background()); err != nil || b.State(e.clock.Now()) != "closed" {
		t.Errorf("tenant breaker %+v, %v: a provider outage is not the tenant's fault", b, err)
	}
	e.clock.Add(runtime.DefaultCircuitOpen + time.Second)
	e.openai.answers["primary"] = []step{{resp: bulkhead.ModelResponse{Text: "back", InputTokens: 10, OutputTokens: 2}}}
	if res, err := e.execute(t, "hello"); err != nil || res.Reply != "back" {
		t.Fatalf("probe after the open time: %+v, %v", res, err)
	}
	if s := e.runner.CircuitState(primary.Name); s != "closed" {
		t.Errorf("circuit %q after a successful probe, want closed", s)
	}
}

// TestRefusalIsAModelError: a provider's refusal ends the execution at once
// with model_error: no retry, no fallback.
func TestRefusalIsAModelError(t *testing.T) {
	e := newModelEnv(t, primary.Name, fallback.Name)
	e.openai.answers["primary"] = []step{{err: &bulkhead.Error{Code: bulkhead.Invalid, Message: "bad tool schema"}}}
	res, err := e.execute(t, "hello")
	if !bulkhead.IsCode(err, bulkhead.ModelError) {
		t.Fatalf("%+v, %v: want model_error", res, err)
	}
	if e.openai.count("primary") != 1 || e.bed.count("fallback") != 0 {
		t.Errorf("calls: primary %d, fallback %d; want 1 and 0", e.openai.count("primary"), e.bed.count("fallback"))
	}
	u := e.settledCounters(t)
	if u.Executions != 1 {
		t.Errorf("executions %d, want the refused one recorded", u.Executions)
	}
}

// TestModelNotAllowedAtExecute: the tier may have changed since the agent
// was saved; its model is checked again at every execution.
func TestModelNotAllowedAtExecute(t *testing.T) {
	e := newModelEnv(t, premium.Name)
	_, err := e.execute(t, "hello")
	if !bulkhead.IsCode(err, bulkhead.ModelNotAllowed) {
		t.Fatalf("%v: want model_not_allowed", err)
	}
	if u := e.settledCounters(t); u.RequestsThisHour != 0 {
		t.Errorf("a refused model was admitted: %+v", u)
	}
}

// TestProviderReportsMoreThanReserved: the truth is settled (never less
// than the provider reported), and nothing stays committed.
func TestProviderReportsMoreThanReserved(t *testing.T) {
	e := newModelEnv(t, primary.Name)
	var lines bytes.Buffer
	e.runner.Metrics = metrics.New(&lines, e.clock.Now)
	e.openai.answers["primary"] = []step{{resp: bulkhead.ModelResponse{Text: "long", InputTokens: 900_000, OutputTokens: 10}}}
	res, err := e.execute(t, "hello")
	if err != nil {
		t.Fatal(err)
	}
	u := e.settledCounters(t)
	if u.TokensThisMonth != 900_010 || res.Execution.InputTokens != 900_000 {
		t.Errorf("counters %+v: want the reported 900,010 tokens", u)
	}
	// The metric says by how much the reservation was passed.
	var line struct {
		Over  float64 `json:"TokensOverReserved"`
		Model string  `json:"model"`
		Aws   struct {
			CloudWatchMetrics []struct{ Namespace string } `json:"CloudWatchMetrics"`
		} `json:"_aws"`
	}
	// The admission's line comes first; this is the only TokensOverReserved one.
	over := ""
	for _, l := range strings.Split(strings.TrimSpace(lines.String()), "\n") {
		if strings.Contains(l, `"TokensOverReserved"`) {
			over = l
		}
	}
	if err := json.Unmarshal([]byte(over), &line); err != nil {
		t.Fatalf("metric line %q: %v", lines.String(), err)
	}
	if reserved := int64(900_010 - line.Over); line.Over <= 0 || reserved <= 0 || reserved >= 900_010 ||
		line.Model != primary.Name || len(line.Aws.CloudWatchMetrics) != 1 || line.Aws.CloudWatchMetrics[0].Namespace != metrics.Namespace {
		t.Errorf("metric line %s: want TokensOverReserved > 0 for %s", lines.String(), primary.Name)
	}
}

// TestClientGoneStopsAStreamedExecution: the streaming client leaves after
// the first delta; the execution stops, is charged for what was generated,
// and releases everything.
func TestClientGoneStopsAStreamedExecution(t *testing.T) {
	e := newModelEnv(t, bulkhead.DefaultModel)
	e.runner.Model = offline.New(2 * time.Second)
	gone := make(chan struct{})
	var once sync.Once
	var deltas, admitted int
	res, err := e.runner.Execute(context.Background(), e.ts, e.tr, runtime.Request{AgentID: agentID,
		Message: "tell me a long story about owls", ClientGone: gone, OnAdmitted: func() { admitted++ },
		OnEvent: func(ev runtime.Event) {
			if ev.Kind == runtime.EventDelta {
				deltas++
				once.Do(func() { close(gone) })
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Execution.Status != bulkhead.ExecStopped || admitted != 1 || deltas == 0 {
		t.Errorf("execution %+v, admitted %d, deltas %d: want stopped after the first deltas", res.Execution, admitted, deltas)
	}
	if res.Execution.OutputTokens == 0 || res.Execution.Cost == 0 {
		t.Errorf("execution %+v: what was generated is charged", res.Execution)
	}
	e.settledCounters(t)
}
