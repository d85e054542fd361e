package bulkhead_test

import (
	"encoding/json"
	"testing"

	"github.com/bulkhead-dev/bulkhead/pkg/bulkhead"
)

// TestJSONStringLen checks the count against encoding/json itself, on the
// characters it escapes and on invalid UTF-8.
func TestJSONStringLen(t *testing.T) {
	for _, s := range []string{"", "plain", `"\`, "<>&", "\x00\x01\x1f\b\f\n\r\t", "é€𝄞", "\u2028\u2029", "\xff\xfe", "a\xe2\x82", "<" + string(rune(0x7f))} {
		checkJSONStringLen(t, s)
	}
}

// FuzzJSONStringLen: for any string, the count is what json.Marshal writes.
func FuzzJSONStringLen(f *testing.F) {
	for _, s := range []string{"", "<script>", "\u2028", "\xff", `{"a":"b"}`} {
		f.Add(s)
	}
	f.Fuzz(checkJSONStringLen)
}

func checkJSONStringLen(t *testing.T, s string) {
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := bulkhead.JSONStringLen(s), len(b)-2; got != want {
		t.Errorf("JSONStringLen(%q) = %d, want %d (%s)", s, got, want, b)
	}
}
