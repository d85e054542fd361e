package runtime

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/bulkhead-dev/bulkhead/pkg/bulkhead"
)

// InvokeAgent is the built-in tool by which an agent runs another agent of
// the same tenant. The nested execution is admitted and metered like any
// other, and carries the depth, so a recursive agent hits the depth limit
// instead of multiplying requests.
const InvokeAgent = bulkhead.ToolInvokeAgent

// toolSet is an execution's tools: what the model is offered, and what
// each name calls.
type toolSet struct {
	targets map[string]*toolTarget
	specs   []json.RawMessage
}

// runTool runs one call of a built-in tool.
func (r *Runner) runTool(ctx context.Context, st stores, c toolCall) string {
	switch c.call.Name {
	case InvokeAgent:
		return r.invokeAgent(ctx, st, c.call, c.depth)
	case SearchKB:
		return r.searchKB(ctx, st, c.call.Arguments)
	case CreateTicket:
		return r.createTicket(ctx, st, c.exec.ID, c.exec.AgentID, c.call.ID, c.call.Arguments)
	default:
		return toolError(fmt.Sprintf("tool %q is not available on this platform", c.call.Name))
	}
}

func (r *Runner) invokeAgent(ctx context.Context, st stores, call bulkhead.ToolCall, depth int64) string {
	var args struct {
		AgentID string `json:"agent_id"`
		Message string `json:"message"`
		// Query is "<agent_id> <message>", the offline model's form.
		Query string `json:"query"`
	}
	if err := json.Unmarshal(call.Arguments, &args); err != nil {
		return toolError("arguments must be {\"agent_id\", \"message\"}")
	}
	if args.AgentID == "" && args.Query != "" {
		args.AgentID, args.Message, _ = strings.Cut(strings.TrimSpace(args.Query), " ")
	}
	if !bulkhead.ValidID("agt", args.AgentID) || strings.TrimSpace(args.Message) == "" {
		return toolError("arguments must name an agent_id and a non-empty message")
	}
	deadline, _ := ctx.Deadline()
	res, err := r.execute(ctx, st, Request{AgentID: args.AgentID, Message: args.Message, Depth: depth + 1}, deadline)
	if err != nil {
		e := bulkhead.AsError(err)
		if e == nil || e.Code == bulkhead.Internal {
			return toolError("the invoked agent failed")
		}
		return toolError(string(e.Code) + ": " + e.Message)
	}
	return truncateUTF8(res.Reply, maxToolResultBytes)
}

func toolError(msg string) string {
	b, _ := json.Marshal(map[string]string{"error": msg})
	return string(b)
}

// truncateUTF8 cuts s to at most n bytes on a rune boundary.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for len(s) > 0 && !utf8RuneStartAtEnd(s) {
		s = s[:len(s)-1]
	}
	return s
}

// utf8RuneStartAtEnd reports whether s ends on a complete rune.
func utf8RuneStartAtEnd(s string) bool {
	return strings.ToValidUTF8(s, "\uFFFD") == s
}
