package local

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"net/http"
	"strings"

	"github.com/bulkhead-dev/bulkhead/pkg/bulkhead"
	"github.com/bulkhead-dev/bulkhead/pkg/metrics"
)

// MetricsPath is where the local platform serves its metrics in the
// Prometheus text format (in AWS the same metrics are EMF lines).
const MetricsPath = "/metrics"

// metricsHandler serves GET (and HEAD) /metrics from reg to a client with the admin
// token, and every other request with next.
func metricsHandler(reg *metrics.Registry, adminToken string, next http.Handler) http.Handler {
	want := sha256.Sum256([]byte(adminToken))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Any other method is the API's, which answers it as an unknown route.
		if r.URL.Path != MetricsPath || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
			next.ServeHTTP(w, r)
			return
		}
		scheme, token, ok := strings.Cut(strings.TrimSpace(r.Header.Get("Authorization")), " ")
		// Hash both sides so the comparison is constant time in the length too.
		got := sha256.Sum256([]byte(strings.TrimSpace(token)))
		if !ok || !strings.EqualFold(scheme, "Bearer") || subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
			writeError(w, http.StatusUnauthorized, string(bulkhead.Unauthenticated), "Missing or invalid admin token")
			return
		}
		w.Header().Set("Content-Type", metrics.ContentType)
		w.Header().Set("Cache-Control", "no-store")
		if r.Method == http.MethodHead {
			return
		}
		_ = reg.WriteText(w)
	})
}

// writeError answers with the API's error shape.
func writeError(w http.ResponseWriter, status int, code, message string) {
	b, _ := json.Marshal(map[string]any{"error": map[string]string{"code": code, "message": message}})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
