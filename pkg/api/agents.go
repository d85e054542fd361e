package api

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/bulkhead-dev/bulkhead/pkg/bulkhead"
	"github.com/bulkhead-dev/bulkhead/pkg/s3store"
)

type agentView struct {
	AgentID      string            `json:"agent_id"`
	Name         string            `json:"name"`
	Status       string            `json:"status"`
	SystemPrompt string            `json:"system_prompt"`
	Tools        []json.RawMessage `json:"tools"`
	Model        string            `json:"model"`
	Fallbacks    []string          `json:"fallback_models"`
	Limits       limitsView        `json:"limits"`
	LogContent   bool              `json:"log_content"`
	Version      int64             `json:"version"`
	CreatedAt    string            `json:"created_at"`
	UpdatedAt    string            `json:"updated_at"`
}

// limitsView is an agent's configured guards (null: the tier's default).
type limitsView struct {
	MaxSteps       *int64 `json:"max_steps"`
	MaxTokens      *int64 `json:"max_tokens"`
	MaxWallSeconds *int64 `json:"max_wall_time_seconds"`
}

func viewLimits(l bulkhead.AgentLimits) limitsView {
	nz := func(v int64) *int64 {
		if v == 0 {
			return nil
		}
		return &v
	}
	return limitsView{MaxSteps: nz(l.MaxSteps), MaxTokens: nz(l.MaxTokens), MaxWallSeconds: nz(l.MaxWallSeconds)}
}

func viewAgent(a bulkhead.Agent) agentView {
	tools := a.Tools
	if tools == nil {
		tools = []json.RawMessage{}
	}
	fallbacks := a.FallbackModels
	if fallbacks == nil {
		fallbacks = []string{}
	}
	return agentView{AgentID: a.ID, Name: a.Name, Status: string(a.Status), SystemPrompt: a.SystemPrompt, Tools: tools,
		Model: a.Model, Fallbacks: fallbacks, Limits: viewLimits(a.Limits), LogContent: a.LogContent, Version: a.Version, CreatedAt: timestamp(a.CreatedAt), UpdatedAt: timestamp(a.UpdatedAt)}
}

type agentBody struct {
	Name         *string            `json:"name"`
	SystemPrompt *string            `json:"system_prompt"`
	Tools        *[]json.RawMessage `json:"tools"`
	Model        *string            `json:"model"`
	Fallbacks    *[]string          `json:"fallback_models"`
	Status       *string            `json:"status"`
	Limits       *limitsView        `json:"limits"`
	// LogContent opts the agent's execution logs into message text and
	// tool arguments and results.
	LogContent *bool `json:"log_content"`
}

// checkLimits validates configured guards against the tenant's tier ceiling.
func checkLimits(l *limitsView, tier bulkhead.Tier) (bulkhead.AgentLimits, error) {
	var out bulkhead.AgentLimits
	if l == nil {
		return out, nil
	}
	c := tier.Ceiling
	check := func(name string, v *int64, ceiling int64, dst *int64) error {
		if v == nil {
			return nil
		}
		if *v < 1 || *v > ceiling {
			return bulkhead.Errorf(bulkhead.Invalid, "limits.%s must be from 1 to %d (the %s tier's ceiling)", name, ceiling, tier.Name)
		}
		*dst = *v
		return nil
	}
	if err := check("max_steps", l.MaxSteps, c.MaxSteps, &out.MaxSteps); err != nil {
		return out, err
	}
	if err := check("max_tokens", l.MaxTokens, c.MaxTokens, &out.MaxTokens); err != nil {
		return out, err
	}
	if err := check("max_wall_time_seconds", l.MaxWallSeconds, int64(c.MaxWallTime.Seconds()), &out.MaxWallSeconds); err != nil {
		return out, err
	}
	return out, nil
}

// tenantTier is the tier of the request's tenant.
func (a *API) tenantTier(ctx context.Context, r *request) (bulkhead.Tier, error) {
	t, err := a.tenantStore(r).Profile(ctx)
	if err != nil {
		return bulkhead.Tier{}, err
	}
	tier, _ := bulkhead.LookupTier(t.Tier)
	return tier, nil
}

func validName(field, v string) error {
	if strings.TrimSpace(v) == "" {
		return bulkhead.Errorf(bulkhead.Invalid, "%s must not be empty", field)
	}
	if utf8.RuneCountInString(v) > bulkhead.MaxNameLen {
		return bulkhead.Errorf(bulkhead.Invalid, "%s must be at most %d characters", field, bulkhead.MaxNameLen)
	}
	return nil
}

