// Package openai is a model provider for servers that speak OpenAI's Chat
// Completions API (OpenAI itself, Ollama, vLLM, llama.cpp and the like).
//
// It uses the standard library only and never retries on its own, except
// once to fall back from max_completion_tokens to max_tokens for servers that
// do not know the newer parameter: the runtime owns retries, backoff and
// circuits inside the execution's wall time, so throttling must reach it.
package openai

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/bulkhead-dev/bulkhead/pkg/bulkhead"
)

// Config configures a Model.
type Config struct {
	// BaseURL is the API's base, for example http://127.0.0.1:11434/v1;
	// requests go to {BaseURL}/chat/completions.
	BaseURL string
	// APIKey, when set, is sent as a Bearer token. It is never logged nor
	// put into an error.
	APIKey string
	// HTTPClient defaults to a client without a timeout: the caller's
	// context bounds every call.
	HTTPClient *http.Client
}

// Model is an OpenAI-compatible Chat Completions model. It is safe for
// concurrent use.
type Model struct {
	endpoint string
	key      string
	hc       *http.Client
	// maxTokens is set once the server refused max_completion_tokens; later
	// calls send max_tokens straight away.
	maxTokens atomic.Bool
}

var (
	_ bulkhead.Model          = (*Model)(nil)
	_ bulkhead.StreamingModel = (*Model)(nil)
	_ bulkhead.TokenCounter   = (*Model)(nil)
)

// maxErrorMessage bounds the provider's error message kept in an error.
const maxErrorMessage = 300

// maxBody bounds a buffered response body.
const maxBody = 32 << 20

// New returns a Model for cfg, after checking the base URL.
func New(cfg Config) (*Model, error) {
	u, err := url.Parse(strings.TrimSpace(cfg.BaseURL))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, bulkhead.Errorf(bulkhead.Invalid, "openai: the base URL must be an http or https URL with a host")
	}
	if u.User != nil {
		return nil, bulkhead.Errorf(bulkhead.Invalid, "openai: the base URL must not carry credentials; set the API key instead")
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, bulkhead.Errorf(bulkhead.Invalid, "openai: the base URL must not have a query or a fragment")
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = &http.Client{}
	}
	return &Model{
		endpoint: strings.TrimRight(u.String(), "/") + "/chat/completions",
		key:      cfg.APIKey,
		hc:       hc,
	}, nil
}

// CountTokens is an upper bound on req's input tokens: byte-level BPE
// tokenizers make at most one token per UTF-8 byte, plus chat-template
// framing per message.
func (m *Model) CountTokens(req bulkhead.ModelRequest) int64 {
	return bulkhead.UTF8InputBound(req, 16)
}

