package gateway

import (
	"testing"
	"time"

	"github.com/bulkhead-dev/bulkhead/pkg/bulkhead"
)

// These cover unexported pieces whose effects the HTTP tests cannot see.

func TestWildcardMatch(t *testing.T) {
	arn := "arn:aws:execute-api:local:000000000000:local/test/GET/v1/agents/ag-1"
	tests := []struct {
		pattern string
		want    bool
	}{
		{arn, true},
		{"*", true},
		{"arn:aws:execute-api:local:000000000000:local/*", true},
		{"arn:aws:execute-api:local:000000000000:local/test/*/v1/agents/*", true},
		{"arn:aws:execute-api:local:000000000000:local/test/GET/v1/agents/ag-?", true},
		{"arn:aws:execute-api:local:000000000000:local/test/POST/*", false},
		{"arn:aws:execute-api:local:000000000000:local/prod/*", false},
		{"arn:aws:execute-api:local:000000000000:local/test/GET/v1/agents", false},
		{"arn:aws:execute-api:local:000000000000:local/test/get/v1/agents/ag-1", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := wildcardMatch(tt.pattern, arn); got != tt.want {
			t.Errorf("wildcardMatch(%q): got %v, want %v", tt.pattern, got, tt.want)
		}
	}
}

func TestLimiterForgetsIdleKeys(t *testing.T) {
	l := newLimiter()
	plan := bulkhead.Throttle{RatePerSecond: 1, Burst: 10, DailyRequests: 100}
	day1 := time.Date(2026, 11, 28, 23, 59, 59, 0, time.UTC)
	for _, key := range []string{"idle", "late"} {
		if r := l.allow(key, plan, day1); r != nil {
			t.Fatalf("allow %s: got refusal %q, want admitted", key, r.message)
		}
	}
	// "late" spends its whole bucket just before midnight, so just after
	// midnight it is not yet full and must be kept.
	for range 9 {
		l.allow("late", plan, day1)
	}
	l.allow("late", plan, day1.Add(500*time.Millisecond))
	l.allow("idle", plan, day1.Add(-time.Hour)) // a clock step back earns nothing
	if r := l.allow("new", plan, day1.Add(2*time.Second)); r != nil {
		t.Fatalf("allow new: got refusal %q", r.message)
	}
	_, idle := l.buckets["idle"]
	_, late := l.buckets["late"]
	if idle || !late {
		t.Errorf("after the daily sweep: idle kept %v (want false), late kept %v (want true)", idle, late)
	}
	if got := l.buckets["late"].level; got >= l.buckets["late"].capacity {
		t.Errorf("late bucket: got full (%d), want its debt kept", got)
	}
}

func TestLimiterUnlimitedPlan(t *testing.T) {
	// Zero rate and quota mean no throttle and no quota, as in a plan without them.
	l := newLimiter()
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	for i := range 10_000 {
		if r := l.allow("k", bulkhead.Throttle{}, now); r != nil {
			t.Fatalf("request %d: got refusal %q, want none", i+1, r.message)
		}
	}
}
