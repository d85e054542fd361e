//go:build unix

package main_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The soak test writes tens of thousands of executions into one `bulkhead dev`, checks
// that its counters are exactly its usage records, then kills it with SIGKILL
// in the middle of a second burst and checks, after a restart on the same
// data dir, that every execution a client was answered for is there and the
// counters are still exactly the records: nothing acknowledged is lost.

const (
	soakClients    = 16
	soakExecutions = 20_000 // the first burst: about three minutes on 2 cores, race detector on
	// soakKillAfter is how many executions of the second burst are
	// acknowledged before the kill; the kill lands while the others run.
	soakKillAfter = 600
)

// soakRecord is one usage record, as /v1/usage/records lists it.
type soakRecord struct {
	tokens, cost int64
}

// soakRecords reads every page of the tenant's usage records of the month.
func soakRecords(t *testing.T, c *client, key string) map[string]soakRecord {
	t.Helper()
	all := map[string]soakRecord{}
	cursor := ""
	for {
		path := "/v1/usage/records?limit=100"
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		r := c.must(t, http.StatusOK, "GET", path, key, nil)
		for _, rec := range r.items(t) {
			id, _ := rec["execution_id"].(string)
			tokens, err := json.Number(fmt.Sprint(rec["tokens"])).Int64()
			if err != nil || id == "" {
				t.Fatalf("usage record %v: no execution_id or tokens (%v)", rec, err)
			}
			cost, err := micros(json.Number(fmt.Sprint(rec["cost"])))
			if err != nil {
				t.Fatal(err)
			}
			if _, dup := all[id]; dup {
				t.Fatalf("execution %s listed twice in the usage records", id)
			}
			all[id] = soakRecord{tokens: tokens, cost: cost}
		}
		if cursor, _ = r.get(t, "next_cursor").(string); cursor == "" {
			return all
		}
	}
}

// wantCountersAreRecords checks that the tenant's counters are the sum and
// count of its usage records, that nothing is held, and that every execution
// in acked has its record. It returns the records.
func wantCountersAreRecords(t *testing.T, c *client, key string, acked []string) map[string]soakRecord {
	t.Helper()
	u := getUsage(t, c, key)
	recs := soakRecords(t, c, key)
	var tokens, cost int64
	for _, r := range recs {
		tokens += r.tokens
		cost += r.cost
	}
	if int64(len(recs)) != u.executions || tokens != u.tokens || cost != u.spend {
		t.Errorf("usage records: %d executions, %d tokens, %d µ$; counters: %d executions, %d tokens, %d µ$",
			len(recs), tokens, cost, u.executions, u.tokens, u.spend)
	}
	if u.running != 0 || u.committed != u.tokens || u.committedSpend != u.spend {
		t.Errorf("still held: %d running, committed %d tokens for %d used, %d µ$ for %d", u.running, u.committed, u.tokens, u.committedSpend, u.spend)
	}
	missing := 0
	for _, id := range acked {
		if _, ok := recs[id]; !ok {
			if missing++; missing <= 5 {
				t.Errorf("acknowledged execution %s has no usage record", id)
			}
		}
	}
	if missing > 0 {
		t.Errorf("%d of %d acknowledged executions have no usage record", missing, len(acked))
	}
	return recs
}

// soakBurst runs executions of agent from soakClients clients, each starting
// a conversation, until stop says so, and returns the ids of those answered
// 200. A transport error ends a client (the process was killed, or the client
// gave up waiting) and is counted in unanswered: that execution may still be
// recorded, as the platform settles what it admitted whatever the client
// does. Any other answer ends a client too and is returned in wrong. It may
// run on a goroutine other than the test's.
func soakBurst(base, key, agent string, stop func(done int64) bool) (acked []string, wrong string, unanswered int) {
	hc := &http.Client{Timeout: burstTimeout, Transport: &http.Transport{MaxIdleConnsPerHost: soakClients}}
	defer hc.CloseIdleConnections()
	body, _ := json.Marshal(map[string]any{"message": "Soak."})
	var (
		mu   sync.Mutex
		done atomic.Int64
		wg   sync.WaitGroup
	)
	for range soakClients {
		wg.Go(func() {
			for !stop(done.Load()) {
				r, err := post(hc, base, "/v1/agents/"+agent+"/execute", key, body)
				if err != nil {
					mu.Lock()
					unanswered++
					mu.Unlock()
					return
				}
				id, _ := r.JSON["execution_id"].(string)
				mu.Lock()
				if r.Status != http.StatusOK || id == "" {
					wrong = r.String()
					mu.Unlock()
					return
				}
				acked = append(acked, id)
				mu.Unlock()
				done.Add(1)
			}
		})
	}
	wg.Wait()
	return acked, wrong, unanswered
}

