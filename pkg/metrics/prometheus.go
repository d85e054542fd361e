package metrics

import (
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// DefaultTenantLabels is how many tenants a Registry labels by their own id
// when not told otherwise (BULKHEAD_METRICS_TENANTS).
const DefaultTenantLabels = 50

// OtherTenant is the tenant_id label of the tenants beyond the bound.
const OtherTenant = "other"

// ContentType is the Content-Type of the text exposition format.
const ContentType = "text/plain; version=0.0.4; charset=utf-8"

// Registry keeps the metrics an Emitter records, in process, and writes them
// in the Prometheus text exposition format (the local platform's /metrics).
// Counters count from the registry's creation (the process's start). It is
// safe for concurrent use.
//
// Tenant label cardinality is bounded: the first max tenants to record a
// sample keep their own tenant_id label for the life of the process; every
// later tenant's samples are added to tenant_id="other". A tenant's label
// never changes once given, so every series is a plain sum of the samples
// sent to it and the totals over all labels equal the totals recorded: no
// sample is ever moved from one series to another.
type Registry struct {
	mu       sync.Mutex
	max      int
	labelled map[string]bool
	series   map[string]*series // by family name + rendered labels
}

// NewRegistry returns an empty registry labelling at most maxTenants tenants
// by id (DefaultTenantLabels when maxTenants <= 0).
func NewRegistry(maxTenants int) *Registry {
	if maxTenants <= 0 {
		maxTenants = DefaultTenantLabels
	}
	return &Registry{max: maxTenants, labelled: map[string]bool{}, series: map[string]*series{}}
}

type kind string

const (
	counter   kind = "counter"
	gauge     kind = "gauge"
	histogram kind = "histogram"
)

// family is the Prometheus form of one EMF metric.
type family struct {
	name   string
	help   string
	kind   kind
	labels []string // label names, read from the EMF line's properties
	scale  float64  // multiplies the EMF value (milliseconds to seconds)
}

// latencyBuckets are the histograms' upper bounds, in seconds.
var latencyBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300}

// families maps each EMF metric name to its Prometheus family: the one
// definition both exporters share.
var families = map[string]family{
	Tokens:             {"bulkhead_tokens_total", "Tokens used by settled executions (input and output).", counter, []string{"tenant_id"}, 1},
	Spend:              {"bulkhead_spend_usd_total", "Spend of settled executions, in USD.", counter, []string{"tenant_id"}, 1},
	Executions:         {"bulkhead_executions_total", "Settled executions by status.", counter, []string{"tenant_id", "status"}, 1},
	QuotaViolations:    {"bulkhead_quota_violations_total", "Executions refused by a quota, by quota type.", counter, []string{"tenant_id", "quota_type"}, 1},
	TokensOverReserved: {"bulkhead_tokens_over_reserved_total", "Tokens a model reported beyond its execution's reservation.", counter, []string{"tenant_id", "model"}, 1},
	Requests:           {"bulkhead_requests_total", "API requests by function and status class.", counter, []string{"tenant_id", "function", "status_class"}, 1},
	RequestLatency:     {"bulkhead_request_duration_seconds", "API request latency by function.", histogram, []string{"tenant_id", "function"}, 0.001},
	AdmissionLatency:   {"bulkhead_admission_duration_seconds", "Latency of an execution's admission (the store's transaction and its retries).", histogram, nil, 0.001},
	StoreErrors:        {"bulkhead_store_errors_total", "Store calls that failed for the store's reason (server error, throttling, timeout, unreachable) after the SDK's retries.", counter, []string{"service", "operation", "code"}, 1},
	BreakerState:       {"bulkhead_breaker_state", "Tenant circuit breaker state: 0 closed, 1 open, 2 half-open.", gauge, []string{"tenant_id"}, 1},
}

type series struct {
	fam    family
	labels string // rendered, without braces
	value  float64
	// Histograms: counts per bucket (not cumulative), sum and count.
	buckets []uint64
	sum     float64
	count   uint64
}