// validate checks every field present; create says which are required.
func (b agentBody) validate(create bool) error {
	if create {
		switch {
		case b.Name == nil:
			return bulkhead.Errorf(bulkhead.Invalid, "name is required")
		case b.SystemPrompt == nil:
			return bulkhead.Errorf(bulkhead.Invalid, "system_prompt is required")
		case b.Status != nil:
			return bulkhead.Errorf(bulkhead.Invalid, "status cannot be set when creating an agent")
		}
	}
	if b.Name != nil {
		if err := validName("name", *b.Name); err != nil {
			return err
		}
	}
	// Sizes are measured as the response and the stored idempotent result
	// will carry them, JSON-encoded, where '<' takes six bytes.
	if b.SystemPrompt != nil && bulkhead.JSONStringLen(*b.SystemPrompt) > bulkhead.MaxSystemPromptLen {
		return bulkhead.Errorf(bulkhead.Invalid, "system_prompt must be at most %d bytes JSON-encoded", bulkhead.MaxSystemPromptLen)
	}
	if b.Tools != nil {
		if err := validTools(*b.Tools); err != nil {
			return err
		}
	}
	if b.Status != nil && *b.Status != string(bulkhead.AgentActive) && *b.Status != string(bulkhead.AgentDisabled) {
		return bulkhead.Errorf(bulkhead.Invalid, "status must be \"active\" or \"disabled\"")
	}
	return nil
}

// validTools accepts tool names ("search_kb"): built-ins, the tenant's
// tools (POST /v1/tools) and MCP servers' tools ("<server>__<tool>"); that
// each name exists is checked against the tenant's tools afterwards.
func validTools(tools []json.RawMessage) error {
	if len(tools) > bulkhead.MaxTools {
		return bulkhead.Errorf(bulkhead.Invalid, "at most %d tools", bulkhead.MaxTools)
	}
	seen := map[string]bool{}
	for i, raw := range tools {
		var name string
		if err := json.Unmarshal(raw, &name); err != nil {
			return bulkhead.Errorf(bulkhead.Invalid, "tools[%d] must be a tool name (define tools with POST /v1/tools)", i)
		}
		if !bulkhead.ValidToolName(name) {
			return bulkhead.Errorf(bulkhead.Invalid, "tools[%d]: tool names are 1-64 characters of letters, digits, _ and -", i)
		}
		if seen[name] {
			return bulkhead.Errorf(bulkhead.Invalid, "tools[%d]: duplicate tool %q", i, name)
		}
		seen[name] = true
	}
	return nil
}

func compactTools(tools []json.RawMessage) []json.RawMessage {
	out := make([]json.RawMessage, len(tools))
	for i, t := range tools {
		var b bytes.Buffer
		if err := json.Compact(&b, t); err == nil {
			out[i] = json.RawMessage(b.Bytes())
		} else {
			out[i] = t
		}
	}
	return out
}

func (a *API) createAgent(ctx context.Context, r *request) (any, error) {
	var b agentBody
	if err := decode(r.APIGatewayProxyRequest, &b); err != nil {
		return nil, err
	}
	if err := b.validate(true); err != nil {
		return nil, err
	}
	tier, err := a.tenantTier(ctx, r)
	if err != nil {
		return nil, err
	}
	limits, err := checkLimits(b.Limits, tier)
	if err != nil {
		return nil, err
	}
	now := a.now().UTC()
	ag := bulkhead.Agent{ID: bulkhead.NewID("agt"), Name: *b.Name, Status: bulkhead.AgentActive, SystemPrompt: *b.SystemPrompt,
		Tools: []json.RawMessage{}, Model: bulkhead.DefaultModel, Limits: limits, Version: 1, CreatedAt: now, UpdatedAt: now}
	if b.Tools != nil {
		ag.Tools = compactTools(*b.Tools)
	}
	if b.Model != nil {
		ag.Model = *b.Model
	}
	if b.Fallbacks != nil && len(*b.Fallbacks) > 0 {
		ag.FallbackModels = *b.Fallbacks
	}
	if b.LogContent != nil {
		ag.LogContent = *b.LogContent
	}
	if err := a.checkAgentModels(ctx, ag.Model, ag.FallbackModels, tier.Name); err != nil {
		return nil, err
	}
	if err := a.checkAgentTools(ctx, r, ag.Tools); err != nil {
		return nil, err
	}
	view := viewAgent(ag)
	ctx = audited(ctx, bulkhead.ActionAgentCreated, nil, view)
	if err := a.tenantStore(r).CreateAgent(ctx, ag, r.completion(http.StatusCreated, view)); err != nil {
		return nil, err
	}
	return view, nil
}

