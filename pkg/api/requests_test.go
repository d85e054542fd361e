package api_test

import (
	"maps"
	"strings"
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
		// the catalogue entry of the agent's model (this process's first
		// execution of it: the runner keeps it for
		// runtime.DefaultModelCacheTTL; apart from the tenant's batch, which
		// runs on tenant-scoped credentials that cannot read the catalogue
		// partition)
		"DynamoDB.GetItem": 1,
		// authorizer: the key and its tenant; execution: tenant, agent, the
		// counter item
		"DynamoDB.BatchGetItem":       2,
		"DynamoDB.Query":              1, // the breaker's windows (the first check in 5 s): the counter item and its checkpoints
		"DynamoDB.PutItem":            1, // the breaker's checkpoint of this 10-second slot
		"DynamoDB.UpdateItem":         1, // admission: one conditional update of the counter item
		"DynamoDB.TransactWriteItems": 1, // settlement (with the turn, kept inline)
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
		"DynamoDB.BatchGetItem":       2, // the authorizer's; the execution's, + the conversation head
		"DynamoDB.UpdateItem":         1,
		"DynamoDB.TransactWriteItems": 1,
		"DynamoDB.Query":              1, // the context window, however long the conversation (the model's entry is still cached)
	}
	if !maps.Equal(later, want) {
		t.Errorf("turn 14: requests %v, want %v", later, want)
	}

	// A turn larger than dynamo.InlineTurnBytes is an object of its own,
	// and the next turn's context reads it from there.
	h.must(200, "POST", "/v1/agents/"+agent+"/execute", a.key, map[string]any{"message": strings.Repeat("large ", 1000), "conversation_id": conv})
	h.env.Calls()
	h.must(200, "POST", "/v1/agents/"+agent+"/execute", a.key, map[string]any{"message": "after", "conversation_id": conv})
	want["S3.GetObject"] = 1
	if after := h.env.Calls(); !maps.Equal(after, want) {
		t.Errorf("after a large turn: requests %v, want %v", after, want)
	}
}
