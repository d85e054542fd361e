package bulkhead_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/bulkhead-dev/bulkhead/pkg/bulkhead"
)

// idSuffix is what NewID appends after the prefix and "_": 16 characters of
// lowercase base32, nothing that could reach into another key or path.
var idSuffix = regexp.MustCompile(`^[a-z2-7]{16}$`)

// FuzzValidID: ValidID accepts exactly prefix_ + 16 base32 characters (the
// shape of NewID), so an id from a path or body never carries '/', '#', '%'
// or anything else into a key; and every id NewID makes is valid.
func FuzzValidID(f *testing.F) {
	for _, c := range [][2]string{
		{"agt", "agt_abcdefghijklmnop"}, {"agt", "agt_aaaaaaaaaaaaaaaa"}, {"conv", "conv_2345672345672345"},
		{"agt", ""}, {"agt", "agt_"}, {"agt", "conv_aaaaaaaaaaaaaaaa"}, {"agt", "agt_AAAAAAAAAAAAAAAA"},
		{"agt", "agt_aaaaaaaaaaaaaaa/"}, {"agt", "agt_aaaaaaaaaaaaaaaaa"}, {"agt", "agt_aaaaaaaaaaaaaaa1"},
		{"agt", "agt_aaaaaaaaaaaaaa%2F"}, {"tn", "tn_aaaaaaaaaaaaaaa#"}, {"key", "key_aaaaaaaaaaaaaaaé"},
		{"", "_aaaaaaaaaaaaaaaa"}, {"a_b", "a_b_aaaaaaaaaaaaaaaa"},
	} {
		f.Add(c[0], c[1])
	}
	f.Fuzz(func(t *testing.T, prefix, s string) {
		rest, hasPrefix := strings.CutPrefix(s, prefix+"_")
		want := hasPrefix && idSuffix.MatchString(rest)
		if got := bulkhead.ValidID(prefix, s); got != want {
			t.Fatalf("ValidID(%q, %q) = %v, want %v", prefix, s, got, want)
		}
		id := bulkhead.NewID(prefix)
		if !bulkhead.ValidID(prefix, id) {
			t.Fatalf("NewID(%q) = %q, which ValidID refuses", prefix, id)
		}
		if s != "" && bulkhead.ValidID(prefix, id+s) {
			t.Fatalf("ValidID accepted %q, a valid id with %q appended", id+s, s)
		}
	})
}
