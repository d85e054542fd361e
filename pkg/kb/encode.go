package kb

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// The encoding, every integer an unsigned varint:
//
//	"BKB1"
//	documents, sorted by id: count, then each: id length, id, passage count,
//	  and each passage: token count, text length, text
//	terms, sorted: count, then each: term length, term, postings length in
//	  bytes, postings: (passage number delta, term frequency) pairs
//
// Passages are numbered in document order. The postings length lets a
// search skip the terms it does not need without decoding them, and the
// sorted dictionary lets it stop after its last term: a search is one pass
// over the bytes with no allocation per term.
const magic = "BKB1"

// ErrCorrupt is returned for bytes that are not an encoded index.
var ErrCorrupt = errors.New("kb: corrupt index")

// Encode returns the index's compact binary form. Equal indexes encode to
// equal bytes, whatever order their documents were added in.
func (ix *Index) Encode() []byte {
	ids := ix.docIDs()
	// One pass to size things: growing a multi-megabyte buffer and
	// thousands of postings lists by doubling is most of the cost otherwise.
	size, df := len(magic)+16, map[string]int{}
	for _, id := range ids {
		size += len(id) + 8
		for _, p := range ix.docs[id] {
			size += len(p.text) + 8
			for _, t := range p.terms {
				df[t.term]++
			}
		}
	}
	postings := make(map[string][]posting, len(df))
	for t, n := range df {
		size += len(t) + 8 + 4*n
		postings[t] = make([]posting, 0, n)
	}
	out := make([]byte, 0, size)
	out = append(out, magic...)
	out = binary.AppendUvarint(out, uint64(len(ids)))
	pi := 0
	for _, id := range ids {
		ps := ix.docs[id]
		out = appendString(out, id)
		out = binary.AppendUvarint(out, uint64(len(ps)))
		for _, p := range ps {
			out = binary.AppendUvarint(out, uint64(p.length))
			out = appendString(out, p.text)
			for _, t := range p.terms {
				postings[t.term] = append(postings[t.term], posting{pi, t.tf})
			}
			pi++
		}
	}
	terms := make([]string, 0, len(postings))
	for t := range postings {
		terms = append(terms, t)
	}
	sortStrings(terms)
	out = binary.AppendUvarint(out, uint64(len(terms)))
	var buf []byte
	for _, t := range terms {
		buf = buf[:0]
		prev := 0
		for _, po := range postings[t] {
			buf = binary.AppendUvarint(buf, uint64(po.p-prev))
			buf = binary.AppendUvarint(buf, uint64(po.tf))
			prev = po.p
		}
		out = appendString(out, t)
		out = binary.AppendUvarint(out, uint64(len(buf)))
		out = append(out, buf...)
	}
	return out
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// reader reads the encoding; the first failure sticks and later reads
// return zero values.
type reader struct {
	b   []byte
	off int
	err error
}

func (r *reader) uvarint() int {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b[r.off:])
	if n <= 0 || v > math.MaxInt32 {
		r.err = ErrCorrupt
		return 0
	}
	r.off += n
	return int(v)
}

// bytes returns the next length-prefixed field without copying.
func (r *reader) bytes() []byte {
	n := r.uvarint()
	if r.err != nil {
		return nil
	}
	if n > len(r.b)-r.off {
		r.err = ErrCorrupt
		return nil
	}
	s := r.b[r.off : r.off+n]
	r.off += n
	return s
}

// passageRef is a passage of the encoding: its document and where its
// text lies.
type passageRef struct {
	doc        int
	length     int
	start, end int
}

// header is the encoding's documents and passages, read without copying.
type header struct {
	docs     [][]byte
	passages []passageRef
}

func readHeader(r *reader) header {
	var h header
	if !bytes.HasPrefix(r.b, []byte(magic)) {
		r.err = ErrCorrupt
		return h
	}
	r.off = len(magic)
	nd := r.uvarint()
	if nd > len(r.b) {
		r.err = ErrCorrupt
		return h
	}
	h.docs = make([][]byte, 0, nd)
	for d := 0; d < nd && r.err == nil; d++ {
		id := r.bytes()
		if d > 0 && bytes.Compare(h.docs[d-1], id) >= 0 {
			r.err = ErrCorrupt
		}
		h.docs = append(h.docs, id)
		np := r.uvarint()
		for range np {
			if r.err != nil {
				break
			}
			length := r.uvarint()
			text := r.bytes()
			h.passages = append(h.passages, passageRef{doc: d, length: length, start: r.off - len(text), end: r.off})
		}
	}
	return h
}

