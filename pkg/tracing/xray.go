package tracing

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"math/rand/v2"
	"strings"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// XRayIDGenerator makes X-Ray trace ids: the first 4 bytes are the trace's
// start in epoch seconds (X-Ray rejects older traces), the other 12 random.
// (OpenTelemetry's contrib module for this is unowned and deprecated; the
// format is a few lines.)
type XRayIDGenerator struct{}

var _ sdktrace.IDGenerator = XRayIDGenerator{}

// NewIDs returns a new X-Ray trace id and a span id.
func (XRayIDGenerator) NewIDs(context.Context) (trace.TraceID, trace.SpanID) {
	var tid trace.TraceID
	binary.BigEndian.PutUint32(tid[:4], uint32(time.Now().Unix()))
	binary.BigEndian.PutUint32(tid[4:8], rand.Uint32())
	binary.BigEndian.PutUint64(tid[8:], rand.Uint64())
	return tid, newSpanID()
}

// NewSpanID returns a span id for a span of an existing trace.
func (XRayIDGenerator) NewSpanID(context.Context, trace.TraceID) trace.SpanID { return newSpanID() }

func newSpanID() trace.SpanID {
	var sid trace.SpanID
	for sid == (trace.SpanID{}) {
		binary.BigEndian.PutUint64(sid[:], rand.Uint64())
	}
	return sid
}

// parseTraceHeader reads an X-Ray trace header
// (Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1,
// as Lambda gives each invocation) as the remote parent of a span. Only
// Sampled=1 is sampled; a header without a valid Root and Parent gives no
// parent.
func parseTraceHeader(h string) (trace.SpanContext, bool) {
	var cfg trace.SpanContextConfig
	var root, parent bool
	for part := range strings.SplitSeq(h, ";") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "Root":
			// 1-<8 hex digits: epoch seconds>-<24 hex digits>
			if len(v) != 35 || v[0] != '1' || v[1] != '-' || v[10] != '-' {
				return trace.SpanContext{}, false
			}
			b, err := hex.DecodeString(v[2:10] + v[11:])
			if err != nil {
				return trace.SpanContext{}, false
			}
			copy(cfg.TraceID[:], b)
			root = true
		case "Parent":
			b, err := hex.DecodeString(v)
			if err != nil || len(b) != len(cfg.SpanID) {
				return trace.SpanContext{}, false
			}
			copy(cfg.SpanID[:], b)
			parent = true
		case "Sampled":
			if v == "1" {
				cfg.TraceFlags = trace.FlagsSampled
			}
		}
	}
	cfg.Remote = true
	sc := trace.NewSpanContext(cfg)
	return sc, root && parent && sc.IsValid()
}

// XRayTraceID formats a trace id as X-Ray writes it: 1-<8 hex>-<24 hex>.
func XRayTraceID(id trace.TraceID) string {
	s := id.String()
	return "1-" + s[:8] + "-" + s[8:]
}
