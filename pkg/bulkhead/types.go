package bulkhead

import (
	"crypto/rand"
	"encoding/base32"
	"encoding/json"
	"strings"
	"time"
)

// TenantStatus is whether a tenant may use the platform.
type TenantStatus string

// Tenant statuses.
const (
	TenantActive    TenantStatus = "active"
	TenantSuspended TenantStatus = "suspended"
)

// Tenant is a customer of the platform.
type Tenant struct {
	ID        string
	Name      string
	Tier      TierName
	Status    TenantStatus
	Overrides QuotaOverrides
	// BreakerOverrides replace single values of the tier's circuit breaker.
	BreakerOverrides BreakerOverrides
	// Edge is its API Gateway key in AWS (empty locally).
	Edge EdgeKey
	// Endpoint is the API base URL of the tenant's silo stack, for a tenant
	// served by its own stack (empty: the pool serves it).
	Endpoint  string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Quota returns the tenant's effective quota: its tier's defaults with its overrides.
func (t Tenant) Quota() Quota {
	tier, _ := LookupTier(t.Tier)
	return t.Overrides.Apply(tier.Quota)
}

// Breaker returns the tenant's circuit breaker settings: its tier's with
// its overrides.
func (t Tenant) Breaker() Breaker {
	tier, _ := LookupTier(t.Tier)
	return t.BreakerOverrides.Apply(tier.Breaker)
}

// EdgeKey is a tenant's API Gateway API key on the deployed API: its usage
// plan identity (the authorizer returns Value as usageIdentifierKey).
type EdgeKey struct {
	// ID is the API Gateway API key id.
	ID string `json:"id" dynamodbav:"id"`
	// Value is the API key's value, returned by the authorizer as
	// usageIdentifierKey.
	Value string `json:"value" dynamodbav:"value"`
	// Shared is true for a tier's shared key (past the account's key limit).
	Shared bool `json:"shared,omitempty" dynamodbav:"shared,omitempty"`
	// UsagePlanID is the usage plan the key is attached to.
	UsagePlanID string `json:"usage_plan_id,omitempty" dynamodbav:"usage_plan_id,omitempty"`
}

// KeyStatus is whether an API key is usable.
type KeyStatus string

// Key statuses.
const (
	KeyActive  KeyStatus = "active"
	KeyRevoked KeyStatus = "revoked"
)

// APIKey is a tenant's API key as stored: never the secret, only its hash.
type APIKey struct {
	ID        string
	TenantID  string
	Name      string
	Prefix    string
	Hash      string
	Status    KeyStatus
	CreatedAt time.Time
	RevokedAt *time.Time
}

// AgentStatus is whether an agent may be executed.
type AgentStatus string

// Agent statuses.
const (
	AgentActive   AgentStatus = "active"
	AgentDisabled AgentStatus = "disabled"
)

// Agent is a tenant's agent definition.
type Agent struct {
	ID           string
	Name         string
	Status       AgentStatus
	SystemPrompt string
	// Tools is the agent's tools exactly as given: names or definitions.
	Tools []json.RawMessage
	Model string
	// FallbackModels answer, in order, when Model stays unavailable (at most
	// MaxFallbackModels).
	FallbackModels []string
	// Limits are the agent's own runaway guards; zero fields take the tier's
	// defaults, and the tier's ceiling always bounds them.
	Limits AgentLimits
	// LogContent puts message text and tool arguments and results in the
	// agent's execution logs (each cut to MaxLogContentBytes); without it a
	// log says what happened, never what was said.
	LogContent bool
	Version    int64
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// AgentLimits are the guards an agent configures (zero: the tier default).
type AgentLimits struct {
	MaxSteps       int64 `json:"max_steps,omitempty" dynamodbav:"max_steps,omitempty"`
	MaxTokens      int64 `json:"max_tokens,omitempty" dynamodbav:"max_tokens,omitempty"`
	MaxWallSeconds int64 `json:"max_wall_time_seconds,omitempty" dynamodbav:"max_wall_time_seconds,omitempty"`
}

// Effective returns the limits an execution of the agent runs under.
func (l AgentLimits) Effective(t Tier) Limits {
	out := t.Defaults
	if l.MaxSteps > 0 {
		out.MaxSteps = l.MaxSteps
	}
	if l.MaxTokens > 0 {
		out.MaxTokens = l.MaxTokens
	}
	if l.MaxWallSeconds > 0 {
		out.MaxWallTime = time.Duration(l.MaxWallSeconds) * time.Second
	}
	out.MaxSteps = min(out.MaxSteps, t.Ceiling.MaxSteps)
	out.MaxTokens = min(out.MaxTokens, t.Ceiling.MaxTokens)
	out.MaxWallTime = min(out.MaxWallTime, t.Ceiling.MaxWallTime)
	out.MaxDepth = t.Ceiling.MaxDepth
	return out
}

// Role is who wrote a message.
type Role string

// Message roles.
const (
	RoleUser      Role = "user"
	RoleAssistant Role = "assistant"
	// RoleTool carries a tool's result back to the model.
	RoleTool Role = "tool"
)

// Message is one message of a conversation.
type Message struct {
	Role        Role      `json:"role"`
	Content     string    `json:"content"`
	CreatedAt   time.Time `json:"created_at"`
	ExecutionID string    `json:"execution_id,omitempty"`
	// ToolCalls are what an assistant message asked to run.
	ToolCalls []ToolCall `json:"tool_calls,omitempty"`
	// ToolCallID and Name say which call a tool message answers.
	ToolCallID   string `json:"tool_call_id,omitempty"`
	Name         string `json:"name,omitempty"`
	InputTokens  int64  `json:"input_tokens,omitempty"`
	OutputTokens int64  `json:"output_tokens,omitempty"`
}

// Conversation is the head of a conversation; its messages live in object storage.
type Conversation struct {
	ID        string
	AgentID   string
	Turns     int64
	Tokens    int64
	Bytes     int64
	CreatedAt time.Time
	UpdatedAt time.Time
	// FirstTurn is the first turn's messages (a JSON array) when the head
	// holds them, as it does for a small first turn; nil otherwise.
	FirstTurn []byte
}

// Usage is a tenant's counters for the current windows, read from the store.
// Committed values include the reservations of running executions; the
// others count only what settled.
type Usage struct {
	RequestsThisHour int64
	TokensThisMonth  int64
	InputTokens      int64
	OutputTokens     int64
	SpendThisMonth   Micros
	Executions       int64
	CommittedTokens  int64
	CommittedSpend   Micros
	Running          int64
	StorageBytes     int64
	StorageCommitted int64
	// BreakerOpenUntil is when the circuit breaker half-opens (Unix seconds; 0: closed).
	BreakerOpenUntil int64
}

// DayUsage is one day's settled usage.
type DayUsage struct {
	Day          string
	Tokens       int64
	InputTokens  int64
	OutputTokens int64
	Spend        Micros
	Executions   int64
}

// Execution is one run of an agent, recorded when it settles.
type Execution struct {
	ID             string
	AgentID        string
	ConversationID string
	Model          string
	Status         string
	InputTokens    int64
	OutputTokens   int64
	Cost           Micros
	StartedAt      time.Time
	FinishedAt     time.Time
	// ToolCalls are the calls the execution made, in order; a usage record
	// keeps only their number (ToolCallCount).
	ToolCalls     []ToolCallRecord
	ToolCallCount int64
}

// Execution statuses. Those other than completed and failed are runaway
// guards that ended the execution; it is charged for what it used.
const (
	ExecCompleted = "completed"
	ExecFailed    = "failed"
	ExecMaxSteps  = "max_steps"
	ExecMaxTokens = "max_tokens"
	ExecTimedOut  = "timed_out"
	ExecStopped   = "stopped"
	// ExecModelError: the model provider refused the request.
	ExecModelError = "model_error"
	// ExecModelUnavailable: no model of the agent's chain could answer
	// (not counted against the tenant's circuit breaker).
	ExecModelUnavailable = "model_unavailable"
)

// FailedForBreaker says whether an execution that ended with status counts
// as an error for the tenant's circuit breaker: platform failures, refused
// model requests and wall-time overruns; not refusals before admission, not
// guards the tenant configured, and not a model outage (the provider's
// fault, which the model's own circuit handles).
func FailedForBreaker(status string) bool {
	return status == ExecFailed || status == ExecTimedOut || status == ExecModelError
}

// Page is one page of a list, with an opaque cursor for the next.
type Page[T any] struct {
	Items      []T
	NextCursor string
}

// Limits of the public API, documented in the README.
const (
	MaxNameLen         = 128
	MaxSystemPromptLen = 32 * 1024
	MaxMessageBytes    = 64 * 1024
	MaxTools           = 64
	MaxBodyBytes       = 256 * 1024
	DefaultPageSize    = 20
	MaxPageSize        = 100
)

var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// NewID returns prefix + "_" + 16 random lowercase base32 characters (80 bits).
func NewID(prefix string) string {
	var b [10]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("crypto/rand: " + err.Error())
	}
	return prefix + "_" + idEncoding.EncodeToString(b[:])
}

// ValidID reports whether s looks like an ID made by NewID with the prefix;
// anything else is refused before it reaches a key.
func ValidID(prefix, s string) bool {
	rest, ok := strings.CutPrefix(s, prefix+"_")
	if !ok || len(rest) != 16 {
		return false
	}
	for _, c := range rest {
		if !(c >= 'a' && c <= 'z' || c >= '2' && c <= '7') {
			return false
		}
	}
	return true
}
