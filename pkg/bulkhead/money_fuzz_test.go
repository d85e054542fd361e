package bulkhead_test

import (
	"encoding/json"
	"math"
	"math/big"
	"regexp"
	"strings"
	"testing"

	"github.com/bulkhead-dev/bulkhead/pkg/bulkhead"
)

// amountGrammar is what ParseMicros documents: a non-negative USD decimal,
// at most 12 whole digits (so the result fits an int64) and 6 fraction digits.
var amountGrammar = regexp.MustCompile(`^[0-9]{1,12}(\.[0-9]{1,6})?$`)

// exactMicros is the exact value of a decimal string in micro-dollars, by
// arbitrary-precision arithmetic rather than the code under test.
func exactMicros(tb testing.TB, s string) *big.Int {
	tb.Helper()
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		tb.Fatalf("%q is not a decimal", s)
	}
	r.Mul(r, big.NewRat(int64(bulkhead.MicrosPerDollar), 1))
	if !r.IsInt() {
		tb.Fatalf("%q is not a whole number of micro-dollars", s)
	}
	return r.Num()
}

// canonicalAmount is the one spelling of an amount: no leading zeros in the
// whole part, no trailing zeros (or dot) in the fraction.
func canonicalAmount(s string) string {
	whole, frac, _ := strings.Cut(s, ".")
	whole = strings.TrimLeft(whole, "0")
	if whole == "" {
		whole = "0"
	}
	if frac = strings.TrimRight(frac, "0"); frac == "" {
		return whole
	}
	return whole + "." + frac
}

// FuzzParseMicros: the USD amounts an operator sends (quota overrides) are
// accepted exactly when they follow the documented grammar, parse to their
// exact value (no float on the way), and render back to the same amount.
func FuzzParseMicros(f *testing.F) {
	for _, s := range []string{
		"0", "12", "0.5", "1.000001", "99.99", "100", "0.000001", "999999999999.999999", "007.50", "1.100000",
		"", "-1", "+1", "1.", ".5", "1e3", "1E3", "0.0000001", "1000000000000", "abc", "1.2.3", " 1", "1 ", "1_000",
		"0x10", "NaN", "Inf", "１", "1.-1", "1.+1", "18446744073709551616", "9223372036854.775807",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := bulkhead.ParseMicros(s)
		if valid := amountGrammar.MatchString(s); (err == nil) != valid {
			t.Fatalf("ParseMicros(%q): error %v, but the grammar says valid=%v", s, err, valid)
		}
		if err != nil {
			return
		}
		if want := exactMicros(t, s); !want.IsInt64() || want.Int64() != int64(m) {
			t.Fatalf("ParseMicros(%q) = %d µ$, want exactly %s", s, m, want)
		}
		if got, want := m.Decimal(), canonicalAmount(s); got != want {
			t.Fatalf("ParseMicros(%q).Decimal() = %q, want %q", s, got, want)
		}
		back, err := bulkhead.ParseMicros(m.Decimal())
		if err != nil || back != m {
			t.Fatalf("ParseMicros(%q) = %d, %v; want the amount %d back", m.Decimal(), back, err, m)
		}
	})
}

// decimalShape is how an amount renders: an optional minus, whole digits
// without leading zeros, and a fraction without trailing zeros.
var decimalShape = regexp.MustCompile(`^-?(0|[1-9][0-9]*)(\.[0-9]{0,5}[1-9])?$`)

// FuzzMicrosJSON: every amount renders as a valid JSON number in its
// canonical spelling whose exact value is the amount, and every amount
// ParseMicros can hold parses back from its rendering.
func FuzzMicrosJSON(f *testing.F) {
	for _, m := range []int64{0, 1, -1, 999_999, 1_000_000, 1_500, -250_000, 99_990_000, 999_999_999_999_999_999,
		math.MaxInt64, math.MinInt64, math.MinInt64 + 1} {
		f.Add(m)
	}
	f.Fuzz(func(t *testing.T, v int64) {
		m := bulkhead.Micros(v)
		d := m.Decimal()
		if !decimalShape.MatchString(d) || d == "-0" {
			t.Fatalf("Micros(%d).Decimal() = %q, not a canonical decimal", v, d)
		}
		if got := exactMicros(t, d); !got.IsInt64() || got.Int64() != v {
			t.Fatalf("Micros(%d).Decimal() = %q, whose value is %s µ$", v, d, got)
		}
		b, err := json.Marshal(map[string]any{"amount": m.JSON()})
		if err != nil || string(b) != `{"amount":`+d+`}` {
			t.Fatalf("Micros(%d) as JSON: %s, %v", v, b, err)
		}
		if v >= 0 && v <= 999_999_999_999_999_999 {
			back, err := bulkhead.ParseMicros(d)
			if err != nil || back != m {
				t.Fatalf("ParseMicros(%q) = %d, %v; want %d", d, back, err, v)
			}
		}
	})
}
