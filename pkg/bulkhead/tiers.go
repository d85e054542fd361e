package bulkhead

import (
	"sort"
	"strconv"
	"time"
)

// TierName names a pricing tier.
type TierName string

// The tiers.
const (
	Starter      TierName = "starter"
	Professional TierName = "professional"
	Enterprise   TierName = "enterprise"
)

// Throttle is an API Gateway usage-plan throttle and daily quota.
type Throttle struct {
	// RatePerSecond is the steady-state request rate.
	RatePerSecond int
	// Burst is the token-bucket capacity.
	Burst int
	// DailyRequests is the usage plan's request quota per UTC day.
	DailyRequests int
}

// Quota is the set of hard limits that apply to a tenant.
type Quota struct {
	MaxRequestsPerHour  int64
	MaxTokensPerMonth   int64
	MaxSpendPerMonth    Micros
	MaxConcurrentAgents int64
	MaxStorageMB        int64
}

// BytesPerMB is how many bytes a storage quota's megabyte holds.
const BytesPerMB int64 = 1 << 20

// StorageBytes is the storage quota in bytes (saturating: never negative).
func (q Quota) StorageBytes() int64 { return MulSat(q.MaxStorageMB, BytesPerMB) }

// QuotaCeiling bounds every quota override: 1,000 times the enterprise
// tier's quota. Every computation on a quota (a storage limit in bytes, a
// spend limit times a percentage, a limit minus a reservation, a counter
// plus one) then stays below 2^53, far from int64 overflow; anyone who
// needs more is served by a silo stack, not by a larger number.
var QuotaCeiling = Quota{
	MaxRequestsPerHour:  100_000_000,
	MaxTokensPerMonth:   100_000_000_000,
	MaxSpendPerMonth:    Dollars(10_000_000),
	MaxConcurrentAgents: 100_000,
	MaxStorageMB:        10_240_000,
}

// Limits are the runaway guards of one execution.
type Limits struct {
	// MaxSteps is the most model calls (tool-call loop iterations).
	MaxSteps int64
	// MaxTokens is the most tokens (input + output, all steps).
	MaxTokens int64
	// MaxWallTime is the longest an execution may run.
	MaxWallTime time.Duration
	// MaxDepth is how deep agents may invoke agents (1: no nesting).
	MaxDepth int64
}

// Breaker configures a tenant's circuit breaker.
type Breaker struct {
	// Open when at least MinExecutions finished within ErrorWindow and at
	// least ErrorRatePct percent of them failed...
	MinExecutions int64
	ErrorRatePct  int64
	ErrorWindow   time.Duration
	// ...or when the spend of SpendWindow passes SpendPct percent of the
	// monthly spend quota.
	SpendPct    int64
	SpendWindow time.Duration
	// CoolDown is how long it stays open before half-opening.
	CoolDown time.Duration
}

// Tier is one row of the tier table: prices, default quotas, execution
// ceilings, the circuit breaker and the usage plan.
type Tier struct {
	Name           TierName
	BaseFee        Micros
	IncludedTokens int64
	// OveragePer1K is the price of 1,000 tokens above the included amount.
	OveragePer1K Micros
	Quota        Quota
	// Ceiling bounds what an agent may configure; Defaults apply when it does not.
	Ceiling  Limits
	Defaults Limits
	Breaker  Breaker
	Throttle Throttle
}

// defaultBreaker is every tier's circuit breaker: open when at least half of
// the last 20 or more executions within one minute failed, or when the spend
// of the last 5 minutes passes 20% of the monthly spend quota; 60 s cool-down.
var defaultBreaker = Breaker{MinExecutions: 20, ErrorRatePct: 50, ErrorWindow: time.Minute, SpendPct: 20, SpendWindow: 5 * time.Minute, CoolDown: time.Minute}

