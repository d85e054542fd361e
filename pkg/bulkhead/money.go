package bulkhead

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// Micros is an amount of money in micro-dollars (1 USD = 1,000,000 Micros).
// All money is integer end to end; it becomes a decimal only at the JSON edge.
type Micros int64

// MicrosPerDollar is the number of micro-dollars in one US dollar.
const MicrosPerDollar Micros = 1_000_000

// Dollars returns whole dollars as Micros.
func Dollars(d int64) Micros { return Micros(d) * MicrosPerDollar }

// JSON renders the amount in USD as an exact JSON number (no float rounding):
// 4000000 -> 4, 1500 -> 0.0015.
func (m Micros) JSON() json.Number {
	return json.Number(m.Decimal())
}

// Decimal renders the amount in USD with trailing zeros removed.
func (m Micros) Decimal() string {
	// The magnitude as uint64: -m overflows for the smallest int64.
	sign, v := "", uint64(m)
	if m < 0 {
		sign, v = "-", -v
	}
	s := fmt.Sprintf("%s%d.%06d", sign, v/1_000_000, v%1_000_000)
	s = strings.TrimRight(s, "0")
	return strings.TrimSuffix(s, ".")
}

// RoundToCents rounds half up (away from zero for positive amounts) to whole cents.
// It is applied once, at an invoice line.
func (m Micros) RoundToCents() Micros {
	const cent = 10_000
	if m >= 0 {
		return (m + cent/2) / cent * cent
	}
	return -((-m + cent/2) / cent * cent)
}

// ParseMicros parses a non-negative USD decimal with at most six fraction
// digits ("12", "0.5", "1e3" is refused) into Micros, exactly.
func ParseMicros(s string) (Micros, error) {
	whole, frac, hasDot := strings.Cut(s, ".")
	if whole == "" || len(frac) > 6 || (hasDot && frac == "") || len(whole) > 12 {
		return 0, fmt.Errorf("invalid amount %q", s)
	}
	w, err := strconv.ParseUint(whole, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("invalid amount %q", s)
	}
	var f uint64
	if frac != "" {
		if f, err = strconv.ParseUint(frac+strings.Repeat("0", 6-len(frac)), 10, 64); err != nil {
			return 0, fmt.Errorf("invalid amount %q", s)
		}
	}
	return Micros(w*1_000_000 + f), nil
}
