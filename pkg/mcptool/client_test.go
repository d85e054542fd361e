package mcptool_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/bulkhead-dev/bulkhead/pkg/mcptool"
)

// The credentials the test server requires. The token is long enough that a
// server echoing only it (without "Bearer ") is redacted as well.
const (
	token      = "tok-7f3a9c2e51d84b06"
	authValue  = "Bearer " + token
	apiKey     = "key-0d9e8f7a6b5c4d3e"
	serverName = "orders"
)

var orderSchema = json.RawMessage(`{"type":"object","properties":{"order_id":{"type":"string","description":"The order's id"},"quantity":{"type":"integer"}},"required":["order_id"],"additionalProperties":false}`)

// testServer is an MCP server built with the SDK, served over loopback,
// behind a middleware that answers 401 without the expected Authorization.
type testServer struct {
	*httptest.Server

	mu       sync.Mutex
	args     []json.RawMessage // arguments lookup_order received
	apiKeys  []string          // X-Api-Key of each authorized request
	requests int
}

func newTestServer(t *testing.T) *testServer {
	t.Helper()
	ts := &testServer{}
	// A page of one tool forces the client to follow the cursor.
	srv := mcp.NewServer(&mcp.Implementation{Name: "orders", Version: "1"}, &mcp.ServerOptions{PageSize: 1})

	srv.AddTool(&mcp.Tool{Name: "lookup_order", Description: "Look an order up by its id.", InputSchema: orderSchema},
		func(_ context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			raw := append(json.RawMessage(nil), req.Params.Arguments...)
			ts.mu.Lock()
			ts.args = append(ts.args, raw)
			ts.mu.Unlock()
			var in struct {
				OrderID string `json:"order_id"`
			}
			if err := json.Unmarshal(raw, &in); err != nil {
				return nil, err
			}
			return &mcp.CallToolResult{Content: []mcp.Content{
				&mcp.TextContent{Text: "order " + in.OrderID + ": shipped"},
				&mcp.ImageContent{MIMEType: "image/png", Data: []byte{1, 2, 3}},
				&mcp.TextContent{Text: "carrier: DHL"},
			}}, nil
		})
	srv.AddTool(&mcp.Tool{Name: "fail", Description: "Always fails.", InputSchema: json.RawMessage(`{"type":"object"}`)},
		func(context.Context, *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return &mcp.CallToolResult{IsError: true, Content: []mcp.Content{&mcp.TextContent{Text: "out of stock"}}}, nil
		})
	srv.AddTool(&mcp.Tool{Name: "big", InputSchema: json.RawMessage(`{"type":"object"}`)},
		func(context.Context, *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: strings.Repeat("x", 2<<20)}}}, nil
		})
	release := make(chan struct{})
	srv.AddTool(&mcp.Tool{Name: "hang", InputSchema: json.RawMessage(`{"type":"object"}`)},
		func(ctx context.Context, _ *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			select {
			case <-ctx.Done():
			case <-release:
			}
			return nil, errors.New("released")
		})
	srv.AddTool(&mcp.Tool{Name: "echo_auth_error", InputSchema: json.RawMessage(`{"type":"object"}`)},
		func(_ context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return nil, fmt.Errorf("denied for %q and token %s", req.Extra.Header.Get("Authorization"), token)
		})
	srv.AddTool(&mcp.Tool{Name: "echo_auth_text", InputSchema: json.RawMessage(`{"type":"object"}`)},
		func(_ context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{
				Text: "you sent " + req.Extra.Header.Get("Authorization") + " and " + req.Extra.Header.Get("X-Api-Key"),
			}}}, nil
		})
	// Names the model providers would refuse once prefixed.
	srv.AddTool(&mcp.Tool{Name: "dotted.name", InputSchema: json.RawMessage(`{"type":"object"}`)},
		func(context.Context, *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return &mcp.CallToolResult{}, nil
		})
	srv.AddTool(&mcp.Tool{Name: strings.Repeat("n", 60), InputSchema: json.RawMessage(`{"type":"object"}`)},
		func(context.Context, *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return &mcp.CallToolResult{}, nil
		})

	mcpHandler := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return srv }, nil)
	ts.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if got := r.Header.Get("Authorization"); got != authValue {
			// Echo what was sent, as a careless server would.
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			msg, _ := json.Marshal("bad credentials: " + got)
			fmt.Fprintf(w, `{"jsonrpc":"2.0","id":1,"error":{"code":-32001,"message":%s}}`, msg)
			return
		}
		ts.mu.Lock()
		ts.requests++
		ts.apiKeys = append(ts.apiKeys, r.Header.Get("X-Api-Key"))
		ts.mu.Unlock()
		mcpHandler.ServeHTTP(w, r)
	}))
	// Cleanups run last first: release the hanging handler, then close.
	t.Cleanup(ts.Close)
	t.Cleanup(func() { close(release) })
	return ts
}

