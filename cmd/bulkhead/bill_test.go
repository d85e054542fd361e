//go:build unix

package main_test

import (
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestBillCloseCommand runs `bulkhead bill close` against a running platform,
// as an operator would.
func TestBillCloseCommand(t *testing.T) {
	const token = "bill-close-operator-token"
	p := startDev(t, t, t.TempDir(), token)
	bin := mustBinary(t)
	run := func(month string) (string, error) {
		cmd := exec.Command(bin, "bill", "close", "--month", month, "--url", p.URL, "--admin-token", token)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	// The month before this one is over (its tenants: none existed yet).
	now := time.Now().UTC()
	prev := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC).AddDate(0, -1, 0).Format("2006-01")
	if now.Day() == 1 && now.Hour() == 0 && now.Minute() < 11 {
		t.Logf("within the close grace of %s: checking the refusal only", prev)
	} else {
		out, err := run(prev)
		if err != nil || !strings.Contains(out, `"month":"`+prev+`"`) || !strings.Contains(out, `"failed":[]`) {
			t.Errorf("close %s: %v\n%s", prev, err, out)
		}
	}
	// The current month is not over: refused, and the command fails.
	out, err := run(now.Format("2006-01"))
	if err == nil || !strings.Contains(out, "invalid_request") {
		t.Errorf("closing the current month: %v\n%s", err, out)
	}
	if out, err := run(""); err == nil || !strings.Contains(out, "--month is required") {
		t.Errorf("without --month: %v\n%s", err, out)
	}
}