// Record adds one EMF event's values: the same call that writes the EMF line.
// Values of names without a family are ignored; so is a gauge of a tenant
// beyond the bound (a sum of states means nothing).
func (r *Registry) Record(values map[string]float64, props map[string]any) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for name, v := range values {
		fam, ok := families[name]
		if !ok || math.IsNaN(v) {
			continue
		}
		var b strings.Builder
		skip := false
		for i, l := range fam.labels {
			val := propString(props[l])
			if l == "tenant_id" {
				val = r.tenantLabel(val)
				if fam.kind == gauge && val == OtherTenant {
					skip = true
				}
			}
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(l)
			b.WriteString(`="`)
			b.WriteString(escapeLabel(val))
			b.WriteByte('"')
		}
		if skip {
			continue
		}
		key := fam.name + "{" + b.String() + "}"
		s := r.series[key]
		if s == nil {
			s = &series{fam: fam, labels: b.String()}
			if fam.kind == histogram {
				s.buckets = make([]uint64, len(latencyBuckets))
			}
			r.series[key] = s
		}
		v *= fam.scale
		switch fam.kind {
		case counter:
			s.value += v
		case gauge:
			s.value = v
		case histogram:
			if i := sort.SearchFloat64s(latencyBuckets, v); i < len(latencyBuckets) {
				s.buckets[i]++
			}
			s.sum += v
			s.count++
		}
	}
}

// tenantLabel is the tenant_id label of tenant: its own id if it has one or
// there is room for one more, else OtherTenant. Requests without a tenant
// (operator and public routes) keep an empty label, outside the bound.
func (r *Registry) tenantLabel(tenant string) string {
	if tenant == "" || r.labelled[tenant] {
		return tenant
	}
	if len(r.labelled) < r.max {
		r.labelled[tenant] = true
		return tenant
	}
	return OtherTenant
}

func propString(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		return v
	default:
		return fmt.Sprint(v)
	}
}

// WriteText writes every series in the text exposition format (version
// 0.0.4): families in name order, each with its HELP and TYPE lines.
func (r *Registry) WriteText(w io.Writer) error {
	r.mu.Lock()
	byFamily := map[string][]*series{}
	for _, s := range r.series {
		c := *s
		c.buckets = append([]uint64(nil), s.buckets...)
		byFamily[s.fam.name] = append(byFamily[s.fam.name], &c)
	}
	r.mu.Unlock()
	var b strings.Builder
	names := make([]string, 0, len(byFamily))
	for n := range byFamily {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		ss := byFamily[n]
		sort.Slice(ss, func(i, j int) bool { return ss[i].labels < ss[j].labels })
		fam := ss[0].fam
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s %s\n", fam.name, escapeHelp(fam.help), fam.name, fam.kind)
		for _, s := range ss {
			if fam.kind != histogram {
				fmt.Fprintf(&b, "%s%s %s\n", fam.name, braces(s.labels), formatFloat(s.value))
				continue
			}
			var cum uint64
			for i, ub := range latencyBuckets {
				cum += s.buckets[i]
				fmt.Fprintf(&b, "%s_bucket%s %d\n", fam.name, braces(join(s.labels, `le="`+formatFloat(ub)+`"`)), cum)
			}
			fmt.Fprintf(&b, "%s_bucket%s %d\n", fam.name, braces(join(s.labels, `le="+Inf"`)), s.count)
			fmt.Fprintf(&b, "%s_sum%s %s\n", fam.name, braces(s.labels), formatFloat(s.sum))
			fmt.Fprintf(&b, "%s_count%s %d\n", fam.name, braces(s.labels), s.count)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func braces(labels string) string {
	if labels == "" {
		return ""
	}
	return "{" + labels + "}"
}

func join(a, b string) string {
	if a == "" {
		return b
	}
	return a + "," + b
}

func formatFloat(v float64) string {
	switch {
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

// escapeLabel escapes a label value: backslash, double quote and line feed.
func escapeLabel(s string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(s)
}

// escapeHelp escapes HELP text: backslash and line feed.
func escapeHelp(s string) string {
	return strings.NewReplacer(`\`, `\\`, "\n", `\n`).Replace(s)
}
