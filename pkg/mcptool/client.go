package mcptool

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// DefaultMaxResultBytes is the default cap on a tool result's text.
const DefaultMaxResultBytes = 1 << 20

// MaxTools bounds the tools taken from one server; ListTools stops there.
const MaxTools = 1000

// maxPages bounds the tools/list pages followed, whatever their size.
const maxPages = 100

// protocolVersion is the version offered at initialization. The SDK's newer
// default opens with server/discover, which servers of the current versions
// refuse (the SDK's own included), so every call would pay a wasted round
// trip before falling back to initialize.
const protocolVersion = "2025-11-25"

// Bounds on a server's registered headers.
const (
	maxHeaders     = 32
	maxHeaderValue = 8 << 10
)

// Server is a tenant's MCP server.
type Server struct {
	// Name is the tenant's name for the server (see ValidServerName); it
	// prefixes the server's tools in the names the model sees.
	Name string
	// URL is the server's Streamable HTTP endpoint, http or https. It must
	// not carry user information; credentials go in Headers.
	URL string
	// Headers are sent on every request to the server's origin, for the
	// server's own authentication. Their values are treated as secrets.
	Headers map[string]string
}

// Tool is one tool a server offers.
type Tool struct {
	// Name is the server's name for the tool, as CallTool takes it.
	Name string
	// FullName is the name offered to the model: ToolName(server, Name).
	FullName    string
	Description string
	// InputSchema is the tool's JSON Schema for its arguments, as the server
	// sent it.
	InputSchema json.RawMessage
}

// Skipped is a tool that ListTools did not offer, and why.
type Skipped struct {
	// Tool is the server's name for it, bounded in length; empty when the
	// entry stands for the tools beyond MaxTools.
	Tool   string
	Reason string
}

// Result is what a tool call returned.
type Result struct {
	// Text joins the result's text parts with newlines; other parts are
	// described in brackets, for example "[image image/png, 2048 bytes]".
	// When the result has no content but structured content, Text is that
	// content as JSON.
	Text string
	// IsError reports a failure the tool itself reported: the call worked
	// and Text says what went wrong, for the model to read.
	IsError bool
}

// Client lists and calls the tools of MCP servers. It is safe for
// concurrent use.
//
// A result whose text exceeds MaxResultBytes is refused with ErrTooLarge
// rather than truncated: a cut JSON document or list reads as complete to a
// model, while an error tells it to ask for less. Response bodies are capped
// at four times MaxResultBytes plus 64 KiB, to leave room for JSON escaping
// and structured content that repeats the text.
type Client struct {
	// HTTP carries every request. It is required: the caller passes the
	// client that holds the platform's SSRF guard, timeout and size caps.
	// It is not modified.
	HTTP *http.Client
	// MaxResultBytes caps a result's text; zero means DefaultMaxResultBytes.
	MaxResultBytes int
}

func (c *Client) maxResult() int {
	if c.MaxResultBytes > 0 {
		return c.MaxResultBytes
	}
	return DefaultMaxResultBytes
}

func (c *Client) wireLimit() int64 { return 4*int64(c.maxResult()) + 64<<10 }

// ListTools returns the tools the server offers under the tenant's name for
// it, following pagination up to MaxTools, and the tools it skipped: those
// whose full name the model providers would refuse (see ToolName) and any
// beyond the bound.
func (c *Client) ListTools(ctx context.Context, s Server) ([]Tool, []Skipped, error) {
	const op = "list tools"
	var tools []Tool
	var skipped []Skipped
	err := c.session(ctx, op, s, func(cs *mcp.ClientSession) error {
		var cursor string
		seen := map[string]bool{}
		for page := 0; ; page++ {
			if page == maxPages {
				skipped = append(skipped, Skipped{Reason: fmt.Sprintf("the server's tool list runs past %d pages; the rest is not offered", maxPages)})
				return nil
			}
			res, err := cs.ListTools(ctx, &mcp.ListToolsParams{Cursor: cursor})
			if err != nil {
				return err
			}
			for _, t := range res.Tools {
				if t == nil {
					continue
				}
				if len(tools) == MaxTools {
					skipped = append(skipped, Skipped{Reason: fmt.Sprintf("the server offers more than %d tools; the rest are not offered", MaxTools)})
					return nil
				}
				full := ToolName(s.Name, t.Name)
				if full == "" {
					skipped = append(skipped, Skipped{
						Tool:   truncate(t.Name, MaxToolNameLength),
						Reason: fmt.Sprintf("%q plus the server's name is not a valid tool name for the model providers (^[A-Za-z0-9_-]{1,%d}$)", truncate(t.Name, MaxToolNameLength), MaxToolNameLength),
					})
					continue
				}
				if seen[t.Name] {
					skipped = append(skipped, Skipped{Tool: t.Name, Reason: "the server lists the tool twice"})
					continue
				}
				seen[t.Name] = true
				schema, err := json.Marshal(t.InputSchema)
				if err != nil {
					return &Error{Kind: ErrProtocol, Detail: "a tool's input schema is not JSON"}
				}
				if string(schema) == "null" {
					// The providers want an object schema; a tool without
					// one takes no arguments.
					schema = json.RawMessage(`{"type":"object"}`)
				}
				tools = append(tools, Tool{
					Name:        t.Name,
					FullName:    full,
					Description: t.Description,
					InputSchema: schema,
				})
			}
			if res.NextCursor == "" {
				return nil
			}
			cursor = res.NextCursor
		}
	})
	if err != nil {
		return nil, nil, err
	}
	r := newRedactor(s.Headers)
	for i := range tools {
		tools[i].Description = r.redact(tools[i].Description)
	}
	return tools, skipped, nil
}

