package api_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/bulkhead-dev/bulkhead/pkg/bulkhead"
	"github.com/bulkhead-dev/bulkhead/pkg/platform"
	"github.com/bulkhead-dev/bulkhead/pkg/platform/platformtest"
)

// recordingEdge is an in-memory stand-in for the API Gateway key manager
// (pkg/apigw is tested against a wire-level fake of API Gateway itself).
type recordingEdge struct {
	mu    sync.Mutex
	calls []string
	fail  bool
}

func (e *recordingEdge) log(s string) { e.mu.Lock(); e.calls = append(e.calls, s); e.mu.Unlock() }

func (e *recordingEdge) Onboard(_ context.Context, tid string, tier bulkhead.TierName) (bulkhead.EdgeKey, error) {
	e.log("onboard " + string(tier))
	if e.fail {
		return bulkhead.EdgeKey{}, bulkhead.Errorf(bulkhead.Unavailable, "API Gateway unavailable")
	}
	return bulkhead.EdgeKey{ID: "k-" + tid, Value: "value-" + tid, UsagePlanID: "plan-" + string(tier)}, nil
}

func (e *recordingEdge) ChangeTier(_ context.Context, k bulkhead.EdgeKey, from, to bulkhead.TierName) (bulkhead.EdgeKey, error) {
	e.log(fmt.Sprintf("change %s %s->%s", k.ID, from, to))
	k.UsagePlanID = "plan-" + string(to)
	return k, nil
}

func (e *recordingEdge) Suspend(_ context.Context, k bulkhead.EdgeKey) error {
	e.log("suspend " + k.ID)
	return nil
}

func (e *recordingEdge) Resume(_ context.Context, k bulkhead.EdgeKey) error {
	e.log("resume " + k.ID)
	return nil
}

func (e *recordingEdge) Offboard(_ context.Context, k bulkhead.EdgeKey) error {
	e.log("offboard " + k.ID)
	return nil
}

// TestEdgeKeysFollowTheTenant: onboarding, tier changes and suspension move
// the tenant's API Gateway key, and the authorizer names it as the usage
// plan identity.
func TestEdgeKeysFollowTheTenant(t *testing.T) {
	edge := &recordingEdge{}
	h := newHarness(t, 0, func(o *platform.Options) { o.Edge = edge })
	a := h.newTenant("acme", "starter")
	h.must(200, "PATCH", "/v1/admin/tenants/"+a.id, adminToken, map[string]any{"tier": "professional"})
	h.must(200, "PATCH", "/v1/admin/tenants/"+a.id, adminToken, map[string]any{"status": "suspended"})
	h.must(200, "PATCH", "/v1/admin/tenants/"+a.id, adminToken, map[string]any{"status": "active"})
	h.must(200, "PATCH", "/v1/admin/tenants/"+a.id, adminToken, map[string]any{"quota": map[string]any{"max_storage_mb": 5}})
	want := []string{"onboard starter", "change k-" + a.id + " starter->professional", "suspend k-" + a.id, "resume k-" + a.id}
	if fmt.Sprint(edge.calls) != fmt.Sprint(want) {
		t.Errorf("edge calls %v, want %v", edge.calls, want)
	}
	resp, err := h.env.API.Authorizer(context.Background(), events.APIGatewayCustomAuthorizerRequest{
		Type: "TOKEN", AuthorizationToken: "Bearer " + a.key, MethodArn: "arn:aws:execute-api:us-east-1:1:api/prod/GET/v1/agents"})
	if err != nil || resp.UsageIdentifierKey != "value-"+a.id {
		t.Errorf("authorizer usage key %q (%v), want the tenant's API Gateway key", resp.UsageIdentifierKey, err)
	}
	// Without an edge key the tenant id keys the local throttle.
	plain := platformtest.Start(t)
	tn, secret, _, err := plain.API.CreateTenant(context.Background(), "plain", bulkhead.Starter)
	if err != nil {
		t.Fatal(err)
	}
	resp, err = plain.API.Authorizer(context.Background(), events.APIGatewayCustomAuthorizerRequest{
		Type: "TOKEN", AuthorizationToken: "Bearer " + secret, MethodArn: "arn:aws:execute-api:us-east-1:1:api/prod/GET/v1/agents"})
	if err != nil || resp.UsageIdentifierKey != tn.ID {
		t.Errorf("local usage key %q (%v)", resp.UsageIdentifierKey, err)
	}

	// An edge that is down refuses onboarding with 503 and creates nothing.
	edge.fail = true
	if r := h.do("POST", "/v1/admin/tenants", adminToken, map[string]any{"name": "later"}); r.status != 503 {
		t.Errorf("onboarding with the edge down: %d %s", r.status, r.raw)
	}
	if got := len(h.must(200, "GET", "/v1/admin/tenants", adminToken, nil).body["data"].([]any)); got != 1 {
		t.Errorf("%d tenants after a failed onboarding, want 1", got)
	}
}

// TestSiloEndpointOnThePoolRecord: the operator records where a silo
// tenant's own stack answers.
func TestSiloEndpointOnThePoolRecord(t *testing.T) {
	h := newHarness(t, 0)
	a := h.newTenant("acme", "enterprise")
	r := h.must(200, "PATCH", "/v1/admin/tenants/"+a.id, adminToken, map[string]any{"endpoint": "https://abc123.execute-api.eu-west-1.amazonaws.com/prod"})
	if r.str("endpoint") != "https://abc123.execute-api.eu-west-1.amazonaws.com/prod" {
		t.Errorf("endpoint %v", r.body["endpoint"])
	}
	if got := h.must(200, "GET", "/v1/admin/tenants/"+a.id, adminToken, nil).str("endpoint"); got == "" {
		t.Error("endpoint not kept")
	}
	if r := h.do("PATCH", "/v1/admin/tenants/"+a.id, adminToken, map[string]any{"endpoint": "http://insecure"}); r.status != 400 {
		t.Errorf("plain http endpoint: %d", r.status)
	}
	r = h.must(200, "PATCH", "/v1/admin/tenants/"+a.id, adminToken, map[string]any{"endpoint": ""})
	if r.body["endpoint"] != nil {
		t.Errorf("cleared endpoint: %v", r.body["endpoint"])
	}
}
