package gateway

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"
)

// requestTimeLayout is API Gateway's $context.requestTime format.
const requestTimeLayout = "02/Jan/2006:15:04:05 -0700"

// buildEvent makes the REST proxy integration event for one request.
func (g *Gateway) buildEvent(r *http.Request, res *resource, params map[string]string, body []byte,
	requestID string, now time.Time, identity events.APIGatewayRequestIdentity, authorizer map[string]any) events.APIGatewayProxyRequest {
	headers, multiHeaders := proxyHeaders(r, identity.SourceIP)
	query, multiQuery := proxyQuery(r.URL.RawQuery)
	ev := events.APIGatewayProxyRequest{
		Resource:                        res.template,
		Path:                            r.URL.Path,
		HTTPMethod:                      r.Method,
		Headers:                         headers,
		MultiValueHeaders:               multiHeaders,
		QueryStringParameters:           query,
		MultiValueQueryStringParameters: multiQuery,
		PathParameters:                  params,
		RequestContext: events.APIGatewayProxyRequestContext{
			AccountID:         accountID,
			ResourceID:        res.id,
			Stage:             g.stage,
			DomainName:        r.Host,
			DomainPrefix:      domainPrefix(r.Host),
			RequestID:         requestID,
			ExtendedRequestID: requestID,
			Protocol:          "HTTP/1.1",
			Identity:          identity,
			ResourcePath:      res.template,
			Path:              "/" + g.stage + r.URL.Path,
			Authorizer:        authorizer,
			HTTPMethod:        r.Method,
			RequestTime:       now.UTC().Format(requestTimeLayout),
			RequestTimeEpoch:  now.UnixMilli(),
			APIID:             apiID,
		},
	}
	if utf8.Valid(body) {
		ev.Body = string(body)
	} else {
		ev.Body = base64.StdEncoding.EncodeToString(body)
		ev.IsBase64Encoded = true
	}
	return ev
}

// proxyHeaders builds headers (last value wins) and multiValueHeaders, adding
// what API Gateway adds. Go's server canonicalises names and moves Host out
// of the header map, so names are canonical here and Host is put back.
func proxyHeaders(r *http.Request, clientIP string) (map[string]string, map[string][]string) {
	multi := make(map[string][]string, len(r.Header)+4)
	for name, values := range r.Header {
		if len(values) > 0 {
			multi[name] = append([]string(nil), values...)
		}
	}
	if _, ok := multi["Host"]; !ok && r.Host != "" {
		multi["Host"] = []string{r.Host}
	}
	// API Gateway appends the caller's address and reports its own listener.
	if xff := lastValue(r.Header, "X-Forwarded-For"); xff != "" {
		multi["X-Forwarded-For"] = []string{xff + ", " + clientIP}
	} else if clientIP != "" {
		multi["X-Forwarded-For"] = []string{clientIP}
	}
	proto := "http"
	if r.TLS != nil {
		proto = "https"
	}
	multi["X-Forwarded-Proto"] = []string{proto}
	if port := localPort(r, proto); port != "" {
		multi["X-Forwarded-Port"] = []string{port}
	}
	single := make(map[string]string, len(multi))
	for name, values := range multi {
		single[name] = values[len(values)-1]
	}
	return single, multi
}

// proxyQuery decodes the query string; both maps are nil when it is empty,
// as in API Gateway's events. Pairs that do not decode are dropped.
func proxyQuery(raw string) (map[string]string, map[string][]string) {
	values, _ := url.ParseQuery(raw)
	if len(values) == 0 {
		return nil, nil
	}
	single := make(map[string]string, len(values))
	multi := make(map[string][]string, len(values))
	for k, vs := range values {
		single[k] = vs[len(vs)-1]
		multi[k] = vs
	}
	return single, multi
}

// lastValue is the value API Gateway puts in the single-value headers map.
func lastValue(h http.Header, name string) string {
	vs := h.Values(name)
	if len(vs) == 0 {
		return ""
	}
	return vs[len(vs)-1]
}

func sourceIP(remoteAddr string) string {
	if host, _, err := net.SplitHostPort(remoteAddr); err == nil {
		return host
	}
	return remoteAddr
}

