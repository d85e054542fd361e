package mcptool_test

import (
	"strings"
	"testing"

	"github.com/bulkhead-dev/bulkhead/pkg/mcptool"
)

func TestToolNameAndSplit(t *testing.T) {
	long := strings.Repeat("a", mcptool.MaxToolNameLength-len("srv__"))
	cases := []struct {
		server, tool, want string
	}{
		{"orders", "lookup_order", "orders__lookup_order"},
		{"my-crm", "find", "my-crm__find"},
		{"A1", "x", "A1__x"},
		{"srv", "__private", "srv____private"},
		{"srv", "a__b", "srv__a__b"},
		{"srv", long, "srv__" + long},
		{"srv", long + "a", ""},            // 65 characters
		{"srv", "dotted.name", ""},         // providers refuse dots
		{"srv", "", ""},                    // no tool
		{"", "tool", ""},                   // no server
		{"my_crm", "find", ""},             // underscore in a server name
		{strings.Repeat("s", 33), "t", ""}, // server name too long
		{"srv", "sp ace", ""},              // space
		{"srv", "ünicode", ""},             // non-ASCII
		{strings.Repeat("s", mcptool.MaxServerNameLength), "t", strings.Repeat("s", 32) + "__t"},
	}
	for _, c := range cases {
		got := mcptool.ToolName(c.server, c.tool)
		if got != c.want {
			t.Errorf("ToolName(%q, %q) = %q, want %q", c.server, c.tool, got, c.want)
		}
		if got == "" {
			continue
		}
		server, tool, ok := mcptool.SplitToolName(got)
		if !ok || server != c.server || tool != c.tool {
			t.Errorf("SplitToolName(%q) = %q, %q, %v; want %q, %q, true", got, server, tool, ok, c.server, c.tool)
		}
	}
}

func TestSplitToolNameRefusesWhatToolNameCannotBuild(t *testing.T) {
	for _, full := range []string{
		"", "orders", "orders__", "__tool", "my_crm__find", "srv__dotted.name",
		"srv__" + strings.Repeat("a", mcptool.MaxToolNameLength),
		"srv__a b",
	} {
		if s, tool, ok := mcptool.SplitToolName(full); ok {
			t.Errorf("SplitToolName(%q) = %q, %q, true; want false", full, s, tool)
		}
	}
}
