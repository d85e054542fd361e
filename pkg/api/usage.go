package api

import (
	"context"
	"encoding/json"
	"strconv"
	"time"

	"github.com/bulkhead-dev/bulkhead/pkg/bulkhead"
	"github.com/bulkhead-dev/bulkhead/pkg/dynamo"
)

const bytesPerMB = 1024 * 1024

// quotaView is a quota in the seed's shape; money in USD.
func quotaView(q bulkhead.Quota) map[string]any {
	return map[string]any{
		"max_requests_per_hour": q.MaxRequestsPerHour,
		"max_tokens_per_month":  q.MaxTokensPerMonth,
		"max_spend_per_month":   q.MaxSpendPerMonth.JSON(),
		"max_concurrent_agents": q.MaxConcurrentAgents,
		"max_storage_mb":        q.MaxStorageMB,
	}
}

// megabytes renders bytes as MiB with three decimals (storage is not money).
func megabytes(b int64) json.Number {
	return json.Number(strconv.FormatFloat(float64(b)/bytesPerMB, 'f', 3, 64))
}

// profileAndCounters reads a tenant and its current counters at now.
func (a *API) profileAndCounters(ctx context.Context, ts *dynamo.TenantStore, now time.Time) (bulkhead.Tenant, bulkhead.Usage, error) {
	t, err := ts.Profile(ctx)
	if err != nil {
		return t, bulkhead.Usage{}, err
	}
	u, err := ts.Counters(ctx, now)
	return t, u, err
}

func (a *API) usage(ctx context.Context, r *request) (any, error) {
	now := a.now().UTC()
	ts := a.tenantStore(r)
	t, u, err := a.profileAndCounters(ctx, ts, now)
	if err != nil {
		return nil, err
	}
	if u.Running > 0 {
		// Never show an execution that died (its lease expired) as running:
		// reclaim it first (one Query of the running executions), then read
		// the counters again.
		if n, err := a.runner.Reclaim(ctx, ts, a.transcriptStore(r), now, false); err != nil {
			r.log.Warn("reclaim expired leases", "error", err)
		} else if n > 0 {
			if u, err = ts.Counters(ctx, now); err != nil {
				return nil, err
			}
		}
	}
	q := t.Quota()
	hour := now.Truncate(time.Hour)
	month := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)
	return map[string]any{
		"tenant_id": t.ID,
		"tier":      t.Tier,
		"quota":     quotaView(q),
		"usage": map[string]any{
			"requests_this_hour":    u.RequestsThisHour,
			"tokens_this_month":     u.TokensThisMonth,
			"input_tokens":          u.InputTokens,
			"output_tokens":         u.OutputTokens,
			"executions_this_month": u.Executions,
			"spend_this_month":      u.SpendThisMonth.JSON(),
			"committed_tokens":      u.CommittedTokens,
			"committed_spend":       u.CommittedSpend.JSON(),
			"concurrent_agents":     u.Running,
			"storage_mb":            megabytes(u.StorageBytes),
			"storage_bytes":         u.StorageBytes,
			"remaining_tokens":      max(q.MaxTokensPerMonth-u.CommittedTokens, 0),
			"remaining_budget":      max(q.MaxSpendPerMonth-u.CommittedSpend, 0).JSON(),
		},
		"period": map[string]any{
			"hour":            bulkhead.HourKey(now),
			"month":           bulkhead.MonthKey(now),
			"hour_resets_at":  timestamp(hour.Add(time.Hour)),
			"month_resets_at": timestamp(month.AddDate(0, 1, 0)),
		},
	}, nil
}

func billView(tenantID string, b bulkhead.Bill) map[string]any {
	return map[string]any{
		"tenant_id":       tenantID,
		"month":           b.Month,
		"tier":            b.Tier,
		"currency":        "USD",
		"base_fee":        b.BaseFee.JSON(),
		"tokens_included": b.TokensIncluded,
		"tokens_used":     b.TokensUsed,
		"overage_tokens":  b.OverageTokens,
		"overage_fee":     b.OverageFee.JSON(),
		"total":           b.Total.JSON(),
	}
}

func (a *API) billingCurrent(ctx context.Context, r *request) (any, error) {
	ts := a.tenantStore(r)
	now := a.now().UTC()
	t, u, err := a.profileAndCounters(ctx, ts, now)
	if err != nil {
		return nil, err
	}
	held, err := ts.MonthTiers(ctx, bulkhead.MonthKey(now))
	if err != nil {
		return nil, err
	}
	view := billView(t.ID, bulkhead.ComputeBill(bulkhead.BilledTier(held, t.Tier), bulkhead.MonthKey(now), u.TokensThisMonth))
	view["estimate"] = true
	view["model_cost"] = u.SpendThisMonth.JSON()
	return view, nil
}
