package bulkhead_test

import (
	"math"
	"strings"
	"testing"

	"github.com/bulkhead-dev/bulkhead/pkg/bulkhead"
)

func TestSaturatingArithmetic(t *testing.T) {
	const hi, lo = math.MaxInt64, math.MinInt64
	for _, c := range []struct {
		op      string
		a, b, w int64
	}{
		{"add", 2, 3, 5}, {"add", hi, 1, hi}, {"add", hi - 1, 1, hi}, {"add", lo, -1, lo}, {"add", hi, lo, -1},
		{"sub", 2, 3, -1}, {"sub", lo, 1, lo}, {"sub", hi, -1, hi}, {"sub", 0, lo, hi}, {"sub", -1, lo, hi}, {"sub", lo, lo, 0},
		{"mul", 6, 7, 42}, {"mul", 0, lo, 0}, {"mul", 9e12, 1 << 20, hi}, {"mul", -9e12, 1 << 20, lo}, {"mul", lo, -1, hi},
		{"mul", -1, lo, hi}, {"mul", lo, 1, lo}, {"mul", hi, -1, -hi}, {"mul", 5e17, 20, hi}, {"mul", 3037000500, 3037000500, hi},
		{"mul", 3037000499, 3037000499, 3037000499 * 3037000499},
	} {
		var got int64
		switch c.op {
		case "add":
			got = bulkhead.AddSat(c.a, c.b)
		case "sub":
			got = bulkhead.SubSat(c.a, c.b)
		case "mul":
			got = bulkhead.MulSat(c.a, c.b)
		}
		if got != c.w {
			t.Errorf("%s(%d, %d) = %d, want %d", c.op, c.a, c.b, got, c.w)
		}
	}
}

// TestQuotaCeiling: the ceiling is 1,000 times the enterprise quota, and
// every computation the platform makes on it stays within 2^53.
func TestQuotaCeiling(t *testing.T) {
	ent, _ := bulkhead.LookupTier(bulkhead.Enterprise)
	q, c := ent.Quota, bulkhead.QuotaCeiling
	if c.MaxRequestsPerHour != 1000*q.MaxRequestsPerHour || c.MaxTokensPerMonth != 1000*q.MaxTokensPerMonth ||
		c.MaxSpendPerMonth != 1000*q.MaxSpendPerMonth || c.MaxConcurrentAgents != 1000*q.MaxConcurrentAgents ||
		c.MaxStorageMB != 1000*q.MaxStorageMB {
		t.Errorf("ceiling %+v is not 1,000 times the enterprise quota %+v", c, q)
	}
	for name, v := range map[string]int64{"storage bytes": c.StorageBytes(), "spend x 100%": int64(c.MaxSpendPerMonth) * 100,
		"tokens + max": c.MaxTokensPerMonth * 2} {
		if v <= 0 || v > 1<<53 {
			t.Errorf("%s at the ceiling = %d, want within (0, 2^53]", name, v)
		}
	}
}

func TestQuotaOverridesBounds(t *testing.T) {
	i := func(v int64) *int64 { return &v }
	m := func(v bulkhead.Micros) *bulkhead.Micros { return &v }
	c := bulkhead.QuotaCeiling
	for _, tc := range []struct {
		name string
		o    bulkhead.QuotaOverrides
		bad  string // "" when valid, else what the message must say
	}{
		{"requests at the ceiling", bulkhead.QuotaOverrides{MaxRequestsPerHour: i(c.MaxRequestsPerHour)}, ""},
		{"requests past it", bulkhead.QuotaOverrides{MaxRequestsPerHour: i(c.MaxRequestsPerHour + 1)}, "quota.max_requests_per_hour must be from 0 to 100000000"},
		{"requests negative", bulkhead.QuotaOverrides{MaxRequestsPerHour: i(-1)}, "quota.max_requests_per_hour"},
		{"tokens at the ceiling", bulkhead.QuotaOverrides{MaxTokensPerMonth: i(c.MaxTokensPerMonth)}, ""},
		{"tokens past it", bulkhead.QuotaOverrides{MaxTokensPerMonth: i(c.MaxTokensPerMonth + 1)}, "quota.max_tokens_per_month must be from 0 to 100000000000"},
		{"spend at the ceiling", bulkhead.QuotaOverrides{MaxSpendPerMonth: m(c.MaxSpendPerMonth)}, ""},
		{"spend past it", bulkhead.QuotaOverrides{MaxSpendPerMonth: m(c.MaxSpendPerMonth + 1)}, "quota.max_spend_per_month must be from 0 to 10000000 (USD)"},
		{"spend negative", bulkhead.QuotaOverrides{MaxSpendPerMonth: m(-1)}, "quota.max_spend_per_month"},
		{"concurrency at the ceiling", bulkhead.QuotaOverrides{MaxConcurrentAgents: i(c.MaxConcurrentAgents)}, ""},
		{"concurrency past it", bulkhead.QuotaOverrides{MaxConcurrentAgents: i(c.MaxConcurrentAgents + 1)}, "quota.max_concurrent_agents must be from 0 to 100000"},
		{"storage at the ceiling", bulkhead.QuotaOverrides{MaxStorageMB: i(c.MaxStorageMB)}, ""},
		{"storage of 9e12 MB", bulkhead.QuotaOverrides{MaxStorageMB: i(9e12)}, "quota.max_storage_mb must be from 0 to 10240000"},
		{"zero everywhere", bulkhead.QuotaOverrides{MaxRequestsPerHour: i(0), MaxTokensPerMonth: i(0), MaxSpendPerMonth: m(0), MaxConcurrentAgents: i(0), MaxStorageMB: i(0)}, ""},
	} {
		err := tc.o.Validate()
		switch {
		case tc.bad == "" && err != nil:
			t.Errorf("%s: %v, want valid", tc.name, err)
		case tc.bad != "" && (!bulkhead.IsCode(err, bulkhead.Invalid) || !strings.Contains(err.Error(), tc.bad)):
			t.Errorf("%s: %v, want Invalid saying %q", tc.name, err, tc.bad)
		}
	}
}

// TestStoredOverridesAreClamped: an override stored before the ceiling
// existed applies as the ceiling, so nothing computed on it overflows.
func TestStoredOverridesAreClamped(t *testing.T) {
	huge, spend, neg := int64(9e12), bulkhead.Dollars(500_000_000_000), int64(-5)
	o := bulkhead.QuotaOverrides{MaxStorageMB: &huge, MaxSpendPerMonth: &spend, MaxTokensPerMonth: &huge, MaxRequestsPerHour: &huge, MaxConcurrentAgents: &neg}
	got := o.Apply(bulkhead.Quota{})
	want := bulkhead.QuotaCeiling
	want.MaxConcurrentAgents = 0
	if got != want {
		t.Errorf("applied %+v, want %+v", got, want)
	}
}