func (ts *testServer) server() mcptool.Server {
	return mcptool.Server{
		Name:    serverName,
		URL:     ts.URL + "/mcp",
		Headers: map[string]string{"Authorization": authValue, "x-api-key": apiKey},
	}
}

func newClient() *mcptool.Client {
	return &mcptool.Client{HTTP: &http.Client{}}
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// assertNoSecret fails if err's message holds a header value or its token.
func assertNoSecret(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		t.Fatal("want an error")
	}
	for _, s := range []string{authValue, token, apiKey} {
		if strings.Contains(err.Error(), s) {
			t.Errorf("error %q holds a header value", err)
		}
	}
}

func TestListTools(t *testing.T) {
	ts := newTestServer(t)
	tools, skipped, err := newClient().ListTools(ctxFor(t), ts.server())
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]mcptool.Tool{}
	var names []string
	for _, tool := range tools {
		byName[tool.Name] = tool
		names = append(names, tool.Name)
	}
	want := []string{"big", "echo_auth_error", "echo_auth_text", "fail", "hang", "lookup_order"}
	if fmt.Sprint(names) != fmt.Sprint(want) {
		t.Fatalf("tools = %v, want %v", names, want)
	}
	lookup := byName["lookup_order"]
	if lookup.FullName != "orders__lookup_order" || lookup.Description != "Look an order up by its id." {
		t.Errorf("lookup_order = %+v", lookup)
	}
	if !jsonEqual(t, lookup.InputSchema, orderSchema) {
		t.Errorf("lookup_order schema = %s, want %s", lookup.InputSchema, orderSchema)
	}
	if byName["fail"].Description != "Always fails." || !jsonEqual(t, byName["fail"].InputSchema, json.RawMessage(`{"type":"object"}`)) {
		t.Errorf("fail = %+v", byName["fail"])
	}

	var skippedNames []string
	for _, s := range skipped {
		skippedNames = append(skippedNames, s.Tool)
		if s.Reason == "" {
			t.Errorf("skipped %q without a reason", s.Tool)
		}
	}
	if want := fmt.Sprint([]string{"dotted.name", strings.Repeat("n", 60)}); fmt.Sprint(skippedNames) != want {
		t.Errorf("skipped = %v, want %v", skippedNames, want)
	}

	ts.mu.Lock()
	defer ts.mu.Unlock()
	// With one tool per page, listing eight tools takes eight requests
	// after the handshake.
	if ts.requests < 9 {
		t.Errorf("the server saw %d requests; pagination was not followed", ts.requests)
	}
	for _, k := range ts.apiKeys {
		if k != apiKey {
			t.Fatalf("a request arrived with X-Api-Key %q", k)
		}
	}
}

func TestCallToolRoundTrip(t *testing.T) {
	ts := newTestServer(t)
	// A number beyond float64's precision shows the arguments are not
	// decoded and re-encoded on the way.
	args := json.RawMessage(`{"order_id":"A-1001","quantity":12345678901234567890,"note":"ünïcode \"quoted\""}`)
	res, err := newClient().CallTool(ctxFor(t), ts.server(), "lookup_order", args)
	if err != nil {
		t.Fatal(err)
	}
	if want := "order A-1001: shipped\n[image image/png, 3 bytes]\ncarrier: DHL"; res.Text != want || res.IsError {
		t.Errorf("result = %+v, want text %q", res, want)
	}
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if len(ts.args) != 1 {
		t.Fatalf("the tool ran %d times", len(ts.args))
	}
	var got, want bytes.Buffer
	if err := json.Compact(&got, ts.args[0]); err != nil {
		t.Fatal(err)
	}
	_ = json.Compact(&want, args)
	if got.String() != want.String() {
		t.Errorf("the server received %s, want %s", got.String(), want.String())
	}
}

func TestCallToolWithoutArguments(t *testing.T) {
	ts := newTestServer(t)
	res, err := newClient().CallTool(ctxFor(t), ts.server(), "fail", nil)
	if err != nil {
		t.Fatal(err)
	}
	if !res.IsError || res.Text != "out of stock" {
		t.Errorf("result = %+v, want the tool's error", res)
	}
}

