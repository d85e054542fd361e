package embedded

import (
	"testing"
)

// TestDecodeFlatItemReadsPlatformItems checks that the items the platform
// writes take the fast path (if they fell back, starts would silently be as
// slow as before).
func TestDecodeFlatItemReadsPlatformItems(t *testing.T) {
	for _, line := range []string{
		`{"PK":{"S":"TENANT#t1"},"SK":{"S":"USAGE#2026-05#000000001"},"tokens_in":{"N":"1834"},"at":{"S":"2026-05-14T10:11:12.123456789Z"}}`,
		`{"PK":{"S":"TENANT#t1"},"SK":{"S":"RUN#1"},"ttl":{"N":"1780000000"},"open":{"BOOL":true},"gone":{"NULL":true}}`,
		`{}`,
	} {
		m, err := decodeFlatItem([]byte(line))
		if err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		if line != `{}` && (m["PK"] == nil || m["PK"].S == nil || *m["PK"].S != "TENANT#t1") {
			t.Fatalf("%s: PK decoded as %s", line, dump(m))
		}
	}
	for _, line := range []string{`{"a":{"L":[]}}`, `{"a":{"S":"x\"y"}}`, `{ "a":{"S":"x"}}`, `{"a":{"S":"x"},}`} {
		if _, err := decodeFlatItem([]byte(line)); err == nil {
			t.Errorf("%s: the fast path read it", line)
		}
	}
}
