package embedded

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/truora/minidyn/server"
)

// This file answers the table operations that the AWS CLI, GUI tools (NoSQL
// Workbench, dynamodb-admin) and the SDK's waiters use and that minidyn lacks or
// answers incompletely: ListTables (absent), DescribeTable (minidyn answers an
// empty TableStatus and no attribute definitions, so the SDK's TableExists waiter
// never succeeds), DescribeTimeToLive (answered from the catalog) and
// UpdateTimeToLive (checked here, then served by minidyn and logged). It also
// answers any other operation minidyn does not know in DynamoDB's JSON error
// shape: minidyn answers those in plain text, which the SDK cannot decode.

// minidynOps are the operations minidyn serves.
var minidynOps = map[string]bool{
	"CreateTable": true, "UpdateTable": true, "DeleteTable": true,
	"PutItem": true, "DeleteItem": true, "UpdateItem": true, "GetItem": true, "Query": true, "Scan": true,
	"BatchWriteItem": true, "BatchGetItem": true, "TransactWriteItems": true, "TransactGetItems": true,
}

// localARNPrefix is the ARN prefix of the tables, the one DynamoDB Local uses, so
// that tools that show or parse ARNs find a well-formed one.
const localARNPrefix = "arn:aws:dynamodb:ddblocal:000000000000:table/"

// maxListTablesLimit is ListTables' largest (and default) page size in DynamoDB.
const maxListTablesLimit = 100

// catalog is what the table operations of this file answer from: what the
// CreateTable and UpdateTable requests declared that minidyn does not keep, and
// each table's TTL setting.
type catalog struct {
	tables map[string]*tableInfo // guarded by DynamoDB.mu; written under its write lock

	// ttlMu guards ttl alone, so that TTLAttribute may be called whether or not
	// the caller holds DynamoDB.mu.
	ttlMu sync.Mutex
	ttl   map[string]string // table → TTL attribute, for tables whose TTL is enabled
}

// tableInfo is a table's declared metadata.
type tableInfo struct {
	created time.Time
	attrs   []attributeDefinition // in declaration order, later declarations replacing earlier ones
	billing string                // "PROVISIONED" or "PAY_PER_REQUEST"
}

type attributeDefinition struct {
	AttributeName string
	AttributeType string
}

// tableDDL is the part of a CreateTable or UpdateTable request kept here.
type tableDDL struct {
	AttributeDefinitions []attributeDefinition
	BillingMode          string
}

// record updates the catalog after a successful table operation. The caller holds
// DynamoDB.mu for writing, or is the only goroutine (a restore).
func (c *catalog) record(op, table string, body []byte) {
	var in tableDDL
	_ = json.Unmarshal(body, &in) // minidyn accepted the body; a field it lacks stays empty
	switch op {
	case "CreateTable":
		if c.tables == nil {
			c.tables = map[string]*tableInfo{}
		}
		billing := in.BillingMode
		if billing == "" {
			billing = string(ddbtypes.BillingModeProvisioned)
		}
		c.tables[table] = &tableInfo{created: time.Now(), attrs: in.AttributeDefinitions, billing: billing}
	case "UpdateTable":
		t := c.tables[table]
		if t == nil {
			return
		}
		for _, a := range in.AttributeDefinitions {
			i := slices.IndexFunc(t.attrs, func(b attributeDefinition) bool { return b.AttributeName == a.AttributeName })
			if i >= 0 {
				t.attrs[i] = a
			} else {
				t.attrs = append(t.attrs, a)
			}
		}
		if in.BillingMode != "" {
			t.billing = in.BillingMode
		}
	case "UpdateTimeToLive":
		c.recordTTL(table, body)
	case "DeleteTable":
		delete(c.tables, table)
		c.ttlMu.Lock()
		delete(c.ttl, table)
		c.ttlMu.Unlock()
	}
}

// TTLAttribute returns the TTL attribute of table and true when its TTL is
// enabled (by UpdateTimeToLive), or "" and false. It may be called from any
// goroutine, with or without a request in flight.
func (d *DynamoDB) TTLAttribute(table string) (string, bool) {
	d.catalog.ttlMu.Lock()
	defer d.catalog.ttlMu.Unlock()
	attr, ok := d.catalog.ttl[table]
	return attr, ok
}

