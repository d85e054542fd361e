package dynamo

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"

	"github.com/bulkhead-dev/bulkhead/pkg/bulkhead"
)

// Client is the part of the DynamoDB API the store uses, with the SDK's signatures.
type Client interface {
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
	Query(ctx context.Context, in *dynamodb.QueryInput, optFns ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
	TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, optFns ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error)
	TransactGetItems(ctx context.Context, in *dynamodb.TransactGetItemsInput, optFns ...func(*dynamodb.Options)) (*dynamodb.TransactGetItemsOutput, error)
	BatchGetItem(ctx context.Context, in *dynamodb.BatchGetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error)
	BatchWriteItem(ctx context.Context, in *dynamodb.BatchWriteItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error)
}

// TableCreator is what CreateTable needs.
type TableCreator interface {
	CreateTable(ctx context.Context, in *dynamodb.CreateTableInput, optFns ...func(*dynamodb.Options)) (*dynamodb.CreateTableOutput, error)
}

var _ Client = (*dynamodb.Client)(nil)

// CreateTable creates the platform's table (PK, SK strings; on-demand) with
// its sparse audit index. An existing table is not an error; when the
// creator can also describe and update tables, an existing table that
// predates the audit index gets it. In AWS the table comes from the CDK app.
func CreateTable(ctx context.Context, c TableCreator, table string) error {
	_, err := c.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName: aws.String(table),
		AttributeDefinitions: []types.AttributeDefinition{
			{AttributeName: aws.String(attrPK), AttributeType: types.ScalarAttributeTypeS},
			{AttributeName: aws.String(attrSK), AttributeType: types.ScalarAttributeTypeS},
			{AttributeName: aws.String(AttrAuditDay), AttributeType: types.ScalarAttributeTypeS},
			{AttributeName: aws.String(AttrAuditSort), AttributeType: types.ScalarAttributeTypeS},
		},
		KeySchema: []types.KeySchemaElement{
			{AttributeName: aws.String(attrPK), KeyType: types.KeyTypeHash},
			{AttributeName: aws.String(attrSK), KeyType: types.KeyTypeRange},
		},
		GlobalSecondaryIndexes: []types.GlobalSecondaryIndex{auditIndexSpec()},
		BillingMode:            types.BillingModePayPerRequest,
	})
	var inUse *types.ResourceInUseException
	if err != nil && !errors.As(err, &inUse) {
		return fmt.Errorf("create table %s: %w", table, err)
	}
	if err != nil {
		if u, ok := c.(tableUpdater); ok {
			return ensureAuditIndex(ctx, u, table)
		}
	}
	return nil
}

func auditIndexSpec() types.GlobalSecondaryIndex {
	return types.GlobalSecondaryIndex{
		IndexName: aws.String(AuditIndex),
		KeySchema: []types.KeySchemaElement{
			{AttributeName: aws.String(AttrAuditDay), KeyType: types.KeyTypeHash},
			{AttributeName: aws.String(AttrAuditSort), KeyType: types.KeyTypeRange},
		},
		Projection: &types.Projection{ProjectionType: types.ProjectionTypeAll},
	}
}

// tableUpdater is what adding an index to an existing table needs.
type tableUpdater interface {
	DescribeTable(ctx context.Context, in *dynamodb.DescribeTableInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error)
	UpdateTable(ctx context.Context, in *dynamodb.UpdateTableInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateTableOutput, error)
}

// ensureAuditIndex adds the audit index to a table made before it existed.
func ensureAuditIndex(ctx context.Context, c tableUpdater, table string) error {
	d, err := c.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table)})
	if err != nil {
		return fmt.Errorf("describe table %s: %w", table, err)
	}
	if d.Table != nil {
		for _, g := range d.Table.GlobalSecondaryIndexes {
			if aws.ToString(g.IndexName) == AuditIndex {
				return nil
			}
		}
	}
	spec := auditIndexSpec()
	_, err = c.UpdateTable(ctx, &dynamodb.UpdateTableInput{
		TableName: aws.String(table),
		AttributeDefinitions: []types.AttributeDefinition{
			{AttributeName: aws.String(AttrAuditDay), AttributeType: types.ScalarAttributeTypeS},
			{AttributeName: aws.String(AttrAuditSort), AttributeType: types.ScalarAttributeTypeS},
		},
		GlobalSecondaryIndexUpdates: []types.GlobalSecondaryIndexUpdate{{Create: &types.CreateGlobalSecondaryIndexAction{
			IndexName: spec.IndexName, KeySchema: spec.KeySchema, Projection: spec.Projection,
		}}},
	})
	if err != nil {
		return fmt.Errorf("add index %s to table %s: %w", AuditIndex, table, err)
	}
	return nil
}

