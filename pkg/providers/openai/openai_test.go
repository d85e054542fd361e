package openai_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/bulkhead-dev/bulkhead/pkg/bulkhead"
	"github.com/bulkhead-dev/bulkhead/pkg/providers/openai"
	"github.com/bulkhead-dev/bulkhead/pkg/providers/openai/openaifake"
)

func setup(t *testing.T, key string) (*openaifake.Server, *openai.Model) {
	t.Helper()
	fake := openaifake.New()
	t.Cleanup(fake.Close)
	m, err := openai.New(openai.Config{BaseURL: fake.URL(), APIKey: key})
	if err != nil {
		t.Fatal(err)
	}
	return fake, m
}

func request(text string) bulkhead.ModelRequest {
	return bulkhead.ModelRequest{
		Model:           "gpt-test",
		SystemPrompt:    "You are terse.",
		Messages:        []bulkhead.Message{{Role: bulkhead.RoleUser, Content: text}},
		MaxOutputTokens: 256,
	}
}

func TestNewValidatesURL(t *testing.T) {
	for _, u := range []string{"", "ftp://x/v1", "http:///v1", "not a url", "http://user:pw@host/v1"} {
		if _, err := openai.New(openai.Config{BaseURL: u}); !bulkhead.IsCode(err, bulkhead.Invalid) {
			t.Errorf("New(%q) = %v, want Invalid", u, err)
		}
	}
}

func TestGenerateBufferedWithUsage(t *testing.T) {
	fake, m := setup(t, "")
	fake.Enqueue(openaifake.Reply{Text: "Hello there", PromptTokens: 11, CompletionTokens: 3})
	res, err := m.Generate(context.Background(), request("hi"))
	if err != nil {
		t.Fatal(err)
	}
	if res.Text != "Hello there" || res.InputTokens != 11 || res.OutputTokens != 3 || len(res.ToolCalls) != 0 {
		t.Fatalf("got %+v", res)
	}
	rec := fake.Requests()[0]
	if rec.Streamed || rec.Model != "gpt-test" {
		t.Fatalf("recorded %+v", rec)
	}
	msgs := rec.Body["messages"].([]any)
	if len(msgs) != 2 || msgs[0].(map[string]any)["role"] != "system" || msgs[1].(map[string]any)["content"] != "hi" {
		t.Fatalf("messages %v", msgs)
	}
	if rec.Body["max_completion_tokens"] != float64(256) {
		t.Fatalf("body %v", rec.Body)
	}
}

