// Package metrics writes CloudWatch Embedded Metric Format (EMF) lines: one
// JSON log line per event, which CloudWatch turns into metrics without a
// PutMetricData call on the hot path. Metrics carry no tenant dimension (a
// metric per tenant costs money per tenant); tenant_id is a property, which
// Contributor Insights ranks.
package metrics

import (
	"encoding/json"
	"io"
	"sync"
	"time"
)

// Namespace is where the platform's metrics land (the CDK dashboard and
// alarms read it).
const Namespace = "Bulkhead"

// Metric names.
const (
	Tokens          = "Tokens"
	Spend           = "Spend" // USD
	Executions      = "Executions"
	QuotaViolations = "QuotaViolations"
	// TokensOverReserved is how many tokens a model reported beyond its
	// execution's reservation: the input bound failed to hold. Always zero
	// unless a provider counts in a way the bound does not cover.
	TokensOverReserved = "TokensOverReserved"
)

// Emitter writes EMF lines; a nil Emitter writes nothing (the local platform
// and tests that do not look at metrics).
type Emitter struct {
	mu  sync.Mutex
	w   io.Writer
	now func() time.Time
}

// New returns an emitter writing to w (os.Stdout in Lambda).
func New(w io.Writer, now func() time.Time) *Emitter {
	if now == nil {
		now = time.Now
	}
	return &Emitter{w: w, now: now}
}

// Emit writes one EMF line with the values, the dimension sets (each a list
// of property names; an empty set aggregates over all), and the properties.
func (e *Emitter) Emit(values map[string]float64, dimensions [][]string, props map[string]any) {
	if e == nil {
		return
	}
	line := map[string]any{}
	for k, v := range props {
		line[k] = v
	}
	defs := make([]map[string]string, 0, len(values))
	for name, v := range values {
		line[name] = v
		unit := "Count"
		if name == Spend {
			unit = "None"
		}
		defs = append(defs, map[string]string{"Name": name, "Unit": unit})
	}
	if dimensions == nil {
		dimensions = [][]string{{}}
	}
	line["_aws"] = map[string]any{
		"Timestamp": e.now().UnixMilli(),
		"CloudWatchMetrics": []map[string]any{{
			"Namespace": Namespace, "Dimensions": dimensions, "Metrics": defs,
		}},
	}
	b, err := json.Marshal(line)
	if err != nil {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	_, _ = e.w.Write(append(b, '\n'))
}
