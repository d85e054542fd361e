package api

import (
	"context"

	"github.com/bulkhead-dev/bulkhead/pkg/bulkhead"
	"github.com/bulkhead-dev/bulkhead/pkg/s3store"
)

// getExecution answers GET /v1/executions/{execution_id}: any settled
// execution of the tenant, from its usage record, with the execute
// response's fields and its start and finish times. The reply ("message") is
// read from the conversation's transcript: the execution's last assistant
// message; null when it wrote no turn or the conversation was deleted.
func (a *API) getExecution(ctx context.Context, r *request) (any, error) {
	id := r.PathParameters["execution_id"]
	if !bulkhead.ValidID("exec", id) {
		return nil, bulkhead.Errorf(bulkhead.NotFound, "execution %s not found", id)
	}
	ts := a.tenantStore(r)
	e, err := ts.Execution(ctx, id)
	if err != nil {
		return nil, err
	}
	var message any
	if e.ConversationID != "" {
		if c, err := ts.GetConversation(ctx, e.ConversationID); err == nil {
			if m, ok, err := a.replyOf(ctx, r, c, id); err != nil {
				return nil, err
			} else if ok {
				message = m
			}
		} else if !bulkhead.IsCode(err, bulkhead.NotFound) {
			return nil, err
		}
	}
	return map[string]any{
		"execution_id":    e.ID,
		"conversation_id": e.ConversationID,
		"agent_id":        e.AgentID,
		"status":          e.Status,
		"model":           e.Model,
		"message":         message,
		"tokens_used":     e.InputTokens + e.OutputTokens,
		"cost":            e.Cost.JSON(),
		"usage":           map[string]int64{"input_tokens": e.InputTokens, "output_tokens": e.OutputTokens},
		"tool_call_count": e.ToolCallCount,
		"started_at":      timestamp(e.StartedAt),
		"finished_at":     timestamp(e.FinishedAt),
	}, nil
}

// replyOf pages through a conversation for the execution's last assistant message.
func (a *API) replyOf(ctx context.Context, r *request, c bulkhead.Conversation, execID string) (string, bool, error) {
	var (
		from  s3store.Position
		reply string
		found bool
	)
	for {
		msgs, next, err := a.conversationTranscript(r, c).Messages(ctx, c.ID, c.Turns, from, bulkhead.MaxPageSize)
		if err != nil {
			if bulkhead.IsCode(err, bulkhead.NotFound) {
				return "", false, nil
			}
			return "", false, err
		}
		for _, m := range msgs {
			if m.ExecutionID == execID && m.Role == bulkhead.RoleAssistant {
				reply, found = m.Content, true
			} else if found && m.ExecutionID != execID {
				return reply, true, nil
			}
		}
		if next == nil {
			return reply, found, nil
		}
		from = *next
	}
}

// logStepView is one step of an execution log as the API shows it; the
// fields of other kinds are left out.
type logStepView struct {
	Kind         string `json:"kind"`
	OffsetMS     int64  `json:"offset_ms"`
	DurationMS   int64  `json:"duration_ms"`
	Status       string `json:"status"`
	Provider     string `json:"provider,omitempty"`
	Model        string `json:"model,omitempty"`
	InputTokens  *int64 `json:"input_tokens,omitempty"`
	OutputTokens *int64 `json:"output_tokens,omitempty"`
	StopReason   string `json:"stop_reason,omitempty"`
	Tool         string `json:"tool,omitempty"`
	CallID       string `json:"call_id,omitempty"`
	HTTPStatus   int64  `json:"http_status,omitempty"`
	ErrorClass   string `json:"error_class,omitempty"`
	Code         string `json:"code,omitempty"`
	Input        string `json:"input,omitempty"`
	Output       string `json:"output,omitempty"`
}

func viewLogStep(s bulkhead.LogStep) logStepView {
	v := logStepView{Kind: s.Kind, OffsetMS: s.OffsetMS, DurationMS: s.DurationMS, Status: s.Status, Provider: s.Provider, Model: s.Model,
		StopReason: s.StopReason, Tool: s.Tool, CallID: s.CallID, HTTPStatus: s.HTTPStatus, ErrorClass: s.ErrorClass, Code: s.Code,
		Input: s.Input, Output: s.Output}
	if s.Kind == bulkhead.LogStepModel {
		// A model step always says its tokens, zero included.
		v.InputTokens, v.OutputTokens = &s.InputTokens, &s.OutputTokens
	}
	return v
}

// getExecutionLog answers GET /v1/executions/{execution_id}/log: the steps
// of a settled execution of the tenant, from its usage record. An execution
// still running has no record yet: it is not found (404) until it settles,
// as with GET /v1/executions/{execution_id}. stored_bytes is what the log
// counts against the tenant's storage quota.
func (a *API) getExecutionLog(ctx context.Context, r *request) (any, error) {
	id := r.PathParameters["execution_id"]
	if !bulkhead.ValidID("exec", id) {
		return nil, bulkhead.Errorf(bulkhead.NotFound, "execution %s not found", id)
	}
	l, stored, err := a.tenantStore(r).ExecutionLog(ctx, id)
	if err != nil {
		return nil, err
	}
	steps := make([]logStepView, len(l.Steps))
	for i, s := range l.Steps {
		steps[i] = viewLogStep(s)
	}
	return map[string]any{
		"execution_id":  l.ExecutionID,
		"agent_id":      l.AgentID,
		"status":        l.Status,
		"truncated":     l.Truncated,
		"dropped_steps": l.Dropped,
		"stored_bytes":  stored,
		"steps":         steps,
	}, nil
}