// TestSoakKillLosesNothingAcknowledged: 20,000 executions, counters
// equal to usage records, then a kill -9 during a burst and a restart: every
// acknowledged execution is recorded, and counters still equal records.
func TestSoakKillLosesNothingAcknowledged(t *testing.T) {
	dir := t.TempDir()
	p := startDev(t, t, dir, quotaToken)
	c := newClient(p.URL)
	tn := newQuotaTenant(t, c, "enterprise", map[string]any{
		"max_requests_per_hour": 10_000_000, "max_tokens_per_month": 10_000_000_000, "max_concurrent_agents": 1000,
	}, nil)

	start := time.Now()
	first, wrong, firstUnanswered := soakBurst(p.URL, tn.Key, tn.Agent, func(done int64) bool { return done >= soakExecutions })
	if wrong != "" {
		t.Fatalf("an execution of the first burst was not answered 200: %s", wrong)
	}
	t.Logf("first burst: %d executions from %d clients in %v (%d clients gave up waiting)", len(first), soakClients,
		time.Since(start).Round(time.Millisecond), firstUnanswered)
	if len(first) < soakExecutions {
		t.Fatalf("first burst: %d executions acknowledged, want %d", len(first), soakExecutions)
	}
	wantCountersAreRecords(t, c, tn.Key, first)

	// The kill comes once soakKillAfter executions of the second burst are
	// acknowledged, while its clients keep sending: 16 are in flight then.
	reached := make(chan struct{})
	var once sync.Once
	result := make(chan []string, 1)
	go func() {
		acked, _, _ := soakBurst(p.URL, tn.Key, tn.Agent, func(done int64) bool {
			if done >= soakKillAfter {
				once.Do(func() { close(reached) })
			}
			return false
		})
		result <- acked
	}()
	<-reached
	p.kill(t)
	second := <-result
	t.Logf("second burst: %d executions acknowledged before SIGKILL", len(second))
	if len(second) < soakKillAfter {
		t.Fatalf("second burst: %d executions acknowledged, want at least %d", len(second), soakKillAfter)
	}

	restart := time.Now()
	p = startDev(t, t, dir, quotaToken)
	reclaimed := "no execution left running"
	for line := range strings.Lines(p.stdout.String()) {
		if strings.HasPrefix(line, "Reclaimed ") {
			reclaimed = strings.TrimSpace(line)
		}
	}
	t.Logf("restart after SIGKILL: ready in %v (%s)", time.Since(restart).Round(time.Millisecond), reclaimed)
	c = newClient(p.URL)
	recs := wantCountersAreRecords(t, c, tn.Key, append(first, second...))
	// An execution settled in the instant between its record and its answer
	// is recorded without having been acknowledged: at most those in flight
	// at the kill, and those whose client gave up waiting in the first burst
	// (a loaded machine under -race can exceed the client's timeout).
	if extra := len(recs) - len(first) - len(second); extra < 0 || extra > soakClients+firstUnanswered {
		t.Errorf("%d usage records for %d acknowledged executions, want at most %d more", len(recs), len(first)+len(second), soakClients+firstUnanswered)
	}
	// Each acknowledged execution is also found by its id.
	for _, id := range []string{first[0], second[len(second)-1]} {
		r := c.must(t, http.StatusOK, "GET", "/v1/executions/"+id, tn.Key, nil)
		if got := r.str(t, "execution_id"); got != id {
			t.Errorf("GET /v1/executions/%s answered execution %s", id, got)
		}
	}
	t.Logf("after restart: %d usage records; soak took %v", len(recs), time.Since(start).Round(time.Millisecond))
}
