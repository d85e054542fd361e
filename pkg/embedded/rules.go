package embedded

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/truora/minidyn/server"
)

// DynamoDB's limits, as its documentation states them ("Constraints in Amazon
// DynamoDB", "Amazon DynamoDB Transactions: How it works", the ClientRequestToken
// field of TransactWriteItems).
const (
	maxItemSize         = 400 * 1024 // bytes, sized as itemSize does
	maxTransactActions  = 100
	maxTransactSize     = 4 << 20 // bytes, the aggregate of a transaction's items
	clientTokenLifetime = 10 * time.Minute

	// maxRequestBody bounds what is buffered of one checked request; DynamoDB's
	// own limit is 16 MB (BatchWriteItem), so nothing valid is refused.
	maxRequestBody = 32 << 20
)

// errorTypePrefix is the namespace DynamoDB puts before its error types; the SDK
// strips it and reports the bare code ("ValidationException").
const errorTypePrefix = "com.amazonaws.dynamodb.v20120810#"

// DynamoDB's answers. Sources: the PutItem and UpdateItem messages are the ones
// DynamoDB returns (and moto and dynoxide reproduce); the transaction messages are
// those of dynoxide's conformance captures (nubo-db/dynoxide,
// src/actions/transact_write_items.rs); the IdempotentParameterMismatchException
// message is the exception's documented description.
const (
	msgItemTooLarge      = "Item size has exceeded the maximum allowed size"
	msgUpdateTooLarge    = "Item size to update has exceeded the maximum allowed size"
	msgTransactTooLarge  = "Collection size of items exceeded, which can also be caused by the aggregate size of the items in the transaction exceeding the 4MB limit"
	msgTransactTooMany   = "Member must have length less than or equal to 100"
	msgIdempotentReuse   = "DynamoDB rejected the request because you retried a request with a different payload but with an idempotent token that was already used."
	msgInternalError     = "Internal server error"
	msgRequestBodyTooBig = "Request body is too large"
)

// checkedOps are the operations serveChecked looks into; the others go straight
// to minidyn.
var checkedOps = map[string]bool{
	"PutItem": true, "UpdateItem": true, "BatchWriteItem": true, "TransactWriteItems": true, "Query": true,
}

// rules holds DynamoDB's rules that minidyn does not enforce: item size,
// transaction limits, ClientRequestToken, and Query start keys; and the injected
// loss of responses (LoseResponses).
//
// Update sizes are measured, not estimated: the update is first run, with its
// condition, on a scratch copy of the current item (in a second, private minidyn
// holding one item at a time), and the resulting item is measured. The copy is
// read without holding back other writes, because minidyn serves every request
// under one lock and making updates wait for each other across that read slows
// concurrent tests several times over; so a write to the same item that lands
// between the copy and the update makes the check use that item's previous
// state (a counter's digit or so for the platform's concurrent updates).
type rules struct {
	now func() time.Time

	scratchMu     sync.Mutex
	scratch       *server.Client          // guarded by scratchMu
	scratchTables map[string]*tableSchema // guarded by scratchMu; the schema each scratch table was made for

	tokMu      sync.Mutex
	tokens     map[string]*tokenEntry   // guarded by tokMu
	tokenOrder []tokenRef               // guarded by tokMu; in the order the entries were made
	inFlight   map[string]chan struct{} // guarded by tokMu; tokens whose first call runs, closed when it ends

	lossMu sync.Mutex
	losses []lossRule // guarded by lossMu
}

// tokenEntry is a successful TransactWriteItems remembered under its
// ClientRequestToken.
type tokenEntry struct {
	params   [sha256.Size]byte // the request's parameters other than the token
	response []byte            // the body of its successful answer
	expires  time.Time
}

type tokenRef struct {
	token string
	entry *tokenEntry
}

// lossRule drops the next n successful responses to op (only those of requests
// carrying a ClientRequestToken when tokenOnly).
type lossRule struct {
	op        string
	tokenOnly bool
	n         int
}

func (r *rules) init(now func() time.Time) {
	if now == nil {
		now = time.Now
	}
	r.now = now
	r.scratch = server.NewClient()
	r.scratchTables = map[string]*tableSchema{}
	r.tokens = map[string]*tokenEntry{}
	r.inFlight = map[string]chan struct{}{}
}

