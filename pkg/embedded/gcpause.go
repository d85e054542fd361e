package embedded

import (
	"runtime/debug"
	"sync"
)

// A start loads a table whose every item stays live: each garbage collection
// the runtime starts while it does (the heap doubles several times over) marks
// everything loaded so far and frees next to nothing. pauseGC turns collection
// off until every start under way has loaded its snapshot; the garbage a load
// makes meanwhile is its read buffers, about the snapshot's size. Starts can
// overlap (tests start many servers), so the setting found before the first is
// put back only when the last ends.
var gcPause struct {
	mu      sync.Mutex
	holders int
	prev    int
}

// pauseGC turns garbage collection off and returns the function that undoes it.
func pauseGC() (resume func()) {
	gcPause.mu.Lock()
	defer gcPause.mu.Unlock()
	if gcPause.holders == 0 {
		gcPause.prev = debug.SetGCPercent(-1)
	}
	gcPause.holders++
	var once sync.Once
	return func() {
		once.Do(func() {
			gcPause.mu.Lock()
			defer gcPause.mu.Unlock()
			gcPause.holders--
			if gcPause.holders == 0 {
				debug.SetGCPercent(gcPause.prev)
			}
		})
	}
}
