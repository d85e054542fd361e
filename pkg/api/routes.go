package api

import (
	"context"

	"github.com/aws/aws-lambda-go/events"
)

// Handler is a Lambda handler for API Gateway REST proxy events. A returned
// error means the invocation failed (API Gateway answers 502), never an HTTP status.
type Handler func(ctx context.Context, req events.APIGatewayProxyRequest) (events.APIGatewayProxyResponse, error)

// Auth says how API Gateway authorizes a route.
type Auth string

// Route authorization kinds.
const (
	// AuthNone: no authorization (health, the OpenAPI document and the reference).
	AuthNone Auth = "none"
	// AuthTenant: the Lambda authorizer resolves the bearer API key to a tenant.
	AuthTenant Auth = "tenant"
	// AuthAdmin: operator routes (IAM in AWS, the admin token locally).
	AuthAdmin Auth = "admin"
)

// Function names: one Lambda function each.
const (
	FnAuthorizer = "authorizer"
	FnHealth     = "health"
	FnAgents     = "agents"
	FnExecute    = "execute"
	FnUsage      = "usage"
	FnBilling    = "billing"
	FnKeys       = "keys"
	FnAdmin      = "admin"
)

// Route is one API Gateway method: HTTP method, resource path template (with
// {param} segments), the function that serves it and how it is authorized.
type Route struct {
	Method   string
	Resource string
	Function string
	Auth     Auth
}

// Authorizer context keys set by the Lambda authorizer and read by handlers.
const (
	CtxTenantID = "tenant_id"
	CtxTier     = "tier"
	CtxKeyID    = "key_id"
	// CtxErrorCode and CtxMessage explain a Deny (API Gateway puts them in the 403 body).
	CtxErrorCode = "error_code"
	CtxMessage   = "message"
)

// Routes is the API's route table: the local gateway serves it and the
// infrastructure creates one API Gateway method per row.
func Routes() []Route {
	return []Route{
		{"GET", "/health", FnHealth, AuthNone},
		{"GET", OpenAPIPath, FnHealth, AuthNone},
		{"GET", DocsPath, FnHealth, AuthNone},
		{"GET", DocsStylePath, FnHealth, AuthNone},

		{"POST", "/v1/agents", FnAgents, AuthTenant},
		{"GET", "/v1/agents", FnAgents, AuthTenant},
		{"GET", "/v1/agents/{agent_id}", FnAgents, AuthTenant},
		{"PATCH", "/v1/agents/{agent_id}", FnAgents, AuthTenant},
		{"DELETE", "/v1/agents/{agent_id}", FnAgents, AuthTenant},
		{"GET", "/v1/conversations", FnAgents, AuthTenant},
		{"GET", "/v1/conversations/{conversation_id}", FnAgents, AuthTenant},
		{"DELETE", "/v1/conversations/{conversation_id}", FnAgents, AuthTenant},
		{"GET", "/v1/models", FnAgents, AuthTenant},
		{"POST", "/v1/tools", FnAgents, AuthTenant},
		{"GET", "/v1/tools", FnAgents, AuthTenant},
		{"GET", "/v1/tools/{tool_id}", FnAgents, AuthTenant},
		{"PATCH", "/v1/tools/{tool_id}", FnAgents, AuthTenant},
		{"DELETE", "/v1/tools/{tool_id}", FnAgents, AuthTenant},
		{"POST", "/v1/tools/{tool_id}/rotate-secret", FnAgents, AuthTenant},
		{"GET", "/v1/tickets", FnAgents, AuthTenant},
		{"GET", "/v1/tickets/{ticket_id}", FnAgents, AuthTenant},
		{"PATCH", "/v1/tickets/{ticket_id}", FnAgents, AuthTenant},
		{"PUT", "/v1/kb/documents/{doc_id}", FnAgents, AuthTenant},
		{"GET", "/v1/kb/documents", FnAgents, AuthTenant},
		{"GET", "/v1/kb/documents/{doc_id}", FnAgents, AuthTenant},
		{"DELETE", "/v1/kb/documents/{doc_id}", FnAgents, AuthTenant},

		{"POST", "/v1/agents/{agent_id}/execute", FnExecute, AuthTenant},

		{"GET", "/v1/usage", FnUsage, AuthTenant},
		{"GET", "/v1/usage/records", FnUsage, AuthTenant},
		{"GET", "/v1/usage/daily", FnUsage, AuthTenant},
		{"GET", "/v1/executions/{execution_id}", FnUsage, AuthTenant},
		{"GET", "/v1/executions/{execution_id}/log", FnUsage, AuthTenant},
		{"GET", "/v1/audit", FnUsage, AuthTenant},
		{"GET", "/v1/billing/current", FnBilling, AuthTenant},
		{"GET", "/v1/billing/invoices", FnBilling, AuthTenant},
		{"GET", "/v1/billing/invoices/{month}", FnBilling, AuthTenant},

		{"POST", "/v1/keys", FnKeys, AuthTenant},
		{"GET", "/v1/keys", FnKeys, AuthTenant},
		{"DELETE", "/v1/keys/{key_id}", FnKeys, AuthTenant},

		{"POST", "/v1/admin/tenants", FnAdmin, AuthAdmin},
		{"GET", "/v1/admin/tenants", FnAdmin, AuthAdmin},
		{"GET", "/v1/admin/tenants/{tenant_id}", FnAdmin, AuthAdmin},
		{"PATCH", "/v1/admin/tenants/{tenant_id}", FnAdmin, AuthAdmin},
		{"PATCH", "/v1/admin/tenants/{tenant_id}/agents/{agent_id}", FnAdmin, AuthAdmin},
		{"GET", "/v1/admin/invoices", FnAdmin, AuthAdmin},
		{"POST", "/v1/admin/billing/close", FnAdmin, AuthAdmin},
		{"PUT", "/v1/admin/models/{provider}/{model_id}", FnAdmin, AuthAdmin},
		{"GET", "/v1/admin/models", FnAdmin, AuthAdmin},
		{"GET", "/v1/admin/audit", FnAdmin, AuthAdmin},
	}
}