// LoseResponses makes the next n successful responses to op (such as
// "TransactWriteItems" or "PutItem") be lost: the request is applied (a
// transaction commits, and its ClientRequestToken is remembered), and then the
// server answers HTTP 500 InternalServerError instead of the response, as a
// connection dropped after the commit would look to a client. The SDK retries
// such an answer, so a test can check that the retry of a committed write is
// harmless. A replayed TransactWriteItems (same ClientRequestToken) counts as a
// successful response too. n replaces what was left of an earlier call for op;
// 0 cancels it. Safe to call while requests are served.
func (d *DynamoDB) LoseResponses(op string, n int) {
	d.setLoss(lossRule{op: op, n: n})
}

// LoseTokenResponses is LoseResponses for the TransactWriteItems requests that
// carry a ClientRequestToken only. The aws-sdk-go-v2 client fills in a token for
// every TransactWriteItems unless its IdempotencyTokenProvider is nil, so this
// differs from LoseResponses only for clients that send none.
func (d *DynamoDB) LoseTokenResponses(n int) {
	d.setLoss(lossRule{op: "TransactWriteItems", tokenOnly: true, n: n})
}

func (d *DynamoDB) setLoss(rule lossRule) {
	d.lossMu.Lock()
	defer d.lossMu.Unlock()
	for i := range d.losses {
		if d.losses[i].op == rule.op && d.losses[i].tokenOnly == rule.tokenOnly {
			d.losses[i].n = rule.n
			return
		}
	}
	d.losses = append(d.losses, rule)
}

// lossArmed reports whether a response to op may be lost, so that it must be
// buffered.
func (d *DynamoDB) lossArmed(op string) bool {
	d.lossMu.Lock()
	defer d.lossMu.Unlock()
	for _, l := range d.losses {
		if l.op == op && l.n > 0 {
			return true
		}
	}
	return false
}

// takeLoss consumes one lost response for a successful op, if one is armed.
func (d *DynamoDB) takeLoss(op string, hasToken bool) bool {
	d.lossMu.Lock()
	defer d.lossMu.Unlock()
	for i := range d.losses {
		l := &d.losses[i]
		if l.op == op && l.n > 0 && (!l.tokenOnly || hasToken) {
			l.n--
			return true
		}
	}
	return false
}

// serveChecked serves a request from the network, holding it to DynamoDB's rules
// before minidyn sees it. The caller holds mu as serveHTTP does. The body of a
// checked request is read once, decoded once here (and once by minidyn), and the
// answer is buffered so that it can be replaced by a lost response.
func (d *DynamoDB) serveChecked(w http.ResponseWriter, r *http.Request, op string) {
	if !checkedOps[op] && !d.lossArmed(op) {
		d.apply(w, r, op)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRequestBody))
	if err != nil {
		writeDynamoError(w, http.StatusRequestEntityTooLarge, errorTypePrefix+"ValidationException", msgRequestBodyTooBig)
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	rec := httptest.NewRecorder()
	hasToken := false
	switch op {
	case "PutItem":
		d.servePutItem(rec, r, body)
	case "BatchWriteItem":
		d.serveBatchWrite(rec, r, body)
	case "UpdateItem":
		d.serveUpdateItem(rec, r, body)
	case "TransactWriteItems":
		hasToken = d.serveTransactWrite(rec, r, body)
	case "Query":
		d.serveQuery(rec, r, body)
	default:
		d.apply(rec, r, op)
	}
	if rec.Code == http.StatusOK && d.takeLoss(op, hasToken) {
		writeDynamoError(w, http.StatusInternalServerError, errorTypePrefix+"InternalServerError", msgInternalError)
		return
	}
	writeRecorded(w, rec)
}

// writeRecorded sends an answer recorded from minidyn (or from a rule) to the
// client as it is: headers, status and body.
func writeRecorded(w http.ResponseWriter, rec *httptest.ResponseRecorder) {
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.Code)
	_, _ = w.Write(rec.Body.Bytes())
}

// servePutItem refuses an item over the size limit.
func (d *DynamoDB) servePutItem(w http.ResponseWriter, r *http.Request, body []byte) {
	var in server.PutItemInput
	if json.Unmarshal(body, &in) == nil && ItemSize(in.Item) > maxItemSize {
		writeValidation(w, msgItemTooLarge)
		return
	}
	d.apply(w, r, "PutItem")
}

