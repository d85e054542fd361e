package main

import (
	"context"
	"math"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/bulkhead-dev/bulkhead/pkg/api"
)

// smallMix is the mix the tests run: long enough for the context window
// to fill (turn 11 on), short enough for a test.
var smallMix = mixConfig{NewConversations: 3, Turns: 12, Idempotent: 2}

func mustReport(t *testing.T) Report {
	t.Helper()
	m, err := run(context.Background(), smallMix)
	if err != nil {
		t.Fatal(err)
	}
	return report(m)
}

// TestCostModel runs the mix twice and checks that its counts are
// deterministic and consistent, and holds them to the platform's cost goals
// (checkGoals). It prints the figures.
func TestCostModel(t *testing.T) {
	for k, v := range awsEnv() {
		t.Setenv(k, v)
	}
	first, second := mustReport(t), mustReport(t)
	var out strings.Builder
	if err := printText(&out, first); err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + out.String())

	for _, r := range []Report{first, second} {
		if len(r.Warnings) > 0 {
			t.Errorf("warnings: %q", r.Warnings)
		}
		checkConsistent(t, r)
	}
	checkGoals(t, first)
	if len(first.Scenarios) != len(second.Scenarios) {
		t.Fatalf("scenarios: %d, then %d", len(first.Scenarios), len(second.Scenarios))
	}
	for i, a := range first.Scenarios {
		b := second.Scenarios[i]
		if a.Scenario != b.Scenario || a.Executions != b.Executions {
			t.Errorf("scenario %d: %s (%d), then %s (%d)", i, a.Scenario, a.Executions, b.Scenario, b.Executions)
			continue
		}
		for _, op := range tally(a.Operations).ops() {
			x, y := a.Operations[op], b.Operations[op]
			if x.Requests != y.Requests || x.ReadUnits != y.ReadUnits || x.WriteUnits != y.WriteUnits || x.ItemsWritten != y.ItemsWritten {
				t.Errorf("%s: %s: %+v, then %+v", a.Scenario, op, x, y)
			}
			// Bytes move with the timestamps in the items and objects
			// (RFC 3339 drops trailing zeroes), and with how well an
			// idempotent answer's random ids compress on its usage record:
			// by a few dozen bytes at most.
			for _, v := range [][2]float64{{x.BytesIn, y.BytesIn}, {x.BytesOut, y.BytesOut}, {x.ItemBytesWritten, y.ItemBytesWritten}} {
				if math.Abs(v[0]-v[1]) > 64 {
					t.Errorf("%s: %s: bytes %v, then %v", a.Scenario, op, v[0], v[1])
				}
			}
		}
		if len(a.Operations) != len(b.Operations) {
			t.Errorf("%s: operations %v, then %v", a.Scenario, tally(a.Operations).ops(), tally(b.Operations).ops())
		}
	}
}

// checkConsistent checks a report against itself and against what every
// kind of execution must do.
func checkConsistent(t *testing.T, r Report) {
	t.Helper()
	want := []string{scTurn1, "turn 2", "turn 11", "turn 12", "turns 2-12 (mean)", scIdem, scReplay, scRefHourly, scRefMonthly}
	got := map[string]Figures{}
	var names []string
	for _, f := range r.Scenarios {
		got[f.Scenario] = f
		names = append(names, f.Scenario)
	}
	if strings.Join(names, "|") != strings.Join(want, "|") {
		t.Fatalf("scenarios %q, want %q", names, want)
	}
	near := func(a, b float64) bool { return math.Abs(a-b) < 1e-6 }
	for _, f := range r.Scenarios {
		var reqs, ddb, s3, rcu, wcu float64
		for op, s := range f.Operations {
			reqs += s.Requests
			if strings.HasPrefix(op, "S3.") {
				s3 += s.Requests
			} else {
				ddb += s.Requests
			}
			rcu += s.ReadUnits
			wcu += s.WriteUnits
		}
		if !near(f.Requests, reqs) || !near(f.Requests, f.DynamoDB+f.S3) || !near(f.DynamoDB, ddb) || !near(f.S3, s3) {
			t.Errorf("%s: requests %v (DynamoDB %v, S3 %v), operations add up to %v (%v, %v)", f.Scenario, f.Requests, f.DynamoDB, f.S3, reqs, ddb, s3)
		}
		if !near(f.ReadUnits, rcu) || !near(f.WriteUnits, wcu) {
			t.Errorf("%s: RCU %v, WCU %v; operations add up to %v, %v", f.Scenario, f.ReadUnits, f.WriteUnits, rcu, wcu)
		}
		c := f.Cost
		if !near(c.Stores, c.DynamoDB+c.S3) || !near(c.Total, c.Stores+apiGatewayRESTPerMillion+lambdaInvocations*lambdaRequestPerMillion) {
			t.Errorf("%s: cost %+v does not add up", f.Scenario, c)
		}
		if f.Operations["DynamoDB.BatchGetItem"].Requests < 1 {
			t.Errorf("%s: %v BatchGetItem, want the authorizer's 1 at least", f.Scenario, f.Operations["DynamoDB.BatchGetItem"].Requests)
		}
	}
	// An execution is admitted by one conditional update and settled, its
	// small turn included, by one transaction, and writes nothing to S3.
	for _, name := range []string{scTurn1, "turn 2", "turn 11", "turn 12", scIdem} {
		f := got[name]
		if f.WriteUnits <= 0 || f.Operations["DynamoDB.UpdateItem"].Requests != 1 || f.Operations["DynamoDB.TransactWriteItems"].Requests != 1 || f.S3 != 0 {
			t.Errorf("%s: WCU %v, %v updates, %v transactions, %v S3 requests; want WCU > 0, 1, 1 and none", f.Scenario, f.WriteUnits,
				f.Operations["DynamoDB.UpdateItem"].Requests, f.Operations["DynamoDB.TransactWriteItems"].Requests, f.S3)
		}
	}
	// A later turn reads its context window in one Query (turn 2's is the
	// first turn, which the head holds), and reads no more once the window
	// is full.
	for name, queries := range map[string]float64{scTurn1: 0, "turn 2": 0, "turn 11": 1, "turn 12": 1} {
		if q := got[name].Operations["DynamoDB.Query"].Requests; q != queries {
			t.Errorf("%s: %v Query, want %v", name, q, queries)
		}
	}
	if a, b := got["turn 11"].Operations["DynamoDB.Query"].ReadUnits, got["turn 12"].Operations["DynamoDB.Query"].ReadUnits; a != b {
		t.Errorf("the context window read %v units at turn 11, %v at turn 12; want the same", a, b)
	}
	// A replay and a refusal do no work: no item written, nothing billable
	// in S3.
	for _, name := range []string{scReplay, scRefHourly, scRefMonthly} {
		f := got[name]
		if f.ItemsWritten != 0 || f.S3 != 0 || f.Cost.S3 != 0 {
			t.Errorf("%s: %v items written, %v S3 requests ($%v/M); want none", name, f.ItemsWritten, f.S3, f.Cost.S3)
		}
	}
	if s := r.SpendCheck; s == nil || s.Operations["DynamoDB.Query"].Requests != 1 || s.Requests < 1 || s.Requests > 2 || s.ReadUnits <= 0 {
		t.Errorf("breaker check: %+v, want one Query with read units, and at most one checkpoint", s)
	}
}

