// Package metrics writes CloudWatch Embedded Metric Format (EMF) lines: one
// JSON log line per event, which CloudWatch turns into metrics without a
// PutMetricData call on the hot path. Metrics carry no tenant dimension (a
// metric per tenant costs money per tenant); tenant_id is a property, which
// Contributor Insights ranks.
//
// An Emitter may also feed a Registry, which keeps the same numbers in
// process and writes them in the Prometheus text format (the local
// platform's /metrics): one definition of the metrics, two exporters.
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
	// Requests counts API requests (properties function, status_class).
	Requests = "Requests"
	// RequestLatency is an API request's latency, in milliseconds.
	RequestLatency = "RequestLatency"
	// AdmissionLatency is an execution's admission latency, in milliseconds.
	AdmissionLatency = "AdmissionLatency"
	// StoreErrors counts store calls that failed for the store's reason
	// after the SDK's retries (properties service, operation and code).
	StoreErrors = "StoreErrors"
	// BreakerState is a tenant's circuit breaker state when it is read or
	// changed: 0 closed, 1 open, 2 half-open.
	BreakerState = "BreakerState"
)

// BreakerStateValue is the BreakerState value of a breaker state as the
// store names it ("closed", "open", "half_open").
func BreakerStateValue(state string) float64 {
	switch state {
	case "open":
		return 1
	case "half_open":
		return 2
	}
	return 0
}

// Emitter writes EMF lines and records into a Registry, each when it has
// one; a nil Emitter writes nothing (tests that do not look at metrics).
type Emitter struct {
	mu  sync.Mutex
	w   io.Writer
	reg *Registry
	now func() time.Time
}

// New returns an emitter writing to w (os.Stdout in Lambda).
func New(w io.Writer, now func() time.Time) *Emitter {
	if now == nil {
		now = time.Now
	}
	return &Emitter{w: w, now: now}
}

// NewRegistryEmitter returns an emitter that records into reg and writes no
// EMF line (the local platform).
func NewRegistryEmitter(reg *Registry) *Emitter {
	return &Emitter{reg: reg, now: time.Now}
}

// Emit writes one EMF line with the values, the dimension sets (each a list
// of property names; an empty set aggregates over all), and the properties.
func (e *Emitter) Emit(values map[string]float64, dimensions [][]string, props map[string]any) {
	if e == nil {
		return
	}
	e.reg.Record(values, props)
	if e.w == nil {
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
		switch name {
		case Spend, BreakerState:
			unit = "None"
		case RequestLatency, AdmissionLatency:
			unit = "Milliseconds"
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