// serveBatchWrite refuses a batch holding an item over the size limit, as
// DynamoDB refuses the whole batch. A batch of more than 25 requests is left to
// minidyn, which refuses it.
func (d *DynamoDB) serveBatchWrite(w http.ResponseWriter, r *http.Request, body []byte) {
	var in server.BatchWriteItemInput
	if json.Unmarshal(body, &in) == nil {
		for _, reqs := range in.RequestItems {
			for _, req := range reqs {
				if req.PutRequest != nil && ItemSize(req.PutRequest.Item) > maxItemSize {
					writeValidation(w, msgItemTooLarge)
					return
				}
			}
		}
	}
	d.apply(w, r, "BatchWriteItem")
}

// serveUpdateItem refuses an update whose resulting item would pass the size
// limit.
func (d *DynamoDB) serveUpdateItem(w http.ResponseWriter, r *http.Request, body []byte) {
	var in server.UpdateItemInput
	if json.Unmarshal(body, &in) == nil {
		if size, ok := d.sizeAfterUpdate(in); ok && size > maxItemSize {
			writeValidation(w, msgUpdateTooLarge)
			return
		}
	}
	d.apply(w, r, "UpdateItem")
}

// serveQuery refuses a start key outside the key condition, and never answers
// a LastEvaluatedKey outside it.
//
// minidyn walks the whole table from the start key, counts some items outside
// the key condition toward the Limit (with a FilterExpression), and answers the
// key of the last item it walked, in whatever partition or range, as
// LastEvaluatedKey: a cursor that DynamoDB never gives, and refuses when it comes
// back. So while minidyn's cursor lies outside the key condition, the query is
// continued from it here and the pages are joined. A page whose cursor lies
// before the range holds no item of the range, and none follows a page whose
// cursor lies beyond it, so the joined answer holds at most Limit items, and it
// ends with a cursor inside the range or none (the range is exhausted).
func (d *DynamoDB) serveQuery(w *httptest.ResponseRecorder, r *http.Request, body []byte) {
	var in server.QueryInput
	var schema *tableSchema
	if json.Unmarshal(body, &in) == nil && in.TableName != nil {
		schema = d.schemaOf(*in.TableName)
	}
	if msg := startKeyOutside(schema, &in); msg != "" {
		writeValidation(w, msg)
		return
	}
	d.apply(w, r, "Query")
	if schema == nil || w.Code != http.StatusOK || !bytes.Contains(w.Body.Bytes(), []byte(`"LastEvaluatedKey"`)) {
		return
	}
	var out server.QueryOutput
	if json.Unmarshal(w.Body.Bytes(), &out) != nil {
		return
	}
	continued := false
	for len(out.LastEvaluatedKey) > 0 {
		next := in
		next.ExclusiveStartKey = out.LastEvaluatedKey
		if startKeyOutside(schema, &next) == "" {
			break
		}
		continued = true
		page, err := d.client.Query(context.Background(), &next)
		if err != nil || reflect.DeepEqual(page.LastEvaluatedKey, out.LastEvaluatedKey) {
			// Cannot happen (minidyn accepted the same query); end the range
			// rather than loop.
			out.LastEvaluatedKey = nil
			break
		}
		out.Items = append(out.Items, page.Items...)
		out.LastEvaluatedKey = page.LastEvaluatedKey
	}
	if !continued {
		return
	}
	out.Count = int32(len(out.Items))
	w.Body.Reset()
	enc := json.NewEncoder(w.Body)
	enc.SetEscapeHTML(false) // as minidyn encodes its answers
	_ = enc.Encode(out)
}

