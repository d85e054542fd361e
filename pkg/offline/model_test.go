package offline_test

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/bulkhead-dev/bulkhead/pkg/bulkhead"
	"github.com/bulkhead-dev/bulkhead/pkg/offline"
)

func user(s string) bulkhead.Message { return bulkhead.Message{Role: bulkhead.RoleUser, Content: s} }
func assistant(s string) bulkhead.Message {
	return bulkhead.Message{Role: bulkhead.RoleAssistant, Content: s}
}

// mustGenerate calls Generate with no delay and fails the test on error.
func mustGenerate(tb testing.TB, req bulkhead.ModelRequest) bulkhead.ModelResponse {
	tb.Helper()
	resp, err := offline.New(0).Generate(context.Background(), req)
	if err != nil {
		tb.Fatalf("Generate: %v", err)
	}
	return resp
}

// knownRequest is a request whose token counts are worked out by hand below.
func knownRequest() bulkhead.ModelRequest {
	return bulkhead.ModelRequest{
		Model:        offline.Name,
		SystemPrompt: "You are terse.", // 14 bytes -> 4 tokens
		Messages: []bulkhead.Message{
			user("hello"),         // 5 bytes  -> 2 + 4 = 6
			assistant("hi there"), // 8 bytes  -> 2 + 4 = 6
			user("how are you?"),  // 12 bytes -> 3 + 4 = 7
		},
		Tools: []json.RawMessage{
			json.RawMessage(`"search"`),                             // 8 bytes  -> 2
			json.RawMessage(`{"name":"calc","description":"adds"}`), // 36 bytes -> 9
		},
	}
}

func TestGenerateIsDeterministic(t *testing.T) {
	req := knownRequest()
	first := mustGenerate(t, req)
	for range 5 {
		if got := mustGenerate(t, req); !reflect.DeepEqual(got, first) {
			t.Fatalf("second answer differs:\n got %+v\nwant %+v", got, first)
		}
	}
}

func TestTokens(t *testing.T) {
	tests := []struct {
		text string
		want int64
	}{
		{"", 0},
		{"a", 1},
		{"abcd", 1},
		{"abcde", 2},
		{"abcdefgh", 2},
		{"é", 1},       // 2 bytes
		{"日本語", 3},     // 9 bytes
		{"😀😀", 2},      // 8 bytes
		{"hello!!", 2}, // 7 bytes
	}
	for _, tt := range tests {
		if got := offline.Tokens(tt.text); got != tt.want {
			t.Errorf("Tokens(%q) = %d, want %d", tt.text, got, tt.want)
		}
	}
}

func TestGenerateTokenRule(t *testing.T) {
	resp := mustGenerate(t, knownRequest())

	// 4 (system) + 6 + 6 + 7 (messages) + 2 + 9 (tools) = 34.
	if resp.InputTokens != 34 {
		t.Errorf("InputTokens = %d, want 34", resp.InputTokens)
	}
	wantText := `Turn 2: you said "how are you?". Before that you said "hello". (offline model, 3 messages in context)`
	if resp.Text != wantText {
		t.Errorf("Text = %q, want %q", resp.Text, wantText)
	}
	// The reply is 101 bytes: ceil(101/4) = 26.
	if resp.OutputTokens != 26 {
		t.Errorf("OutputTokens = %d, want 26", resp.OutputTokens)
	}
	if len(resp.ToolCalls) != 0 {
		t.Errorf("ToolCalls = %v, want none", resp.ToolCalls)
	}
}

func TestGenerateDependsOnContextWindow(t *testing.T) {
	history := []bulkhead.Message{
		user("my name is Ada"), assistant("noted"),
		user("I like owls"), assistant("noted"),
		user("what do you know about me?"),
	}
	full := mustGenerate(t, bulkhead.ModelRequest{Messages: history})
	short := mustGenerate(t, bulkhead.ModelRequest{Messages: history[len(history)-1:]})

	if full.Text == short.Text {
		t.Fatalf("same reply for a full and a one-message window: %q", full.Text)
	}
	for _, want := range []string{"Turn 3", "what do you know about me?", "I like owls"} {
		if !strings.Contains(full.Text, want) {
			t.Errorf("full-window reply %q does not mention %q", full.Text, want)
		}
	}
	if !strings.Contains(short.Text, "Turn 1") || strings.Contains(short.Text, "owls") {
		t.Errorf("one-message reply %q should be turn 1 and know nothing of owls", short.Text)
	}
	if full.InputTokens <= short.InputTokens {
		t.Errorf("full window InputTokens %d <= one-message window %d", full.InputTokens, short.InputTokens)
	}
}

