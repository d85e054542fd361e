package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"time"

	"github.com/bulkhead-dev/bulkhead/pkg/bulkhead"
	"github.com/bulkhead-dev/bulkhead/pkg/dynamo"
	"github.com/bulkhead-dev/bulkhead/pkg/metrics"
)

func viewTenant(t bulkhead.Tenant) map[string]any {
	return map[string]any{
		"tenant_id":  t.ID,
		"name":       t.Name,
		"tier":       t.Tier,
		"status":     t.Status,
		"quota":      quotaView(t.Quota()),
		"endpoint":   nilIfEmpty(t.Endpoint),
		"created_at": timestamp(t.CreatedAt),
		"updated_at": timestamp(t.UpdatedAt),
	}
}

func parseTier(s string) (bulkhead.TierName, error) {
	if _, ok := bulkhead.LookupTier(bulkhead.TierName(s)); !ok {
		return "", bulkhead.Errorf(bulkhead.Invalid, "unknown tier %q (starter, professional, enterprise)", s)
	}
	return bulkhead.TierName(s), nil
}

// CreateTenant creates a tenant with its first API key; the operator API and
// the local platform's demo tenant both use it. It returns the key's secret.
func (a *API) CreateTenant(ctx context.Context, name string, tier bulkhead.TierName) (bulkhead.Tenant, string, bulkhead.APIKey, error) {
	now := a.now().UTC()
	t := bulkhead.Tenant{ID: bulkhead.NewID("tn"), Name: name, Tier: tier, Status: bulkhead.TenantActive, CreatedAt: now, UpdatedAt: now}
	secret, k := newAPIKey(t.ID, "default", now)
	if a.edge != nil {
		ek, err := a.edge.Onboard(ctx, t.ID, tier)
		if err != nil {
			return bulkhead.Tenant{}, "", bulkhead.APIKey{}, fmt.Errorf("onboard tenant %s at the edge: %w", t.ID, err)
		}
		t.Edge = ek
	}
	if err := a.store.CreateTenant(ctx, t, k); err != nil {
		if a.edge != nil {
			if oerr := a.edge.Offboard(context.WithoutCancel(ctx), t.Edge); oerr != nil {
				a.log.Error("remove the edge key of a tenant that was not created", "tenant_id", t.ID, "error", oerr)
			}
		}
		return bulkhead.Tenant{}, "", bulkhead.APIKey{}, err
	}
	return t, secret, k, nil
}

func (a *API) createTenant(ctx context.Context, r *request) (any, error) {
	var b struct {
		Name *string `json:"name"`
		Tier *string `json:"tier"`
	}
	if err := decode(r.APIGatewayProxyRequest, &b); err != nil {
		return nil, err
	}
	if b.Name == nil {
		return nil, bulkhead.Errorf(bulkhead.Invalid, "name is required")
	}
	if err := validName("name", *b.Name); err != nil {
		return nil, err
	}
	tier := bulkhead.Starter
	if b.Tier != nil {
		var err error
		if tier, err = parseTier(*b.Tier); err != nil {
			return nil, err
		}
	}
	t, secret, k, err := a.CreateTenant(ctx, *b.Name, tier)
	if err != nil {
		return nil, err
	}
	v := viewTenant(t)
	v["api_key"] = secret
	v["key_id"] = k.ID
	return v, nil
}

func tenantID(r *request) (string, error) {
	id := r.PathParameters["tenant_id"]
	if !bulkhead.ValidID("tn", id) {
		return "", bulkhead.Errorf(bulkhead.NotFound, "tenant %s not found", id)
	}
	return id, nil
}

func (a *API) getTenant(ctx context.Context, r *request) (any, error) {
	id, err := tenantID(r)
	if err != nil {
		return nil, err
	}
	t, err := a.store.GetTenant(ctx, id)
	if err != nil {
		return nil, err
	}
	return a.operatorView(ctx, t)
}

// operatorView is a tenant with what only the operator sees: its circuit
// breaker and its live counters.
func (a *API) operatorView(ctx context.Context, t bulkhead.Tenant) (any, error) {
	ts := a.store.Tenant(t.ID)
	b, err := ts.Breaker(ctx)
	if err != nil {
		return nil, err
	}
	now := a.now().UTC()
	u, err := ts.Counters(ctx, now)
	if err != nil {
		return nil, err
	}
	a.metrics.Emit(map[string]float64{metrics.BreakerState: metrics.BreakerStateValue(b.State(now))}, [][]string{{}},
		map[string]any{"tenant_id": t.ID})
	v := viewTenant(t)
	cfg := t.Breaker()
	breaker := map[string]any{
		"state": b.State(now), "reason": nil, "open_until": nil, "opened_at": nil,
		"config": map[string]any{
			"min_executions": cfg.MinExecutions, "error_rate_pct": cfg.ErrorRatePct,
			"error_window_seconds": int64(cfg.ErrorWindow.Seconds()), "spend_pct": cfg.SpendPct,
			"spend_window_seconds": int64(cfg.SpendWindow.Seconds()), "cooldown_seconds": int64(cfg.CoolDown.Seconds()),
		},
	}
	if !b.OpenUntil.IsZero() {
		breaker["reason"], breaker["open_until"], breaker["opened_at"] = b.Reason, timestamp(b.OpenUntil), timestamp(b.OpenedAt)
	}
	v["circuit_breaker"] = breaker
	v["usage"] = map[string]any{
		"requests_this_hour": u.RequestsThisHour, "tokens_this_month": u.TokensThisMonth, "committed_tokens": u.CommittedTokens,
		"spend_this_month": u.SpendThisMonth.JSON(), "committed_spend": u.CommittedSpend.JSON(), "concurrent_agents": u.Running,
		"storage_bytes": u.StorageBytes,
	}
	return v, nil
}

