package client

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// script is a fake API that answers each request with the next of its
// replies and records what it was sent.
type script struct {
	mu      sync.Mutex
	replies []reply
	got     []*http.Request
}

type reply struct {
	status     int
	retryAfter string
	body       string
	replayed   bool
}

func (s *script) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.got = append(s.got, r.Clone(context.Background()))
	rep := reply{status: 200, body: `{"status":"healthy"}`}
	if len(s.replies) > 0 {
		rep, s.replies = s.replies[0], s.replies[1:]
	}
	s.mu.Unlock()
	if rep.retryAfter != "" {
		w.Header().Set("Retry-After", rep.retryAfter)
	}
	if rep.replayed {
		w.Header().Set(ReplayedHeader, "true")
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(rep.status)
	_, _ = w.Write([]byte(rep.body))
}

func (s *script) requests() []*http.Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.got
}

func errBody(code string) string {
	return `{"error":{"code":"` + code + `","message":"m"}}`
}

// fake starts a scripted server and a client whose waits are recorded, not slept.
func fake(t *testing.T, replies ...reply) (*script, *transport, *[]time.Duration) {
	t.Helper()
	s := &script{replies: replies}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	tr := newTransport(srv.URL, "k", nil)
	var waits []time.Duration
	tr.sleep = func(ctx context.Context, d time.Duration) error { waits = append(waits, d); return ctx.Err() }
	return s, tr, &waits
}

func TestRetryHonoursRetryAfter(t *testing.T) {
	s, tr, waits := fake(t, reply{429, "2", errBody("rate_limited"), false}, reply{503, "", errBody("unavailable"), false})
	if err := tr.call(context.Background(), http.MethodGet, "/v1/usage", nil, nil, nil); err != nil {
		t.Fatal(err)
	}
	if n := len(s.requests()); n != 3 {
		t.Fatalf("%d requests, want 3", n)
	}
	w := *waits
	if len(w) != 2 || w[0] < 2*time.Second || w[0] > 3*time.Second || w[1] <= 0 || w[1] > backoffBase*2 {
		t.Fatalf("waits %v: want Retry-After (2s, jittered) then a backoff", w)
	}
}

// TestRetryWaitsForItsOwnEarlierAttempt: a POST whose earlier attempt (the
// same Idempotency-Key) is still running gets 409 idempotency_in_progress
// with Retry-After; the client waits and asks again, and gets the answer
// the first attempt stored.
func TestRetryWaitsForItsOwnEarlierAttempt(t *testing.T) {
	s, tr, waits := fake(t, reply{409, "1", errBody("idempotency_in_progress"), false}, reply{200, "", `{}`, true})
	r, _ := jsonRequest(http.MethodPost, "/v1/agents/a/execute", nil)
	r.replaySafe = true
	if err := tr.do(context.Background(), r, nil); err != nil {
		t.Fatal(err)
	}
	if n := len(s.requests()); n != 2 || len(*waits) != 1 || (*waits)[0] < time.Second {
		t.Fatalf("%d requests, waits %v; want 2 and a wait of Retry-After", n, *waits)
	}
}

func TestRetryGivesUpAfterMaxRetries(t *testing.T) {
	var replies []reply
	for range 10 {
		replies = append(replies, reply{503, "", errBody("unavailable"), false})
	}
	s, tr, waits := fake(t, replies...)
	err := tr.call(context.Background(), http.MethodGet, "/v1/usage", nil, nil, nil)
	if e := AsError(err); e == nil || e.Status != 503 || e.Code != "unavailable" {
		t.Fatalf("err %v", err)
	}
	if n := len(s.requests()); n != DefaultMaxRetries+1 {
		t.Fatalf("%d requests, want %d", n, DefaultMaxRetries+1)
	}
	// Exponential: each wait's range doubles (full jitter over the upper half).
	for i, d := range *waits {
		lo, hi := (backoffBase<<i)/2, backoffBase<<i
		if d < lo || d > hi {
			t.Errorf("wait %d = %s, want in [%s, %s]", i, d, lo, hi)
		}
	}
}

func TestNoRetry(t *testing.T) {
	for name, c := range map[string]struct {
		rep    reply
		method string
	}{
		"400":                  {reply{400, "", errBody("invalid_request"), false}, http.MethodGet},
		"404":                  {reply{404, "", errBody("not_found"), false}, http.MethodGet},
		"409 conflict":         {reply{409, "", errBody("conflict"), false}, http.MethodPost},
		"quota_exceeded":       {reply{429, "100", errBody("quota_exceeded"), false}, http.MethodGet},
		"a long Retry-After":   {reply{429, "3600", errBody("rate_limited"), false}, http.MethodGet},
		"503 of a PATCH":       {reply{503, "", errBody("unavailable"), false}, http.MethodPatch},
		"500":                  {reply{500, "", errBody("internal"), false}, http.MethodGet},
		"502 of a model error": {reply{502, "", errBody("model_error"), false}, http.MethodPost},
		"a replayed 503":       {reply{503, "1", errBody("model_unavailable"), true}, http.MethodPost},
	} {
		t.Run(name, func(t *testing.T) {
			s, tr, _ := fake(t, c.rep, reply{200, "", `{}`, false})
			// POSTs as to a route that honours Idempotency-Key: safe to
			// repeat, and still not repeated.
			r, _ := jsonRequest(c.method, "/v1/x", nil)
			r.replaySafe = r.replaySafe || c.method == http.MethodPost
			err := tr.do(context.Background(), r, nil)
			if e := AsError(err); e == nil || e.Status != c.rep.status {
				t.Fatalf("err %v", err)
			}
			if n := len(s.requests()); n != 1 {
				t.Fatalf("%d requests, want 1", n)
			}
		})
	}
}

