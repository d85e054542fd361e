// Package client is the Go SDK for the Bulkhead API: a Client for a tenant's
// routes (authorised with one of the tenant's API keys) and an Operator for
// the /v1/admin routes.
//
// Every call retries what can safely be retried: a 429 (other than
// quota_exceeded), a 503, and a connection failure of a request that is safe
// to send again, honouring Retry-After and otherwise backing off
// exponentially with jitter, within the call's context and the client's
// maximum number of retries. Every POST carries an Idempotency-Key (a random
// one unless the context names one with WithIdempotencyKey), reused by its
// own retries, so that a retried execution never runs twice.
//
// Lists are iterators (iter.Seq2[T, error]) that follow next_cursor until the
// last page; stop ranging to stop reading.
package client

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Defaults of the options.
const (
	DefaultMaxRetries   = 3
	DefaultTimeout      = 5 * time.Minute
	DefaultMaxRetryWait = 30 * time.Second
	DefaultUserAgent    = "bulkhead-go"
	// IdempotencyHeader is the header that makes a POST safe to repeat.
	IdempotencyHeader = "Idempotency-Key"
	// ReplayedHeader marks a response replayed for a repeated Idempotency-Key.
	ReplayedHeader = "Idempotent-Replayed"

	backoffBase = 250 * time.Millisecond
	backoffMax  = 8 * time.Second
)

// Option configures a Client or an Operator.
type Option func(*config)

type config struct {
	httpClient   *http.Client
	timeout      time.Duration
	maxRetries   int
	maxRetryWait time.Duration
	userAgent    string
}

// WithHTTPClient sets the HTTP client requests are sent with (its Transport,
// for one). Its own Timeout also cuts streams short: prefer WithTimeout.
func WithHTTPClient(hc *http.Client) Option { return func(c *config) { c.httpClient = hc } }

// WithTimeout bounds each buffered call, its retries included
// (DefaultTimeout; 0 for none). A stream is bounded by its context alone.
func WithTimeout(d time.Duration) Option { return func(c *config) { c.timeout = d } }

// WithMaxRetries sets how many times a call is retried (DefaultMaxRetries; 0
// never retries).
func WithMaxRetries(n int) Option { return func(c *config) { c.maxRetries = max(n, 0) } }

// WithMaxRetryWait sets the longest Retry-After the client waits for
// (DefaultMaxRetryWait): an answer that asks for a longer wait, such as the
// hourly quota's, is returned at once as its *Error.
func WithMaxRetryWait(d time.Duration) Option { return func(c *config) { c.maxRetryWait = d } }

// WithUserAgent sets the User-Agent header.
func WithUserAgent(ua string) Option { return func(c *config) { c.userAgent = ua } }

// transport is what Client and Operator share: the base URL, the bearer
// token and the retrying request loop.
type transport struct {
	base  string
	token string
	cfg   config
	// sleep waits between attempts; tests may shorten it.
	sleep func(ctx context.Context, d time.Duration) error
}

func newTransport(baseURL, token string, opts []Option) *transport {
	cfg := config{timeout: DefaultTimeout, maxRetries: DefaultMaxRetries, maxRetryWait: DefaultMaxRetryWait, userAgent: DefaultUserAgent}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.httpClient == nil {
		cfg.httpClient = &http.Client{}
	}
	return &transport{base: strings.TrimRight(baseURL, "/"), token: token, cfg: cfg, sleep: sleepCtx}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

type idemKey struct{}

// WithIdempotencyKey returns a context whose POST requests carry key as their
// Idempotency-Key instead of a random one: the same key and the same request
// get the first response again, even from another process. Every POST made
// with the context carries the key, so use it for one request: the same key
// with another request is refused (422 idempotency_mismatch).
func WithIdempotencyKey(ctx context.Context, key string) context.Context {
	return context.WithValue(ctx, idemKey{}, key)
}

func newIdempotencyKey() string {
	var b [16]byte
	_, _ = crand.Read(b[:])
	return "sdk-" + hex.EncodeToString(b[:])
}

// request is one API call before it is sent.
type request struct {
	method      string
	path        string
	query       url.Values
	body        []byte
	contentType string
	accept      string
	// replaySafe: the request may be sent again after a connection failure
	// or a 503 (GET, PUT and DELETE, and POSTs to routes that honour
	// Idempotency-Key).
	replaySafe bool
}

func jsonRequest(method, path string, body any) (*request, error) {
	r := &request{method: method, path: path}
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("bulkhead: encode %s %s: %w", method, path, err)
		}
		r.body, r.contentType = b, "application/json"
	}
	switch method {
	case http.MethodGet, http.MethodPut, http.MethodDelete:
		r.replaySafe = true
	}
	return r, nil
}