func (a *API) listTenants(ctx context.Context, r *request) (any, error) {
	cursor, limit, err := pageParams(r.APIGatewayProxyRequest)
	if err != nil {
		return nil, err
	}
	page, err := a.store.ListTenants(ctx, cursor, limit)
	if err != nil {
		return nil, err
	}
	views := make([]map[string]any, len(page.Items))
	for i, t := range page.Items {
		views[i] = viewTenant(t)
	}
	return list(views, page.NextCursor), nil
}

type quotaBody struct {
	MaxRequestsPerHour  *int64       `json:"max_requests_per_hour"`
	MaxTokensPerMonth   *int64       `json:"max_tokens_per_month"`
	MaxSpendPerMonth    *json.Number `json:"max_spend_per_month"`
	MaxConcurrentAgents *int64       `json:"max_concurrent_agents"`
	MaxStorageMB        *int64       `json:"max_storage_mb"`
}

// overrides turns the operator's quota into overrides, refusing a value
// outside [0, bulkhead.QuotaCeiling] and a spend that is not an exact USD
// amount (at most 6 decimals, no sign, no exponent).
func (q quotaBody) overrides() (bulkhead.QuotaOverrides, error) {
	o := bulkhead.QuotaOverrides{MaxRequestsPerHour: q.MaxRequestsPerHour, MaxTokensPerMonth: q.MaxTokensPerMonth,
		MaxConcurrentAgents: q.MaxConcurrentAgents, MaxStorageMB: q.MaxStorageMB}
	if q.MaxSpendPerMonth != nil {
		m, err := bulkhead.ParseMicros(q.MaxSpendPerMonth.String())
		if err != nil {
			return o, bulkhead.Errorf(bulkhead.Invalid, "quota.max_spend_per_month must be a USD amount from 0 to %s with at most 6 decimals",
				bulkhead.QuotaCeiling.MaxSpendPerMonth.Decimal())
		}
		o.MaxSpendPerMonth = &m
	}
	return o, o.Validate()
}

func (a *API) patchTenant(ctx context.Context, r *request) (any, error) {
	id, err := tenantID(r)
	if err != nil {
		return nil, err
	}
	var b struct {
		Tier    *string    `json:"tier"`
		Status  *string    `json:"status"`
		Quota   *quotaBody `json:"quota"`
		Breaker *string    `json:"circuit_breaker"`
		// BreakerConfig overrides the tier's breaker settings for this tenant.
		BreakerConfig *bulkhead.BreakerOverrides `json:"circuit_breaker_config"`
		// Endpoint is the API base URL of the tenant's silo stack ("" clears it).
		Endpoint *string `json:"endpoint"`
	}
	if err := decode(r.APIGatewayProxyRequest, &b); err != nil {
		return nil, err
	}
	var p dynamo.TenantPatch
	if b.Tier != nil {
		tier, err := parseTier(*b.Tier)
		if err != nil {
			return nil, err
		}
		p.Tier = &tier
	}
	if b.Status != nil {
		st := bulkhead.TenantStatus(*b.Status)
		if st != bulkhead.TenantActive && st != bulkhead.TenantSuspended {
			return nil, bulkhead.Errorf(bulkhead.Invalid, "status must be \"active\" or \"suspended\"")
		}
		p.Status = &st
	}
	if b.Quota != nil {
		o, err := b.Quota.overrides()
		if err != nil {
			return nil, err
		}
		p.Overrides = &o
	}
	if b.Endpoint != nil {
		if *b.Endpoint != "" {
			u, err := url.Parse(*b.Endpoint)
			if err != nil || u.Scheme != "https" || u.Host == "" || len(*b.Endpoint) > 512 {
				return nil, bulkhead.Errorf(bulkhead.Invalid, "endpoint must be an https URL (the silo stack's API)")
			}
		}
		p.Endpoint = b.Endpoint
	}
	if b.BreakerConfig != nil {
		if err := checkBreakerConfig(*b.BreakerConfig); err != nil {
			return nil, err
		}
		p.Breaker = b.BreakerConfig
	}
	if b.Breaker != nil && *b.Breaker != "open" && *b.Breaker != "closed" {
		return nil, bulkhead.Errorf(bulkhead.Invalid, "circuit_breaker must be \"open\" or \"closed\"")
	}
	if err := a.applyEdge(ctx, id, &p); err != nil {
		return nil, err
	}
	var t bulkhead.Tenant
	if p == (dynamo.TenantPatch{}) && b.Breaker != nil {
		// Only the breaker changes: that change is the one to record.
		t, err = a.store.GetTenant(ctx, id)
	} else {
		t, err = a.store.UpdateTenant(ctx, id, p)
	}
	if err != nil {
		return nil, err
	}
	if b.Breaker != nil {
		now := a.now().UTC()
		if *b.Breaker == "open" {
			_, err = a.store.Tenant(id).TripBreaker(ctx, now, time.Time{}, "opened by the operator", nil)
		} else {
			_, err = a.store.Tenant(id).ResetBreaker(ctx, now, nil)
		}
		if err != nil {
			return nil, err
		}
	}
	r.log.Info("tenant updated", "target_tenant_id", id)
	return a.operatorView(ctx, t)
}

