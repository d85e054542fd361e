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
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Quota returns the tenant's effective quota: its tier's defaults with its overrides.
func (t Tenant) Quota() Quota {
	tier, _ := LookupTier(t.Tier)
	return t.Overrides.Apply(tier.Quota)
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
	Tools     []json.RawMessage
	Model     string
	Version   int64
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Role is who wrote a message.
type Role string

// Message roles.
const (
	RoleUser      Role = "user"
	RoleAssistant Role = "assistant"
)

// Message is one message of a conversation.
type Message struct {
	Role         Role      `json:"role"`
	Content      string    `json:"content"`
	CreatedAt    time.Time `json:"created_at"`
	ExecutionID  string    `json:"execution_id,omitempty"`
	InputTokens  int64     `json:"input_tokens,omitempty"`
	OutputTokens int64     `json:"output_tokens,omitempty"`
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
}

// Usage is a tenant's counters for the current windows, read from the store.
type Usage struct {
	RequestsThisHour int64
	TokensThisMonth  int64
	InputTokens      int64
	OutputTokens     int64
	SpendThisMonth   Micros
	Executions       int64
	Running          int64
	StorageBytes     int64
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
}

// Execution statuses.
const (
	ExecCompleted = "completed"
	ExecFailed    = "failed"
)

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
	MaxToolBytes       = 16 * 1024
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
