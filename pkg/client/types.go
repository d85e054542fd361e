package client

import (
	"encoding/json"
)

// Agent is an agent as the API shows it.
type Agent struct {
	AgentID        string            `json:"agent_id"`
	Name           string            `json:"name"`
	Status         string            `json:"status"`
	SystemPrompt   string            `json:"system_prompt"`
	Tools          []json.RawMessage `json:"tools"`
	Model          string            `json:"model"`
	FallbackModels []string          `json:"fallback_models"`
	Limits         AgentLimits       `json:"limits"`
	// LogContent says whether the agent's execution logs carry message
	// text and tool arguments and results.
	LogContent bool  `json:"log_content"`
	Version    int64 `json:"version"`
	CreatedAt  Time  `json:"created_at"`
	UpdatedAt  Time  `json:"updated_at"`
}

// AgentLimits are an agent's guards; nil is the tier's default.
type AgentLimits struct {
	MaxSteps           *int64 `json:"max_steps,omitempty"`
	MaxTokens          *int64 `json:"max_tokens,omitempty"`
	MaxWallTimeSeconds *int64 `json:"max_wall_time_seconds,omitempty"`
}

// CreateAgentRequest is POST /v1/agents. Name and SystemPrompt are required;
// Tools are tool names; Model defaults to the offline model.
type CreateAgentRequest struct {
	Name           string       `json:"name"`
	SystemPrompt   string       `json:"system_prompt"`
	Tools          []string     `json:"tools,omitempty"`
	Model          string       `json:"model,omitempty"`
	FallbackModels []string     `json:"fallback_models,omitempty"`
	Limits         *AgentLimits `json:"limits,omitempty"`
	// LogContent puts message text and tool arguments and results in the
	// agent's execution logs (default false).
	LogContent bool `json:"log_content,omitempty"`
}

// UpdateAgentRequest is PATCH /v1/agents/{agent_id}: only the fields set
// change. Status is "active" or "disabled". An empty, non-nil FallbackModels
// removes them.
type UpdateAgentRequest struct {
	Name           *string      `json:"name,omitempty"`
	SystemPrompt   *string      `json:"system_prompt,omitempty"`
	Tools          *[]string    `json:"tools,omitempty"`
	Model          *string      `json:"model,omitempty"`
	FallbackModels *[]string    `json:"fallback_models,omitempty"`
	Status         *string      `json:"status,omitempty"`
	Limits         *AgentLimits `json:"limits,omitempty"`
	LogContent     *bool        `json:"log_content,omitempty"`
}

// ExecuteRequest is POST /v1/agents/{agent_id}/execute; an empty
// ConversationID starts a new conversation.
type ExecuteRequest struct {
	Message        string `json:"message"`
	ConversationID string `json:"conversation_id,omitempty"`
}

// TokenUsage is an execution's tokens.
type TokenUsage struct {
	InputTokens  int64 `json:"input_tokens"`
	OutputTokens int64 `json:"output_tokens"`
}

// ToolCallRecord is one tool call of an execution.
type ToolCallRecord struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	Status     string `json:"status"` // "ok" or "error"
	DurationMS int64  `json:"duration_ms"`
}

// ExecuteResult is an execution's answer (the buffered response, and the
// data of a stream's done event).
type ExecuteResult struct {
	ExecutionID    string           `json:"execution_id"`
	ConversationID string           `json:"conversation_id"`
	AgentID        string           `json:"agent_id"`
	Status         string           `json:"status"`
	Model          string           `json:"model"`
	Message        string           `json:"message"`
	Steps          int64            `json:"steps"`
	TokensUsed     int64            `json:"tokens_used"`
	Cost           json.Number      `json:"cost"` // USD
	Usage          TokenUsage       `json:"usage"`
	ToolCalls      []ToolCallRecord `json:"tool_calls"`
	// Replayed is true when the answer was replayed for a repeated
	// Idempotency-Key (the execution ran once, earlier).
	Replayed bool `json:"-"`
}

// Execution is GET /v1/executions/{execution_id}.
type Execution struct {
	ExecutionID    string `json:"execution_id"`
	ConversationID string `json:"conversation_id"`
	AgentID        string `json:"agent_id"`
	Status         string `json:"status"`
	Model          string `json:"model"`
	// Message is the execution's reply; nil when it wrote none or its
	// conversation was deleted.
	Message       *string     `json:"message"`
	TokensUsed    int64       `json:"tokens_used"`
	Cost          json.Number `json:"cost"`
	Usage         TokenUsage  `json:"usage"`
	ToolCallCount int64       `json:"tool_call_count"`
	StartedAt     Time        `json:"started_at"`
	FinishedAt    Time        `json:"finished_at"`
}