func TestGenerateQuotesLongMessagesTruncated(t *testing.T) {
	long := strings.Repeat("x", 1000)
	resp := mustGenerate(t, bulkhead.ModelRequest{Messages: []bulkhead.Message{user(long)}})
	if len(resp.Text) > 300 {
		t.Errorf("reply to a 1000-byte message is %d bytes; the quote should be bounded", len(resp.Text))
	}
}

func TestGenerateTruncatesToMaxOutputTokens(t *testing.T) {
	// Multi-byte runes put the 4*limit byte inside a rune for some limits.
	req := bulkhead.ModelRequest{Messages: []bulkhead.Message{user("héllo wörld, 日本語 😀 ok")}}
	full := mustGenerate(t, req)

	for limit := int64(1); limit <= full.OutputTokens+2; limit++ {
		req.MaxOutputTokens = limit
		got := mustGenerate(t, req)
		want := min(limit, full.OutputTokens)
		if got.OutputTokens != want {
			t.Errorf("limit %d: OutputTokens = %d, want %d", limit, got.OutputTokens, want)
		}
		if gotTokens := int64(len(got.Text)+3) / 4; gotTokens != got.OutputTokens {
			t.Errorf("limit %d: reply of %d bytes reported as %d tokens", limit, len(got.Text), got.OutputTokens)
		}
		if !utf8.ValidString(got.Text) {
			t.Errorf("limit %d: reply %q was cut inside a rune", limit, got.Text)
		}
		if !strings.HasPrefix(full.Text, got.Text) {
			t.Errorf("limit %d: reply %q is not a prefix of %q", limit, got.Text, full.Text)
		}
	}
}

func TestGenerateWaitsForDelay(t *testing.T) {
	const delay = 30 * time.Millisecond
	start := time.Now()
	if _, err := offline.New(delay).Generate(context.Background(), knownRequest()); err != nil {
		t.Fatalf("Generate: %v", err)
	}
	if got := time.Since(start); got < delay {
		t.Errorf("Generate returned after %v, want at least %v", got, delay)
	}
}

func TestGenerateHonoursContext(t *testing.T) {
	m := offline.New(time.Hour)

	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(10*time.Millisecond, cancel)
	start := time.Now()
	_, err := m.Generate(ctx, knownRequest())
	if !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: err = %v, want context.Canceled", err)
	}
	if got := time.Since(start); got > 5*time.Second {
		t.Errorf("cancelled Generate returned after %v", got)
	}

	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if _, err := m.Generate(ctx, knownRequest()); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("deadline: err = %v, want context.DeadlineExceeded", err)
	}

	// An already cancelled context fails even with no delay.
	done, cancelDone := context.WithCancel(context.Background())
	cancelDone()
	if _, err := offline.New(0).Generate(done, knownRequest()); !errors.Is(err, context.Canceled) {
		t.Errorf("no delay, cancelled: err = %v, want context.Canceled", err)
	}
}

func TestGenerateToolCall(t *testing.T) {
	req := knownRequest()
	req.Messages = append(req.Messages, assistant("fine"), user("please use tool calc 2+2 and  3"))
	resp := mustGenerate(t, req)

	if resp.Text != "" {
		t.Errorf("Text = %q, want empty with a tool call", resp.Text)
	}
	if len(resp.ToolCalls) != 1 {
		t.Fatalf("ToolCalls = %+v, want one", resp.ToolCalls)
	}
	call := resp.ToolCalls[0]
	if call.Name != "calc" {
		t.Errorf("Name = %q, want calc", call.Name)
	}
	if got, want := string(call.Arguments), `{"query":"2+2 and  3"}`; got != want {
		t.Errorf("Arguments = %s, want %s", got, want)
	}
	if !strings.HasPrefix(call.ID, "call_") {
		t.Errorf("ID = %q, want a call_ prefix", call.ID)
	}
	// tokens("calc") = 1, tokens(`{"query":"2+2 and  3"}`) = ceil(22/4) = 6.
	if resp.OutputTokens != 7 {
		t.Errorf("OutputTokens = %d, want 7", resp.OutputTokens)
	}
	if again := mustGenerate(t, req); !reflect.DeepEqual(again, resp) {
		t.Errorf("tool call not deterministic:\n got %+v\nwant %+v", again, resp)
	}

	// A name given as a plain JSON string works too, even at the end of a sentence.
	req.Messages[len(req.Messages)-1] = user("use tool search.")
	if resp := mustGenerate(t, req); len(resp.ToolCalls) != 1 || resp.ToolCalls[0].Name != "search" ||
		string(resp.ToolCalls[0].Arguments) != `{"query":""}` {
		t.Errorf("use tool search.: got %+v", resp)
	}
}