func TestDefaultReplyAndCountTokensBound(t *testing.T) {
	fake, m := setup(t, "")
	req := request("héllo wörld, a longer message")
	res, err := m.Generate(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if res.Text != "Echo: héllo wörld, a longer message" {
		t.Fatalf("text %q", res.Text)
	}
	if n := m.CountTokens(req); n < res.InputTokens || res.InputTokens <= 0 {
		t.Fatalf("CountTokens %d < prompt_tokens %d", n, res.InputTokens)
	}
	if fake.Count() != 1 {
		t.Fatalf("count %d", fake.Count())
	}
}

func TestToolCallRoundTrip(t *testing.T) {
	fake, m := setup(t, "")
	req := request("tool:lookup the weather")
	req.Tools = []json.RawMessage{json.RawMessage(`"lookup"`), json.RawMessage(`"invoke_agent"`),
		json.RawMessage(`{"name":"calc","description":"Adds.","parameters":{"type":"object","properties":{"a":{"type":"number"}}}}`)}
	res, err := m.Generate(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.ToolCalls) != 1 || res.ToolCalls[0].Name != "lookup" || string(res.ToolCalls[0].Arguments) != `{"input":"the weather"}` {
		t.Fatalf("tool calls %+v", res.ToolCalls)
	}
	tools := fake.Requests()[0].Body["tools"].([]any)
	calc := tools[2].(map[string]any)["function"].(map[string]any)
	if calc["name"] != "calc" || calc["description"] != "Adds." || calc["parameters"].(map[string]any)["properties"] == nil {
		t.Fatalf("tools %v", tools)
	}
	req.Messages = append(req.Messages,
		bulkhead.Message{Role: bulkhead.RoleAssistant, ToolCalls: res.ToolCalls},
		bulkhead.Message{Role: bulkhead.RoleTool, ToolCallID: res.ToolCalls[0].ID, Name: "lookup", Content: "sunny"})
	res, err = m.Generate(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if res.Text != "Tool said: sunny" {
		t.Fatalf("text %q", res.Text)
	}
	// A tool message answering no call is refused by the server's validation.
	req.Messages[2].ToolCallID = "call_unknown"
	if _, err := m.Generate(context.Background(), req); !bulkhead.IsCode(err, bulkhead.Invalid) || !strings.Contains(err.Error(), "tool") {
		t.Fatalf("err %v", err)
	}
}

func TestToolCallArgumentsNotJSON(t *testing.T) {
	fake, m := setup(t, "")
	fake.Enqueue(openaifake.Reply{ToolCalls: []openaifake.ToolCall{{ID: "c1", Name: "x", Arguments: "not json"}}})
	res, err := m.Generate(context.Background(), request("go"))
	if err != nil {
		t.Fatal(err)
	}
	if string(res.ToolCalls[0].Arguments) != `"not json"` {
		t.Fatalf("args %s", res.ToolCalls[0].Arguments)
	}
}

func TestStreamDeltasAndUsage(t *testing.T) {
	fake, m := setup(t, "")
	text := "The quick brown fox jumps over the lazy dog, twice: ünïcode too."
	fake.Enqueue(openaifake.Reply{Text: text, PromptTokens: 21, CompletionTokens: 9,
		ToolCalls: []openaifake.ToolCall{{ID: "c1", Name: "a", Arguments: `{"k":"v1"}`}, {ID: "c2", Name: "b", Arguments: `{"k":"v2"}`}}})
	var deltas []string
	res, err := m.GenerateStream(context.Background(), request("stream please"), func(s string) { deltas = append(deltas, s) })
	if err != nil {
		t.Fatal(err)
	}
	if len(deltas) < 2 || strings.Join(deltas, "") != text || res.Text != text {
		t.Fatalf("deltas %q text %q", deltas, res.Text)
	}
	if res.InputTokens != 21 || res.OutputTokens != 9 {
		t.Fatalf("usage %d/%d", res.InputTokens, res.OutputTokens)
	}
	if len(res.ToolCalls) != 2 || res.ToolCalls[1].ID != "c2" || string(res.ToolCalls[1].Arguments) != `{"k":"v2"}` {
		t.Fatalf("tool calls %+v", res.ToolCalls)
	}
	rec := fake.Requests()[0]
	if !rec.Streamed || rec.Body["stream_options"].(map[string]any)["include_usage"] != true {
		t.Fatalf("body %v", rec.Body)
	}
}

func TestStreamCutMidway(t *testing.T) {
	fake, m := setup(t, "")
	fake.Enqueue(openaifake.Reply{Text: "one two three four five six seven eight", CutAfter: 2})
	req := request("cut")
	var got string
	res, err := m.GenerateStream(context.Background(), req, func(s string) { got += s })
	if !bulkhead.IsCode(err, bulkhead.Unavailable) {
		t.Fatalf("err %v", err)
	}
	if res.Text == "" || res.Text != got || !strings.HasPrefix("one two three four five six seven eight", res.Text) || len(res.Text) == len("one two three four five six seven eight") {
		t.Fatalf("partial %q (deltas %q)", res.Text, got)
	}
	if res.InputTokens != m.CountTokens(req) || res.OutputTokens != int64(len(res.Text)) {
		t.Fatalf("tokens %d/%d", res.InputTokens, res.OutputTokens)
	}
}

func TestMaxTokensFallbackRemembered(t *testing.T) {
	fake, m := setup(t, "")
	fake.RefuseMaxCompletionTokens = true
	for i := range 2 {
		if _, err := m.Generate(context.Background(), request("hi")); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	recs := fake.Requests()
	if len(recs) != 3 {
		t.Fatalf("%d requests, want 3", len(recs))
	}
	if _, ok := recs[0].Body["max_completion_tokens"]; !ok {
		t.Fatalf("first %v", recs[0].Body)
	}
	for _, r := range recs[1:] {
		if r.Body["max_tokens"] != float64(256) || r.Body["max_completion_tokens"] != nil {
			t.Fatalf("later %v", r.Body)
		}
	}
}

func TestErrorClassification(t *testing.T) {
	fake, m := setup(t, "")
	fake.Enqueue(openaifake.Fail{Status: 429, Message: "Rate limit reached", RetryAfter: 7},
		openaifake.Fail{Status: 500, Message: "boom"},
		openaifake.Fail{Status: 400, Message: "This model's maximum context length is 8192 tokens. " + strings.Repeat("x", 2000)})
	_, err := m.Generate(context.Background(), request("a"))
	if e := bulkhead.AsError(err); e == nil || e.Code != bulkhead.Throttled || e.RetryAfter != 7 {
		t.Fatalf("429: %v", err)
	}
	_, err = m.GenerateStream(context.Background(), request("b"), nil)
	if !bulkhead.IsCode(err, bulkhead.Unavailable) {
		t.Fatalf("500: %v", err)
	}
	_, err = m.Generate(context.Background(), request("c"))
	e := bulkhead.AsError(err)
	if e == nil || e.Code != bulkhead.Invalid || !strings.Contains(e.Message, "maximum context length") || len(e.Message) > 400 {
		t.Fatalf("400: %v", err)
	}
}

func TestConnectionRefusedIsUnavailable(t *testing.T) {
	fake := openaifake.New()
	base := fake.URL()
	fake.Close()
	m, err := openai.New(openai.Config{BaseURL: base})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Generate(context.Background(), request("x")); !bulkhead.IsCode(err, bulkhead.Unavailable) {
		t.Fatalf("err %v", err)
	}
}

func TestHangEndsWithDeadline(t *testing.T) {
	fake, m := setup(t, "")
	fake.Enqueue(openaifake.Hang{}, openaifake.Hang{})
	for _, stream := range []bool{false, true} {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		var err error
		if stream {
			_, err = m.GenerateStream(ctx, request("x"), nil)
		} else {
			_, err = m.Generate(ctx, request("x"))
		}
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("stream=%v: %v", stream, err)
		}
	}
}

func TestAPIKey(t *testing.T) {
	const key = "sk-secret-test-key-123"
	fake, m := setup(t, key)
	fake.Key = key
	if _, err := m.Generate(context.Background(), request("x")); err != nil {
		t.Fatal(err)
	}
	if r := fake.Requests()[0]; !r.Authorized || r.Header.Get("Authorization") != "" {
		t.Fatalf("recorded %+v", r)
	}
	// A wrong key is refused; the error never shows the key.
	wrong, err := openai.New(openai.Config{BaseURL: fake.URL(), APIKey: "sk-wrong-key-456"})
	if err != nil {
		t.Fatal(err)
	}
	fake.Enqueue(openaifake.Fail{Status: 400, Message: "bad request from " + key})
	for _, mm := range []*openai.Model{wrong, m} {
		_, err := mm.Generate(context.Background(), request("x"))
		if !bulkhead.IsCode(err, bulkhead.Invalid) || strings.Contains(err.Error(), "sk-") {
			t.Fatalf("err %v", err)
		}
	}
	// Without a key, no Authorization header is sent.
	fake2, anon := setup(t, "")
	if _, err := anon.Generate(context.Background(), request("x")); err != nil {
		t.Fatal(err)
	}
	if fake2.Requests()[0].Authorized {
		t.Fatal("Authorization sent without a key")
	}
}