// CallTool calls a server's tool (by the server's name for it) with args, a
// JSON object; empty args mean {}. A failure the tool reports is a Result
// with IsError, not an error.
func (c *Client) CallTool(ctx context.Context, s Server, tool string, args json.RawMessage) (Result, error) {
	if !toolNameRE.MatchString(tool) || len(tool) > MaxToolNameLength {
		return Result{}, &Error{Op: "call tool", Kind: ErrInvalid, Detail: "the tool name must match ^[A-Za-z0-9_-]{1,64}$"}
	}
	op := "call tool " + tool
	var arguments any
	if len(bytes.TrimSpace(args)) > 0 {
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(args, &obj); err != nil || obj == nil {
			return Result{}, &Error{Op: op, Kind: ErrInvalid, Detail: "the arguments must be a JSON object"}
		}
		arguments = args
	}
	var res *mcp.CallToolResult
	err := c.session(ctx, op, s, func(cs *mcp.ClientSession) error {
		var err error
		res, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: tool, Arguments: arguments})
		return err
	})
	if err != nil {
		return Result{}, err
	}
	text := newRedactor(s.Headers).redact(resultText(res))
	if len(text) > c.maxResult() {
		return Result{}, &Error{Op: op, Origin: originOf(s.URL), Kind: ErrTooLarge, Detail: fmt.Sprintf("the result's text is over %d bytes", c.maxResult())}
	}
	return Result{Text: text, IsError: res.IsError}, nil
}

// session connects to s, runs work and closes the session. Connecting costs
// an initialization round trip per call; see the package documentation.
func (c *Client) session(ctx context.Context, op string, s Server, work func(*mcp.ClientSession) error) error {
	u, headers, err := check(s)
	if err != nil {
		return &Error{Op: op, Kind: ErrInvalid, Detail: err.Error()}
	}
	if c.HTTP == nil {
		return &Error{Op: op, Kind: ErrInvalid, Detail: "no HTTP client"}
	}
	t := &callTransport{
		base:    c.HTTP.Transport,
		origin:  origin(u.Scheme, u.Host),
		headers: headers,
		ctx:     ctx,
		limit:   c.wireLimit(),
	}
	if t.base == nil {
		// What the caller's client itself would use.
		t.base = http.DefaultTransport
	}
	hc := *c.HTTP
	hc.Transport = t

	transport := &mcp.StreamableClientTransport{
		Endpoint:   u.String(),
		HTTPClient: &hc,
		// No retries: the caller's context bounds the call and the runtime
		// owns retries.
		MaxRetries: -1,
		// Server-initiated messages are of no use to a single call, and the
		// stream would hold a request open for the session's life.
		DisableStandaloneSSE: true,
		MaxEventSize:         int(t.limit) + 1,
	}
	client := mcp.NewClient(&mcp.Implementation{Name: "bulkhead", Version: "1"}, nil)
	cs, err := client.Connect(ctx, transport, &mcp.ClientSessionOptions{ProtocolVersion: protocolVersion})
	if err == nil {
		err = work(cs)
		// The closing DELETE is bound to ctx by the transport, so a server
		// that hangs cannot hold the call past its deadline.
		_ = cs.Close()
	}
	if err == nil {
		return nil
	}
	return describe(ctx, op, u, t, newRedactor(s.Headers), err)
}

