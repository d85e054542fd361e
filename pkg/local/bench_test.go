package local

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/bulkhead-dev/bulkhead/pkg/bulkhead"
	"github.com/bulkhead-dev/bulkhead/pkg/offline"
	"github.com/bulkhead-dev/bulkhead/pkg/providers/openai"
	"github.com/bulkhead-dev/bulkhead/pkg/providers/openai/openaifake"
)

// BenchmarkExecuteModels is the platform's overhead per execute through the
// local gateway, the model answering at once: the offline model in the
// process, and an OpenAI-compatible endpoint (a fake on loopback that
// answers at once), buffered and streamed. Streamed executions also report
// the time to the first byte of the event stream (ttfb-ns/op).
func BenchmarkExecuteModels(b *testing.B) {
	fake := openaifake.New()
	defer fake.Close()
	oa, err := openai.New(openai.Config{BaseURL: fake.URL()})
	if err != nil {
		b.Fatal(err)
	}
	// Each case gets a platform of its own: the embedded DynamoDB's
	// transactions slow down as its table grows, which would make the later
	// cases look dearer.
	for _, model := range []string{bulkhead.DefaultModel, "openai/gpt-4o-mini"} {
		for _, stream := range []bool{false, true} {
			name := model + "/buffered"
			if stream {
				name = model + "/streamed"
			}
			b.Run(strings.ReplaceAll(name, "/", "_"), func(b *testing.B) {
				benchExecute(b, oa, model, stream)
			})
		}
	}
}

// benchExecute runs b.N executions of one agent on model, one after another.
func benchExecute(b *testing.B, oa bulkhead.Model, model string, stream bool) {
	p, err := Start(context.Background(), Config{Addr: "127.0.0.1:0", DataDir: b.TempDir(), Model: offline.New(0),
		Providers: map[string]bulkhead.Model{bulkhead.ProviderOpenAI: oa}, Out: io.Discard})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close(context.Background())
	key := p.Demo.APIKey
	hc := &http.Client{Timeout: time.Minute}
	post := func(path string, body map[string]any) *http.Response {
		raw, _ := json.Marshal(body)
		req, _ := http.NewRequest("POST", p.URL+path, bytes.NewReader(raw))
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Content-Type", "application/json")
		resp, err := hc.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		return resp
	}
	// The demo tenant's throttle and hourly quota would stop a long run:
	// the operator moves it to the enterprise tier and lifts its quota.
	liftQuota(b, p)
	resp := post("/v1/agents", map[string]any{"name": "bench", "system_prompt": "Be brief.", "model": model})
	var created struct {
		AgentID string `json:"agent_id"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&created); err != nil || resp.StatusCode != http.StatusCreated {
		b.Fatalf("create agent on %s: %d %v", model, resp.StatusCode, err)
	}
	resp.Body.Close()
	var ttfb time.Duration
	for b.Loop() {
		start := time.Now()
		resp := post("/v1/agents/"+created.AgentID+"/execute", map[string]any{"message": "Hello, how are you?", "stream": stream})
		br := bufio.NewReader(resp.Body)
		if _, err := br.Peek(1); err != nil {
			b.Fatal(err)
		}
		ttfb += time.Since(start)
		body, _ := io.ReadAll(br)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || (stream && !bytes.Contains(body, []byte("event: done"))) {
			b.Fatalf("execute: %d %s", resp.StatusCode, body)
		}
	}
	if stream {
		b.ReportMetric(float64(ttfb.Nanoseconds())/float64(b.N), "ttfb-ns/op")
	}
}

// liftQuota moves the demo tenant to the enterprise tier (1,000 requests a
// second) and raises its hourly request and monthly token quotas.
func liftQuota(b *testing.B, p *Platform) {
	raw, _ := json.Marshal(map[string]any{"tier": "enterprise", "quota": map[string]any{"max_requests_per_hour": 10_000_000, "max_tokens_per_month": 10_000_000_000}})
	req, _ := http.NewRequest("PATCH", p.URL+"/v1/admin/tenants/"+p.Demo.TenantID, bytes.NewReader(raw))
	req.Header.Set("Authorization", "Bearer "+p.AdminToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b.Fatalf("lift the demo tenant's quota: %d", resp.StatusCode)
	}
}