// agentID reads and checks the path's agent id; a malformed id is simply not found.
func agentID(r *request) (string, error) {
	id := r.PathParameters["agent_id"]
	if !bulkhead.ValidID("agt", id) {
		return "", bulkhead.Errorf(bulkhead.NotFound, "agent %s not found", id)
	}
	return id, nil
}

func (a *API) getAgent(ctx context.Context, r *request) (any, error) {
	id, err := agentID(r)
	if err != nil {
		return nil, err
	}
	ag, err := a.tenantStore(r).GetAgent(ctx, id)
	if err != nil {
		return nil, err
	}
	return viewAgent(ag), nil
}

func (a *API) listAgents(ctx context.Context, r *request) (any, error) {
	cursor, limit, err := pageParams(r.APIGatewayProxyRequest)
	if err != nil {
		return nil, err
	}
	page, err := a.tenantStore(r).ListAgents(ctx, cursor, limit)
	if err != nil {
		return nil, err
	}
	views := make([]agentView, len(page.Items))
	for i, ag := range page.Items {
		views[i] = viewAgent(ag)
	}
	return list(views, page.NextCursor), nil
}

func (a *API) patchAgent(ctx context.Context, r *request) (any, error) {
	id, err := agentID(r)
	if err != nil {
		return nil, err
	}
	var b agentBody
	if err := decode(r.APIGatewayProxyRequest, &b); err != nil {
		return nil, err
	}
	if err := b.validate(false); err != nil {
		return nil, err
	}
	ts := a.tenantStore(r)
	ag, err := ts.GetAgent(ctx, id)
	if err != nil {
		return nil, err
	}
	before := ag
	prev := ag.Version
	if b.Name != nil {
		ag.Name = *b.Name
	}
	if b.SystemPrompt != nil {
		ag.SystemPrompt = *b.SystemPrompt
	}
	if b.Tools != nil {
		ag.Tools = compactTools(*b.Tools)
		if err := a.checkAgentTools(ctx, r, ag.Tools); err != nil {
			return nil, err
		}
	}
	if b.Model != nil {
		ag.Model = *b.Model
	}
	if b.Fallbacks != nil {
		ag.FallbackModels = nil
		if len(*b.Fallbacks) > 0 {
			ag.FallbackModels = *b.Fallbacks
		}
	}
	var tier *bulkhead.Tier
	tenantTier := func() (bulkhead.Tier, error) {
		if tier == nil {
			t, err := a.tenantTier(ctx, r)
			if err != nil {
				return t, err
			}
			tier = &t
		}
		return *tier, nil
	}
	if b.Model != nil || b.Fallbacks != nil {
		// The tier may have changed since the agent was stored: the whole
		// chain is checked against today's.
		t, err := tenantTier()
		if err != nil {
			return nil, err
		}
		if err := a.checkAgentModels(ctx, ag.Model, ag.FallbackModels, t.Name); err != nil {
			return nil, err
		}
	}
	if b.Status != nil {
		ag.Status = bulkhead.AgentStatus(*b.Status)
	}
	if b.LogContent != nil {
		ag.LogContent = *b.LogContent
	}
	if b.Limits != nil {
		t, err := tenantTier()
		if err != nil {
			return nil, err
		}
		if ag.Limits, err = checkLimits(b.Limits, t); err != nil {
			return nil, err
		}
	}
	ag.Version++
	ag.UpdatedAt = a.now().UTC()
	ctx = audited(ctx, agentAction(before.Status, ag.Status), viewAgent(before), viewAgent(ag))
	if err := ts.PutAgent(ctx, ag, prev); err != nil {
		return nil, err
	}
	return viewAgent(ag), nil
}

func (a *API) deleteAgent(ctx context.Context, r *request) (any, error) {
	id, err := agentID(r)
	if err != nil {
		return nil, err
	}
	if err := a.tenantStore(r).DeleteAgent(ctx, id); err != nil {
		return nil, err
	}
	return map[string]any{"agent_id": id, "deleted": true}, nil
}

