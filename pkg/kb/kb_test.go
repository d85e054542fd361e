package kb_test

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/bulkhead-dev/bulkhead/pkg/kb"
)

const (
	refunds = `# Refunds

Customers may ask for a refund within 30 days of purchase. Refunds are paid to the original card.

A refund for an annual plan is prorated by the months left.`
	shipping = `# Shipping

Orders ship from the Lyon warehouse within two business days. Express shipping costs extra.`
	security = `# Security

Passwords are hashed with Argon2. Report a vulnerability to the security team; we answer within a day.`
)

func mustIndex(tb testing.TB, docs map[string]string) *kb.Index {
	tb.Helper()
	var ix kb.Index
	for id, text := range docs {
		ix.Add(id, text)
	}
	return &ix
}

// search runs the query on both forms of the index and checks they agree.
func search(tb testing.TB, ix *kb.Index, query string, k int) []kb.Result {
	tb.Helper()
	mem := ix.Search(query, k)
	enc, err := kb.SearchEncoded(ix.Encode(), query, k)
	if err != nil {
		tb.Fatalf("SearchEncoded(%q): %v", query, err)
	}
	if !reflect.DeepEqual(mem, enc) {
		tb.Fatalf("Search(%q) and SearchEncoded disagree:\n mem %+v\n enc %+v", query, mem, enc)
	}
	return mem
}

func docsOf(rs []kb.Result) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.DocID)
	}
	return out
}

func TestSearchRanksTheDocumentAboutTheQueryFirst(t *testing.T) {
	ix := mustIndex(t, map[string]string{"refunds.md": refunds, "shipping.md": shipping, "security.md": security})
	for _, c := range []struct{ query, want string }{
		{"How do I get a REFUND?", "refunds.md"},
		{"express shipping warehouse", "shipping.md"},
		{"report a vulnerability", "security.md"},
		{"argon2 passwords", "security.md"},
	} {
		got := search(t, ix, c.query, 5)
		if len(got) == 0 || got[0].DocID != c.want {
			t.Errorf("Search(%q) = %v, want %s first", c.query, docsOf(got), c.want)
			continue
		}
		if got[0].Score <= 0 || !strings.Contains(got[0].Passage, strings.SplitN(c.want, ".", 2)[0][1:]) {
			t.Errorf("Search(%q) first result %+v: want a positive score and the document's passage", c.query, got[0])
		}
		for i := 1; i < len(got); i++ {
			if got[i].Score > got[i-1].Score {
				t.Errorf("Search(%q): results not best first: %+v", c.query, got)
			}
		}
	}
	if got := search(t, ix, "the of and", 5); len(got) != 0 {
		t.Errorf("a query of stopwords found %v, want nothing", docsOf(got))
	}
	if got := search(t, ix, "kangaroo", 5); len(got) != 0 {
		t.Errorf("an absent term found %v, want nothing", docsOf(got))
	}
}

func TestRemoveAndReplace(t *testing.T) {
	ix := mustIndex(t, map[string]string{"refunds.md": refunds, "shipping.md": shipping})
	ix.Remove("refunds.md")
	if got := search(t, ix, "refund", 5); len(got) != 0 {
		t.Errorf("after Remove, refund finds %v", docsOf(got))
	}
	if ix.Has("refunds.md") || ix.Len() != 1 {
		t.Errorf("after Remove: Has = %v, Len = %d", ix.Has("refunds.md"), ix.Len())
	}
	ix.Remove("never-added")

	ix.Add("shipping.md", "Orders now ship by drone from Oslo.")
	if got := search(t, ix, "warehouse Lyon", 5); len(got) != 0 {
		t.Errorf("replaced text still found: %+v", got)
	}
	got := search(t, ix, "drone", 5)
	if len(got) != 1 || got[0].DocID != "shipping.md" || got[0].Passage != "Orders now ship by drone from Oslo." {
		t.Errorf("Search(drone) after replace = %+v", got)
	}
	ix.Add("shipping.md", "  \n\n ... \n")
	if ix.Has("shipping.md") {
		t.Error("a document without words is indexed")
	}
}

func TestTiesAreBrokenByDocumentThenPassage(t *testing.T) {
	var ix kb.Index
	for _, id := range []string{"c", "a", "b"} {
		ix.Add(id, "identical words here")
	}
	got := search(t, &ix, "identical", 5)
	if want := []string{"a", "b", "c"}; !reflect.DeepEqual(docsOf(got), want) {
		t.Errorf("tied results in order %v, want %v", docsOf(got), want)
	}
}

