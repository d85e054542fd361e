package client

import (
	"context"
	"encoding/json"
	"iter"
	"net/http"
)

// Operator calls the /v1/admin routes. Locally (bulkhead dev) adminToken is
// the platform's admin token, sent as a bearer token; in AWS these routes
// are IAM-authorised and need signed requests (WithHTTPClient with a
// signing transport, and an empty token).
type Operator struct {
	t *transport
}

// NewOperator returns an operator client of the API at baseURL.
func NewOperator(baseURL, adminToken string, opts ...Option) *Operator {
	return &Operator{t: newTransport(baseURL, adminToken, opts)}
}

// Tenant is a tenant as the operator sees it. APIKey and KeyID are set when
// it was just created (the key is shown once); CircuitBreaker and Usage by
// GetTenant and UpdateTenant. RawJSON is the tenant as the API sent it.
type Tenant struct {
	rawJSON

	TenantID       string          `json:"tenant_id"`
	Name           string          `json:"name"`
	Tier           string          `json:"tier"`
	Status         string          `json:"status"` // "active" or "suspended"
	Quota          Quota           `json:"quota"`
	Endpoint       *string         `json:"endpoint"`
	CreatedAt      Time            `json:"created_at"`
	UpdatedAt      Time            `json:"updated_at"`
	APIKey         string          `json:"api_key,omitempty"`
	KeyID          string          `json:"key_id,omitempty"`
	CircuitBreaker *CircuitBreaker `json:"circuit_breaker,omitempty"`
	Usage          *TenantUsage    `json:"usage,omitempty"`
}

// CircuitBreaker is a tenant's circuit breaker.
type CircuitBreaker struct {
	State     string        `json:"state"`
	Reason    *string       `json:"reason"`
	OpenUntil *Time         `json:"open_until"`
	OpenedAt  *Time         `json:"opened_at"`
	Config    BreakerConfig `json:"config"`
}

// BreakerConfig is a circuit breaker's configuration; in UpdateTenant, the
// fields set override the tier's.
type BreakerConfig struct {
	MinExecutions      *int64 `json:"min_executions,omitempty"`
	ErrorRatePct       *int64 `json:"error_rate_pct,omitempty"`
	ErrorWindowSeconds *int64 `json:"error_window_seconds,omitempty"`
	SpendPct           *int64 `json:"spend_pct,omitempty"`
	SpendWindowSeconds *int64 `json:"spend_window_seconds,omitempty"`
	CooldownSeconds    *int64 `json:"cooldown_seconds,omitempty"`
}

// TenantUsage is a tenant's counters as the operator sees them.
type TenantUsage struct {
	RequestsThisHour int64       `json:"requests_this_hour"`
	TokensThisMonth  int64       `json:"tokens_this_month"`
	CommittedTokens  int64       `json:"committed_tokens"`
	SpendThisMonth   json.Number `json:"spend_this_month"`
	CommittedSpend   json.Number `json:"committed_spend"`
	ConcurrentAgents int64       `json:"concurrent_agents"`
	StorageBytes     int64       `json:"storage_bytes"`
}

// QuotaOverrides replace the tier's quota, field by field; MaxSpendPerMonth
// is USD (a json.Number such as "25.5").
type QuotaOverrides struct {
	MaxRequestsPerHour  *int64       `json:"max_requests_per_hour,omitempty"`
	MaxTokensPerMonth   *int64       `json:"max_tokens_per_month,omitempty"`
	MaxSpendPerMonth    *json.Number `json:"max_spend_per_month,omitempty"`
	MaxConcurrentAgents *int64       `json:"max_concurrent_agents,omitempty"`
	MaxStorageMB        *int64       `json:"max_storage_mb,omitempty"`
}

// UpdateTenantRequest is PATCH /v1/admin/tenants/{tenant_id}: only the
// fields set change. Tier is a tier name; Status "active" or "suspended";
// CircuitBreaker "open" or "closed" opens or resets the breaker by hand;
// Endpoint an https URL (a silo stack's API; "" clears it).
type UpdateTenantRequest struct {
	Tier                 *string         `json:"tier,omitempty"`
	Status               *string         `json:"status,omitempty"`
	Quota                *QuotaOverrides `json:"quota,omitempty"`
	CircuitBreaker       *string         `json:"circuit_breaker,omitempty"`
	CircuitBreakerConfig *BreakerConfig  `json:"circuit_breaker_config,omitempty"`
	Endpoint             *string         `json:"endpoint,omitempty"`
}