// serveTransactWrite holds a TransactWriteItems to DynamoDB's limits and to its
// ClientRequestToken semantics, and reports whether the request carried a token.
//
// A token is remembered for clientTokenLifetime after the first request that
// used it completed successfully; within that window the same token with the
// same parameters answers the first call's response without applying anything,
// and with other parameters IdempotentParameterMismatchException. A request that
// failed (TransactionCanceledException or any other error) is not remembered:
// DynamoDB's documentation promises the replay only after a successful call
// ("If the original TransactWriteItems call was successful, then subsequent
// TransactWriteItems calls with the same client token return successfully
// without making any changes"), and a cancelled transaction changed nothing, so
// a later call with its token runs as a new request. A call made while another
// with the same token runs waits for it, and is then answered as above
// (DynamoDB may answer TransactionInProgressException instead).
func (d *DynamoDB) serveTransactWrite(w *httptest.ResponseRecorder, r *http.Request, body []byte) bool {
	var in server.TransactWriteItemsInput
	if json.Unmarshal(body, &in) != nil {
		d.apply(w, r, "TransactWriteItems")
		return false
	}
	token := aws.ToString(in.ClientRequestToken)
	if token == "" {
		d.transactWrite(w, r, in)
		return false
	}
	params := transactParams(in)
	for {
		d.tokMu.Lock()
		if e := d.liveToken(token); e != nil {
			d.tokMu.Unlock()
			if e.params != params {
				writeDynamoError(w, http.StatusBadRequest, errorTypePrefix+"IdempotentParameterMismatchException", msgIdempotentReuse)
				return true
			}
			w.Header().Set("Content-Type", "application/x-amz-json-1.0")
			w.WriteHeader(http.StatusOK)
			_, _ = w.Write(e.response)
			return true
		}
		running, busy := d.inFlight[token]
		if !busy {
			break
		}
		d.tokMu.Unlock()
		<-running
	}
	done := make(chan struct{})
	d.inFlight[token] = done
	d.tokMu.Unlock()

	d.transactWrite(w, r, in)

	d.tokMu.Lock()
	delete(d.inFlight, token)
	if w.Code == http.StatusOK {
		e := &tokenEntry{params: params, response: bytes.Clone(w.Body.Bytes()), expires: d.now().Add(clientTokenLifetime)}
		d.tokens[token] = e
		d.tokenOrder = append(d.tokenOrder, tokenRef{token: token, entry: e})
	}
	d.tokMu.Unlock()
	close(done)
	return true
}

// transactWrite serves a TransactWriteItems after holding it to DynamoDB's
// limits.
func (d *DynamoDB) transactWrite(w http.ResponseWriter, r *http.Request, in server.TransactWriteItemsInput) {
	if msg := transactLimits(in); msg != "" {
		writeValidation(w, msg)
		return
	}
	if reasons := d.transactUpdateSizes(in); reasons != nil {
		writeCanceled(w, reasons)
		return
	}
	d.apply(w, r, "TransactWriteItems")
}

// liveToken returns the unexpired entry of token, after dropping the entries
// that expired, so that the remembered tokens are bounded by what ten minutes of
// traffic can make. The caller holds tokMu.
func (d *DynamoDB) liveToken(token string) *tokenEntry {
	now := d.now()
	for len(d.tokenOrder) > 0 && !d.tokenOrder[0].entry.expires.After(now) {
		ref := d.tokenOrder[0]
		if d.tokens[ref.token] == ref.entry {
			delete(d.tokens, ref.token)
		}
		d.tokenOrder = d.tokenOrder[1:]
	}
	if e := d.tokens[token]; e != nil && e.expires.After(now) {
		return e
	}
	return nil
}

// transactParams is a digest of a transaction's parameters other than its
// token, in a canonical encoding (encoding/json sorts map keys), so that the same
// request sent again, in whatever key order, digests the same.
func transactParams(in server.TransactWriteItemsInput) [sha256.Size]byte {
	in.ClientRequestToken = nil
	b, err := json.Marshal(in)
	if err != nil {
		// Decoded from JSON, so it encodes; if not, no retry can match.
		return sha256.Sum256([]byte(err.Error()))
	}
	return sha256.Sum256(b)
}

// transactLimits returns DynamoDB's message for a transaction that breaks the
// limits visible in the request itself, or "": more than 100 actions, a Put of
// an item over 400 KB, or an aggregate over 4 MB (Put items, plus the key and
// values of the other actions, as dynoxide measured DynamoDB to count them).
func transactLimits(in server.TransactWriteItemsInput) string {
	if n := len(in.TransactItems); n > maxTransactActions {
		dump := make([]string, n)
		for i := range dump {
			dump[i] = fmt.Sprintf("com.amazonaws.dynamodb.v20120810.TransactWriteItem@%x", i)
		}
		return fmt.Sprintf("1 validation error detected: Value '[%s]' at 'transactItems' failed to satisfy constraint: %s",
			strings.Join(dump, ", "), msgTransactTooMany)
	}
	total := 0
	for _, it := range in.TransactItems {
		switch {
		case it.Put != nil:
			size := ItemSize(it.Put.Item)
			if size > maxItemSize {
				return msgItemTooLarge
			}
			total += size
		case it.Update != nil:
			total += ItemSize(it.Update.Key) + valuesSize(it.Update.ExpressionAttributeValues)
		case it.Delete != nil:
			total += ItemSize(it.Delete.Key)
		case it.ConditionCheck != nil:
			total += ItemSize(it.ConditionCheck.Key)
		}
	}
	if total > maxTransactSize {
		return msgTransactTooLarge
	}
	return ""
}

