package api_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/bulkhead-dev/bulkhead/pkg/api"
)

// TestScheduledCloseThroughTheBillingFunction drives the billing function's
// handler with an EventBridge scheduled event and with an API event.
func TestScheduledCloseThroughTheBillingFunction(t *testing.T) {
	h := newHarness(t, 0)
	a := h.newTenant("acme", "professional")
	agent := h.newAgent(a)
	h.must(200, "POST", "/v1/agents/"+agent+"/execute", a.key, map[string]any{"message": "hi"})
	h.clock.Set(time.Date(2026, 12, 1, 0, 15, 0, 0, time.UTC))
	handler := lambda.NewHandler(h.env.API.BillingHandler())
	event := `{"version":"0","id":"1","detail-type":"Scheduled Event","source":"aws.events","account":"123456789012",
		"time":"2026-12-01T00:15:00Z","region":"us-east-1","resources":[],"detail":{}}`
	for range 2 {
		out, err := handler.Invoke(context.Background(), []byte(event))
		if err != nil {
			t.Fatalf("scheduled close: %v", err)
		}
		var rep api.CloseReport
		if err := json.Unmarshal(out, &rep); err != nil || rep.Month != "2026-11" || rep.Closed+rep.AlreadyClosed != 1 {
			t.Errorf("report %s (%v)", out, err)
		}
	}
	inv := h.must(200, "GET", "/v1/billing/invoices/2026-11", a.key, nil)
	if micros(t, inv.body["total"]) != 99_000_000 {
		t.Errorf("invoice %s", inv.raw)
	}
	apiEvent := `{"resource":"/v1/billing/invoices/{month}","path":"/v1/billing/invoices/2026-11","httpMethod":"GET",
		"pathParameters":{"month":"2026-11"},"requestContext":{"requestId":"r1","authorizer":{"tenant_id":"` + a.id + `","tier":"professional"}}}`
	out, err := handler.Invoke(context.Background(), []byte(apiEvent))
	if err != nil {
		t.Fatal(err)
	}
	var resp struct {
		StatusCode int    `json:"statusCode"`
		Body       string `json:"body"`
	}
	if err := json.Unmarshal(out, &resp); err != nil || resp.StatusCode != 200 || resp.Body != inv.raw {
		t.Errorf("API event through the billing handler: %s", out)
	}
	if _, err := handler.Invoke(context.Background(), []byte(`{"hello":"world"}`)); err == nil {
		t.Error("an unknown event was accepted")
	}
}

// TestLocalMonthlyCloseLoop runs the local schedule's loop with an injected
// clock: it closes the previous month once due and waits for the next boundary.
func TestLocalMonthlyCloseLoop(t *testing.T) {
	h := newHarness(t, 0)
	a := h.newTenant("acme", "starter")
	h.clock.Set(time.Date(2026, 12, 1, 0, 5, 0, 0, time.UTC)) // not yet due
	var waits []time.Duration
	wait := func(_ context.Context, d time.Duration) bool {
		waits = append(waits, d)
		h.clock.Set(h.clock.Now().Add(d))
		return len(waits) < 2
	}
	h.env.API.CloseMonthsDue(context.Background(), wait)
	if len(waits) != 2 || waits[0] != 5*time.Minute {
		t.Errorf("waits %v, want 5m first (to 00:10), then to the next month", waits)
	}
	h.must(200, "GET", "/v1/billing/invoices/2026-11", a.key, nil)
	if got := h.clock.Now(); !got.Equal(time.Date(2027, 1, 1, 0, 10, 0, 0, time.UTC)) {
		t.Errorf("the second wait ended at %s, want the January boundary plus the grace", got)
	}
}
