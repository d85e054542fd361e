package kb

import (
	"cmp"
	"math"
	"slices"
	"sort"
)

// BM25 parameters: the usual ones, which suit passages of a few hundred words.
const (
	k1 = 1.2
	b  = 0.75
)

// Search bounds.
const (
	// DefaultTopK is how many results a search returns when not told.
	DefaultTopK = 5
	// MaxTopK is the most results a search returns.
	MaxTopK = 20
)

// Index is a knowledge base: every document's passages with their terms.
// The zero value is an empty index. It is not safe for concurrent use.
type Index struct {
	docs map[string][]passage
}

type passage struct {
	text   string
	length int        // tokens, for BM25's length normalisation
	terms  []termFreq // sorted by term
}

type termFreq struct {
	term string
	tf   int
}

// Result is one passage found by a search.
type Result struct {
	DocID   string
	Passage string
	Score   float64
}

// Add indexes a document, replacing what was indexed under docID before.
// A document without words has no passage and is simply not in the index.
func (ix *Index) Add(docID, text string) {
	ix.Remove(docID)
	var ps []passage
	for _, t := range Chunk(text) {
		if p := newPassage(t); p.length > 0 {
			ps = append(ps, p)
		}
	}
	if len(ps) == 0 {
		return
	}
	if ix.docs == nil {
		ix.docs = map[string][]passage{}
	}
	ix.docs[docID] = ps
}

func newPassage(text string) passage {
	toks := Tokenize(text)
	counts := map[string]int{}
	for _, t := range toks {
		counts[t]++
	}
	terms := make([]termFreq, 0, len(counts))
	for t, n := range counts {
		terms = append(terms, termFreq{t, n})
	}
	slices.SortFunc(terms, func(x, y termFreq) int { return cmp.Compare(x.term, y.term) })
	return passage{text: text, length: len(toks), terms: terms}
}

// Remove takes a document out of the index; removing one that is not there
// does nothing.
func (ix *Index) Remove(docID string) { delete(ix.docs, docID) }

// Len is the number of documents indexed.
func (ix *Index) Len() int { return len(ix.docs) }

// Has reports whether a document is indexed.
func (ix *Index) Has(docID string) bool { _, ok := ix.docs[docID]; return ok }

// docIDs returns the indexed documents in order: passages are numbered in
// this order, which makes the encoding and the ranking's ties independent
// of the order documents were added in.
func (ix *Index) docIDs() []string {
	ids := make([]string, 0, len(ix.docs))
	for id := range ix.docs {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// Search returns the topK passages that best match query, best first (see
// SearchEncoded, which ranks identically).
func (ix *Index) Search(query string, topK int) []Result {
	terms := queryTerms(query)
	ids := ix.docIDs()
	var c corpus
	var texts []string
	var docOf []string
	for _, id := range ids {
		for _, p := range ix.docs[id] {
			c.lengths = append(c.lengths, p.length)
			texts = append(texts, p.text)
			docOf = append(docOf, id)
		}
	}
	c.postings = make([][]posting, len(terms))
	pi := 0
	for _, id := range ids {
		for _, p := range ix.docs[id] {
			for ti, t := range terms {
				if j, ok := slices.BinarySearchFunc(p.terms, t, func(e termFreq, t string) int { return cmp.Compare(e.term, t) }); ok {
					c.postings[ti] = append(c.postings[ti], posting{pi, p.terms[j].tf})
				}
			}
			pi++
		}
	}
	hits := c.rank(topK)
	out := make([]Result, len(hits))
	for i, h := range hits {
		out[i] = Result{DocID: docOf[h.p], Passage: texts[h.p], Score: h.score}
	}
	return out
}

// queryTerms are the distinct terms of a query, sorted, at most maxQueryTerms.
func queryTerms(query string) []string {
	terms := Tokenize(query)
	slices.Sort(terms)
	terms = slices.Compact(terms)
	if len(terms) > maxQueryTerms {
		terms = terms[:maxQueryTerms]
	}
	return terms
}

// ClampTopK maps a requested result count to the one used: DefaultTopK
// when not positive, at most MaxTopK.
func ClampTopK(k int) int {
	if k <= 0 {
		return DefaultTopK
	}
	return min(k, MaxTopK)
}

type posting struct {
	p, tf int
}

// corpus is what BM25 needs of an index for one query: every passage's
// length, and the postings of each query term (passages in ascending order).
type corpus struct {
	lengths  []int
	postings [][]posting
}

type hit struct {
	p     int
	score float64
}

// rank scores the passages with BM25 and returns the best topK. Terms are
// added in one fixed order and ties go to the lower passage number (the
// earlier document id, then the earlier passage), so a ranking is the same
// on every run and on both forms of the index.
func (c corpus) rank(topK int) []hit {
	topK = ClampTopK(topK)
	n := len(c.lengths)
	if n == 0 {
		return nil
	}
	total := 0
	for _, l := range c.lengths {
		total += l
	}
	avg := float64(total) / float64(n)
	scores := map[int]float64{}
	for _, ps := range c.postings {
		if len(ps) == 0 {
			continue
		}
		df := float64(len(ps))
		idf := math.Log(1 + (float64(n)-df+0.5)/(df+0.5))
		for _, po := range ps {
			tf := float64(po.tf)
			norm := k1 * (1 - b + b*float64(c.lengths[po.p])/avg)
			scores[po.p] += idf * tf * (k1 + 1) / (tf + norm)
		}
	}
	hits := make([]hit, 0, len(scores))
	for p, s := range scores {
		hits = append(hits, hit{p, s})
	}
	slices.SortFunc(hits, func(x, y hit) int {
		if c := cmp.Compare(y.score, x.score); c != 0 {
			return c
		}
		return cmp.Compare(x.p, y.p)
	})
	if len(hits) > topK {
		hits = hits[:topK]
	}
	return hits
}

func sortStrings(s []string) { sort.Strings(s) }
