package kb

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Passage sizes, in bytes. Passages are whole paragraphs joined up to
// targetPassage; a paragraph longer than MaxPassageBytes is cut at a space.
// A passage is what a search returns, so its size bounds a result.
const (
	targetPassage = 800
	// MaxPassageBytes is the most bytes a passage holds.
	MaxPassageBytes = 1000
)

// maxTokenBytes drops tokens longer than any word (base64 runs, hashes):
// they only grow the dictionary and match nothing a person types.
const maxTokenBytes = 64

// maxQueryTerms bounds the distinct terms of one query, so a long query
// costs a bounded scan.
const maxQueryTerms = 64

// stopwords are the commonest English words, which BM25 would weigh near
// zero anyway; leaving them out keeps the index smaller.
var stopwords = map[string]bool{
	"a": true, "an": true, "and": true, "are": true, "as": true, "at": true, "be": true, "by": true,
	"for": true, "from": true, "has": true, "have": true, "in": true, "is": true, "it": true, "its": true,
	"of": true, "on": true, "or": true, "that": true, "the": true, "this": true, "to": true, "was": true,
	"were": true, "will": true, "with": true,
}

// Tokenize splits text into lowercase terms of Unicode letters and digits,
// without stopwords, in order, each reduced to its stem.
func Tokenize(text string) []string {
	var out []string
	var b strings.Builder
	flush := func() {
		if b.Len() > 0 && b.Len() <= maxTokenBytes {
			if t := b.String(); !stopwords[t] {
				out = append(out, stem(t))
			}
		}
		b.Reset()
	}
	for _, r := range text {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			b.WriteRune(unicode.ToLower(r))
			continue
		}
		flush()
	}
	flush()
	return out
}

// Chunk cuts a document into passages of at most MaxPassageBytes: its
// paragraphs (separated by blank lines), joined while they fit in
// targetPassage bytes, and cut at a space when one is longer than
// MaxPassageBytes. Passages do not overlap: a paragraph is the unit a
// reader quotes, and overlap would only repeat text in the index.
func Chunk(text string) []string {
	text = strings.ReplaceAll(text, "\r\n", "\n")
	var pieces []string
	for _, para := range splitParagraphs(text) {
		pieces = append(pieces, splitLong(para, MaxPassageBytes)...)
	}
	var out []string
	cur := ""
	for _, p := range pieces {
		switch {
		case cur == "":
			cur = p
		case len(cur)+2+len(p) <= targetPassage:
			cur += "\n\n" + p
		default:
			out = append(out, cur)
			cur = p
		}
	}
	if cur != "" {
		out = append(out, cur)
	}
	return out
}

func splitParagraphs(text string) []string {
	var out []string
	var cur []string
	flush := func() {
		if p := strings.TrimSpace(strings.Join(cur, "\n")); p != "" {
			out = append(out, p)
		}
		cur = cur[:0]
	}
	for _, line := range strings.Split(text, "\n") {
		if strings.TrimSpace(line) == "" {
			flush()
			continue
		}
		cur = append(cur, line)
	}
	flush()
	return out
}

// splitLong cuts s into pieces of at most n bytes, at the last space before
// the limit when there is one, else at a rune boundary.
func splitLong(s string, n int) []string {
	var out []string
	for len(s) > n {
		cut := strings.LastIndexAny(s[:n+1], " \t\n")
		if cut <= 0 {
			cut = n
			for cut > 0 && !utf8.RuneStart(s[cut]) {
				cut--
			}
		}
		if p := strings.TrimSpace(s[:cut]); p != "" {
			out = append(out, p)
		}
		s = strings.TrimSpace(s[cut:])
	}
	if s != "" {
		out = append(out, s)
	}
	return out
}

// MaxDocIDLen is the longest document id.
const MaxDocIDLen = 128

// ValidDocID reports whether s may name a document: 1-128 ASCII letters,
// digits, '.', '_' and '-', and not "." or "..". Ids are parts of object
// keys and sort keys, so nothing that could act as a separator or a path
// step is allowed.
func ValidDocID(s string) bool {
	if s == "" || len(s) > MaxDocIDLen || s == "." || s == ".." {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// stem folds the commonest English inflections so that "refunds",
// "refunded" and "refund" are one term: a light suffix strip (plural -s and
// -es, past -ed, -ing), not a full stemmer; words of four letters or fewer
// are kept whole, and so are words in -ss ("access") and -us ("status").
func stem(t string) string {
	if len(t) <= 4 {
		return t
	}
	for _, suf := range []string{"ing", "ed", "es", "s"} {
		if !strings.HasSuffix(t, suf) || len(t)-len(suf) < 3 {
			continue
		}
		switch {
		case suf == "s" && (strings.HasSuffix(t, "ss") || strings.HasSuffix(t, "us")):
			return t
		case suf == "es" && !strings.HasSuffix(t, "sses") && !strings.HasSuffix(t, "shes") && !strings.HasSuffix(t, "ches") && !strings.HasSuffix(t, "xes"):
			continue // "orders"... is handled by -s; "ties" keeps its e
		}
		return t[:len(t)-len(suf)]
	}
	return t
}
