package metrics_test

import (
	"bytes"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/bulkhead-dev/bulkhead/pkg/metrics"
)

var (
	helpLine   = regexp.MustCompile(`^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$`)
	typeLine   = regexp.MustCompile(`^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram)$`)
	sampleLine = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$`)
	labelPair  = regexp.MustCompile(`^([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"(,|$)`)
)

type sample struct {
	name   string
	labels map[string]string
	value  float64
}

// parseText checks every line of an exposition and returns its samples: a
// HELP and a TYPE line before each family's samples, valid names, label
// values escaped, histogram buckets cumulative and ending with +Inf equal to
// _count, and a _sum.
func parseText(t *testing.T, text string) []sample {
	t.Helper()
	if text != "" && !strings.HasSuffix(text, "\n") {
		t.Fatalf("exposition does not end with a line feed")
	}
	var out []sample
	types := map[string]string{}
	helped := map[string]bool{}
	for i, line := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		if line == "" {
			continue
		}
		if m := helpLine.FindStringSubmatch(line); m != nil {
			helped[m[1]] = true
			continue
		}
		if m := typeLine.FindStringSubmatch(line); m != nil {
			if !helped[m[1]] || types[m[1]] != "" {
				t.Fatalf("line %d: TYPE without HELP, or repeated: %q", i+1, line)
			}
			types[m[1]] = m[2]
			continue
		}
		m := sampleLine.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("line %d is not a sample: %q", i+1, line)
		}
		s := sample{name: m[1], labels: map[string]string{}}
		rest := m[3]
		for rest != "" {
			p := labelPair.FindStringSubmatch(rest)
			if p == nil {
				t.Fatalf("line %d: bad labels %q", i+1, rest)
			}
			s.labels[p[1]] = strings.NewReplacer(`\\`, `\`, `\"`, `"`, `\n`, "\n").Replace(p[2])
			rest = rest[len(p[0]):]
		}
		v, err := strconv.ParseFloat(m[4], 64)
		if err != nil {
			t.Fatalf("line %d: value %q: %v", i+1, m[4], err)
		}
		s.value = v
		base := s.name
		for _, suf := range []string{"_bucket", "_sum", "_count"} {
			if b := strings.TrimSuffix(s.name, suf); b != s.name && types[b] == "histogram" {
				base = b
			}
		}
		if types[base] == "" {
			t.Fatalf("line %d: sample of %s before its TYPE", i+1, base)
		}
		out = append(out, s)
	}
	checkHistograms(t, out)
	return out
}

func checkHistograms(t *testing.T, samples []sample) {
	t.Helper()
	type hist struct {
		buckets    []float64
		lastLe     string
		count      float64
		sum, cnt   bool
		prevBucket float64
	}
	hs := map[string]*hist{}
	key := func(s sample) string {
		ls := []string{}
		for k, v := range s.labels {
			if k != "le" {
				ls = append(ls, k+"="+v)
			}
		}
		sortStrings(ls)
		name := s.name
		for _, suf := range []string{"_bucket", "_sum", "_count"} {
			name = strings.TrimSuffix(name, suf)
		}
		return name + fmt.Sprint(ls)
	}
	for _, s := range samples {
		switch {
		case strings.HasSuffix(s.name, "_bucket"):
			h := hs[key(s)]
			if h == nil {
				h = &hist{}
				hs[key(s)] = h
			}
			if s.value < h.prevBucket {
				t.Errorf("%s: buckets not cumulative at le=%s", key(s), s.labels["le"])
			}
			h.prevBucket, h.lastLe = s.value, s.labels["le"]
			h.buckets = append(h.buckets, s.value)
		case strings.HasSuffix(s.name, "_sum") && hs[key(s)] != nil:
			hs[key(s)].sum = true
		case strings.HasSuffix(s.name, "_count") && hs[key(s)] != nil:
			hs[key(s)].cnt, hs[key(s)].count = true, s.value
		}
	}
	for k, h := range hs {
		if h.lastLe != "+Inf" || !h.sum || !h.cnt || h.buckets[len(h.buckets)-1] != h.count {
			t.Errorf("histogram %s: last le %q, sum %v, count %v (%v vs %v)", k, h.lastLe, h.sum, h.cnt, h.buckets[len(h.buckets)-1], h.count)
		}
	}
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

func scrape(t *testing.T, reg *metrics.Registry) []sample {
	t.Helper()
	var buf bytes.Buffer
	if err := reg.WriteText(&buf); err != nil {
		t.Fatal(err)
	}
	return parseText(t, buf.String())
}

func total(samples []sample, name string, match map[string]string) float64 {
	var sum float64
next:
	for _, s := range samples {
		if s.name != name {
			continue
		}
		for k, v := range match {
			if s.labels[k] != v {
				continue next
			}
		}
		sum += s.value
	}
	return sum
}

// TestRegistryExposition checks the text format of every kind of family,
// label escaping included.
func TestRegistryExposition(t *testing.T) {
	reg := metrics.NewRegistry(0)
	e := metrics.NewRegistryEmitter(reg)
	e.Emit(map[string]float64{metrics.Tokens: 30, metrics.Spend: 0.25, metrics.Executions: 1}, nil,
		map[string]any{"tenant_id": "tn_a", "status": "completed"})
	e.Emit(map[string]float64{metrics.Executions: 1, metrics.Tokens: 5}, nil, map[string]any{"tenant_id": "tn_a", "status": "failed"})
	e.Emit(map[string]float64{metrics.QuotaViolations: 1}, nil, map[string]any{"tenant_id": "tn_b", "quota_type": "odd \"type\"\\with\nline"})
	for _, ms := range []float64{3, 40, 40, 900, 1e6} {
		e.Emit(map[string]float64{metrics.Requests: 1, metrics.RequestLatency: ms}, nil,
			map[string]any{"tenant_id": "tn_a", "function": "execute", "status_class": "2xx"})
		e.Emit(map[string]float64{metrics.AdmissionLatency: ms}, nil, nil)
	}
	e.Emit(map[string]float64{metrics.BreakerState: 2}, nil, map[string]any{"tenant_id": "tn_a"})
	e.Emit(map[string]float64{metrics.StoreErrors: 1}, nil, map[string]any{"service": "DynamoDB", "operation": "GetItem", "code": "InternalServerError"})
	e.Emit(map[string]float64{"NotAMetric": 1}, nil, nil)

	ss := scrape(t, reg)
	for _, c := range []struct {
		name  string
		match map[string]string
		want  float64
	}{
		{"bulkhead_tokens_total", map[string]string{"tenant_id": "tn_a"}, 35},
		{"bulkhead_spend_usd_total", map[string]string{"tenant_id": "tn_a"}, 0.25},
		{"bulkhead_executions_total", map[string]string{"tenant_id": "tn_a", "status": "completed"}, 1},
		{"bulkhead_executions_total", map[string]string{"tenant_id": "tn_a", "status": "failed"}, 1},
		{"bulkhead_quota_violations_total", map[string]string{"tenant_id": "tn_b", "quota_type": "odd \"type\"\\with\nline"}, 1},
		{"bulkhead_requests_total", map[string]string{"function": "execute", "status_class": "2xx"}, 5},
		{"bulkhead_request_duration_seconds_count", map[string]string{"tenant_id": "tn_a"}, 5},
		{"bulkhead_request_duration_seconds_bucket", map[string]string{"le": "0.05"}, 3},
		{"bulkhead_request_duration_seconds_bucket", map[string]string{"le": "300"}, 4},
		{"bulkhead_request_duration_seconds_bucket", map[string]string{"le": "+Inf"}, 5},
		{"bulkhead_request_duration_seconds_sum", nil, (3 + 40 + 40 + 900 + 1e6) / 1000},
		{"bulkhead_admission_duration_seconds_count", nil, 5},
		{"bulkhead_breaker_state", map[string]string{"tenant_id": "tn_a"}, 2},
		{"bulkhead_store_errors_total", map[string]string{"service": "DynamoDB", "operation": "GetItem", "code": "InternalServerError"}, 1},
	} {
		if got := total(ss, c.name, c.match); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.match, got, c.want)
		}
	}
	var nilReg *metrics.Registry
	nilReg.Record(map[string]float64{metrics.Tokens: 1}, nil) // records nothing, does not panic
}

// TestRegistryTenantBound checks that N+5 tenants give N tenant labels plus
// "other", that the totals equal what was recorded, and that a labelled
// tenant keeps its label.
func TestRegistryTenantBound(t *testing.T) {
	const n = 4
	reg := metrics.NewRegistry(n)
	e := metrics.NewRegistryEmitter(reg)
	var want float64
	var wg sync.WaitGroup
	for round := 0; round < 3; round++ {
		for i := 0; i < n+5; i++ {
			tokens := float64(10*i + round + 1)
			want += tokens
			tenant := fmt.Sprintf("tn_%02d", i)
			if round == 0 {
				// The first round in order, so that tn_00..tn_03 are the first seen.
				e.Emit(map[string]float64{metrics.Tokens: tokens, metrics.Executions: 1, metrics.BreakerState: 1}, nil,
					map[string]any{"tenant_id": tenant, "status": "completed"})
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				e.Emit(map[string]float64{metrics.Tokens: tokens, metrics.Executions: 1}, nil,
					map[string]any{"tenant_id": tenant, "status": "completed"})
			}()
		}
	}
	wg.Wait()
	ss := scrape(t, reg)
	labels := map[string]bool{}
	for _, s := range ss {
		if s.name == "bulkhead_tokens_total" {
			labels[s.labels["tenant_id"]] = true
		}
	}
	if len(labels) != n+1 || !labels[metrics.OtherTenant] {
		t.Errorf("tenant labels %v, want %d and other", labels, n)
	}
	for i := 0; i < n; i++ {
		if !labels[fmt.Sprintf("tn_%02d", i)] {
			t.Errorf("tn_%02d, among the first %d seen, has no label of its own: %v", i, n, labels)
		}
	}
	if got := total(ss, "bulkhead_tokens_total", nil); got != want {
		t.Errorf("tokens total %v, want %v", got, want)
	}
	if got := total(ss, "bulkhead_executions_total", nil); got != 3*(n+5) {
		t.Errorf("executions total %v, want %d", got, 3*(n+5))
	}
	if got := total(ss, "bulkhead_executions_total", map[string]string{"tenant_id": metrics.OtherTenant}); got != 3*5 {
		t.Errorf("other's executions %v, want 15", got)
	}
	if got := total(ss, "bulkhead_tokens_total", map[string]string{"tenant_id": "tn_00"}); got != 1+2+3 {
		t.Errorf("tn_00's tokens %v, want 6", got)
	}
	if total(ss, "bulkhead_breaker_state", map[string]string{"tenant_id": metrics.OtherTenant}) != 0 {
		t.Errorf("a breaker state summed into other")
	}
}
