package openai

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"sort"

	"github.com/bulkhead-dev/bulkhead/pkg/bulkhead"
)

// maxEventLine bounds one server-sent event line.
const maxEventLine = 4 << 20

type streamChunk struct {
	Choices []struct {
		Delta struct {
			Content   string         `json:"content"`
			ToolCalls []wireToolCall `json:"tool_calls"`
		} `json:"delta"`
		FinishReason *string `json:"finish_reason"`
	} `json:"choices"`
	Usage *usage    `json:"usage"`
	Error *apiError `json:"error"`
}

type partialCall struct {
	id, name string
	args     []byte
}

// streamState assembles a streamed reply.
type streamState struct {
	text     []byte
	calls    map[int]*partialCall
	maxIndex int
	finished bool
	usage    *usage
}

// GenerateStream sends req with streaming on, calls onDelta with each piece
// of text in order, and returns the assembled reply. If the stream breaks
// after some output, it returns what arrived (the text, the tool calls
// complete so far) with upper-bound token counts, together with the error.
func (m *Model) GenerateStream(ctx context.Context, req bulkhead.ModelRequest, onDelta func(text string)) (bulkhead.ModelResponse, error) {
	resp, err := m.send(ctx, req, true)
	if err != nil {
		return bulkhead.ModelResponse{}, err
	}
	defer resp.Body.Close()
	st := &streamState{calls: map[int]*partialCall{}, maxIndex: -1}
	done, err := st.read(resp.Body, onDelta)
	if err == nil && !done && !st.finished {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		var be *bulkhead.Error
		switch {
		case ctx.Err() != nil:
			err = ctxError(ctx)
		case errors.As(err, &be):
		default:
			err = &bulkhead.Error{Code: bulkhead.Unavailable, Op: "openai", Message: "the model's stream was cut off", Err: scrub(err)}
		}
		if len(st.text) == 0 && len(st.calls) == 0 {
			return bulkhead.ModelResponse{}, err
		}
		return st.partial(m.CountTokens(req)), err
	}
	out := st.response(true)
	if st.usage != nil {
		out.InputTokens, out.OutputTokens = st.usage.PromptTokens, st.usage.CompletionTokens
	} else {
		// The server reported no usage: charge the upper bounds.
		out.InputTokens, out.OutputTokens = m.CountTokens(req), st.outputBytes()
	}
	return out, nil
}

// read consumes the event stream until [DONE] (done true), the end of the
// body, or an error.
func (st *streamState) read(body io.Reader, onDelta func(string)) (done bool, err error) {
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 0, 64<<10), maxEventLine)
	for sc.Scan() {
		line := sc.Bytes()
		data, ok := bytes.CutPrefix(line, []byte("data:"))
		if !ok {
			continue // comments, event names, ids and blank separators
		}
		data = bytes.TrimSpace(data)
		if len(data) == 0 {
			continue
		}
		if string(data) == "[DONE]" {
			return true, nil
		}
		var c streamChunk
		if err := json.Unmarshal(data, &c); err != nil {
			return false, &bulkhead.Error{Code: bulkhead.Unavailable, Op: "openai", Message: "the model's stream has an invalid event", Err: err}
		}
		if c.Error != nil {
			return false, &bulkhead.Error{Code: bulkhead.Unavailable, Op: "openai", Message: "model error: " + bound(c.Error.message())}
		}
		if c.Usage != nil {
			st.usage = c.Usage
		}
		if len(c.Choices) == 0 {
			continue
		}
		ch := c.Choices[0]
		if ch.Delta.Content != "" {
			st.text = append(st.text, ch.Delta.Content...)
			if onDelta != nil {
				onDelta(ch.Delta.Content)
			}
		}
		for i, tc := range ch.Delta.ToolCalls {
			idx := i
			if tc.Index != nil {
				idx = *tc.Index
			}
			p := st.calls[idx]
			if p == nil {
				p = &partialCall{}
				st.calls[idx] = p
			}
			if tc.ID != "" {
				p.id = tc.ID
			}
			if tc.Function.Name != "" {
				p.name += tc.Function.Name
			}
			p.args = append(p.args, tc.Function.Arguments...)
			st.maxIndex = max(st.maxIndex, idx)
		}
		if ch.FinishReason != nil && *ch.FinishReason != "" {
			st.finished = true
		}
	}
	return false, sc.Err()
}

// response returns the text and the tool calls; with all false, only the
// calls known to be complete (a later call has begun).
func (st *streamState) response(all bool) bulkhead.ModelResponse {
	out := bulkhead.ModelResponse{Text: string(st.text)}
	idx := make([]int, 0, len(st.calls))
	for i := range st.calls {
		idx = append(idx, i)
	}
	sort.Ints(idx)
	for _, i := range idx {
		if !all && !st.finished && i >= st.maxIndex {
			continue
		}
		p := st.calls[i]
		out.ToolCalls = append(out.ToolCalls, bulkhead.ToolCall{ID: p.id, Name: p.name, Arguments: arguments(string(p.args))})
	}
	return out
}

// partial is the reply of a broken stream, with upper bounds for its tokens
// since the provider reported none: the input's UTF-8 bound, and one token
// per byte of text and arguments received.
func (st *streamState) partial(inputBound int64) bulkhead.ModelResponse {
	out := st.response(false)
	out.InputTokens, out.OutputTokens = inputBound, st.outputBytes()
	return out
}

func (st *streamState) outputBytes() int64 {
	n := int64(len(st.text))
	for _, p := range st.calls {
		n += int64(len(p.args))
	}
	return n
}
