package client

import (
	"context"
	"encoding/json"
	"iter"
	"net/url"
)

// AuditActor is who made an audited change: Type "key" (ID the key id),
// "operator" (the IAM ARN, local-admin locally) or "platform" (the component).
type AuditActor struct {
	Type string `json:"type"`
	ID   string `json:"id"`
}

// AuditChange is one changed field: its value before and after (null when
// it did not exist before, or does not after).
type AuditChange struct {
	Before json.RawMessage `json:"before"`
	After  json.RawMessage `json:"after"`
}

// AuditEntry is one recorded state change; RawJSON is the entry as the API
// sent it.
type AuditEntry struct {
	rawJSON

	AuditID   string                 `json:"audit_id"`
	Time      Time                   `json:"time"`
	TenantID  *string                `json:"tenant_id"`
	Actor     AuditActor             `json:"actor"`
	Action    string                 `json:"action"`
	Target    *string                `json:"target"`
	RequestID *string                `json:"request_id"`
	SourceIP  *string                `json:"source_ip"`
	Changes   map[string]AuditChange `json:"changes"`
}

// AuditQuery filters an audit listing: Since (inclusive) and Until
// (exclusive), RFC 3339 or YYYY-MM-DD, and Action (such as agent.created).
type AuditQuery struct {
	ListOptions
	Since, Until, Action string
}

func (q AuditQuery) values() url.Values {
	v := q.ListOptions.query()
	for k, s := range map[string]string{"since": q.Since, "until": q.Until, "action": q.Action} {
		if s != "" {
			v.Set(k, s)
		}
	}
	return v
}

// Audit lists the tenant's audit log, oldest first: its own changes and
// those the operator and the platform made to it.
func (c *Client) Audit(ctx context.Context, q AuditQuery) iter.Seq2[AuditEntry, error] {
	return paginate[AuditEntry](ctx, c.t, "/v1/audit", q.values())
}

// Audit lists the audit log for the operator, oldest first: one tenant's
// entries when tenantID is set, else every tenant's (and the platform's
// own) within at most 31 days (default: the seven days to the end of today).
func (o *Operator) Audit(ctx context.Context, tenantID string, q AuditQuery) iter.Seq2[AuditEntry, error] {
	v := q.values()
	if tenantID != "" {
		v.Set("tenant_id", tenantID)
	}
	return paginate[AuditEntry](ctx, o.t, "/v1/admin/audit", v)
}
