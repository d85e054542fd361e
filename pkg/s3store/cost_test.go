package s3store_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"testing"
)

// turnCost is what one turn costs in S3: the context read before the model
// is called and the turn written after.
type turnCost struct {
	written  int64
	read     int64
	requests map[string]int
}

// TestCostPerTurnIsFlat drives one conversation for 200 turns the way an
// execution does (read the window, then append the turn) and checks that once
// the window is full a turn costs the same bytes and requests at turn 200 as
// at the first full turn: nothing grows with the history, and nothing lists.
func TestCostPerTurnIsFlat(t *testing.T) {
	const lastTurn = 200
	for _, window := range []int{1, 4} {
		t.Run(fmt.Sprintf("window %d", window), func(t *testing.T) {
			env := newTestEnv(t)
			ctx := context.Background()
			ts := env.store.Tenant("ten_a")
			const cid = "conv_long"

			costs := make([]turnCost, lastTurn+1)
			for turn := int64(1); turn <= lastTurn; turn++ {
				env.requests.take()
				msgs, read, err := ts.RecentMessages(ctx, cid, turn-1, window)
				if err != nil {
					t.Fatalf("turn %d: RecentMessages: %v", turn, err)
				}
				if want := 2 * min(int(turn-1), window); len(msgs) != want {
					t.Fatalf("turn %d: %d messages in context, want %d", turn, len(msgs), want)
				}
				written := mustAppend(t, ts, cid, turn, turnMessages(turn, 200))
				costs[turn] = turnCost{written: written, read: read, requests: env.requests.take()}
			}

			full := window + 1 // the first turn whose window is full
			for _, turn := range slices.Compact([]int{1, 2, full, lastTurn}) {
				c := costs[turn]
				t.Logf("window %d, turn %3d: wrote %d bytes, read %d bytes, requests %v", window, turn, c.written, c.read, c.requests)
			}
			for turn := 1; turn <= lastTurn; turn++ {
				c := costs[turn]
				if c.written != costs[1].written {
					t.Errorf("turn %d wrote %d bytes, turn 1 wrote %d", turn, c.written, costs[1].written)
				}
				if c.requests[reqList] != 0 {
					t.Errorf("turn %d listed the bucket %d times", turn, c.requests[reqList])
				}
				if turn < full {
					continue
				}
				if c.read != costs[full].read {
					t.Errorf("turn %d read %d bytes, turn %d read %d", turn, c.read, full, costs[full].read)
				}
				if !maps.Equal(c.requests, costs[full].requests) {
					t.Errorf("turn %d made requests %v, turn %d made %v", turn, c.requests, full, costs[full].requests)
				}
			}
			// The window costs exactly one GET per turn in it and one PUT.
			want := map[string]int{reqGet: window, reqPut: 1}
			if got := costs[lastTurn].requests; !maps.Equal(got, want) {
				t.Errorf("turn %d requests = %v, want %v", lastTurn, got, want)
			}
			if got, want := costs[lastTurn].read, int64(window)*costs[1].written; got != want {
				t.Errorf("turn %d read %d bytes, want %d (window x turn size)", lastTurn, got, want)
			}
		})
	}
}
