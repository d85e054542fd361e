package dynamo_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/bulkhead-dev/bulkhead/pkg/bulkhead"
	"github.com/bulkhead-dev/bulkhead/pkg/dynamo"
)

// TestInlineTurnsSettleWithTheHead settles a conversation's turns with
// their messages inline: each turn exists exactly when the head counts it
// (a settlement retried, or refused because its turn is not the next one,
// writes no turn of its own), a window of turns is read back in order, another
// tenant reads none, and DeleteTurns removes them all.
func TestInlineTurnsSettleWithTheHead(t *testing.T) {
	ctx := context.Background()
	s := mustStore(t)
	ts := s.Tenant("tn_a")
	res := dynamo.Reservation{Tokens: 1000, Spend: 5000, Bytes: 8192}
	const cid = "conv_1"
	body := func(n int64) []byte { return fmt.Appendf(nil, `[{"role":"user","content":"turn %d"}]`, n) }
	for n := int64(1); n <= 12; n++ {
		eid := fmt.Sprintf("exec_%d", n)
		adm := dynamo.Admission{ExecutionID: eid, AgentID: "agt_a", ConversationID: cid, Turn: n, Now: t0, Lease: time.Minute, Quota: bigQuota, Reserve: res}
		if n > 1 {
			adm.Conversation = &dynamo.ConversationClaim{ID: cid, Turns: n - 1}
		}
		if err := ts.Admit(ctx, adm); err != nil {
			t.Fatalf("turn %d: admit: %v", n, err)
		}
		e := exec(eid, cid, 10, 5)
		e.StartedAt = t0.Add(time.Duration(n) * time.Second)
		st := dynamo.Settlement{Execution: e, Reserved: res, Claimed: n > 1,
			Turn: &dynamo.SettledTurn{New: n == 1, AgentID: "agt_a", Bytes: int64(len(body(n))), CreatedAt: t0, Number: n, Messages: body(n)}}
		for range 2 { // a retried settlement changes nothing
			if err := ts.Settle(ctx, st); err != nil {
				t.Fatalf("turn %d: settle: %v", n, err)
			}
		}
	}
	c, err := ts.GetConversation(ctx, cid)
	if err != nil || c.Turns != 12 {
		t.Fatalf("head: %+v, %v; want 12 turns", c, err)
	}
	src := ts.TurnSource(c)
	got, err := src.Turns(ctx, cid, 3, 12)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 10 {
		t.Fatalf("turns 3-12: %d, want 10", len(got))
	}
	for n := int64(3); n <= 12; n++ {
		if string(got[n]) != string(body(n)) {
			t.Errorf("turn %d = %s, want %s", n, got[n], body(n))
		}
	}
	all, err := src.Turns(ctx, cid, 1, 1000)
	if err != nil || len(all) != 12 || string(all[1]) != string(body(1)) {
		t.Errorf("all turns: %d, %v; want 12, the first from the head", len(all), err)
	}
	if c.FirstTurn == nil {
		t.Error("the head does not hold the small first turn")
	}

	// An execution that read the head before the last turn settled is
	// refused at admission, before its model runs, and writes nothing.
	stale := dynamo.Admission{ExecutionID: "exec_stale", AgentID: "agt_a", ConversationID: cid, Turn: 12, Now: t0, Lease: time.Minute, Quota: bigQuota,
		Reserve: res, Conversation: &dynamo.ConversationClaim{ID: cid, Turns: 11}}
	if err := ts.Admit(ctx, stale); !bulkhead.IsCode(err, bulkhead.Conflict) {
		t.Fatalf("admit over a stale turn count: %v, want conflict", err)
	}
	if u, err := ts.Counters(ctx, t0); err != nil || u.Running != 0 {
		t.Fatalf("after the refusal: %+v, %v; want nothing running", u, err)
	}

	// A settlement of a turn that is not the next one is metered but writes
	// no turn.
	adm := dynamo.Admission{ExecutionID: "exec_lost", AgentID: "agt_a", ConversationID: cid, Turn: 13, Now: t0, Lease: time.Minute, Quota: bigQuota,
		Reserve: res, Conversation: &dynamo.ConversationClaim{ID: cid, Turns: 12}}
	if err := ts.Admit(ctx, adm); err != nil {
		t.Fatal(err)
	}
	if _, err := ts.StartDeleteConversation(ctx, cid); !bulkhead.IsCode(err, bulkhead.Conflict) {
		t.Fatalf("delete while claimed: %v, want conflict", err)
	}
	lost := dynamo.Settlement{Execution: exec("exec_lost", cid, 1, 1), Reserved: res, Claimed: true,
		Turn: &dynamo.SettledTurn{AgentID: "agt_a", Bytes: 10, CreatedAt: t0, Number: 14, Messages: body(14)}}
	if err := ts.Settle(ctx, lost); !bulkhead.IsCode(err, bulkhead.Conflict) {
		t.Fatalf("settle of turn 14 after 12: %v, want conflict", err)
	}
	if extra, err := src.Turns(ctx, cid, 13, 14); err != nil || len(extra) != 0 {
		t.Errorf("turns past the head: %d, %v; want none", len(extra), err)
	}

	if other, err := s.Tenant("tn_b").TurnSource(bulkhead.Conversation{ID: cid}).Turns(ctx, cid, 1, 1000); err != nil || len(other) != 0 {
		t.Errorf("another tenant reads %d turns, %v; want none", len(other), err)
	}
	if err := ts.DeleteTurns(ctx, cid); err != nil {
		t.Fatal(err)
	}
	if left, err := ts.TurnSource(bulkhead.Conversation{ID: cid}).Turns(ctx, cid, 1, 1000); err != nil || len(left) != 0 {
		t.Errorf("after DeleteTurns: %d turns, %v; want none", len(left), err)
	}
}
