package api

import (
	"context"
	"encoding/json"
	"reflect"
	"time"

	"github.com/bulkhead-dev/bulkhead/pkg/bulkhead"
	"github.com/bulkhead-dev/bulkhead/pkg/dynamo"
)

// defaultAdminAuditSpan is how far back the operator's listing across
// tenants reaches when since is not given.
const defaultAdminAuditSpan = 7 * 24 * time.Hour

// bookkeeping are view fields an audit entry leaves out: the target names
// the resource, and versions and times change with every write.
var bookkeeping = map[string]bool{"version": true, "created_at": true, "updated_at": true,
	"agent_id": true, "tool_id": true, "ticket_id": true}

// viewChanges are the top-level fields of a public view that differ from
// before to after (nil before: created; nil after: deleted). Views never
// hold secrets; the store redacts secret-looking fields again in any case.
func viewChanges(before, after any) map[string]bulkhead.Change {
	b, a := viewFields(before), viewFields(after)
	out := map[string]bulkhead.Change{}
	for k, av := range a {
		if bv, ok := b[k]; !bookkeeping[k] && (!ok || !reflect.DeepEqual(av, bv)) {
			out[k] = bulkhead.Change{Before: bv, After: av}
		}
	}
	for k, bv := range b {
		if _, ok := a[k]; !ok && !bookkeeping[k] {
			out[k] = bulkhead.Change{Before: bv}
		}
	}
	return out
}

func viewFields(v any) map[string]any {
	if v == nil {
		return nil
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return nil
	}
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	return m
}

// audited is ctx carrying the detail of the change the handler is about to
// make.
func audited(ctx context.Context, action string, before, after any) context.Context {
	return dynamo.WithAuditDetail(ctx, action, viewChanges(before, after))
}

// agentAction names an agent update by what it did to the agent's status.
func agentAction(before, after bulkhead.AgentStatus) string {
	switch {
	case before == after:
		return bulkhead.ActionAgentUpdated
	case after == bulkhead.AgentDisabled:
		return bulkhead.ActionAgentDisabled
	default:
		return bulkhead.ActionAgentEnabled
	}
}

func viewAuditEntry(e bulkhead.AuditEntry) map[string]any {
	var tid any
	if e.TenantID != "" {
		tid = e.TenantID
	}
	changes := map[string]bulkhead.Change{}
	for k, c := range e.Changes {
		changes[k] = c
	}
	return map[string]any{
		"audit_id": e.ID, "time": timestamp(e.Time), "tenant_id": tid, "actor": e.Actor, "action": e.Action,
		"target": nilIfEmpty(e.Target), "request_id": nilIfEmpty(e.RequestID), "source_ip": nilIfEmpty(e.SourceIP),
		"changes": changes,
	}
}

// auditQuery reads since, until and action from the query string.
func auditQuery(r *request) (dynamo.AuditQuery, error) {
	var q dynamo.AuditQuery
	for name, dst := range map[string]*time.Time{"since": &q.Since, "until": &q.Until} {
		if v := r.QueryStringParameters[name]; v != "" {
			t, err := parseTime(v)
			if err != nil {
				return q, bulkhead.Errorf(bulkhead.Invalid, "%s must be an RFC 3339 time or a date (YYYY-MM-DD)", name)
			}
			*dst = t
		}
	}
	if !q.Since.IsZero() && !q.Until.IsZero() && !q.Since.Before(q.Until) {
		return q, bulkhead.Errorf(bulkhead.Invalid, "since must be before until")
	}
	if v, ok := r.QueryStringParameters["action"]; ok {
		if !bulkhead.ValidAction(v) {
			return q, bulkhead.Errorf(bulkhead.Invalid, "action must be an audit action such as agent.created")
		}
		q.Action = v
	}
	return q, nil
}

func auditList(page bulkhead.Page[bulkhead.AuditEntry]) map[string]any {
	views := make([]map[string]any, len(page.Items))
	for i, e := range page.Items {
		views[i] = viewAuditEntry(e)
	}
	return list(views, page.NextCursor)
}

// listAudit is the tenant's audit log: its own changes and those the
// operator and the platform made to it. The store is the tenant's own
// partition, so no parameter can reach another tenant's entries.
func (a *API) listAudit(ctx context.Context, r *request) (any, error) {
	cursor, limit, err := pageParams(r.APIGatewayProxyRequest)
	if err != nil {
		return nil, err
	}
	q, err := auditQuery(r)
	if err != nil {
		return nil, err
	}
	page, err := a.tenantStore(r).AuditEntries(ctx, q, cursor, limit)
	if err != nil {
		return nil, err
	}
	return auditList(page), nil
}

// adminAudit is the operator's audit log: one tenant's entries (tenant_id,
// any range), or every tenant's and the platform's own within a range of
// at most dynamo.MaxAuditSpan (by default the seven days to the end of
// today).
func (a *API) adminAudit(ctx context.Context, r *request) (any, error) {
	cursor, limit, err := pageParams(r.APIGatewayProxyRequest)
	if err != nil {
		return nil, err
	}
	q, err := auditQuery(r)
	if err != nil {
		return nil, err
	}
	if tid, ok := r.QueryStringParameters["tenant_id"]; ok {
		if !bulkhead.ValidID("tn", tid) {
			return nil, bulkhead.Errorf(bulkhead.Invalid, "tenant_id %q is not a tenant id", tid)
		}
		page, err := a.store.Tenant(tid).AuditEntries(ctx, q, cursor, limit)
		if err != nil {
			return nil, err
		}
		return auditList(page), nil
	}
	if q.Until.IsZero() {
		// The end of today, not now: a cursor is bound to its range, and
		// this one stays the same for the day's pages.
		q.Until = a.now().UTC().Truncate(24 * time.Hour).Add(24 * time.Hour)
	}
	if q.Since.IsZero() {
		q.Since = q.Until.Add(-defaultAdminAuditSpan)
	}
	page, err := a.store.AllAuditEntries(ctx, q, cursor, limit)
	if err != nil {
		return nil, err
	}
	return auditList(page), nil
}
