package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bulkhead-dev/bulkhead/pkg/bulkhead"
	"github.com/bulkhead-dev/bulkhead/pkg/gateway"
	"github.com/bulkhead-dev/bulkhead/pkg/offline"
	"github.com/bulkhead-dev/bulkhead/pkg/platform/platformtest"
)

const adminToken = "test-admin-token"

// clock is an injectable clock tests move by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

// countingModel is the offline model with a call counter and an optional delay.
type countingModel struct {
	inner bulkhead.Model
	calls atomic.Int64
}

func (m *countingModel) Generate(ctx context.Context, req bulkhead.ModelRequest) (bulkhead.ModelResponse, error) {
	m.calls.Add(1)
	return m.inner.Generate(ctx, req)
}

// CountTokens forwards to the offline model's exact count.
func (m *countingModel) CountTokens(req bulkhead.ModelRequest) int64 {
	return m.inner.(bulkhead.TokenCounter).CountTokens(req)
}

type harness struct {
	t     testing.TB
	env   *platformtest.Env
	srv   *httptest.Server
	clock *clock
	model *countingModel
}

func newHarness(tb testing.TB, delay time.Duration, opts ...platformtest.Option) *harness {
	tb.Helper()
	h := &harness{t: tb, clock: &clock{t: time.Date(2026, 11, 28, 10, 30, 0, 0, time.UTC)},
		model: &countingModel{inner: offline.New(delay)}}
	h.env = platformtest.Start(tb, append([]platformtest.Option{platformtest.WithClock(h.clock.Now), platformtest.WithModel(h.model)}, opts...)...)
	gw := h.env.Gateway(tb, adminToken, func(c *gateway.Config) { c.Now = h.clock.Now })
	h.srv = httptest.NewServer(gw)
	tb.Cleanup(h.srv.Close)
	return h
}

type response struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

func (r response) str(key string) string {
	s, _ := r.body[key].(string)
	return s
}

func (r response) errCode() string {
	e, _ := r.body["error"].(map[string]any)
	s, _ := e["code"].(string)
	return s
}

func (h *harness) do(method, path, key string, body any) response {
	h.t.Helper()
	return h.doWithHeader(method, path, key, body, "", "")
}

// doWithHeader is do with one extra request header (none when name is "").
func (h *harness) doWithHeader(method, path, key string, body any, name, value string) response {
	h.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = bytes.NewBufferString(b)
	default:
		buf, err := json.Marshal(b)
		if err != nil {
			h.t.Fatal(err)
		}
		rd = bytes.NewReader(buf)
	}
	req, err := http.NewRequest(method, h.srv.URL+path, rd)
	if err != nil {
		h.t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if name != "" {
		req.Header.Set(name, value)
	}
	resp, err := h.srv.Client().Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	checkResponse(h.t, req, resp.StatusCode, resp.Header, raw)
	out := response{status: resp.StatusCode, header: resp.Header, raw: string(raw)}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	_ = dec.Decode(&out.body)
	return out
}

// must asserts the status and returns the response.
func (h *harness) must(want int, method, path, key string, body any) response {
	h.t.Helper()
	r := h.do(method, path, key, body)
	if r.status != want {
		h.t.Fatalf("%s %s: status %d, want %d; body %s", method, path, r.status, want, r.raw)
	}
	return r
}

type tenant struct {
	id, key string
}

func (h *harness) newTenant(name, tier string) tenant {
	h.t.Helper()
	r := h.must(201, "POST", "/v1/admin/tenants", adminToken, map[string]any{"name": name, "tier": tier})
	return tenant{id: r.str("tenant_id"), key: r.str("api_key")}
}

func (h *harness) newAgent(t tenant) string {
	h.t.Helper()
	r := h.must(201, "POST", "/v1/agents", t.key, map[string]any{"name": "a", "system_prompt": "Be brief.", "tools": []string{"search_kb"}})
	return r.str("agent_id")
}

func num(tb testing.TB, v any) int64 {
	tb.Helper()
	n, ok := v.(json.Number)
	if !ok {
		tb.Fatalf("%v (%T) is not a JSON number", v, v)
	}
	i, err := n.Int64()
	if err != nil {
		tb.Fatalf("%v is not an integer", v)
	}
	return i
}

// micros converts an exact USD JSON number to micro-dollars.
func micros(tb testing.TB, v any) int64 {
	tb.Helper()
	n, ok := v.(json.Number)
	if !ok {
		tb.Fatalf("%v (%T) is not a JSON number", v, v)
	}
	r, ok := new(big.Rat).SetString(n.String())
	if !ok {
		tb.Fatalf("%v is not a decimal", v)
	}
	r.Mul(r, big.NewRat(1_000_000, 1))
	if !r.IsInt() {
		tb.Fatalf("%v has more than 6 decimals", v)
	}
	return r.Num().Int64()
}

func (h *harness) usage(t tenant) map[string]any {
	h.t.Helper()
	r := h.must(200, "GET", "/v1/usage", t.key, nil)
	u, _ := r.body["usage"].(map[string]any)
	return u
}
