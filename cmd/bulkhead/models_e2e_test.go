//go:build unix

package main_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bulkhead-dev/bulkhead/pkg/bulkhead"
	"github.com/bulkhead-dev/bulkhead/pkg/providers/bedrock/bedrockfake"
	"github.com/bulkhead-dev/bulkhead/pkg/providers/openai/openaifake"
)

// The model tests run `bulkhead dev` on an OpenAI-compatible endpoint: a
// fake server that speaks Chat Completions at the wire level, driven
// through the platform's real client.

const (
	fakeModel    = "openai/gpt-4o-mini"
	fakeModelKey = "sk-e2e-provider-key-5f1c"
)

// startOnFake starts a fake endpoint and `bulkhead dev` pointed at it.
func startOnFake(t *testing.T, env ...string) (*proc, *openaifake.Server) {
	t.Helper()
	fake := openaifake.New()
	fake.Key = fakeModelKey
	t.Cleanup(fake.Close)
	env = append([]string{"BULKHEAD_OPENAI_BASE_URL=" + fake.URL(), "BULKHEAD_OPENAI_API_KEY=" + fakeModelKey}, env...)
	return startDevEnv(t, t, t.TempDir(), quotaToken, env...), fake
}

// sse is one Server-Sent Event.
type sse struct {
	event string
	data  string
}

// readEvents reads a text/event-stream to its end.
func readEvents(t *testing.T, resp *http.Response) []sse {
	t.Helper()
	defer resp.Body.Close()
	var (
		out []sse
		cur sse
	)
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 8<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if cur.event != "" || cur.data != "" {
				out = append(out, cur)
			}
			cur = sse{}
		case strings.HasPrefix(line, "event:"):
			cur.event = strings.TrimSpace(strings.TrimPrefix(line, "event:"))
		case strings.HasPrefix(line, "data:"):
			cur.data += strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " ")
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("reading the event stream: %v", err)
	}
	return out
}

