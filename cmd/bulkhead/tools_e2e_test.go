//go:build unix

package main_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/bulkhead-dev/bulkhead/pkg/toolsig"
)

// receiver is a tenant's tool endpoint on loopback: it verifies every
// call's signature as the README tells receivers to, and keeps what it got.
type receiver struct {
	*httptest.Server
	mu      sync.Mutex
	secret  string
	calls   []map[string]any
	headers []string
	bad     []string
	// slow makes it wait before answering; big makes it answer 5 MiB.
	slow, big atomic.Bool
}

func newReceiver(t *testing.T) *receiver {
	rc := &receiver{}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		sig := r.Header.Get(toolsig.Header)
		rc.mu.Lock()
		secret := rc.secret
		rc.headers = append(rc.headers, sig)
		rc.mu.Unlock()
		if err := toolsig.Verify(sig, body, secret, time.Now(), toolsig.DefaultTolerance); err != nil || r.Method != http.MethodPost {
			rc.mu.Lock()
			rc.bad = append(rc.bad, fmt.Sprintf("%s %v", r.Method, err))
			rc.mu.Unlock()
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		var call map[string]any
		_ = json.Unmarshal(body, &call)
		rc.mu.Lock()
		rc.calls = append(rc.calls, call)
		rc.mu.Unlock()
		switch {
		case rc.slow.Load():
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
			return
		case rc.big.Load():
			w.Header().Set("Content-Type", "text/plain")
			_, _ = w.Write(bytes.Repeat([]byte("x"), 5<<20))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"order": "A-1001", "state": "shipped"})
	}))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *receiver) setSecret(s string) {
	rc.mu.Lock()
	rc.secret = s
	rc.mu.Unlock()
}

func (rc *receiver) snapshot() (calls []map[string]any, headers, bad []string) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]map[string]any(nil), rc.calls...), append([]string(nil), rc.headers...), append([]string(nil), rc.bad...)
}

// countingListener counts the connections it accepts.
type countingListener struct {
	net.Listener
	n atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

// mcpOrders is a tenant's MCP server on loopback, built with the MCP SDK,
// which wants a bearer token.
func mcpOrders(t *testing.T, token string) *httptest.Server {
	srv := mcp.NewServer(&mcp.Implementation{Name: "orders", Version: "1"}, nil)
	srv.AddTool(&mcp.Tool{Name: "lookup_order", Description: "Look an order up.",
		InputSchema: json.RawMessage(`{"type":"object","properties":{"query":{"type":"string"}},"required":["query"]}`)},
		func(_ context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			var args struct {
				Query string `json:"query"`
			}
			_ = json.Unmarshal(req.Params.Arguments, &args)
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "order " + args.Query + " is in transit"}}}, nil
		})
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return srv }, nil)
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+token {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

// putDoc uploads a knowledge-base document as its raw body.
func putDoc(t *testing.T, base, key, id, text string) *response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPut, base+"/v1/kb/documents/"+id, strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "text/markdown")
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r, err := readResponse(resp, "PUT", "/v1/kb/documents/"+id)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// toolResults are the tool messages of a conversation's transcript.
func toolResults(t *testing.T, c *client, key, conv string) []string {
	t.Helper()
	r := c.must(t, http.StatusOK, "GET", "/v1/conversations/"+conv, key, nil)
	msgs, _ := r.JSON["messages"].([]any)
	var out []string
	for _, m := range msgs {
		if mm, _ := m.(map[string]any); mm["role"] == "tool" {
			out = append(out, fmt.Sprint(mm["content"]))
		}
	}
	return out
}

func toolCalls(t *testing.T, r *response) []map[string]any {
	t.Helper()
	raw, ok := r.JSON["tool_calls"].([]any)
	if !ok {
		t.Fatalf("no tool_calls in %v", r)
	}
	out := make([]map[string]any, len(raw))
	for i, c := range raw {
		out[i], _ = c.(map[string]any)
	}
	return out
}

