package api

import (
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/aws/aws-lambda-go/events"
	"go.yaml.in/yaml/v4"
)

// openAPIYAML is the API's OpenAPI 3.1 document: every route of Routes(),
// its parameters, bodies, responses and errors. The API tests validate every
// response they receive against it.
//
//go:embed openapi.yaml
var openAPIYAML []byte

//go:embed docs.css
var docsCSS []byte

// Content-Security-Policy of the reference page: nothing but its own style sheet.
const docsCSP = "default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// Paths of the reference.
const (
	OpenAPIPath   = "/openapi.json"
	DocsPath      = "/docs"
	DocsStylePath = "/docs/style.css"
)

// OpenAPIYAML returns the OpenAPI document as written (YAML).
func OpenAPIYAML() []byte { return append([]byte(nil), openAPIYAML...) }

// openAPI is the document converted to JSON once, and the reference page
// rendered from it once.
var openAPI = sync.OnceValues(func() (specDoc, error) {
	var doc specDoc
	var tree any
	if err := yaml.Unmarshal(openAPIYAML, &tree); err != nil {
		return doc, fmt.Errorf("openapi.yaml: %w", err)
	}
	b, err := json.Marshal(jsonTree(tree))
	if err != nil {
		return doc, fmt.Errorf("openapi.yaml to JSON: %w", err)
	}
	doc.json = b
	if doc.html, err = renderDocs(b); err != nil {
		return doc, fmt.Errorf("render the reference: %w", err)
	}
	return doc, nil
})

type specDoc struct {
	json []byte
	html []byte
}

// OpenAPIJSON returns the OpenAPI document as JSON.
func OpenAPIJSON() ([]byte, error) {
	d, err := openAPI()
	return d.json, err
}

// jsonTree makes a decoded YAML tree encodable as JSON: mappings with
// non-string keys (a status code written bare) get string keys.
func jsonTree(v any) any {
	switch t := v.(type) {
	case map[string]any:
		for k, e := range t {
			t[k] = jsonTree(e)
		}
		return t
	case map[any]any:
		m := make(map[string]any, len(t))
		for k, e := range t {
			m[fmt.Sprint(k)] = jsonTree(e)
		}
		return m
	case []any:
		for i, e := range t {
			t[i] = jsonTree(e)
		}
		return t
	default:
		return v
	}
}

// rawAnswer is a handler's answer that is not JSON to encode: its bytes and
// headers are sent as they are.
type rawAnswer struct {
	contentType string
	body        []byte
	headers     map[string]string
}

func (r rawAnswer) response(status int) events.APIGatewayProxyResponse {
	h := map[string]string{"Content-Type": r.contentType}
	for k, v := range r.headers {
		h[k] = v
	}
	return events.APIGatewayProxyResponse{StatusCode: status, Headers: h, Body: string(r.body)}
}

func (a *API) openAPIDocument(context.Context, *request) (any, error) {
	d, err := openAPI()
	if err != nil {
		return nil, err
	}
	return rawAnswer{contentType: "application/json", body: d.json,
		headers: map[string]string{"Cache-Control": "public, max-age=300"}}, nil
}

func (a *API) docsPage(context.Context, *request) (any, error) {
	d, err := openAPI()
	if err != nil {
		return nil, err
	}
	return rawAnswer{contentType: "text/html; charset=utf-8", body: d.html, headers: map[string]string{
		"Content-Security-Policy": docsCSP, "X-Content-Type-Options": "nosniff",
		"Referrer-Policy": "no-referrer", "Cache-Control": "public, max-age=300",
	}}, nil
}

func (a *API) docsStyle(context.Context, *request) (any, error) {
	return rawAnswer{contentType: "text/css; charset=utf-8", body: docsCSS, headers: map[string]string{
		"X-Content-Type-Options": "nosniff", "Cache-Control": "public, max-age=300",
	}}, nil
}
