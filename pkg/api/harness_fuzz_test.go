package api_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/bulkhead-dev/bulkhead/pkg/bulkhead"
)

// fuzzPlatform is the in-process platform a fuzz target drives over HTTP:
// embedded DynamoDB and S3 behind the real handlers and gateway, with one
// enterprise tenant (the highest usage plan) and one agent. It is built once
// per fuzzing process, not per input.
type fuzzPlatform struct {
	h      *harness
	tenant tenant
	agent  string
}

func newFuzzPlatform(f *testing.F) *fuzzPlatform {
	f.Helper()
	// A retry that finds its key still claimed answers 409 at once, so a
	// leaked claim fails fast.
	h := newHarness(f, 0)
	p := &fuzzPlatform{h: h, tenant: h.newTenant("fuzz", "enterprise")}
	p.agent = h.newAgent(p.tenant)
	return p
}

// send makes one request with the raw body and header pairs (name, value, ...).
// The clock moves 10 ms first, which refills the usage plan's bucket faster
// than the fuzzer spends it, so the edge throttle never decides the outcome.
// The platform's AWS call counts are reset, so writes() sees this request's.
func (p *fuzzPlatform) send(t *testing.T, method, path, key string, body []byte, header ...string) response {
	t.Helper()
	p.h.clock.Set(p.h.clock.Now().Add(10 * time.Millisecond))
	p.h.env.Calls()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, p.h.srv.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := p.h.srv.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	out := response{status: resp.StatusCode, header: resp.Header, raw: string(raw)}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	_ = dec.Decode(&out.body)
	return out
}

// writeOps are the AWS operations that change state.
var writeOps = map[string]bool{
	"DynamoDB.PutItem": true, "DynamoDB.UpdateItem": true, "DynamoDB.DeleteItem": true, "DynamoDB.TransactWriteItems": true,
	"DynamoDB.BatchWriteItem": true, "S3.PutObject": true, "S3.DeleteObject": true, "S3.DeleteObjects": true, "S3.CopyObject": true,
}

// writes lists the state-changing AWS calls made since the last send.
func (p *fuzzPlatform) writes() []string {
	var out []string
	for op, n := range p.h.env.Calls() {
		if writeOps[op] && n > 0 {
			out = append(out, op)
		}
	}
	sort.Strings(out)
	return out
}

// answered checks a response is either the success status or a refusal in
// the documented shape: a 4xx whose error code maps to that very status, with
// a message. It reports whether it was the success.
func answered(t *testing.T, what string, r response, success int) bool {
	t.Helper()
	if r.status == success {
		return true
	}
	if r.status < 400 || r.status > 499 {
		t.Fatalf("%s: status %d, want %d or a 4xx; body %s", what, r.status, success, r.raw)
	}
	e, _ := r.body["error"].(map[string]any)
	code, _ := e["code"].(string)
	msg, _ := e["message"].(string)
	if code == "" || msg == "" || bulkhead.Code(code).HTTPStatus() != r.status {
		t.Fatalf("%s: refusal %d is not the error shape with its code's status: %s", what, r.status, r.raw)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("%s: refusal with Content-Type %q", what, ct)
	}
	return false
}

// refusedCleanly checks that a refused request wrote nothing.
func (p *fuzzPlatform) refusedCleanly(t *testing.T, what string, r response) {
	t.Helper()
	if w := p.writes(); len(w) > 0 {
		t.Fatalf("%s: refused with %d %s, yet wrote %v", what, r.status, r.errCode(), w)
	}
}

// headerValue reports whether v can travel as an HTTP header value (no
// control characters but tab); the client refuses to send anything else.
func headerValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; (c < 0x20 && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// trimOWS is what an HTTP server makes of a header value: no surrounding
// spaces or tabs.
func trimOWS(v string) string { return strings.Trim(v, " \t") }

// bodySeeds are request bodies every body target starts from: malformed,
// wrongly typed, oversized and edge-case JSON.
func bodySeeds(f *testing.F, valid ...string) {
	for _, s := range valid {
		f.Add([]byte(s))
	}
	for _, s := range []string{``, ` `, `null`, `{}`, `[]`, `"x"`, `1`, `{`, `{"a":1}`, `{} {}`, `{}x`, `{"name":null}`,
		"\xff\xfe", `{"name":"\ud800"}`, `{"NAME":"a"}`, `{"name":"a","name":7}`, `{"name":1e400}`,
		`{"quota":{"max_spend_per_month":1e3}}`, `{"quota":{"max_tokens_per_month":9223372036854775808}}`} {
		f.Add([]byte(s))
	}
	f.Add(bytes.Repeat([]byte(" "), bulkhead.MaxBodyBytes+1))
	f.Add([]byte(`{"name":"` + strings.Repeat("<", 300) + `","system_prompt":"x"}`))
}
