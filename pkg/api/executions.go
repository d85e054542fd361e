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
