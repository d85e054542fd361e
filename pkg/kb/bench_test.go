package kb_test

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/bulkhead-dev/bulkhead/pkg/kb"
)

// corpus makes n deterministic documents of 2-5 KB: paragraphs of
// sentences whose words follow a Zipf law over a 5,000-word vocabulary, as
// natural text does, so that postings have realistic lengths.
func corpus(n int) map[string]string {
	rng := rand.New(rand.NewPCG(1, 2))
	syll := []string{"ka", "to", "ri", "men", "sa", "lo", "ver", "dan", "pi", "qu", "el", "zor", "ni", "ba", "tes", "mo"}
	vocab := make([]string, 5000)
	for i := range vocab {
		var b strings.Builder
		for j, v := 0, i; j < 2 || v > 0; j++ {
			b.WriteString(syll[v%len(syll)])
			v /= len(syll)
		}
		vocab[i] = b.String()
	}
	zipf := rand.NewZipf(rng, 1.1, 2, uint64(len(vocab)-1))
	docs := make(map[string]string, n)
	for d := range n {
		size := 2048 + rng.IntN(3*1024)
		var b strings.Builder
		for b.Len() < size {
			for range 3 + rng.IntN(4) {
				for w := range 8 + rng.IntN(9) {
					if w > 0 {
						b.WriteByte(' ')
					}
					b.WriteString(vocab[zipf.Uint64()])
				}
				b.WriteString(". ")
			}
			b.WriteString("\n\n")
		}
		docs[fmt.Sprintf("doc-%04d.md", d)] = b.String()
	}
	return docs
}

func benchIndex(b *testing.B, n int) (*kb.Index, map[string]string) {
	b.Helper()
	docs := corpus(n)
	var ix kb.Index
	for id, text := range docs {
		ix.Add(id, text)
	}
	return &ix, docs
}

// BenchmarkSearchEncoded is one search as the platform serves it: over the
// encoded index of 1,000 documents, which is also the bytes a search reads
// (index-bytes). p50-ns and p99-ns are the latency percentiles.
func BenchmarkSearchEncoded(b *testing.B) {
	ix, _ := benchIndex(b, 1000)
	enc := ix.Encode()
	queries := []string{"kato rimen", "sa lo ver dan", "zorni batesmo", "pi", "elqu tokari menba", "quel dantes"}
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		start := time.Now()
		if _, err := kb.SearchEncoded(enc, queries[i%len(queries)], 5); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	reportPercentiles(b, lat)
	b.ReportMetric(float64(len(enc)), "index-bytes")
}

// BenchmarkAdd adds (replaces) one document in a 1,000-document index in memory.
func BenchmarkAdd(b *testing.B) {
	ix, docs := benchIndex(b, 1000)
	text := docs["doc-0042.md"]
	b.ResetTimer()
	for b.Loop() {
		ix.Add("doc-0042.md", text)
	}
}

// BenchmarkWriteCycle is what one document write costs the index: decode
// the 1,000-document index, add the document, encode it again.
func BenchmarkWriteCycle(b *testing.B) {
	ix, docs := benchIndex(b, 1000)
	enc := ix.Encode()
	text := docs["doc-0042.md"]
	b.ResetTimer()
	for b.Loop() {
		d, err := kb.Decode(enc)
		if err != nil {
			b.Fatal(err)
		}
		d.Add("doc-0042.md", text)
		enc = d.Encode()
	}
	b.ReportMetric(float64(len(enc)), "index-bytes")
}

func reportPercentiles(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds()), "p99-ns")
}
