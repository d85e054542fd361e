// Package gateway emulates API Gateway's REST API in front of the platform's
// Lambda handlers, so that `bulkhead dev` serves the same code in one process.
package gateway
