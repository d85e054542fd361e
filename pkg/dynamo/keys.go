package dynamo

import (
	"fmt"
	"strings"
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
	prefixMonth  = "MONTH#"
	prefixHour   = "HOUR#"
	prefixExec   = "EXEC#"
	prefixRun    = "RUN#"
	prefixBucket = "BRK#"
	prefixLookup = "APIKEY#"

	// tenantIndexPK is the one partition that lists tenants, for the operator.
	tenantIndexPK = "TENANTS"
)

func tenantPK(tid string) string        { return prefixTenant + tid }
func tenantIndexSK(tid string) string   { return prefixTenant + tid }
func keySK(kid string) string           { return prefixKey + kid }
func agentSK(aid string) string         { return prefixAgent + aid }
func convSK(cid string) string          { return prefixConv + cid }
func monthSK(month string) string       { return prefixMonth + month }
func hourSK(hour string) string         { return prefixHour + hour }
func execSK(eid string) string          { return prefixExec + eid }
func runSK(eid string) string           { return prefixRun + eid }
func bucketSK(slot int64) string        { return fmt.Sprintf("%s%012d", prefixBucket, slot) }
func apiKeyLookupPK(hash string) string { return prefixLookup + hash }

// idFromSK strips an item-type prefix from a sort key.
func idFromSK(sk, prefix string) string { return strings.TrimPrefix(sk, prefix) }
