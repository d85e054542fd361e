package api

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/bulkhead-dev/bulkhead/pkg/bulkhead"
)

// internalBody is the response body of an internal error.
const internalBody = `{"error":{"code":"internal","message":"internal error"}}`

// respond renders a JSON response. A response Lambda could not return (its
// proxy JSON over bulkhead.MaxResponseBytes) is not sent: field limits and
// byte-bounded pages make one impossible, so it is logged as the internal
// error it is, and the client gets a 500 rather than Lambda's own failure.
func respond(status int, body any) events.APIGatewayProxyResponse {
	b, err := json.Marshal(body)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(internalBody)
	}
	resp := events.APIGatewayProxyResponse{
		StatusCode: status,
		Headers:    map[string]string{"Content-Type": "application/json"},
		Body:       string(b),
	}
	if n := proxySize(resp); n > bulkhead.MaxResponseBytes {
		slog.Error("response too large for Lambda; answering 500", "status", status, "proxy_bytes", n, "body_bytes", len(b))
		resp.StatusCode, resp.Body = http.StatusInternalServerError, internalBody
	}
	return resp
}

// proxySize is the size of the proxy JSON Lambda returns for resp: the body
// is a JSON string in it, so it is escaped once more (up to twice its bytes).
func proxySize(resp events.APIGatewayProxyResponse) int {
	body := resp.Body
	resp.Body = ""
	b, err := json.Marshal(resp)
	if err != nil {
		return bulkhead.MaxResponseBytes + 1
	}
	return len(b) + bulkhead.JSONStringLen(body)
}

// respondError renders an error in the public shape
// {"error": {"code", "message", ...fields}}. Only internal errors are logged
// with detail; the caller then sees a generic message.
func respondError(log *slog.Logger, err error) events.APIGatewayProxyResponse {
	e := bulkhead.AsError(err)
	if e == nil {
		e = &bulkhead.Error{Code: bulkhead.Internal, Err: err}
	}
	status := e.Code.HTTPStatus()
	msg := e.Message
	if status >= 500 {
		log.Error("request failed", "code", string(e.Code), "error", err.Error())
		if e.Code == bulkhead.Internal || msg == "" {
			msg = "internal error"
		}
	} else if msg == "" {
		msg = string(e.Code)
	}
	body := map[string]any{"code": e.Code, "message": msg}
	for k, v := range e.Fields {
		body[k] = v
	}
	resp := respond(status, map[string]any{"error": body})
	if e.RetryAfter > 0 {
		resp.Headers["Retry-After"] = strconv.Itoa(e.RetryAfter)
	}
	return resp
}

// header reads a header case-insensitively (API Gateway passes names as sent).
func header(req events.APIGatewayProxyRequest, name string) string {
	for k, v := range req.Headers {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	return ""
}

// rawBody returns the request body, decoding base64 when API Gateway encoded it.
func rawBody(req events.APIGatewayProxyRequest) ([]byte, error) {
	if !req.IsBase64Encoded {
		return []byte(req.Body), nil
	}
	b, err := base64.StdEncoding.DecodeString(req.Body)
	if err != nil {
		return nil, bulkhead.Errorf(bulkhead.Invalid, "request body is not valid base64")
	}
	return b, nil
}

// decode reads a JSON body strictly: one object, no unknown fields, bounded size.
func decode(req events.APIGatewayProxyRequest, dst any) error {
	b, err := rawBody(req)
	if err != nil {
		return err
	}
	if len(b) > bulkhead.MaxBodyBytes {
		return bulkhead.Errorf(bulkhead.TooLarge, "request body exceeds %d bytes", bulkhead.MaxBodyBytes)
	}
	// Only an object is a request: null would decode as an empty one (a
	// PATCH that changes nothing but the version), and arrays, strings and
	// numbers are no request at all.
	if t := bytes.TrimLeft(b, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		return bulkhead.Errorf(bulkhead.Invalid, "request body must be a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	if err := dec.Decode(dst); err != nil {
		return bulkhead.Errorf(bulkhead.Invalid, "invalid JSON body: %s", jsonProblem(err))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return bulkhead.Errorf(bulkhead.Invalid, "invalid JSON body: trailing data after the object")
	}
	return nil
}

func jsonProblem(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		if te.Field != "" {
			return "field " + strconv.Quote(te.Field) + " must be " + jsonKind(te.Type.Kind().String())
		}
		return "body must be a JSON object"
	}
	msg := err.Error()
	if strings.HasPrefix(msg, "json: unknown field ") {
		return "unknown field " + strings.TrimPrefix(msg, "json: unknown field ")
	}
	return strings.TrimPrefix(msg, "json: ")
}

func jsonKind(k string) string {
	switch k {
	case "string":
		return "a string"
	case "slice":
		return "an array"
	case "map", "struct":
		return "an object"
	case "bool":
		return "a boolean"
	default:
		return "a number"
	}
}

// pageParams reads ?limit= (1-100, default 20) and ?cursor=.
func pageParams(req events.APIGatewayProxyRequest) (cursor string, limit int, err error) {
	limit = bulkhead.DefaultPageSize
	if v, ok := req.QueryStringParameters["limit"]; ok {
		n, perr := strconv.Atoi(v)
		if perr != nil || n < 1 || n > bulkhead.MaxPageSize {
			return "", 0, bulkhead.Errorf(bulkhead.Invalid, "limit must be an integer from 1 to %d", bulkhead.MaxPageSize)
		}
		limit = n
	}
	return req.QueryStringParameters["cursor"], limit, nil
}

// list renders a page in the public list shape.
func list[T any](items []T, next string) map[string]any {
	if items == nil {
		items = []T{}
	}
	var cursor any
	if next != "" {
		cursor = next
	}
	return map[string]any{"data": items, "has_more": next != "", "next_cursor": cursor}
}

// timestamp renders a time for JSON (RFC 3339, UTC).
func timestamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}
