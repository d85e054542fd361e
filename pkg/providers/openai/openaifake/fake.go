// Package openaifake is an OpenAI-compatible Chat Completions server for
// tests: a real HTTP server that checks requests at the wire level, answers
// with scripted behaviours or a deterministic echo, streams when asked, and
// records every request.
package openaifake

import (
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"
)

// Behaviour is a scripted answer to one request: Reply, Fail or Hang.
type Behaviour interface{ behaviour() }

// ToolCall is a tool call the fake model makes; Arguments is JSON text.
type ToolCall struct {
	ID        string
	Name      string
	Arguments string
}

// Reply answers with text and tool calls. Zero token counts are computed as
// for the default reply.
type Reply struct {
	Text             string
	ToolCalls        []ToolCall
	PromptTokens     int64
	CompletionTokens int64
	// On a streamed request, after that many delta events (text pieces and
	// tool call pieces): CutAfter drops the connection, HangAfter stops
	// sending until the client goes away, ErrorAfter sends an error event
	// {"error":{...}} carrying StreamError and ends the stream. Zero: never.
	CutAfter, HangAfter, ErrorAfter int
	StreamError                     string
}

// Fail answers with an HTTP error in OpenAI's shape; RetryAfter, when
// positive, is sent as the Retry-After header (seconds).
type Fail struct {
	Status     int
	Message    string
	RetryAfter int
}

// Hang never answers; it returns when the client goes away or the server
// closes.
type Hang struct{}

func (Reply) behaviour() {}
func (Fail) behaviour()  {}
func (Hang) behaviour()  {}

// Recorded is one request as the fake received it.
type Recorded struct {
	Body     map[string]any
	Raw      []byte
	Model    string
	Streamed bool
	// Header is the request's headers without Authorization.
	Header http.Header
	// Authorized reports whether an Authorization header was present.
	Authorized bool
}

// Server is the fake. Set Key and RefuseMaxCompletionTokens before the first
// request. It is safe for concurrent use.
type Server struct {
	// Key, when set, is required as "Authorization: Bearer <Key>".
	Key string
	// RefuseMaxCompletionTokens answers 400 to requests that use
	// max_completion_tokens, as older servers do.
	RefuseMaxCompletionTokens bool
	// Delay, when positive, is how long every answer waits before it starts
	// (a model's latency), unless the client leaves first.
	Delay time.Duration

	srv     *httptest.Server
	mu      sync.Mutex
	queue   []Behaviour
	records []Recorded
	done    chan struct{}
	once    sync.Once
}

// New starts a fake server.
func New() *Server {
	s := &Server{done: make(chan struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc("/v1/chat/completions", s.chat)
	s.srv = httptest.NewServer(mux)
	return s
}

// URL is the API's base, ending in /v1.
func (s *Server) URL() string { return s.srv.URL + "/v1" }

// Close releases hanging requests and stops the server.
func (s *Server) Close() {
	s.once.Do(func() { close(s.done) })
	s.srv.CloseClientConnections()
	s.srv.Close()
}

// Enqueue appends behaviours, consumed one per valid request in order.
func (s *Server) Enqueue(b ...Behaviour) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.queue = append(s.queue, b...)
}

// Requests returns the requests received so far, valid or not.
func (s *Server) Requests() []Recorded {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Recorded(nil), s.records...)
}

// Count is the number of requests received so far.
func (s *Server) Count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.records)
}

type wireMessage struct {
	Role       string          `json:"role"`
	Content    json.RawMessage `json:"content"`
	ToolCalls  []wireToolCall  `json:"tool_calls"`
	ToolCallID string          `json:"tool_call_id"`
}

type wireToolCall struct {
	ID       string `json:"id"`
	Type     string `json:"type"`
	Function struct {
		Name      string          `json:"name"`
		Arguments json.RawMessage `json:"arguments"`
	} `json:"function"`
}

type wireTool struct {
	Type     string `json:"type"`
	Function struct {
		Name        string          `json:"name"`
		Description *string         `json:"description"`
		Parameters  json.RawMessage `json:"parameters"`
	} `json:"function"`
}