// cancellationReason is one entry of a TransactionCanceledException.
type cancellationReason struct {
	Code    string `json:"Code"`
	Message string `json:"Message,omitempty"`
}

// transactUpdateSizes returns the cancellation reasons of a transaction with an
// Update whose resulting item would pass the size limit (DynamoDB answers
// TransactionCanceledException with a ValidationError for it), or nil. Only the
// sizes are checked here: the other actions' reasons say None even if their
// conditions would fail, which DynamoDB would report in the same answer.
func (d *DynamoDB) transactUpdateSizes(in server.TransactWriteItemsInput) []cancellationReason {
	var reasons []cancellationReason
	for i, it := range in.TransactItems {
		if it.Update == nil {
			continue
		}
		u := it.Update
		size, ok := d.sizeAfterUpdate(server.UpdateItemInput{
			TableName: u.TableName, Key: u.Key, UpdateExpression: u.UpdateExpression,
			ConditionExpression: u.ConditionExpression, ExpressionAttributeNames: u.ExpressionAttributeNames,
			ExpressionAttributeValues: u.ExpressionAttributeValues,
		})
		if !ok || size <= maxItemSize {
			continue
		}
		if reasons == nil {
			reasons = make([]cancellationReason, len(in.TransactItems))
			for j := range reasons {
				reasons[j].Code = "None"
			}
		}
		reasons[i] = cancellationReason{Code: "ValidationError", Message: msgUpdateTooLarge}
	}
	return reasons
}

// sizeAfterUpdate returns the size of the item that the update would leave,
// found by running it on a scratch copy of the current item; ok is false when
// that cannot be known (unknown table, an error from minidyn, such as a failed
// condition or an emulated failure), in which case minidyn answers the real
// request as it does. The caller holds mu, as serveHTTP does.
func (d *DynamoDB) sizeAfterUpdate(in server.UpdateItemInput) (size int, ok bool) {
	ctx := context.Background()
	table := aws.ToString(in.TableName)
	schema := d.schemaOf(table)
	if schema == nil || len(in.Key) == 0 {
		return 0, false
	}
	cur, err := d.client.GetItem(ctx, &server.GetItemInput{TableName: in.TableName, Key: in.Key, ConsistentRead: aws.Bool(true)})
	if err != nil {
		return 0, false
	}
	d.scratchMu.Lock()
	defer d.scratchMu.Unlock()
	if !d.scratchTable(table, schema) {
		return 0, false
	}
	if len(cur.Item) > 0 {
		_, err = d.scratch.PutItem(ctx, &server.PutItemInput{TableName: in.TableName, Item: cur.Item})
	} else {
		_, err = d.scratch.DeleteItem(ctx, &server.DeleteItemInput{TableName: in.TableName, Key: in.Key})
	}
	if err != nil {
		return 0, false
	}
	// Keep the scratch table empty between checks.
	defer func() {
		_, _ = d.scratch.DeleteItem(ctx, &server.DeleteItemInput{TableName: in.TableName, Key: in.Key})
	}()
	in.ReturnValues = ddbtypes.ReturnValueAllNew
	in.ReturnValuesOnConditionCheckFailure = ""
	out, err := d.scratch.UpdateItem(ctx, &in)
	if err != nil {
		return 0, false
	}
	return ItemSize(out.Attributes), true
}

// scratchTable makes sure the scratch server has a table of this name with the
// schema's primary key (made again if the real table was recreated). The caller
// holds scratchMu.
func (d *DynamoDB) scratchTable(table string, schema *tableSchema) bool {
	ctx := context.Background()
	if d.scratchTables[table] == schema {
		return true
	}
	if d.scratchTables[table] != nil {
		_, _ = d.scratch.DeleteTable(ctx, &server.DeleteTableInput{TableName: aws.String(table)})
		delete(d.scratchTables, table)
	}
	in := &server.CreateTableInput{TableName: aws.String(table), BillingMode: ddbtypes.BillingModePayPerRequest}
	for _, k := range []struct {
		name string
		typ  ddbtypes.KeyType
	}{{schema.key.hash, ddbtypes.KeyTypeHash}, {schema.key.rng, ddbtypes.KeyTypeRange}} {
		if k.name == "" {
			continue
		}
		in.KeySchema = append(in.KeySchema, ddbtypes.KeySchemaElement{AttributeName: aws.String(k.name), KeyType: k.typ})
		in.AttributeDefinitions = append(in.AttributeDefinitions, ddbtypes.AttributeDefinition{
			AttributeName: aws.String(k.name), AttributeType: schema.attrTypes[k.name],
		})
	}
	if _, err := d.scratch.CreateTable(ctx, in); err != nil {
		return false
	}
	d.scratchTables[table] = schema
	return true
}

