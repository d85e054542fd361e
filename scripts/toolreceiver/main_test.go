package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/bulkhead-dev/bulkhead/pkg/toolsig"
)

// TestReceiverVerifiesThePlatformsSignature: what the platform signs, the
// recipe accepts; anything else it refuses.
func TestReceiverVerifiesThePlatformsSignature(t *testing.T) {
	now := time.Unix(1764547200, 0)
	secret, other := toolsig.NewSecret(), toolsig.NewSecret()
	h := handler(secret, func() time.Time { return now })
	body := `{"tool":"order_status","arguments":{"query":"1234"},"call_id":"call_1","execution_id":"exec_1","agent_id":"agt_1","conversation_id":"conv_1"}`
	cases := []struct {
		name, sig, body string
		want            int
	}{
		{"signed", toolsig.Sign([]string{secret}, now, []byte(body)), body, 200},
		{"rotation", toolsig.Sign([]string{other, secret}, now, []byte(body)), body, 200},
		{"other secret", toolsig.Sign([]string{other}, now, []byte(body)), body, 401},
		{"stale", toolsig.Sign([]string{secret}, now.Add(-10*time.Minute), []byte(body)), body, 401},
		{"body changed", toolsig.Sign([]string{secret}, now, []byte(body)), strings.Replace(body, "1234", "9999", 1), 401},
		{"unsigned", "", body, 401},
	}
	for _, c := range cases {
		req := httptest.NewRequest(http.MethodPost, "/hook", strings.NewReader(c.body))
		req.Header.Set(toolsig.Header, c.sig)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != c.want {
			t.Errorf("%s: %d %s, want %d", c.name, w.Code, w.Body, c.want)
		}
		if c.want == 200 && !strings.Contains(w.Body.String(), `"order":"1234"`) {
			t.Errorf("%s: answer %s", c.name, w.Body)
		}
	}
}
