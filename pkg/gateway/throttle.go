package gateway

import (
	"fmt"
	"sync"
	"time"

	"github.com/bulkhead-dev/bulkhead/pkg/bulkhead"
)

// nanoTokensPerToken makes the bucket integer arithmetic: refilling at r
// tokens/s adds exactly r nano-tokens per elapsed nanosecond, so an injected
// clock gives exact, float-free results.
const nanoTokensPerToken = int64(time.Second)

// limiter is the usage-plan throttle and daily quota, one bucket per usage key.
//
// Memory: keys come from the authorizer (one per tenant or API Gateway key),
// not from callers, so the map holds at most the platform's keys; on the
// first request of each UTC day it also forgets every key whose state is
// indistinguishable from a new one (bucket full, no requests today).
type limiter struct {
	mu       sync.Mutex
	buckets  map[string]*bucket
	sweptDay string
}

type bucket struct {
	// level and capacity are in nano-tokens; rate is tokens per second.
	level    int64
	capacity int64
	rate     int64
	last     time.Time
	day      string
	count    int
}

// refusal says why a request was throttled.
type refusal struct {
	message    string
	retryAfter int
}

func newLimiter() *limiter {
	return &limiter{buckets: map[string]*bucket{}}
}

// allow admits one request for key under throttle t at now, or says why not.
// A refused request consumes neither a token nor quota.
func (l *limiter) allow(key string, t bulkhead.Throttle, now time.Time) *refusal {
	l.mu.Lock()
	defer l.mu.Unlock()

	today := bulkhead.DayKey(now)
	if today != l.sweptDay {
		l.sweep(today, now)
		l.sweptDay = today
	}

	rate := int64(t.RatePerSecond)
	capacity := int64(max(t.Burst, 1)) * nanoTokensPerToken
	b, ok := l.buckets[key]
	if !ok {
		b = &bucket{level: capacity, last: now, day: today}
		l.buckets[key] = b
	}
	// The tier can change between requests (an upgrade): the current plan applies.
	b.rate, b.capacity = rate, capacity
	if b.day != today {
		b.day, b.count = today, 0
	}
	if t.DailyRequests > 0 && b.count >= t.DailyRequests {
		return &refusal{
			message:    fmt.Sprintf("Daily request quota exceeded (%d)", t.DailyRequests),
			retryAfter: ceilSeconds(nextUTCMidnight(now).Sub(now)),
		}
	}
	if rate > 0 {
		b.refill(now)
		if b.level < nanoTokensPerToken {
			wait := time.Duration((nanoTokensPerToken - b.level + rate - 1) / rate)
			return &refusal{
				message:    fmt.Sprintf("Too many requests: usage plan throttle (%d/s, burst %d)", t.RatePerSecond, t.Burst),
				retryAfter: ceilSeconds(wait),
			}
		}
		b.level -= nanoTokensPerToken
	}
	b.count++
	return nil
}

// refill adds the tokens earned since the last request, capped at capacity.
func (b *bucket) refill(now time.Time) {
	elapsed := int64(now.Sub(b.last))
	if elapsed <= 0 {
		// A clock that steps back earns nothing, and must not move last back.
		return
	}
	b.last = now
	if b.rate <= 0 {
		b.level = b.capacity
		return
	}
	need := b.capacity - b.level
	if need <= 0 || elapsed > need/b.rate {
		// Checked before multiplying so a long idle period cannot overflow.
		b.level = b.capacity
		return
	}
	b.level = min(b.level+elapsed*b.rate, b.capacity)
}

// sweep forgets buckets that would behave exactly like new ones.
func (l *limiter) sweep(today string, now time.Time) {
	for key, b := range l.buckets {
		if b.day == today {
			continue
		}
		b.refill(now)
		if b.level >= b.capacity {
			delete(l.buckets, key)
		}
	}
}

func nextUTCMidnight(now time.Time) time.Time {
	y, m, d := now.UTC().Date()
	return time.Date(y, m, d+1, 0, 0, 0, 0, time.UTC)
}

// ceilSeconds is a Retry-After value: whole seconds, rounded up, at least 1.
func ceilSeconds(d time.Duration) int {
	s := int((d + time.Second - 1) / time.Second)
	return max(s, 1)
}
