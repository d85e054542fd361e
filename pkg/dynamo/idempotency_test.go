package dynamo_test

import (
	"context"
	"testing"
	"time"

	"github.com/bulkhead-dev/bulkhead/pkg/dynamo"
)

// TestIdempotentExecutionResultOnRecord claims a key for an execution, whose
// settlement stores the result on its usage record: a second claim while it
// runs is told it is in progress, one after it settled gets the result (also
// once the lock has passed: a finished execution is never run again), and a
// key whose execution died is taken over only after its lock passed. The
// dead execution settling late does not change what the key answers.
func TestIdempotentExecutionResultOnRecord(t *testing.T) {
	ctx := context.Background()
	ts := mustStore(t).Tenant("tn_a")
	const lock = 7 * time.Minute
	res := dynamo.Reservation{Tokens: 1000, Spend: 5000, Bytes: 4096}
	run := func(ref *dynamo.ExecutionRef, claim *dynamo.IdemClaim, body string) {
		t.Helper()
		if err := ts.Admit(ctx, dynamo.Admission{ExecutionID: ref.ID, Now: ref.StartedAt, Lease: time.Minute, Quota: bigQuota, Reserve: res}); err != nil {
			t.Fatal(err)
		}
		e := exec(ref.ID, "", 10, 5)
		e.StartedAt, e.FinishedAt = ref.StartedAt, ref.StartedAt.Add(time.Second)
		if err := ts.Settle(ctx, dynamo.Settlement{Execution: e, Reserved: res,
			Idem: &dynamo.IdemCompletion{Claim: *claim, Status: 200, Body: body}}); err != nil {
			t.Fatal(err)
		}
		if !claim.Stored() {
			t.Error("the settlement stored the result, but the claim is not marked")
		}
	}

	ref := &dynamo.ExecutionRef{ID: "exec_1", StartedAt: t0}
	claim, rec, err := ts.ClaimIdempotency(ctx, "k1", "fp", t0, lock, ref)
	if err != nil || claim == nil || rec != nil {
		t.Fatalf("first claim: %+v %+v %v", claim, rec, err)
	}
	if c, r, err := ts.ClaimIdempotency(ctx, "k1", "fp", t0.Add(time.Second), lock, &dynamo.ExecutionRef{ID: "exec_x", StartedAt: t0}); err != nil || c != nil || r.State != dynamo.IdemInProgress {
		t.Fatalf("claim while it runs: %+v %+v %v; want in progress", c, r, err)
	}
	run(ref, claim, `{"answer":1}`)
	for _, at := range []time.Time{t0.Add(time.Minute), t0.Add(lock + time.Minute)} {
		c, r, err := ts.ClaimIdempotency(ctx, "k1", "fp", at, lock, &dynamo.ExecutionRef{ID: "exec_y", StartedAt: at})
		if err != nil || c != nil || r.State != dynamo.IdemDone || r.Status != 200 || r.Body != `{"answer":1}` {
			t.Fatalf("claim at %v after it settled: %+v %+v %v; want the stored result", at, c, r, err)
		}
	}
	if r, err := ts.GetIdempotency(ctx, "k1"); err != nil || r.State != dynamo.IdemDone || r.Body != `{"answer":1}` {
		t.Errorf("read the finished key: %+v %v", r, err)
	}

	// An execution that died holding its key: in progress until the lock
	// passes, then taken over; the dead one settling late changes nothing.
	dead := &dynamo.ExecutionRef{ID: "exec_2", StartedAt: t0}
	deadClaim, _, err := ts.ClaimIdempotency(ctx, "k2", "fp", t0, lock, dead)
	if err != nil || deadClaim == nil {
		t.Fatal(err)
	}
	if c, r, err := ts.ClaimIdempotency(ctx, "k2", "fp", t0.Add(lock-time.Second), lock, &dynamo.ExecutionRef{ID: "exec_3", StartedAt: t0}); err != nil || c != nil || r.State != dynamo.IdemInProgress {
		t.Fatalf("claim before the lock passed: %+v %+v %v; want in progress", c, r, err)
	}
	later := t0.Add(lock + time.Second)
	next := &dynamo.ExecutionRef{ID: "exec_3", StartedAt: later}
	takeover, _, err := ts.ClaimIdempotency(ctx, "k2", "fp", later, lock, next)
	if err != nil || takeover == nil {
		t.Fatalf("claim after the lock passed: %+v %v; want it taken over", takeover, err)
	}
	if c, r, err := ts.ClaimIdempotency(ctx, "k2", "fp", later, lock, &dynamo.ExecutionRef{ID: "exec_4", StartedAt: later}); err != nil || c != nil || r.State != dynamo.IdemInProgress {
		t.Fatalf("a second takeover: %+v %+v %v; want in progress", c, r, err)
	}
	run(dead, deadClaim, `{"answer":"dead"}`)
	run(next, takeover, `{"answer":3}`)
	if _, r, err := ts.ClaimIdempotency(ctx, "k2", "fp", later.Add(time.Minute), lock, nil); err != nil || r == nil || r.Body != `{"answer":3}` {
		t.Errorf("the key after both settled: %+v %v; want the takeover's result", r, err)
	}
	if _, r, err := ts.ClaimIdempotency(ctx, "k2", "other", later, lock, nil); err != nil || r == nil || r.Fingerprint == "other" {
		t.Errorf("another request with the key: %+v %v; want the stored record to tell the mismatch", r, err)
	}
	if u, err := ts.Counters(ctx, t0); err != nil || u.Executions != 3 {
		t.Errorf("executions metered: %d, %v; want 3 (each that ran)", u.Executions, err)
	}
}
