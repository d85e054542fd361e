package bulkhead

import (
	"strings"
	"time"
)

// ActorType says who made a change recorded in the audit log.
type ActorType string

// Actor types.
const (
	// ActorKey: a tenant, through one of its API keys (the id is the key id).
	ActorKey ActorType = "key"
	// ActorOperator: the operator (the id is the IAM ARN in AWS, local-admin locally).
	ActorOperator ActorType = "operator"
	// ActorPlatform: the platform itself (the id names the component:
	// circuit_breaker, billing_schedule, admission).
	ActorPlatform ActorType = "platform"
)

// Platform actor ids.
const (
	PlatformBreaker   = "circuit_breaker"
	PlatformSchedule  = "billing_schedule"
	PlatformAdmission = "admission"
)

// Actor is who made a change.
type Actor struct {
	Type ActorType `json:"type"`
	ID   string    `json:"id"`
}

// PlatformActor is the platform component id acting on its own.
func PlatformActor(id string) Actor { return Actor{Type: ActorPlatform, ID: id} }

// Change is one changed field of an audited change: its value before and
// after (nil when it did not exist before, or does not after).
type Change struct {
	Before any `json:"before"`
	After  any `json:"after"`
}

// AuditEntry is one recorded state change. Entries are written in the same
// transaction as the change they record and are never updated or deleted
// (they expire after the retention period).
type AuditEntry struct {
	ID       string
	Time     time.Time
	TenantID string
	Actor    Actor
	// Action is dotted and past tense: agent.created, key.revoked, ...
	Action    string
	Target    string
	RequestID string
	SourceIP  string
	// Changes are the changed fields only, by field name; never a secret.
	Changes map[string]Change
}

// Audit actions.
const (
	ActionTenantCreated      = "tenant.created"
	ActionTenantUpdated      = "tenant.updated"
	ActionTenantTierChanged  = "tenant.tier_changed"
	ActionTenantSuspended    = "tenant.suspended"
	ActionTenantResumed      = "tenant.resumed"
	ActionTenantQuotaChanged = "tenant.quota_changed"
	ActionKeyCreated         = "key.created"
	ActionKeyRevoked         = "key.revoked"
	ActionAgentCreated       = "agent.created"
	ActionAgentUpdated       = "agent.updated"
	ActionAgentDisabled      = "agent.disabled"
	ActionAgentEnabled       = "agent.enabled"
	ActionAgentDeleted       = "agent.deleted"
	ActionToolCreated        = "tool.created"
	ActionToolUpdated        = "tool.updated"
	ActionToolDeleted        = "tool.deleted"
	ActionToolSecretRotated  = "tool.secret_rotated"
	ActionKBDocumentWritten  = "kb.document_written"
	ActionKBDocumentDeleted  = "kb.document_deleted"
	ActionConversationDelete = "conversation.deleted"
	ActionTicketUpdated      = "ticket.updated"
	ActionBreakerTripped     = "breaker.tripped"
	ActionBreakerReset       = "breaker.reset"
	ActionMonthClosed        = "month.closed"
	ActionModelPriced        = "model.priced"
	ActionQuotaRefused       = "quota.refused"
)

// ValidAction reports whether s is shaped as an action (lower-case dotted
// words), for filters.
func ValidAction(s string) bool {
	if len(s) == 0 || len(s) > 64 || !strings.Contains(s, ".") {
		return false
	}
	for _, c := range s {
		if (c < 'a' || c > 'z') && c != '.' && c != '_' {
			return false
		}
	}
	return true
}
