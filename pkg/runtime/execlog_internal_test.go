package runtime

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/bulkhead-dev/bulkhead/pkg/bulkhead"
)

// TestEndStep: what ended an execution is told by its status or error
// code, never by an error's message.
func TestEndStep(t *testing.T) {
	leaky := fmt.Errorf("write turn 2: %w", errors.New("GET https://tool.example/?token=s3cr3t: refused"))
	for _, c := range []struct {
		status                 string
		outcome                error
		kind, stepStatus, code string
	}{
		{bulkhead.ExecCompleted, nil, bulkhead.LogStepEnd, bulkhead.LogStatusOK, "completed"},
		{bulkhead.ExecMaxSteps, nil, bulkhead.LogStepGuard, bulkhead.LogStatusRefused, "max_steps"},
		{bulkhead.ExecMaxTokens, nil, bulkhead.LogStepGuard, bulkhead.LogStatusRefused, "max_tokens"},
		{bulkhead.ExecTimedOut, nil, bulkhead.LogStepGuard, bulkhead.LogStatusTimeout, "timed_out"},
		{bulkhead.ExecStopped, nil, bulkhead.LogStepGuard, bulkhead.LogStatusStopped, "stopped"},
		{bulkhead.ExecModelError, &bulkhead.Error{Code: bulkhead.ModelError, Message: "provider said no"}, bulkhead.LogStepError, bulkhead.LogStatusError, "model_error"},
		{bulkhead.ExecModelUnavailable, nil, bulkhead.LogStepError, bulkhead.LogStatusError, "model_unavailable"},
		{bulkhead.ExecFailed, leaky, bulkhead.LogStepError, bulkhead.LogStatusError, "internal"},
		{bulkhead.ExecFailed, bulkhead.Errorf(bulkhead.Conflict, "conversation taken"), bulkhead.LogStepError, bulkhead.LogStatusError, "conflict"},
	} {
		s := endStep(c.status, c.outcome, 7)
		if s.Kind != c.kind || s.Status != c.stepStatus || s.Code != c.code || s.OffsetMS != 7 {
			t.Errorf("%s (%v): %+v, want kind %s, status %s, code %s", c.status, c.outcome, s, c.kind, c.stepStatus, c.code)
		}
		if b, _ := json.Marshal(s); strings.Contains(string(b), "s3cr3t") || strings.Contains(string(b), "said no") {
			t.Errorf("%s: the step quotes the error: %s", c.status, b)
		}
	}
}

// TestToolStep: a tool step says its call's outcome by class; its
// arguments and result are there only with content.
func TestToolStep(t *testing.T) {
	call := bulkhead.ToolCall{ID: "call_1", Name: "lookup", Arguments: json.RawMessage(`{"q":"private words"}`)}
	for _, c := range []struct {
		o    toolOutcome
		want string
	}{
		{toolOutcome{httpStatus: 200}, bulkhead.LogStatusOK},
		{toolOutcome{class: bulkhead.ToolErrTimeout}, bulkhead.LogStatusTimeout},
		{toolOutcome{class: bulkhead.ToolErrStopped}, bulkhead.LogStatusStopped},
		{toolOutcome{class: bulkhead.ToolErrLimit}, bulkhead.LogStatusRefused},
		{toolOutcome{class: bulkhead.ToolErrHTTPStatus, httpStatus: 503}, bulkhead.LogStatusError},
	} {
		s := toolStep(call, c.o, 1, 2, false, "the answer")
		if s.Status != c.want || s.ErrorClass != c.o.class || s.HTTPStatus != c.o.httpStatus || s.Tool != "lookup" || s.CallID != "call_1" {
			t.Errorf("%+v: step %+v, want status %s", c.o, s, c.want)
		}
		if s.Input != "" || s.Output != "" {
			t.Errorf("content without opting in: %+v", s)
		}
	}
	s := toolStep(call, toolOutcome{}, 1, 2, true, strings.Repeat("é", bulkhead.MaxLogContentBytes))
	if s.Input != string(call.Arguments) || len(s.Output) > bulkhead.MaxLogContentBytes || !strings.HasPrefix(s.Output, "éé") || !utf8Valid(s.Output) {
		t.Errorf("content: input %q, output of %d bytes", s.Input, len(s.Output))
	}
}

func utf8Valid(s string) bool { return strings.ToValidUTF8(s, "?") == s }
