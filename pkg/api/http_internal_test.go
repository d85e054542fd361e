package api

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/bulkhead-dev/bulkhead/pkg/bulkhead"
)

// TestRespondRefusesWhatLambdaCannotReturn: a body whose proxy JSON would
// pass Lambda's 6 MB becomes a 500 in the error shape. The body is measured
// as Lambda sends it, escaped inside the proxy JSON: 1.6 million quotes are
// a 3.2 MB body but a 6.4 MB response.
func TestRespondRefusesWhatLambdaCannotReturn(t *testing.T) {
	cases := []struct {
		name string
		body any
		want int
	}{
		{"small", map[string]string{"a": "b"}, 200},
		{"3 MB of plain text", map[string]string{"a": strings.Repeat("x", 3_000_000)}, 200},
		{"3.2 MB of quotes", map[string]string{"a": strings.Repeat(`"`, 1_600_000)}, 500},
		{"7 MB of text", map[string]string{"a": strings.Repeat("x", 7_000_000)}, 500},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp := respond(200, c.body)
			if resp.StatusCode != c.want {
				t.Fatalf("status %d, want %d", resp.StatusCode, c.want)
			}
			whole, _ := json.Marshal(resp)
			if n := proxySize(resp); n != len(whole) {
				t.Errorf("proxySize = %d, the proxy JSON is %d bytes", n, len(whole))
			}
			if len(whole) > bulkhead.MaxResponseBytes {
				t.Errorf("a %d-byte response was sent", len(whole))
			}
			if c.want == 500 {
				var e struct {
					Error struct{ Code, Message string }
				}
				if err := json.Unmarshal([]byte(resp.Body), &e); err != nil || e.Error.Code != "internal" {
					t.Errorf("body %.200s, want an internal error", resp.Body)
				}
			}
		})
	}
}