// Store is the platform's DynamoDB store. Tenant data is reached only through
// a TenantStore, which is bound to one tenant's partition.
type Store struct {
	db    Client
	table string
	now   func() time.Time
	creds TenantCredentials
	// retention is how long audit entries are kept (DefaultAuditRetention when 0).
	retention time.Duration
	// refusals are the quota refusals this process has recorded, shared by
	// every copy of the store.
	refusals *refusalSet
}

// New returns a store over the table. now is the clock (time.Now when nil).
func New(db Client, table string, now func() time.Time) *Store {
	if now == nil {
		now = time.Now
	}
	return &Store{db: db, table: table, now: now, refusals: &refusalSet{}}
}

// TenantStore is the store bound to one tenant: no method takes a tenant id,
// so no call can read another tenant's partition.
type TenantStore struct {
	s   *Store
	tid string
	pk  string
}

// Tenant returns the store bound to tenant tid.
func (s *Store) Tenant(tid string) *TenantStore {
	return &TenantStore{s: s.scoped(tid), tid: tid, pk: tenantPK(tid)}
}

// TenantID is the tenant this store is bound to.
func (t *TenantStore) TenantID() string { return t.tid }

func key(pk, sk string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		attrPK: &types.AttributeValueMemberS{Value: pk},
		attrSK: &types.AttributeValueMemberS{Value: sk},
	}
}

func str(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }
func num(v int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: fmt.Sprint(v)}
}
func ts(t time.Time) types.AttributeValue { return str(t.UTC().Format(time.RFC3339Nano)) }

// translate turns an SDK error into a domain error at the boundary: failed
// conditions become the given code, anything else means DynamoDB could not
// be used, which is Unavailable (callers fail closed).
func translate(op string, err error, condCode bulkhead.Code, condMsg string) error {
	if err == nil {
		return nil
	}
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return &bulkhead.Error{Code: condCode, Op: op, Message: condMsg, Err: err}
	}
	var tce *types.TransactionCanceledException
	if errors.As(err, &tce) {
		for _, r := range tce.CancellationReasons {
			if aws.ToString(r.Code) == "ConditionalCheckFailed" {
				return &bulkhead.Error{Code: condCode, Op: op, Message: condMsg, Err: err}
			}
		}
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return &bulkhead.Error{Code: bulkhead.Unavailable, Op: op, Message: "request cancelled", Err: err}
	}
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) && apiErr.ErrorCode() == "ValidationException" {
		return &bulkhead.Error{Code: bulkhead.Internal, Op: op, Message: "internal error", Err: err}
	}
	return &bulkhead.Error{Code: bulkhead.Unavailable, Op: op, Message: "storage unavailable", Err: err}
}

// cancelReasons returns the per-item cancellation codes of a cancelled transaction.
func cancelReasons(err error) []string {
	var tce *types.TransactionCanceledException
	if !errors.As(err, &tce) {
		return nil
	}
	out := make([]string, len(tce.CancellationReasons))
	for i, r := range tce.CancellationReasons {
		out[i] = aws.ToString(r.Code)
	}
	return out
}

// cancelItems returns the old items a cancelled transaction reported
// (ReturnValuesOnConditionCheckFailure), by item index; nil where none.
func cancelItems(err error) []map[string]types.AttributeValue {
	var tce *types.TransactionCanceledException
	if !errors.As(err, &tce) {
		return nil
	}
	out := make([]map[string]types.AttributeValue, len(tce.CancellationReasons))
	for i, r := range tce.CancellationReasons {
		out[i] = r.Item
	}
	return out
}

// cursorTagLen is how many bytes of its query's scope hash a cursor carries.
const cursorTagLen = 6

// maxSortKeyBytes is DynamoDB's limit on a sort key value.
const maxSortKeyBytes = 1024

// cursorScope identifies the query a cursor continues: the partition, the
// item type, the key range and the filter. A cursor carries the first bytes
// of its hash, so one from another list, range or filter is refused instead
// of being read as a position in this one.
func cursorScope(pk, prefix string, f *filterExpr) []byte {
	h := sha256.New()
	w := func(s string) { h.Write([]byte(s)); h.Write([]byte{0}) }
	w(pk)
	w(prefix)
	if f != nil {
		if f.between != nil {
			w(f.between[0])
			w(f.between[1])
		}
		w(f.expr)
		for _, k := range slices.Sorted(maps.Keys(f.values)) {
			w(k)
			switch v := f.values[k].(type) {
			case *types.AttributeValueMemberS:
				w("S" + v.Value)
			case *types.AttributeValueMemberN:
				w("N" + v.Value)
			default:
				w(fmt.Sprintf("%T%v", v, v))
			}
		}
	}
	return h.Sum(nil)[:cursorTagLen]
}

