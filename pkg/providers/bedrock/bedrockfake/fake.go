// Package bedrockfake is a fake Amazon Bedrock runtime: a real HTTP server
// that checks SigV4 signatures, validates Converse requests as Bedrock does,
// and answers Converse and ConverseStream with scripted or echoed replies.
// Tests drive it through the real SDK client.
package bedrockfake

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"

	"github.com/bulkhead-dev/bulkhead/pkg/awsfake"
	"github.com/bulkhead-dev/bulkhead/pkg/bulkhead"
)

// Reply answers with text and tool calls; zero token counts take the default.
type Reply struct {
	Text                      string
	ToolCalls                 []bulkhead.ToolCall
	InputTokens, OutputTokens int64
}

// Fail answers with an AWS error: Status, X-Amzn-ErrorType Type, Message.
type Fail struct {
	Status  int
	Type    string
	Message string
}

// Hang never answers until the client leaves.
type Hang struct{}

// Cut breaks the connection: a stream after sending Text in deltas (and no
// messageStop or metadata), a buffered call before any answer.
type Cut struct {
	Text string
}

// Request is one request the fake received (after its signature checked).
type Request struct {
	ModelID  string
	Streamed bool
	Body     map[string]any
}

// Server is the fake Bedrock runtime.
type Server struct {
	srv               *httptest.Server
	region, accessKey string
	secret            string

	mu       sync.Mutex
	script   []any
	requests []Request
}

// New starts a fake accepting requests signed with the given credentials
// for the region.
func New(region, accessKeyID, secretAccessKey string) *Server {
	s := &Server{region: region, accessKey: accessKeyID, secret: secretAccessKey}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// URL is the endpoint to give the SDK (AWS_ENDPOINT_URL_BEDROCK_RUNTIME or BaseEndpoint).
func (s *Server) URL() string { return s.srv.URL }

// Close stops the server.
func (s *Server) Close() {
	s.srv.CloseClientConnections()
	s.srv.Close()
}

// Script queues behaviours (Reply, Fail, Hang, Cut), consumed one per request in order.
func (s *Server) Script(behaviours ...any) {
	for _, b := range behaviours {
		switch b.(type) {
		case Reply, Fail, Hang, Cut:
		default:
			panic(fmt.Sprintf("bedrockfake: unknown behaviour %T", b))
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.script = append(s.script, behaviours...)
}

// Requests returns the requests received so far.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

func (s *Server) next() any {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.script) == 0 {
		return nil
	}
	b := s.script[0]
	s.script = s.script[1:]
	return b
}

func writeError(w http.ResponseWriter, status int, typ, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Amzn-ErrorType", typ)
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"message": msg})
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 8<<20))
	if err != nil {
		writeError(w, http.StatusBadRequest, "ValidationException", "unreadable body")
		return
	}
	if typ, msg := s.verify(r, body); typ != "" {
		writeError(w, http.StatusForbidden, typ, msg)
		return
	}
	modelID, streamed, ok := route(r)
	if !ok {
		writeError(w, http.StatusNotFound, "UnknownOperationException", "no such operation")
		return
	}
	var req converseRequest
	var raw map[string]any
	if err := json.Unmarshal(body, &req); err != nil || json.Unmarshal(body, &raw) != nil {
		writeError(w, http.StatusBadRequest, "ValidationException", "malformed request body")
		return
	}
	s.mu.Lock()
	s.requests = append(s.requests, Request{ModelID: modelID, Streamed: streamed, Body: raw})
	s.mu.Unlock()
	if msg := req.validate(); msg != "" {
		writeError(w, http.StatusBadRequest, "ValidationException", msg)
		return
	}
	var reply Reply
	switch b := s.next().(type) {
	case Fail:
		writeError(w, b.Status, b.Type, b.Message)
		return
	case Hang:
		<-r.Context().Done()
		return
	case Cut:
		if streamed {
			s.stream(w, Reply{Text: b.Text}, true)
		}
		panic(http.ErrAbortHandler) // the connection closes without a complete answer
	case Reply:
		reply = b
	default:
		reply = Reply{Text: "Echo: " + req.lastUserText()}
	}
	if reply.InputTokens == 0 {
		reply.InputTokens = (int64(req.textBytes()) + 3) / 4
	}
	if reply.OutputTokens == 0 {
		reply.OutputTokens = max((int64(len(reply.Text))+3)/4, 1)
	}
	if streamed {
		s.stream(w, reply, false)
		return
	}
	content := []map[string]any{}
	if reply.Text != "" {
		content = append(content, map[string]any{"text": reply.Text})
	}
	for _, c := range reply.ToolCalls {
		content = append(content, map[string]any{"toolUse": map[string]any{"toolUseId": c.ID, "name": c.Name, "input": arguments(c)}})
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"output":     map[string]any{"message": map[string]any{"role": "assistant", "content": content}},
		"stopReason": stopReason(reply),
		"usage":      usage(reply),
		"metrics":    map[string]any{"latencyMs": 1},
	})
}

