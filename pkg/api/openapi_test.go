package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"

	"github.com/bulkhead-dev/bulkhead/pkg/api"
)

// spec is the OpenAPI document as served (GET /openapi.json), loaded and
// validated by kin-openapi once per test binary, with a router over its paths.
var spec = sync.OnceValues(func() (*specOracle, error) {
	b, err := api.OpenAPIJSON()
	if err != nil {
		return nil, err
	}
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(b)
	if err != nil {
		return nil, err
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, err
	}
	// The router matches paths only: the server URL is the deployment's.
	routed := *doc
	routed.Servers = nil
	r, err := legacy.NewRouter(&routed)
	if err != nil {
		return nil, err
	}
	return &specOracle{doc: doc, router: r}, nil
})

type specOracle struct {
	doc    *openapi3.T
	router routers.Router
}

func loadSpec(tb testing.TB) *specOracle {
	tb.Helper()
	s, err := spec()
	if err != nil {
		tb.Fatalf("OpenAPI document: %v", err)
	}
	return s
}

func init() {
	// The reference page, its style sheet and knowledge base documents are
	// text: their bodies are validated as strings.
	text := func(body io.Reader, _ http.Header, _ *openapi3.SchemaRef, _ openapi3filter.EncodingFn) (any, error) {
		b, err := io.ReadAll(body)
		return string(b), err
	}
	openapi3filter.RegisterBodyDecoder("text/html", text)
	openapi3filter.RegisterBodyDecoder("text/css", text)
	openapi3filter.RegisterBodyDecoder("text/markdown", text)
}

// checkResponse validates one response against the OpenAPI document: its
// status must be documented for the operation, its Content-Type must be one
// the operation answers with that status, and its body must match the
// schema. A Server-Sent Events stream is checked for its content type only.
// A request that matches no operation (an unknown path or method) must be
// answered with the error shape.
//
// Benchmarks skip it: they measure the API, not the validator.
func checkResponse(tb testing.TB, req *http.Request, status int, header http.Header, raw []byte) {
	tb.Helper()
	if _, bench := tb.(*testing.B); bench {
		return
	}
	s := loadSpec(tb)
	route, params, err := s.router.FindRoute(req)
	if err != nil {
		if status < 400 {
			tb.Errorf("OpenAPI: %s %s matches no operation (%v) but answered %d", req.Method, req.URL.Path, err, status)
			return
		}
		checkErrorShape(tb, s, req, status, raw)
		return
	}
	if status < 300 {
		checkAcceptedRequest(tb, req, route, params)
	}
	mt, _, _ := mime.ParseMediaType(header.Get("Content-Type"))
	if mt == api.EventStreamType {
		resp := route.Operation.Responses.Status(status)
		if resp == nil || resp.Value.Content.Get(api.EventStreamType) == nil {
			tb.Errorf("OpenAPI: %s %s answered %d as %s, which the document does not list", req.Method, route.Path, status, mt)
		}
		return
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route},
		Status:                 status,
		Header:                 header,
		Body:                   io.NopCloser(bytes.NewReader(raw)),
		Options:                &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
		tb.Errorf("OpenAPI: %s %s: response %d does not match the document: %v\nbody: %.2000s", req.Method, route.Path, status, err, raw)
	}
}

// checkAcceptedRequest validates a request the API accepted against the
// operation's parameters and request body: what the handlers take, the
// document must allow.
func checkAcceptedRequest(tb testing.TB, req *http.Request, route *routers.Route, params map[string]string) {
	tb.Helper()
	r := req.Clone(context.Background())
	r.Body = http.NoBody
	if req.GetBody != nil {
		body, err := req.GetBody()
		if err != nil {
			tb.Errorf("OpenAPI: request body: %v", err)
			return
		}
		r.Body = body
	}
	// Handlers read a JSON body whatever its Content-Type (the harness sends none).
	if rb := route.Operation.RequestBody; rb != nil && r.Header.Get("Content-Type") == "" && rb.Value.Content.Get("application/json") != nil {
		r.Header.Set("Content-Type", "application/json")
	}
	in := &openapi3filter.RequestValidationInput{Request: r, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, MultiError: true}}
	if err := openapi3filter.ValidateRequest(context.Background(), in); err != nil {
		tb.Errorf("OpenAPI: %s %s: the API accepted a request the document refuses: %v", req.Method, route.Path, err)
	}
}

// checkErrorShape validates a response outside every operation against the Error schema.
func checkErrorShape(tb testing.TB, s *specOracle, req *http.Request, status int, raw []byte) {
	tb.Helper()
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		tb.Errorf("OpenAPI: %s %s answered %d with a body that is not JSON: %.500s", req.Method, req.URL.Path, status, raw)
		return
	}
	if err := s.doc.Components.Schemas["Error"].Value.VisitJSON(v, openapi3.EnableJSONSchema2020()); err != nil {
		tb.Errorf("OpenAPI: %s %s answered %d with a body that is not the error shape: %v", req.Method, req.URL.Path, status, err)
	}
}

// TestOpenAPIDocumentValid loads the document and validates it (OpenAPI 3.1).
func TestOpenAPIDocumentValid(t *testing.T) {
	s := loadSpec(t)
	if !s.doc.IsOpenAPI31OrLater() {
		t.Errorf("openapi %q, want 3.1", s.doc.OpenAPI)
	}
	// The YAML as written and the JSON as served are the same document.
	y, err := openapi3.NewLoader().LoadFromData(api.OpenAPIYAML())
	if err != nil {
		t.Fatalf("openapi.yaml: %v", err)
	}
	a, _ := json.Marshal(y)
	b, _ := json.Marshal(s.doc)
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
	for path, item := range s.doc.Paths.Map() {
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
		sec := s.doc.Security
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