// operatorAgentStatus is the operator's kill switch for one agent:
// {"status": "disabled"} stops its running executions at their next step and
// refuses new ones; {"status": "active"} lets it run again.
func (a *API) operatorAgentStatus(ctx context.Context, r *request) (any, error) {
	tid, err := tenantID(r)
	if err != nil {
		return nil, err
	}
	aid, err := agentID(r)
	if err != nil {
		return nil, err
	}
	var b struct {
		Status *string `json:"status"`
	}
	if err := decode(r.APIGatewayProxyRequest, &b); err != nil {
		return nil, err
	}
	if b.Status == nil || (*b.Status != string(bulkhead.AgentActive) && *b.Status != string(bulkhead.AgentDisabled)) {
		return nil, bulkhead.Errorf(bulkhead.Invalid, "status must be \"active\" or \"disabled\"")
	}
	ts := a.store.Tenant(tid)
	ag, err := ts.GetAgent(ctx, aid)
	if err != nil {
		return nil, err
	}
	prev, before := ag.Version, ag
	ag.Status, ag.Version, ag.UpdatedAt = bulkhead.AgentStatus(*b.Status), ag.Version+1, a.now().UTC()
	ctx = audited(ctx, agentAction(before.Status, ag.Status), viewAgent(before), viewAgent(ag))
	if err := ts.PutAgent(ctx, ag, prev); err != nil {
		return nil, err
	}
	r.log.Info("agent status set by the operator", "target_tenant_id", tid, "agent_id", aid, "status", *b.Status)
	return viewAgent(ag), nil
}

// checkBreakerConfig validates breaker overrides. Windows are whole 10-second
// buckets, at most 15 minutes (one batch read of buckets).
func checkBreakerConfig(o bulkhead.BreakerOverrides) error {
	checks := []struct {
		name     string
		v        *int64
		min, max int64
		step     int64
	}{
		{"min_executions", o.MinExecutions, 1, 100_000, 1},
		{"error_rate_pct", o.ErrorRatePct, 1, 100, 1},
		{"error_window_seconds", o.ErrorWindowSeconds, 10, 900, 10},
		{"spend_pct", o.SpendPct, 1, 100, 1},
		{"spend_window_seconds", o.SpendWindowSeconds, 10, 900, 10},
		{"cooldown_seconds", o.CoolDownSeconds, 1, 86_400, 1},
	}
	for _, c := range checks {
		if c.v != nil && (*c.v < c.min || *c.v > c.max || *c.v%c.step != 0) {
			return bulkhead.Errorf(bulkhead.Invalid, "circuit_breaker_config.%s must be from %d to %d (in steps of %d)", c.name, c.min, c.max, c.step)
		}
	}
	return nil
}

// applyEdge moves the tenant's API Gateway key before the store records a
// tier or status change: if the store then fails, a retried PATCH moves it
// again, which the edge treats as done. Suspension is enforced by the
// authorizer in any case; disabling the key also stops the tenant at the
// edge, before any Lambda runs.
func (a *API) applyEdge(ctx context.Context, id string, p *dynamo.TenantPatch) error {
	if a.edge == nil || (p.Tier == nil && p.Status == nil) {
		return nil
	}
	cur, err := a.store.GetTenant(ctx, id)
	if err != nil {
		return err
	}
	key := cur.Edge
	if key == (bulkhead.EdgeKey{}) {
		return nil // created before the edge was configured
	}
	if p.Tier != nil && *p.Tier != cur.Tier {
		moved, err := a.edge.ChangeTier(ctx, key, cur.Tier, *p.Tier)
		if err != nil {
			return fmt.Errorf("move tenant %s's edge key to %s: %w", id, *p.Tier, err)
		}
		p.Edge = &moved
	}
	if p.Status != nil && *p.Status != cur.Status {
		if *p.Status == bulkhead.TenantSuspended {
			err = a.edge.Suspend(ctx, key)
		} else {
			err = a.edge.Resume(ctx, key)
		}
		if err != nil {
			return fmt.Errorf("set tenant %s's edge key to %s: %w", id, *p.Status, err)
		}
	}
	return nil
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}
