package openai_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/bulkhead-dev/bulkhead/pkg/bulkhead"
	"github.com/bulkhead-dev/bulkhead/pkg/providers/openai"
	"github.com/bulkhead-dev/bulkhead/pkg/providers/openai/openaifake"
)

func TestStreamErrorEvent(t *testing.T) {
	fake, m := setup(t, "")
	fake.Enqueue(openaifake.Reply{Text: "alpha beta gamma delta epsilon", ErrorAfter: 2, StreamError: "model overloaded"})
	res, err := m.GenerateStream(context.Background(), request("x"), nil)
	if !bulkhead.IsCode(err, bulkhead.Unavailable) || !strings.Contains(err.Error(), "model overloaded") {
		t.Fatalf("err %v", err)
	}
	if res.Text == "" || res.OutputTokens != int64(len(res.Text)) {
		t.Fatalf("partial %+v", res)
	}
}

func TestStreamDeadlineAfterOutput(t *testing.T) {
	fake, m := setup(t, "")
	fake.Enqueue(openaifake.Reply{Text: "alpha beta gamma delta epsilon", HangAfter: 2})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	req := request("x")
	var deltas []string
	res, err := m.GenerateStream(ctx, req, func(s string) { deltas = append(deltas, s) })
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v", err)
	}
	if len(deltas) != 2 || res.Text != strings.Join(deltas, "") {
		t.Fatalf("deltas %q text %q", deltas, res.Text)
	}
	if res.InputTokens != m.CountTokens(req) || res.OutputTokens != int64(len(res.Text)) {
		t.Fatalf("tokens %d/%d", res.InputTokens, res.OutputTokens)
	}
}

func TestStreamCutKeepsCompleteToolCalls(t *testing.T) {
	fake, m := setup(t, "")
	// Each call streams as a header event and three argument pieces: cut in
	// the middle of the second call.
	fake.Enqueue(openaifake.Reply{ToolCalls: []openaifake.ToolCall{
		{ID: "c1", Name: "first", Arguments: `{"a":"one two three"}`},
		{ID: "c2", Name: "second", Arguments: `{"b":"four five six"}`},
	}, CutAfter: 6})
	res, err := m.GenerateStream(context.Background(), request("x"), nil)
	if !bulkhead.IsCode(err, bulkhead.Unavailable) {
		t.Fatalf("err %v", err)
	}
	if len(res.ToolCalls) != 1 || res.ToolCalls[0].ID != "c1" || string(res.ToolCalls[0].Arguments) != `{"a":"one two three"}` {
		t.Fatalf("tool calls %+v", res.ToolCalls)
	}
	if res.OutputTokens < int64(len(`{"a":"one two three"}`)) {
		t.Fatalf("output tokens %d", res.OutputTokens)
	}
}

// A server that reports no usage is charged the upper bounds.
func TestNoUsageChargesBounds(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.Header.Get("Accept"), "event-stream") {
			w.Header().Set("Content-Type", "text/event-stream")
			fmt.Fprint(w, "data: {\"choices\":[{\"delta\":{\"content\":\"ab\"}}]}\n\n")
			fmt.Fprint(w, ": keep-alive\n\n")
			fmt.Fprint(w, "data: {\"choices\":[{\"delta\":{\"content\":\"cd\"},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n")
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"choices":[{"message":{"role":"assistant","content":"abcd"}}]}`)
	}))
	defer srv.Close()
	m, err := openai.New(openai.Config{BaseURL: srv.URL + "/v1/"})
	if err != nil {
		t.Fatal(err)
	}
	req := request("x")
	for _, stream := range []bool{false, true} {
		var res bulkhead.ModelResponse
		if stream {
			res, err = m.GenerateStream(context.Background(), req, nil)
		} else {
			res, err = m.Generate(context.Background(), req)
		}
		if err != nil {
			t.Fatal(err)
		}
		if res.Text != "abcd" || res.InputTokens != m.CountTokens(req) || res.OutputTokens != 4 {
			t.Fatalf("stream=%v: %+v", stream, res)
		}
	}
}

func TestTruncatedBodyIsUnavailable(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", "500")
		fmt.Fprint(w, `{"choices":[{"message":{"content":"abc`)
	}))
	defer srv.Close()
	m, err := openai.New(openai.Config{BaseURL: srv.URL + "/v1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Generate(context.Background(), request("x")); !bulkhead.IsCode(err, bulkhead.Unavailable) {
		t.Fatalf("err %v", err)
	}
}
