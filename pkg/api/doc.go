// Package api holds the platform's HTTP handlers as Lambda handlers for API
// Gateway REST proxy events, the Lambda authorizer, and the route table; the
// same handlers serve the deployed API and the local platform.
package api