// tiers is the single source of truth for tiers: quotas, usage plans, billing
// and the infrastructure all read it.
var tiers = map[TierName]Tier{
	Starter: {
		Name: Starter, BaseFee: Dollars(29), IncludedTokens: 100_000, OveragePer1K: 10_000,
		Quota:    Quota{MaxRequestsPerHour: 1_000, MaxTokensPerMonth: 1_000_000, MaxSpendPerMonth: Dollars(100), MaxConcurrentAgents: 5, MaxStorageMB: 100},
		Ceiling:  Limits{MaxSteps: 10, MaxTokens: 32_768, MaxWallTime: time.Minute, MaxDepth: 2},
		Defaults: Limits{MaxSteps: 5, MaxTokens: 24_576, MaxWallTime: 30 * time.Second, MaxDepth: 2},
		Breaker:  defaultBreaker,
		Throttle: Throttle{RatePerSecond: 50, Burst: 100, DailyRequests: 20_000},
	},
	Professional: {
		Name: Professional, BaseFee: Dollars(99), IncludedTokens: 1_000_000, OveragePer1K: 8_000,
		Quota:    Quota{MaxRequestsPerHour: 10_000, MaxTokensPerMonth: 10_000_000, MaxSpendPerMonth: Dollars(1_000), MaxConcurrentAgents: 25, MaxStorageMB: 1_024},
		Ceiling:  Limits{MaxSteps: 25, MaxTokens: 131_072, MaxWallTime: 2 * time.Minute, MaxDepth: 3},
		Defaults: Limits{MaxSteps: 10, MaxTokens: 32_768, MaxWallTime: time.Minute, MaxDepth: 3},
		Breaker:  defaultBreaker,
		Throttle: Throttle{RatePerSecond: 200, Burst: 400, DailyRequests: 200_000},
	},
	Enterprise: {
		Name: Enterprise, BaseFee: Dollars(499), IncludedTokens: 10_000_000, OveragePer1K: 5_000,
		Quota:    Quota{MaxRequestsPerHour: 100_000, MaxTokensPerMonth: 100_000_000, MaxSpendPerMonth: Dollars(10_000), MaxConcurrentAgents: 100, MaxStorageMB: 10_240},
		Ceiling:  Limits{MaxSteps: 50, MaxTokens: 262_144, MaxWallTime: 5 * time.Minute, MaxDepth: 5},
		Defaults: Limits{MaxSteps: 10, MaxTokens: 65_536, MaxWallTime: 2 * time.Minute, MaxDepth: 3},
		Breaker:  defaultBreaker,
		Throttle: Throttle{RatePerSecond: 1_000, Burst: 2_000, DailyRequests: 2_000_000},
	},
}

// LookupTier returns the tier with the given name.
func LookupTier(name TierName) (Tier, bool) {
	t, ok := tiers[name]
	return t, ok
}

// Tiers returns every tier, cheapest first.
func Tiers() []Tier {
	out := make([]Tier, 0, len(tiers))
	for _, t := range tiers {
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].BaseFee < out[j].BaseFee })
	return out
}

// QuotaOverrides replaces single values of a tier's default quota; nil fields
// keep the tier's value.
type QuotaOverrides struct {
	MaxRequestsPerHour  *int64  `json:"max_requests_per_hour,omitempty" dynamodbav:"max_requests_per_hour,omitempty"`
	MaxTokensPerMonth   *int64  `json:"max_tokens_per_month,omitempty" dynamodbav:"max_tokens_per_month,omitempty"`
	MaxSpendPerMonth    *Micros `json:"max_spend_per_month_micros,omitempty" dynamodbav:"max_spend_per_month_micros,omitempty"`
	MaxConcurrentAgents *int64  `json:"max_concurrent_agents,omitempty" dynamodbav:"max_concurrent_agents,omitempty"`
	MaxStorageMB        *int64  `json:"max_storage_mb,omitempty" dynamodbav:"max_storage_mb,omitempty"`
}

// Apply returns q with the overrides applied, each held within
// [0, QuotaCeiling] (overrides stored before the ceiling existed included).
func (o QuotaOverrides) Apply(q Quota) Quota {
	bound := func(v, ceiling int64) int64 { return min(max(v, 0), ceiling) }
	if o.MaxRequestsPerHour != nil {
		q.MaxRequestsPerHour = bound(*o.MaxRequestsPerHour, QuotaCeiling.MaxRequestsPerHour)
	}
	if o.MaxTokensPerMonth != nil {
		q.MaxTokensPerMonth = bound(*o.MaxTokensPerMonth, QuotaCeiling.MaxTokensPerMonth)
	}
	if o.MaxSpendPerMonth != nil {
		q.MaxSpendPerMonth = Micros(bound(int64(*o.MaxSpendPerMonth), int64(QuotaCeiling.MaxSpendPerMonth)))
	}
	if o.MaxConcurrentAgents != nil {
		q.MaxConcurrentAgents = bound(*o.MaxConcurrentAgents, QuotaCeiling.MaxConcurrentAgents)
	}
	if o.MaxStorageMB != nil {
		q.MaxStorageMB = bound(*o.MaxStorageMB, QuotaCeiling.MaxStorageMB)
	}
	return q
}

