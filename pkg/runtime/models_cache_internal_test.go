package runtime

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bulkhead-dev/bulkhead/pkg/bulkhead"
)

// slowCatalogue answers every shipped model and counts its lookups.
type slowCatalogue struct{ calls atomic.Int64 }

func (c *slowCatalogue) Model(ctx context.Context, name string) (bulkhead.ModelEntry, error) {
	c.calls.Add(1)
	return shipped{}.Model(ctx, name)
}

// TestModelCacheConcurrent: lookups from many goroutines while the clock
// moves past the TTL are race-free (go test -race) and answer right.
func TestModelCacheConcurrent(t *testing.T) {
	var now atomic.Int64
	start := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	cat := &slowCatalogue{}
	r := &Runner{Catalogue: cat, ModelCacheTTL: time.Second, Now: func() time.Time { return start.Add(time.Duration(now.Load())) }}
	names := []string{bulkhead.DefaultModel, "openai/nope", "bedrock/nope"}
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				if g == 0 && i%20 == 0 {
					now.Add(int64(300 * time.Millisecond))
				}
				name := names[(g+i)%len(names)]
				e, err := r.model(context.Background(), name)
				switch {
				case name == bulkhead.DefaultModel && (err != nil || e.Name != name):
					t.Errorf("%s: %+v, %v", name, e, err)
				case name != bulkhead.DefaultModel && !bulkhead.IsCode(err, bulkhead.NotFound):
					t.Errorf("%s: %v, want not found", name, err)
				}
			}
		}()
	}
	wg.Wait()
	// 3,200 lookups over 3 s of clock with a 1 s TTL: each name expires at
	// most 4 times (its first lookup included), and at each expiry at most
	// the 16 goroutines miss at once.
	if n, most := cat.calls.Load(), int64(4*16*len(names)); n < int64(len(names)) || n > most {
		t.Errorf("the catalogue was read %d times, want %d to %d", n, len(names), most)
	}
}
