package api_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"maps"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/bulkhead-dev/bulkhead/pkg/api"
	"github.com/bulkhead-dev/bulkhead/pkg/bulkhead"
	"github.com/bulkhead-dev/bulkhead/pkg/dynamo"
	"github.com/bulkhead-dev/bulkhead/pkg/platform/platformtest"
)

// authzEnv drives the authorizer directly, counting its DynamoDB requests.
type authzEnv struct {
	t   *testing.T
	env *platformtest.Env
}

const authzARN = "arn:aws:execute-api:us-east-1:1:api/prod/GET/v1/agents"

// authorize runs the authorizer on "Bearer key" and returns its answer and
// the requests it made.
func (e authzEnv) authorize(key string) (events.APIGatewayCustomAuthorizerResponse, error, map[string]int64) {
	e.t.Helper()
	e.env.Calls()
	resp, err := e.env.API.Authorizer(context.Background(), events.APIGatewayCustomAuthorizerRequest{
		Type: "TOKEN", AuthorizationToken: "Bearer " + key, MethodArn: authzARN})
	return resp, err, e.env.Calls()
}

// allowed asserts an Allow for tenant tid, made with the requests want.
func (e authzEnv) allowed(name, key, tid string, want map[string]int64) {
	e.t.Helper()
	resp, err, calls := e.authorize(key)
	if err != nil || resp.PrincipalID != tid || resp.Context[api.CtxTenantID] != tid || resp.Context[api.CtxTier] != "starter" ||
		len(resp.PolicyDocument.Statement) != 1 || resp.PolicyDocument.Statement[0].Effect != "Allow" {
		e.t.Errorf("%s: %+v, %v; want Allow for %s", name, resp, err, tid)
	}
	if !maps.Equal(calls, want) {
		e.t.Errorf("%s: requests %v, want %v", name, calls, want)
	}
}

// denied asserts a Deny whose message contains msg.
func (e authzEnv) denied(name, key, msg string, want map[string]int64) {
	e.t.Helper()
	resp, err, calls := e.authorize(key)
	if err != nil || len(resp.PolicyDocument.Statement) != 1 || resp.PolicyDocument.Statement[0].Effect != "Deny" ||
		resp.Context[api.CtxErrorCode] != string(bulkhead.Forbidden) || !strings.Contains(resp.Context[api.CtxMessage].(string), msg) {
		e.t.Errorf("%s: %+v, %v; want Deny naming %q", name, resp, err, msg)
	}
	if !maps.Equal(calls, want) {
		e.t.Errorf("%s: requests %v, want %v", name, calls, want)
	}
}

// unauthorized asserts a 401 made with the requests want.
func (e authzEnv) unauthorized(name, key string, want map[string]int64) {
	e.t.Helper()
	resp, err, calls := e.authorize(key)
	if !errors.Is(err, api.ErrUnauthorized) {
		e.t.Errorf("%s (%q): %+v, %v; want Unauthorized", name, key, resp, err)
	}
	if !maps.Equal(calls, want) {
		e.t.Errorf("%s (%q): requests %v, want %v", name, key, calls, want)
	}
}

// randomSecret is 32 random bytes in base64url, the secret part of a key.
func randomSecret() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// storeKey stores a key of tenant tid whose secret is key, as a key made
// before keys named their tenant (or a forged one) would be stored.
func storeKey(t *testing.T, s *dynamo.Store, tid, key string) bulkhead.APIKey {
	t.Helper()
	sum := sha256.Sum256([]byte(key))
	k := bulkhead.APIKey{ID: bulkhead.NewID("key"), TenantID: tid, Name: "stored", Prefix: "bk_live_",
		Hash: hex.EncodeToString(sum[:]), Status: bulkhead.KeyActive}
	if err := s.Tenant(tid).CreateKey(context.Background(), k, nil); err != nil {
		t.Fatal(err)
	}
	return k
}

