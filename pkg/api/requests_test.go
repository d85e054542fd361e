package api_test

import (
	"maps"
	"testing"
)

// TestRequestsPerExecution pins the AWS requests one execution makes, so a
// change that adds a round trip to the hot path is seen.
func TestRequestsPerExecution(t *testing.T) {
	h := newHarness(t, 0)
	a := h.newTenant("acme", "starter")
	agent := h.newAgent(a)
	h.env.Calls()
	conv := h.must(200, "POST", "/v1/agents/"+agent+"/execute", a.key, map[string]any{"message": "one"}).str("conversation_id")
	first := h.env.Calls()
	want := map[string]int64{
		// the catalogue entry of the agent's model (read at every execution
		// so a price change applies at once, and apart from the tenant's
		// batch, which runs on tenant-scoped credentials that cannot read
		// the catalogue partition)
		"DynamoDB.GetItem": 1,
		// authorizer: the key and its tenant; execution: tenant, agent, live
		// counters; the breaker's spend window (the first in 5 s)
		"DynamoDB.BatchGetItem":       3,
		"DynamoDB.TransactWriteItems": 2, // admission, settlement
		"S3.PutObject":                1, // the turn
	}
	if !maps.Equal(first, want) {
		t.Errorf("new conversation: requests %v, want %v", first, want)
	}
	for range 12 {
		h.must(200, "POST", "/v1/agents/"+agent+"/execute", a.key, map[string]any{"message": "more", "conversation_id": conv})
	}
	h.env.Calls()
	h.must(200, "POST", "/v1/agents/"+agent+"/execute", a.key, map[string]any{"message": "later", "conversation_id": conv})
	later := h.env.Calls()
	want = map[string]int64{
		"DynamoDB.GetItem":            1,
		"DynamoDB.BatchGetItem":       2, // the authorizer's; the execution's, + the conversation head
		"DynamoDB.TransactWriteItems": 2,
		"S3.GetObject":                10, // the context window, however long the conversation
		"S3.PutObject":                1,
	}
	if !maps.Equal(later, want) {
		t.Errorf("turn 14: requests %v, want %v", later, want)
	}
}
