package runtime

import (
	"strings"

	"github.com/bulkhead-dev/bulkhead/pkg/bulkhead"
)

// An execution's log is built as it runs, from typed fields only: model
// names, token counts, durations, tool names, call ids, HTTP statuses,
// error classes and codes. A tool's or a provider's own error text never
// goes in (it may quote a URL with its query, a header, or an answer); the
// content the agent may opt into (Agent.LogContent) is what the transcript
// holds anyway: the user's message, the replies, the tool arguments and
// results.

// toolStep is the log step of one tool call.
func toolStep(call bulkhead.ToolCall, o toolOutcome, offset, took int64, content bool, out string) bulkhead.LogStep {
	s := bulkhead.LogStep{Kind: bulkhead.LogStepTool, OffsetMS: offset, DurationMS: took, Status: bulkhead.LogStatusOK,
		Tool: call.Name, CallID: call.ID, HTTPStatus: o.httpStatus, ErrorClass: o.class}
	switch o.class {
	case "":
	case bulkhead.ToolErrTimeout:
		s.Status = bulkhead.LogStatusTimeout
	case bulkhead.ToolErrStopped:
		s.Status = bulkhead.LogStatusStopped
	case bulkhead.ToolErrLimit:
		s.Status = bulkhead.LogStatusRefused
	default:
		s.Status = bulkhead.LogStatusError
	}
	if content {
		s.Input, s.Output = logContent(string(call.Arguments)), logContent(out)
	}
	return s
}

// endStep is an execution's last log step: what ended it. Code is the
// execution's status, or for a failure its error code (never its message).
func endStep(status string, outcome error, offset int64) bulkhead.LogStep {
	s := bulkhead.LogStep{OffsetMS: offset, Code: status}
	switch status {
	case bulkhead.ExecCompleted:
		s.Kind, s.Status = bulkhead.LogStepEnd, bulkhead.LogStatusOK
	case bulkhead.ExecMaxSteps, bulkhead.ExecMaxTokens:
		// The guard refused the next step.
		s.Kind, s.Status = bulkhead.LogStepGuard, bulkhead.LogStatusRefused
	case bulkhead.ExecTimedOut:
		s.Kind, s.Status = bulkhead.LogStepGuard, bulkhead.LogStatusTimeout
	case bulkhead.ExecStopped:
		s.Kind, s.Status = bulkhead.LogStepGuard, bulkhead.LogStatusStopped
	default:
		s.Kind, s.Status = bulkhead.LogStepError, bulkhead.LogStatusError
		if outcome != nil {
			s.Code = string(bulkhead.ErrorCode(outcome))
		}
	}
	if s.Code == "" {
		s.Code = bulkhead.ExecFailed
	}
	return s
}

// logContent is text as an opted-in log keeps it: valid UTF-8, at most
// MaxLogContentBytes.
func logContent(s string) string {
	return truncateUTF8(strings.ToValidUTF8(s, "\uFFFD"), bulkhead.MaxLogContentBytes)
}