func TestCallToolErrors(t *testing.T) {
	ts := newTestServer(t)
	c := newClient()
	for _, tc := range []struct {
		name string
		tool string
		args string
		kind error
	}{
		{"unknown tool", "no_such_tool", `{}`, mcptool.ErrServer},
		{"handler error", "echo_auth_error", `{}`, mcptool.ErrServer},
		{"arguments not an object", "lookup_order", `[1,2]`, mcptool.ErrInvalid},
		{"arguments not JSON", "lookup_order", `{`, mcptool.ErrInvalid},
		{"tool name the model could not have called", "dotted.name", `{}`, mcptool.ErrInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.CallTool(ctxFor(t), ts.server(), tc.tool, json.RawMessage(tc.args))
			if !errors.Is(err, tc.kind) {
				t.Fatalf("err = %v, want %v", err, tc.kind)
			}
			assertNoSecret(t, err)
		})
	}
}

func TestCallToolResultTooLarge(t *testing.T) {
	ts := newTestServer(t)
	// Over the text cap only, then over the response cap as well.
	for _, max := range []int{0, 64 << 10} {
		c := &mcptool.Client{HTTP: &http.Client{}, MaxResultBytes: max}
		res, err := c.CallTool(ctxFor(t), ts.server(), "big", nil)
		if !errors.Is(err, mcptool.ErrTooLarge) {
			t.Fatalf("MaxResultBytes %d: err = %v, result %d bytes; want ErrTooLarge", max, err, len(res.Text))
		}
		assertNoSecret(t, err)
	}
	// A cap the result fits passes it whole.
	c := &mcptool.Client{HTTP: &http.Client{}, MaxResultBytes: 2 << 20}
	res, err := c.CallTool(ctxFor(t), ts.server(), "big", nil)
	if err != nil || len(res.Text) != 2<<20 {
		t.Fatalf("err = %v, %d bytes; want the whole result", err, len(res.Text))
	}
}

func TestCallToolHangingTool(t *testing.T) {
	ts := newTestServer(t)
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	_, err := newClient().CallTool(ctx, ts.server(), "hang", nil)
	if !errors.Is(err, mcptool.ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want a timeout", err)
	}
	assertNoSecret(t, err)
}

func TestHangingServer(t *testing.T) {
	// Accepts the request and never answers, not even the handshake.
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })

	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	s := mcptool.Server{Name: "slow", URL: srv.URL, Headers: map[string]string{"Authorization": authValue}}
	_, _, err := newClient().ListTools(ctx, s)
	if !errors.Is(err, mcptool.ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want a timeout", err)
	}
	assertNoSecret(t, err)
}

func TestClientTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })

	// The caller's client's own timeout, not the context, ends the call.
	c := &mcptool.Client{HTTP: &http.Client{Timeout: 200 * time.Millisecond}}
	s := mcptool.Server{Name: "slow", URL: srv.URL, Headers: map[string]string{"Authorization": authValue}}
	_, _, err := c.ListTools(ctxFor(t), s)
	if !errors.Is(err, mcptool.ErrTimeout) {
		t.Fatalf("err = %v, want ErrTimeout", err)
	}
	assertNoSecret(t, err)
}

func TestServerDown(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	s := mcptool.Server{Name: "down", URL: "http://" + addr + "/mcp", Headers: map[string]string{"Authorization": authValue}}
	_, _, err = newClient().ListTools(ctxFor(t), s)
	if !errors.Is(err, mcptool.ErrUnreachable) {
		t.Fatalf("err = %v, want ErrUnreachable", err)
	}
	var e *mcptool.Error
	if !errors.As(err, &e) || e.Origin != "http://"+addr || e.Op != "list tools" {
		t.Errorf("err = %#v", err)
	}
	assertNoSecret(t, err)
}

