package bulkhead_test

import (
	"testing"

	"github.com/bulkhead-dev/bulkhead/pkg/bulkhead"
)

// TestSeedBillExample is the seed's example, to the cent.
func TestSeedBillExample(t *testing.T) {
	tier, _ := bulkhead.LookupTier(bulkhead.Professional)
	b := bulkhead.ComputeBill(tier, "2026-11", 1_500_000)
	if b.OverageTokens != 500_000 || b.OverageFee != bulkhead.Dollars(4) || b.Total != bulkhead.Dollars(103) || b.BaseFee != bulkhead.Dollars(99) {
		t.Errorf("bill = %+v, want overage 500000 tokens, fee $4.00, total $103.00", b)
	}
	if got := b.Total.JSON().String(); got != "103" {
		t.Errorf("total renders as %s, want 103", got)
	}
}

func TestBillRoundsOnceHalfUp(t *testing.T) {
	starter, _ := bulkhead.LookupTier(bulkhead.Starter)
	cases := []struct {
		tokens int64
		fee    bulkhead.Micros
	}{
		{100_000, 0},
		{100_001, 0},      // $0.00001 -> $0.00
		{100_500, 10_000}, // $0.005 -> $0.01 (half up)
		{100_499, 0},      // $0.00499 -> $0.00
		{101_000, 10_000}, // exactly $0.01
		{1_100_000, 10_000_000},
	}
	for _, c := range cases {
		b := bulkhead.ComputeBill(starter, "2026-11", c.tokens)
		if b.OverageFee != c.fee || b.Total != starter.BaseFee+c.fee {
			t.Errorf("%d tokens: fee %d total %d, want fee %d", c.tokens, b.OverageFee, b.Total, c.fee)
		}
	}
}

func TestMicrosDecimal(t *testing.T) {
	cases := map[bulkhead.Micros]string{0: "0", 1: "0.000001", 4_000_000: "4", 1_500: "0.0015", 99_990_000: "99.99", -250_000: "-0.25"}
	for m, want := range cases {
		if got := m.Decimal(); got != want {
			t.Errorf("%d.Decimal() = %q, want %q", m, got, want)
		}
	}
	for in, want := range map[string]bulkhead.Micros{"12": 12_000_000, "0.5": 500_000, "1.000001": 1_000_001, "0": 0} {
		got, err := bulkhead.ParseMicros(in)
		if err != nil || got != want {
			t.Errorf("ParseMicros(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "-1", "1.", ".5", "1e3", "0.0000001", "abc", "1.2.3"} {
		if _, err := bulkhead.ParseMicros(bad); err == nil {
			t.Errorf("ParseMicros(%q) accepted", bad)
		}
	}
}

func TestModelCostIsExact(t *testing.T) {
	p, ok := bulkhead.LookupModel(bulkhead.DefaultModel)
	if !ok {
		t.Fatal("default model has no price")
	}
	// $3/M in, $15/M out: 1,000 in + 100 out = $0.003 + $0.0015.
	if got := p.Cost(1000, 100); got != 4_500 {
		t.Errorf("cost = %d µ$, want 4500", got)
	}
}

func TestTierTableAndOverrides(t *testing.T) {
	tiers := bulkhead.Tiers()
	if len(tiers) != 3 || tiers[0].Name != bulkhead.Starter || tiers[2].Name != bulkhead.Enterprise {
		t.Fatalf("tiers = %v", tiers)
	}
	if _, ok := bulkhead.LookupTier("platinum"); ok {
		t.Error("unknown tier found")
	}
	tokens := int64(5)
	tn := bulkhead.Tenant{Tier: bulkhead.Starter, Overrides: bulkhead.QuotaOverrides{MaxTokensPerMonth: &tokens}}
	q := tn.Quota()
	if q.MaxTokensPerMonth != 5 || q.MaxRequestsPerHour != 1000 {
		t.Errorf("quota with override = %+v", q)
	}
}

func TestIDs(t *testing.T) {
	id := bulkhead.NewID("agt")
	if !bulkhead.ValidID("agt", id) {
		t.Errorf("NewID made %q, which ValidID refuses", id)
	}
	for _, bad := range []string{"", "agt_", "conv_aaaaaaaaaaaaaaaa", "agt_AAAAAAAAAAAAAAAA", "agt_aaaaaaaaaaaaaaa/", "agt_aaaaaaaaaaaaaaaaa"} {
		if bulkhead.ValidID("agt", bad) {
			t.Errorf("ValidID accepted %q", bad)
		}
	}
}

func TestErrorCodesMapToStatus(t *testing.T) {
	cases := map[bulkhead.Code]int{bulkhead.Invalid: 400, bulkhead.Unauthenticated: 401, bulkhead.Forbidden: 403, bulkhead.NotFound: 404,
		bulkhead.Conflict: 409, bulkhead.TooLarge: 413, bulkhead.QuotaExceeded: 429, bulkhead.RateLimited: 429,
		bulkhead.Internal: 500, bulkhead.ModelError: 502, bulkhead.Unavailable: 503, bulkhead.ModelTimeout: 504, "other": 500}
	for c, want := range cases {
		if got := c.HTTPStatus(); got != want {
			t.Errorf("%s -> %d, want %d", c, got, want)
		}
	}
}
