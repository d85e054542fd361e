package gateway

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"

	"github.com/bulkhead-dev/bulkhead/pkg/bulkhead"
)

// Listener wraps ln so that the refusals net/http writes by itself, before
// any handler runs (a request line or percent-escape it cannot parse, a
// missing Host, headers too large, an unknown transfer encoding), reach the
// client in the platform's error shape like every other answer, instead of
// Go's plain text. Serve the gateway's http.Server on it.
func Listener(ln net.Listener) net.Listener { return errorShapeListener{ln} }

type errorShapeListener struct{ net.Listener }

func (l errorShapeListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return errorShapeConn{c}, nil
}

// errorShapeConn rewrites net/http's own error responses. net/http writes
// each of them straight to the connection in one Write, as a status line,
// exactly rawErrorHeaders and a plain-text body, then closes the connection
// (see conn.serve in net/http's server.go). Nothing else can look like
// that: responses through the gateway carry a Date header and a JSON body,
// whose encoding escapes CR and LF, so no later Write of a body can start
// with that header block either.
type errorShapeConn struct{ net.Conn }

const rawErrorHeaders = "\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n"

func (c errorShapeConn) Write(p []byte) (int, error) {
	out, ok := rewriteRawError(p)
	if !ok {
		return c.Conn.Write(p)
	}
	if _, err := c.Conn.Write(out); err != nil {
		return 0, err
	}
	return len(p), nil
}

// CloseWrite lets net/http half-close the connection after an error, as it
// does on a bare TCP connection.
func (c errorShapeConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// rewriteRawError turns one of net/http's plain-text refusals into the
// platform's error shape; ok is false for anything else.
func rewriteRawError(p []byte) (out []byte, ok bool) {
	const proto = "HTTP/1.1 "
	head, body, found := bytes.Cut(p, []byte(rawErrorHeaders))
	if !found || !bytes.HasPrefix(head, []byte(proto)) || bytes.ContainsAny(head, "\r\n") {
		return nil, false
	}
	status, err := strconv.Atoi(string(head[len(proto):min(len(head), len(proto)+3)]))
	if err != nil || status < 400 || status > 599 {
		return nil, false
	}
	rep := fail(bulkhead.Invalid, "Malformed request: the request line, a percent-escape in the path or a header could not be parsed")
	// The body repeats the status ("400 Bad Request: missing required Host
	// header"), except for an unknown transfer encoding.
	detail := strings.TrimSpace(strings.TrimPrefix(string(body), strconv.Itoa(status)+" "))
	switch {
	case status == http.StatusRequestHeaderFieldsTooLarge:
		rep = fail(bulkhead.TooLarge, "Request headers too large")
	case detail != "" && detail != "Bad Request":
		rep.message = "Malformed request: " + detail
	}
	b := errorBody(rep.code, rep.message)
	return fmt.Appendf(nil, "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\nX-Request-Id: %s\r\nConnection: close\r\n\r\n%s",
		rep.status, http.StatusText(rep.status), len(b), newRequestID(), b), true
}
