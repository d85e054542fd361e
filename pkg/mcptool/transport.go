package mcptool

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
)

// errResponseTooLarge is what a capped response body returns once it has
// given its limit.
var errResponseTooLarge = errors.New("response too large")

// callTransport carries one session's requests to the caller's transport. It
// adds the server's headers on the server's own origin, binds every request
// (the session's closing DELETE and the SDK's cancellation notices included)
// to the call's context, caps response bodies, and records what it saw so
// that a failure can be described without the SDK's own words.
type callTransport struct {
	base    http.RoundTripper
	origin  string
	headers http.Header
	ctx     context.Context
	limit   int64

	mu       sync.Mutex
	status   int   // the latest response's status, when outside 2xx
	netErr   error // the first error from the base transport
	tooLarge atomic.Bool
}

func (t *callTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx, cancel := context.WithCancel(req.Context())
	stop := context.AfterFunc(t.ctx, cancel)
	done := func() { stop(); cancel() }

	// A RoundTripper must not change the request it was given.
	r := req.Clone(ctx)
	if origin(r.URL.Scheme, r.URL.Host) == t.origin {
		for name, values := range t.headers {
			r.Header[name] = values
		}
	}
	resp, err := t.base.RoundTrip(r)
	// The session's closing DELETE is best effort and says nothing about
	// the call, so it is not recorded.
	record := r.Method != http.MethodDelete
	if err != nil {
		done()
		if record {
			t.mu.Lock()
			if t.netErr == nil {
				t.netErr = err
			}
			t.mu.Unlock()
		}
		return nil, err
	}
	if record {
		// The latest status counts: a server without server/discover
		// refuses it and the SDK falls back to initialize, which succeeds.
		t.mu.Lock()
		t.status = 0
		if resp.StatusCode < 200 || resp.StatusCode > 299 {
			t.status = resp.StatusCode
		}
		t.mu.Unlock()
	}
	resp.Body = &cappedBody{rc: resp.Body, left: t.limit, t: t, done: done}
	return resp, nil
}

func (t *callTransport) observed() (status int, netErr error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.status, t.netErr
}

// cappedBody fails a read once more than its limit has been read, so that a
// server cannot make the process buffer an unbounded response.
type cappedBody struct {
	rc   io.ReadCloser
	left int64
	t    *callTransport
	done func()
	once sync.Once
}

func (b *cappedBody) Read(p []byte) (int, error) {
	if b.left < 0 {
		return 0, errResponseTooLarge
	}
	// Reading one byte past the limit tells a body of exactly the limit
	// from a longer one.
	if int64(len(p)) > b.left+1 {
		p = p[:b.left+1]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	if b.left < 0 {
		b.t.tooLarge.Store(true)
		return 0, errResponseTooLarge
	}
	return n, err
}

func (b *cappedBody) Close() error {
	err := b.rc.Close()
	b.once.Do(b.done)
	return err
}

// origin is the comparable scheme://host of a URL.
func origin(scheme, host string) string {
	return strings.ToLower(scheme) + "://" + strings.ToLower(host)
}