// TestToolsEndToEnd: bulkhead dev runs tenants' tools. A signed call
// reaches a receiver on loopback (allowed by BULKHEAD_TOOL_ALLOW_HOSTS) and
// is verified there; the guard refuses private addresses before any
// connection; a slow tool times out and a 5 MiB answer is refused, both as
// tool errors; the seed's support agent searches uploaded documents and
// opens a ticket; an MCP server's tool answers; and another tenant sees and
// calls none of it.
func TestToolsEndToEnd(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t)
	const mcpToken = "mcp-secret-token-123456"
	orders := mcpOrders(t, mcpToken)
	// A listener the guard must never connect to: loopback, not allowed.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	forbidden := &countingListener{Listener: ln}
	go func() { _ = http.Serve(forbidden, http.NotFoundHandler()) }()
	t.Cleanup(func() { ln.Close() })

	allow := strings.TrimPrefix(rc.URL, "http://") + "," + strings.TrimPrefix(orders.URL, "http://")
	p := startDevEnv(t, t, t.TempDir(), quotaToken, "BULKHEAD_TOOL_ALLOW_HOSTS="+allow)
	c := newClient(p.URL)
	a := newQuotaTenant(t, c, "professional", nil, nil)
	b := newQuotaTenant(t, c, "professional", nil, nil)

	// A refused URL is a 400 at create; nothing is dialed.
	for _, u := range []string{"http://" + ln.Addr().String() + "/", "https://169.254.169.254/latest/meta-data",
		"https://10.0.0.7/hook", "https://2130706433/", "http://example.com/hook", "https://[::ffff:127.0.0.1]/"} {
		c.must(t, http.StatusBadRequest, "POST", "/v1/tools", a.Key, map[string]any{"name": "evil", "url": u,
			"input_schema": map[string]any{"type": "object"}})
	}

	schema := map[string]any{"type": "object", "properties": map[string]any{"query": map[string]any{"type": "string"}}, "required": []string{"query"}}
	created := c.must(t, http.StatusCreated, "POST", "/v1/tools", a.Key, map[string]any{"name": "order_status",
		"description": "Where an order is.", "url": rc.URL + "/hook", "input_schema": schema, "timeout_ms": 1000})
	toolID, secret := created.str(t, "tool_id"), created.str(t, "signing_secret")
	if !strings.HasPrefix(secret, toolsig.SecretPrefix) {
		t.Fatalf("signing_secret %q", secret)
	}
	rc.setSecret(secret)
	if got := c.must(t, http.StatusOK, "GET", "/v1/tools/"+toolID, a.Key, nil); strings.Contains(string(got.Body), secret) {
		t.Fatal("GET shows the signing secret")
	}

	agent := c.must(t, http.StatusCreated, "POST", "/v1/agents", a.Key, map[string]any{"name": "orders", "system_prompt": "Help.",
		"tools": []string{"order_status"}}).str(t, "agent_id")
	c.must(t, http.StatusBadRequest, "POST", "/v1/agents", a.Key, map[string]any{"name": "x", "system_prompt": "y", "tools": []string{"no_such_tool"}})

	t.Run("signed call", func(t *testing.T) {
		r := c.must(t, http.StatusOK, "POST", "/v1/agents/"+agent+"/execute", a.Key, map[string]any{"message": "use tool order_status A-1001"})
		calls, headers, bad := rc.snapshot()
		if len(bad) != 0 || len(calls) != 1 {
			t.Fatalf("receiver: %d calls, refused %v", len(calls), bad)
		}
		call := calls[0]
		if call["tool"] != "order_status" || call["execution_id"] != r.str(t, "execution_id") || call["agent_id"] != agent ||
			call["conversation_id"] != r.str(t, "conversation_id") || !strings.HasPrefix(fmt.Sprint(call["call_id"]), "call_") {
			t.Errorf("call %v for execution %v", call, r)
		}
		if args, _ := call["arguments"].(map[string]any); args["query"] != "A-1001" {
			t.Errorf("arguments %v", call["arguments"])
		}
		if strings.Count(headers[0], "v1=") != 1 {
			t.Errorf("signature header %q: want one v1", headers[0])
		}
		tc := toolCalls(t, r)
		if len(tc) != 1 || tc[0]["name"] != "order_status" || tc[0]["status"] != "ok" || !strings.Contains(r.str(t, "message"), "shipped") {
			t.Errorf("execution %v", r)
		}
	})

	t.Run("rotation signs with both secrets", func(t *testing.T) {
		rot := c.must(t, http.StatusOK, "POST", "/v1/tools/"+toolID+"/rotate-secret", a.Key, nil)
		newSecret := rot.str(t, "signing_secret")
		// The receiver still knows only the old secret: the call verifies.
		c.must(t, http.StatusOK, "POST", "/v1/agents/"+agent+"/execute", a.Key, map[string]any{"message": "use tool order_status A-1002"})
		rc.setSecret(newSecret)
		c.must(t, http.StatusOK, "POST", "/v1/agents/"+agent+"/execute", a.Key, map[string]any{"message": "use tool order_status A-1003"})
		_, headers, bad := rc.snapshot()
		if len(bad) != 0 || strings.Count(headers[len(headers)-1], "v1=") != 2 {
			t.Errorf("refused %v; last header %q: want two signatures", bad, headers[len(headers)-1])
		}
	})

	t.Run("slow tool times out", func(t *testing.T) {
		rc.slow.Store(true)
		defer rc.slow.Store(false)
		r := c.must(t, http.StatusOK, "POST", "/v1/agents/"+agent+"/execute", a.Key, map[string]any{"message": "use tool order_status A-1004"})
		tc := toolCalls(t, r)
		if len(tc) != 1 || tc[0]["status"] != "error" || r.str(t, "status") != "completed" || !strings.Contains(r.str(t, "message"), "did not answer in time") {
			t.Errorf("execution %v", r)
		}
		if d, _ := tc[0]["duration_ms"].(json.Number).Int64(); d < 900 || d > 4000 {
			t.Errorf("duration_ms %d: want about the 1000 ms timeout", d)
		}
	})

	t.Run("5 MiB answer", func(t *testing.T) {
		// A timeout that a loaded machine cannot reach: the answer's size
		// alone must end the call.
		c.must(t, http.StatusOK, "PATCH", "/v1/tools/"+toolID, a.Key, map[string]any{"timeout_ms": 30000})
		rc.big.Store(true)
		defer rc.big.Store(false)
		r := c.must(t, http.StatusOK, "POST", "/v1/agents/"+agent+"/execute", a.Key, map[string]any{"message": "use tool order_status A-1005"})
		if tc := toolCalls(t, r); len(tc) != 1 || tc[0]["status"] != "error" || !strings.Contains(r.str(t, "message"), "larger than") {
			t.Errorf("execution %v", r)
		}
	})

	t.Run("refused at dial time", func(t *testing.T) {
		// A name that resolves to loopback is refused when called, not
		// only a literal at create: the tool's URL names localhost on a
		// port that is not allow-listed.
		port := ln.Addr().(*net.TCPAddr).Port
		c.must(t, http.StatusBadRequest, "POST", "/v1/tools", a.Key, map[string]any{"name": "sneaky",
			"url": fmt.Sprintf("http://localhost:%d/", port), "input_schema": schema})
		if n := forbidden.n.Load(); n != 0 {
			t.Errorf("the refused listener saw %d connections", n)
		}
	})

	t.Run("support agent", func(t *testing.T) {
		if r := putDoc(t, p.URL, a.Key, "refunds.md", "# Refunds\n\nRefunds are paid within 14 days of a return.\n\nShipping costs are not refunded."); r.Status != http.StatusOK {
			t.Fatalf("put document: %v", r)
		}
		putDoc(t, p.URL, a.Key, "shipping.md", "# Shipping\n\nOrders ship from Rotterdam in two working days.")
		support := c.must(t, http.StatusCreated, "POST", "/v1/agents", a.Key, map[string]any{"name": "support",
			"system_prompt": "You are a support agent.", "tools": []string{"search_kb", "create_ticket"}}).str(t, "agent_id")
		r := c.must(t, http.StatusOK, "POST", "/v1/agents/"+support+"/execute", a.Key, map[string]any{"message": "use tool search_kb refund days"})
		results := toolResults(t, c, a.Key, r.str(t, "conversation_id"))
		if tc := toolCalls(t, r); len(tc) != 1 || tc[0]["status"] != "ok" || len(results) != 1 ||
			!strings.HasPrefix(results[0], `{"results":[{"doc_id":"refunds.md"`) || !strings.Contains(results[0], "14 days") {
			t.Errorf("search: %v\ntool results %q", r, results)
		}
		r = c.must(t, http.StatusOK, "POST", "/v1/agents/"+support+"/execute", a.Key, map[string]any{
			"message": "use tool create_ticket Customer asks for a refund of order A-1001", "conversation_id": r.str(t, "conversation_id")})
		if tc := toolCalls(t, r); len(tc) != 1 || tc[0]["status"] != "ok" {
			t.Errorf("ticket: %v", r)
		}
		list := c.must(t, http.StatusOK, "GET", "/v1/tickets", a.Key, nil)
		data, _ := list.JSON["data"].([]any)
		if len(data) != 1 || !strings.Contains(fmt.Sprint(data[0]), "refund of order A-1001") || !strings.Contains(fmt.Sprint(data[0]), support) {
			t.Errorf("tickets %v", list)
		}
	})

	t.Run("MCP tool", func(t *testing.T) {
		c.must(t, http.StatusCreated, "POST", "/v1/tools", a.Key, map[string]any{"type": "mcp", "name": "orders", "url": orders.URL + "/",
			"headers": map[string]string{"Authorization": "Bearer " + mcpToken}})
		c.must(t, http.StatusBadRequest, "POST", "/v1/agents", a.Key, map[string]any{"name": "m", "system_prompt": "y", "tools": []string{"orders__no_such"}})
		mcpAgent := c.must(t, http.StatusCreated, "POST", "/v1/agents", a.Key, map[string]any{"name": "mcp", "system_prompt": "Help.",
			"tools": []string{"orders__lookup_order"}}).str(t, "agent_id")
		r := c.must(t, http.StatusOK, "POST", "/v1/agents/"+mcpAgent+"/execute", a.Key, map[string]any{"message": "use tool orders__lookup_order A-77"})
		if tc := toolCalls(t, r); len(tc) != 1 || tc[0]["status"] != "ok" || !strings.Contains(r.str(t, "message"), "order A-77 is in transit") {
			t.Errorf("mcp: %v", r)
		}
		list := c.must(t, http.StatusOK, "GET", "/v1/tools", a.Key, nil)
		if strings.Contains(string(list.Body), mcpToken) || !strings.Contains(string(list.Body), `"Authorization"`) {
			t.Errorf("tool list shows header values, or not the header's name: %s", list.Body)
		}
	})

	t.Run("another tenant", func(t *testing.T) {
		for _, path := range []string{"/v1/tools/" + toolID, "/v1/kb/documents/refunds.md"} {
			c.must(t, http.StatusNotFound, "GET", path, b.Key, nil)
		}
		c.must(t, http.StatusNotFound, "PATCH", "/v1/tools/"+toolID, b.Key, map[string]any{"description": "mine"})
		c.must(t, http.StatusNotFound, "DELETE", "/v1/tools/"+toolID, b.Key, nil)
		c.must(t, http.StatusNotFound, "POST", "/v1/tools/"+toolID+"/rotate-secret", b.Key, nil)
		for _, path := range []string{"/v1/tools", "/v1/kb/documents", "/v1/tickets"} {
			if data, _ := c.must(t, http.StatusOK, "GET", path, b.Key, nil).JSON["data"].([]any); len(data) != 0 {
				t.Errorf("%s shows another tenant's items: %v", path, data)
			}
		}
		// B cannot name A's tool, and B's search finds none of A's documents.
		c.must(t, http.StatusBadRequest, "POST", "/v1/agents", b.Key, map[string]any{"name": "x", "system_prompt": "y", "tools": []string{"order_status"}})
		bs := c.must(t, http.StatusCreated, "POST", "/v1/agents", b.Key, map[string]any{"name": "s", "system_prompt": "y", "tools": []string{"search_kb"}}).str(t, "agent_id")
		r := c.must(t, http.StatusOK, "POST", "/v1/agents/"+bs+"/execute", b.Key, map[string]any{"message": "use tool search_kb refund days"})
		if res := toolResults(t, c, b.Key, r.str(t, "conversation_id")); len(res) != 1 || strings.Contains(res[0], "14 days") {
			t.Errorf("B's search: %q", res)
		}
	})

	rec := records(t, c, a.Key)
	var n int64
	for _, r := range rec {
		if v, ok := r["tool_calls"].(json.Number); ok {
			k, _ := v.Int64()
			n += k
		}
	}
	if n < 7 {
		t.Errorf("usage records count %d tool calls, want at least 7", n)
	}
	if strings.Contains(p.stderr.String(), secret) || strings.Contains(p.stderr.String(), mcpToken) ||
		strings.Contains(p.stdout.String(), secret) || strings.Contains(p.stdout.String(), mcpToken) {
		t.Error("a tool secret appears in the platform's output")
	}
}