// describe turns a failure into an *Error from what the transport observed,
// in order of precedence, keeping only redacted text from elsewhere.
func describe(ctx context.Context, op string, u *url.URL, t *callTransport, r redactor, err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		e.Op, e.Origin = op, origin(u.Scheme, u.Host)
		return e
	}
	e = &Error{Op: op, Origin: origin(u.Scheme, u.Host)}
	status, netErr := t.observed()
	var wire *jsonrpc.Error
	switch {
	case t.tooLarge.Load():
		e.Kind, e.Detail = ErrTooLarge, fmt.Sprintf("the response is over %d bytes", t.limit)
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		e.Kind, e.ctxErr = ErrTimeout, ctx.Err()
	case ctx.Err() != nil:
		e.Kind, e.ctxErr = ErrCanceled, ctx.Err()
	case isTimeout(netErr) || isTimeout(err):
		e.Kind = ErrTimeout
	case netErr != nil:
		e.Kind, e.Detail = ErrUnreachable, r.detail(netErr.Error())
	case status != 0:
		e.Kind, e.Status = ErrHTTPStatus, status
		if errors.As(err, &wire) {
			e.Detail = r.detail(wire.Message)
		}
	case errors.As(err, &wire):
		e.Kind, e.Detail = ErrServer, r.detail(fmt.Sprintf("%s (code %d)", wire.Message, wire.Code))
	default:
		e.Kind, e.Detail = ErrProtocol, r.detail(err.Error())
	}
	return e
}

func isTimeout(err error) bool {
	if err == nil {
		return false
	}
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) ||
		(errors.As(err, &ne) && ne.Timeout())
}

// headerNameRE is an HTTP token (RFC 9110).
var headerNameRE = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")

// reservedHeaders are set by the transport and the protocol; a tenant's
// header must not replace them. Names starting with Mcp- are reserved too.
var reservedHeaders = map[string]bool{
	"Accept": true, "Connection": true, "Content-Length": true, "Content-Type": true,
	"Host": true, "Last-Event-Id": true, "Te": true, "Trailer": true,
	"Transfer-Encoding": true, "Upgrade": true,
}

// check validates a server's registration. Its messages name headers but
// never their values.
func check(s Server) (*url.URL, http.Header, error) {
	if !ValidServerName(s.Name) {
		return nil, nil, errors.New("the server name must match ^[A-Za-z0-9-]{1,32}$")
	}
	u, err := url.Parse(strings.TrimSpace(s.URL))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, nil, errors.New("the URL must be an http or https URL with a host")
	}
	if u.User != nil {
		return nil, nil, errors.New("the URL must not carry credentials; use headers")
	}
	u.Fragment, u.RawFragment = "", ""
	h, err := checkHeaders(s.Headers)
	if err != nil {
		return nil, nil, err
	}
	return u, h, nil
}

// checkHeaders validates a server's headers; its messages name headers
// but never their values.
func checkHeaders(headers map[string]string) (http.Header, error) {
	if len(headers) > maxHeaders {
		return nil, fmt.Errorf("at most %d headers", maxHeaders)
	}
	h := make(http.Header, len(headers))
	for name, value := range headers {
		if !headerNameRE.MatchString(name) {
			return nil, fmt.Errorf("header name %q is not a valid HTTP token", truncate(name, 64))
		}
		canon := http.CanonicalHeaderKey(name)
		if reservedHeaders[canon] || strings.HasPrefix(canon, "Mcp-") {
			return nil, fmt.Errorf("header %s is reserved", canon)
		}
		if len(value) > maxHeaderValue || strings.ContainsAny(value, "\r\n\x00") {
			return nil, fmt.Errorf("the value of header %s is too long or holds a line break or NUL", canon)
		}
		h[canon] = []string{value}
	}
	return h, nil
}

// ValidateHeaders checks a server's headers as a call would.
func ValidateHeaders(headers map[string]string) error {
	_, err := checkHeaders(headers)
	return err
}

// originOf is the scheme://host of a registered URL, for messages.
func originOf(raw string) string {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return ""
	}
	return origin(u.Scheme, u.Host)
}

// Validate checks a server's registration (name, URL, headers) as a call
// would, before anything is stored; its message names headers, never their
// values.
func (s Server) Validate() error {
	_, _, err := check(s)
	return err
}
