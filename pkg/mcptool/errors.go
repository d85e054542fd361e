package mcptool

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"unicode/utf8"
)

// Kinds of failure. Every error the Client returns is an *Error whose chain
// holds exactly one of these, so callers classify with errors.Is.
var (
	// ErrInvalid: the server's registration, the tool name or the arguments
	// were refused before any request was sent.
	ErrInvalid = errors.New("invalid")
	// ErrUnreachable: no HTTP answer (DNS, connection refused or reset, TLS,
	// or the caller's client refused the address).
	ErrUnreachable = errors.New("unreachable")
	// ErrTimeout: the context's deadline or the client's timeout passed.
	ErrTimeout = errors.New("timed out")
	// ErrCanceled: the context was canceled.
	ErrCanceled = errors.New("canceled")
	// ErrHTTPStatus: the server answered with a status outside 2xx
	// (Error.Status holds it).
	ErrHTTPStatus = errors.New("HTTP error status")
	// ErrServer: the server answered with a JSON-RPC error, for example an
	// unknown tool or invalid arguments.
	ErrServer = errors.New("server error")
	// ErrProtocol: the server answered with something that is not MCP.
	ErrProtocol = errors.New("protocol error")
	// ErrTooLarge: the response or the result's text exceeded the caps.
	ErrTooLarge = errors.New("result too large")
)

// Error is a failed exchange with an MCP server. Its message names the
// operation, the server's origin (scheme and host, never the path or query)
// and what went wrong; it never holds a header value.
type Error struct {
	// Op is "list tools" or "call tool <name>".
	Op string
	// Origin is the server URL's scheme://host.
	Origin string
	// Kind is one of the Err* values of this package.
	Kind error
	// Status is the HTTP status for ErrHTTPStatus, else 0.
	Status int
	// Detail is a redacted, bounded description from the server or the
	// network stack; it may be empty.
	Detail string
	// ctxErr is the context's error for ErrTimeout and ErrCanceled, so that
	// errors.Is(err, context.DeadlineExceeded) holds as well.
	ctxErr error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("mcptool: ")
	b.WriteString(e.Op)
	if e.Origin != "" {
		b.WriteString(" at ")
		b.WriteString(e.Origin)
	}
	b.WriteString(": ")
	if e.Kind == ErrHTTPStatus {
		fmt.Fprintf(&b, "HTTP %d %s", e.Status, http.StatusText(e.Status))
	} else {
		b.WriteString(e.Kind.Error())
	}
	if e.Detail != "" {
		b.WriteString(": ")
		b.WriteString(e.Detail)
	}
	return b.String()
}

// Unwrap returns the kind and, for deadlines and cancellations, the
// context's error.
func (e *Error) Unwrap() []error {
	if e.ctxErr != nil {
		return []error{e.Kind, e.ctxErr}
	}
	return []error{e.Kind}
}

// maxDetail bounds the server's or network's text kept in an error.
const maxDetail = 300

// redactor replaces secrets (header values) in text from elsewhere.
type redactor struct {
	secrets []string
}

// minSecretPart is the shortest word of a header value that is redacted on
// its own: "Bearer abcdefgh" hides "abcdefgh" when a server echoes only the
// token, without hiding every "Bearer".
const minSecretPart = 8

func newRedactor(headers map[string]string) redactor {
	var r redactor
	for _, v := range headers {
		if v = strings.TrimSpace(v); v == "" {
			continue
		}
		r.secrets = append(r.secrets, v)
		if parts := strings.Fields(v); len(parts) > 1 {
			for _, p := range parts {
				if len(p) >= minSecretPart {
					r.secrets = append(r.secrets, p)
				}
			}
		}
	}
	// Longest first, so a value is replaced whole before its parts.
	slices.SortFunc(r.secrets, func(a, b string) int { return len(b) - len(a) })
	return r
}

const redacted = "[redacted]"

func (r redactor) redact(s string) string {
	for _, secret := range r.secrets {
		if strings.Contains(s, secret) {
			s = strings.ReplaceAll(s, secret, redacted)
		}
	}
	return s
}

// detail redacts s and bounds it to maxDetail bytes. Redaction comes first,
// so a secret cut in two by the bound cannot survive in part.
func (r redactor) detail(s string) string {
	return truncate(r.redact(s), maxDetail)
}

// truncate cuts s to at most n bytes on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
