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
		// authorizer: key, tenant; the catalogue entry of the agent's model
		// (this process's first execution of it: the runner keeps it for
		// runtime.DefaultModelCacheTTL; apart from the tenant's batch, which
		// runs on tenant-scoped credentials that cannot read the catalogue
		// partition)
		"DynamoDB.GetItem":            3,
		"DynamoDB.BatchGetItem":       2, // tenant, agent, live counters; the breaker's spend window (the first in 5 s)
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
		"DynamoDB.GetItem":            2, // the model's entry is still cached (the clock has not moved)
		"DynamoDB.BatchGetItem":       1, // + the conversation head, in the same batch
		"DynamoDB.TransactWriteItems": 2,
		"S3.GetObject":                10, // the context window, however long the conversation
		"S3.PutObject":                1,
	}
	if !maps.Equal(later, want) {
		t.Errorf("turn 14: requests %v, want %v", later, want)
	}
}
