package dynamo_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/bulkhead-dev/bulkhead/pkg/bulkhead"
	"github.com/bulkhead-dev/bulkhead/pkg/dynamo"
)

// TestDailyUsageFromRecords settles executions on several days of November,
// at its last instant, and on either side of it, and checks that the
// per-day totals are the sums of the month's usage records, by the UTC day
// each execution started, and add up to the month's counters.
func TestDailyUsageFromRecords(t *testing.T) {
	ctx := context.Background()
	ts := mustStore(t).Tenant("tn_a")
	starts := []time.Time{
		time.Date(2026, 10, 31, 23, 59, 59, 999_999_999, time.UTC), // the month before
		time.Date(2026, 11, 3, 0, 0, 0, 0, time.UTC),
		time.Date(2026, 11, 3, 9, 30, 0, 0, time.UTC),
		time.Date(2026, 11, 3, 23, 59, 59, 0, time.UTC),
		time.Date(2026, 11, 15, 12, 0, 0, 0, time.FixedZone("UTC-5", -5*3600)), // 17:00 UTC
		time.Date(2026, 11, 28, 8, 0, 0, 0, time.UTC),
		time.Date(2026, 11, 28, 18, 0, 0, 0, time.UTC),
		time.Date(2026, 11, 30, 23, 59, 59, 999_000_000, time.UTC),             // the month's last day
		time.Date(2026, 11, 30, 20, 0, 0, 0, time.FixedZone("UTC-5", -5*3600)), // December 1st in UTC
		time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC),
	}
	for i, at := range starts {
		id := fmt.Sprintf("exec_%02d", i)
		res := dynamo.Reservation{Tokens: 1000, Spend: 50_000}
		if err := ts.Admit(ctx, dynamo.Admission{ExecutionID: id, Now: at, Lease: time.Minute, Quota: bigQuota, Reserve: res}); err != nil {
			t.Fatal(err)
		}
		e := exec(id, fmt.Sprintf("conv_%02d", i), int64(10*(i+1)), int64(i+1))
		e.StartedAt, e.FinishedAt = at, at.Add(2*time.Second)
		st := dynamo.Settlement{Execution: e, Reserved: res, Turn: &dynamo.SettledTurn{New: true, AgentID: "agt_a", Bytes: 10, CreatedAt: at}}
		if err := ts.Settle(ctx, st); err != nil {
			t.Fatal(err)
		}
	}

	// What the records say, day by day.
	sums := func(month string) []bulkhead.DayUsage {
		byDay := map[string]*bulkhead.DayUsage{}
		var days []string
		cursor := ""
		for {
			page, err := ts.ListExecutions(ctx, cursor, 100)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range page.Items {
				day := bulkhead.DayKey(e.StartedAt)
				if bulkhead.MonthKey(e.StartedAt) != month {
					continue
				}
				d, ok := byDay[day]
				if !ok {
					d = &bulkhead.DayUsage{Day: day}
					byDay[day] = d
					days = append(days, day)
				}
				d.InputTokens += e.InputTokens
				d.OutputTokens += e.OutputTokens
				d.Tokens += e.InputTokens + e.OutputTokens
				d.Spend += e.Cost
				d.Executions++
			}
			if cursor = page.NextCursor; cursor == "" {
				break
			}
		}
		slices.Sort(days)
		var out []bulkhead.DayUsage
		for _, day := range days {
			out = append(out, *byDay[day])
		}
		return out
	}

	for _, c := range []struct {
		month string
		days  []string
		execs []int64
	}{
		{"2026-10", []string{"2026-10-31"}, []int64{1}},
		{"2026-11", []string{"2026-11-03", "2026-11-15", "2026-11-28", "2026-11-30"}, []int64{3, 1, 2, 1}},
		{"2026-12", []string{"2026-12-01"}, []int64{2}},
		{"2026-09", nil, nil},
	} {
		got, err := ts.DailyUsage(ctx, c.month)
		if err != nil {
			t.Fatal(err)
		}
		var days []string
		var execs []int64
		for _, d := range got {
			days, execs = append(days, d.Day), append(execs, d.Executions)
		}
		if !slices.Equal(days, c.days) || !slices.Equal(execs, c.execs) {
			t.Errorf("%s: days %v with %v executions, want %v with %v", c.month, days, execs, c.days, c.execs)
		}
		if want := sums(c.month); !slices.Equal(got, want) {
			t.Errorf("%s: daily usage %+v, want the records' sums %+v", c.month, got, want)
		}
		if len(got) == 0 {
			continue
		}
		// The days add up to the month's counters.
		var total bulkhead.DayUsage
		for _, d := range got {
			total.Tokens += d.Tokens
			total.InputTokens += d.InputTokens
			total.OutputTokens += d.OutputTokens
			total.Spend += d.Spend
			total.Executions += d.Executions
		}
		month, _ := time.Parse("2006-01", c.month)
		u, err := ts.Counters(ctx, month)
		if err != nil {
			t.Fatal(err)
		}
		if u.TokensThisMonth != total.Tokens || u.InputTokens != total.InputTokens || u.OutputTokens != total.OutputTokens ||
			u.SpendThisMonth != total.Spend || u.Executions != total.Executions {
			t.Errorf("%s: the days add up to %+v; the month's counters are %+v", c.month, total, u)
		}
	}
}