// Validate refuses an override below zero or above QuotaCeiling, naming the
// field (as the operator API spells it) and its bounds. Errors: Invalid.
func (o QuotaOverrides) Validate() error {
	for _, f := range []struct {
		name     string
		v        *int64
		ceiling  int64
		rendered string
	}{
		{"max_requests_per_hour", o.MaxRequestsPerHour, QuotaCeiling.MaxRequestsPerHour, ""},
		{"max_tokens_per_month", o.MaxTokensPerMonth, QuotaCeiling.MaxTokensPerMonth, ""},
		{"max_spend_per_month", (*int64)(o.MaxSpendPerMonth), int64(QuotaCeiling.MaxSpendPerMonth), QuotaCeiling.MaxSpendPerMonth.Decimal() + " (USD)"},
		{"max_concurrent_agents", o.MaxConcurrentAgents, QuotaCeiling.MaxConcurrentAgents, ""},
		{"max_storage_mb", o.MaxStorageMB, QuotaCeiling.MaxStorageMB, ""},
	} {
		if f.v == nil || (*f.v >= 0 && *f.v <= f.ceiling) {
			continue
		}
		if f.rendered == "" {
			f.rendered = strconv.FormatInt(f.ceiling, 10)
		}
		return Errorf(Invalid, "quota.%s must be from 0 to %s", f.name, f.rendered)
	}
	return nil
}

// Merge returns o with every field set in n replacing o's.
func (o QuotaOverrides) Merge(n QuotaOverrides) QuotaOverrides {
	if n.MaxRequestsPerHour != nil {
		o.MaxRequestsPerHour = n.MaxRequestsPerHour
	}
	if n.MaxTokensPerMonth != nil {
		o.MaxTokensPerMonth = n.MaxTokensPerMonth
	}
	if n.MaxSpendPerMonth != nil {
		o.MaxSpendPerMonth = n.MaxSpendPerMonth
	}
	if n.MaxConcurrentAgents != nil {
		o.MaxConcurrentAgents = n.MaxConcurrentAgents
	}
	if n.MaxStorageMB != nil {
		o.MaxStorageMB = n.MaxStorageMB
	}
	return o
}

// MonthKey is the billing and quota period of t: "2026-11" (UTC).
func MonthKey(t time.Time) string { return t.UTC().Format("2006-01") }

// HourKey is the hourly request window of t: "2026-11-28T22" (UTC).
func HourKey(t time.Time) string { return t.UTC().Format("2006-01-02T15") }

// DayKey is the UTC day of t: "2026-11-28".
func DayKey(t time.Time) string { return t.UTC().Format("2006-01-02") }

// BreakerOverrides replaces single values of a tier's circuit breaker; nil
// fields keep the tier's value. Windows and the cool-down are in seconds.
type BreakerOverrides struct {
	MinExecutions      *int64 `json:"min_executions,omitempty" dynamodbav:"min_executions,omitempty"`
	ErrorRatePct       *int64 `json:"error_rate_pct,omitempty" dynamodbav:"error_rate_pct,omitempty"`
	ErrorWindowSeconds *int64 `json:"error_window_seconds,omitempty" dynamodbav:"error_window_seconds,omitempty"`
	SpendPct           *int64 `json:"spend_pct,omitempty" dynamodbav:"spend_pct,omitempty"`
	SpendWindowSeconds *int64 `json:"spend_window_seconds,omitempty" dynamodbav:"spend_window_seconds,omitempty"`
	CoolDownSeconds    *int64 `json:"cooldown_seconds,omitempty" dynamodbav:"cooldown_seconds,omitempty"`
}

// Apply returns b with the overrides applied.
func (o BreakerOverrides) Apply(b Breaker) Breaker {
	set := func(dst *int64, v *int64) {
		if v != nil {
			*dst = *v
		}
	}
	secs := func(dst *time.Duration, v *int64) {
		if v != nil {
			*dst = time.Duration(*v) * time.Second
		}
	}
	set(&b.MinExecutions, o.MinExecutions)
	set(&b.ErrorRatePct, o.ErrorRatePct)
	set(&b.SpendPct, o.SpendPct)
	secs(&b.ErrorWindow, o.ErrorWindowSeconds)
	secs(&b.SpendWindow, o.SpendWindowSeconds)
	secs(&b.CoolDown, o.CoolDownSeconds)
	return b
}

// Merge returns o with every field set in n replacing o's.
func (o BreakerOverrides) Merge(n BreakerOverrides) BreakerOverrides {
	for _, f := range []struct{ dst, src **int64 }{
		{&o.MinExecutions, &n.MinExecutions}, {&o.ErrorRatePct, &n.ErrorRatePct}, {&o.ErrorWindowSeconds, &n.ErrorWindowSeconds},
		{&o.SpendPct, &n.SpendPct}, {&o.SpendWindowSeconds, &n.SpendWindowSeconds}, {&o.CoolDownSeconds, &n.CoolDownSeconds},
	} {
		if *f.src != nil {
			*f.dst = *f.src
		}
	}
	return o
}