func localPort(r *http.Request, proto string) string {
	if addr, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		if _, port, err := net.SplitHostPort(addr.String()); err == nil {
			return port
		}
	}
	if _, port, err := net.SplitHostPort(r.Host); err == nil {
		return port
	}
	if proto == "https" {
		return "443"
	}
	return "80"
}

func domainPrefix(host string) string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	prefix, _, _ := strings.Cut(host, ".")
	return prefix
}

// writeResponse maps a proxy response onto w. It checks the response before
// writing anything, so a malformed one can still become a clean 502.
func writeResponse(w http.ResponseWriter, resp events.APIGatewayProxyResponse, requestID string) (int, error) {
	if resp.StatusCode < 100 || resp.StatusCode > 599 {
		return 0, fmt.Errorf("status code %d", resp.StatusCode)
	}
	body := []byte(resp.Body)
	if resp.IsBase64Encoded {
		var err error
		if body, err = base64.StdEncoding.DecodeString(resp.Body); err != nil {
			return 0, fmt.Errorf("base64 body: %w", err)
		}
	}
	h := w.Header()
	// As in API Gateway, multiValueHeaders win over headers for the same name.
	for name, v := range resp.Headers {
		if _, ok := resp.MultiValueHeaders[name]; ok || skipResponseHeader(name) {
			continue
		}
		h.Set(name, v)
	}
	for name, vs := range resp.MultiValueHeaders {
		if skipResponseHeader(name) {
			continue
		}
		h.Del(name)
		for _, v := range vs {
			h.Add(name, v)
		}
	}
	if h.Get("Content-Type") == "" {
		// API Gateway's default when the function sets none.
		h.Set("Content-Type", "application/json")
	}
	// The gateway's request id is the one to quote in a support ticket.
	h.Set("X-Request-Id", requestID)
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(body)
	return resp.StatusCode, nil
}

// writeStream maps a streaming response onto w as API Gateway does with
// response transfer mode STREAM: the prelude's status and headers, then the
// body as it is read, flushed after every read. The body is closed at the
// end, or at the first failed write (the client left), which the function
// sees as a failed write of its own. A status of zero with an error means
// nothing was written.
func writeStream(w http.ResponseWriter, resp *events.LambdaFunctionURLStreamingResponse, requestID string) (int, error) {
	defer func() { _ = resp.Close() }()
	status := resp.StatusCode
	if status == 0 {
		status = http.StatusOK
	}
	if status < 100 || status > 599 {
		return 0, fmt.Errorf("status code %d", status)
	}
	h := w.Header()
	for name, v := range resp.Headers {
		if !skipResponseHeader(name) {
			h.Set(name, v)
		}
	}
	for _, c := range resp.Cookies {
		h.Add("Set-Cookie", c)
	}
	if h.Get("Content-Type") == "" {
		h.Set("Content-Type", "application/json")
	}
	h.Set("X-Request-Id", requestID)
	w.WriteHeader(status)
	rc := http.NewResponseController(w)
	_ = rc.Flush()
	if resp.Body == nil {
		return status, nil
	}
	buf := make([]byte, 32<<10)
	for {
		n, err := resp.Body.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return status, werr
			}
			if ferr := rc.Flush(); ferr != nil {
				return status, ferr
			}
		}
		if err == io.EOF {
			return status, nil
		}
		if err != nil {
			return status, err
		}
	}
}

// skipResponseHeader drops framing headers the server computes itself; a
// wrong Content-Length from a function would otherwise break the connection.
func skipResponseHeader(name string) bool {
	switch http.CanonicalHeaderKey(name) {
	case "Content-Length", "Transfer-Encoding", "Connection":
		return true
	}
	return false
}

// errorBody renders the platform's error shape.
func errorBody(code, message string) []byte {
	type errObj struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}
	b, _ := json.Marshal(struct {
		Error errObj `json:"error"`
	}{errObj{code, message}})
	return b
}

// newRequestID returns a random (version 4) UUID, the shape of API Gateway's request ids.
func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
