package api_test

import (
	"context"
	"testing"
	"time"

	"github.com/bulkhead-dev/bulkhead/pkg/bulkhead"
	"github.com/bulkhead-dev/bulkhead/pkg/dynamo"
)

// crash admits an execution straight through the store and writes its turn
// to the transcript, then "dies": no settlement, as a process killed between
// writing the turn and settling leaves it.
func (h *harness) crash(t tenant, agent string, conv *dynamo.ConversationClaim, convID string, turn int64) dynamo.Reservation {
	h.t.Helper()
	ctx := context.Background()
	ts, tr := h.env.API.Store().Tenant(t.id), h.env.API.Transcripts().Tenant(t.id)
	prof, err := ts.Profile(ctx)
	if err != nil {
		h.t.Fatal(err)
	}
	res := dynamo.Reservation{Tokens: 1000, Spend: 10_000, Bytes: 50_000}
	exec := bulkhead.NewID("exec")
	if err := ts.Admit(ctx, dynamo.Admission{ExecutionID: exec, AgentID: agent, Conversation: conv, ConversationID: convID, Turn: turn,
		Now: h.clock.Now(), Lease: 90 * time.Second, Quota: prof.Quota(), Reserve: res}); err != nil {
		h.t.Fatal(err)
	}
	msgs := []bulkhead.Message{{Role: bulkhead.RoleUser, Content: "lost", ExecutionID: exec, CreatedAt: h.clock.Now()}}
	if _, err := tr.AppendTurn(ctx, convID, turn, msgs); err != nil {
		h.t.Fatal(err)
	}
	return res
}

// turnExists reports whether the transcript holds the turn's object.
func (h *harness) turnExists(t tenant, convID string, turn int64) bool {
	h.t.Helper()
	msgs, _, err := h.env.API.Transcripts().Tenant(t.id).RecentMessages(context.Background(), convID, turn, 1)
	return err == nil && len(msgs) > 0
}

// TestDeadExecutionReclaimedWithItsOrphanedTurn: an execution that died
// after writing its turn holds a slot, its reserved tokens, spend and bytes,
// and leaves a transcript object no head counts. Until its lease expires it
// is shown as running and its bytes stay counted; once the lease has expired,
// /v1/usage never shows it as running: the reclaim gives everything back and
// removes the orphaned object, and only then stops counting its bytes.
func TestDeadExecutionReclaimedWithItsOrphanedTurn(t *testing.T) {
	h := newHarness(t, 0)
	a := h.newTenant("acme", "professional")
	agent := h.newAgent(a)
	ctx := context.Background()
	ts := h.env.API.Store().Tenant(a.id)

	// A new conversation's first turn, orphaned.
	newConv := bulkhead.NewID("conv")
	res := h.crash(a, agent, nil, newConv, 1)
	if u := h.usage(a); num(t, u["concurrent_agents"]) != 1 || num(t, u["committed_tokens"]) != res.Tokens {
		t.Fatalf("while its lease runs: %v, want 1 running and %d tokens committed", u, res.Tokens)
	}
	if !h.turnExists(a, newConv, 1) {
		t.Fatal("the orphaned turn was not written")
	}

	// A later turn of an existing conversation, orphaned.
	first := h.must(200, "POST", "/v1/agents/"+agent+"/execute", a.key, map[string]any{"message": "hello"})
	conv := first.str("conversation_id")
	h.crash(a, agent, &dynamo.ConversationClaim{ID: conv, Turns: 1}, conv, 2)
	if !h.turnExists(a, conv, 2) {
		t.Fatal("the orphaned second turn was not written")
	}
	before, err := ts.Counters(ctx, h.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	if before.StorageCommitted < before.StorageBytes+2*res.Bytes {
		t.Fatalf("storage committed %d, want the stored %d plus both reservations", before.StorageCommitted, before.StorageBytes)
	}

	// The leases expire: the next /v1/usage shows nothing running.
	h.clock.Set(h.clock.Now().Add(3 * time.Minute))
	u := h.usage(a)
	if num(t, u["concurrent_agents"]) != 0 || num(t, u["committed_tokens"]) != num(t, u["tokens_this_month"]) {
		t.Errorf("after the leases expired: %v, want nothing running or reserved", u)
	}
	if h.turnExists(a, newConv, 1) || h.turnExists(a, conv, 2) {
		t.Errorf("orphaned turns still stored: new conversation %v, second turn %v", h.turnExists(a, newConv, 1), h.turnExists(a, conv, 2))
	}
	after, err := ts.Counters(ctx, h.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	if after.StorageCommitted != after.StorageBytes || after.Running != 0 {
		t.Errorf("after the reclaim: storage committed %d, stored %d, running %d", after.StorageCommitted, after.StorageBytes, after.Running)
	}
	if leases, err := ts.Leases(ctx); err != nil || len(leases) != 0 {
		t.Errorf("leases left: %v %v", leases, err)
	}
	// The conversation is free again, and its turn 2 is the next one's.
	next := h.must(200, "POST", "/v1/agents/"+agent+"/execute", a.key, map[string]any{"message": "again", "conversation_id": conv})
	if next.str("status") != "completed" {
		t.Errorf("the next turn: %v", next.raw)
	}
	c := h.must(200, "GET", "/v1/conversations/"+conv, a.key, nil)
	if n := num(t, c.body["turns"]); n != 2 {
		t.Errorf("conversation turns %d, want 2", n)
	}
	h.assertBalanced(a)
	// Reclaiming again finds nothing.
	if rep, err := h.env.API.ReclaimLeases(ctx, false); err != nil || rep.Reclaimed != 0 || rep.Tenants == 0 {
		t.Errorf("second pass: %+v %v", rep, err)
	}
}

// TestReclaimKeepsTurnsOfAConversationTakenOver: when a dead execution's
// claim on a conversation lapsed and another execution took the
// conversation over (and wrote the same turn number), the reclaim must not
// remove that turn: it is the other execution's.
func TestReclaimKeepsTurnsOfAConversationTakenOver(t *testing.T) {
	h := newHarness(t, 0)
	a := h.newTenant("acme", "professional")
	agent := h.newAgent(a)
	first := h.must(200, "POST", "/v1/agents/"+agent+"/execute", a.key, map[string]any{"message": "hello"})
	conv := first.str("conversation_id")
	h.crash(a, agent, &dynamo.ConversationClaim{ID: conv, Turns: 1}, conv, 2)
	// Its claim lapses with its lease; another execution takes the
	// conversation over and writes turn 2 before any reclaim ran.
	h.clock.Set(h.clock.Now().Add(3 * time.Minute))
	h.must(200, "POST", "/v1/agents/"+agent+"/execute", a.key, map[string]any{"message": "mine", "conversation_id": conv})
	if rep, err := h.env.API.ReclaimLeases(context.Background(), false); err != nil || rep.Reclaimed != 1 {
		t.Fatalf("reclaim: %+v %v, want the dead execution reclaimed", rep, err)
	}
	if !h.turnExists(a, conv, 2) {
		t.Fatal("the reclaim removed a turn another execution wrote")
	}
	c := h.must(200, "GET", "/v1/conversations/"+conv, a.key, nil)
	msgs, _ := c.body["messages"].([]any)
	if n := num(t, c.body["turns"]); n != 2 || len(msgs) < 4 {
		t.Errorf("conversation: %d turns, %d messages", n, len(msgs))
	}
	h.assertBalanced(a)
}