// send sends r, retrying as the package documents, and returns the first
// successful (2xx) response, whose body the caller closes; an API error is an
// *Error.
func (t *transport) send(ctx context.Context, r *request) (*http.Response, error) {
	u := t.base + r.path
	if len(r.query) > 0 {
		u += "?" + r.query.Encode()
	}
	var idem string
	if r.method == http.MethodPost {
		idem, _ = ctx.Value(idemKey{}).(string)
		if idem == "" {
			idem = newIdempotencyKey()
		}
	}
	for attempt := 0; ; attempt++ {
		var body io.Reader
		if r.body != nil {
			body = bytes.NewReader(r.body)
		}
		req, err := http.NewRequestWithContext(ctx, r.method, u, body)
		if err != nil {
			return nil, fmt.Errorf("bulkhead: %s %s: %w", r.method, r.path, err)
		}
		if t.token != "" {
			req.Header.Set("Authorization", "Bearer "+t.token)
		}
		if r.contentType != "" {
			req.Header.Set("Content-Type", r.contentType)
		}
		if r.accept != "" {
			req.Header.Set("Accept", r.accept)
		} else {
			req.Header.Set("Accept", "application/json")
		}
		if idem != "" {
			req.Header.Set(IdempotencyHeader, idem)
		}
		req.Header.Set("User-Agent", t.cfg.userAgent)

		resp, err := t.cfg.httpClient.Do(req)
		if err != nil {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("bulkhead: %s %s: %w", r.method, r.path, ctx.Err())
			}
			if r.replaySafe && attempt < t.cfg.maxRetries {
				if werr := t.sleep(ctx, backoff(attempt)); werr != nil {
					return nil, fmt.Errorf("bulkhead: %s %s: %w (after %w)", r.method, r.path, werr, err)
				}
				continue
			}
			return nil, fmt.Errorf("bulkhead: %s %s: %w", r.method, r.path, err)
		}
		if resp.StatusCode < 300 {
			return resp, nil
		}
		apiErr := readError(resp, r.method, r.path)
		if attempt >= t.cfg.maxRetries || !retryable(apiErr, r.replaySafe) {
			return nil, apiErr
		}
		wait := backoff(attempt)
		if apiErr.RetryAfter > 0 {
			if apiErr.RetryAfter > t.cfg.maxRetryWait {
				return nil, apiErr
			}
			// A little jitter past the server's hint, so that clients
			// refused together do not come back together.
			wait = apiErr.RetryAfter + rand.N(apiErr.RetryAfter/10+time.Millisecond)
		}
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
			return nil, apiErr
		}
		if err := t.sleep(ctx, wait); err != nil {
			return nil, apiErr
		}
	}
}

// retryable tells whether an error answer is worth repeating the request for.
func retryable(e *Error, replaySafe bool) bool {
	if e.Replayed {
		// The stored answer of an earlier request with this key (a 503
		// model_unavailable after admission, say): asking again replays it.
		return false
	}
	switch e.Status {
	case http.StatusTooManyRequests:
		// A monthly or storage quota does not clear by waiting a moment.
		return e.Code != "quota_exceeded"
	case http.StatusServiceUnavailable:
		return replaySafe
	case http.StatusConflict:
		// The earlier attempt of this request (same key) is still running:
		// its answer is stored when it ends, and the retry gets it.
		return replaySafe && e.Code == "idempotency_in_progress"
	}
	return false
}

// backoff is the wait before retry attempt+1: exponential from backoffBase,
// capped at backoffMax, drawn at random from the upper half of that step.
func backoff(attempt int) time.Duration {
	d := backoffBase << min(attempt, 10)
	d = min(d, backoffMax)
	return d/2 + rand.N(d/2+1)
}

