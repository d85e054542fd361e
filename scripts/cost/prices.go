package main

import "github.com/bulkhead-dev/bulkhead/pkg/api"

// The price table: us-east-1 list prices, the only place the cost model
// keeps them. Each is in US dollars per million of its unit, so that a
// figure per execution times the price is dollars per million executions.
// These are estimates of the platform's own bill, not money a tenant is
// charged, so they are floats (tenants' money stays integer micro-dollars).
const (
	// API Gateway REST API: $3.50 per million requests (the first 333
	// million a month). https://aws.amazon.com/api-gateway/pricing/
	apiGatewayRESTPerMillion = 3.50
	// API Gateway HTTP API: $1.00 per million requests (the first 300
	// million a month); it has no usage plans or API keys, so it is shown
	// for comparison only. https://aws.amazon.com/api-gateway/pricing/
	apiGatewayHTTPPerMillion = 1.00

	// DynamoDB on-demand, Standard table class: $0.625 per million write
	// request units, $0.125 per million read request units.
	// https://aws.amazon.com/dynamodb/pricing/on-demand/
	dynamoWritePerMillion = 0.625
	dynamoReadPerMillion  = 0.125

	// S3 Standard: PUT, COPY, POST and LIST requests $0.005 per 1,000; GET,
	// SELECT and every other request $0.0004 per 1,000; DELETE is free.
	// https://aws.amazon.com/s3/pricing/
	s3PutPerMillion = 5.00
	s3GetPerMillion = 0.40

	// Lambda on arm64 (Graviton): $0.20 per million requests and
	// $0.0000133334 per GB-second (the first 7.5 billion GB-seconds a
	// month). https://aws.amazon.com/lambda/pricing/
	lambdaRequestPerMillion = 0.20
	lambdaGBSecond          = 0.0000133334
)

// The memory of the functions an execution invokes, from the one place the
// stack (infra/stacks/platform.go) takes it too: api.MemoryMB, sized from
// measured use.
var (
	executeMemoryMB    = api.MemoryMB(api.FnExecute)
	authorizerMemoryMB = api.MemoryMB(api.FnAuthorizer)
)

// lambdaInvocations is how many Lambda requests one API request makes: the
// authorizer (uncached, as the local gateway runs it for every request; API
// Gateway caches its answer per key for a minute) and the route's function.
const lambdaInvocations = 2

// lambdaPerSecondPerMillion is what one second of a function's run costs
// per million executions, in dollars, at memoryMB.
func lambdaPerSecondPerMillion(memoryMB int) float64 {
	return float64(memoryMB) / 1024 * lambdaGBSecond * 1e6
}