type chatRequest struct {
	Model               string        `json:"model"`
	Messages            []wireMessage `json:"messages"`
	Tools               []wireTool    `json:"tools"`
	MaxCompletionTokens *int64        `json:"max_completion_tokens"`
	MaxTokens           *int64        `json:"max_tokens"`
	Stream              bool          `json:"stream"`
	StreamOptions       *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
}

func writeError(w http.ResponseWriter, status int, typ, msg, param string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	var p any
	if param != "" {
		p = param
	}
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"message": msg, "type": typ, "param": p, "code": nil}})
}

func (s *Server) chat(w http.ResponseWriter, r *http.Request) {
	raw, _ := io.ReadAll(io.LimitReader(r.Body, 16<<20))
	rec := Recorded{Raw: raw, Header: r.Header.Clone(), Authorized: r.Header.Get("Authorization") != ""}
	rec.Header.Del("Authorization")
	var req chatRequest
	decodeErr := json.Unmarshal(raw, &req)
	_ = json.Unmarshal(raw, &rec.Body)
	rec.Model, rec.Streamed = req.Model, req.Stream
	s.mu.Lock()
	s.records = append(s.records, rec)
	s.mu.Unlock()

	if r.Method != http.MethodPost {
		writeError(w, http.StatusMethodNotAllowed, "invalid_request_error", "only POST is allowed", "")
		return
	}
	if s.Key != "" && r.Header.Get("Authorization") != "Bearer "+s.Key {
		writeError(w, http.StatusUnauthorized, "invalid_request_error", "Incorrect API key provided.", "")
		return
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		writeError(w, http.StatusBadRequest, "invalid_request_error", "the body must be JSON (Content-Type: application/json)", "")
		return
	}
	if decodeErr != nil {
		writeError(w, http.StatusBadRequest, "invalid_request_error", "We could not parse the JSON body of your request.", "")
		return
	}
	if msg, param := validate(&req); msg != "" {
		writeError(w, http.StatusBadRequest, "invalid_request_error", msg, param)
		return
	}
	if s.RefuseMaxCompletionTokens && req.MaxCompletionTokens != nil {
		writeError(w, http.StatusBadRequest, "invalid_request_error",
			"Unsupported parameter: 'max_completion_tokens' is not supported with this model. Use 'max_tokens' instead.", "max_completion_tokens")
		return
	}

	if s.Delay > 0 {
		select {
		case <-time.After(s.Delay):
		case <-r.Context().Done():
			return
		case <-s.done:
			return
		}
	}
	s.mu.Lock()
	var b Behaviour
	if len(s.queue) > 0 {
		b, s.queue = s.queue[0], s.queue[1:]
	}
	s.mu.Unlock()
	if b == nil {
		b = defaultReply(&req)
	}
	switch b := b.(type) {
	case Fail:
		if b.RetryAfter > 0 {
			w.Header().Set("Retry-After", fmt.Sprint(b.RetryAfter))
		}
		status := b.Status
		if status == 0 {
			status = http.StatusInternalServerError
		}
		msg := b.Message
		if msg == "" {
			msg = http.StatusText(status)
		}
		writeError(w, status, "server_error", msg, "")
	case Hang:
		select {
		case <-r.Context().Done():
		case <-s.done:
		}
	case Reply:
		if b.PromptTokens == 0 {
			b.PromptTokens = promptTokens(&req)
		}
		if b.CompletionTokens == 0 {
			n := len(b.Text)
			for _, c := range b.ToolCalls {
				n += len(c.Name) + len(c.Arguments)
			}
			b.CompletionTokens = int64((n + 3) / 4)
		}
		if req.Stream {
			s.stream(w, r.Context().Done(), &req, b)
		} else {
			reply(w, &req, b)
		}
	}
}

