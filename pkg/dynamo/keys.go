package dynamo

import (
	"strings"
	"time"
)

// Keys are built here and nowhere else.
const (
	attrPK = "PK"
	attrSK = "SK"

	skProfile = "PROFILE"
	skLive    = "LIVE"
	skAPIKey  = "APIKEY"

	prefixTenant = "TENANT#"
	prefixKey    = "KEY#"
	prefixAgent  = "AGENT#"
	prefixConv   = "CONV#"
	prefixExec   = "EXEC#"
	prefixIdem   = "IDEM#"
	prefixInv    = "INVOICE#"
	prefixLookup = "APIKEY#"
	prefixTool   = "TOOL#"
	prefixToolID = "TOOLID#"
	prefixAudit  = "AUDIT#"

	// platformAuditPK holds the audit entries of changes no tenant owns
	// (the model catalogue).
	platformAuditPK = "PLATFORM"

	// tenantIndexPK is the one partition that lists tenants, for the operator.
	tenantIndexPK = "TENANTS"
)

func tenantPK(tid string) string      { return prefixTenant + tid }
func tenantIndexSK(tid string) string { return prefixTenant + tid }
func keySK(kid string) string         { return prefixKey + kid }
func agentSK(aid string) string       { return prefixAgent + aid }
func convSK(cid string) string        { return prefixConv + cid }

// execSK sorts usage records by the time their execution started, so a
// time range is one key range; the start time is fixed at admission, so
// every settlement attempt of one execution names the same record.
func execSK(started time.Time, eid string) string {
	return prefixExec + recordTime(started) + "#" + eid
}

// recordTime is a fixed-width UTC timestamp that sorts as it reads.
func recordTime(t time.Time) string     { return t.UTC().Format("2006-01-02T15:04:05.000000000Z") }
func idemSK(hash string) string         { return prefixIdem + hash }
func toolSK(name string) string         { return prefixTool + name }
func toolIDSK(id string) string         { return prefixToolID + id }
func invoiceSK(month string) string     { return prefixInv + month }
func apiKeyLookupPK(hash string) string { return prefixLookup + hash }

// auditPK is the partition of tenant tid's audit entries (the platform's
// own when tid is empty).
func auditPK(tid string) string {
	if tid == "" {
		return platformAuditPK
	}
	return tenantPK(tid)
}

// auditSK sorts a partition's audit entries by time.
func auditSK(at time.Time, id string) string { return prefixAudit + recordTime(at) + "#" + id }

// auditDay is the index partition of the entries of at's UTC day.
func auditDay(at time.Time) string { return prefixAudit + at.UTC().Format("2006-01-02") }

// auditSort orders the index's entries by time, then tenant and id.
func auditSort(recTime, tid, id string) string { return recTime + "#" + tid + "#" + id }

// idFromSK strips an item-type prefix from a sort key.
func idFromSK(sk, prefix string) string { return strings.TrimPrefix(sk, prefix) }

// prefixAgentConv indexes conversations by agent: one small item per
// conversation, written and deleted with its head, so that listing one
// agent's conversations reads only that agent's.
const prefixAgentConv = "ACONV#"

// agentConvPrefix is the key range of one agent's conversation index items;
// the trailing separator keeps one agent's range from covering another's.
func agentConvPrefix(aid string) string { return prefixAgentConv + aid + "#" }

func agentConvSK(aid, cid string) string { return agentConvPrefix(aid) + cid }
