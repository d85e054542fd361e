//go:build unix

package main_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The disconnect tests treat clients as real clients behave: they time out
// and go away. An execution belongs to the platform once admitted, as a
// Lambda invocation does in AWS: it runs to its end (or its guards), is
// settled and billed exactly once, and nothing it held stays held.

// giveUp posts an execution with a client that gives up after timeout. It
// reports whether the client got an answer before giving up.
func giveUp(base, key, agent string, body map[string]any, timeout time.Duration, header ...string) bool {
	b, _ := json.Marshal(body)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "POST", base+"/v1/agents/"+agent+"/execute", bytes.NewReader(b))
	if err != nil {
		return false
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	// A fresh connection each time: a disconnect closes it.
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := hc.Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	_, err = io.Copy(io.Discard, resp.Body)
	return err == nil
}

// settledUsage waits until no execution of the tenant is running any more,
// then returns its usage; executions whose clients left run on, so this is
// how long they take.
func settledUsage(t *testing.T, c *client, key string, within time.Duration) usage {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		u := getUsage(t, c, key)
		if u.running == 0 && u.committed == u.tokens && u.committedSpend == u.spend {
			return u
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %d executions still running, committed %d tokens for %d used, committed $%d µ for %d µ spent",
				within, u.running, u.committed, u.tokens, u.committedSpend, u.spend)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// records counts the tenant's usage records of the month, every page, and
// checks that each is settled with a status.
func records(t *testing.T, c *client, key string) []map[string]any {
	t.Helper()
	var all []map[string]any
	cursor := ""
	for range 100 {
		path := "/v1/usage/records?limit=100"
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		r := c.must(t, http.StatusOK, "GET", path, key, nil)
		all = append(all, r.items(t)...)
		if cursor, _ = r.get(t, "next_cursor").(string); cursor == "" {
			return all
		}
	}
	t.Fatal("more than 100 pages of usage records")
	return nil
}

// wantBilledOnce checks that the counters are exactly the usage records:
// every admitted execution settled and was billed once, nothing is held.
func wantBilledOnce(t *testing.T, c *client, key string, u usage) []map[string]any {
	t.Helper()
	recs := records(t, c, key)
	var tokens, cost int64
	for _, r := range recs {
		n, err := json.Number(fmt.Sprint(r["tokens"])).Int64()
		if err != nil {
			t.Fatalf("usage record tokens %v: %v", r["tokens"], err)
		}
		tokens += n
		m, err := micros(json.Number(fmt.Sprint(r["cost"])))
		if err != nil {
			t.Fatal(err)
		}
		cost += m
	}
	if int64(len(recs)) != u.executions || tokens != u.tokens || cost != u.spend {
		t.Errorf("usage records: %d executions, %d tokens, %d µ$; counters: %d executions, %d tokens, %d µ$",
			len(recs), tokens, cost, u.executions, u.tokens, u.spend)
	}
	if u.running != 0 || u.committed != u.tokens || u.committedSpend != u.spend {
		t.Errorf("still held: %d running, committed %d tokens for %d used, %d µ$ for %d", u.running, u.committed, u.tokens, u.committedSpend, u.spend)
	}
	return recs
}

// TestDisconnectStormDuringAdmission: 150 executions whose clients give up
// after 3 to 90 ms, most of them while the execution is being admitted.
// Every admitted execution runs to its end and settles; no slot and no
// reservation stays held; each is billed once; the breaker stays closed.
func TestDisconnectStormDuringAdmission(t *testing.T) {
	t.Parallel()
	p := startDevEnv(t, t, t.TempDir(), quotaToken, "BULKHEAD_LOCAL_MODEL_DELAY=50ms")
	c := newClient(p.URL)
	tn := newQuotaTenant(t, c, "professional", nil, map[string]any{"max_tokens": 2000})
	hour := currentHour()
	const n = 150
	var (
		u        usage
		answered int
		sent     int
	)
	// Clients leave after 3 to 90 ms; on a loaded machine none may even get
	// through the authorizer that fast, so a storm that admitted nothing is
	// repeated with clients twice as patient (at most four times).
	for round, scale := 0, 1; round < 4 && u.executions == 0; round, scale = round+1, scale*2 {
		var wg sync.WaitGroup
		var mu sync.Mutex
		for i := range n {
			wg.Go(func() {
				timeout := time.Duration(scale*(3+rand.IntN(88))) * time.Millisecond
				if giveUp(p.URL, tn.Key, tn.Agent, map[string]any{"message": fmt.Sprintf("storm %d.%d", round, i)}, timeout) {
					mu.Lock()
					answered++
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		sent += n
		u = settledUsage(t, c, tn.Key, 60*time.Second)
	}
	t.Logf("%d of %d clients got an answer before giving up; %d executions admitted and settled", answered, sent, u.executions)
	if answered == sent {
		t.Fatalf("every client got its answer: no disconnect happened, the test proves nothing")
	}
	if u.executions == 0 {
		t.Fatalf("no execution was admitted: the storm proves nothing")
	}
	if u.hour == hour && u.requests != u.executions {
		t.Errorf("requests_this_hour = %d (admitted), executions_this_month = %d (settled): some admitted executions never settled",
			u.requests, u.executions)
	}
	wantBilledOnce(t, c, tn.Key, u)
	// The tenant is not punished for its clients' timeouts.
	r := c.do(t, "POST", "/v1/agents/"+tn.Agent+"/execute", tn.Key, map[string]any{"message": "still welcome?"})
	if r.Status != http.StatusOK {
		t.Errorf("a legitimate execution after the storm: %v", r)
	}
}

// TestDisconnectDuringModelCall: executions whose clients give up while
// the model runs (a 1 s model, clients leaving after 250 ms). Timeouts of
// clients are not failures of the tenant: the breaker stays closed, and each
// admitted execution completes and is billed.
func TestDisconnectDuringModelCall(t *testing.T) {
	t.Parallel()
	p := startDevEnv(t, t, t.TempDir(), quotaToken, "BULKHEAD_LOCAL_MODEL_DELAY=1s")
	c := newClient(p.URL)
	tn := newQuotaTenant(t, c, "professional", nil, map[string]any{"max_tokens": 2000})
	hour := currentHour()
	// The breaker needs 20 executions in its window, half of them failed. A
	// client on a loaded machine may give up before its request is even
	// sent, so that one is never admitted: rounds of 25 are sent until at
	// least 25 were admitted (at most four rounds).
	const n = 25
	var u usage
	for round := 0; round < 4 && u.executions < n; round++ {
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				if giveUp(p.URL, tn.Key, tn.Agent, map[string]any{"message": fmt.Sprintf("slow %d.%d", round, i)}, 250*time.Millisecond) {
					t.Errorf("execution %d.%d answered within 250 ms with a 1 s model", round, i)
				}
			})
		}
		wg.Wait()
		u = settledUsage(t, c, tn.Key, 60*time.Second)
	}
	if u.executions < n {
		t.Fatalf("only %d executions admitted in four rounds of %d: the test proves nothing about the breaker", u.executions, n)
	}
	if u.hour == hour && u.requests != u.executions {
		t.Errorf("requests_this_hour = %d (admitted), executions_this_month = %d (settled): every execution whose client left runs to its end",
			u.requests, u.executions)
	}
	for _, rec := range wantBilledOnce(t, c, tn.Key, u) {
		if rec["status"] != "completed" {
			t.Errorf("usage record %v: status %v, want completed", rec["execution_id"], rec["status"])
		}
	}
	tenant := c.must(t, http.StatusOK, "GET", "/v1/admin/tenants/"+tn.ID, quotaToken, nil)
	if s := tenant.str(t, "circuit_breaker.state"); s != "closed" {
		t.Errorf("circuit breaker %q after clients timed out, want closed: %v", s, tenant)
	}
	r := c.do(t, "POST", "/v1/agents/"+tn.Agent+"/execute", tn.Key, map[string]any{"message": "next"})
	if r.Status != http.StatusOK {
		t.Errorf("the tenant's next legitimate execution: %v", r)
	}
}

// TestIdempotencyKeyRetryAfterClientTimeout: a client times out, then
// retries with the same Idempotency-Key. While the first runs the retry is
// told 409 at once (with Retry-After); once it has settled the retry gets
// the result of the one execution, replayed.
func TestIdempotencyKeyRetryAfterClientTimeout(t *testing.T) {
	t.Parallel()
	p := startDevEnv(t, t, t.TempDir(), quotaToken, "BULKHEAD_LOCAL_MODEL_DELAY=1s")
	c := newClient(p.URL)
	tn := newQuotaTenant(t, c, "professional", nil, nil)
	body := map[string]any{"message": "charge me once"}
	if giveUp(p.URL, tn.Key, tn.Agent, body, 200*time.Millisecond, "Idempotency-Key", "order-77") {
		t.Fatal("a 1 s execution answered within 200 ms: the client did not time out")
	}
	// The first request runs on without its client (and holds its key).
	waitRunning(t, c, tn.Key, 1)
	retry := func() *response {
		b, _ := json.Marshal(body)
		req, _ := http.NewRequest("POST", p.URL+"/v1/agents/"+tn.Agent+"/execute", bytes.NewReader(b))
		req.Header.Set("Authorization", "Bearer "+tn.Key)
		req.Header.Set("Idempotency-Key", "order-77")
		began := time.Now()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		r, _ := readResponse(resp, "POST", req.URL.Path)
		if took := time.Since(began); resp.StatusCode == http.StatusConflict && took > 500*time.Millisecond {
			t.Logf("a 409 took %v: it should not wait for the first request", took)
		}
		return r
	}
	r := retry()
	wantError(t, r, "idempotency_in_progress", http.StatusConflict)
	if r.Header.Get("Retry-After") == "" {
		t.Errorf("409 without Retry-After: %v", r)
	}
	var final *response
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if final = retry(); final.Status != http.StatusConflict {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if final.Status != http.StatusOK || final.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("retry after the first settled: %v, want the first execution's 200, replayed", final)
	}
	if s := final.str(t, "status"); s != "completed" {
		t.Errorf("replayed status %q, want completed", s)
	}
	u := settledUsage(t, c, tn.Key, 10*time.Second)
	if u.executions != 1 {
		t.Errorf("executions_this_month = %d, want 1: the key ran once", u.executions)
	}
	recs := wantBilledOnce(t, c, tn.Key, u)
	if len(recs) == 1 && recs[0]["execution_id"] != final.str(t, "execution_id") {
		t.Errorf("the replay names %s, the usage record %v", final.str(t, "execution_id"), recs[0]["execution_id"])
	}
}

// execAsync starts an execution with a patient client and returns a channel
// with its answer (nil on a transport error).
func execAsync(base, key, agent, message string) <-chan *response {
	ch := make(chan *response, 1)
	go func() {
		b, _ := json.Marshal(map[string]any{"message": message})
		req, _ := http.NewRequest("POST", base+"/v1/agents/"+agent+"/execute", bytes.NewReader(b))
		req.Header.Set("Authorization", "Bearer "+key)
		hc := &http.Client{Timeout: 2 * time.Minute}
		resp, err := hc.Do(req)
		if err != nil {
			ch <- &response{method: "POST", path: req.URL.Path, Body: []byte(err.Error())}
			return
		}
		r, _ := readResponse(resp, "POST", req.URL.Path)
		ch <- r
	}()
	return ch
}

// waitRunning waits until the tenant has n executions running.
func waitRunning(t *testing.T, c *client, key string, n int64) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for getUsage(t, c, key).running < n {
		if time.Now().After(deadline) {
			t.Fatalf("fewer than %d executions running after 20 s", n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// sigterm sends SIGTERM and waits for the process to exit.
func sigterm(t *testing.T, p *proc, within time.Duration) time.Duration {
	t.Helper()
	began := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.exited:
	case <-time.After(within):
		t.Fatalf("still running %v after SIGTERM\n%s", within, tail(p.stdout.String(), 20))
	}
	if code := p.exitCode(); code != 0 {
		t.Errorf("exit code %d after SIGTERM\nstderr:\n%s", code, tail(p.stderr.String(), 20))
	}
	return time.Since(began)
}

// TestSIGTERMDuringLongExecution: a graceful stop lets a running execution
// finish (its client gets the answer); when the execution would outlast the
// shutdown grace, the stop ends it at once with status "stopped", settled
// and billed, and its client gets that answer. Either way nothing is held
// after the restart.
func TestSIGTERMDuringLongExecution(t *testing.T) {
	t.Parallel()
	t.Run("finishes within the grace", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		p := startDevEnv(t, t, dir, quotaToken, "BULKHEAD_LOCAL_MODEL_DELAY=2s")
		c := newClient(p.URL)
		tn := newQuotaTenant(t, c, "professional", nil, nil)
		answer := execAsync(p.URL, tn.Key, tn.Agent, "take your time")
		waitRunning(t, c, tn.Key, 1)
		sigterm(t, p, 60*time.Second)
		r := <-answer
		if r.Status != http.StatusOK || r.str(t, "status") != "completed" {
			t.Errorf("the execution running at SIGTERM: %v, want 200 completed", r)
		}
		p = startDevEnv(t, t, dir, quotaToken)
		c = newClient(p.URL)
		u := getUsage(t, c, tn.Key)
		if u.executions != 1 {
			t.Errorf("after the restart: %d executions, want 1", u.executions)
		}
		wantBilledOnce(t, c, tn.Key, u)
	})
	t.Run("stopped past the grace", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		p := startDevEnv(t, t, dir, quotaToken, "BULKHEAD_LOCAL_MODEL_DELAY=40s", "BULKHEAD_SHUTDOWN_GRACE=500ms")
		c := newClient(p.URL)
		tn := newQuotaTenant(t, c, "professional", nil, map[string]any{"max_wall_time_seconds": 120})
		answer := execAsync(p.URL, tn.Key, tn.Agent, "this would take 40 seconds")
		waitRunning(t, c, tn.Key, 1)
		took := sigterm(t, p, 30*time.Second)
		r := <-answer
		if r.Status != http.StatusOK || r.str(t, "status") != "stopped" {
			t.Errorf("the execution running at SIGTERM: %v, want 200 stopped", r)
		}
		if !strings.Contains(p.stdout.String(), "Stopping 1 running executions now") {
			t.Errorf("the stop did not say it stopped the execution:\n%s", tail(p.stdout.String(), 10))
		}
		t.Logf("stopped in %v", took.Round(time.Millisecond))
		p = startDevEnv(t, t, dir, quotaToken)
		c = newClient(p.URL)
		u := getUsage(t, c, tn.Key)
		if u.executions != 1 {
			t.Errorf("after the restart: %d executions, want 1 (the stopped one, settled)", u.executions)
		}
		for _, rec := range wantBilledOnce(t, c, tn.Key, u) {
			if rec["status"] != "stopped" {
				t.Errorf("usage record status %v, want stopped", rec["status"])
			}
		}
	})
}

// TestKillDuringExecutionReclaimedAtStart: a kill -9 while an execution runs
// leaves its lease; the next start on the same data dir (which it alone uses)
// gives back its slot and reservation at once, before serving, and removes
// any transcript turn it left.
func TestKillDuringExecutionReclaimedAtStart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := startDevEnv(t, t, dir, quotaToken, "BULKHEAD_LOCAL_MODEL_DELAY=30s")
	c := newClient(p.URL)
	tn := newQuotaTenant(t, c, "professional", nil, nil)
	_ = execAsync(p.URL, tn.Key, tn.Agent, "never finishes")
	waitRunning(t, c, tn.Key, 1)
	// The snapshot is written every second: let the lease reach the disk.
	time.Sleep(1500 * time.Millisecond)
	p.kill(t)
	p = startDevEnv(t, t, dir, quotaToken)
	if !strings.Contains(p.stdout.String(), "Reclaimed 1 executions a previous run left unsettled") {
		t.Errorf("the start did not reclaim the killed execution:\n%s", tail(p.stdout.String(), 10))
	}
	c = newClient(p.URL)
	u := getUsage(t, c, tn.Key)
	if u.running != 0 || u.committed != u.tokens || u.committedSpend != u.spend {
		t.Errorf("after the restart: %d running, committed %d tokens for %d used", u.running, u.committed, u.tokens)
	}
	if u.executions != 0 {
		t.Errorf("%d executions billed; the killed one never settled (a crash loses its unreported tokens)", u.executions)
	}
}