// serveTableOp answers the operations of this file and the operations minidyn
// does not know, and reports whether it did; the others are left to the caller.
// The caller holds d.mu (for writing if op is in exclusiveOps).
func (d *DynamoDB) serveTableOp(w http.ResponseWriter, r *http.Request, op string) bool {
	if r.Method != http.MethodPost || !strings.HasPrefix(r.Header.Get("X-Amz-Target"), targetPrefix) {
		writeDynamoError(w, http.StatusBadRequest, errorTypePrefix+"UnknownOperationException",
			"not a request of the DynamoDB JSON protocol (POST with X-Amz-Target: "+targetPrefix+"<operation>)")
		return true
	}
	switch op {
	case "ListTables":
		d.serveListTables(w, r)
	case "DescribeTable":
		d.serveDescribeTable(w, r)
	case "DescribeTimeToLive":
		d.serveDescribeTTL(w, r)
	case "UpdateTimeToLive":
		d.serveUpdateTTL(w, r)
	default:
		if minidynOps[op] {
			return false
		}
		writeDynamoError(w, http.StatusBadRequest, errorTypePrefix+"UnknownOperationException",
			"the embedded DynamoDB server does not support "+op)
	}
	return true
}

// decodeRequest reads a table operation's body into in, answering a
// ValidationException (and false) when it is not JSON.
func decodeRequest(w http.ResponseWriter, r *http.Request, in any) bool {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxDDLBody))
	if err == nil {
		err = json.Unmarshal(body, in)
	}
	if err != nil {
		writeDynamoError(w, http.StatusBadRequest, errorTypePrefix+"SerializationException", "read request body: "+err.Error())
		return false
	}
	return true
}

// writeDynamoJSON writes a successful answer of the DynamoDB JSON protocol.
func writeDynamoJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	_ = json.NewEncoder(w).Encode(v)
}

func writeTableNotFound(w http.ResponseWriter, table string) {
	writeDynamoError(w, http.StatusBadRequest, errorTypePrefix+"ResourceNotFoundException",
		"Requested resource not found: Table: "+table+" not found")
}

