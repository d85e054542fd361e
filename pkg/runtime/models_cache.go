package runtime

import (
	"context"
	"sync"
	"time"

	"github.com/bulkhead-dev/bulkhead/pkg/bulkhead"
)

// DefaultModelCacheTTL is how long a Runner keeps a catalogue answer when
// its ModelCacheTTL is zero.
const DefaultModelCacheTTL = 60 * time.Second

// maxCachedModels bounds the catalogue cache; past it the cache starts
// afresh (the catalogue has one entry per model, far fewer than this).
const maxCachedModels = 1024

// modelCache keeps the Catalogue's answers (an entry, or NotFound) by model
// name until they expire, so that an execution does not read the catalogue
// again for a model another execution of this process looked up moments
// before. Any other error is not kept.
type modelCache struct {
	mu sync.Mutex
	m  map[string]cachedModel
}

type cachedModel struct {
	entry   bulkhead.ModelEntry
	err     error // nil or a NotFound error
	expires time.Time
}

func (r *Runner) modelCacheTTL() time.Duration {
	if r.ModelCacheTTL == 0 {
		return DefaultModelCacheTTL
	}
	return r.ModelCacheTTL
}

// model is the catalogue entry of name: the Catalogue's answer of at most
// ModelCacheTTL ago, by the Runner's clock, or a fresh one. The shipped
// catalogue (no Catalogue) is in memory and is not cached.
func (r *Runner) model(ctx context.Context, name string) (bulkhead.ModelEntry, error) {
	ttl := r.modelCacheTTL()
	if r.Catalogue == nil || ttl < 0 {
		return r.catalogue().Model(ctx, name)
	}
	now := r.now()
	r.models.mu.Lock()
	c, ok := r.models.m[name]
	r.models.mu.Unlock()
	if ok && now.Before(c.expires) {
		return c.entry, c.err
	}
	e, err := r.Catalogue.Model(ctx, name)
	if err != nil && !bulkhead.IsCode(err, bulkhead.NotFound) {
		return e, err
	}
	r.models.mu.Lock()
	if r.models.m == nil || len(r.models.m) >= maxCachedModels {
		r.models.m = map[string]cachedModel{}
	}
	r.models.m[name] = cachedModel{entry: e, err: err, expires: now.Add(ttl)}
	r.models.mu.Unlock()
	return e, err
}