type conversationView struct {
	ConversationID string `json:"conversation_id"`
	AgentID        string `json:"agent_id"`
	Turns          int64  `json:"turns"`
	TokensUsed     int64  `json:"tokens_used"`
	CreatedAt      string `json:"created_at"`
	UpdatedAt      string `json:"updated_at"`
}

func viewConversation(c bulkhead.Conversation) conversationView {
	return conversationView{ConversationID: c.ID, AgentID: c.AgentID, Turns: c.Turns, TokensUsed: c.Tokens,
		CreatedAt: timestamp(c.CreatedAt), UpdatedAt: timestamp(c.UpdatedAt)}
}

func conversationID(r *request) (string, error) {
	id := r.PathParameters["conversation_id"]
	if !bulkhead.ValidID("conv", id) {
		return "", bulkhead.Errorf(bulkhead.NotFound, "conversation %s not found", id)
	}
	return id, nil
}

func (a *API) listConversations(ctx context.Context, r *request) (any, error) {
	cursor, limit, err := pageParams(r.APIGatewayProxyRequest)
	if err != nil {
		return nil, err
	}
	agent := r.QueryStringParameters["agent_id"]
	if agent != "" && !bulkhead.ValidID("agt", agent) {
		return nil, bulkhead.Errorf(bulkhead.Invalid, "agent_id %q is not an agent id", agent)
	}
	page, err := a.tenantStore(r).ListConversations(ctx, agent, cursor, limit)
	if err != nil {
		return nil, err
	}
	views := make([]conversationView, len(page.Items))
	for i, c := range page.Items {
		views[i] = viewConversation(c)
	}
	return list(views, page.NextCursor), nil
}

// getConversation returns the head and one page of messages, oldest first;
// ?limit= and ?cursor= page through the messages of long conversations.
func (a *API) getConversation(ctx context.Context, r *request) (any, error) {
	id, err := conversationID(r)
	if err != nil {
		return nil, err
	}
	cursor, limit, err := pageParams(r.APIGatewayProxyRequest)
	if err != nil {
		return nil, err
	}
	var from s3store.Position
	if cursor != "" {
		if from, err = s3store.DecodePosition(cursor); err != nil {
			return nil, err
		}
	}
	c, err := a.tenantStore(r).GetConversation(ctx, id)
	if err != nil {
		return nil, err
	}
	msgs, next, err := a.conversationTranscript(r, c).Messages(ctx, id, c.Turns, from, limit)
	if err != nil {
		return nil, err
	}
	if msgs == nil {
		msgs = []bulkhead.Message{}
	}
	var nextCursor any
	if next != nil {
		nextCursor = s3store.EncodePosition(*next)
	}
	return struct {
		conversationView
		Messages   []bulkhead.Message `json:"messages"`
		HasMore    bool               `json:"has_more"`
		NextCursor any                `json:"next_cursor"`
	}{viewConversation(c), msgs, next != nil, nextCursor}, nil
}

// deleteConversation removes a conversation so that its transcript is never
// left uncounted: the head is first marked as being deleted (the
// conversation is gone for the tenant from then on, but its bytes stay in
// the storage count), then the transcript objects are removed, and only then
// the head, giving its bytes back. If object storage fails the answer is 503
// and the head stays, counted, until a retried DELETE finishes the job.
func (a *API) deleteConversation(ctx context.Context, r *request) (any, error) {
	id, err := conversationID(r)
	if err != nil {
		return nil, err
	}
	ts := a.tenantStore(r)
	c, err := ts.StartDeleteConversation(ctx, id)
	if err != nil {
		return nil, err
	}
	if _, err := a.transcriptStore(r).DeleteConversation(ctx, id); err != nil {
		return nil, &bulkhead.Error{Code: bulkhead.Unavailable, Op: "delete conversation",
			Message: "the conversation's transcript could not be deleted; retry the DELETE to finish", Err: err}
	}
	if err := ts.DeleteTurns(ctx, id); err != nil {
		return nil, &bulkhead.Error{Code: bulkhead.Unavailable, Op: "delete conversation",
			Message: "the conversation's turns could not be deleted; retry the DELETE to finish", Err: err}
	}
	if err := ts.FinishDeleteConversation(ctx, c); err != nil {
		return nil, err
	}
	return map[string]any{"conversation_id": id, "deleted": true}, nil
}
