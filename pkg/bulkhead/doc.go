// Package bulkhead holds the platform's domain: tenants, tiers, quotas, agents,
// conversations, usage, money and the one error type, with no AWS imports.
package bulkhead