func TestTopKBounds(t *testing.T) {
	var ix kb.Index
	for i := range 30 {
		ix.Add(fmt.Sprintf("d%02d", i), fmt.Sprintf("common word number %d", i))
	}
	for _, c := range []struct{ k, want int }{{0, kb.DefaultTopK}, {-3, kb.DefaultTopK}, {3, 3}, {100, kb.MaxTopK}} {
		if got := search(t, &ix, "common", c.k); len(got) != c.want {
			t.Errorf("topK %d: %d results, want %d", c.k, len(got), c.want)
		}
	}
}

func TestEncodeRoundTrips(t *testing.T) {
	ix := mustIndex(t, map[string]string{"refunds.md": refunds, "shipping.md": shipping, "ünïcode": "Ça marche: naïve café, 東京 2026."})
	enc := ix.Encode()
	back, err := kb.Decode(enc)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(back.Encode(), enc) {
		t.Error("decode then encode changed the bytes")
	}
	if !reflect.DeepEqual(back.Search("café 東京", 5), ix.Search("café 東京", 5)) {
		t.Error("decoded index ranks differently")
	}
	// Insertion order does not show in the encoding.
	other := mustIndex(t, nil)
	for _, id := range []string{"shipping.md", "ünïcode", "refunds.md"} {
		other.Add(id, map[string]string{"refunds.md": refunds, "shipping.md": shipping, "ünïcode": "Ça marche: naïve café, 東京 2026."}[id])
	}
	if !bytes.Equal(other.Encode(), enc) {
		t.Error("the same documents added in another order encode differently")
	}
	var empty kb.Index
	e, err := kb.Decode(empty.Encode())
	if err != nil || e.Len() != 0 {
		t.Errorf("empty index round trip: %v, %d docs", err, e.Len())
	}
}

func TestDecodeRefusesCorruptBytes(t *testing.T) {
	enc := mustIndex(t, map[string]string{"refunds.md": refunds, "shipping.md": shipping}).Encode()
	bad := [][]byte{nil, []byte("BKB2"), enc[:len(enc)-1], append(bytes.Clone(enc), 0)}
	for i := len(magic); i < len(enc); i += 7 {
		b := bytes.Clone(enc)
		b[i] ^= 0xff
		bad = append(bad, b)
	}
	for i, b := range bad {
		if i < 4 {
			if _, err := kb.Decode(b); !errors.Is(err, kb.ErrCorrupt) {
				t.Errorf("Decode(case %d) = %v, want ErrCorrupt", i, err)
			}
		}
		// Flipped bytes may still decode (a changed letter of text); they
		// must never panic, in either reader.
		_, _ = kb.Decode(b)
		_, _ = kb.SearchEncoded(b, "refund shipping", 5)
	}
}

const magic = "BKB1"

func TestChunkBoundsPassages(t *testing.T) {
	long := strings.Repeat("word ", 700) // one 3,500-byte paragraph
	paras := strings.Repeat("A short paragraph of text.\n\n", 100)
	noSpace := strings.Repeat("é", 1500)
	for name, text := range map[string]string{"long": long, "paras": paras, "nospace": noSpace} {
		ps := kb.Chunk(text)
		if len(ps) < 2 {
			t.Errorf("%s: %d passages, want several", name, len(ps))
		}
		for _, p := range ps {
			if len(p) > kb.MaxPassageBytes || p == "" || !utf8.ValidString(p) {
				t.Errorf("%s: passage of %d bytes (valid UTF-8 %v)", name, len(p), utf8.ValidString(p))
			}
		}
	}
	if got := kb.Chunk("one\n\ntwo"); !reflect.DeepEqual(got, []string{"one\n\ntwo"}) {
		t.Errorf("short paragraphs are not joined: %q", got)
	}
}

func TestTokenize(t *testing.T) {
	got := kb.Tokenize("The Refund-policy: 30 DAYS, naïve Café! 東京")
	want := []string{"refund", "policy", "30", "days", "naïve", "café", "東京"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Tokenize = %q, want %q", got, want)
	}
}

func TestValidDocID(t *testing.T) {
	for _, ok := range []string{"a", "handbook.md", "Q3_report-v2.txt", "..a", strings.Repeat("x", 128)} {
		if !kb.ValidDocID(ok) {
			t.Errorf("ValidDocID(%q) = false, want true", ok)
		}
	}
	for _, bad := range []string{"", ".", "..", "a/b", "a#b", "é", "a b", "%2F", strings.Repeat("x", 129)} {
		if kb.ValidDocID(bad) {
			t.Errorf("ValidDocID(%q) = true, want false", bad)
		}
	}
}
