package runtime

import (
	"context"
	"encoding/json"
	"math"
	"strings"

	"github.com/bulkhead-dev/bulkhead/pkg/bulkhead"
	"github.com/bulkhead-dev/bulkhead/pkg/kb"
)

// SearchKB is the built-in tool that searches the tenant's knowledge base.
const SearchKB = "search_kb"

// kbReadAttempts bounds how often a search follows the index pointer.
const kbReadAttempts = 3

type kbResult struct {
	DocID   string  `json:"doc_id"`
	Passage string  `json:"passage"`
	Score   float64 `json:"score"`
}

// searchKB answers {"results": [{"doc_id", "passage", "score"}]}, best
// first. A search is two reads whatever the size of the knowledge base:
// the index pointer and the one index object. Results are kept while the
// answer fits the tool result bound, so the best passages are the ones
// the model sees; the first is cut short rather than dropped.
func (r *Runner) searchKB(ctx context.Context, st stores, args json.RawMessage) string {
	var a struct {
		Query string `json:"query"`
		TopK  *int   `json:"top_k"`
	}
	if err := json.Unmarshal(args, &a); err != nil || strings.TrimSpace(a.Query) == "" {
		return toolError("arguments must be {\"query\": string, \"top_k\": integer from 1 to 20 (optional)}")
	}
	k := kb.DefaultTopK
	if a.TopK != nil {
		if *a.TopK < 1 || *a.TopK > kb.MaxTopK {
			return toolError("top_k must be from 1 to 20")
		}
		k = *a.TopK
	}
	results := []kbResult{}
	// A write that commits between the two reads deletes the index the
	// pointer named: read the pointer again, a few times at most.
	for attempt := 0; ; attempt++ {
		ref, err := st.ts.KBIndex(ctx)
		if err != nil {
			return kbToolError(err)
		}
		if ref.Name == "" {
			break
		}
		data, err := st.tr.KBIndex(ctx, ref.Name)
		if bulkhead.IsCode(err, bulkhead.NotFound) && attempt < kbReadAttempts-1 {
			continue
		}
		if err != nil {
			return kbToolError(err)
		}
		found, err := kb.SearchEncoded(data, a.Query, k)
		if err != nil {
			r.logger().Error("unreadable knowledge base index", "tenant_id", st.ts.TenantID(), "index", ref.Name, "error", err.Error())
			return toolError("the knowledge base could not be searched")
		}
		for _, f := range found {
			results = append(results, kbResult{DocID: f.DocID, Passage: f.Passage, Score: math.Round(f.Score*1e4) / 1e4})
		}
		break
	}
	return fitResults(results, maxToolResultBytes)
}

// fitResults encodes as many results as fit in limit bytes; if not even
// the first does, its passage is shortened until it fits.
func fitResults(results []kbResult, limit int) string {
	enc := func(rs []kbResult) string {
		b, _ := json.Marshal(map[string][]kbResult{"results": rs})
		return string(b)
	}
	for n := len(results); n > 0; n-- {
		if s := enc(results[:n]); len(s) <= limit {
			return s
		}
	}
	if len(results) == 0 {
		return enc(results)
	}
	// The longest prefix of the passage that fits: escaping makes the
	// encoded size grow unevenly with the bytes, so search for it.
	first := results[0]
	fits := func(n int) bool {
		return len(enc([]kbResult{{first.DocID, truncateUTF8(first.Passage, n), first.Score}})) <= limit
	}
	lo, hi := 0, len(first.Passage)
	for lo < hi {
		mid := (lo + hi + 1) / 2
		if fits(mid) {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	first.Passage = truncateUTF8(first.Passage, lo)
	return enc([]kbResult{first})
}

func kbToolError(err error) string {
	e := bulkhead.AsError(err)
	if e == nil || e.Code == bulkhead.Internal {
		return toolError("the knowledge base could not be searched")
	}
	return toolError("the knowledge base could not be searched: " + e.Message)
}