// ExecutionLog is GET /v1/executions/{execution_id}/log: a settled
// execution's steps.
type ExecutionLog struct {
	ExecutionID string `json:"execution_id"`
	AgentID     string `json:"agent_id"`
	Status      string `json:"status"`
	// Truncated says that DroppedSteps steps between the first and the
	// last ones were left out to keep the stored log within its cap.
	Truncated    bool  `json:"truncated"`
	DroppedSteps int64 `json:"dropped_steps"`
	// StoredBytes is what the log counts against the storage quota.
	StoredBytes int64              `json:"stored_bytes"`
	Steps       []ExecutionLogStep `json:"steps"`
}

// ExecutionLogStep is one step of an execution log: Kind is "model", "tool",
// "guard", "error" or "end"; the other fields are those of its kind. Input
// and Output are set only for an agent with LogContent.
type ExecutionLogStep struct {
	Kind         string `json:"kind"`
	OffsetMS     int64  `json:"offset_ms"`
	DurationMS   int64  `json:"duration_ms"`
	Status       string `json:"status"`
	Provider     string `json:"provider,omitempty"`
	Model        string `json:"model,omitempty"`
	InputTokens  int64  `json:"input_tokens,omitempty"`
	OutputTokens int64  `json:"output_tokens,omitempty"`
	StopReason   string `json:"stop_reason,omitempty"`
	Tool         string `json:"tool,omitempty"`
	CallID       string `json:"call_id,omitempty"`
	HTTPStatus   int64  `json:"http_status,omitempty"`
	ErrorClass   string `json:"error_class,omitempty"`
	Code         string `json:"code,omitempty"`
	Input        string `json:"input,omitempty"`
	Output       string `json:"output,omitempty"`
}

// Conversation is a conversation's head.
type Conversation struct {
	ConversationID string `json:"conversation_id"`
	AgentID        string `json:"agent_id"`
	Turns          int64  `json:"turns"`
	TokensUsed     int64  `json:"tokens_used"`
	CreatedAt      Time   `json:"created_at"`
	UpdatedAt      Time   `json:"updated_at"`
}

// ToolCall is a tool call an assistant message asked for.
type ToolCall struct {
	ID        string          `json:"id"`
	Name      string          `json:"name"`
	Arguments json.RawMessage `json:"arguments"`
}

// Message is one message of a transcript.
type Message struct {
	Role         string     `json:"role"` // "user", "assistant" or "tool"
	Content      string     `json:"content"`
	CreatedAt    Time       `json:"created_at"`
	ExecutionID  string     `json:"execution_id,omitempty"`
	ToolCalls    []ToolCall `json:"tool_calls,omitempty"`
	ToolCallID   string     `json:"tool_call_id,omitempty"`
	Name         string     `json:"name,omitempty"`
	InputTokens  int64      `json:"input_tokens,omitempty"`
	OutputTokens int64      `json:"output_tokens,omitempty"`
}

// ConversationPage is GET /v1/conversations/{id}: the head and one page of
// its messages, oldest first.
type ConversationPage struct {
	Conversation
	Messages   []Message `json:"messages"`
	HasMore    bool      `json:"has_more"`
	NextCursor *string   `json:"next_cursor"`
}

// Model is a model the tenant's tier may use.
type Model struct {
	Model            string      `json:"model"`
	Provider         string      `json:"provider"`
	InputPerMillion  json.Number `json:"input_per_million"`
	OutputPerMillion json.Number `json:"output_per_million"`
	ContextWindow    int64       `json:"context_window"`
	MaxOutputTokens  int64       `json:"max_output_tokens"`
}

// Quota is a tenant's effective quota; money in USD.
type Quota struct {
	MaxRequestsPerHour  int64       `json:"max_requests_per_hour"`
	MaxTokensPerMonth   int64       `json:"max_tokens_per_month"`
	MaxSpendPerMonth    json.Number `json:"max_spend_per_month"`
	MaxConcurrentAgents int64       `json:"max_concurrent_agents"`
	MaxStorageMB        int64       `json:"max_storage_mb"`
}

// UsageCounters are GET /v1/usage's counters.
type UsageCounters struct {
	RequestsThisHour    int64       `json:"requests_this_hour"`
	TokensThisMonth     int64       `json:"tokens_this_month"`
	InputTokens         int64       `json:"input_tokens"`
	OutputTokens        int64       `json:"output_tokens"`
	ExecutionsThisMonth int64       `json:"executions_this_month"`
	SpendThisMonth      json.Number `json:"spend_this_month"`
	CommittedTokens     int64       `json:"committed_tokens"`
	CommittedSpend      json.Number `json:"committed_spend"`
	ConcurrentAgents    int64       `json:"concurrent_agents"`
	StorageMB           json.Number `json:"storage_mb"`
	StorageBytes        int64       `json:"storage_bytes"`
	RemainingTokens     int64       `json:"remaining_tokens"`
	RemainingBudget     json.Number `json:"remaining_budget"`
}

