package api

import (
	"context"
	"errors"
	"strings"

	"github.com/aws/aws-lambda-go/events"

	"github.com/bulkhead-dev/bulkhead/pkg/bulkhead"
	"github.com/bulkhead-dev/bulkhead/pkg/tracing"
)

// ErrUnauthorized is what the authorizer returns for a missing, malformed or
// unknown key: API Gateway answers 401 when an authorizer fails with exactly
// this message.
var ErrUnauthorized = errors.New("Unauthorized")

// Authorizer is the Lambda TOKEN authorizer: it resolves the bearer API key to
// its tenant and is the only thing that ever decides the tenant. The policy
// it returns allows every method of the stage, because API Gateway caches the
// answer per token for all routes. Revoked keys and suspended tenants get a
// Deny whose context explains why (the gateway response puts it in the 403).
// A key names its tenant, so the key and the tenant are read in one request
// (see lookupKey); a key made before keys named their tenant takes two.
func (a *API) Authorizer(ctx context.Context, req events.APIGatewayCustomAuthorizerRequest) (resp events.APIGatewayCustomAuthorizerResponse, err error) {
	err = tracing.Span(ctx, "authorize", func(ctx context.Context) error {
		var aerr error
		resp, aerr = a.authorize(ctx, req)
		if aerr == nil {
			tracing.Annotate(ctx, "tenant_id", resp.PrincipalID)
		}
		return aerr
	})
	return resp, err
}

func (a *API) authorize(ctx context.Context, req events.APIGatewayCustomAuthorizerRequest) (events.APIGatewayCustomAuthorizerResponse, error) {
	token, ok := bearer(req.AuthorizationToken)
	if !ok {
		return events.APIGatewayCustomAuthorizerResponse{}, ErrUnauthorized
	}
	tid, ok := parseKey(token)
	if !ok {
		return events.APIGatewayCustomAuthorizerResponse{}, ErrUnauthorized
	}
	k, t, err := a.lookupKey(ctx, hashKey(token), tid)
	if bulkhead.IsCode(err, bulkhead.NotFound) {
		return events.APIGatewayCustomAuthorizerResponse{}, ErrUnauthorized
	}
	if err != nil {
		// Fail closed: API Gateway answers 500 and nothing runs.
		a.log.Error("authorizer: key lookup", "error", err)
		return events.APIGatewayCustomAuthorizerResponse{}, err
	}
	log := a.log.With("tenant_id", k.TenantID, "key_id", k.ID)
	if k.Status != bulkhead.KeyActive {
		log.Info("authorizer: revoked key refused")
		return deny(req.MethodArn, k, bulkhead.Forbidden, "API key has been revoked"), nil
	}
	if t == nil {
		tt, err := a.store.GetTenant(ctx, k.TenantID)
		if err != nil {
			log.Error("authorizer: tenant lookup", "error", err)
			return events.APIGatewayCustomAuthorizerResponse{}, err
		}
		t = &tt
	}
	if t.Status != bulkhead.TenantActive {
		log.Info("authorizer: suspended tenant refused")
		return deny(req.MethodArn, k, bulkhead.Forbidden, "Tenant is suspended"), nil
	}
	return events.APIGatewayCustomAuthorizerResponse{
		PrincipalID:    k.TenantID,
		PolicyDocument: policy("Allow", stageWildcard(req.MethodArn)),
		Context: map[string]any{
			CtxTenantID: k.TenantID,
			CtxTier:     string(t.Tier),
			CtxKeyID:    k.ID,
		},
		// The tenant's usage-plan identity: its API Gateway key in AWS; the
		// tenant id keys the local gateway's throttle.
		UsageIdentifierKey: usageKey(*t),
	}, nil
}

// lookupKey reads the key with this hash. A key that names its tenant (tid
// set) is read with its tenant's profile in one request, and is NotFound
// unless the stored key is that tenant's: the id in the token is only a
// hint, the stored key decides. A key of the earlier form is read alone (the
// tenant is nil) and its tenant is read next.
func (a *API) lookupKey(ctx context.Context, hash, tid string) (bulkhead.APIKey, *bulkhead.Tenant, error) {
	if tid == "" {
		k, err := a.store.LookupKey(ctx, hash)
		return k, nil, err
	}
	k, t, err := a.store.LookupKeyAndTenant(ctx, hash, tid)
	if err != nil {
		return bulkhead.APIKey{}, nil, err
	}
	if k.TenantID != tid || t.ID != tid {
		return bulkhead.APIKey{}, nil, bulkhead.Errorf(bulkhead.NotFound, "key not found")
	}
	return k, &t, nil
}

func deny(methodArn string, k bulkhead.APIKey, code bulkhead.Code, msg string) events.APIGatewayCustomAuthorizerResponse {
	return events.APIGatewayCustomAuthorizerResponse{
		PrincipalID:    k.TenantID,
		PolicyDocument: policy("Deny", stageWildcard(methodArn)),
		Context:        map[string]any{CtxErrorCode: string(code), CtxMessage: msg, CtxKeyID: k.ID},
	}
}

func policy(effect, resource string) events.APIGatewayCustomAuthorizerPolicy {
	return events.APIGatewayCustomAuthorizerPolicy{
		Version: "2012-10-17",
		Statement: []events.IAMPolicyStatement{{
			Action: []string{"execute-api:Invoke"}, Effect: effect, Resource: []string{resource},
		}},
	}
}

// stageWildcard turns arn:aws:execute-api:region:acct:api/stage/METHOD/path
// into arn:aws:execute-api:region:acct:api/stage/* .
func stageWildcard(methodArn string) string {
	parts := strings.SplitN(methodArn, "/", 3)
	if len(parts) < 2 {
		return methodArn
	}
	return parts[0] + "/" + parts[1] + "/*"
}

func bearer(h string) (string, bool) {
	scheme, token, ok := strings.Cut(strings.TrimSpace(h), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}

// usageKey is the API Gateway key value that selects the tenant's usage plan.
func usageKey(t bulkhead.Tenant) string {
	if t.Edge.Value != "" {
		return t.Edge.Value
	}
	return t.ID
}
