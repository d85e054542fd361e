package runtime

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/bulkhead-dev/bulkhead/pkg/bulkhead"
	"github.com/bulkhead-dev/bulkhead/pkg/dynamo"
	"github.com/bulkhead-dev/bulkhead/pkg/s3store"
)

// Defaults for a Runner's zero fields.
const (
	DefaultWindow          = 10
	DefaultLease           = 5 * time.Minute
	DefaultMaxWallTime     = 2 * time.Minute
	DefaultMaxOutputTokens = 1024
	settleTimeout          = 30 * time.Second
)

// Runner executes agents. It is safe for concurrent use.
type Runner struct {
	Model bulkhead.Model
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Window is how many earlier turns the model sees.
	Window int
	// Lease bounds how long a crashed execution can hold its conversation.
	// It must exceed MaxWallTime: a live execution never outlasts its claim.
	Lease time.Duration
	// MaxWallTime bounds the model call of one execution.
	MaxWallTime time.Duration
	// MaxOutputTokens caps each reply.
	MaxOutputTokens int64
	Logger          *slog.Logger
}

// Request is one execution asked for by a tenant.
type Request struct {
	AgentID        string
	Message        string
	ConversationID string // "" starts a new conversation
}

// Result is a finished execution.
type Result struct {
	Execution bulkhead.Execution
	Reply     string
}

func (r *Runner) now() time.Time {
	if r.Now != nil {
		return r.Now().UTC()
	}
	return time.Now().UTC()
}

func (r *Runner) logger() *slog.Logger {
	if r.Logger != nil {
		return r.Logger
	}
	return slog.New(slog.DiscardHandler)
}