// validate checks a request as OpenAI does, returning a message and the
// offending parameter.
func validate(req *chatRequest) (string, string) {
	if req.Model == "" {
		return "you must provide a model parameter", "model"
	}
	if len(req.Messages) == 0 {
		return "'messages' must contain at least one message", "messages"
	}
	pending := map[string]bool{}
	for i, m := range req.Messages {
		p := fmt.Sprintf("messages[%d]", i)
		var content *string
		if len(m.Content) > 0 && string(m.Content) != "null" {
			var s string
			if json.Unmarshal(m.Content, &s) != nil {
				return "content must be a string", p + ".content"
			}
			content = &s
		}
		switch m.Role {
		case "system", "user":
			if content == nil {
				return fmt.Sprintf("Invalid value for 'content': expected a string, got null."), p + ".content"
			}
			if len(m.ToolCalls) > 0 || m.ToolCallID != "" {
				return "only assistant messages carry tool_calls", p
			}
		case "assistant":
			if content == nil && len(m.ToolCalls) == 0 {
				return "an assistant message needs content or tool_calls", p
			}
			for j, c := range m.ToolCalls {
				cp := fmt.Sprintf("%s.tool_calls[%d]", p, j)
				if c.ID == "" || c.Type != "function" || c.Function.Name == "" {
					return "a tool call needs an id, type \"function\" and a function name", cp
				}
				var args string
				if json.Unmarshal(c.Function.Arguments, &args) != nil {
					return "function.arguments must be a string", cp + ".function.arguments"
				}
				pending[c.ID] = true
			}
		case "tool":
			if content == nil {
				return "a tool message needs content", p + ".content"
			}
			if !pending[m.ToolCallID] {
				return "Invalid parameter: messages with role 'tool' must be a response to a preceeding message with 'tool_calls'.", p + ".tool_call_id"
			}
			delete(pending, m.ToolCallID)
		default:
			return fmt.Sprintf("Invalid value: '%s'. Supported values are: 'system', 'assistant', 'user' and 'tool'.", m.Role), p + ".role"
		}
	}
	seen := map[string]bool{}
	for i, t := range req.Tools {
		p := fmt.Sprintf("tools[%d]", i)
		if t.Type != "function" || t.Function.Name == "" || seen[t.Function.Name] {
			return "a tool needs type \"function\" and a unique function name", p
		}
		seen[t.Function.Name] = true
		var schema map[string]any
		if len(t.Function.Parameters) > 0 && (json.Unmarshal(t.Function.Parameters, &schema) != nil || schema == nil) {
			return "function.parameters must be a JSON schema object", p + ".function.parameters"
		}
	}
	if req.MaxCompletionTokens != nil && *req.MaxCompletionTokens <= 0 || req.MaxTokens != nil && *req.MaxTokens <= 0 {
		return "the token limit must be positive", "max_completion_tokens"
	}
	if req.StreamOptions != nil && !req.Stream {
		return "stream_options is only allowed when stream is true", "stream_options"
	}
	return "", ""
}

// promptTokens is ceil(total message bytes / 4), under any UTF-8 bound.
func promptTokens(req *chatRequest) int64 {
	n := 0
	for _, m := range req.Messages {
		var s string
		_ = json.Unmarshal(m.Content, &s)
		n += len(s)
	}
	return int64((n + 3) / 4)
}

// defaultReply echoes the last user message. A message "tool:NAME rest"
// makes a tool call to NAME, when NAME is offered and no tool result came
// after the message, with arguments {"input": rest}.
func defaultReply(req *chatRequest) Reply {
	last, idx := "", -1
	for i, m := range req.Messages {
		if m.Role == "user" {
			_ = json.Unmarshal(m.Content, &last)
			idx = i
		}
	}
	if rest, ok := strings.CutPrefix(last, "tool:"); ok && idx == len(req.Messages)-1 {
		name, input, _ := strings.Cut(rest, " ")
		for _, t := range req.Tools {
			if t.Function.Name == name {
				args, _ := json.Marshal(map[string]string{"input": input})
				return Reply{ToolCalls: []ToolCall{{ID: "call_" + name, Name: name, Arguments: string(args)}}}
			}
		}
	}
	if idx >= 0 && idx < len(req.Messages)-1 && req.Messages[len(req.Messages)-1].Role == "tool" {
		var result string
		_ = json.Unmarshal(req.Messages[len(req.Messages)-1].Content, &result)
		return Reply{Text: "Tool said: " + result}
	}
	return Reply{Text: "Echo: " + last}
}