func arguments(c bulkhead.ToolCall) any {
	var v any = map[string]any{}
	if len(c.Arguments) > 0 {
		_ = json.Unmarshal(c.Arguments, &v)
	}
	return v
}

func stopReason(r Reply) string {
	if len(r.ToolCalls) > 0 {
		return "tool_use"
	}
	return "end_turn"
}

func usage(r Reply) map[string]any {
	return map[string]any{"inputTokens": r.InputTokens, "outputTokens": r.OutputTokens, "totalTokens": r.InputTokens + r.OutputTokens}
}

// stream answers in event-stream frames, flushed one by one; the text comes
// in several deltas.
func (s *Server) stream(w http.ResponseWriter, reply Reply, cut bool) {
	w.Header().Set("Content-Type", "application/vnd.amazon.eventstream")
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	enc := eventstream.NewEncoder()
	send := func(event string, payload any) bool {
		b, _ := json.Marshal(payload)
		var h eventstream.Headers
		h.Set(":message-type", eventstream.StringValue("event"))
		h.Set(":event-type", eventstream.StringValue(event))
		h.Set(":content-type", eventstream.StringValue("application/json"))
		if err := enc.Encode(w, eventstream.Message{Headers: h, Payload: b}); err != nil {
			return false
		}
		if flusher != nil {
			flusher.Flush()
		}
		return true
	}
	if !send("messageStart", map[string]any{"role": "assistant"}) {
		return
	}
	index := 0
	if reply.Text != "" {
		for _, piece := range split(reply.Text, 3) {
			if !send("contentBlockDelta", map[string]any{"contentBlockIndex": index, "delta": map[string]any{"text": piece}}) {
				return
			}
		}
		if !cut {
			send("contentBlockStop", map[string]any{"contentBlockIndex": index})
			index++
		}
	}
	if cut {
		return
	}
	for _, c := range reply.ToolCalls {
		send("contentBlockStart", map[string]any{"contentBlockIndex": index, "start": map[string]any{"toolUse": map[string]any{"toolUseId": c.ID, "name": c.Name}}})
		in, _ := json.Marshal(arguments(c))
		for _, piece := range split(string(in), 2) {
			send("contentBlockDelta", map[string]any{"contentBlockIndex": index, "delta": map[string]any{"toolUse": map[string]any{"input": piece}}})
		}
		send("contentBlockStop", map[string]any{"contentBlockIndex": index})
		index++
	}
	send("messageStop", map[string]any{"stopReason": stopReason(reply)})
	send("metadata", map[string]any{"usage": usage(reply), "metrics": map[string]any{"latencyMs": 1}})
}

// split cuts s into up to n pieces on rune boundaries.
func split(s string, n int) []string {
	runes := []rune(s)
	size := max((len(runes)+n-1)/n, 1)
	var out []string
	for len(runes) > 0 {
		k := min(size, len(runes))
		out = append(out, string(runes[:k]))
		runes = runes[k:]
	}
	return out
}

// route parses POST /model/{modelId}/converse and /model/{modelId}/converse-stream.
func route(r *http.Request) (modelID string, streamed, ok bool) {
	if r.Method != http.MethodPost {
		return "", false, false
	}
	rest, found := strings.CutPrefix(r.URL.EscapedPath(), "/model/")
	if !found {
		return "", false, false
	}
	i := strings.LastIndex(rest, "/")
	if i <= 0 {
		return "", false, false
	}
	op := rest[i+1:]
	id, err := url.PathUnescape(rest[:i])
	if err != nil {
		return "", false, false
	}
	switch op {
	case "converse":
		return id, false, true
	case "converse-stream":
		return id, true, true
	}
	return "", false, false
}

