package apigw

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// createKeyInterval spaces CreateApiKey calls: AWS allows 5 per second per
// account, and one call every 200 ms never puts more than 5 in any second.
const createKeyInterval = time.Second / 5

// limiter is a token bucket of capacity one that also lets a single call run
// at a time. A capacity of one (no burst) is what keeps any one-second window
// at 5 starts or fewer; running one call at a time means that while the SDK
// is backing off from a throttled call, the calls queued behind it wait
// instead of adding to the throttling. Onboarding is rare enough that the
// lost parallelism costs nothing.
type limiter struct {
	interval time.Duration
	now      func() time.Time
	sleep    func(context.Context, time.Duration) error
	// sem holds the one permit to call; whoever holds it also owns next.
	sem  chan struct{}
	next time.Time
}

// newLimiter returns a limiter that starts calls at least interval apart.
func newLimiter(interval time.Duration, now func() time.Time, sleep func(context.Context, time.Duration) error) *limiter {
	return &limiter{interval: interval, now: now, sleep: sleep, sem: make(chan struct{}, 1)}
}

// errNotSent marks a call the limiter gave up on before making it.
var errNotSent = errors.New("not sent")

// do waits for its turn and for the interval since the previous call's start
// to pass, then runs fn. If ctx ends first, it returns ctx's error wrapped in
// errNotSent, without running fn.
func (l *limiter) do(ctx context.Context, fn func() error) error {
	select {
	case l.sem <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("%w: %w", errNotSent, ctx.Err())
	}
	defer func() { <-l.sem }()
	if wait := l.next.Sub(l.now()); wait > 0 {
		if err := l.sleep(ctx, wait); err != nil {
			return fmt.Errorf("%w: %w", errNotSent, err)
		}
	}
	l.next = l.now().Add(l.interval)
	return fn()
}

// sleepContext waits for d or until ctx ends, whichever is first.
func sleepContext(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
