// Package apigw onboards tenants onto API Gateway usage plans: it gives each
// tenant an API Gateway API key attached to its tier's usage plan, moves the
// key when the tier changes, and disables it while the tenant is suspended.
//
// The edge is best effort. API Gateway usage plans throttle per key but are
// not hard limits, and an account holds at most 10,000 API keys per Region
// (a limit AWS does not raise). So only the first Config.MaxTenantKeys tenants
// get a key of their own; the tenants after them share one key per tier, and
// with it that tier's throttle. The limits that matter are always the ones
// enforced in DynamoDB.
//
// The authorizer returns the key's value as usageIdentifierKey (the REST API
// has apiKeySource = AUTHORIZER), so clients never see or send these keys:
// a key value here is an identifier for API Gateway's throttling, not a
// credential.
//
// CreateApiKey is limited by AWS to 5 calls per second per account. An
// Onboarder sends at most one CreateApiKey at a time and starts them at least
// 200 ms apart; throttling that still happens (other processes of the same
// account) is retried by the SDK's retryer.
//
// Errors are *bulkhead.Error: Invalid for a tier without a usage plan or an
// empty tenant id, NotFound when API Gateway does not know the key or plan,
// Conflict when API Gateway reports a conflicting change, and Unavailable
// for throttling that outlived the SDK's retries and for every other failure
// of API Gateway (the cause wrapped).
package apigw
