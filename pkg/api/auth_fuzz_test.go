package api_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/bulkhead-dev/bulkhead/pkg/api"
)

// FuzzAuthorizer drives the Lambda authorizer with arbitrary Authorization
// headers against a real key store. "{key}" in an input stands for a live
// key. Whatever the header, the authorizer does not fail or panic: it allows
// exactly "Bearer <the live key>" (scheme in any case, surrounding spaces
// ignored) as that key's tenant, and answers Unauthorized (401) to anything
// else, malformed or unknown.
func FuzzAuthorizer(f *testing.F) {
	p := newFuzzPlatform(f)
	const methodARN = "arn:aws:execute-api:local:000000000000:local/local/GET/v1/agents"
	for _, h := range []string{"Bearer {key}", "bearer {key}", " BEARER   {key}  ", "Bearer {key}{key}", "Bearer {key}x", "Bearer x{key}",
		"{key}", "Basic {key}", "Bearer", "Bearer ", "", "Bearer bk_live_nope", "Bearer\t{key}", "Bearer\n{key}", "Bearer {key}\x00",
		"Bearer bk_live_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "Bearer bk_live_" + strings.Repeat("-", 43), "Bearer bk_live_" + strings.Repeat("é", 22),
		"Bearer bk_live_tn_aaaaaaaaaaaaaaaa_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "Bearer bk_live_tn_aaaaaaaaaaaaaaaa_{key}",
		"Bearer bk_live_{key}"} {
		f.Add(h)
	}
	f.Fuzz(func(t *testing.T, h string) {
		h = strings.ReplaceAll(h, "{key}", p.tenant.key)
		resp, err := p.h.env.API.Authorizer(context.Background(), events.APIGatewayCustomAuthorizerRequest{
			Type: "TOKEN", AuthorizationToken: h, MethodArn: methodARN,
		})
		scheme, token, _ := strings.Cut(strings.TrimSpace(h), " ")
		want := strings.EqualFold(scheme, "Bearer") && strings.TrimSpace(token) == p.tenant.key
		if !want {
			if !errors.Is(err, api.ErrUnauthorized) {
				t.Fatalf("Authorization %q: got %+v, %v; want Unauthorized", h, resp, err)
			}
			return
		}
		if err != nil || resp.Context[api.CtxTenantID] != p.tenant.id || len(resp.PolicyDocument.Statement) != 1 ||
			resp.PolicyDocument.Statement[0].Effect != "Allow" {
			t.Fatalf("Authorization %q with the live key: got %+v, %v", h, resp, err)
		}
	})
}
