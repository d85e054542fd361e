package api_test

import (
	"testing"
)

// TestSDKRetryOfCommittedTransactions: DynamoDB commits an admission (and
// then a settlement) but the answer is lost, so the SDK retries the same
// transaction. Its ClientRequestToken makes DynamoDB recognise the retry:
// the execution runs once, is counted once, and nothing stays held. Without
// the token, the retried admission would fail its own conditions (its lease
// exists, the only slot is taken) and the caller would be refused with the
// lease still held.
func TestSDKRetryOfCommittedTransactions(t *testing.T) {
	h := newHarness(t, 0)
	a := h.newTenant("acme", "professional")
	h.setQuota(a, map[string]any{"max_concurrent_agents": 1})
	agent := h.newAgent(a)

	// The admission's answer is lost once, then the settlement's.
	h.env.Dynamo.LoseResponses("TransactWriteItems", 2)
	r := h.execute(a, agent, "hello")
	if r.status != 200 || r.str("status") != "completed" {
		t.Fatalf("execute with lost answers: %d %s", r.status, r.raw)
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
}

// TestAdmissionOutcomeUnknownAskedAgain: an admission commits but every
// answer the SDK gets is lost, so the SDK gives up and the outcome is
// unknown. The platform asks again with the same ClientRequestToken (derived
// from the execution, not the SDK's per-call one), DynamoDB answers with the
// committed outcome, and the execution runs: its slot is not left held.
func TestAdmissionOutcomeUnknownAskedAgain(t *testing.T) {
	h := newHarness(t, 0)
	a := h.newTenant("acme", "professional")
	h.setQuota(a, map[string]any{"max_concurrent_agents": 1})
	agent := h.newAgent(a)

	// The SDK makes 3 attempts: all of them lose their answers, and so does
	// the first attempt of the platform's second call.
	h.env.Dynamo.LoseResponses("TransactWriteItems", 4)
	r := h.execute(a, agent, "hello")
	if r.status != 200 || r.str("status") != "completed" {
		t.Fatalf("execute whose admission answer was lost 4 times: %d %s", r.status, r.raw)
	}
	u := h.assertBalanced(a)
	for name, want := range map[string]int64{"requests_this_hour": 1, "executions_this_month": 1, "concurrent_agents": 0} {
		if got := num(t, u[name]); got != want {
			t.Errorf("%s = %d, want %d", name, got, want)
		}
	}
}
