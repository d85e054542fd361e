package api_test

import (
	"testing"
)

// TestCommittedTransactionsWhoseAnswerWasLost: DynamoDB commits a
// transaction but its answer is lost, so it is asked again. The
// ClientRequestToken makes DynamoDB recognise the second asking as the first:
// the execution runs once, is counted once, and nothing stays held. Without
// it, a retried admission fails its own conditions (its lease exists, the
// only slot is taken) and the caller is refused with the lease still held.
func TestCommittedTransactionsWhoseAnswerWasLost(t *testing.T) {
	for _, c := range []struct {
		name string
		lost int
	}{
		// The SDK retries with the token it put on the call: the admission's
		// answer is lost once, then the settlement's.
		{"the SDK's retry", 2},
		// The SDK makes 3 attempts and all of them lose their answers, and
		// so does the first attempt of the platform's second call: only the
		// platform's own token, derived from the execution, is the same.
		{"the platform's second call after the SDK gave up", 4},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, 0)
			a := h.newTenant("acme", "professional")
			h.setQuota(a, map[string]any{"max_concurrent_agents": 1})
			agent := h.newAgent(a)
			h.env.Dynamo.LoseResponses("TransactWriteItems", c.lost)
			r := h.execute(a, agent, "hello")
			if r.status != 200 || r.str("status") != "completed" {
				t.Fatalf("execute with %d lost answers: %d %s", c.lost, r.status, r.raw)
			}
			u := h.assertBalanced(a)
			for name, want := range map[string]int64{"requests_this_hour": 1, "executions_this_month": 1, "concurrent_agents": 0} {
				if got := num(t, u[name]); got != want {
					t.Errorf("%s = %d, want %d", name, got, want)
				}
			}
			// The slot is free: the next execution is admitted.
			if r := h.execute(a, agent, "again"); r.status != 200 {
				t.Errorf("next execution: %d %s", r.status, r.raw)
			}
		})
	}
}
