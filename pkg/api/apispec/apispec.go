// Package apispec checks requests and responses against the platform's
// OpenAPI document (api.OpenAPIJSON) with kin-openapi. It is the tests'
// oracle: the API tests and the end-to-end tests run every response they
// receive through Check. Only tests import it; no function binary links it.
package apispec

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"sync"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"

	"github.com/bulkhead-dev/bulkhead/pkg/api"
)

// Oracle is the OpenAPI document, validated, with a router over its paths.
type Oracle struct {
	Doc    *openapi3.T
	router routers.Router

	mu   sync.Mutex
	seen map[string]map[int]bool // operation ("GET /v1/agents") -> statuses checked
}

// Seen returns, for every operation of the document, the response statuses
// Check has been given for it in this process (none for an operation no
// exchange reached).
func (o *Oracle) Seen() map[string][]int {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := map[string][]int{}
	for path, item := range o.Doc.Paths.Map() {
		for method := range item.Operations() {
			op := method + " " + path
			out[op] = []int{}
			for status := range o.seen[op] {
				out[op] = append(out[op], status)
			}
		}
	}
	return out
}

// Load returns the document as served (GET /openapi.json), loaded and
// validated once per process.
var Load = sync.OnceValues(func() (*Oracle, error) {
	b, err := api.OpenAPIJSON()
	if err != nil {
		return nil, err
	}
	doc, err := openapi3.NewLoader().LoadFromData(b)
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
	return &Oracle{Doc: doc, router: r}, nil
})

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

// Check validates one exchange against the document: the response's status
// must be documented for the operation, its Content-Type one the operation
// answers with that status, and its body must match the schema; a request
// the API accepted (2xx) must be one the document allows. A Server-Sent
// Events stream is checked for its content type only. A request that matches
// no operation (an unknown path or method) must be answered with the error
// shape. req's body, if any, must be readable again through GetBody.
func (o *Oracle) Check(req *http.Request, status int, header http.Header, body []byte) error {
	route, params, err := o.router.FindRoute(req)
	if err != nil {
		if status < 400 {
			return fmt.Errorf("OpenAPI: %s %s matches no operation (%v) but answered %d", req.Method, req.URL.Path, err, status)
		}
		return o.checkErrorShape(req, status, body)
	}
	o.mu.Lock()
	if o.seen == nil {
		o.seen = map[string]map[int]bool{}
	}
	op := route.Method + " " + route.Path
	if o.seen[op] == nil {
		o.seen[op] = map[int]bool{}
	}
	o.seen[op][status] = true
	o.mu.Unlock()
	var errs []error
	if status < 300 {
		errs = append(errs, checkAcceptedRequest(req, route, params))
	}
	mt, _, _ := mime.ParseMediaType(header.Get("Content-Type"))
	if mt == api.EventStreamType {
		if resp := route.Operation.Responses.Status(status); resp == nil || resp.Value.Content.Get(api.EventStreamType) == nil {
			errs = append(errs, fmt.Errorf("OpenAPI: %s %s answered %d as %s, which the document does not list", req.Method, route.Path, status, mt))
		}
		return errors.Join(errs...)
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route},
		Status:                 status,
		Header:                 header,
		Body:                   io.NopCloser(bytes.NewReader(body)),
		Options:                &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
		errs = append(errs, fmt.Errorf("OpenAPI: %s %s: response %d does not match the document: %w\nbody: %.2000s", req.Method, route.Path, status, err, body))
	}
	return errors.Join(errs...)
}

// checkAcceptedRequest validates a request the API accepted against the
// operation's parameters and request body: what the handlers take, the
// document must allow.
func checkAcceptedRequest(req *http.Request, route *routers.Route, params map[string]string) error {
	r := req.Clone(context.Background())
	r.Body = http.NoBody
	if req.GetBody != nil {
		body, err := req.GetBody()
		if err != nil {
			return fmt.Errorf("OpenAPI: request body: %w", err)
		}
		r.Body = body
	}
	// Handlers read a JSON body whatever its Content-Type.
	if rb := route.Operation.RequestBody; rb != nil && r.Header.Get("Content-Type") == "" && rb.Value.Content.Get("application/json") != nil {
		r.Header.Set("Content-Type", "application/json")
	}
	in := &openapi3filter.RequestValidationInput{Request: r, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, MultiError: true}}
	if err := openapi3filter.ValidateRequest(context.Background(), in); err != nil {
		return fmt.Errorf("OpenAPI: %s %s: the API accepted a request the document refuses: %w", req.Method, route.Path, err)
	}
	return nil
}

// checkErrorShape validates a response outside every operation against the Error schema.
func (o *Oracle) checkErrorShape(req *http.Request, status int, body []byte) error {
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		return fmt.Errorf("OpenAPI: %s %s answered %d with a body that is not JSON: %.500s", req.Method, req.URL.Path, status, body)
	}
	if err := o.Doc.Components.Schemas["Error"].Value.VisitJSON(v, openapi3.EnableJSONSchema2020()); err != nil {
		return fmt.Errorf("OpenAPI: %s %s answered %d with a body that is not the error shape: %w", req.Method, req.URL.Path, status, err)
	}
	return nil
}

// Handler wraps a server's handler (a local gateway) so that every exchange
// it serves is checked with Check and each disagreement told to report. The
// answer passes through as it is written, flushes included, so streamed
// answers still stream.
func (o *Oracle) Handler(next http.Handler, report func(error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		rec := &recorder{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rec, r)
		seen := r.Clone(context.Background())
		seen.Body = io.NopCloser(bytes.NewReader(body))
		seen.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
		if err := o.Check(seen, rec.status, w.Header(), rec.body.Bytes()); err != nil {
			report(err)
		}
	})
}

// recorder passes an answer through and keeps a copy of it.
type recorder struct {
	http.ResponseWriter
	status int
	body   bytes.Buffer
	wrote  bool
}

func (r *recorder) WriteHeader(status int) {
	if !r.wrote {
		r.status, r.wrote = status, true
	}
	r.ResponseWriter.WriteHeader(status)
}

func (r *recorder) Write(p []byte) (int, error) {
	r.wrote = true
	r.body.Write(p)
	return r.ResponseWriter.Write(p)
}

// Flush passes a flush through, so a streamed answer is not held back.
func (r *recorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap gives http.ResponseController the underlying writer.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
