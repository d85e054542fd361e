package api

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	"github.com/bulkhead-dev/bulkhead/pkg/bulkhead"
	"github.com/bulkhead-dev/bulkhead/pkg/runtime"
)

// DepthHeader carries how many agent invocations led to this call, so that
// agents calling agents through the API hit the depth limit too.
const DepthHeader = "X-Bulkhead-Depth"

type executeBody struct {
	Message        *string `json:"message"`
	ConversationID *string `json:"conversation_id"`
	// Stream asks for Server-Sent Events (see StreamFunction).
	Stream json.RawMessage `json:"stream"`
}

func (a *API) execute(ctx context.Context, r *request) (any, error) {
	id, err := agentID(r)
	if err != nil {
		return nil, err
	}
	var b executeBody
	if err := decode(r.APIGatewayProxyRequest, &b); err != nil {
		return nil, err
	}
	if err := validStream(b.Stream); err != nil {
		return nil, bulkhead.Errorf(bulkhead.Invalid, "%s", err.Error())
	}
	switch {
	case b.Message == nil:
		return nil, bulkhead.Errorf(bulkhead.Invalid, "message is required")
	case strings.TrimSpace(*b.Message) == "":
		return nil, bulkhead.Errorf(bulkhead.Invalid, "message must not be empty")
	case len(*b.Message) > bulkhead.MaxMessageBytes:
		return nil, bulkhead.Errorf(bulkhead.TooLarge, "message exceeds %d bytes", bulkhead.MaxMessageBytes)
	}
	req := runtime.Request{AgentID: id, Message: *b.Message}
	if h := header(r.APIGatewayProxyRequest, DepthHeader); h != "" {
		d, err := strconv.ParseInt(h, 10, 64)
		if err != nil || d < 0 {
			return nil, bulkhead.Errorf(bulkhead.Invalid, "%s must be a non-negative integer", DepthHeader)
		}
		req.Depth = d
	}
	if b.ConversationID != nil {
		if !bulkhead.ValidID("conv", *b.ConversationID) {
			return nil, bulkhead.Errorf(bulkhead.NotFound, "conversation %s not found", *b.ConversationID)
		}
		req.ConversationID = *b.ConversationID
	}
	if s := r.stream; s != nil {
		req.OnAdmitted, req.OnEvent, req.ClientGone = s.begin, s.onEvent, s.gone
	}
	if r.idem != nil {
		if ref := r.idem.Execution; ref != nil {
			req.ExecutionID, req.StartedAt = ref.ID, ref.StartedAt
		}
		req.Idem = &runtime.Idempotency{Claim: *r.idem, Render: func(res runtime.Result, err error) (int, string) {
			return render(r.log, http.StatusOK, executeView(res), err)
		}}
	}
	res, err := a.runner.Execute(ctx, a.tenantStore(r), a.transcriptStore(r), req)
	if err != nil {
		return nil, err
	}
	e := res.Execution
	r.log.Info("execution settled", "agent_id", e.AgentID, "execution_id", e.ID, "status", e.Status, "tokens", e.InputTokens+e.OutputTokens)
	return executeView(res), nil
}

// executeView is the response to an execution.
func executeView(res runtime.Result) map[string]any {
	e := res.Execution
	toolCalls := e.ToolCalls
	if toolCalls == nil {
		toolCalls = []bulkhead.ToolCallRecord{}
	}
	return map[string]any{
		"execution_id":    e.ID,
		"conversation_id": e.ConversationID,
		"agent_id":        e.AgentID,
		"status":          e.Status,
		"model":           e.Model,
		"message":         res.Reply,
		"steps":           res.Steps,
		"tokens_used":     e.InputTokens + e.OutputTokens,
		"cost":            e.Cost.JSON(),
		"usage":           map[string]int64{"input_tokens": e.InputTokens, "output_tokens": e.OutputTokens},
		"tool_calls":      toolCalls,
	}
}
