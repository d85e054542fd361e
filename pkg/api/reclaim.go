package api

import (
	"context"
	"time"

	"github.com/bulkhead-dev/bulkhead/pkg/runtime"
)

// ReclaimEvery is how often the platform looks for executions that died
// without settling (the local platform's loop; in AWS the stack's schedule
// says the same). With leases of wall time plus a minute, what a crashed
// execution holds comes back at most this long after its lease expired.
const ReclaimEvery = time.Minute

// ReclaimAction is the "action" of the scheduled event that reclaims leases
// (the billing function serves it).
const ReclaimAction = "reclaim-leases"

// ReclaimReport is what one pass over every tenant's leases did.
type ReclaimReport struct {
	Tenants   int      `json:"tenants"`
	Reclaimed int      `json:"reclaimed"`
	Failed    []string `json:"failed"`
}

// ReclaimLeases gives back, for every tenant, what executions that died
// without settling hold (slots, reserved tokens, spend and bytes, orphaned
// transcript turns): with all false those whose lease expired, with all true
// every one, which only a caller that knows no process is running any
// execution may ask (the local platform starting on a store it alone uses).
// It costs one Query per tenant. A tenant that failed is reported and the
// others go on; the next pass finishes the job.
func (a *API) ReclaimLeases(ctx context.Context, all bool) (ReclaimReport, error) {
	rep := ReclaimReport{Failed: []string{}}
	now := a.now().UTC()
	cursor := ""
	for {
		page, err := a.store.ListTenants(ctx, cursor, 100)
		if err != nil {
			return rep, err
		}
		for _, t := range page.Items {
			rep.Tenants++
			n, err := a.runner.Reclaim(ctx, a.store.Tenant(t.ID), a.transcripts.Tenant(t.ID), now, all)
			rep.Reclaimed += n
			if err != nil {
				a.log.Error("reclaim leases", "tenant_id", t.ID, "error", err)
				rep.Failed = append(rep.Failed, t.ID)
			}
		}
		if cursor = page.NextCursor; cursor == "" {
			return rep, nil
		}
	}
}

// ReclaimTenantLeases reclaims the expired leases of one tenant.
func (a *API) ReclaimTenantLeases(ctx context.Context, tenantID string) (int, error) {
	return a.runner.Reclaim(ctx, a.store.Tenant(tenantID), a.transcripts.Tenant(tenantID), a.now().UTC(), false)
}

// ReclaimLoop reclaims expired leases every ReclaimEvery until ctx ends;
// sleep waits and reports whether the time passed (false: stop).
func (a *API) ReclaimLoop(ctx context.Context, sleep func(context.Context, time.Duration) bool) {
	for sleep(ctx, ReclaimEvery) {
		if rep, err := a.ReclaimLeases(ctx, false); err != nil {
			a.log.Error("reclaim leases", "error", err)
		} else if rep.Reclaimed > 0 || len(rep.Failed) > 0 {
			a.log.Info("reclaimed leases", "reclaimed", rep.Reclaimed, "failed", len(rep.Failed))
		}
	}
}

// Runner is the runner executing the API's agents (the local platform waits
// for its executions, or stops them, when it stops).
func (a *API) Runner() *runtime.Runner { return a.runner }
