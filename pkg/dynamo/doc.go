// Package dynamo stores tenants, keys, agents, conversation heads, counters and
// usage records in one DynamoDB table, every tenant-owned item under its
// tenant's partition, with conditional writes doing the counting.
package dynamo