func TestAuthorization(t *testing.T) {
	ts := newTestServer(t)
	c := newClient()

	t.Run("with the header", func(t *testing.T) {
		if _, _, err := c.ListTools(ctxFor(t), ts.server()); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("without it", func(t *testing.T) {
		s := ts.server()
		s.Headers = nil
		_, _, err := c.ListTools(ctxFor(t), s)
		var e *mcptool.Error
		if !errors.Is(err, mcptool.ErrHTTPStatus) || !errors.As(err, &e) || e.Status != http.StatusUnauthorized {
			t.Fatalf("err = %v, want HTTP 401", err)
		}
	})
	t.Run("with a wrong value the server echoes", func(t *testing.T) {
		s := ts.server()
		s.Headers = map[string]string{"Authorization": "Bearer wrong-0123456789abcdef"}
		_, err := c.CallTool(ctxFor(t), s, "lookup_order", json.RawMessage(`{"order_id":"1"}`))
		var e *mcptool.Error
		if !errors.As(err, &e) || e.Status != http.StatusUnauthorized {
			t.Fatalf("err = %v, want HTTP 401", err)
		}
		if strings.Contains(err.Error(), "wrong-0123456789abcdef") {
			t.Errorf("error %q holds the header's value", err)
		}
		if !strings.Contains(e.Detail, "bad credentials") {
			t.Errorf("detail %q lost the server's message", e.Detail)
		}
	})
}

func TestHeaderValuesAreRedactedFromResults(t *testing.T) {
	ts := newTestServer(t)
	res, err := newClient().CallTool(ctxFor(t), ts.server(), "echo_auth_text", nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := "you sent [redacted] and [redacted]"; res.Text != want {
		t.Errorf("text = %q, want %q", res.Text, want)
	}
}

func TestHeadersStayOnTheServersOrigin(t *testing.T) {
	var mu sync.Mutex
	var leaked []string
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		leaked = append(leaked, r.Header.Get("Authorization")+r.Header.Get("X-Api-Key"))
		mu.Unlock()
		w.WriteHeader(http.StatusUnauthorized)
	}))
	t.Cleanup(elsewhere.Close)
	redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, elsewhere.URL+"/mcp", http.StatusTemporaryRedirect)
	}))
	t.Cleanup(redirector.Close)

	s := mcptool.Server{Name: "moved", URL: redirector.URL, Headers: map[string]string{"Authorization": authValue, "X-Api-Key": apiKey}}
	_, _, err := newClient().ListTools(ctxFor(t), s)
	if !errors.Is(err, mcptool.ErrHTTPStatus) {
		t.Fatalf("err = %v, want the other origin's 401", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(leaked) == 0 {
		t.Fatal("the redirect was not followed")
	}
	for _, h := range leaked {
		if h != "" {
			t.Errorf("the other origin received the server's headers: %q", h)
		}
	}
}

func TestInvalidRegistration(t *testing.T) {
	var requests int
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		requests++
		mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	good := mcptool.Server{Name: "ok", URL: srv.URL, Headers: map[string]string{"Authorization": authValue}}

	for _, tc := range []struct {
		name   string
		change func(*mcptool.Server)
		client *mcptool.Client
	}{
		{"server name with an underscore", func(s *mcptool.Server) { s.Name = "my_crm" }, nil},
		{"not http", func(s *mcptool.Server) { s.URL = "ftp://example.com/mcp" }, nil},
		{"credentials in the URL", func(s *mcptool.Server) { s.URL = "http://user:" + token + "@127.0.0.1/mcp" }, nil},
		{"reserved header", func(s *mcptool.Server) { s.Headers = map[string]string{"Host": authValue} }, nil},
		{"protocol header", func(s *mcptool.Server) { s.Headers = map[string]string{"Mcp-Session-Id": authValue} }, nil},
		{"line break in a value", func(s *mcptool.Server) { s.Headers = map[string]string{"Authorization": authValue + "\r\nX: y"} }, nil},
		{"bad header name", func(s *mcptool.Server) { s.Headers = map[string]string{"Bad Name": authValue} }, nil},
		{"no HTTP client", func(*mcptool.Server) {}, &mcptool.Client{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := good
			tc.change(&s)
			c := tc.client
			if c == nil {
				c = newClient()
			}
			_, _, err := c.ListTools(ctxFor(t), s)
			if !errors.Is(err, mcptool.ErrInvalid) {
				t.Fatalf("err = %v, want ErrInvalid", err)
			}
			assertNoSecret(t, err)
		})
	}
	mu.Lock()
	defer mu.Unlock()
	if requests != 0 {
		t.Errorf("%d requests were sent for invalid registrations", requests)
	}
}

func TestCallerClientIsNotModified(t *testing.T) {
	ts := newTestServer(t)
	rt := &countingTransport{base: http.DefaultTransport}
	hc := &http.Client{Transport: rt}
	c := &mcptool.Client{HTTP: hc}
	if _, err := c.CallTool(ctxFor(t), ts.server(), "fail", nil); err != nil {
		t.Fatal(err)
	}
	if hc.Transport != rt {
		t.Error("the caller's client's transport was replaced")
	}
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if rt.n == 0 {
		t.Error("the requests did not go through the caller's transport")
	}
}

// countingTransport counts the requests it carries.
type countingTransport struct {
	base http.RoundTripper
	mu   sync.Mutex
	n    int
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.mu.Lock()
	c.n++
	c.mu.Unlock()
	return c.base.RoundTrip(r)
}

func jsonEqual(t *testing.T, a, b json.RawMessage) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatalf("%s: %v", a, err)
	}
	if err := json.Unmarshal(b, &y); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	xs, _ := json.Marshal(x)
	ys, _ := json.Marshal(y)
	return string(xs) == string(ys)
}