// withTimeout bounds a buffered call by the client's timeout.
func (t *transport) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if t.cfg.timeout > 0 {
		return context.WithTimeout(ctx, t.cfg.timeout)
	}
	return ctx, func() {}
}

// do sends a JSON request and decodes a JSON answer into out (unless nil).
func (t *transport) do(ctx context.Context, r *request, out any) error {
	ctx, cancel := t.withTimeout(ctx)
	defer cancel()
	resp, err := t.send(ctx, r)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return decodeBody(resp, r, out)
}

// decodeBody decodes a JSON answer into out, or discards it when out is nil.
func decodeBody(resp *http.Response, r *request, out any) error {
	if out == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	s, keepRaw := out.(rawSetter)
	if !keepRaw {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			return fmt.Errorf("bulkhead: %s %s: decode the answer: %w", r.method, r.path, err)
		}
		return nil
	}
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("bulkhead: %s %s: read the answer: %w", r.method, r.path, err)
	}
	if err := json.NewDecoder(bytes.NewReader(raw)).Decode(out); err != nil {
		return fmt.Errorf("bulkhead: %s %s: decode the answer: %w", r.method, r.path, err)
	}
	s.setRawJSON(raw)
	return nil
}

func (t *transport) call(ctx context.Context, method, path string, query url.Values, body, out any) error {
	r, err := jsonRequest(method, path, body)
	if err != nil {
		return err
	}
	r.query = query
	return t.do(ctx, r, out)
}

// post sends a POST to a route that honours Idempotency-Key: safe to repeat.
func (t *transport) post(ctx context.Context, path string, body, out any) error {
	r, err := jsonRequest(http.MethodPost, path, body)
	if err != nil {
		return err
	}
	r.replaySafe = true
	return t.do(ctx, r, out)
}

// Page is one page of a list.
type Page[T any] struct {
	Data       []T     `json:"data"`
	HasMore    bool    `json:"has_more"`
	NextCursor *string `json:"next_cursor"`
}

// ListOptions are a list's paging: Limit items a page (1-100; 0 is the API's
// default of 20) and the Cursor to start from (empty: the first page).
type ListOptions struct {
	Limit  int
	Cursor string
}

func (o *ListOptions) query() url.Values {
	q := url.Values{}
	if o != nil {
		if o.Limit > 0 {
			q.Set("limit", strconv.Itoa(o.Limit))
		}
		if o.Cursor != "" {
			q.Set("cursor", o.Cursor)
		}
	}
	return q
}

// paginate reads a list page by page, following next_cursor until it is empty.
func paginate[T any](ctx context.Context, t *transport, path string, q url.Values) func(yield func(T, error) bool) {
	return func(yield func(T, error) bool) {
		q := cloneValues(q)
		for {
			var page Page[listItem[T]]
			if err := t.call(ctx, http.MethodGet, path, q, nil, &page); err != nil {
				var zero T
				yield(zero, err)
				return
			}
			for _, item := range page.Data {
				if !yield(item.v, nil) {
					return
				}
			}
			if page.NextCursor == nil || *page.NextCursor == "" {
				return
			}
			q.Set("cursor", *page.NextCursor)
		}
	}
}

func cloneValues(q url.Values) url.Values {
	out := url.Values{}
	for k, v := range q {
		out[k] = append([]string(nil), v...)
	}
	return out
}

func pathEscape(s string) string { return url.PathEscape(s) }

// Time is a timestamp in an answer; an empty or null one is the zero Time.
type Time struct{ time.Time }

// UnmarshalJSON reads an RFC 3339 string, "" or null.
func (t *Time) UnmarshalJSON(b []byte) error {
	if string(b) == "null" || string(b) == `""` {
		t.Time = time.Time{}
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return err
	}
	t.Time = v
	return nil
}

// MarshalJSON writes RFC 3339, or "" for the zero Time.
func (t Time) MarshalJSON() ([]byte, error) {
	if t.IsZero() {
		return []byte(`""`), nil
	}
	return json.Marshal(t.Time.Format(time.RFC3339Nano))
}