// postingsOf decodes one term's postings, checking passage numbers.
func postingsOf(buf []byte, passages int) ([]posting, error) {
	var out []posting
	r := reader{b: buf}
	p := -1
	for r.off < len(buf) && r.err == nil {
		delta, tf := r.uvarint(), r.uvarint()
		if r.err != nil || (delta == 0 && p >= 0) || tf == 0 {
			return nil, ErrCorrupt
		}
		if p < 0 {
			p = 0
		}
		p += delta
		if p >= passages {
			return nil, ErrCorrupt
		}
		out = append(out, posting{p, tf})
	}
	if r.err != nil || len(out) == 0 {
		return nil, ErrCorrupt
	}
	return out, nil
}

// Decode reads an encoded index back. Errors: ErrCorrupt.
func Decode(data []byte) (*Index, error) {
	r := &reader{b: data}
	h := readHeader(r)
	nt := r.uvarint()
	if r.err != nil {
		return nil, r.err
	}
	ix := &Index{docs: make(map[string][]passage, len(h.docs))}
	all := make([]passage, len(h.passages))
	for i, p := range h.passages {
		all[i] = passage{text: string(data[p.start:p.end]), length: p.length}
	}
	var prev []byte
	for i := 0; i < nt; i++ {
		term := r.bytes()
		buf := r.bytes()
		if r.err != nil {
			return nil, r.err
		}
		if i > 0 && bytes.Compare(prev, term) >= 0 {
			return nil, ErrCorrupt
		}
		prev = term
		ps, err := postingsOf(buf, len(all))
		if err != nil {
			return nil, err
		}
		t := string(term)
		for _, po := range ps {
			// Terms come in order, so each passage's list stays sorted.
			all[po.p].terms = append(all[po.p].terms, termFreq{t, po.tf})
		}
	}
	if r.off != len(data) {
		return nil, ErrCorrupt
	}
	for i, p := range h.passages {
		id := string(h.docs[p.doc])
		ix.docs[id] = append(ix.docs[id], all[i])
	}
	for _, id := range h.docs {
		if len(ix.docs[string(id)]) == 0 {
			return nil, fmt.Errorf("%w: document %q has no passage", ErrCorrupt, id)
		}
	}
	return ix, nil
}

// SearchEncoded searches an encoded index without decoding it: it reads
// the passage table, then passes over the term dictionary once, decoding
// only the postings of the query's terms. It ranks exactly as Index.Search.
// Errors: ErrCorrupt.
func SearchEncoded(data []byte, query string, topK int) ([]Result, error) {
	r := &reader{b: data}
	h := readHeader(r)
	nt := r.uvarint()
	if r.err != nil {
		return nil, r.err
	}
	terms := queryTerms(query)
	c := corpus{lengths: make([]int, len(h.passages)), postings: make([][]posting, len(terms))}
	for i, p := range h.passages {
		c.lengths[i] = p.length
	}
	qi := 0
	var prev []byte
	for i := 0; i < nt && qi < len(terms); i++ {
		term := r.bytes()
		buf := r.bytes()
		if r.err != nil {
			return nil, r.err
		}
		if i > 0 && bytes.Compare(prev, term) >= 0 {
			return nil, ErrCorrupt
		}
		prev = term
		for qi < len(terms) && terms[qi] < string(term) {
			qi++
		}
		if qi < len(terms) && terms[qi] == string(term) {
			ps, err := postingsOf(buf, len(h.passages))
			if err != nil {
				return nil, err
			}
			c.postings[qi] = ps
			qi++
		}
	}
	hits := c.rank(topK)
	out := make([]Result, len(hits))
	for i, hh := range hits {
		p := h.passages[hh.p]
		out[i] = Result{DocID: string(h.docs[p.doc]), Passage: string(data[p.start:p.end]), Score: hh.score}
	}
	return out, nil
}
