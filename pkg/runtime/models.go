package runtime

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/bulkhead-dev/bulkhead/pkg/bulkhead"
)

// Defaults of a Runner's model-call fields.
const (
	// DefaultModelAttempts is how many times one model is tried in one step
	// when it is throttled or unavailable, before the next model of the
	// chain is.
	DefaultModelAttempts = 3
	// DefaultCircuitFailures is how many failed calls in a row open a model's
	// circuit; DefaultCircuitOpen is how long it stays open before one probe.
	DefaultCircuitFailures = 5
	DefaultCircuitOpen     = 30 * time.Second
	// retryBase and retryCap bound the jittered backoff between attempts.
	retryBase = 100 * time.Millisecond
	retryCap  = 2 * time.Second
)

// Catalogue resolves a model's name to its priced catalogue entry; an
// unknown name is a NotFound error.
type Catalogue interface {
	Model(ctx context.Context, name string) (bulkhead.ModelEntry, error)
}

// shipped is the catalogue shipped in code, for a Runner without one.
type shipped struct{}

func (shipped) Model(_ context.Context, name string) (bulkhead.ModelEntry, error) {
	if e, ok := bulkhead.DefaultModelEntry(name); ok {
		return e, nil
	}
	return bulkhead.ModelEntry{}, bulkhead.Errorf(bulkhead.NotFound, "model %q is not in the catalogue", name)
}

func (r *Runner) catalogue() Catalogue {
	if r.Catalogue != nil {
		return r.Catalogue
	}
	return shipped{}
}

// provider is the configured client of a provider, nil when it has none.
func (r *Runner) provider(name string) bulkhead.Model {
	if m, ok := r.Providers[name]; ok {
		return m
	}
	if name == bulkhead.ProviderOffline {
		return r.Model
	}
	return nil
}

// candidate is one model an execution may call: its entry and its client.
type candidate struct {
	entry bulkhead.ModelEntry
	model bulkhead.Model
}

// chain resolves the agent's model and its fallbacks for a tenant of the
// tier, in order. The agent's own model must be in the catalogue, priced and
// allowed to the tier (the tier may have changed since the agent was
// saved); a fallback that is not, or whose provider this platform has no
// client for, is left out. A model without a price is never run.
func (r *Runner) chain(ctx context.Context, agent bulkhead.Agent, tier bulkhead.TierName) ([]candidate, error) {
	names := append([]string{agent.Model}, agent.FallbackModels...)
	var out []candidate
	for i, name := range names {
		e, err := r.model(ctx, name)
		skip := ""
		switch {
		case bulkhead.IsCode(err, bulkhead.NotFound):
			if i == 0 {
				return nil, bulkhead.Errorf(bulkhead.Invalid, "agent %s names model %q, which is not in the catalogue", agent.ID, name)
			}
			skip = "not in the catalogue"
		case err != nil:
			return nil, err
		case !e.Priced():
			if i == 0 {
				return nil, bulkhead.Errorf(bulkhead.Invalid, "model %q has no price and is never run", name)
			}
			skip = "no price"
		case !e.Allows(tier):
			if i == 0 {
				return nil, &bulkhead.Error{Code: bulkhead.ModelNotAllowed,
					Message: fmt.Sprintf("the %s tier may not use model %q", tier, name), Fields: map[string]any{"model": name}}
			}
			skip = "not allowed to the tier"
		}
		m := r.provider(e.Provider)
		if skip == "" && m == nil {
			skip = "provider not configured"
		}
		if skip != "" {
			r.logger().WarnContext(ctx, "fallback model left out", "agent_id", agent.ID, "model", name, "reason", skip)
			continue
		}
		out = append(out, candidate{entry: e, model: m})
	}
	if len(out) == 0 {
		return nil, &bulkhead.Error{Code: bulkhead.ModelUnavailable, RetryAfter: int(r.circuitOpen().Seconds()),
			Message: fmt.Sprintf("no provider is configured on this platform for model %q", agent.Model)}
	}
	return out, nil
}

