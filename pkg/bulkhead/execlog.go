package bulkhead

// ExecutionLog is what an execution did, step by step, kept with its usage
// record: the model calls with their tokens, the tool calls with their
// outcome, and what ended it. It holds no key, no secret and, unless the
// agent opted in (Agent.LogContent), no message text, tool arguments or
// results: steps are built from typed fields only.
type ExecutionLog struct {
	ExecutionID string
	AgentID     string
	Status      string
	Steps       []LogStep
	// Truncated says that steps were dropped to keep the stored log within
	// MaxExecLogBytes: the first and the last steps are kept, and Dropped
	// says how many were left out between them.
	Truncated bool
	Dropped   int64
}

// LogStep is one step of an execution's log. Which fields are set depends
// on its kind.
type LogStep struct {
	// Kind is one of the LogStep* kinds.
	Kind string
	// OffsetMS is when the step began, in milliseconds after the execution
	// started; DurationMS how long it took.
	OffsetMS   int64
	DurationMS int64
	// Status is one of the LogStatus* outcomes.
	Status string

	// Provider and Model name the model that answered (a model step).
	Provider string
	Model    string
	// InputTokens and OutputTokens are what the step was charged: the sum
	// over a log's model steps is the usage record's.
	InputTokens  int64
	OutputTokens int64
	// StopReason is why the model stopped (LogStop*).
	StopReason string

	// Tool and CallID name a tool step's call; HTTPStatus is the status an
	// HTTP tool answered; ErrorClass says why a call failed (ToolErr*).
	Tool       string
	CallID     string
	HTTPStatus int64
	ErrorClass string

	// Code says what ended the execution (a guard, error or end step): its
	// status (max_steps, timed_out, completed ...) or, for an error, its
	// error code.
	Code string

	// Input and Output are the step's content, only with Agent.LogContent:
	// a model step's new input (the user's message, first step) and reply
	// text; a tool step's arguments and result. Each is cut to
	// MaxLogContentBytes.
	Input  string
	Output string
}

// Step kinds of an execution log.
const (
	// LogStepModel is one model call (its retries and fallbacks included).
	LogStepModel = "model"
	// LogStepTool is one tool call.
	LogStepTool = "tool"
	// LogStepGuard is a runaway guard that ended the execution (max_steps,
	// max_tokens, timed_out, stopped): Code names it.
	LogStepGuard = "guard"
	// LogStepError is the failure that ended the execution: Code is its
	// status or error code.
	LogStepError = "error"
	// LogStepEnd is a completed execution's last step.
	LogStepEnd = "end"
)

// Step statuses of an execution log.
const (
	LogStatusOK      = "ok"
	LogStatusError   = "error"
	LogStatusRefused = "refused"
	LogStatusTimeout = "timeout"
	LogStatusStopped = "stopped"
)

// Stop reasons of a model step.
const (
	LogStopEnd     = "end_turn"
	LogStopToolUse = "tool_use"
)

// Error classes of a failed tool step: a class, never the tool's own words
// (which may quote a URL, a header or an answer).
const (
	ToolErrUnknown     = "unknown_tool"
	ToolErrArguments   = "invalid_arguments"
	ToolErrTimeout     = "timeout"
	ToolErrStopped     = "stopped"
	ToolErrUnreachable = "unreachable"
	ToolErrHTTPStatus  = "http_status"
	ToolErrTooLarge    = "too_large"
	ToolErrNotText     = "not_text"
	ToolErrUnavailable = "unavailable"
	ToolErrFailed      = "tool_error"
	ToolErrLimit       = "call_limit"
)

// Size bounds of execution logs.
const (
	// MaxExecLogBytes bounds an execution's log as stored (compressed):
	// beyond it the middle steps are dropped.
	MaxExecLogBytes = 8 << 10
	// MaxLogContentBytes bounds each content field of a step.
	MaxLogContentBytes = 1024
)
