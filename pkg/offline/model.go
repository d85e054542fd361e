package offline

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/bulkhead-dev/bulkhead/pkg/bulkhead"
)

// Name is the model name the offline model is registered under.
const Name = bulkhead.DefaultModel

const (
	// perMessageTokens is the fixed overhead each message adds to the input,
	// standing in for the role and framing tokens real providers count.
	perMessageTokens = 4
	// quoteRunes bounds how much of a user message the reply quotes, so a
	// long message does not make a long reply.
	quoteRunes = 80
	// failTrigger makes the model refuse the request, as a provider refuses
	// one it finds invalid (an execution's model_error).
	failTrigger = "[[fail]]"
	// unavailableTrigger makes the model fail like an unreachable provider
	// (retried, then model_unavailable).
	unavailableTrigger = "[[unavailable]]"
	// toolTrigger, followed by a tool name, makes the model call that tool
	// once; after the tool's result it answers in text.
	toolTrigger = "use tool "
	// loopTrigger, followed by a tool name, makes the model call that tool
	// at every step, for ever: a runaway agent, for testing the guards.
	loopTrigger = "loop tool "
)

// Model is the deterministic offline model. It is safe for concurrent use.
type Model struct {
	delay time.Duration
}

var (
	_ bulkhead.StreamingModel = (*Model)(nil)
	_ bulkhead.TokenCounter   = (*Model)(nil)
)

// CountTokens returns the input tokens Generate will charge for req.
func (m *Model) CountTokens(req bulkhead.ModelRequest) int64 { return InputTokens(req) }

// New returns an offline model that takes delay to answer each request, so
// tests can exercise timeouts, concurrency slots and wall-time limits.
func New(delay time.Duration) *Model {
	return &Model{delay: delay}
}

// Generate answers req after the model's delay. Errors: Unavailable when the
// last user message contains "[[fail]]", Invalid when req has no user message,
// and ctx's error (wrapped) when ctx ends first.
func (m *Model) Generate(ctx context.Context, req bulkhead.ModelRequest) (bulkhead.ModelResponse, error) {
	if err := m.wait(ctx); err != nil {
		return bulkhead.ModelResponse{}, err
	}

	users := userMessages(req.Messages)
	if len(users) == 0 {
		return bulkhead.ModelResponse{}, &bulkhead.Error{
			Code: bulkhead.Invalid, Op: "offline.Generate", Message: "the request has no user message",
		}
	}
	last := users[len(users)-1]
	if strings.Contains(last, failTrigger) {
		return bulkhead.ModelResponse{}, &bulkhead.Error{
			Code: bulkhead.Invalid, Op: "offline.Generate", Message: "the model refused the request",
		}
	}
	if strings.Contains(last, unavailableTrigger) {
		return bulkhead.ModelResponse{}, &bulkhead.Error{
			Code: bulkhead.Unavailable, Op: "offline.Generate", Message: "model provider unavailable",
		}
	}

	resp := bulkhead.ModelResponse{InputTokens: InputTokens(req)}
	lastMsg := req.Messages[len(req.Messages)-1]
	trigger := toolTrigger
	if strings.Contains(last, loopTrigger) {
		trigger = loopTrigger
	} else if lastMsg.Role == bulkhead.RoleTool {
		// The tool answered: report its result instead of calling again.
		resp.Text = truncate(fmt.Sprintf("Tool %s returned: %q.", lastMsg.Name, quote(lastMsg.Content)), req.MaxOutputTokens)
		resp.OutputTokens = Tokens(resp.Text)
		return resp, nil
	}
	if call, tokens, ok := toolCall(req, len(req.Messages), last, trigger); ok {
		resp.ToolCalls = []bulkhead.ToolCall{call}
		resp.OutputTokens = tokens
		return resp, nil
	}
	resp.Text = truncate(reply(req.Messages, users), req.MaxOutputTokens)
	resp.OutputTokens = Tokens(resp.Text)
	return resp, nil
}

// GenerateStream answers as Generate does, handing out the reply word by
// word: half of the model's delay passes before the first half of the words,
// the other half before the rest, so a slow model streams in two bursts.
func (m *Model) GenerateStream(ctx context.Context, req bulkhead.ModelRequest, onDelta func(string)) (bulkhead.ModelResponse, error) {
	half := &Model{delay: m.delay / 2}
	resp, err := half.Generate(ctx, req)
	if err != nil || resp.Text == "" {
		if err == nil {
			err = half.wait(ctx)
		}
		return resp, err
	}
	words := strings.SplitAfter(resp.Text, " ")
	for _, w := range words[:len(words)/2] {
		onDelta(w)
	}
	if err := half.wait(ctx); err != nil {
		// Cut short: charged for what was generated.
		sent := strings.Join(words[:len(words)/2], "")
		resp.Text, resp.OutputTokens = sent, Tokens(sent)
		return resp, err
	}
	for _, w := range words[len(words)/2:] {
		onDelta(w)
	}
	return resp, nil
}

// wait sleeps for the model's delay unless ctx ends first; an already ended
// ctx fails even with no delay, as a real provider call would.
func (m *Model) wait(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("offline model: %w", err)
	}
	if m.delay <= 0 {
		return nil
	}
	timer := time.NewTimer(m.delay)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("offline model: %w", ctx.Err())
	}
}

// Tokens returns the offline model's token count for a text: ceil(UTF-8 bytes / 4).
func Tokens(s string) int64 {
	return (int64(len(s)) + 3) / 4
}

