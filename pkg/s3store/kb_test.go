package s3store_test

import (
	"context"
	"reflect"
	"testing"

	"github.com/bulkhead-dev/bulkhead/pkg/bulkhead"
)

func TestKBObjects(t *testing.T) {
	env := newTestEnv(t)
	ctx := context.Background()
	a, b := env.store.Tenant("ten_a"), env.store.Tenant("ten_b")

	if err := a.PutKBDocument(ctx, "guide.md", "rev_1", "text/markdown", []byte("# Guide")); err != nil {
		t.Fatal(err)
	}
	if err := a.PutKBDocument(ctx, "guide", "rev_2", "text/plain", []byte("plain")); err != nil {
		t.Fatal(err)
	}
	if err := a.PutKBIndex(ctx, "000000000001-ix_1", []byte("BKB1\x00\x00")); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"tenants/ten_a/kb/docs/guide.md/rev_1",
		"tenants/ten_a/kb/docs/guide/rev_2",
		"tenants/ten_a/kb/index/000000000001-ix_1",
	}
	if got := env.keys(t, ""); !reflect.DeepEqual(got, want) {
		t.Errorf("keys:\n got %q\nwant %q", got, want)
	}
	if got, err := a.KBDocument(ctx, "guide.md", "rev_1"); err != nil || string(got) != "# Guide" {
		t.Errorf("KBDocument = %q, %v", got, err)
	}
	if got, err := a.KBIndex(ctx, "000000000001-ix_1"); err != nil || string(got) != "BKB1\x00\x00" {
		t.Errorf("KBIndex = %q, %v", got, err)
	}
	// Another tenant's store builds its own keys: the same names are not found.
	if _, err := b.KBDocument(ctx, "guide.md", "rev_1"); !bulkhead.IsCode(err, bulkhead.NotFound) {
		t.Errorf("tenant b reading a's document: %v, want NotFound", err)
	}
	if _, err := b.KBIndex(ctx, "000000000001-ix_1"); !bulkhead.IsCode(err, bulkhead.NotFound) {
		t.Errorf("tenant b reading a's index: %v, want NotFound", err)
	}

	if err := a.DeleteKBDocument(ctx, "guide.md", "rev_1"); err != nil {
		t.Fatal(err)
	}
	if err := a.DeleteKBIndex(ctx, "000000000001-ix_1"); err != nil {
		t.Fatal(err)
	}
	if err := a.DeleteKBIndex(ctx, "000000000001-ix_1"); err != nil {
		t.Errorf("deleting a missing index: %v, want nil", err)
	}
	if got := env.keys(t, ""); !reflect.DeepEqual(got, want[1:2]) {
		t.Errorf("keys after deletes: %q, want %q", got, want[1:2])
	}
}

func TestKBRefusesBadNames(t *testing.T) {
	env := newTestEnv(t)
	ctx := context.Background()
	a := env.store.Tenant("ten_a")
	for _, c := range []struct{ doc, rev string }{{"..", "rev_1"}, {"a/b", "rev_1"}, {"", "rev_1"}, {"ok", "../x"}, {"ok", ""}} {
		if err := a.PutKBDocument(ctx, c.doc, c.rev, "text/plain", []byte("x")); !bulkhead.IsCode(err, bulkhead.Invalid) {
			t.Errorf("PutKBDocument(%q, %q) = %v, want Invalid", c.doc, c.rev, err)
		}
	}
	if err := a.PutKBIndex(ctx, "../../ten_b/kb/index/x", []byte("x")); !bulkhead.IsCode(err, bulkhead.Invalid) {
		t.Errorf("PutKBIndex with a path = %v, want Invalid", err)
	}
	if got := env.keys(t, ""); len(got) != 0 {
		t.Errorf("refused writes left %q", got)
	}
}
