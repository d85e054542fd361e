package gateway_test

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bulkhead-dev/bulkhead/pkg/gateway"
)

// serveRaw serves the fixture's gateway on gateway.Listener with a real
// http.Server and returns its address.
func serveRaw(t *testing.T, f *fixture) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: f.gw, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(gateway.Listener(ln)) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

// rawExchange writes raw bytes on a new TCP connection and reads responses.
func rawExchange(t *testing.T, addr, raw string, responses int) []*http.Response {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	var out []*http.Response
	for range responses {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("reading the answer to %q: %v", raw, err)
		}
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body = io.NopCloser(strings.NewReader(string(body)))
		out = append(out, resp)
	}
	return out
}

// TestMalformedRequestsGetTheErrorShape sends requests net/http refuses
// before any handler runs: the answer is the platform's JSON error, with a
// correct Content-Length, not Go's plain-text "400 Bad Request".
func TestMalformedRequestsGetTheErrorShape(t *testing.T) {
	f := newFixture(t, nil)
	addr := serveRaw(t, f)
	for _, c := range []struct {
		name, raw string
		status    int
		code      string
		says      string
	}{
		{"bad percent-escape", "GET /v1/agents/%zz HTTP/1.1\r\nHost: x\r\n\r\n", 400, "invalid_request", "percent-escape"},
		{"no Host", "GET /v1/agents HTTP/1.1\r\n\r\n", 400, "invalid_request", "missing required Host header"},
		{"bad request line", "GET\r\n\r\n", 400, "invalid_request", "Malformed request"},
		{"headers too large", "GET /v1/agents HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 1<<20+8192) + "\r\n\r\n", 413, "too_large", "headers"},
		{"unknown transfer encoding", "POST /v1/agents HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 400, "invalid_request", "Malformed request: Unsupported transfer encoding"},
	} {
		resp := rawExchange(t, addr, c.raw, 1)[0]
		body, _ := io.ReadAll(resp.Body)
		var e struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		if err := json.Unmarshal(body, &e); err != nil || resp.StatusCode != c.status || e.Error.Code != c.code ||
			!strings.Contains(e.Error.Message, c.says) {
			t.Errorf("%s: %d %q (%v), want %d %s saying %q", c.name, resp.StatusCode, body, err, c.status, c.code, c.says)
			continue
		}
		if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("%s: Content-Type %q", c.name, ct)
		}
		if cl, _ := strconv.Atoi(resp.Header.Get("Content-Length")); cl != len(body) {
			t.Errorf("%s: Content-Length %d for a %d-byte body", c.name, cl, len(body))
		}
	}

	// Well-formed requests pass through untouched, two on one connection.
	rs := rawExchange(t, addr, "GET /health HTTP/1.1\r\nHost: x\r\n\r\nGET /v1/agents/%41 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "+keyA+"\r\n\r\n", 2)
	if rs[0].StatusCode != 200 || rs[1].StatusCode == 400 {
		t.Errorf("well-formed requests: %d, %d", rs[0].StatusCode, rs[1].StatusCode)
	}
}
