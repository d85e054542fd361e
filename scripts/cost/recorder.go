package main

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"sync"
)

// opStat is what the requests of one operation cost.
type opStat struct {
	Requests   float64 `json:"requests"`
	ReadUnits  float64 `json:"read_units,omitempty"`
	WriteUnits float64 `json:"write_units,omitempty"`
	// ItemsWritten and ItemBytesWritten are the DynamoDB items a write
	// touched and their billed sizes (the larger of before and after).
	ItemsWritten     float64 `json:"items_written,omitempty"`
	ItemBytesWritten float64 `json:"item_bytes_written,omitempty"`
	// BytesIn and BytesOut are S3 request and response bodies.
	BytesIn  float64 `json:"bytes_in,omitempty"`
	BytesOut float64 `json:"bytes_out,omitempty"`
}

func (s *opStat) add(o opStat) {
	s.Requests += o.Requests
	s.ReadUnits += o.ReadUnits
	s.WriteUnits += o.WriteUnits
	s.ItemsWritten += o.ItemsWritten
	s.ItemBytesWritten += o.ItemBytesWritten
	s.BytesIn += o.BytesIn
	s.BytesOut += o.BytesOut
}

// per divides every figure by n (to six decimals, so that averages of
// whole numbers stay whole).
func (s opStat) per(n int) opStat {
	d := func(v float64) float64 { return math.Round(v/float64(n)*1e6) / 1e6 }
	return opStat{Requests: d(s.Requests), ReadUnits: d(s.ReadUnits), WriteUnits: d(s.WriteUnits), ItemsWritten: d(s.ItemsWritten),
		ItemBytesWritten: d(s.ItemBytesWritten), BytesIn: d(s.BytesIn), BytesOut: d(s.BytesOut)}
}

// tally is what requests cost, by operation ("DynamoDB.GetItem", "S3.PUT").
type tally map[string]opStat

func (t tally) add(op string, s opStat) {
	cur := t[op]
	cur.add(s)
	t[op] = cur
}

func (t tally) merge(o tally) {
	for op, s := range o {
		t.add(op, s)
	}
}

// ops lists the tally's operations in a fixed order.
func (t tally) ops() []string { return slices.Sorted(maps.Keys(t)) }

// recorder collects what the proxies count. Requests are counted towards
// the current measurement, except the circuit breaker's windows, which a
// process reads at most every few seconds per tenant whatever the
// execution, so they are kept apart (periodic).
type recorder struct {
	mu       sync.Mutex
	current  tally
	periodic tally
	// background counts requests of the platform's own background passes
	// (lease reclaim, monthly close), which must not fall in a measurement.
	background int
	warnings   []string
}

func newRecorder() *recorder { return &recorder{current: tally{}, periodic: tally{}} }

func (r *recorder) add(op string, s opStat, periodic, background bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if periodic {
		r.periodic.add(op, s)
	} else {
		r.current.add(op, s)
	}
	if background {
		r.background++
	}
}

func (r *recorder) warn(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.warnings = append(r.warnings, fmt.Sprintf(format, args...))
}

// take returns what was counted since the last take, and how many
// background requests were seen in all.
func (r *recorder) take() (tally, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	t := r.current
	r.current = tally{}
	return t, r.background
}

// takePeriodic returns the periodic reads counted since the last call.
func (r *recorder) takePeriodic() tally {
	r.mu.Lock()
	defer r.mu.Unlock()
	t := r.periodic
	r.periodic = tally{}
	return t
}

func (r *recorder) warningList() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.warnings)
}