// countInput is the most input tokens any model of the chain can count for
// the request: exact where a model counts, otherwise a bound.
func countInput(chain []candidate, req bulkhead.ModelRequest) int64 {
	var n int64
	for _, c := range chain {
		req.Model = c.entry.ModelID
		n = max(n, countTokens(c.model, req))
	}
	return n
}

// maxSpend is what an execution of budget tokens may cost on any model of
// the chain, each of at most steps calls rounded up by at most one
// micro-dollar: an upper bound however the calls are split between models.
func maxSpend(chain []candidate, budget, steps int64) bulkhead.Micros {
	var worst bulkhead.Micros
	for _, c := range chain {
		worst = max(worst, c.entry.Price().MaxCost(budget))
	}
	return worst + bulkhead.Micros(steps)
}

// available reports whether any model of the chain may be called now, and
// otherwise how long until one may.
func (r *Runner) available(chain []candidate) (bool, time.Duration) {
	wait := time.Duration(0)
	for _, c := range chain {
		ok, w := r.circuits.peek(c.entry.Name, r.now())
		if ok {
			return true, 0
		}
		if wait == 0 || w < wait {
			wait = w
		}
	}
	return false, wait
}

// unavailable is the error of a chain none of whose models answered.
func unavailable(names []string, retryAfter time.Duration, cause error) error {
	return &bulkhead.Error{Code: bulkhead.ModelUnavailable, RetryAfter: max(1, int((retryAfter+time.Second-1)/time.Second)),
		Message: fmt.Sprintf("no model could answer (%v); try again later", names), Err: cause}
}

// call is one model call that the provider charged for.
type call struct {
	entry bulkhead.ModelEntry
	resp  bulkhead.ModelResponse
}

// generate asks the chain's models in order for one step's reply. A model
// that is throttled or unavailable is retried with jittered backoff (at most
// Attempts times, within ctx: the execution's wall time), then the next one
// is asked; models whose circuit is open are skipped. A refusal ends the
// step at once. charge is told of every call that used tokens, failed ones
// included. It returns the candidate that answered.
func (r *Runner) generate(ctx context.Context, chain []candidate, req bulkhead.ModelRequest, onDelta func(string),
	charge func(call)) (candidate, bulkhead.ModelResponse, error) {
	var (
		lastErr error
		wait    time.Duration
		names   []string
	)
	base := req.MaxOutputTokens
	for _, c := range chain {
		names = append(names, c.entry.Name)
		req.Model = c.entry.ModelID
		req.MaxOutputTokens = base
		if c.entry.MaxOutputTokens > 0 {
			req.MaxOutputTokens = min(base, c.entry.MaxOutputTokens)
		}
		for attempt := range r.modelAttempts() {
			ok, w := r.circuits.allow(c.entry.Name, r.now())
			if !ok {
				wait = minPositive(wait, w)
				break
			}
			streamed := false
			var resp bulkhead.ModelResponse
			var err error
			if sm, isStreaming := c.model.(bulkhead.StreamingModel); isStreaming && onDelta != nil {
				resp, err = sm.GenerateStream(ctx, req, func(s string) { streamed = true; onDelta(s) })
			} else {
				resp, err = c.model.Generate(ctx, req)
			}
			if resp.InputTokens > 0 || resp.OutputTokens > 0 {
				charge(call{entry: c.entry, resp: resp})
			}
			if err == nil {
				r.circuits.succeeded(c.entry.Name)
				return c, resp, nil
			}
			if ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
				// The execution's own time ran out (or it was stopped): not
				// the model's fault.
				r.circuits.release(c.entry.Name)
				return c, resp, err
			}
			code := bulkhead.ErrorCode(err)
			if code != bulkhead.Unavailable && code != bulkhead.Throttled {
				// A refusal: the provider is up, the request is wrong.
				r.circuits.succeeded(c.entry.Name)
				return c, resp, err
			}
			r.circuits.failed(c.entry.Name, r.now(), r.circuitFailures(), r.circuitOpen())
			lastErr = err
			r.logger().WarnContext(ctx, "model call failed", "model", c.entry.Name, "attempt", attempt+1, "error", err)
			if streamed || resp.InputTokens > 0 || resp.OutputTokens > 0 {
				// Part of a reply was sent or charged: asking again would
				// send it twice.
				return c, resp, unavailable(names, r.circuitOpen(), err)
			}
			if attempt+1 == r.modelAttempts() {
				break
			}
			backoff := jitter(retryBase << attempt)
			if e := bulkhead.AsError(err); e != nil && e.RetryAfter > 0 {
				backoff = max(backoff, time.Duration(e.RetryAfter)*time.Second)
			}
			if dl, ok := ctx.Deadline(); ok && time.Until(dl) < backoff {
				break // no time to wait for this one: ask the next
			}
			select {
			case <-ctx.Done():
				return c, bulkhead.ModelResponse{}, ctx.Err()
			case <-time.After(backoff):
			}
		}
	}
	if lastErr == nil && wait == 0 {
		wait = r.circuitOpen()
	}
	return candidate{}, bulkhead.ModelResponse{}, unavailable(names, max(wait, time.Second), lastErr)
}

