package bulkhead

import (
	"crypto/sha256"
	"strings"
	"time"
	"unicode/utf8"
)

// TicketStatus is where a ticket stands.
type TicketStatus string

// Ticket statuses. A ticket starts open; the tenant moves it.
const (
	TicketOpen    TicketStatus = "open"
	TicketPending TicketStatus = "pending"
	TicketClosed  TicketStatus = "closed"
)

// TicketStatuses are the statuses in the order they are documented.
var TicketStatuses = []TicketStatus{TicketOpen, TicketPending, TicketClosed}

// Valid reports whether s is a ticket status.
func (s TicketStatus) Valid() bool {
	return s == TicketOpen || s == TicketPending || s == TicketClosed
}

// TicketPriority is how urgent a ticket is.
type TicketPriority string

// Ticket priorities; a ticket created without one is normal.
const (
	PriorityLow    TicketPriority = "low"
	PriorityNormal TicketPriority = "normal"
	PriorityHigh   TicketPriority = "high"
	PriorityUrgent TicketPriority = "urgent"
)

// Valid reports whether p is a ticket priority.
func (p TicketPriority) Valid() bool {
	return p == PriorityLow || p == PriorityNormal || p == PriorityHigh || p == PriorityUrgent
}

// Ticket size bounds. The body is measured JSON-encoded, as views and tool
// results carry it, which also bounds what DynamoDB stores.
const (
	MaxTicketSubjectRunes = 200
	MaxTicketBodyBytes    = 16 * 1024
)

// Ticket is a support ticket an agent opened for its tenant (the
// create_ticket tool) and the tenant works through the API.
type Ticket struct {
	ID       string
	Subject  string
	Body     string
	Priority TicketPriority
	Status   TicketStatus
	// ExecutionID, AgentID and CallID say which execution, agent and tool
	// call opened the ticket; a repeated call finds its ticket by them.
	ExecutionID string
	AgentID     string
	CallID      string
	Version     int64
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// Validate checks what a caller chose: subject, body, priority and status.
// Errors: Invalid, with a message fit for the caller.
func (t Ticket) Validate() error {
	if strings.TrimSpace(t.Subject) == "" {
		return Errorf(Invalid, "subject must not be empty")
	}
	if utf8.RuneCountInString(t.Subject) > MaxTicketSubjectRunes {
		return Errorf(Invalid, "subject must be at most %d characters", MaxTicketSubjectRunes)
	}
	if strings.TrimSpace(t.Body) == "" {
		return Errorf(Invalid, "body must not be empty")
	}
	if JSONStringLen(t.Body) > MaxTicketBodyBytes {
		return Errorf(Invalid, "body must be at most %d bytes JSON-encoded", MaxTicketBodyBytes)
	}
	if !t.Priority.Valid() {
		return Errorf(Invalid, "priority must be \"low\", \"normal\", \"high\" or \"urgent\"")
	}
	if !t.Status.Valid() {
		return Errorf(Invalid, "status must be \"open\", \"pending\" or \"closed\"")
	}
	return nil
}

// TicketID is the id of the ticket that tool call callID of execution
// executionID opens: the same call, repeated after a retry, names the same
// ticket, so it is opened once. It has NewID's shape, so ValidID accepts it.
func TicketID(executionID, callID string) string {
	sum := sha256.Sum256([]byte(executionID + "\x00" + callID))
	return "tkt_" + idEncoding.EncodeToString(sum[:10])
}