// serveListTables answers ListTables: table names in ascending order, a page of at
// most Limit after ExclusiveStartTableName, and LastEvaluatedTableName when more
// follow.
func (d *DynamoDB) serveListTables(w http.ResponseWriter, r *http.Request) {
	var in struct {
		ExclusiveStartTableName string
		Limit                   *int
	}
	if !decodeRequest(w, r, &in) {
		return
	}
	limit := maxListTablesLimit
	if in.Limit != nil {
		if *in.Limit < 1 || *in.Limit > maxListTablesLimit {
			writeValidation(w, "1 validation error detected: Value at 'limit' failed to satisfy constraint: Member must have value less than or equal to 100 and greater than or equal to 1")
			return
		}
		limit = *in.Limit
	}
	names := make([]string, 0, len(d.catalog.tables))
	for name := range d.catalog.tables {
		if name > in.ExclusiveStartTableName {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	out := struct {
		TableNames             []string
		LastEvaluatedTableName string `json:",omitempty"`
	}{TableNames: names}
	if len(names) > limit {
		out.TableNames = names[:limit]
		out.LastEvaluatedTableName = names[limit-1]
	}
	writeDynamoJSON(w, out)
}

// The wire shapes of DescribeTable's answer.
type (
	wireKeyElement struct {
		AttributeName string
		KeyType       string
	}
	wireProjection struct {
		ProjectionType   string   `json:",omitempty"`
		NonKeyAttributes []string `json:",omitempty"`
	}
	wireThroughput struct {
		NumberOfDecreasesToday int64
		ReadCapacityUnits      int64
		WriteCapacityUnits     int64
	}
	wireIndex struct {
		IndexName             string
		IndexArn              string
		IndexStatus           string `json:",omitempty"` // global indexes only
		KeySchema             []wireKeyElement
		Projection            wireProjection
		ItemCount             int64
		IndexSizeBytes        int64
		ProvisionedThroughput *wireThroughput `json:",omitempty"` // global indexes only
	}
	wireTable struct {
		TableName                 string
		TableArn                  string
		TableId                   string
		TableStatus               string
		CreationDateTime          float64
		AttributeDefinitions      []attributeDefinition
		KeySchema                 []wireKeyElement
		ItemCount                 int64
		TableSizeBytes            int64
		BillingModeSummary        map[string]any
		ProvisionedThroughput     wireThroughput
		GlobalSecondaryIndexes    []wireIndex `json:",omitempty"`
		LocalSecondaryIndexes     []wireIndex `json:",omitempty"`
		DeletionProtectionEnabled bool
	}
)

// serveDescribeTable answers DescribeTable from minidyn's description (keys,
// indexes, item counts) and the catalog (attribute definitions, billing mode,
// creation time), with the status a table has once DynamoDB created it: ACTIVE,
// since minidyn creates tables at once. TableSizeBytes is 0: DynamoDB itself
// updates it only every six hours, and measuring it here would cost a scan.
func (d *DynamoDB) serveDescribeTable(w http.ResponseWriter, r *http.Request) {
	var in struct{ TableName string }
	if !decodeRequest(w, r, &in) {
		return
	}
	if in.TableName == "" {
		writeValidation(w, "1 validation error detected: Value null at 'tableName' failed to satisfy constraint: Member must not be null")
		return
	}
	desc, err := d.client.DescribeTable(context.Background(), &server.DescribeTableInput{TableName: &in.TableName})
	var notFound *ddbtypes.ResourceNotFoundException
	if errors.As(err, &notFound) {
		writeTableNotFound(w, in.TableName)
		return
	}
	var td *ddbtypes.TableDescription
	if err == nil {
		td, _ = desc.Table.(*ddbtypes.TableDescription)
	}
	if td == nil {
		writeDynamoError(w, http.StatusInternalServerError, errorTypePrefix+"InternalServerError", "describe table: "+errString(err))
		return
	}
	info := d.catalog.tables[in.TableName]
	if info == nil {
		// Created behind the catalog's back (through Server); describe what is known.
		info = &tableInfo{billing: string(ddbtypes.BillingModeProvisioned)}
	}
	arn := localARNPrefix + in.TableName
	t := wireTable{
		TableName:            in.TableName,
		TableArn:             arn,
		TableId:              tableID(in.TableName),
		TableStatus:          string(ddbtypes.TableStatusActive),
		CreationDateTime:     float64(info.created.UnixMilli()) / 1000,
		AttributeDefinitions: info.attrs,
		KeySchema:            wireKeys(td.KeySchema),
		ItemCount:            deref(td.ItemCount),
		BillingModeSummary:   map[string]any{"BillingMode": info.billing},
	}
	if t.AttributeDefinitions == nil {
		t.AttributeDefinitions = []attributeDefinition{}
	}
	for _, g := range td.GlobalSecondaryIndexes {
		status := string(g.IndexStatus)
		if status == "" {
			status = string(ddbtypes.IndexStatusActive)
		}
		t.GlobalSecondaryIndexes = append(t.GlobalSecondaryIndexes, wireIndex{
			IndexName: deref(g.IndexName), IndexArn: arn + "/index/" + deref(g.IndexName), IndexStatus: status,
			KeySchema: wireKeys(g.KeySchema), Projection: wireProj(g.Projection), ItemCount: deref(g.ItemCount),
			ProvisionedThroughput: &wireThroughput{},
		})
	}
	for _, l := range td.LocalSecondaryIndexes {
		t.LocalSecondaryIndexes = append(t.LocalSecondaryIndexes, wireIndex{
			IndexName: deref(l.IndexName), IndexArn: arn + "/index/" + deref(l.IndexName),
			KeySchema: wireKeys(l.KeySchema), Projection: wireProj(l.Projection), ItemCount: deref(l.ItemCount),
		})
	}
	// minidyn keeps indexes in a map: answer them in a stable order.
	byName := func(a, b wireIndex) int { return strings.Compare(a.IndexName, b.IndexName) }
	slices.SortFunc(t.GlobalSecondaryIndexes, byName)
	slices.SortFunc(t.LocalSecondaryIndexes, byName)
	writeDynamoJSON(w, map[string]any{"Table": t})
}

func wireKeys(ks []ddbtypes.KeySchemaElement) []wireKeyElement {
	out := make([]wireKeyElement, 0, len(ks))
	for _, k := range ks {
		out = append(out, wireKeyElement{AttributeName: deref(k.AttributeName), KeyType: string(k.KeyType)})
	}
	return out
}

func wireProj(p *ddbtypes.Projection) wireProjection {
	if p == nil {
		return wireProjection{ProjectionType: string(ddbtypes.ProjectionTypeAll)}
	}
	return wireProjection{ProjectionType: string(p.ProjectionType), NonKeyAttributes: p.NonKeyAttributes}
}

// tableID is a stable UUID-shaped id derived from the table's name (DynamoDB's is
// random; tools only display it).
func tableID(name string) string {
	h := sha256.Sum256([]byte(name))
	x := hex.EncodeToString(h[:16])
	return x[:8] + "-" + x[8:12] + "-" + x[12:16] + "-" + x[16:20] + "-" + x[20:]
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

func errString(err error) string {
	if err == nil {
		return "no description"
	}
	return err.Error()
}

// The wire shape of a TTL setting.
type wireTTLSpec struct {
	AttributeName string
	Enabled       *bool
}

// serveDescribeTTL answers DescribeTimeToLive. A TTL is ENABLED as soon as
// UpdateTimeToLive enabled it (DynamoDB answers ENABLING for up to an hour).
func (d *DynamoDB) serveDescribeTTL(w http.ResponseWriter, r *http.Request) {
	var in struct{ TableName string }
	if !decodeRequest(w, r, &in) {
		return
	}
	if d.catalog.tables[in.TableName] == nil {
		writeTableNotFound(w, in.TableName)
		return
	}
	desc := map[string]string{"TimeToLiveStatus": string(ddbtypes.TimeToLiveStatusDisabled)}
	if attr, ok := d.TTLAttribute(in.TableName); ok {
		desc = map[string]string{"TimeToLiveStatus": string(ddbtypes.TimeToLiveStatusEnabled), "AttributeName": attr}
	}
	writeDynamoJSON(w, map[string]any{"TimeToLiveDescription": desc})
}

// serveUpdateTTL checks UpdateTimeToLive, refusing what DynamoDB refuses: enabling
// a TTL that is enabled, disabling one that is not, or naming another attribute
// than the enabled one. An accepted change goes to apply, like any other table
// operation, so that the write-ahead log and the snapshot's table log keep it and
// a restart restores it; the catalog follows it in recordDDL. The caller holds
// d.mu for writing.
func (d *DynamoDB) serveUpdateTTL(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxDDLBody))
	var in struct {
		TableName               string
		TimeToLiveSpecification *wireTTLSpec
	}
	if err == nil {
		err = json.Unmarshal(body, &in)
	}
	if err != nil {
		writeDynamoError(w, http.StatusBadRequest, errorTypePrefix+"SerializationException", "read request body: "+err.Error())
		return
	}
	spec := in.TimeToLiveSpecification
	if spec == nil || spec.Enabled == nil || spec.AttributeName == "" {
		writeValidation(w, "1 validation error detected: TimeToLiveSpecification needs an AttributeName and Enabled")
		return
	}
	if d.catalog.tables[in.TableName] == nil {
		writeTableNotFound(w, in.TableName)
		return
	}
	cur, enabled := d.TTLAttribute(in.TableName)
	switch {
	case enabled && cur != spec.AttributeName:
		writeValidation(w, "TimeToLive is active on a different AttributeName: current AttributeName is "+cur)
	case enabled && *spec.Enabled:
		writeValidation(w, "TimeToLive is already enabled")
	case !enabled && !*spec.Enabled:
		writeValidation(w, "TimeToLive is already disabled")
	default:
		r.Body = io.NopCloser(bytes.NewReader(body))
		d.apply(w, r, "UpdateTimeToLive")
	}
}

// recordTTL updates the TTL setting after a successful UpdateTimeToLive.
func (c *catalog) recordTTL(table string, body []byte) {
	var in struct{ TimeToLiveSpecification *wireTTLSpec }
	if json.Unmarshal(body, &in) != nil || in.TimeToLiveSpecification == nil {
		return // minidyn accepted the body, so this cannot happen
	}
	spec := in.TimeToLiveSpecification
	c.ttlMu.Lock()
	defer c.ttlMu.Unlock()
	if spec.Enabled != nil && *spec.Enabled {
		if c.ttl == nil {
			c.ttl = map[string]string{}
		}
		c.ttl[table] = spec.AttributeName
	} else {
		delete(c.ttl, table)
	}
}
