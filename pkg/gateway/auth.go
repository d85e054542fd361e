package gateway

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"strconv"
	"strings"

	"github.com/aws/aws-lambda-go/events"

	"github.com/bulkhead-dev/bulkhead/pkg/api"
	"github.com/bulkhead-dev/bulkhead/pkg/bulkhead"
)

// The emulated AWS identity of the local API.
const (
	accountID = "000000000000"
	apiID     = "local"
	region    = "local"
	// adminCaller stands in for the IAM principal that signs admin requests
	// in AWS. It is also the identity's UserArn: the admin handler insists
	// on one, and the audit log names the operator by it (the IAM ARN in
	// AWS, local-admin locally).
	adminCaller  = "local-admin"
	adminUserArn = adminCaller
)

// unauthorizedMessage is the error a Lambda authorizer returns to make API
// Gateway answer 401 rather than 500.
const unauthorizedMessage = "Unauthorized"

// tenantAuth is what a successful Lambda authorizer call leaves for the rest
// of the request.
type tenantAuth struct {
	// context is the authorizer context as the handler sees it (stringified)
	// plus principalId.
	context map[string]any
	// usageKey identifies the usage-plan bucket (never logged).
	usageKey string
	tier     string
}

// bearerToken extracts the token of an "Authorization: Bearer <token>" value.
func bearerToken(h string) (string, bool) {
	scheme, token, ok := strings.Cut(strings.TrimSpace(h), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}

// checkAdmin emulates IAM auth on operator routes with a shared token.
func (g *Gateway) checkAdmin(authorization string) *reply {
	if strings.TrimSpace(authorization) == "" {
		return fail(bulkhead.Unauthenticated, "Missing admin token")
	}
	token, ok := bearerToken(authorization)
	// Hash both sides so the comparison is constant time in the length too.
	got, want := sha256.Sum256([]byte(token)), sha256.Sum256([]byte(g.adminToken))
	if !ok || subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
		return fail(bulkhead.Forbidden, "Invalid admin token")
	}
	return nil
}

// authorizeTenant runs the Lambda authorizer for one request, with no cache,
// and applies its policy the way API Gateway does.
func (g *Gateway) authorizeTenant(ctx context.Context, authorization, methodARN string) (*tenantAuth, *reply) {
	if strings.TrimSpace(authorization) == "" {
		// API Gateway refuses an empty identity source without invoking the authorizer.
		return nil, fail(bulkhead.Unauthenticated, "Invalid or missing API key")
	}
	resp, err := g.callAuthorizer(ctx, events.APIGatewayCustomAuthorizerRequest{
		Type:               "TOKEN",
		AuthorizationToken: authorization,
		MethodArn:          methodARN,
	})
	if err != nil {
		if err.Error() == unauthorizedMessage {
			return nil, fail(bulkhead.Unauthenticated, "Invalid or missing API key")
		}
		// The authorizer fails when it cannot reach its store: the platform
		// fails closed with 503, which the deployed API's AUTHORIZER_FAILURE
		// gateway response also answers.
		r := fail(bulkhead.Unavailable, "Service temporarily unavailable; retry")
		// The authorizer is ours, but an error message could still quote the key.
		r.cause = fmt.Errorf("authorizer: %s", redact(err.Error(), authorization))
		return nil, r
	}
	authCtx, err := stringifyContext(resp.Context)
	if err != nil {
		// API Gateway answers AuthorizerConfigurationException (500) here.
		r := fail(bulkhead.Internal, "Internal server error")
		r.cause = fmt.Errorf("authorizer context: %w", err)
		return nil, r
	}
	if !policyAllows(resp.PolicyDocument, methodARN) {
		code, msg := string(bulkhead.Forbidden), "Forbidden"
		if v, _ := authCtx[api.CtxErrorCode].(string); v != "" {
			code = v
		}
		if v, _ := authCtx[api.CtxMessage].(string); v != "" {
			msg = v
		}
		// A Deny is API Gateway's ACCESS_DENIED response: always 403, whatever
		// code the authorizer puts in the body.
		return nil, &reply{status: 403, code: code, message: msg}
	}
	authCtx["principalId"] = resp.PrincipalID
	key := resp.UsageIdentifierKey
	if key == "" {
		key = resp.PrincipalID
	}
	tier, _ := authCtx[api.CtxTier].(string)
	return &tenantAuth{context: authCtx, usageKey: key, tier: tier}, nil
}

// callAuthorizer turns an authorizer panic into an error, as a crashed
// authorizer Lambda would be.
func (g *Gateway) callAuthorizer(ctx context.Context, req events.APIGatewayCustomAuthorizerRequest) (resp events.APIGatewayCustomAuthorizerResponse, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("authorizer panic: %v", p)
		}
	}()
	return g.authorizer(ctx, req)
}

// stringifyContext mirrors API Gateway: string, number and boolean values
// reach the handler as strings, nulls are dropped, anything else is an error.
func stringifyContext(in map[string]any) (map[string]any, error) {
	out := make(map[string]any, len(in)+1)
	for k, v := range in {
		var s string
		switch v := v.(type) {
		case nil:
			continue
		case string:
			s = v
		case bool:
			s = strconv.FormatBool(v)
		case float64:
			s = strconv.FormatFloat(v, 'f', -1, 64)
		case float32:
			s = strconv.FormatFloat(float64(v), 'f', -1, 32)
		case int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64:
			s = fmt.Sprint(v)
		default:
			return nil, fmt.Errorf("key %q: %T is not a string, number or boolean", k, v)
		}
		out[k] = s
	}
	return out, nil
}

// policyAllows evaluates an authorizer policy for execute-api:Invoke on arn:
// an explicit Deny wins, otherwise an Allow is needed.
func policyAllows(doc events.APIGatewayCustomAuthorizerPolicy, arn string) bool {
	allowed := false
	for _, st := range doc.Statement {
		if !anyMatch(st.Action, "execute-api:Invoke", true) || !anyMatch(st.Resource, arn, false) {
			continue
		}
		switch st.Effect {
		case "Deny":
			return false
		case "Allow":
			allowed = true
		}
	}
	return allowed
}

func anyMatch(patterns []string, s string, foldCase bool) bool {
	for _, p := range patterns {
		if foldCase {
			// IAM action names are case-insensitive; resources are not.
			p, s = strings.ToLower(p), strings.ToLower(s)
		}
		if wildcardMatch(p, s) {
			return true
		}
	}
	return false
}

// wildcardMatch matches IAM-style patterns: * is any run of characters
// (slashes included) and ? is exactly one.
func wildcardMatch(pattern, s string) bool {
	// Iterative match with single-star backtracking: linear in practice and
	// no recursion on hostile patterns.
	p, i := 0, 0
	star, mark := -1, 0
	for i < len(s) {
		switch {
		case p < len(pattern) && (pattern[p] == '?' || pattern[p] == s[i]):
			p++
			i++
		case p < len(pattern) && pattern[p] == '*':
			star, mark = p, i
			p++
		case star >= 0:
			p = star + 1
			mark++
			i = mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

// redact removes a secret (and its bearer token) from a message before it is logged.
func redact(msg, authorization string) string {
	for _, secret := range []string{authorization, strings.TrimSpace(authorization)} {
		if secret != "" {
			msg = strings.ReplaceAll(msg, secret, "[REDACTED]")
		}
	}
	if tok, ok := bearerToken(authorization); ok {
		msg = strings.ReplaceAll(msg, tok, "[REDACTED]")
	}
	return msg
}