func TestRetryStopsAtTheContextDeadline(t *testing.T) {
	s, tr, _ := fake(t, reply{429, "20", errBody("rate_limited"), false})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := tr.call(ctx, http.MethodGet, "/v1/usage", nil, nil, nil)
	if e := AsError(err); e == nil || e.RetryAfter != 20*time.Second {
		t.Fatalf("err %v", err)
	}
	if n := len(s.requests()); n != 1 {
		t.Fatalf("%d requests: a wait past the deadline was started", n)
	}
}

func TestPostIdempotencyKey(t *testing.T) {
	s, tr, _ := fake(t, reply{503, "", errBody("unavailable"), false}, reply{429, "1", errBody("concurrency_limited"), false})
	if err := tr.post(context.Background(), "/v1/agents/agt_x/execute", map[string]string{"message": "hi"}, nil); err != nil {
		t.Fatal(err)
	}
	got := s.requests()
	if len(got) != 3 {
		t.Fatalf("%d requests, want 3", len(got))
	}
	key := got[0].Header.Get(IdempotencyHeader)
	if len(key) < 16 {
		t.Fatalf("Idempotency-Key %q", key)
	}
	for _, r := range got {
		if r.Header.Get(IdempotencyHeader) != key || r.Header.Get("Authorization") != "Bearer k" || r.Header.Get("Content-Type") != "application/json" ||
			r.Header.Get("User-Agent") != DefaultUserAgent {
			t.Fatalf("headers %v", r.Header)
		}
	}
	// Each call has its own key; the caller's replaces it.
	s2, tr2, _ := fake(t)
	_ = tr2.post(context.Background(), "/v1/agents", map[string]string{}, nil)
	_ = tr2.post(WithIdempotencyKey(context.Background(), "mine"), "/v1/agents", map[string]string{}, nil)
	_ = tr2.call(context.Background(), http.MethodGet, "/v1/agents", nil, nil, nil)
	r := s2.requests()
	if k := r[0].Header.Get(IdempotencyHeader); k == "" || k == key || r[1].Header.Get(IdempotencyHeader) != "mine" || r[2].Header.Get(IdempotencyHeader) != "" {
		t.Fatalf("keys %q %q %q", k, r[1].Header.Get(IdempotencyHeader), r[2].Header.Get(IdempotencyHeader))
	}
}

// failing refuses to connect a number of times, then passes requests on.
type failing struct {
	mu   sync.Mutex
	left int
	n    int
}

func (f *failing) RoundTrip(r *http.Request) (*http.Response, error) {
	f.mu.Lock()
	f.n++
	fail := f.left > 0
	f.left--
	f.mu.Unlock()
	if fail {
		return nil, errors.New("connection refused")
	}
	return http.DefaultTransport.RoundTrip(r)
}

func TestConnectionErrors(t *testing.T) {
	for _, c := range []struct {
		method     string
		replaySafe bool
		wantCalls  int
	}{
		{http.MethodGet, true, 3},
		{http.MethodDelete, true, 3},
		{http.MethodPost, true, 3}, // a POST to a route that honours Idempotency-Key
		{http.MethodPost, false, 1},
		{http.MethodPatch, false, 1},
	} {
		s, tr, _ := fake(t)
		f := &failing{left: 2}
		tr.cfg.httpClient = &http.Client{Transport: f}
		r, _ := jsonRequest(c.method, "/v1/x", nil)
		r.replaySafe = c.replaySafe
		err := tr.do(context.Background(), r, nil)
		if f.n != c.wantCalls {
			t.Errorf("%s (replay-safe %v): %d attempts, want %d", c.method, c.replaySafe, f.n, c.wantCalls)
		}
		if (err == nil) != (c.wantCalls == 3) || (err == nil && len(s.requests()) != 1) {
			t.Errorf("%s (replay-safe %v): err %v", c.method, c.replaySafe, err)
		}
	}
}

func TestErrorFields(t *testing.T) {
	body := `{"error":{"code":"quota_exceeded","quota_type":"spend","message":"Monthly spend budget exceeded ($10)","limit":10,"used":9.5,"committed":10.25,"resets_at":"2027-01-01T00:00:00Z","extra":"x"}}`
	_, tr, _ := fake(t, reply{429, "3600", body, false})
	err := tr.call(context.Background(), http.MethodPost, "/v1/agents/agt_x/execute", nil, nil, nil)
	e := AsError(err)
	if e == nil || e.Status != 429 || e.Code != "quota_exceeded" || e.QuotaType != "spend" || e.Limit != "10" || e.Used != "9.5" ||
		e.Committed != "10.25" || !e.ResetsAt.Equal(time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)) || e.RetryAfter != time.Hour ||
		e.Fields["extra"] != "x" || !IsCode(err, "quota_exceeded") || IsNotFound(err) {
		t.Fatalf("%#v", e)
	}
	// A body that is not the error shape still makes an *Error.
	_, tr, _ = fake(t, reply{502, "", "Bad Gateway", false})
	if e := AsError(tr.call(context.Background(), http.MethodGet, "/", nil, nil, nil)); e == nil || e.Status != 502 || e.Message != "Bad Gateway" {
		t.Fatalf("%#v", e)
	}
}

func TestReadSSE(t *testing.T) {
	in := "event: delta\ndata: {\"text\":\"a\"}\n\n: comment\n\nevent: done\ndata: {\"x\":1}\ndata: more\n\n"
	var got []string
	for name, data := range readSSE(stringsReader(in)) {
		got = append(got, name+"="+data)
	}
	want := []string{`delta={"text":"a"}`, "done={\"x\":1}\nmore"}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("%q", got)
	}
}

func stringsReader(s string) *strings.Reader { return strings.NewReader(s) }