func reply(w http.ResponseWriter, req *chatRequest, b Reply) {
	msg := map[string]any{"role": "assistant", "content": b.Text}
	finish := "stop"
	if len(b.ToolCalls) > 0 {
		var calls []map[string]any
		for _, c := range b.ToolCalls {
			calls = append(calls, map[string]any{"id": c.ID, "type": "function", "function": map[string]any{"name": c.Name, "arguments": c.Arguments}})
		}
		msg["tool_calls"] = calls
		finish = "tool_calls"
		if b.Text == "" {
			msg["content"] = nil
		}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"id": "chatcmpl-fake", "object": "chat.completion", "model": req.Model,
		"choices": []any{map[string]any{"index": 0, "message": msg, "finish_reason": finish}},
		"usage":   usage(b),
	})
}

func usage(b Reply) map[string]any {
	return map[string]any{"prompt_tokens": b.PromptTokens, "completion_tokens": b.CompletionTokens, "total_tokens": b.PromptTokens + b.CompletionTokens}
}

// pieces splits s into up to n pieces on rune boundaries.
func pieces(s string, n int) []string {
	r := []rune(s)
	if len(r) == 0 {
		return nil
	}
	size := max((len(r)+n-1)/n, 1)
	var out []string
	for i := 0; i < len(r); i += size {
		out = append(out, string(r[i:min(i+size, len(r))]))
	}
	return out
}

func (s *Server) stream(w http.ResponseWriter, gone <-chan struct{}, req *chatRequest, b Reply) {
	fl, _ := w.(http.Flusher)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	send := func(v any) {
		data, _ := json.Marshal(v)
		fmt.Fprintf(w, "data: %s\n\n", data)
		if fl != nil {
			fl.Flush()
		}
	}
	chunk := func(delta map[string]any, finish any) map[string]any {
		return map[string]any{"id": "chatcmpl-fake", "object": "chat.completion.chunk", "model": req.Model,
			"choices": []any{map[string]any{"index": 0, "delta": delta, "finish_reason": finish}}}
	}
	var deltas []map[string]any
	for _, p := range pieces(b.Text, 4) {
		deltas = append(deltas, chunk(map[string]any{"content": p}, nil))
	}
	for i, c := range b.ToolCalls {
		deltas = append(deltas, chunk(map[string]any{"tool_calls": []any{map[string]any{"index": i, "id": c.ID, "type": "function",
			"function": map[string]any{"name": c.Name, "arguments": ""}}}}, nil))
		for _, p := range pieces(c.Arguments, 3) {
			deltas = append(deltas, chunk(map[string]any{"tool_calls": []any{map[string]any{"index": i, "function": map[string]any{"arguments": p}}}}, nil))
		}
	}
	send(chunk(map[string]any{"role": "assistant", "content": ""}, nil))
	for i, d := range deltas {
		switch {
		case b.CutAfter > 0 && i == b.CutAfter:
			panic(http.ErrAbortHandler) // drops the connection mid-stream
		case b.HangAfter > 0 && i == b.HangAfter:
			select {
			case <-s.done:
			case <-gone:
			}
			return
		case b.ErrorAfter > 0 && i == b.ErrorAfter:
			send(map[string]any{"error": map[string]any{"message": b.StreamError, "type": "server_error", "param": nil, "code": nil}})
			return
		}
		send(d)
	}
	finish := "stop"
	if len(b.ToolCalls) > 0 {
		finish = "tool_calls"
	}
	send(chunk(map[string]any{}, finish))
	if req.StreamOptions != nil && req.StreamOptions.IncludeUsage {
		send(map[string]any{"id": "chatcmpl-fake", "object": "chat.completion.chunk", "model": req.Model, "choices": []any{}, "usage": usage(b)})
	}
	fmt.Fprint(w, "data: [DONE]\n\n")
	if fl != nil {
		fl.Flush()
	}
}