// CreateTenant creates a tenant (tier empty: starter) with its first API
// key, returned once in APIKey. The route does not honour Idempotency-Key,
// so a failed connection is not retried (a retry could create two tenants).
func (o *Operator) CreateTenant(ctx context.Context, name, tier string) (*Tenant, error) {
	body := map[string]string{"name": name}
	if tier != "" {
		body["tier"] = tier
	}
	var out Tenant
	if err := o.t.call(ctx, http.MethodPost, "/v1/admin/tenants", nil, body, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// GetTenant reads a tenant with its circuit breaker and counters.
func (o *Operator) GetTenant(ctx context.Context, tenantID string) (*Tenant, error) {
	var out Tenant
	if err := o.t.call(ctx, http.MethodGet, "/v1/admin/tenants/"+pathEscape(tenantID), nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ListTenants lists every tenant.
func (o *Operator) ListTenants(ctx context.Context, opts *ListOptions) iter.Seq2[Tenant, error] {
	return paginate[Tenant](ctx, o.t, "/v1/admin/tenants", opts.query())
}

// UpdateTenant changes a tenant's tier, status, quota overrides, circuit
// breaker or endpoint.
func (o *Operator) UpdateTenant(ctx context.Context, tenantID string, req UpdateTenantRequest) (*Tenant, error) {
	var out Tenant
	if err := o.t.call(ctx, http.MethodPatch, "/v1/admin/tenants/"+pathEscape(tenantID), nil, req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// SetAgentStatus enables ("active") or disables ("disabled") one of a
// tenant's agents.
func (o *Operator) SetAgentStatus(ctx context.Context, tenantID, agentID, status string) (*Agent, error) {
	var out Agent
	path := "/v1/admin/tenants/" + pathEscape(tenantID) + "/agents/" + pathEscape(agentID)
	if err := o.t.call(ctx, http.MethodPatch, path, nil, map[string]string{"status": status}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// InvoiceSummary is one tenant's closed invoice in the operator's list.
type InvoiceSummary struct {
	TenantID  string      `json:"tenant_id"`
	Month     string      `json:"month"`
	Total     json.Number `json:"total"`
	ModelCost json.Number `json:"model_cost"`
	Margin    json.Number `json:"margin"`
	ClosedAt  Time        `json:"closed_at"`
}

// ListInvoices lists every tenant's invoice of a month (YYYY-MM).
func (o *Operator) ListInvoices(ctx context.Context, month string, opts *ListOptions) iter.Seq2[InvoiceSummary, error] {
	q := opts.query()
	q.Set("month", month)
	return paginate[InvoiceSummary](ctx, o.t, "/v1/admin/invoices", q)
}

// CloseReport is the answer of CloseMonth; RawJSON is that answer as the API
// sent it.
type CloseReport struct {
	rawJSON

	Month         string   `json:"month"`
	Closed        int      `json:"closed"`
	AlreadyClosed int      `json:"already_closed"`
	Failed        []string `json:"failed"`
}

// CloseMonth closes a month (YYYY-MM): every tenant's invoice is written
// once. Closing again is harmless (already_closed), so the call is retried
// like a GET.
func (o *Operator) CloseMonth(ctx context.Context, month string) (*CloseReport, error) {
	var out CloseReport
	if err := o.t.post(ctx, "/v1/admin/billing/close", map[string]string{"month": month}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// CatalogueModel is a priced model catalogue entry; Tiers lists the tiers
// that may use it. RawJSON is the entry as the API sent it.
type CatalogueModel struct {
	rawJSON

	Model            string      `json:"model"`
	Provider         string      `json:"provider"`
	InputPerMillion  json.Number `json:"input_per_million"`
	OutputPerMillion json.Number `json:"output_per_million"`
	ContextWindow    int64       `json:"context_window"`
	MaxOutputTokens  int64       `json:"max_output_tokens"`
	Tiers            []string    `json:"tiers"`
}

// PutModelRequest is PUT /v1/admin/models/{provider}/{model_id}: prices in
// USD per million tokens (json.Number such as "0.15"); Tiers nil: every tier.
type PutModelRequest struct {
	InputPerMillion  json.Number `json:"input_per_million"`
	OutputPerMillion json.Number `json:"output_per_million"`
	Tiers            []string    `json:"tiers,omitempty"`
	ContextWindow    int64       `json:"context_window"`
	MaxOutputTokens  int64       `json:"max_output_tokens"`
}

// PutModel adds or replaces a catalogue entry, such as provider "openai"
// and modelID "gpt-4o-mini" (the offline model is "offline",
// "bulkhead-offline-1").
func (o *Operator) PutModel(ctx context.Context, provider, modelID string, req PutModelRequest) (*CatalogueModel, error) {
	var out CatalogueModel
	path := "/v1/admin/models/" + pathEscape(provider) + "/" + pathEscape(modelID)
	if err := o.t.call(ctx, http.MethodPut, path, nil, req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ListModels lists the whole model catalogue.
func (o *Operator) ListModels(ctx context.Context, opts *ListOptions) iter.Seq2[CatalogueModel, error] {
	return paginate[CatalogueModel](ctx, o.t, "/v1/admin/models", opts.query())
}