// encodeCursor makes an opaque cursor from the sort key where a page ended,
// tagged with the query's scope. Only the sort key is carried: the
// partition is always the caller's own, so a forged cursor cannot reach
// another tenant.
func encodeCursor(scope []byte, last map[string]types.AttributeValue) string {
	if len(last) == 0 {
		return ""
	}
	sk, _ := last[attrSK].(*types.AttributeValueMemberS)
	if sk == nil {
		return ""
	}
	return base64.RawURLEncoding.EncodeToString(append(slices.Clip(scope), sk.Value...))
}

// decodeCursor checks a cursor against the query it is to continue (its
// scope, the item type being listed and, when bounded, the key range) and
// returns the start key. DynamoDB refuses a start key outside the key
// condition with a ValidationException; a cursor from another list, another
// range or nowhere is refused here instead, as the client's error.
func decodeCursor(scope []byte, pk, cursor, prefix string, between *[2]string) (map[string]types.AttributeValue, error) {
	if cursor == "" {
		return nil, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(cursor)
	if err != nil || len(b) < cursorTagLen || !bytes.Equal(b[:cursorTagLen], scope) {
		return nil, bulkhead.Errorf(bulkhead.Invalid, "invalid cursor")
	}
	sk := string(b[cursorTagLen:])
	if len(sk) > maxSortKeyBytes || !utf8.ValidString(sk) || !strings.HasPrefix(sk, prefix) ||
		between != nil && (sk < between[0] || sk > between[1]) {
		return nil, bulkhead.Errorf(bulkhead.Invalid, "invalid cursor")
	}
	return key(pk, sk), nil
}

func pageLimit(limit int) int32 {
	if limit <= 0 {
		return bulkhead.DefaultPageSize
	}
	if limit > bulkhead.MaxPageSize {
		return bulkhead.MaxPageSize
	}
	return int32(limit)
}

// pageItemAllowance is added to each item's measured size for what a view
// adds to the attributes it renders (computed fields, effective values,
// nulls), so that a page's measured size bounds its rendered size.
const pageItemAllowance = 1024

// queryPage reads one page of items whose sort key starts with prefix (and,
// when filter.between is set, lies within it). A page holds at most limit
// items and stops before its items, measured as JSON (itemJSONSize), would
// pass bulkhead.MaxPageBytes; it always holds at least one. The cursor
// continues exactly after the last item returned.
func (s *Store) queryPage(ctx context.Context, op, pk, prefix, cursor string, limit int, filter *filterExpr) ([]map[string]types.AttributeValue, string, error) {
	var between *[2]string
	if filter != nil {
		between = filter.between
	}
	scope := cursorScope(pk, prefix, filter)
	start, err := decodeCursor(scope, pk, cursor, prefix, between)
	if err != nil {
		return nil, "", err
	}
	want := int(pageLimit(limit))
	names := map[string]string{"#pk": attrPK, "#sk": attrSK}
	values := map[string]types.AttributeValue{":pk": str(pk), ":prefix": str(prefix)}
	in := &dynamodb.QueryInput{
		TableName:              aws.String(s.table),
		KeyConditionExpression: aws.String("#pk = :pk AND begins_with(#sk, :prefix)"),
		ExclusiveStartKey:      start,
		ConsistentRead:         aws.Bool(true),
	}
	if filter != nil && filter.between != nil {
		in.KeyConditionExpression = aws.String("#pk = :pk AND #sk BETWEEN :lo AND :hi")
		delete(values, ":prefix")
		values[":lo"], values[":hi"] = str(filter.between[0]), str(filter.between[1])
	}
	if filter != nil && filter.expr != "" {
		in.FilterExpression = aws.String(filter.expr)
		for k, v := range filter.names {
			names[k] = v
		}
		for k, v := range filter.values {
			values[k] = v
		}
	}
	in.ExpressionAttributeNames = names
	in.ExpressionAttributeValues = values
	var items []map[string]types.AttributeValue
	size := 0
	// With a filter DynamoDB may return short pages; keep reading until the
	// page is full or the partition ends, reading one more item than asked so
	// that has_more is exact: the page ends where an item that exists does
	// not fit, by count or by bytes.
	for {
		in.Limit = aws.Int32(int32(want + 1 - len(items)))
		out, err := s.db.Query(ctx, in)
		if err != nil {
			return nil, "", translate(op, err, bulkhead.Internal, "")
		}
		for _, it := range out.Items {
			n := itemJSONSize(it) + pageItemAllowance
			if len(items) == want || (len(items) > 0 && size+n > bulkhead.MaxPageBytes) {
				return items, encodeCursor(scope, items[len(items)-1]), nil
			}
			items = append(items, it)
			size += n
		}
		if len(out.LastEvaluatedKey) == 0 {
			return items, "", nil
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
}

// itemJSONSize is the size of an item written as a JSON object of its
// attributes' plain values, strings escaped as encoding/json escapes them.
// Views render a subset of an item's attributes (tool definitions and
// invoice documents, stored as JSON text, render smaller than their escaped
// string), so with pageItemAllowance it bounds what a page renders.
func itemJSONSize(item map[string]types.AttributeValue) int {
	n := 2 + max(len(item)-1, 0) // braces and commas
	for k, v := range item {
		n += bulkhead.JSONStringLen(k) + 3 + valueJSONSize(v) // "k":v
	}
	return n
}

func valueJSONSize(v types.AttributeValue) int {
	list := func(sizes ...int) int {
		n := 2 + max(len(sizes)-1, 0)
		for _, s := range sizes {
			n += s
		}
		return n
	}
	switch v := v.(type) {
	case *types.AttributeValueMemberS:
		return bulkhead.JSONStringLen(v.Value) + 2
	case *types.AttributeValueMemberN:
		return len(v.Value)
	case *types.AttributeValueMemberB:
		return base64.StdEncoding.EncodedLen(len(v.Value)) + 2
	case *types.AttributeValueMemberBOOL:
		return len("false")
	case *types.AttributeValueMemberNULL:
		return len("null")
	case *types.AttributeValueMemberSS:
		sizes := make([]int, len(v.Value))
		for i, e := range v.Value {
			sizes[i] = bulkhead.JSONStringLen(e) + 2
		}
		return list(sizes...)
	case *types.AttributeValueMemberNS:
		sizes := make([]int, len(v.Value))
		for i, e := range v.Value {
			sizes[i] = len(e)
		}
		return list(sizes...)
	case *types.AttributeValueMemberBS:
		sizes := make([]int, len(v.Value))
		for i, e := range v.Value {
			sizes[i] = base64.StdEncoding.EncodedLen(len(e)) + 2
		}
		return list(sizes...)
	case *types.AttributeValueMemberL:
		sizes := make([]int, len(v.Value))
		for i, e := range v.Value {
			sizes[i] = valueJSONSize(e)
		}
		return list(sizes...)
	case *types.AttributeValueMemberM:
		return itemJSONSize(v.Value)
	default:
		return len("null")
	}
}

type filterExpr struct {
	// between, when set, bounds the sort key (inclusive) instead of the prefix alone.
	between *[2]string
	expr    string
	names   map[string]string
	values  map[string]types.AttributeValue
}

// getItem reads one item into R (strongly consistent). A missing item is
// NotFound with the given message.
func getItem[R any](ctx context.Context, s *Store, op, pk, sk, notFound string) (R, error) {
	var rec R
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(s.table), Key: key(pk, sk), ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return rec, translate(op, err, bulkhead.Internal, "")
	}
	if out.Item == nil {
		return rec, bulkhead.Errorf(bulkhead.NotFound, "%s", notFound)
	}
	if err := attributevalue.UnmarshalMap(out.Item, &rec); err != nil {
		return rec, fmt.Errorf("%s: decode %s: %w", op, sk, err)
	}
	return rec, nil
}

// listPage reads one page of items of one type and converts each record.
func listPage[R, T any](ctx context.Context, s *Store, op, pk, prefix, cursor string, limit int, filter *filterExpr, conv func(R) T) (bulkhead.Page[T], error) {
	items, next, err := s.queryPage(ctx, op, pk, prefix, cursor, limit, filter)
	if err != nil {
		return bulkhead.Page[T]{}, err
	}
	var recs []R
	if err := attributevalue.UnmarshalListOfMaps(items, &recs); err != nil {
		return bulkhead.Page[T]{}, fmt.Errorf("%s: decode: %w", op, err)
	}
	page := bulkhead.Page[T]{Items: make([]T, len(recs)), NextCursor: next}
	for i, r := range recs {
		page.Items[i] = conv(r)
	}
	return page, nil
}
