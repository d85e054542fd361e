package dynamo

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bulkhead-dev/bulkhead/pkg/bulkhead"
)

// TestAuditChangesRedactSecrets: whatever a caller passes, no key, secret,
// hash or header value reaches an entry; header names and plain fields do.
func TestAuditChangesRedactSecrets(t *testing.T) {
	key := "bk_live_tn_abc_" + strings.Repeat("Q", 43)
	got, err := scrubChanges(map[string]bulkhead.Change{
		"api_key":         {After: key},
		"signing_secrets": {Before: []string{"whsec_old"}, After: []string{"whsec_new"}},
		"hash":            {After: "deadbeef"},
		"note":            {After: "the key is " + key},
		"config":          {After: map[string]any{"headers": map[string]any{"Authorization": "Bearer xyz", "X-Team": "t1"}, "timeout_ms": 5}},
		"headers":         {Before: map[string]string{"X-Api-Token": "tok"}},
		"name":            {Before: "a", After: "b"},
		"system_prompt":   {After: strings.Repeat("p", 3*maxAuditString)},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"bk_live_", "whsec", "deadbeef", "Bearer xyz", "tok\"", "t1"} {
		if strings.Contains(got, secret) {
			t.Errorf("%q leaked into %s", secret, got)
		}
	}
	for _, kept := range []string{`"name":{"before":"a","after":"b"}`, `"X-Team"`, `"X-Api-Token"`, `"timeout_ms":5`, `bytes]`} {
		if !strings.Contains(got, kept) {
			t.Errorf("%s is missing from %s", kept, got)
		}
	}
	if len(got) > 2*maxAuditString {
		t.Errorf("a long value was not cut: %d bytes", len(got))
	}
}

// TestAuditLogIsAppendOnly: no code of the package deletes or updates an
// audit item. Entries are only put (conditionally) by audit.go, and no
// other file names their sort key prefix.
func TestAuditLogIsAppendOnly(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") || f == "keys.go" || f == "audit.go" {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"prefixAudit", "auditSK(", "auditPK(", "auditItem"} {
			if strings.Contains(string(src), name) {
				t.Errorf("%s uses %s: audit items are written by audit.go only", f, name)
			}
		}
	}
	fset := token.NewFileSet()
	file, err := parser.ParseFile(fset, "audit.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	ast.Inspect(file, func(n ast.Node) bool {
		if sel, ok := n.(*ast.SelectorExpr); ok {
			switch sel.Sel.Name {
			case "DeleteItem", "UpdateItem", "Delete", "Update", "BatchWriteItem":
				t.Errorf("audit.go: %s at %s: the audit log has no update or delete path", sel.Sel.Name, fset.Position(sel.Pos()))
			}
		}
		return true
	})
}

// TestRefusalSetRemembersOneMinute: the first refusal of a (tenant, quota)
// in a minute is new, the others are not; a new minute starts afresh, and
// a forgotten one (its write failed) is tried again.
func TestRefusalSetRemembersOneMinute(t *testing.T) {
	var r refusalSet
	if !r.first(10, "a") || r.first(10, "a") || !r.first(10, "b") {
		t.Fatal("within one minute")
	}
	if !r.first(11, "a") || r.first(11, "a") {
		t.Error("the next minute")
	}
	r.forget(11, "a")
	if !r.first(11, "a") {
		t.Error("after forget")
	}
}