func TestGenerateToolCallRespectsMaxOutputTokens(t *testing.T) {
	req := bulkhead.ModelRequest{
		Tools:           []json.RawMessage{json.RawMessage(`"search"`)},
		Messages:        []bulkhead.Message{user("use tool search " + strings.Repeat("owl ", 50))},
		MaxOutputTokens: 8,
	}
	resp := mustGenerate(t, req)
	if len(resp.ToolCalls) != 1 {
		t.Fatalf("ToolCalls = %+v, want one", resp.ToolCalls)
	}
	if resp.OutputTokens > req.MaxOutputTokens {
		t.Errorf("OutputTokens = %d, above MaxOutputTokens %d", resp.OutputTokens, req.MaxOutputTokens)
	}
	var args struct{ Query string }
	if err := json.Unmarshal(resp.ToolCalls[0].Arguments, &args); err != nil {
		t.Fatalf("arguments %s: %v", resp.ToolCalls[0].Arguments, err)
	}
	if !strings.HasPrefix("owl "+strings.Repeat("owl ", 49), args.Query) || args.Query == "" {
		t.Errorf("query %q is not a non-empty prefix of the message's rest", args.Query)
	}

	// With no room even for an empty query, the model answers in text.
	req.MaxOutputTokens = 2
	resp = mustGenerate(t, req)
	if len(resp.ToolCalls) != 0 || resp.OutputTokens != 2 {
		t.Errorf("MaxOutputTokens 2: got %+v, want a 2-token text reply", resp)
	}
}

func TestGenerateIgnoresToolsNotOffered(t *testing.T) {
	tests := []struct {
		name  string
		tools []json.RawMessage
		msg   string
	}{
		{"unknown tool", []json.RawMessage{json.RawMessage(`"search"`)}, "use tool delete_everything now"},
		{"no tools", nil, "use tool search owls"},
		{"no name", []json.RawMessage{json.RawMessage(`"search"`)}, "use tool "},
		{"bad definition", []json.RawMessage{json.RawMessage(`42`)}, "use tool 42"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := mustGenerate(t, bulkhead.ModelRequest{Tools: tt.tools, Messages: []bulkhead.Message{user(tt.msg)}})
			if len(resp.ToolCalls) != 0 || resp.Text == "" {
				t.Errorf("got %+v, want a text reply", resp)
			}
		})
	}
}

func TestGenerateFailTriggers(t *testing.T) {
	tests := []struct {
		msg  string
		code bulkhead.Code
		text string
	}{
		{"please [[fail]] now", bulkhead.Invalid, "the model refused the request"},
		{"please be [[unavailable]]", bulkhead.Unavailable, "model provider unavailable"},
	}
	for _, tt := range tests {
		req := bulkhead.ModelRequest{Messages: []bulkhead.Message{user(tt.msg)}}
		_, err := offline.New(0).Generate(context.Background(), req)
		if e := bulkhead.AsError(err); e == nil || e.Code != tt.code || e.Message != tt.text {
			t.Errorf("%q: err = %#v, want %s %q", tt.msg, err, tt.code, tt.text)
		}
	}
}

func TestGenerateStreamJoinsToGenerate(t *testing.T) {
	req := bulkhead.ModelRequest{MaxOutputTokens: 500, Messages: []bulkhead.Message{user("tell me about owls and the night")}}
	want := mustGenerate(t, req)
	var deltas []string
	got, err := offline.New(2*time.Millisecond).GenerateStream(context.Background(), req, func(s string) { deltas = append(deltas, s) })
	if err != nil {
		t.Fatal(err)
	}
	if len(deltas) < 2 || strings.Join(deltas, "") != want.Text || got.Text != want.Text || got.OutputTokens != want.OutputTokens {
		t.Errorf("deltas %q (joined %q), response %+v; want the reply %q in pieces", deltas, strings.Join(deltas, ""), got, want.Text)
	}
}

func TestGenerateStreamCutShortChargesWhatWasSent(t *testing.T) {
	req := bulkhead.ModelRequest{MaxOutputTokens: 500, Messages: []bulkhead.Message{user("tell me about owls and the night")}}
	ctx, cancel := context.WithCancel(context.Background())
	var sent string
	got, err := offline.New(200*time.Millisecond).GenerateStream(ctx, req, func(s string) { sent += s; cancel() })
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want the context's", err)
	}
	if got.Text != sent || sent == "" || got.OutputTokens != offline.Tokens(sent) {
		t.Errorf("cut short after %q: response %+v", sent, got)
	}
}

func TestGenerateWithoutUserMessage(t *testing.T) {
	req := bulkhead.ModelRequest{Messages: []bulkhead.Message{assistant("hello?")}}
	if _, err := offline.New(0).Generate(context.Background(), req); !bulkhead.IsCode(err, bulkhead.Invalid) {
		t.Errorf("err = %v, want Invalid", err)
	}
}