// Execute runs one turn of an agent for the tenant the stores are bound to.
// The usage of every execution that was admitted is recorded exactly once,
// also when the model fails, the transcript cannot be written or the client
// goes away. Errors: NotFound (agent, conversation), Invalid, Conflict (agent
// disabled, conversation busy), ModelError/ModelTimeout, Unavailable.
func (r *Runner) Execute(ctx context.Context, ts *dynamo.TenantStore, tr *s3store.TenantStore, req Request) (Result, error) {
	agent, err := ts.GetAgent(ctx, req.AgentID)
	if err != nil {
		return Result{}, err
	}
	if agent.Status != bulkhead.AgentActive {
		return Result{}, bulkhead.Errorf(bulkhead.Conflict, "agent %s is disabled", agent.ID)
	}
	price, ok := bulkhead.LookupModel(agent.Model)
	if !ok {
		return Result{}, &bulkhead.Error{Code: bulkhead.Internal, Message: "internal error", Err: fmt.Errorf("agent %s names unknown model %q", agent.ID, agent.Model)}
	}

	var (
		history []bulkhead.Message
		claim   *dynamo.ConversationClaim
		convID  = req.ConversationID
		turn    = int64(1)
		created time.Time
	)
	if convID != "" {
		conv, err := ts.GetConversation(ctx, convID)
		if err != nil {
			return Result{}, err
		}
		if conv.AgentID != agent.ID {
			return Result{}, bulkhead.Errorf(bulkhead.Invalid, "conversation %s belongs to another agent", convID)
		}
		if history, _, err = tr.RecentMessages(ctx, convID, conv.Turns, r.window()); err != nil {
			return Result{}, fmt.Errorf("read conversation %s: %w", convID, err)
		}
		claim = &dynamo.ConversationClaim{ID: convID, Turns: conv.Turns}
		turn = conv.Turns + 1
		created = conv.CreatedAt
	} else {
		convID = bulkhead.NewID("conv")
	}

	started := r.now()
	exec := bulkhead.Execution{ID: bulkhead.NewID("exec"), AgentID: agent.ID, ConversationID: convID, Model: agent.Model, StartedAt: started}
	if err := ts.Admit(ctx, dynamo.Admission{ExecutionID: exec.ID, Conversation: claim, Now: started, Lease: r.lease()}); err != nil {
		return Result{}, err
	}
	if created.IsZero() {
		created = started
	}

	// From here on the execution is admitted: whatever happens, it settles,
	// and it settles even if the caller has gone away.
	settleCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), settleTimeout)
	defer cancel()
	settle := func(turn *dynamo.SettledTurn) error {
		exec.FinishedAt = r.now()
		exec.Cost = price.Cost(exec.InputTokens, exec.OutputTokens)
		return ts.Settle(settleCtx, dynamo.Settlement{Execution: exec, Turn: turn, Claimed: claim != nil})
	}

	user := bulkhead.Message{Role: bulkhead.RoleUser, Content: req.Message, CreatedAt: started, ExecutionID: exec.ID}
	modelCtx, cancelModel := context.WithTimeout(ctx, r.maxWallTime())
	resp, err := r.Model.Generate(modelCtx, bulkhead.ModelRequest{
		Model: agent.Model, SystemPrompt: agent.SystemPrompt, Messages: append(history, user), MaxOutputTokens: r.maxOutput(),
	})
	cancelModel()
	if err != nil {
		exec.Status = bulkhead.ExecFailed
		exec.InputTokens, exec.OutputTokens = resp.InputTokens, resp.OutputTokens
		if serr := settle(nil); serr != nil {
			r.logger().ErrorContext(ctx, "settle failed execution", "execution_id", exec.ID, "error", serr)
		}
		return Result{}, modelError(err)
	}
	exec.InputTokens, exec.OutputTokens = resp.InputTokens, resp.OutputTokens

	finished := r.now()
	if claim != nil && !finished.Before(started.Add(r.lease())) {
		// The claim has lapsed (a stalled process): another execution may own
		// the conversation now, so the turn is not written; the tokens are.
		exec.Status = bulkhead.ExecFailed
		if serr := settle(nil); serr != nil {
			r.logger().ErrorContext(ctx, "settle execution after lapsed claim", "execution_id", exec.ID, "error", serr)
		}
		return Result{}, bulkhead.Errorf(bulkhead.Conflict, "execution outlived its claim on conversation %s; the reply was metered but not saved", convID)
	}
	reply := bulkhead.Message{Role: bulkhead.RoleAssistant, Content: resp.Text, CreatedAt: finished, ExecutionID: exec.ID,
		InputTokens: resp.InputTokens, OutputTokens: resp.OutputTokens}
	written, err := tr.AppendTurn(settleCtx, convID, turn, []bulkhead.Message{user, reply})
	if err != nil {
		// The model ran: its tokens are charged even though the turn is lost.
		exec.Status = bulkhead.ExecFailed
		if serr := settle(nil); serr != nil {
			r.logger().ErrorContext(ctx, "settle execution after transcript failure", "execution_id", exec.ID, "error", serr)
		}
		return Result{}, fmt.Errorf("write turn %d of %s: %w", turn, convID, err)
	}
	exec.Status = bulkhead.ExecCompleted
	if err := settle(&dynamo.SettledTurn{New: claim == nil, AgentID: agent.ID, Bytes: written, CreatedAt: created}); err != nil {
		return Result{}, err
	}
	return Result{Execution: exec, Reply: resp.Text}, nil
}

// modelError classifies a provider failure for the caller.
func modelError(err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return &bulkhead.Error{Code: bulkhead.ModelTimeout, Message: "model provider timed out", Err: err}
	}
	if errors.Is(err, context.Canceled) {
		return &bulkhead.Error{Code: bulkhead.Unavailable, Message: "request cancelled", Err: err}
	}
	msg := "model provider failed"
	if e := bulkhead.AsError(err); e != nil && e.Message != "" {
		msg = e.Message
	}
	return &bulkhead.Error{Code: bulkhead.ModelError, Message: msg, Err: err}
}

func (r *Runner) window() int {
	if r.Window > 0 {
		return r.Window
	}
	return DefaultWindow
}

func (r *Runner) lease() time.Duration {
	if r.Lease > 0 {
		return r.Lease
	}
	return DefaultLease
}

func (r *Runner) maxWallTime() time.Duration {
	if r.MaxWallTime > 0 {
		return r.MaxWallTime
	}
	return DefaultMaxWallTime
}

func (r *Runner) maxOutput() int64 {
	if r.MaxOutputTokens > 0 {
		return r.MaxOutputTokens
	}
	return DefaultMaxOutputTokens
}
