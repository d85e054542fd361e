package platform_test

import (
	"testing"
	"time"

	"github.com/bulkhead-dev/bulkhead/pkg/platform"
)

// TestAuditRetentionFromEnv: unset keeps the default; whole days from 1 to
// 3650 set it; anything else is refused at start.
func TestAuditRetentionFromEnv(t *testing.T) {
	for _, c := range []struct {
		v    string
		want time.Duration
		ok   bool
	}{
		{"", 0, true}, {"30", 30 * 24 * time.Hour, true}, {"3650", 3650 * 24 * time.Hour, true},
		{"0", 0, false}, {"-1", 0, false}, {"1.5", 0, false}, {"forever", 0, false}, {"3651", 0, false},
	} {
		got, err := platform.AuditRetentionFromEnv(func(k string) string {
			if k == platform.EnvAuditRetentionDays {
				return c.v
			}
			return ""
		})
		if got != c.want || (err == nil) != c.ok {
			t.Errorf("%s=%q: %v, %v; want %v (accepted %v)", platform.EnvAuditRetentionDays, c.v, got, err, c.want, c.ok)
		}
	}
}