// UsagePeriod names the current hour and month and when they reset.
type UsagePeriod struct {
	Hour          string `json:"hour"`
	Month         string `json:"month"`
	HourResetsAt  Time   `json:"hour_resets_at"`
	MonthResetsAt Time   `json:"month_resets_at"`
}

// Usage is GET /v1/usage.
type Usage struct {
	TenantID string        `json:"tenant_id"`
	Tier     string        `json:"tier"`
	Quota    Quota         `json:"quota"`
	Usage    UsageCounters `json:"usage"`
	Period   UsagePeriod   `json:"period"`
}

// UsageRecord is one execution's usage record.
type UsageRecord struct {
	ExecutionID    string      `json:"execution_id"`
	AgentID        string      `json:"agent_id"`
	ConversationID string      `json:"conversation_id"`
	Model          string      `json:"model"`
	InputTokens    int64       `json:"input_tokens"`
	OutputTokens   int64       `json:"output_tokens"`
	Tokens         int64       `json:"tokens"`
	Cost           json.Number `json:"cost"`
	Status         string      `json:"status"`
	ToolCalls      int64       `json:"tool_calls"` // a count
	StartedAt      Time        `json:"started_at"`
	FinishedAt     Time        `json:"finished_at"`
}

// UsageRecordsQuery filters GET /v1/usage/records: From and To (RFC 3339 or
// YYYY-MM-DD, To exclusive; empty: the current month) and AgentID.
type UsageRecordsQuery struct {
	From, To string
	AgentID  string
	ListOptions
}

// DailyUsage is one UTC day of GET /v1/usage/daily.
type DailyUsage struct {
	Date         string      `json:"date"`
	Executions   int64       `json:"executions"`
	Tokens       int64       `json:"tokens"`
	InputTokens  int64       `json:"input_tokens"`
	OutputTokens int64       `json:"output_tokens"`
	Cost         json.Number `json:"cost"`
}

// DailyUsageMonth is GET /v1/usage/daily: the month's days with executions.
type DailyUsageMonth struct {
	Month string       `json:"month"`
	Data  []DailyUsage `json:"data"`
}

// Bill is GET /v1/billing/current: the month so far, an estimate.
type Bill struct {
	TenantID       string      `json:"tenant_id"`
	Month          string      `json:"month"`
	Tier           string      `json:"tier"`
	Currency       string      `json:"currency"`
	BaseFee        json.Number `json:"base_fee"`
	TokensIncluded int64       `json:"tokens_included"`
	TokensUsed     int64       `json:"tokens_used"`
	OverageTokens  int64       `json:"overage_tokens"`
	OverageFee     json.Number `json:"overage_fee"`
	Total          json.Number `json:"total"`
	ModelCost      json.Number `json:"model_cost"`
	Estimate       bool        `json:"estimate"`
}

// InvoiceLine is one line of an invoice.
type InvoiceLine struct {
	Type           string      `json:"type"`
	Description    string      `json:"description,omitempty"`
	Quantity       int64       `json:"quantity,omitempty"`
	UnitPricePer1K json.Number `json:"unit_price_per_1k,omitempty"`
	Amount         json.Number `json:"amount"`
}

// InvoiceAgent is one agent's part of an invoice.
type InvoiceAgent struct {
	AgentID      string      `json:"agent_id"`
	Executions   int64       `json:"executions"`
	Tokens       int64       `json:"tokens"`
	InputTokens  int64       `json:"input_tokens"`
	OutputTokens int64       `json:"output_tokens"`
	ModelCost    json.Number `json:"model_cost"`
}

// Invoice is a closed month's invoice.
type Invoice struct {
	InvoiceID      string         `json:"invoice_id"`
	TenantID       string         `json:"tenant_id"`
	Month          string         `json:"month"`
	Status         string         `json:"status"`
	Currency       string         `json:"currency"`
	Tier           string         `json:"tier"`
	TiersHeld      []string       `json:"tiers_held"`
	Lines          []InvoiceLine  `json:"lines"`
	BaseFee        json.Number    `json:"base_fee"`
	TokensIncluded int64          `json:"tokens_included"`
	TokensUsed     int64          `json:"tokens_used"`
	InputTokens    int64          `json:"input_tokens"`
	OutputTokens   int64          `json:"output_tokens"`
	OverageTokens  int64          `json:"overage_tokens"`
	OverageFee     json.Number    `json:"overage_fee"`
	Total          json.Number    `json:"total"`
	Executions     int64          `json:"executions"`
	ModelCost      json.Number    `json:"model_cost"`
	Margin         json.Number    `json:"margin"`
	Agents         []InvoiceAgent `json:"agents"`
	ClosedAt       Time           `json:"closed_at"`
}

