package kb_test

import (
	"testing"

	"github.com/bulkhead-dev/bulkhead/pkg/kb"
)

func TestTokenizeFoldsInflections(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"refunds", "refund"}, {"refunded", "refund"}, {"refund", "refund"}, {"boxes", "box"},
		{"status", "status"}, {"access", "access"}, {"days", "days"}, {"returning", "return"},
	} {
		if got := kb.Tokenize(c.in); len(got) != 1 || got[0] != c.want {
			t.Errorf("Tokenize(%q) = %q, want [%q]", c.in, got, c.want)
		}
	}
	var idx kb.Index
	idx.Add("refunds.md", "Refunds are paid within 14 days of a return.")
	idx.Add("shipping.md", "Orders ship in two working days.")
	if res := idx.Search("refund days", 2); len(res) == 0 || res[0].DocID != "refunds.md" {
		t.Errorf("search %v: want refunds.md first", res)
	}
}
