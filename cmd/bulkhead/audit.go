package main

import (
	"context"
	"encoding/json"
	"iter"
	"sort"
	"strings"

	"github.com/bulkhead-dev/bulkhead/pkg/client"
)

// auditHeader is the audit table's columns.
var auditHeader = []string{"TIME", "TENANT_ID", "ACTOR", "ACTION", "TARGET", "CHANGED"}

// auditCells is what the table shows of an entry: who did what to what,
// and the names of the fields it changed (the JSON output has their values).
func auditCells(e client.AuditEntry) []string {
	var at struct {
		Time string `json:"time"`
	}
	_ = json.Unmarshal(e.RawJSON(), &at)
	deref := func(s *string) string {
		if s == nil {
			return "-"
		}
		return *s
	}
	var changed []string
	for k := range e.Changes {
		changed = append(changed, k)
	}
	sort.Strings(changed)
	return []string{at.Time, deref(e.TenantID), e.Actor.Type + ":" + e.Actor.ID, e.Action, deref(e.Target), strings.Join(changed, ",")}
}

// auditList lists the audit log as the operator: one tenant's (--tenant)
// or every tenant's within a range of at most 31 days.
func auditList(cl *cmdLine, args []string) error {
	tenant := cl.fs.String("tenant", "", "only this tenant's entries (any range); without it, every tenant's within at most 31 days")
	action := cl.fs.String("action", "", "only entries of this action, such as agent.created or quota.refused")
	since := cl.fs.String("since", "", "from this time, inclusive (RFC 3339 or YYYY-MM-DD)")
	until := cl.fs.String("until", "", "to this time, exclusive (RFC 3339 or YYYY-MM-DD)")
	return operatorList(cl, args, func(c *client.Operator, ctx context.Context, o *client.ListOptions) iter.Seq2[client.AuditEntry, error] {
		return c.Audit(ctx, *tenant, client.AuditQuery{ListOptions: *o, Since: *since, Until: *until, Action: *action})
	}, "entries", auditHeader, auditCells)
}