// jitter is a random duration in [d/2, d], capped.
func jitter(d time.Duration) time.Duration {
	d = min(d, retryCap)
	return d/2 + rand.N(d/2+1)
}

func minPositive(a, b time.Duration) time.Duration {
	if a <= 0 || (b > 0 && b < a) {
		return b
	}
	return a
}

func (r *Runner) modelAttempts() int {
	if r.ModelAttempts > 0 {
		return r.ModelAttempts
	}
	return DefaultModelAttempts
}

func (r *Runner) circuitFailures() int {
	if r.CircuitFailures > 0 {
		return r.CircuitFailures
	}
	return DefaultCircuitFailures
}

func (r *Runner) circuitOpen() time.Duration {
	if r.CircuitOpen > 0 {
		return r.CircuitOpen
	}
	return DefaultCircuitOpen
}

// circuits are the per-model circuit breakers of one process (one Lambda
// execution environment in AWS): a model that keeps failing is not called
// for a while, and its executions are told so at once. They are a
// provider's health, not a tenant's: the tenant's breaker never sees them.
type circuits struct {
	mu sync.Mutex
	m  map[string]*circuit
}

type circuit struct {
	failures  int
	openUntil time.Time
	probing   bool
}

func (cs *circuits) get(name string) *circuit {
	if cs.m == nil {
		cs.m = map[string]*circuit{}
	}
	c, ok := cs.m[name]
	if !ok {
		c = &circuit{}
		cs.m[name] = c
	}
	return c
}

// peek reports whether the model may be called now, without taking the
// half-open probe.
func (cs *circuits) peek(name string, now time.Time) (bool, time.Duration) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	c := cs.get(name)
	if now.Before(c.openUntil) {
		return false, c.openUntil.Sub(now)
	}
	return !c.probing, time.Second
}

// allow reports whether the model may be called now. After its open time,
// one call (the probe) is let through; the others wait for its outcome.
func (cs *circuits) allow(name string, now time.Time) (bool, time.Duration) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	c := cs.get(name)
	switch {
	case now.Before(c.openUntil):
		return false, c.openUntil.Sub(now)
	case c.probing:
		return false, time.Second
	case !c.openUntil.IsZero():
		c.probing = true
	}
	return true, 0
}

func (cs *circuits) succeeded(name string) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	*cs.get(name) = circuit{}
}

// release ends a probe whose call told nothing of the model's health (the
// execution's own time ran out).
func (cs *circuits) release(name string) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	cs.get(name).probing = false
}

func (cs *circuits) failed(name string, now time.Time, threshold int, open time.Duration) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	c := cs.get(name)
	c.failures++
	if c.probing || c.failures >= threshold {
		c.openUntil, c.probing, c.failures = now.Add(open), false, 0
	}
}

// CircuitState is a model's circuit as this process sees it: "closed",
// "open" or "half_open".
func (r *Runner) CircuitState(model string) string {
	r.circuits.mu.Lock()
	defer r.circuits.mu.Unlock()
	c := r.circuits.get(model)
	switch {
	case r.now().Before(c.openUntil):
		return "open"
	case !c.openUntil.IsZero():
		return "half_open"
	}
	return "closed"
}
