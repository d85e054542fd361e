package runtime_test

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/bulkhead-dev/bulkhead/pkg/bulkhead"
	"github.com/bulkhead-dev/bulkhead/pkg/dynamo"
	"github.com/bulkhead-dev/bulkhead/pkg/offline"
	"github.com/bulkhead-dev/bulkhead/pkg/platform/platformtest"
	"github.com/bulkhead-dev/bulkhead/pkg/runtime"
	"github.com/bulkhead-dev/bulkhead/pkg/s3store"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// stallingModel answers like the offline model after moving the clock, as a
// process that stalled for that long would see it.
type stallingModel struct {
	clock *clock
	stall time.Duration
}

func (m *stallingModel) Generate(ctx context.Context, req bulkhead.ModelRequest) (bulkhead.ModelResponse, error) {
	m.clock.Add(m.stall)
	return offline.New(0).Generate(ctx, req)
}

const agentID = "agt_aaaaaaaaaaaaaaaa"

// mustTenant creates a tenant with one agent and returns its stores.
func mustTenant(t *testing.T, env *platformtest.Env, c *clock) (*dynamo.TenantStore, *s3store.TenantStore) {
	t.Helper()
	ctx := context.Background()
	store := env.API.Store()
	tn := bulkhead.Tenant{ID: "tn_aaaaaaaaaaaaaaaa", Name: "a", Tier: bulkhead.Starter, Status: bulkhead.TenantActive, CreatedAt: c.Now(), UpdatedAt: c.Now()}
	if err := store.CreateTenant(ctx, tn, bulkhead.APIKey{ID: "key_aaaaaaaaaaaaaaaa", TenantID: tn.ID, Hash: "h", Status: bulkhead.KeyActive}); err != nil {
		t.Fatal(err)
	}
	ag := bulkhead.Agent{ID: agentID, Name: "a", Status: bulkhead.AgentActive, SystemPrompt: "p", Model: bulkhead.DefaultModel,
		Tools: []json.RawMessage{}, Version: 1}
	if err := store.Tenant(tn.ID).CreateAgent(ctx, ag, nil); err != nil {
		t.Fatal(err)
	}
	return store.Tenant(tn.ID), env.API.Transcripts().Tenant(tn.ID)
}

// TestLapsedClaimMetersButDoesNotWrite: an execution that stalls past its
// conversation claim is charged but must not write its turn.
func TestLapsedClaimMetersButDoesNotWrite(t *testing.T) {
	c := &clock{t: time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)}
	m := &stallingModel{clock: c}
	env := platformtest.Start(t, platformtest.WithClock(c.Now))
	ctx := context.Background()
	ts, tr := mustTenant(t, env, c)
	// Starter agents run 30 s at most; their claim lasts 30 s + 1 min.
	r := &runtime.Runner{Model: m, Now: c.Now, LeaseMargin: time.Minute}

	first, err := r.Execute(ctx, ts, tr, runtime.Request{AgentID: agentID, Message: "hello"})
	if err != nil {
		t.Fatal(err)
	}
	m.stall = 2 * time.Minute
	_, err = r.Execute(ctx, ts, tr, runtime.Request{AgentID: agentID, Message: "slow", ConversationID: first.Execution.ConversationID})
	if !bulkhead.IsCode(err, bulkhead.Conflict) {
		t.Fatalf("stalled execution: %v, want Conflict", err)
	}
	conv, err := ts.GetConversation(ctx, first.Execution.ConversationID)
	if err != nil || conv.Turns != 1 {
		t.Fatalf("conversation = %+v, %v; want 1 turn", conv, err)
	}
	u, err := ts.Counters(ctx, c.Now().Add(-2*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if u.Executions != 2 || u.TokensThisMonth <= first.Execution.InputTokens+first.Execution.OutputTokens || u.Running != 0 {
		t.Errorf("counters = %+v: the stalled execution must be metered and released", u)
	}
	// The conversation goes on.
	m.stall = 0
	if _, err := r.Execute(ctx, ts, tr, runtime.Request{AgentID: agentID, Message: "again", ConversationID: first.Execution.ConversationID}); err != nil {
		t.Errorf("next turn: %v", err)
	}
}

// TestWallTimeLimit: a model slower than the agent's wall time ends the
// execution with status timed_out, settled and released.
func TestWallTimeLimit(t *testing.T) {
	c := &clock{t: time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)}
	env := platformtest.Start(t, platformtest.WithClock(c.Now))
	ctx := context.Background()
	ts, tr := mustTenant(t, env, c)
	ag, err := ts.GetAgent(ctx, agentID)
	if err != nil {
		t.Fatal(err)
	}
	ag.Limits.MaxWallSeconds = 1
	if err := ts.PutAgent(ctx, ag, ag.Version); err != nil {
		t.Fatal(err)
	}
	r := &runtime.Runner{Model: offline.New(10 * time.Second), Now: c.Now}
	res, err := r.Execute(ctx, ts, tr, runtime.Request{AgentID: agentID, Message: "hello"})
	if err != nil || res.Execution.Status != bulkhead.ExecTimedOut {
		t.Fatalf("execute = %+v, %v; want status timed_out", res.Execution, err)
	}
	u, err := ts.Counters(ctx, c.Now())
	if err != nil {
		t.Fatal(err)
	}
	if u.Executions != 1 || u.Running != 0 || u.RequestsThisHour != 1 {
		t.Errorf("counters = %+v, want one settled execution and nothing running", u)
	}
}