// schemaOf returns the key schema of a table, or nil. The caller holds mu.
func (d *DynamoDB) schemaOf(table string) *tableSchema {
	if i := d.tableIndex(table); i >= 0 {
		return d.tables[i].schema
	}
	return nil
}

// ItemSize is an item's size as DynamoDB documents it ("DynamoDB item sizes and
// formats"): the sum over its attributes of the name's UTF-8 length and the
// value's size. Items are DynamoDB JSON decoded into minidyn's wire type. The
// embedded server holds writes to AWS's limits with it, and the cost model
// (scripts/cost) prices capacity units with it.
func ItemSize(item map[string]*server.AttributeValue) int {
	n := 0
	for name, v := range item {
		n += len(name) + valueSize(v)
	}
	return n
}

// valuesSize is the sum of the sizes of expression attribute values.
func valuesSize(values map[string]*server.AttributeValue) int {
	n := 0
	for _, v := range values {
		n += valueSize(v)
	}
	return n
}

// valueSize is the size of one value: strings their UTF-8 length, binaries their
// raw length, numbers numberSize, null and booleans 1 byte, sets the sum of their
// elements, lists and maps 3 bytes plus 1 byte per element plus the elements
// (and a map's keys).
func valueSize(v *server.AttributeValue) int {
	switch {
	case v == nil:
		return 0
	case v.S != nil:
		return len(*v.S)
	case v.N != nil:
		return numberSize(*v.N)
	case v.B != nil:
		return len(v.B)
	case v.BOOL != nil, v.NULL != nil:
		return 1
	case v.SS != nil:
		n := 0
		for _, s := range v.SS {
			n += len(aws.ToString(s))
		}
		return n
	case v.NS != nil:
		n := 0
		for _, s := range v.NS {
			n += numberSize(aws.ToString(s))
		}
		return n
	case v.BS != nil:
		n := 0
		for _, b := range v.BS {
			n += len(b)
		}
		return n
	case v.L != nil:
		n := 3
		for _, e := range v.L {
			n += 1 + valueSize(e)
		}
		return n
	case v.M != nil:
		n := 3
		for k, e := range v.M {
			n += 1 + len(k) + valueSize(e)
		}
		return n
	}
	return 0
}

// numberSize is DynamoDB's documented size of a number: 1 byte per two
// significant digits (leading and trailing zeros trimmed), plus 1 byte.
func numberSize(s string) int {
	s = strings.TrimLeft(s, "+-")
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		s = s[:i]
	}
	s = strings.Replace(s, ".", "", 1)
	s = strings.Trim(s, "0")
	return (utf8.RuneCountInString(s)+1)/2 + 1
}

// writeValidation answers DynamoDB's ValidationException.
func writeValidation(w http.ResponseWriter, msg string) {
	writeDynamoError(w, http.StatusBadRequest, errorTypePrefix+"ValidationException", msg)
}

// writeCanceled answers DynamoDB's TransactionCanceledException, whose message
// lists the reasons' codes in order.
func writeCanceled(w http.ResponseWriter, reasons []cancellationReason) {
	codes := make([]string, len(reasons))
	for i, r := range reasons {
		codes[i] = r.Code
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	w.WriteHeader(http.StatusBadRequest)
	_ = json.NewEncoder(w).Encode(struct {
		Type                string               `json:"__type"`
		Message             string               `json:"message"`
		CancellationReasons []cancellationReason `json:"CancellationReasons"`
	}{
		Type:                errorTypePrefix + "TransactionCanceledException",
		Message:             "Transaction cancelled, please refer cancellation reasons for specific reasons [" + strings.Join(codes, ", ") + "]",
		CancellationReasons: reasons,
	})
}
