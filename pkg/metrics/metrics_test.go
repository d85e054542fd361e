package metrics_test

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/bulkhead-dev/bulkhead/pkg/metrics"
)

// TestEmitWritesEMF checks the line CloudWatch reads.
func TestEmitWritesEMF(t *testing.T) {
	var buf bytes.Buffer
	at := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	e := metrics.New(&buf, func() time.Time { return at })
	e.Emit(map[string]float64{metrics.QuotaViolations: 1}, [][]string{{}, {"quota_type"}}, map[string]any{"quota_type": "tokens", "tenant_id": "tn_a"})
	var line struct {
		AWS struct {
			Timestamp         int64
			CloudWatchMetrics []struct {
				Namespace  string
				Dimensions [][]string
				Metrics    []struct{ Name, Unit string }
			}
		} `json:"_aws"`
		QuotaViolations float64
		QuotaType       string `json:"quota_type"`
		TenantID        string `json:"tenant_id"`
	}
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatalf("%v: %s", err, buf.String())
	}
	m := line.AWS.CloudWatchMetrics
	if line.AWS.Timestamp != at.UnixMilli() || len(m) != 1 || m[0].Namespace != "Bulkhead" || len(m[0].Dimensions) != 2 ||
		m[0].Metrics[0].Name != "QuotaViolations" || line.QuotaViolations != 1 || line.QuotaType != "tokens" || line.TenantID != "tn_a" {
		t.Errorf("EMF line: %s", buf.String())
	}
	var nilEmitter *metrics.Emitter
	nilEmitter.Emit(map[string]float64{metrics.Tokens: 1}, nil, nil) // writes nothing, does not panic
}
