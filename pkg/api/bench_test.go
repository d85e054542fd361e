package api_test

import (
	"fmt"
	"strings"
	"testing"
)

// perExecution reports the AWS requests of b.N executions as per-op metrics.
func perExecution(b *testing.B, h *harness) {
	calls := h.env.Calls()
	var ddb, s3 int64
	for op, n := range calls {
		switch {
		case strings.HasPrefix(op, "DynamoDB."):
			ddb += n
		case strings.HasPrefix(op, "S3."):
			s3 += n
		}
	}
	b.ReportMetric(float64(ddb)/float64(b.N), "ddb-req/op")
	b.ReportMetric(float64(s3)/float64(b.N), "s3-req/op")
}

// BenchmarkExecuteNewConversation is the whole execute path over HTTP:
// gateway, authorizer, admission, model (no delay), transcript, settlement.
func BenchmarkExecuteNewConversation(b *testing.B) {
	h := newHarness(b, 0)
	a := h.newTenant("bench", "enterprise")
	agent := h.newAgent(a)
	body := map[string]any{"message": "What is the weather like?"}
	h.env.Calls()
	b.ResetTimer()
	for range b.N {
		h.must(200, "POST", "/v1/agents/"+agent+"/execute", a.key, body)
	}
	b.StopTimer()
	perExecution(b, h)
}

// BenchmarkExecuteParallel runs new-conversation executions from several
// goroutines against one tenant.
func BenchmarkExecuteParallel(b *testing.B) {
	h := newHarness(b, 0)
	a := h.newTenant("bench", "enterprise")
	agent := h.newAgent(a)
	h.env.Calls()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r := h.do("POST", "/v1/agents/"+agent+"/execute", a.key, map[string]any{"message": "hello"})
			if r.status != 200 {
				b.Errorf("status %d %s", r.status, r.raw)
				return
			}
		}
	})
	b.StopTimer()
	perExecution(b, h)
}

// BenchmarkExecuteLongConversation continues one conversation that already
// has 200 turns: the cost of a turn must not grow with its history.
func BenchmarkExecuteLongConversation(b *testing.B) {
	for _, turns := range []int{1, 200} {
		b.Run(fmt.Sprintf("after-%d-turns", turns), func(b *testing.B) {
			h := newHarness(b, 0)
			a := h.newTenant("bench", "enterprise")
			agent := h.newAgent(a)
			conv := h.must(200, "POST", "/v1/agents/"+agent+"/execute", a.key, map[string]any{"message": "start"}).str("conversation_id")
			for range turns - 1 {
				h.must(200, "POST", "/v1/agents/"+agent+"/execute", a.key, map[string]any{"message": "more", "conversation_id": conv})
			}
			h.env.Calls()
			b.ResetTimer()
			for range b.N {
				h.must(200, "POST", "/v1/agents/"+agent+"/execute", a.key, map[string]any{"message": "next", "conversation_id": conv})
			}
			b.StopTimer()
			perExecution(b, h)
		})
	}
}