// Generate sends req and waits for the whole reply.
func (m *Model) Generate(ctx context.Context, req bulkhead.ModelRequest) (bulkhead.ModelResponse, error) {
	resp, err := m.send(ctx, req, false)
	if err != nil {
		return bulkhead.ModelResponse{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return bulkhead.ModelResponse{}, m.readError(ctx, err)
	}
	if len(body) > maxBody {
		return bulkhead.ModelResponse{}, &bulkhead.Error{Code: bulkhead.Unavailable, Op: "openai", Message: "the model's reply is too large"}
	}
	var cr chatResponse
	if err := json.Unmarshal(body, &cr); err != nil {
		return bulkhead.ModelResponse{}, &bulkhead.Error{Code: bulkhead.Unavailable, Op: "openai", Message: "the model's reply is not valid JSON (truncated?)", Err: err}
	}
	if cr.Error != nil {
		return bulkhead.ModelResponse{}, &bulkhead.Error{Code: bulkhead.Unavailable, Op: "openai", Message: "model error: " + bound(cr.Error.message())}
	}
	if len(cr.Choices) == 0 {
		return bulkhead.ModelResponse{}, &bulkhead.Error{Code: bulkhead.Unavailable, Op: "openai", Message: "the model's reply has no choices"}
	}
	msg := cr.Choices[0].Message
	out := bulkhead.ModelResponse{Text: msg.Content}
	var outBytes int64 = int64(len(msg.Content))
	for _, tc := range msg.ToolCalls {
		out.ToolCalls = append(out.ToolCalls, bulkhead.ToolCall{ID: tc.ID, Name: tc.Function.Name, Arguments: arguments(tc.Function.Arguments)})
		outBytes += int64(len(tc.Function.Arguments))
	}
	if cr.Usage != nil {
		out.InputTokens, out.OutputTokens = cr.Usage.PromptTokens, cr.Usage.CompletionTokens
	} else {
		// The server reported no usage: charge the upper bounds, the input's
		// UTF-8 bound and one token per byte of output.
		out.InputTokens, out.OutputTokens = m.CountTokens(req), outBytes
	}
	return out, nil
}

// send posts req and returns a 200 response, whose body the caller closes,
// or a classified error. A server that refuses max_completion_tokens gets the
// same request once more with max_tokens, and max_tokens from then on.
func (m *Model) send(ctx context.Context, req bulkhead.ModelRequest, stream bool) (*http.Response, error) {
	for attempt := 0; ; attempt++ {
		legacy := m.maxTokens.Load()
		body, err := json.Marshal(buildRequest(req, stream, legacy))
		if err != nil {
			return nil, &bulkhead.Error{Code: bulkhead.Invalid, Op: "openai", Message: "the request cannot be encoded", Err: err}
		}
		hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, m.endpoint, bytes.NewReader(body))
		if err != nil {
			return nil, &bulkhead.Error{Code: bulkhead.Invalid, Op: "openai", Message: "the request cannot be built"}
		}
		hreq.Header.Set("Content-Type", "application/json")
		if stream {
			hreq.Header.Set("Accept", "text/event-stream")
		} else {
			hreq.Header.Set("Accept", "application/json")
		}
		if m.key != "" {
			hreq.Header.Set("Authorization", "Bearer "+m.key)
		}
		resp, err := m.hc.Do(hreq)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctxError(ctx)
			}
			return nil, &bulkhead.Error{Code: bulkhead.Unavailable, Op: "openai", Message: "cannot reach the model provider", Err: scrub(err)}
		}
		if resp.StatusCode == http.StatusOK {
			return resp, nil
		}
		raw, rerr := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		if rerr != nil && ctx.Err() != nil {
			return nil, ctxError(ctx)
		}
		msg := errorMessage(raw)
		if resp.StatusCode == http.StatusBadRequest && !legacy && attempt == 0 && refusesMaxCompletionTokens(msg) && req.MaxOutputTokens > 0 {
			m.maxTokens.Store(true)
			continue
		}
		if m.key != "" {
			msg = strings.ReplaceAll(msg, m.key, "[redacted]")
		}
		return nil, statusError(resp, msg)
	}
}

// statusError classifies a non-200 answer.
func statusError(resp *http.Response, msg string) error {
	status := resp.StatusCode
	text := fmt.Sprintf("model provider answered %d", status)
	if status == http.StatusUnauthorized || status == http.StatusForbidden {
		// Providers echo (part of) the key they refused: say only what failed.
		msg = "authentication failed; check the provider's API key"
	}
	if msg != "" {
		text += ": " + bound(msg)
	}
	switch {
	case status == http.StatusTooManyRequests:
		return &bulkhead.Error{Code: bulkhead.Throttled, Op: "openai", Message: text, RetryAfter: retryAfter(resp.Header.Get("Retry-After"))}
	case status >= 500:
		return &bulkhead.Error{Code: bulkhead.Unavailable, Op: "openai", Message: text, RetryAfter: retryAfter(resp.Header.Get("Retry-After"))}
	case status == http.StatusRequestTimeout:
		return &bulkhead.Error{Code: bulkhead.Unavailable, Op: "openai", Message: text}
	default:
		return &bulkhead.Error{Code: bulkhead.Invalid, Op: "openai", Message: text}
	}
}

// refusesMaxCompletionTokens recognises an older server's refusal of the
// max_completion_tokens parameter.
func refusesMaxCompletionTokens(msg string) bool {
	l := strings.ToLower(msg)
	if !strings.Contains(l, "max_completion_tokens") {
		return false
	}
	for _, w := range []string{"unsupported", "unrecognized", "unrecognised", "unknown", "not supported", "extra", "not permitted", "invalid"} {
		if strings.Contains(l, w) {
			return true
		}
	}
	return false
}

