package client

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"iter"
	"net/http"
	"strings"
)

// Stream event types (the SSE event names).
const (
	EventDelta      = "delta"
	EventToolCall   = "tool_call"
	EventToolResult = "tool_result"
	EventDone       = "done"
)

// StreamToolCall is a tool_call event: the model asked to run a tool.
type StreamToolCall struct {
	ID        string          `json:"id"`
	Name      string          `json:"name"`
	Arguments json.RawMessage `json:"arguments"`
}

// StreamToolResult is a tool_result event: what the tool answered.
type StreamToolResult struct {
	ToolCallID string `json:"tool_call_id"`
	Name       string `json:"name"`
	Output     string `json:"output"`
}

// StreamEvent is one event of a streamed execution. Type says which field
// is set: Text for "delta" (the deltas joined are the reply), ToolCall for
// "tool_call", ToolResult for "tool_result", and Result for "done", the
// last event, which carries exactly what Execute returns.
type StreamEvent struct {
	Type       string
	Text       string
	ToolCall   *StreamToolCall
	ToolResult *StreamToolResult
	Result     *ExecuteResult
}

// ExecuteStream runs one turn of an agent as Server-Sent Events. The
// iterator yields each event as it arrives and ends after the done event;
// a refusal (before the stream began: quota, validation...) or an error
// event ends it with an *Error. Stopping the range closes the connection,
// which stops the execution (it is settled as "stopped" and charged for what
// was generated). A retry, before the stream began, uses the same
// Idempotency-Key; a replayed stream is a single done event.
func (c *Client) ExecuteStream(ctx context.Context, agentID string, req ExecuteRequest) iter.Seq2[StreamEvent, error] {
	return func(yield func(StreamEvent, error) bool) {
		body := struct {
			ExecuteRequest
			Stream bool `json:"stream"`
		}{req, true}
		r, err := jsonRequest(http.MethodPost, "/v1/agents/"+pathEscape(agentID)+"/execute", body)
		if err != nil {
			yield(StreamEvent{}, err)
			return
		}
		r.replaySafe, r.accept = true, "text/event-stream"
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		resp, err := c.t.send(ctx, r)
		if err != nil {
			yield(StreamEvent{}, err)
			return
		}
		defer resp.Body.Close()
		replayed := resp.Header.Get(ReplayedHeader) == "true"
		if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
			// Not a stream: the buffered answer (a proxy in between that
			// does not stream, say) is the result.
			var res ExecuteResult
			if err := decodeBody(resp, r, &res); err != nil {
				yield(StreamEvent{}, err)
				return
			}
			res.Replayed = replayed
			yield(StreamEvent{Type: EventDone, Result: &res}, nil)
			return
		}
		for name, data := range readSSE(resp.Body) {
			if name == "" { // a read error, carried in data
				yield(StreamEvent{}, fmt.Errorf("bulkhead: %s %s: read the stream: %s", r.method, r.path, data))
				return
			}
			ev, err := decodeEvent(name, data, r)
			if err != nil {
				yield(StreamEvent{}, err)
				return
			}
			if ev.Result != nil {
				ev.Result.Replayed = replayed
			}
			if !yield(ev, nil) || ev.Type == EventDone {
				return
			}
		}
		yield(StreamEvent{}, fmt.Errorf("bulkhead: %s %s: the stream ended without a done event", r.method, r.path))
	}
}

func decodeEvent(name, data string, r *request) (StreamEvent, error) {
	ev := StreamEvent{Type: name}
	var err error
	switch name {
	case EventDelta:
		var d struct {
			Text string `json:"text"`
		}
		err = json.Unmarshal([]byte(data), &d)
		ev.Text = d.Text
	case EventToolCall:
		ev.ToolCall = &StreamToolCall{}
		err = json.Unmarshal([]byte(data), ev.ToolCall)
	case EventToolResult:
		ev.ToolResult = &StreamToolResult{}
		err = json.Unmarshal([]byte(data), ev.ToolResult)
	case EventDone:
		ev.Result = &ExecuteResult{}
		err = json.Unmarshal([]byte(data), ev.Result)
	case "error":
		e := parseError([]byte(data))
		e.Method, e.Path = r.method, r.path
		e.Status = statusOf(e.Code)
		return ev, e
	}
	if err != nil {
		return ev, fmt.Errorf("bulkhead: %s %s: decode a %s event: %w", r.method, r.path, name, err)
	}
	return ev, nil
}

// statusOf is the HTTP status the API gives an error code; an error event
// has no status of its own.
func statusOf(code string) int {
	switch code {
	case "invalid_request":
		return 400
	case "unauthenticated":
		return 401
	case "forbidden", "depth_limit_exceeded", "model_not_allowed":
		return 403
	case "not_found":
		return 404
	case "conflict", "idempotency_in_progress":
		return 409
	case "too_large":
		return 413
	case "idempotency_mismatch":
		return 422
	case "rate_limited", "quota_exceeded", "concurrency_limited":
		return 429
	case "model_error":
		return 502
	case "model_unavailable", "circuit_open", "unavailable":
		return 503
	}
	return 500
}

// readSSE yields each event of a Server-Sent Events body as its name and
// data (data lines joined by newlines); a read error is yielded with an
// empty name and the error's text.
func readSSE(body io.Reader) iter.Seq2[string, string] {
	return func(yield func(string, string) bool) {
		sc := bufio.NewScanner(body)
		sc.Buffer(make([]byte, 64<<10), 16<<20)
		var name string
		var data []string
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if len(data) > 0 || name != "" {
					if name == "" {
						name = "message"
					}
					if !yield(name, strings.Join(data, "\n")) {
						return
					}
				}
				name, data = "", nil
			case strings.HasPrefix(line, ":"):
			case strings.HasPrefix(line, "event:"):
				name = strings.TrimSpace(strings.TrimPrefix(line, "event:"))
			case strings.HasPrefix(line, "data:"):
				d := strings.TrimPrefix(line, "data:")
				data = append(data, strings.TrimPrefix(d, " "))
			}
		}
		if err := sc.Err(); err != nil {
			yield("", err.Error())
		}
	}
}