// The cost goals per execution, model excluded.
const (
	maxRequests   = 6  // store requests, the authorizer's included, at any turn, with or without an Idempotency-Key
	maxWriteUnits = 10 // DynamoDB write units, with or without an Idempotency-Key
	maxUSD        = 12 // per million executions, API Gateway and Lambda requests included, at turn 1 and once the context window is full
)

// checkGoals holds a report to the cost goals.
func checkGoals(t *testing.T, r Report) {
	t.Helper()
	for _, f := range r.Scenarios {
		if f.Requests > maxRequests {
			t.Errorf("%s: %v store requests, goal at most %d", f.Scenario, f.Requests, maxRequests)
		}
	}
	for _, f := range r.Scenarios {
		switch f.Scenario {
		case scTurn1, "turn 2", "turn 11", "turn 12", "turns 2-12 (mean)", scIdem:
			if f.WriteUnits > maxWriteUnits {
				t.Errorf("%s: %v WCU, goal at most %d", f.Scenario, f.WriteUnits, maxWriteUnits)
			}
		}
		switch f.Scenario {
		case scTurn1, "turn 12", scIdem:
			if f.Cost.Total >= maxUSD {
				t.Errorf("%s: $%.2f per million executions, goal under $%d", f.Scenario, f.Cost.Total, maxUSD)
			}
		}
	}
}

// TestUnits checks the capacity rules: reads per 4 KB (half eventually
// consistent), writes per KB of the larger of before and after, and the
// minimum of one for an item that does not exist.
func TestUnits(t *testing.T) {
	for _, c := range []struct {
		name      string
		got, want float64
	}{
		{"read 3,500 B, strongly consistent", readUnits(3500, true), 1},
		{"read 10 KB, strongly consistent", readUnits(10<<10, true), 3},
		{"read 10 KB, eventually consistent", readUnits(10<<10, false), 1.5},
		{"read a missing item", readUnits(0, true), 1},
		{"write 500 B", writeUnits(0, 500), 1},
		{"update 900 B to 1,500 B", writeUnits(900, 1500), 2},
		{"delete 2,100 B", writeUnits(2100, 0), 3},
	} {
		if c.got != c.want {
			t.Errorf("%s: %v units, want %v", c.name, c.got, c.want)
		}
	}
}

// TestMemoryMatchesStack checks that the cost model prices the memory the
// stack gives the functions: both take it from api.MemoryMB.
func TestMemoryMatchesStack(t *testing.T) {
	src, err := os.ReadFile("../../infra/stacks/platform.go")
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`MemorySize:\s*jsii\.Number\(float64\(api\.MemoryMB\(name\)\)\)`).Match(src) {
		t.Error("infra/stacks/platform.go does not size its functions with api.MemoryMB")
	}
	for fn, got := range map[string]int{api.FnExecute: executeMemoryMB, api.FnAuthorizer: authorizerMemoryMB} {
		if want := api.MemoryMB(fn); got != want {
			t.Errorf("%s: the cost model prices %d MB, api.MemoryMB gives %d MB", fn, got, want)
		}
	}
	// A GB-second at $0.0000133334: a second per million runs is $6.67 at
	// 512 MB, the execute function's size before it was measured.
	for mb, want := range map[int]float64{512: 6.6667, 256: 3.3333, 128: 1.6667} {
		if got := lambdaPerSecondPerMillion(mb); math.Abs(got-want) > 1e-3 {
			t.Errorf("a second at %d MB: $%v per million, want $%.2f", mb, got, want)
		}
	}
}