func TestNotAnMCPServer(t *testing.T) {
	for _, tc := range []struct {
		name    string
		handler http.HandlerFunc
		kind    error
		status  int
	}{
		{"unavailable", func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "down for maintenance, your key is "+r.Header.Get("Authorization"), http.StatusServiceUnavailable)
		}, mcptool.ErrHTTPStatus, http.StatusServiceUnavailable},
		{"not found", func(w http.ResponseWriter, r *http.Request) {
			http.NotFound(w, r)
		}, mcptool.ErrHTTPStatus, http.StatusNotFound},
		{"a web page", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			fmt.Fprintf(w, "<html>%s</html>", r.Header.Get("Authorization"))
		}, mcptool.ErrProtocol, 0},
		{"JSON that is not JSON-RPC", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"auth":%q}`, r.Header.Get("Authorization"))
		}, mcptool.ErrProtocol, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(tc.handler)
			t.Cleanup(srv.Close)
			s := mcptool.Server{Name: "odd", URL: srv.URL, Headers: map[string]string{"Authorization": authValue}}
			_, _, err := newClient().ListTools(ctxFor(t), s)
			var e *mcptool.Error
			if !errors.Is(err, tc.kind) || !errors.As(err, &e) || e.Status != tc.status {
				t.Fatalf("err = %v, want %v (status %d)", err, tc.kind, tc.status)
			}
			assertNoSecret(t, err)
		})
	}
}

// A server that predates server/discover refuses it with a plain 400; the
// SDK falls back to initialize, and that refusal must not colour a later
// failure.
func TestServerWithoutDiscover(t *testing.T) {
	ts := newTestServer(t)
	inner := ts.Config.Handler
	ts.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if bytes.Contains(body, []byte(`"server/discover"`)) {
			http.Error(w, "unknown method", http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		inner.ServeHTTP(w, r)
	})
	c := newClient()
	res, err := c.CallTool(ctxFor(t), ts.server(), "fail", nil)
	if err != nil || !res.IsError {
		t.Fatalf("res = %+v, err = %v; want the tool's error", res, err)
	}
	_, err = c.CallTool(ctxFor(t), ts.server(), "no_such_tool", nil)
	if !errors.Is(err, mcptool.ErrServer) {
		t.Fatalf("err = %v, want ErrServer", err)
	}
}

func TestListToolsStopsAtMaxTools(t *testing.T) {
	srv := mcp.NewServer(&mcp.Implementation{Name: "many", Version: "1"}, &mcp.ServerOptions{PageSize: 400})
	for i := range mcptool.MaxTools + 5 {
		srv.AddTool(&mcp.Tool{Name: fmt.Sprintf("t%04d", i), InputSchema: json.RawMessage(`{"type":"object"}`)},
			func(context.Context, *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
				return &mcp.CallToolResult{}, nil
			})
	}
	hs := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return srv }, nil))
	t.Cleanup(hs.Close)

	tools, skipped, err := newClient().ListTools(ctxFor(t), mcptool.Server{Name: "many", URL: hs.URL})
	if err != nil {
		t.Fatal(err)
	}
	if len(tools) != mcptool.MaxTools || tools[len(tools)-1].Name != fmt.Sprintf("t%04d", mcptool.MaxTools-1) {
		t.Errorf("got %d tools, the last %q; want the first %d", len(tools), tools[len(tools)-1].Name, mcptool.MaxTools)
	}
	if len(skipped) != 1 || skipped[0].Tool != "" || !strings.Contains(skipped[0].Reason, "more than 1000 tools") {
		t.Errorf("skipped = %+v, want one entry for the tools beyond the bound", skipped)
	}
}

// BenchmarkCallTool measures a whole call on loopback: a session opened,
// one tools/call, the session closed.
func BenchmarkCallTool(b *testing.B) {
	srv := mcp.NewServer(&mcp.Implementation{Name: "bench", Version: "1"}, nil)
	srv.AddTool(&mcp.Tool{Name: "echo", InputSchema: json.RawMessage(`{"type":"object"}`)},
		func(_ context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: string(req.Params.Arguments)}}}, nil
		})
	hs := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return srv }, nil))
	b.Cleanup(hs.Close)
	c := newClient()
	s := mcptool.Server{Name: "bench", URL: hs.URL, Headers: map[string]string{"Authorization": authValue}}
	args := json.RawMessage(`{"q":"hello"}`)
	for b.Loop() {
		if _, err := c.CallTool(b.Context(), s, "echo", args); err != nil {
			b.Fatal(err)
		}
	}
}