// retryAfter reads a Retry-After header: delay seconds or an HTTP date.
func retryAfter(h string) int {
	h = strings.TrimSpace(h)
	if h == "" {
		return 0
	}
	if n, err := strconv.Atoi(h); err == nil {
		return max(n, 0)
	}
	if t, err := http.ParseTime(h); err == nil {
		if d := time.Until(t); d > 0 {
			return int((d + time.Second - 1) / time.Second)
		}
	}
	return 0
}

// ctxError is the error of a call whose context ended; it wraps ctx.Err().
func ctxError(ctx context.Context) error {
	return fmt.Errorf("openai: model call ended: %w", ctx.Err())
}

// readError classifies a failure reading a response body.
func (m *Model) readError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctxError(ctx)
	}
	return &bulkhead.Error{Code: bulkhead.Unavailable, Op: "openai", Message: "the model's reply was cut off", Err: scrub(err)}
}

// scrub keeps a transport error's kind but not its URL.
func scrub(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// errorMessage extracts the message of an error body: OpenAI's
// {"error":{"message":...}}, {"error":"..."} or the body's text.
func errorMessage(raw []byte) string {
	var e struct {
		Error   json.RawMessage `json:"error"`
		Message string          `json:"message"`
	}
	if json.Unmarshal(raw, &e) == nil {
		if len(e.Error) > 0 {
			var ae apiError
			if json.Unmarshal(e.Error, &ae) == nil {
				if m := ae.message(); m != "" {
					return m
				}
			}
			var s string
			if json.Unmarshal(e.Error, &s) == nil && s != "" {
				return s
			}
		}
		if e.Message != "" {
			return e.Message
		}
	}
	return strings.TrimSpace(string(raw))
}

// bound cuts s to maxErrorMessage bytes on a rune boundary.
func bound(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= maxErrorMessage {
		return s
	}
	n := maxErrorMessage
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "..."
}

// arguments turns a tool call's arguments string into JSON: as is when it is
// valid JSON, as a JSON string otherwise; empty arguments are {}.
func arguments(s string) json.RawMessage {
	if strings.TrimSpace(s) == "" {
		return json.RawMessage(`{}`)
	}
	if json.Valid([]byte(s)) {
		return json.RawMessage(s)
	}
	b, _ := json.Marshal(s)
	return b
}

// Wire types of the Chat Completions API.

type chatRequest struct {
	Model               string         `json:"model"`
	Messages            []wireMessage  `json:"messages"`
	Tools               []wireTool     `json:"tools,omitempty"`
	MaxCompletionTokens int64          `json:"max_completion_tokens,omitempty"`
	MaxTokens           int64          `json:"max_tokens,omitempty"`
	Stream              bool           `json:"stream,omitempty"`
	StreamOptions       *streamOptions `json:"stream_options,omitempty"`
}

type streamOptions struct {
	IncludeUsage bool `json:"include_usage"`
}

type wireMessage struct {
	Role       string         `json:"role"`
	Content    string         `json:"content"`
	ToolCalls  []wireToolCall `json:"tool_calls,omitempty"`
	ToolCallID string         `json:"tool_call_id,omitempty"`
}

type wireToolCall struct {
	Index    *int         `json:"index,omitempty"`
	ID       string       `json:"id,omitempty"`
	Type     string       `json:"type,omitempty"`
	Function wireFunction `json:"function"`
}

type wireFunction struct {
	Name      string `json:"name,omitempty"`
	Arguments string `json:"arguments"`
}

type wireTool struct {
	Type     string       `json:"type"`
	Function toolFunction `json:"function"`
}

type toolFunction struct {
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	Parameters  json.RawMessage `json:"parameters"`
}

type usage struct {
	PromptTokens     int64 `json:"prompt_tokens"`
	CompletionTokens int64 `json:"completion_tokens"`
}

type apiError struct {
	Message string `json:"message"`
	Type    string `json:"type"`
	Code    any    `json:"code"`
}

func (e *apiError) message() string {
	if e.Message != "" {
		return e.Message
	}
	return e.Type
}

type chatResponse struct {
	Choices []struct {
		Message struct {
			Content   string         `json:"content"`
			ToolCalls []wireToolCall `json:"tool_calls"`
		} `json:"message"`
		FinishReason string `json:"finish_reason"`
	} `json:"choices"`
	Usage *usage    `json:"usage"`
	Error *apiError `json:"error"`
}

// buildRequest maps req onto the wire.
func buildRequest(req bulkhead.ModelRequest, stream, legacyMaxTokens bool) chatRequest {
	cr := chatRequest{Model: req.Model, Tools: tools(req.Tools)}
	if req.MaxOutputTokens > 0 {
		if legacyMaxTokens {
			cr.MaxTokens = req.MaxOutputTokens
		} else {
			cr.MaxCompletionTokens = req.MaxOutputTokens
		}
	}
	if stream {
		cr.Stream = true
		cr.StreamOptions = &streamOptions{IncludeUsage: true}
	}
	if req.SystemPrompt != "" {
		cr.Messages = append(cr.Messages, wireMessage{Role: "system", Content: req.SystemPrompt})
	}
	for _, msg := range req.Messages {
		wm := wireMessage{Role: string(msg.Role), Content: msg.Content}
		switch msg.Role {
		case bulkhead.RoleAssistant:
			for _, c := range msg.ToolCalls {
				args := string(c.Arguments)
				if strings.TrimSpace(args) == "" {
					args = "{}"
				}
				wm.ToolCalls = append(wm.ToolCalls, wireToolCall{ID: c.ID, Type: "function", Function: wireFunction{Name: c.Name, Arguments: args}})
			}
		case bulkhead.RoleTool:
			wm.ToolCallID = msg.ToolCallID
		}
		cr.Messages = append(cr.Messages, wm)
	}
	return cr
}

// emptySchema is the parameters of a tool that declares none.
var emptySchema = json.RawMessage(`{"type":"object","properties":{}}`)

// builtins describes the platform's built-in tools, which agents list by name.
var builtins = map[string]toolFunction{
	"invoke_agent": {
		Name:        "invoke_agent",
		Description: "Run another agent of this tenant with a message and return its reply.",
		Parameters: json.RawMessage(`{"type":"object","properties":{"agent_id":{"type":"string","description":"The agent to run."},` +
			`"message":{"type":"string","description":"The message to send it."}},"required":["agent_id","message"]}`),
	},
}

// tools maps an agent's tools (names of built-in tools, or definitions with a
// name, a description and a JSON schema) onto function tools.
func tools(defs []json.RawMessage) []wireTool {
	var out []wireTool
	for _, raw := range defs {
		var name string
		if json.Unmarshal(raw, &name) == nil {
			f, ok := builtins[name]
			if !ok {
				f = toolFunction{Name: name, Description: "The tool " + name + ".", Parameters: emptySchema}
			}
			out = append(out, wireTool{Type: "function", Function: f})
			continue
		}
		var def struct {
			Name        string          `json:"name"`
			Description string          `json:"description"`
			Parameters  json.RawMessage `json:"parameters"`
			InputSchema json.RawMessage `json:"input_schema"`
			Schema      json.RawMessage `json:"schema"`
		}
		if json.Unmarshal(raw, &def) != nil || def.Name == "" {
			continue // the API layer accepts no other shape
		}
		f := toolFunction{Name: def.Name, Description: def.Description, Parameters: emptySchema}
		for _, p := range []json.RawMessage{def.Parameters, def.InputSchema, def.Schema} {
			if isObject(p) {
				f.Parameters = p
				break
			}
		}
		if f.Description == "" {
			if b, ok := builtins[def.Name]; ok {
				f.Description = b.Description
			} else {
				f.Description = "The tool " + def.Name + "."
			}
		}
		out = append(out, wireTool{Type: "function", Function: f})
	}
	return out
}

func isObject(raw json.RawMessage) bool {
	var m map[string]json.RawMessage
	return len(raw) > 0 && json.Unmarshal(raw, &m) == nil && m != nil
}