// verify checks the request's SigV4 signature; it returns an AWS error type
// and message when the request is refused. Bedrock, unlike JSON services,
// accepts an unsigned payload.
func (s *Server) verify(r *http.Request, body []byte) (string, string) {
	return awsfake.VerifySigV4(r, body, awsfake.Credentials{AccessKey: s.accessKey, SecretKey: s.secret, Region: s.region, Service: "bedrock"},
		awsfake.AllowUnsignedPayload())
}

// converseRequest is the part of a Converse body the fake validates.
type converseRequest struct {
	Messages []struct {
		Role    string  `json:"role"`
		Content []block `json:"content"`
	} `json:"messages"`
	System     []struct{ Text string } `json:"system"`
	ToolConfig *struct {
		Tools []struct {
			ToolSpec *struct {
				Name string `json:"name"`
			} `json:"toolSpec"`
		} `json:"tools"`
	} `json:"toolConfig"`
}

type block struct {
	Text    *string `json:"text"`
	ToolUse *struct {
		ToolUseID string          `json:"toolUseId"`
		Name      string          `json:"name"`
		Input     json.RawMessage `json:"input"`
	} `json:"toolUse"`
	ToolResult *struct {
		ToolUseID string `json:"toolUseId"`
		Content   []struct {
			Text *string `json:"text"`
		} `json:"content"`
	} `json:"toolResult"`
}

// validate applies Bedrock's rules: messages alternate starting with the
// user, no empty text, tool results answer earlier tool uses, and tool blocks
// come with a tool configuration naming their tools.
func (c *converseRequest) validate() string {
	if len(c.Messages) == 0 {
		return "A conversation must start with a user message. Try again with a conversation that starts with a user message."
	}
	tools := map[string]bool{}
	if c.ToolConfig != nil {
		for _, t := range c.ToolConfig.Tools {
			if t.ToolSpec != nil {
				tools[t.ToolSpec.Name] = true
			}
		}
	}
	uses := map[string]bool{}
	for i, m := range c.Messages {
		want := "user"
		if i%2 == 1 {
			want = "assistant"
		}
		if m.Role != want {
			if i == 0 {
				return "A conversation must start with a user message. Try again with a conversation that starts with a user message."
			}
			return "A conversation must alternate between user and assistant roles. Make sure the conversation alternates between user and assistant roles and try again."
		}
		if len(m.Content) == 0 {
			return fmt.Sprintf("The content field in the Message object at messages.%d is empty. Add a ContentBlock object to the content field and try again.", i)
		}
		for _, b := range m.Content {
			switch {
			case b.Text != nil:
				if *b.Text == "" {
					return "The text field in the ContentBlock object is blank. Add text to the text field, and try again."
				}
			case b.ToolUse != nil:
				if m.Role != "assistant" {
					return "toolUse blocks are only allowed in assistant messages."
				}
				if c.ToolConfig == nil {
					return "The toolConfig field must be defined when using toolUse and toolResult content blocks."
				}
				if !tools[b.ToolUse.Name] {
					return fmt.Sprintf("The tool %q is not in the toolConfig.", b.ToolUse.Name)
				}
				uses[b.ToolUse.ToolUseID] = true
			case b.ToolResult != nil:
				if m.Role != "user" {
					return "toolResult blocks are only allowed in user messages."
				}
				if c.ToolConfig == nil {
					return "The toolConfig field must be defined when using toolUse and toolResult content blocks."
				}
				if !uses[b.ToolResult.ToolUseID] {
					return "The toolUseId in a toolResult block does not match any toolUse block of a previous turn."
				}
			default:
				return "A ContentBlock must have exactly one member."
			}
		}
	}
	return ""
}

func (c *converseRequest) lastUserText() string {
	for i := len(c.Messages) - 1; i >= 0; i-- {
		if c.Messages[i].Role != "user" {
			continue
		}
		for j := len(c.Messages[i].Content) - 1; j >= 0; j-- {
			if t := c.Messages[i].Content[j].Text; t != nil {
				return *t
			}
		}
	}
	return ""
}

// textBytes counts the request's text: system prompt, text, tool inputs and results.
func (c *converseRequest) textBytes() int {
	n := 0
	for _, s := range c.System {
		n += len(s.Text)
	}
	for _, m := range c.Messages {
		for _, b := range m.Content {
			switch {
			case b.Text != nil:
				n += len(*b.Text)
			case b.ToolUse != nil:
				n += len(b.ToolUse.Input)
			case b.ToolResult != nil:
				for _, rc := range b.ToolResult.Content {
					if rc.Text != nil {
						n += len(*rc.Text)
					}
				}
			}
		}
	}
	return n
}
