// Package kb is a tenant's knowledge base index: documents cut into
// passages, ranked for a query with BM25, and kept as one compact encoded
// value, so that a search reads one object and never the documents.
//
// It is pure Go: the stores keep the encoded index, this package builds,
// changes and searches it. The encoding carries the passages' text, so a
// search answers with passages without reading a document.
package kb
