package client_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/bulkhead-dev/bulkhead/pkg/client"
)

// TestRawJSON checks that the answers a program may show as they came keep
// the API's bytes: field order and fields the package does not know.
func TestRawJSON(t *testing.T) {
	const (
		tenant = `{"status":"active","tenant_id":"tn_1","x_new_field":{"a":1},"name":"Acme","tier":"starter"}`
		page   = `{"data":[` + tenant + `, {"tenant_id":"tn_2","name":"B"}],"has_more":false,"next_cursor":null}`
		key    = `{"api_key":"bk_live_x","key_id":"key_1","name":"ci","created_at":"2026-01-02T03:04:05.5Z"}` + "\n"
		report = `{"month":"2026-01","closed":2,"already_closed":0,"failed":[]}`
		model  = `{"tiers":null,"model":"openai/gpt-4o-mini","input_per_million":0.150}`
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.Method + " " + r.URL.Path {
		case "GET /v1/admin/tenants/tn_1":
			_, _ = io.WriteString(w, tenant)
		case "GET /v1/admin/tenants":
			_, _ = io.WriteString(w, page)
		case "POST /v1/keys":
			_, _ = io.WriteString(w, key)
		case "POST /v1/admin/billing/close":
			_, _ = io.WriteString(w, report)
		case "PUT /v1/admin/models/openai/gpt-4o-mini":
			_, _ = io.WriteString(w, model)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	ctx := context.Background()
	op := client.NewOperator(srv.URL, "token")

	tn, err := op.GetTenant(ctx, "tn_1")
	if err != nil || tn.Name != "Acme" || string(tn.RawJSON()) != tenant {
		t.Fatalf("GetTenant: %+v, %v; raw %s", tn, err, tn.RawJSON())
	}
	var items []string
	for tn, err := range op.ListTenants(ctx, nil) {
		if err != nil {
			t.Fatal(err)
		}
		items = append(items, tn.TenantID+" "+string(tn.RawJSON()))
	}
	if len(items) != 2 || items[0] != "tn_1 "+tenant || items[1] != `tn_2 {"tenant_id":"tn_2","name":"B"}` {
		t.Errorf("ListTenants items: %q", items)
	}
	nk, err := client.New(srv.URL, "bk_live_y").CreateKey(ctx, "ci")
	if err != nil || nk.KeyID != "key_1" || nk.APIKey != "bk_live_x" || string(nk.RawJSON()) != key {
		t.Errorf("CreateKey: %+v, %v; raw %q", nk, err, nk.RawJSON())
	}
	rep, err := op.CloseMonth(ctx, "2026-01")
	if err != nil || rep.Closed != 2 || string(rep.RawJSON()) != report {
		t.Errorf("CloseMonth: %+v, %v; raw %s", rep, err, rep.RawJSON())
	}
	m, err := op.PutModel(ctx, "openai", "gpt-4o-mini", client.PutModelRequest{})
	if err != nil || m.InputPerMillion != "0.150" || string(m.RawJSON()) != model {
		t.Errorf("PutModel: %+v, %v; raw %s", m, err, m.RawJSON())
	}
	// The raw JSON is not part of the value's own encoding.
	b, _ := json.Marshal(client.CloseReport{Month: "2026-02"})
	if string(b) != `{"month":"2026-02","closed":0,"already_closed":0,"failed":null}` {
		t.Errorf("a CloseReport encodes as %s", b)
	}
	if (client.Tenant{}).RawJSON() != nil {
		t.Errorf("a Tenant not decoded from an answer has raw JSON")
	}
}

// signingTransport stands for a request-signing RoundTripper (AWS SigV4):
// it reads each request's body through GetBody, as a signer hashes it,
// and records what it saw.
type signingTransport struct {
	mu   sync.Mutex
	seen []string
}

func (s *signingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	body := ""
	if r.GetBody != nil {
		rc, err := r.GetBody()
		if err != nil {
			return nil, err
		}
		b, _ := io.ReadAll(rc)
		body = string(b)
	}
	s.mu.Lock()
	s.seen = append(s.seen, r.Method+" "+r.Header.Get("Authorization")+" "+body)
	s.mu.Unlock()
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Signed")
	return http.DefaultTransport.RoundTrip(r)
}

// TestSigningRoundTripper checks what a signing RoundTripper given with
// WithHTTPClient relies on: an Operator with an empty token sends no bearer
// token, and every attempt's body can be read again before it is sent.
func TestSigningRoundTripper(t *testing.T) {
	var (
		mu       sync.Mutex
		attempts int
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		attempts++
		first := attempts == 1
		mu.Unlock()
		if r.Header.Get("Authorization") != "Signed" || string(body) != `{"tier":"enterprise"}` {
			w.WriteHeader(http.StatusForbidden)
			_, _ = io.WriteString(w, `{"message":"bad signature"}`)
			return
		}
		if first {
			// Refused before it was admitted: asked again, signed again.
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(http.StatusTooManyRequests)
			_, _ = io.WriteString(w, `{"error":{"code":"rate_limited","message":"slow down"}}`)
			return
		}
		_, _ = io.WriteString(w, `{"tenant_id":"tn_1","tier":"enterprise"}`)
	}))
	t.Cleanup(srv.Close)
	st := &signingTransport{}
	op := client.NewOperator(srv.URL, "", client.WithHTTPClient(&http.Client{Transport: st}))
	tier := "enterprise"
	tn, err := op.UpdateTenant(context.Background(), "tn_1", client.UpdateTenantRequest{Tier: &tier})
	if err != nil || tn.Tier != "enterprise" {
		t.Fatalf("UpdateTenant: %+v, %v", tn, err)
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	want := `PATCH  {"tier":"enterprise"}`
	if len(st.seen) != 2 || st.seen[0] != want || st.seen[1] != want {
		t.Errorf("the transport saw %q, want twice %q", st.seen, want)
	}
}
