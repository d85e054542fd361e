package runtime

import (
	"context"
	"fmt"
	"time"

	"github.com/bulkhead-dev/bulkhead/pkg/bulkhead"
	"github.com/bulkhead-dev/bulkhead/pkg/dynamo"
	"github.com/bulkhead-dev/bulkhead/pkg/metrics"
)

// watchBreaker updates the tenant's circuit breaker after an execution
// settled. A half-open breaker closes on a success and opens again on a
// failure. A closed one opens when, within the error window, at least
// MinExecutions finished and ErrorRatePct of them failed, or when the spend
// window's spend passes SpendPct of the monthly spend quota. Error rates are
// read after each failure; spend at most every few seconds per tenant and
// process. The breaker is advisory bookkeeping: a failure here is logged,
// never returned.
func (r *Runner) watchBreaker(ctx context.Context, ts *dynamo.TenantStore, tenant bulkhead.Tenant, cfg bulkhead.Breaker,
	seen dynamo.BreakerState, exec bulkhead.Execution) {
	now := r.now()
	// The platform, not the caller whose execution this was, changes the breaker.
	ctx = dynamo.AsPlatform(ctx, bulkhead.PlatformBreaker)
	failed := bulkhead.FailedForBreaker(exec.Status)
	log := r.logger().With("tenant_id", tenant.ID)
	if seen.State(exec.StartedAt) == "half_open" {
		var err error
		var changed bool
		if failed {
			changed, err = ts.TripBreaker(ctx, now, now.Add(cfg.CoolDown), "half-open probe failed", &seen)
			log.Warn("circuit breaker re-opened", "reason", "half-open probe failed")
		} else {
			changed, err = ts.ResetBreaker(ctx, now, &seen)
		}
		if err != nil {
			log.Error("circuit breaker update", "error", err)
		} else if changed {
			r.breakerChanged(tenant.ID, failed)
		}
		return
	}
	if !failed && !r.spendCheckDue(tenant.ID, now) {
		return
	}
	errs, spend, err := ts.BreakerWindows(ctx, now, seen.Since, cfg.ErrorWindow, cfg.SpendWindow)
	if err != nil {
		log.Error("circuit breaker windows", "error", err)
		return
	}
	reason := ""
	total := errs.OK + errs.Errors
	limit := tenant.Quota().MaxSpendPerMonth
	// Products saturate: a huge spend limit must read as never reached, not
	// wrap negative and trip the breaker at once.
	switch {
	case total >= cfg.MinExecutions && bulkhead.MulSat(errs.Errors, 100) >= bulkhead.MulSat(cfg.ErrorRatePct, total):
		reason = fmt.Sprintf("%d of the last %d executions within %s failed", errs.Errors, total, cfg.ErrorWindow)
	case bulkhead.MulSat(int64(spend.Spend), 100) > bulkhead.MulSat(cfg.SpendPct, int64(limit)):
		reason = fmt.Sprintf("spend of the last %s ($%s) passed %d%% of the monthly budget ($%s)", cfg.SpendWindow, spend.Spend.Decimal(), cfg.SpendPct, limit.Decimal())
	default:
		return
	}
	if tripped, err := ts.TripBreaker(ctx, now, now.Add(cfg.CoolDown), reason, &seen); err != nil {
		log.Error("circuit breaker trip", "error", err)
	} else if tripped {
		log.Warn("circuit breaker opened", "reason", reason)
		r.breakerChanged(tenant.ID, true)
	}
}

// breakerChanged emits the tenant's breaker state after this process changed
// it: open, or closed.
func (r *Runner) breakerChanged(tenantID string, open bool) {
	state := "closed"
	if open {
		state = "open"
	}
	r.Metrics.Emit(map[string]float64{metrics.BreakerState: metrics.BreakerStateValue(state)}, [][]string{{}},
		map[string]any{"tenant_id": tenantID})
}

// spendCheckDue rations spend-velocity reads: at most one per tenant per
// spendCheckEvery in this process.
func (r *Runner) spendCheckDue(tenantID string, now time.Time) bool {
	last, ok := r.spendChecks.Load(tenantID)
	if ok && now.Sub(last.(time.Time)) < spendCheckEvery {
		return false
	}
	r.spendChecks.Store(tenantID, now)
	return true
}

// countSettled emits a settled execution's metrics, whatever its status and
// whether or not its client is still there: the one place every settlement
// passes, so the counts equal the usage records.
func (r *Runner) countSettled(tenantID string, e bulkhead.Execution) {
	r.Metrics.Emit(map[string]float64{
		metrics.Tokens: float64(e.InputTokens + e.OutputTokens), metrics.Spend: float64(e.Cost) / float64(bulkhead.MicrosPerDollar), metrics.Executions: 1,
	}, nil, map[string]any{"tenant_id": tenantID, "agent_id": e.AgentID, "status": e.Status})
}
