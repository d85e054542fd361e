package api_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/bulkhead-dev/bulkhead/pkg/api"
	"github.com/bulkhead-dev/bulkhead/pkg/api/apispec"
)

func loadSpec(tb testing.TB) *apispec.Oracle {
	tb.Helper()
	s, err := apispec.Load()
	if err != nil {
		tb.Fatalf("OpenAPI document: %v", err)
	}
	return s
}

// checkResponse validates one exchange against the OpenAPI document
// (apispec.Oracle.Check). Benchmarks skip it: they measure the API, not the
// validator.
func checkResponse(tb testing.TB, req *http.Request, status int, header http.Header, raw []byte) {
	tb.Helper()
	if _, bench := tb.(*testing.B); bench {
		return
	}
	if err := loadSpec(tb).Check(req, status, header, raw); err != nil {
		tb.Error(err)
	}
}

// TestOpenAPIDocumentValid loads the document and validates it (OpenAPI 3.1).
func TestOpenAPIDocumentValid(t *testing.T) {
	s := loadSpec(t)
	if !s.Doc.IsOpenAPI31OrLater() {
		t.Errorf("openapi %q, want 3.1", s.Doc.OpenAPI)
	}
	// The YAML as written and the JSON as served are the same document.
	y, err := openapi3.NewLoader().LoadFromData(api.OpenAPIYAML())
	if err != nil {
		t.Fatalf("openapi.yaml: %v", err)
	}
	a, _ := json.Marshal(y)
	b, _ := json.Marshal(s.Doc)
	if !bytes.Equal(a, b) {
		t.Error("openapi.yaml and /openapi.json differ")
	}
}

// TestOpenAPIMatchesRoutes keeps the document and the route table equal:
// every route is an operation of the document, and every operation a route,
// with the route's authorization.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	s := loadSpec(t)
	routes := map[string]api.Route{}
	for _, r := range api.Routes() {
		routes[r.Method+" "+r.Resource] = r
	}
	ops := map[string]*openapi3.Operation{}
	for path, item := range s.Doc.Paths.Map() {
		for method, op := range item.Operations() {
			ops[method+" "+path] = op
		}
	}
	for k, r := range routes {
		op, ok := ops[k]
		if !ok {
			t.Errorf("route %s is not in the OpenAPI document", k)
			continue
		}
		sec := s.Doc.Security
		if op.Security != nil {
			sec = *op.Security
		}
		var schemes []string
		for _, req := range sec {
			for name := range req {
				schemes = append(schemes, name)
			}
		}
		slices.Sort(schemes)
		want := map[api.Auth][]string{api.AuthNone: nil, api.AuthTenant: {"ApiKey"}, api.AuthAdmin: {"AdminToken", "OperatorIAM"}}[r.Auth]
		if !slices.Equal(schemes, want) {
			t.Errorf("%s: security %v, want %v (auth %s)", k, schemes, want, r.Auth)
		}
	}
	for k := range ops {
		if _, ok := routes[k]; !ok {
			t.Errorf("operation %s is not in api.Routes()", k)
		}
	}
}

// TestOpenAPIServed: GET /openapi.json is the document; GET /docs is the
// reference, plain HTML under a strict Content-Security-Policy, with its
// style sheet from the same origin.
func TestOpenAPIServed(t *testing.T) {
	h := newHarness(t, 0)
	h.must(200, "GET", "/health", "", nil)
	r := h.must(200, "GET", "/openapi.json", "", nil)
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("openapi.json Content-Type %q", ct)
	}
	want, _ := api.OpenAPIJSON()
	if r.raw != string(want) {
		t.Error("GET /openapi.json is not the document")
	}
	d := h.must(200, "GET", "/docs", "", nil)
	if ct := d.header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Errorf("docs Content-Type %q", ct)
	}
	const csp = "default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
	if got := d.header.Get("Content-Security-Policy"); got != csp {
		t.Errorf("docs Content-Security-Policy %q, want %q", got, csp)
	}
	low := strings.ToLower(d.raw)
	for _, bad := range []string{"<script", "javascript:", " onload=", " onclick=", "<style", " style="} {
		if strings.Contains(low, bad) {
			t.Errorf("the reference holds %q", bad)
		}
	}
	if !strings.Contains(d.raw, `<link rel="stylesheet" href="docs/style.css">`) {
		t.Error("the reference does not link its style sheet")
	}
	for _, r := range api.Routes() {
		if !strings.Contains(d.raw, "<code>"+r.Method+" "+r.Resource+"</code>") {
			t.Errorf("the reference does not list %s %s", r.Method, r.Resource)
		}
	}
	for _, code := range []string{"quota_exceeded", "idempotency_mismatch", "Retry-After", "next_cursor", "text/event-stream"} {
		if !strings.Contains(d.raw, code) {
			t.Errorf("the reference does not mention %s", code)
		}
	}
	c := h.must(200, "GET", "/docs/style.css", "", nil)
	if ct := c.header.Get("Content-Type"); ct != "text/css; charset=utf-8" {
		t.Errorf("style sheet Content-Type %q", ct)
	}
	if !strings.Contains(c.raw, "body") {
		t.Error("style sheet is empty")
	}
}

// TestOpenAPIStreamAndDelete sends through the validating harness what no
// other API test does: a streamed execution (its content type is checked)
// and an agent's deletion.
func TestOpenAPIStreamAndDelete(t *testing.T) {
	h := newHarness(t, 0)
	a := h.newTenant("acme", "starter")
	agent := h.newAgent(a)
	r := h.doWithHeader("POST", "/v1/agents/"+agent+"/execute", a.key, map[string]any{"message": "hello"}, "Accept", api.EventStreamType)
	if r.status != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), api.EventStreamType) || !strings.Contains(r.raw, "event: done") {
		t.Errorf("streamed execute: %d %s %.300s", r.status, r.header.Get("Content-Type"), r.raw)
	}
	d := h.must(200, "DELETE", "/v1/agents/"+agent, a.key, nil)
	if d.str("agent_id") != agent || d.body["deleted"] != true {
		t.Errorf("delete: %s", d.raw)
	}
}

// TestMain holds the API tests to the whole document: after a full run of
// the package (no -run, -skip or fuzzing), every operation must have been
// answered with a success, checked against the document, at least once.
func TestMain(m *testing.M) {
	code := m.Run()
	full := true
	for _, name := range []string{"test.run", "test.skip", "test.fuzz"} {
		if f := flag.Lookup(name); f != nil && f.Value.String() != "" {
			full = false
		}
	}
	if code == 0 && full {
		if s, err := apispec.Load(); err == nil {
			var missing []string
			for op, statuses := range s.Seen() {
				if !slices.ContainsFunc(statuses, func(st int) bool { return st < 300 }) {
					missing = append(missing, op)
				}
			}
			if len(missing) > 0 {
				slices.Sort(missing)
				fmt.Fprintf(os.Stderr, "OpenAPI: no test got a success from %d operations, so their answers went unchecked: %s\n",
					len(missing), strings.Join(missing, ", "))
				code = 1
			}
		}
	}
	os.Exit(code)
}
