//go:build unix

package main_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

// sseEvents posts a streamed execute and reads its Server-Sent Events line
// by line, as curl -N would show them, until the stream ends or ctx is done.
func sseEvents(ctx context.Context, t *testing.T, base, key, agent, message string) (*http.Response, [][2]string) {
	t.Helper()
	b, _ := json.Marshal(map[string]any{"message": message, "stream": true})
	req, err := http.NewRequestWithContext(ctx, "POST", base+"/v1/agents/"+agent+"/execute", bytes.NewReader(b))
	if err != nil {
		t.Error(err)
		return nil, nil
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Accept", "text/event-stream")
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, nil
	}
	defer resp.Body.Close()
	var evs [][2]string
	name := ""
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 8<<20)
	for sc.Scan() {
		line := sc.Text()
		if v, ok := strings.CutPrefix(line, "event: "); ok {
			name = v
		} else if v, ok := strings.CutPrefix(line, "data: "); ok {
			evs = append(evs, [2]string{name, v})
		}
	}
	return resp, evs
}

// TestStreamedExecuteE2E: a streamed execution through bulkhead dev ends
// with a done event whose body GET /v1/executions/{id} agrees with.
func TestStreamedExecuteE2E(t *testing.T) {
	t.Parallel()
	p := startDevEnv(t, t, t.TempDir(), quotaToken)
	c := newClient(p.URL)
	tn := newQuotaTenant(t, c, "professional", nil, nil)
	resp, evs := sseEvents(context.Background(), t, p.URL, tn.Key, tn.Agent, "Stream me a short answer.")
	if resp == nil || resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("response %v", resp)
	}
	if len(evs) == 0 || evs[len(evs)-1][0] != "done" {
		t.Fatalf("events %v, want a final done", evs)
	}
	var done map[string]any
	if err := json.Unmarshal([]byte(evs[len(evs)-1][1]), &done); err != nil {
		t.Fatal(err)
	}
	var text strings.Builder
	deltas := 0
	for _, ev := range evs[:len(evs)-1] {
		if ev[0] == "delta" {
			var d struct{ Text string }
			_ = json.Unmarshal([]byte(ev[1]), &d)
			text.WriteString(d.Text)
			deltas++
		}
	}
	if deltas > 0 && text.String() != done["message"] {
		t.Errorf("deltas join to %q, reply %q", text.String(), done["message"])
	}
	id, _ := done["execution_id"].(string)
	got := c.must(t, http.StatusOK, "GET", "/v1/executions/"+id, tn.Key, nil)
	if got.str(t, "status") != done["status"] || got.str(t, "message") != done["message"] {
		t.Errorf("GET /v1/executions/%s = %s; done was %v", id, got, done)
	}
}

// TestStreamClientDisconnects: a streaming client that leaves mid-execution
// stops it: the execution settles once, status stopped, and no execution
// stays running.
func TestStreamClientDisconnects(t *testing.T) {
	t.Parallel()
	p := startDevEnv(t, t, t.TempDir(), quotaToken, "BULKHEAD_LOCAL_MODEL_DELAY=2s")
	c := newClient(p.URL)
	tn := newQuotaTenant(t, c, "professional", nil, nil)
	ctx, cancel := context.WithCancel(context.Background())
	gone := make(chan struct{})
	go func() {
		defer close(gone)
		sseEvents(ctx, t, p.URL, tn.Key, tn.Agent, "Take your time.")
	}()
	// Leave once the execution is running (or, at the latest, soon).
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) && getUsage(t, c, tn.Key).running == 0 {
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	<-gone
	u := settledUsage(t, c, tn.Key, 60*time.Second)
	recs := records(t, c, tn.Key)
	if len(recs) != 1 || u.executions != 1 {
		t.Fatalf("%d usage records, %d executions counted; want 1", len(recs), u.executions)
	}
	if s := recs[0]["status"]; s != "stopped" {
		t.Errorf("status %v, want stopped: the client left a 2 s execution while it ran", s)
	}
}
