package runtime_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/bulkhead-dev/bulkhead/pkg/bulkhead"
	"github.com/bulkhead-dev/bulkhead/pkg/runtime"
)

// countingCatalogue counts the lookups of each model; its entries can be
// changed, as an operator changes the stored catalogue, and it can fail.
type countingCatalogue struct {
	mu    sync.Mutex
	cat   catalogue
	calls map[string]int
	fail  error
}

func newCountingCatalogue() *countingCatalogue {
	return &countingCatalogue{cat: catalogue{primary.Name: primary, fallback.Name: fallback, premium.Name: premium}, calls: map[string]int{}}
}

func (c *countingCatalogue) Model(ctx context.Context, name string) (bulkhead.ModelEntry, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls[name]++
	if c.fail != nil {
		return bulkhead.ModelEntry{}, c.fail
	}
	return c.cat.Model(ctx, name)
}

func (c *countingCatalogue) set(e bulkhead.ModelEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cat[e.Name] = e
}

func (c *countingCatalogue) failWith(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.fail = err
}

func (c *countingCatalogue) count(name string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls[name]
}

// TestModelCacheTTL: an execution within the TTL of the last lookup uses the
// cached entries (the agent's model and its fallbacks, the one that is not
// in the catalogue included) without asking the catalogue; a price change
// reaches the executions admitted after the TTL.
func TestModelCacheTTL(t *testing.T) {
	e := newModelEnv(t, primary.Name, fallback.Name, "openai/missing")
	cat := newCountingCatalogue()
	e.runner.Catalogue = cat
	wantCalls := func(when string, n int) {
		t.Helper()
		for _, name := range []string{primary.Name, fallback.Name, "openai/missing"} {
			if got := cat.count(name); got != n {
				t.Errorf("%s: %s looked up %d times, want %d", when, name, got, n)
			}
		}
	}
	wantCost := func(when string, res runtime.Result, p bulkhead.ModelEntry) {
		t.Helper()
		x := res.Execution
		if want := p.Price().Cost(x.InputTokens, x.OutputTokens); x.Cost != want || x.InputTokens == 0 {
			t.Errorf("%s: cost %d µ$ for %d+%d tokens, want %d", when, x.Cost, x.InputTokens, x.OutputTokens, want)
		}
	}

	res, err := e.execute(t, "one")
	if err != nil {
		t.Fatal(err)
	}
	wantCalls("first execution", 1)
	wantCost("first execution", res, primary)

	// The operator changes the price; this process still has the old entry.
	repriced := entry(primary.Name, 3, 6)
	cat.set(repriced)
	e.clock.Add(runtime.DefaultModelCacheTTL - time.Second)
	if res, err = e.execute(t, "two"); err != nil {
		t.Fatal(err)
	}
	wantCalls("within the TTL", 1)
	wantCost("within the TTL", res, primary)

	e.clock.Add(time.Second)
	if res, err = e.execute(t, "three"); err != nil {
		t.Fatal(err)
	}
	wantCalls("after the TTL", 2)
	wantCost("after the TTL", res, repriced)
	e.settledCounters(t)
}

// TestModelCacheKeepsNoErrors: a catalogue that cannot be read fails the
// execution, and the next one asks again.
func TestModelCacheKeepsNoErrors(t *testing.T) {
	e := newModelEnv(t, primary.Name)
	cat := newCountingCatalogue()
	e.runner.Catalogue = cat
	cat.failWith(unavailableErr())
	if _, err := e.execute(t, "one"); !bulkhead.IsCode(err, bulkhead.Unavailable) {
		t.Fatalf("%v: want unavailable", err)
	}
	cat.failWith(nil)
	if _, err := e.execute(t, "two"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.execute(t, "three"); err != nil {
		t.Fatal(err)
	}
	if n := cat.count(primary.Name); n != 2 {
		t.Errorf("looked up %d times, want 2 (the failed lookup, then one kept)", n)
	}
	e.settledCounters(t)
}

// TestModelCacheDisabled: a negative TTL reads the catalogue at every
// execution.
func TestModelCacheDisabled(t *testing.T) {
	e := newModelEnv(t, primary.Name)
	cat := newCountingCatalogue()
	e.runner.Catalogue = cat
	e.runner.ModelCacheTTL = -1
	for _, msg := range []string{"one", "two", "three"} {
		if _, err := e.execute(t, msg); err != nil {
			t.Fatal(err)
		}
	}
	if n := cat.count(primary.Name); n != 3 {
		t.Errorf("looked up %d times, want 3", n)
	}
}