// InputTokens returns the input tokens the offline model charges for req:
// tokens(system prompt) + sum of (tokens(content) + 4) per message + tokens of
// each tool definition's JSON as given.
func InputTokens(req bulkhead.ModelRequest) int64 {
	n := Tokens(req.SystemPrompt)
	for _, msg := range req.Messages {
		n += Tokens(msg.Content) + perMessageTokens
	}
	for _, tool := range req.Tools {
		n += Tokens(string(tool))
	}
	return n
}

// userMessages returns the contents of the user messages, oldest first.
func userMessages(msgs []bulkhead.Message) []string {
	var out []string
	for _, msg := range msgs {
		if msg.Role == bulkhead.RoleUser {
			out = append(out, msg.Content)
		}
	}
	return out
}

// reply builds the text answer. It depends on the turn number, the last two
// user messages and the size of the window, so that a test can see which
// context the model was given.
func reply(msgs []bulkhead.Message, users []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Turn %d: you said %q.", len(users), quote(users[len(users)-1]))
	if len(users) > 1 {
		fmt.Fprintf(&b, " Before that you said %q.", quote(users[len(users)-2]))
	} else {
		b.WriteString(" This is the first thing you have said to me.")
	}
	fmt.Fprintf(&b, " (offline model, %d messages in context)", len(msgs))
	return b.String()
}

// quote shortens a message for the reply: whitespace collapsed, invalid UTF-8
// replaced, at most quoteRunes runes.
func quote(s string) string {
	s = strings.Join(strings.Fields(strings.ToValidUTF8(s, "\uFFFD")), " ")
	if utf8.RuneCountInString(s) <= quoteRunes {
		return s
	}
	runes := []rune(s)
	return string(runes[:quoteRunes]) + "..."
}

// truncate cuts s so that Tokens(s) == maxTokens when it is longer; maxTokens
// <= 0 means no limit. Cutting at 4*maxTokens bytes and backing off to a rune
// start removes at most 3 bytes (s is valid UTF-8), which leaves exactly
// maxTokens tokens.
func truncate(s string, maxTokens int64) string {
	if maxTokens <= 0 || Tokens(s) <= maxTokens {
		return s
	}
	cut := int(maxTokens * 4)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}

// toolCall returns the tool call the last user message asks for, with its
// output tokens, and false when it asks for none or for a tool the request
// does not offer.
func toolCall(req bulkhead.ModelRequest, turn int, last, trigger string) (bulkhead.ToolCall, int64, bool) {
	_, after, found := strings.Cut(last, trigger)
	if !found {
		return bulkhead.ToolCall{}, 0, false
	}
	after = strings.TrimLeftFunc(after, unicode.IsSpace)
	end := strings.IndexFunc(after, unicode.IsSpace)
	if end < 0 {
		end = len(after)
	}
	// A name at the end of a sentence ("use tool search.") still names the tool.
	name := strings.TrimRight(after[:end], ".,;:!?")
	if name == "" || !offersTool(req.Tools, name) {
		return bulkhead.ToolCall{}, 0, false
	}
	query := strings.ToValidUTF8(strings.TrimSpace(after[end:]), "\uFFFD")

	args, tokens, ok := fitArguments(name, query, req.MaxOutputTokens)
	if !ok {
		return bulkhead.ToolCall{}, 0, false
	}
	sum := sha256.Sum256(fmt.Appendf(nil, "%d\x00%s\x00%s", turn, name, args))
	return bulkhead.ToolCall{
		ID:        "call_" + hex.EncodeToString(sum[:8]),
		Name:      name,
		Arguments: args,
	}, tokens, true
}

// fitArguments encodes {"query": query}, shortening the query (by runes) until
// tokens(name) + tokens(arguments) fits maxTokens; false when even an empty
// query does not fit.
func fitArguments(name, query string, maxTokens int64) (json.RawMessage, int64, bool) {
	encode := func(q string) (json.RawMessage, int64) {
		// Marshalling a map of one string cannot fail.
		args, _ := json.Marshal(map[string]string{"query": q})
		return args, Tokens(name) + Tokens(string(args))
	}
	args, tokens := encode(query)
	if maxTokens <= 0 || tokens <= maxTokens {
		return args, tokens, true
	}
	// Binary search for the longest prefix of the query that fits: JSON
	// escaping makes the size of a prefix not a simple function of its length.
	runes := []rune(query)
	lo, hi := 0, len(runes) // runes[:lo] fits; no prefix longer than hi does
	if _, t := encode(""); t > maxTokens {
		return nil, 0, false
	}
	for lo < hi {
		mid := (lo + hi + 1) / 2
		if _, t := encode(string(runes[:mid])); t <= maxTokens {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	args, tokens = encode(string(runes[:lo]))
	return args, tokens, true
}

// offersTool reports whether one of the tool definitions is named name. A
// definition is a JSON string (the name) or an object with a "name" field;
// anything else is not a tool this model can call.
func offersTool(tools []json.RawMessage, name string) bool {
	for _, raw := range tools {
		var s string
		if err := json.Unmarshal(raw, &s); err == nil {
			if s == name {
				return true
			}
			continue
		}
		var def struct {
			Name string `json:"name"`
		}
		if err := json.Unmarshal(raw, &def); err == nil && def.Name == name {
			return true
		}
	}
	return false
}
