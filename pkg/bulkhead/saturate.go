package bulkhead

import "math"

// Quota arithmetic saturates instead of wrapping: a limit so large that a
// computation on it would pass the int64 range must still read as "very
// large", never as negative (which would refuse every execution or trip the
// circuit breaker at once).

// AddSat returns a+b, or the int64 bound it would pass.
func AddSat(a, b int64) int64 {
	switch {
	case b > 0 && a > math.MaxInt64-b:
		return math.MaxInt64
	case b < 0 && a < math.MinInt64-b:
		return math.MinInt64
	}
	return a + b
}

// SubSat returns a-b, or the int64 bound it would pass.
func SubSat(a, b int64) int64 {
	if b == math.MinInt64 {
		if a >= 0 {
			return math.MaxInt64
		}
		return a - b
	}
	return AddSat(a, -b)
}

// MulSat returns a*b, or the int64 bound it would pass.
func MulSat(a, b int64) int64 {
	if a == 0 || b == 0 {
		return 0
	}
	p := a * b
	// MinInt64 * -1 wraps to MinInt64, and MinInt64 / -1 is MinInt64 again,
	// so the division check alone would miss it.
	if p/b == a && !(a == -1 && b == math.MinInt64) && !(b == -1 && a == math.MinInt64) {
		return p
	}
	if (a < 0) != (b < 0) {
		return math.MinInt64
	}
	return math.MaxInt64
}