func streamExecute(t *testing.T, base, key, agent string, body map[string]any) *http.Response {
	t.Helper()
	body["stream"] = true
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest("POST", base+"/v1/agents/"+agent+"/execute", bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// TestOpenAICompatibleModelEndToEnd: an agent on openai/<model> executes
// buffered and streamed; the reply, tokens_used and cost are the fake's
// reply, its reported usage and the catalogue's price.
func TestOpenAICompatibleModelEndToEnd(t *testing.T) {
	t.Parallel()
	p, fake := startOnFake(t)
	c := newClient(p.URL)
	tn := newQuotaTenant(t, c, "professional", nil, nil, fakeModel)
	entry, ok := bulkhead.DefaultModelEntry(fakeModel)
	if !ok {
		t.Fatalf("%s is not in the shipped catalogue", fakeModel)
	}
	agent := c.must(t, http.StatusOK, "GET", "/v1/agents/"+tn.Agent, tn.Key, nil)
	if got := agent.str(t, "model"); got != fakeModel {
		t.Fatalf("agent model %q, want %q", got, fakeModel)
	}

	t.Run("buffered", func(t *testing.T) {
		fake.Enqueue(openaifake.Reply{Text: "Hello from the endpoint.", PromptTokens: 120, CompletionTokens: 30})
		r := c.must(t, http.StatusOK, "POST", "/v1/agents/"+tn.Agent+"/execute", tn.Key, map[string]any{"message": "Hi there"})
		if got := r.str(t, "message"); got != "Hello from the endpoint." {
			t.Errorf("message %q, want the endpoint's reply", got)
		}
		if got := r.int(t, "tokens_used"); got != 150 {
			t.Errorf("tokens_used %d, want the endpoint's 120 + 30", got)
		}
		if got, want := r.micros(t, "cost"), int64(entry.Price().Cost(120, 30)); got != want {
			t.Errorf("cost %d µ$, want %d (120 and 30 tokens at the catalogue's price)", got, want)
		}
		if got := r.str(t, "model"); got != fakeModel {
			t.Errorf("model %q, want %q", got, fakeModel)
		}
		reqs := fake.Requests()
		last := reqs[len(reqs)-1]
		if last.Model != "gpt-4o-mini" {
			t.Errorf("the endpoint was asked for model %q, want the id without the provider prefix", last.Model)
		}
	})

	t.Run("streamed", func(t *testing.T) {
		fake.Enqueue(openaifake.Reply{Text: "Streaming works, word by word, to the very end.", PromptTokens: 200, CompletionTokens: 12})
		resp := streamExecute(t, p.URL, tn.Key, tn.Agent, map[string]any{"message": "Stream it"})
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
			t.Fatalf("streamed execute: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		events := readEvents(t, resp)
		var text strings.Builder
		deltas := 0
		for _, ev := range events[:len(events)-1] {
			if ev.event != "delta" {
				t.Errorf("event %q before done, want only deltas: %v", ev.event, events)
				continue
			}
			var d struct{ Text string }
			if err := json.Unmarshal([]byte(ev.data), &d); err != nil {
				t.Fatalf("delta %q: %v", ev.data, err)
			}
			deltas++
			text.WriteString(d.Text)
		}
		done := events[len(events)-1]
		if done.event != "done" {
			t.Fatalf("last event %q (%s), want done", done.event, done.data)
		}
		r := &response{Status: http.StatusOK, Body: []byte(done.data)}
		dec := json.NewDecoder(strings.NewReader(done.data))
		dec.UseNumber()
		if err := dec.Decode(&r.JSON); err != nil {
			t.Fatalf("done data %q: %v", done.data, err)
		}
		if deltas < 2 || text.String() != r.str(t, "message") || r.str(t, "message") != "Streaming works, word by word, to the very end." {
			t.Errorf("%d deltas joined %q; done message %q", deltas, text.String(), r.str(t, "message"))
		}
		if got := r.int(t, "tokens_used"); got != 212 {
			t.Errorf("tokens_used %d, want the endpoint's reported 212", got)
		}
		if got, want := r.micros(t, "cost"), int64(entry.Price().Cost(200, 12)); got != want {
			t.Errorf("cost %d µ$, want %d", got, want)
		}
	})

	t.Run("more tokens than estimated", func(t *testing.T) {
		// The endpoint reports more input than the reservation: the truth
		// is settled and nothing stays committed.
		small := newQuotaTenant(t, c, "professional", nil, map[string]any{"max_tokens": 1000}, fakeModel)
		fake.Enqueue(openaifake.Reply{Text: "I counted differently.", PromptTokens: 4000, CompletionTokens: 5})
		r := c.must(t, http.StatusOK, "POST", "/v1/agents/"+small.Agent+"/execute", small.Key, map[string]any{"message": "count me"})
		if got := r.int(t, "tokens_used"); got != 4005 {
			t.Errorf("tokens_used %d, want the reported 4005", got)
		}
		u := getUsage(t, c, small.Key)
		if u.tokens != 4005 || u.committed != u.tokens || u.running != 0 {
			t.Errorf("usage %+v: want the reported tokens settled and nothing held", u)
		}
	})

	if strings.Contains(p.stderr.String(), fakeModelKey) || strings.Contains(p.stdout.String(), fakeModelKey) {
		t.Error("the provider key appears in the platform's output")
	}
}

// TestQuotaProofsOnOpenAICompatibleModel runs the quota proofs with the
// OpenAI-compatible endpoint as the model: exact admission at the hourly
// quota, and the monthly token quota never passed, even though the
// endpoint's token counts are known only after each call.
func TestQuotaProofsOnOpenAICompatibleModel(t *testing.T) {
	t.Parallel()
	p, fake := startOnFake(t)
	fake.Delay = 100 * time.Millisecond
	c := newClient(p.URL)
	t.Run("requests", func(t *testing.T) { requestsProof(t, c, []string{p.URL}, fakeModel) })
	t.Run("tokens", func(t *testing.T) { tokensRun(t, c, []string{p.URL}, fakeModel, "How many of us fit?", 200) })
}

// TestBedrockModelEndToEnd: `bulkhead dev` with BULKHEAD_BEDROCK=on signs
// its Converse calls with the SDK's usual credentials and follows
// AWS_ENDPOINT_URL_BEDROCK_RUNTIME to a fake Bedrock runtime that checks
// every signature; an agent on bedrock/<model id> answers and is billed at
// the catalogue's price.
func TestBedrockModelEndToEnd(t *testing.T) {
	t.Parallel()
	const region, akid, secret = "us-east-1", "AKIDBULKHEADE2E", "bedrock-e2e-secret"
	fake := bedrockfake.New(region, akid, secret)
	t.Cleanup(fake.Close)
	empty := filepath.Join(t.TempDir(), "empty-aws-config")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	p := startDevEnv(t, t, t.TempDir(), quotaToken, "BULKHEAD_BEDROCK=on",
		"AWS_ENDPOINT_URL_BEDROCK_RUNTIME="+fake.URL(),
		"AWS_ACCESS_KEY_ID="+akid, "AWS_SECRET_ACCESS_KEY="+secret, "AWS_SESSION_TOKEN=",
		"AWS_REGION="+region, "AWS_DEFAULT_REGION="+region, "AWS_PROFILE=", "AWS_DEFAULT_PROFILE=",
		"AWS_CONFIG_FILE="+empty, "AWS_SHARED_CREDENTIALS_FILE="+empty, "AWS_EC2_METADATA_DISABLED=true",
		"AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=")
	c := newClient(p.URL)
	const model = "bedrock/amazon.nova-lite-v1:0"
	entry, ok := bulkhead.DefaultModelEntry(model)
	if !ok {
		t.Fatalf("%s is not in the shipped catalogue", model)
	}
	tn := newQuotaTenant(t, c, "professional", nil, nil, model)
	fake.Script(bedrockfake.Reply{Text: "Hello from Bedrock.", InputTokens: 250, OutputTokens: 40})
	r := c.must(t, http.StatusOK, "POST", "/v1/agents/"+tn.Agent+"/execute", tn.Key, map[string]any{"message": "Hi"})
	if r.str(t, "message") != "Hello from Bedrock." || r.int(t, "tokens_used") != 290 || r.str(t, "model") != model {
		t.Errorf("execute on Bedrock: %v", r)
	}
	if got, want := r.micros(t, "cost"), int64(entry.Price().Cost(250, 40)); got != want {
		t.Errorf("cost %d µ$, want %d", got, want)
	}
	reqs := fake.Requests()
	if len(reqs) != 1 || reqs[0].ModelID != "amazon.nova-lite-v1:0" {
		t.Errorf("Bedrock got %+v, want one signed Converse call for amazon.nova-lite-v1:0", reqs)
	}
}
