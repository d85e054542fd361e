// Package stacks is Bulkhead's AWS CDK infrastructure: the pool stack every
// shared tenant runs on and the silo stacks of dedicated tenants, both built
// from one Platform construct.
//
// What the Platform holds: one DynamoDB table and one S3 bucket (tenant data
// partitioned by TENANT#<id> and tenants/<id>/), one Lambda function per
// directory of functions/ (packaged by `make build` as dist/<name>.zip), a
// regional REST API generated from api.Routes() with a TOKEN Lambda
// authorizer and apiKeySource = AUTHORIZER, one usage plan per tier generated
// from bulkhead.Tiers(), gateway responses in the platform's error shape, the
// tenant-access role the data-plane functions assume with a per-tenant
// session policy (pkg/tenantcreds), the monthly billing schedule, a
// CloudWatch dashboard, alarms and Contributor Insights rules, and the portal:
// pkg/portal/static in a private bucket behind a CloudFront distribution that
// also routes the API's paths to the REST API's stage (same origin, no CORS).
//
// The tier table, the route table and the function names come from the Go
// packages the functions themselves use, so the infrastructure cannot drift
// from the code it deploys.
package stacks