// Key is an API key without its secret; RawJSON is the key (or, in a NewKey,
// the whole answer) as the API sent it.
type Key struct {
	rawJSON

	KeyID     string `json:"key_id"`
	Name      string `json:"name"`
	Prefix    string `json:"prefix"`
	Status    string `json:"status"` // "active" or "revoked"
	CreatedAt Time   `json:"created_at"`
	RevokedAt *Time  `json:"revoked_at"`
}

// NewKey is POST /v1/keys: APIKey, the secret, is in this answer only. A
// replay of the request (a retry) has no APIKey and APIKeyRedacted set:
// revoke that key and create another.
type NewKey struct {
	Key
	APIKey         string `json:"api_key"`
	APIKeyRedacted bool   `json:"api_key_redacted"`
}

// SigningSecret is a tool signing secret's prefix; ExpiresAt is set for
// the previous secret after a rotation.
type SigningSecret struct {
	Prefix    string `json:"prefix"`
	ExpiresAt *Time  `json:"expires_at"`
}

// Tool is a tenant's HTTP tool or MCP server, never with a secret.
type Tool struct {
	ToolID         string          `json:"tool_id"`
	Type           string          `json:"type"` // "http" or "mcp"
	Name           string          `json:"name"`
	Description    string          `json:"description"`
	InputSchema    json.RawMessage `json:"input_schema,omitempty"`
	URL            string          `json:"url"`
	TimeoutMS      int64           `json:"timeout_ms"`
	HeaderNames    []string        `json:"header_names,omitempty"`
	SigningSecrets []SigningSecret `json:"signing_secrets,omitempty"`
	Version        int64           `json:"version"`
	CreatedAt      Time            `json:"created_at"`
	UpdatedAt      Time            `json:"updated_at"`
}

// ToolWithSecret is a tool as created or rotated: SigningSecret (an HTTP
// tool's whsec_... secret) is shown only there. A replayed create has none
// and SigningSecretRedacted set.
type ToolWithSecret struct {
	Tool
	SigningSecret         string `json:"signing_secret,omitempty"`
	SigningSecretRedacted bool   `json:"signing_secret_redacted,omitempty"`
}

// CreateToolRequest is POST /v1/tools. Type is "http" (the default) or
// "mcp"; an HTTP tool needs InputSchema, an MCP server may have Headers.
type CreateToolRequest struct {
	Type        string            `json:"type,omitempty"`
	Name        string            `json:"name"`
	Description string            `json:"description,omitempty"`
	InputSchema json.RawMessage   `json:"input_schema,omitempty"`
	URL         string            `json:"url"`
	TimeoutMS   int64             `json:"timeout_ms,omitempty"`
	Headers     map[string]string `json:"headers,omitempty"`
}

// UpdateToolRequest is PATCH /v1/tools/{tool_id}: only the fields set change.
type UpdateToolRequest struct {
	Description *string            `json:"description,omitempty"`
	InputSchema json.RawMessage    `json:"input_schema,omitempty"`
	URL         *string            `json:"url,omitempty"`
	TimeoutMS   *int64             `json:"timeout_ms,omitempty"`
	Headers     *map[string]string `json:"headers,omitempty"`
}

// Ticket is a ticket an agent opened.
type Ticket struct {
	TicketID    string  `json:"ticket_id"`
	Subject     string  `json:"subject"`
	Body        string  `json:"body"`
	Priority    string  `json:"priority"` // low, normal, high, urgent
	Status      string  `json:"status"`   // open, pending, closed
	ExecutionID *string `json:"execution_id"`
	AgentID     *string `json:"agent_id"`
	Version     int64   `json:"version"`
	CreatedAt   Time    `json:"created_at"`
	UpdatedAt   Time    `json:"updated_at"`
}

// UpdateTicketRequest is PATCH /v1/tickets/{ticket_id}.
type UpdateTicketRequest struct {
	Status   *string `json:"status,omitempty"`
	Priority *string `json:"priority,omitempty"`
}

// Document is a knowledge-base document; ContentType and Text are set by
// GetDocument only.
type Document struct {
	DocID       string `json:"doc_id"`
	Bytes       int64  `json:"bytes"`
	UpdatedAt   Time   `json:"updated_at"`
	ContentType string `json:"content_type,omitempty"`
	Text        string `json:"text,omitempty"`
}