// TestAuthorizerKeyFormats: a key that names its tenant is resolved with
// its tenant in one DynamoDB request, and only if the stored key is that
// tenant's; a key of the earlier form (bk_live_ and the secret) still
// works, with its two reads; a malformed key of either form is refused
// before any request; revocation, suspension and a store failure are
// answered as before.
func TestAuthorizerKeyFormats(t *testing.T) {
	env := platformtest.Start(t)
	e := authzEnv{t: t, env: env}
	ctx := context.Background()
	s := env.API.Store()
	a, aKey, aRec, err := env.API.CreateTenant(ctx, "acme", bulkhead.Starter)
	if err != nil {
		t.Fatal(err)
	}
	b, bKey, _, err := env.API.CreateTenant(ctx, "globex", bulkhead.Starter)
	if err != nil {
		t.Fatal(err)
	}
	secretOf := func(key string) string { return key[len(key)-43:] }
	if want := "bk_live_" + a.ID + "_"; !strings.HasPrefix(aKey, want) || len(aKey) != len(want)+43 {
		t.Fatalf("new key %q, want %s + 43 characters", aKey, want)
	}
	if want := "bk_live_" + a.ID + "_" + secretOf(aKey)[:4]; aRec.Prefix != want {
		t.Errorf("displayed prefix %q, want %q", aRec.Prefix, want)
	}

	one := map[string]int64{"DynamoDB.BatchGetItem": 1}
	two := map[string]int64{"DynamoDB.GetItem": 2}
	none := map[string]int64{}
	e.allowed("key naming its tenant", aKey, a.ID, one)
	e.allowed("the other tenant's key", bKey, b.ID, one)

	// The tenant id in the token is untrusted: another real tenant's id in
	// a's key is an unknown key.
	e.unauthorized("a's secret with b's tenant id", "bk_live_"+b.ID+"_"+secretOf(aKey), one)
	// Even when a key with that very text is stored, it is a's: the stored
	// key, not the token, names the tenant.
	forged := "bk_live_" + b.ID + "_" + randomSecret()
	storeKey(t, s, a.ID, forged)
	e.unauthorized("a stored key of a presented as b's", forged, one)
	e.unauthorized("unknown key naming a tenant", "bk_live_"+a.ID+"_"+randomSecret(), one)
	e.unauthorized("unknown tenant id", "bk_live_tn_aaaaaaaaaaaaaaaa_"+secretOf(aKey), one)

	// Keys of the earlier form keep working, with the key and the tenant read one after the other.
	old := "bk_live_" + randomSecret()
	oldRec := storeKey(t, s, a.ID, old)
	e.allowed("key of the earlier form", old, a.ID, two)
	e.unauthorized("unknown key of the earlier form", "bk_live_"+randomSecret(), map[string]int64{"DynamoDB.GetItem": 1})
	// ... and the earlier form is not a way around the tenant check: a's
	// secret without its tenant id is another, unknown key.
	e.unauthorized("a's secret without its tenant id", "bk_live_"+secretOf(aKey), map[string]int64{"DynamoDB.GetItem": 1})

	// Malformed keys of both forms are refused before any request.
	sec := secretOf(aKey)
	for _, k := range []string{
		"bk_live_" + sec[:42], "bk_live_" + sec + "A", "bk_live_" + strings.Repeat("/", 43), "bk_test_" + sec, "bk_live_" + sec[:42] + "=",
		"bk_live_" + a.ID + "_" + sec[:42], "bk_live_" + a.ID + "_" + sec + "A", "bk_live_" + a.ID + sec, "bk_live_" + a.ID + "__" + sec,
		"bk_live_" + strings.ToUpper(a.ID) + "_" + sec, "bk_live_tn_aaaaaaaaaaaaaaa1_" + sec, "bk_live_tn_aaaaaaaaaaaaaaa_" + sec,
		"bk_live_key_aaaaaaaaaaaaaaaa_" + sec, "bk_live__" + sec, "bk_live_" + a.ID + "_" + strings.Repeat("!", 43),
		"bk_live_x" + a.ID + "_" + sec, "bk_live_" + a.ID + "_" + a.ID + "_" + sec,
	} {
		e.unauthorized("malformed", k, none)
	}

	// Revocation and suspension, for both forms.
	if _, err := s.Tenant(a.ID).RevokeKey(ctx, aRec.ID); err != nil {
		t.Fatal(err)
	}
	e.denied("revoked key naming its tenant", aKey, "revoked", one)
	if _, err := s.Tenant(a.ID).RevokeKey(ctx, oldRec.ID); err != nil {
		t.Fatal(err)
	}
	e.denied("revoked key of the earlier form", old, "revoked", map[string]int64{"DynamoDB.GetItem": 1})
	suspended, active := bulkhead.TenantSuspended, bulkhead.TenantActive
	if _, err := s.UpdateTenant(ctx, b.ID, dynamo.TenantPatch{Status: &suspended}); err != nil {
		t.Fatal(err)
	}
	oldB := "bk_live_" + randomSecret()
	storeKey(t, s, b.ID, oldB)
	e.denied("suspended tenant, key naming it", bKey, "suspended", one)
	e.denied("suspended tenant, key of the earlier form", oldB, "suspended", two)
	if _, err := s.UpdateTenant(ctx, b.ID, dynamo.TenantPatch{Status: &active}); err != nil {
		t.Fatal(err)
	}
	e.allowed("resumed tenant", bKey, b.ID, one)

	// A store that cannot be read fails closed: an error that is not a 401.
	if err := env.Dynamo.Close(ctx); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{bKey, oldB} {
		resp, err, _ := e.authorize(k)
		if err == nil || errors.Is(err, api.ErrUnauthorized) || len(resp.PolicyDocument.Statement) != 0 {
			t.Errorf("store down: %+v, %v; want an error other than Unauthorized and no policy", resp, err)
		}
	}
}
