package dynamo

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/bulkhead-dev/bulkhead/pkg/bulkhead"
)

// The audit log: one item per recorded change, under the tenant's partition
// (AUDIT#<time>#<id>), put with attribute_not_exists(PK) in the transaction of
// the change it records, so a change without its entry cannot be committed.
// There is no code path that updates or deletes an AUDIT# item: entries leave
// only through TTL (expires_at), after the retention period. Every audit item
// also carries audit_day and audit_sort, the keys of the sparse index the
// operator lists all tenants' entries by time with.

// DefaultAuditRetention is how long entries are kept (TTL) unless configured.
const DefaultAuditRetention = 400 * 24 * time.Hour

// AuditIndex is the sparse global secondary index over audit items: partition
// audit_day (AUDIT#YYYY-MM-DD), sort audit_sort (<time>#<tenant>#<id>).
const AuditIndex = "audit_by_day"

// Audit item attributes that key AuditIndex.
const (
	AttrAuditDay  = "audit_day"
	AttrAuditSort = "audit_sort"
)

// maxAuditString bounds one string of an entry's changes (a long system
// prompt, say): past it the value keeps its first bytes and says how long
// it was, so an entry stays far below DynamoDB's item limit.
const maxAuditString = 4096

// AuditSource is who is acting, and on which request: the API sets it for
// every request; a platform component acting on its own sets its own.
type AuditSource struct {
	Actor     bulkhead.Actor
	RequestID string
	SourceIP  string
}

// AuditDetail is what a handler knows about the change it is about to make:
// its precise action (agent.disabled rather than agent.updated) and the
// changed fields, before and after, from the public views.
type AuditDetail struct {
	Action  string
	Changes map[string]bulkhead.Change
}

type auditSourceKey struct{}
type auditDetailKey struct{}

// WithAuditSource returns ctx carrying who is acting.
func WithAuditSource(ctx context.Context, src AuditSource) context.Context {
	return context.WithValue(ctx, auditSourceKey{}, src)
}

// AuditSourceFrom is the source ctx carries, if any.
func AuditSourceFrom(ctx context.Context) (AuditSource, bool) {
	src, ok := ctx.Value(auditSourceKey{}).(AuditSource)
	return src, ok
}

// WithAuditDetail returns ctx carrying the detail of the next change. It is
// applied only to a change of the same kind (the action's first word), so a
// detail meant for a tenant change never labels a breaker change.
func WithAuditDetail(ctx context.Context, action string, changes map[string]bulkhead.Change) context.Context {
	return context.WithValue(ctx, auditDetailKey{}, AuditDetail{Action: action, Changes: changes})
}

func actionKind(action string) string {
	kind, _, _ := strings.Cut(action, ".")
	return kind
}

// auditItem is an audit entry as stored.
type auditItem struct {
	PK        string `dynamodbav:"PK"`
	SK        string `dynamodbav:"SK"`
	EntryID   string `dynamodbav:"entry_id"`
	Time      string `dynamodbav:"time"`
	TenantID  string `dynamodbav:"tenant_id,omitempty"`
	ActorType string `dynamodbav:"actor_type"`
	ActorID   string `dynamodbav:"actor_id"`
	Action    string `dynamodbav:"action"`
	Target    string `dynamodbav:"target,omitempty"`
	RequestID string `dynamodbav:"request_id,omitempty"`
	SourceIP  string `dynamodbav:"source_ip,omitempty"`
	// Changes is JSON text: an empty map does not survive the embedded
	// server's round trip, and nested values keep their JSON types.
	Changes   string `dynamodbav:"changes,omitempty"`
	AuditDay  string `dynamodbav:"audit_day"`
	AuditSort string `dynamodbav:"audit_sort"`
	ExpiresAt int64  `dynamodbav:"expires_at"`
}

func (it auditItem) entry() bulkhead.AuditEntry {
	t, _ := time.Parse(time.RFC3339Nano, it.Time)
	e := bulkhead.AuditEntry{ID: it.EntryID, Time: t, TenantID: it.TenantID,
		Actor:  bulkhead.Actor{Type: bulkhead.ActorType(it.ActorType), ID: it.ActorID},
		Action: it.Action, Target: it.Target, RequestID: it.RequestID, SourceIP: it.SourceIP}
	if it.Changes != "" {
		_ = json.Unmarshal([]byte(it.Changes), &e.Changes)
	}
	return e
}

// newAuditItem builds the stored item of an entry.
func (s *Store) newAuditItem(e bulkhead.AuditEntry) (auditItem, error) {
	rt := recordTime(e.Time)
	it := auditItem{PK: auditPK(e.TenantID), SK: auditSK(e.Time, e.ID), EntryID: e.ID, Time: e.Time.UTC().Format(time.RFC3339Nano),
		TenantID: e.TenantID, ActorType: string(e.Actor.Type), ActorID: e.Actor.ID, Action: e.Action, Target: e.Target,
		RequestID: e.RequestID, SourceIP: e.SourceIP, AuditDay: auditDay(e.Time), AuditSort: auditSort(rt, e.TenantID, e.ID),
		ExpiresAt: e.Time.Add(s.auditRetention()).Unix()}
	if len(e.Changes) > 0 {
		b, err := scrubChanges(e.Changes)
		if err != nil {
			return auditItem{}, fmt.Errorf("audit %s: %w", e.Action, err)
		}
		it.Changes = b
	}
	return it, nil
}

func (s *Store) auditRetention() time.Duration {
	if s.retention > 0 {
		return s.retention
	}
	return DefaultAuditRetention
}

// WithAuditRetention returns a store whose audit entries expire (TTL) after
// d; 0 or less keeps DefaultAuditRetention.
func (s *Store) WithAuditRetention(d time.Duration) *Store {
	cp := *s
	cp.retention = d
	return &cp
}

// auditOp is what the store knows of a change: its default action, its
// target and, where the store sees them, the changed fields.
type auditOp struct {
	tenant  string
	action  string
	target  string
	changes map[string]bulkhead.Change
}

// auditEntry is the entry of a change of tenant op.tenant (empty: the
// platform's own, such as the model catalogue): who acts comes from the
// context (the platform when it says nothing), and a detail of the same
// kind in the context refines the action and the changes.
func (s *Store) auditEntry(ctx context.Context, op auditOp) bulkhead.AuditEntry {
	e := bulkhead.AuditEntry{ID: bulkhead.NewID("aud"), Time: s.now().UTC(), TenantID: op.tenant, Action: op.action, Target: op.target,
		Actor: bulkhead.PlatformActor("platform"), Changes: op.changes}
	if src, ok := AuditSourceFrom(ctx); ok {
		e.Actor, e.RequestID, e.SourceIP = src.Actor, src.RequestID, src.SourceIP
	}
	if d, ok := ctx.Value(auditDetailKey{}).(AuditDetail); ok && actionKind(d.Action) == actionKind(op.action) {
		e.Action = d.Action
		if d.Changes != nil {
			e.Changes = d.Changes
		}
	}
	return e
}

// auditPut is the conditional put of an entry, to go in its change's transaction.
func (s *Store) auditPut(e bulkhead.AuditEntry) (types.TransactWriteItem, error) {
	it, err := s.newAuditItem(e)
	if err != nil {
		return types.TransactWriteItem{}, err
	}
	av, err := attributevalue.MarshalMap(it)
	if err != nil {
		return types.TransactWriteItem{}, err
	}
	return types.TransactWriteItem{Put: &types.Put{TableName: aws.String(s.table), Item: av,
		ConditionExpression: aws.String("attribute_not_exists(PK)")}}, nil
}

// transactAudited runs writes as one transaction with the change's entry
// appended last, so the indexes of the caller's items in cancellation
// reasons are unchanged.
func (s *Store) transactAudited(ctx context.Context, op auditOp, writes ...types.TransactWriteItem) error {
	put, err := s.auditPut(s.auditEntry(ctx, op))
	if err != nil {
		return err
	}
	_, err = s.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: append(writes, put)})
	return err
}

// secretFields are field names whose values never enter the audit log,
// whatever a caller passes: a safety net under the views the changes are
// built from.
var secretFields = []string{"secret", "api_key", "hash", "password", "authorization", "credential", "sealed", "private"}

const redacted = "[redacted]"

// apiKeyMarker starts every API key (and its display prefix).
const apiKeyMarker = "bk_live_"

// scrubChanges encodes changes as JSON with every secret-looking value
// redacted: fields named like secrets, any value of a header map (names
// stay), any string that holds an API key, and over-long strings cut.
func scrubChanges(changes map[string]bulkhead.Change) (string, error) {
	out := make(map[string]bulkhead.Change, len(changes))
	for name, c := range changes {
		var sc bulkhead.Change
		for _, side := range []struct {
			in  any
			out *any
		}{{c.Before, &sc.Before}, {c.After, &sc.After}} {
			v, err := plainJSON(side.in)
			if err != nil {
				return "", err
			}
			if v != nil && secretField(name) {
				*side.out = redacted
			} else {
				*side.out = scrubValue(name, v)
			}
		}
		out[name] = sc
	}
	b, err := json.Marshal(out)
	return string(b), err
}

// plainJSON is v as encoding/json would decode its encoding (maps, slices,
// strings, numbers, booleans, nil).
func plainJSON(v any) (any, error) {
	if v == nil {
		return nil, nil
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var out any
	err = json.Unmarshal(raw, &out)
	return out, err
}

func secretField(name string) bool {
	n := strings.ToLower(name)
	for _, s := range secretFields {
		if strings.Contains(n, s) {
			return true
		}
	}
	return false
}

func scrubValue(field string, v any) any {
	switch v := v.(type) {
	case map[string]any:
		headers := strings.Contains(strings.ToLower(field), "header")
		for k, e := range v {
			switch {
			case secretField(k):
				v[k] = redacted
			case headers:
				// A header map keeps its names; its values may be credentials.
				if _, isMap := e.(map[string]any); !isMap {
					v[k] = redacted
				} else {
					v[k] = scrubValue(field, e)
				}
			default:
				v[k] = scrubValue(k, e)
			}
		}
		return v
	case []any:
		for i, e := range v {
			v[i] = scrubValue(field, e)
		}
		return v
	case string:
		if strings.Contains(v, apiKeyMarker) {
			return redacted
		}
		if len(v) > maxAuditString {
			cut := v[:maxAuditString/4]
			for !utf8.ValidString(cut) {
				cut = cut[:len(cut)-1]
			}
			return fmt.Sprintf("%s… [%d bytes]", cut, len(v))
		}
		return v
	default:
		return v
	}
}

// AuditQuery selects entries: a time range (zero bounds are open) and,
// when set, one action.
type AuditQuery struct {
	Since, Until time.Time
	Action       string
}

// bounds is the query's sort key range in a tenant's partition.
func (q AuditQuery) bounds() [2]string {
	lo, hi := prefixAudit, prefixAudit+"~"
	if !q.Since.IsZero() {
		lo = prefixAudit + recordTime(q.Since)
	}
	if !q.Until.IsZero() {
		hi = prefixAudit + recordTime(q.Until.Add(-time.Nanosecond)) + "#~"
	}
	return [2]string{lo, hi}
}

func (q AuditQuery) filter() *filterExpr {
	b := q.bounds()
	f := &filterExpr{between: &b}
	if q.Action != "" {
		f.expr = "#action = :action"
		f.names = map[string]string{"#action": "action"}
		f.values = map[string]types.AttributeValue{":action": str(q.Action)}
	}
	return f
}

// AuditEntries pages through this tenant's audit entries, oldest first:
// its own changes and those the operator and the platform made to it.
// Errors: Invalid (cursor), Unavailable.
func (t *TenantStore) AuditEntries(ctx context.Context, q AuditQuery, cursor string, limit int) (bulkhead.Page[bulkhead.AuditEntry], error) {
	if q.Until.IsZero() || q.Since.IsZero() || q.Since.Before(q.Until) {
		return listPage(ctx, t.s, "list audit entries", t.pk, prefixAudit, cursor, limit, q.filter(), auditItem.entry)
	}
	return bulkhead.Page[bulkhead.AuditEntry]{}, nil
}

// MaxAuditSpan is the longest time range one listing across tenants covers:
// it reads one index partition per day of it.
const MaxAuditSpan = 31 * 24 * time.Hour

// AllAuditEntries pages through every tenant's audit entries (and the
// platform's own) within q's range, oldest first, for the operator. Both
// bounds are required and at most MaxAuditSpan apart. It reads the sparse
// index day by day; the index is eventually consistent, so an entry
// written a moment ago may show a moment later. Errors: Invalid (cursor,
// range), Unavailable.
func (s *Store) AllAuditEntries(ctx context.Context, q AuditQuery, cursor string, limit int) (bulkhead.Page[bulkhead.AuditEntry], error) {
	const op = "list audit entries"
	if q.Since.IsZero() || q.Until.IsZero() || q.Until.Sub(q.Since) > MaxAuditSpan {
		return bulkhead.Page[bulkhead.AuditEntry]{}, bulkhead.Errorf(bulkhead.Invalid, "a listing across tenants covers at most %d days", int(MaxAuditSpan.Hours()/24))
	}
	if !q.Since.Before(q.Until) {
		return bulkhead.Page[bulkhead.AuditEntry]{}, nil
	}
	lo, hi := recordTime(q.Since), recordTime(q.Until.Add(-time.Nanosecond))+"#~"
	scope := cursorScope(AuditIndex, lo+"|"+hi, q.filter())
	day := q.Since.UTC().Truncate(24 * time.Hour)
	var start map[string]types.AttributeValue
	if cursor != "" {
		b, err := base64.RawURLEncoding.DecodeString(cursor)
		if err != nil || len(b) < cursorTagLen || string(b[:cursorTagLen]) != string(scope) {
			return bulkhead.Page[bulkhead.AuditEntry]{}, bulkhead.Errorf(bulkhead.Invalid, "invalid cursor")
		}
		sortKey := string(b[cursorTagLen:])
		k, at, ok := auditStartKey(sortKey)
		if !ok || sortKey < lo || sortKey > hi {
			return bulkhead.Page[bulkhead.AuditEntry]{}, bulkhead.Errorf(bulkhead.Invalid, "invalid cursor")
		}
		start, day = k, at.Truncate(24*time.Hour)
	}
	want := int(pageLimit(limit))
	var items []map[string]types.AttributeValue
	size := 0
	last := q.Until.Add(-time.Nanosecond).UTC()
	for ; !day.After(last); day, start = day.Add(24*time.Hour), nil {
		in := &dynamodb.QueryInput{
			TableName: aws.String(s.table), IndexName: aws.String(AuditIndex),
			KeyConditionExpression:   aws.String("#day = :day AND #sort BETWEEN :lo AND :hi"),
			ExpressionAttributeNames: map[string]string{"#day": AttrAuditDay, "#sort": AttrAuditSort},
			ExpressionAttributeValues: map[string]types.AttributeValue{":day": str(auditDay(day)), ":lo": str(lo),
				":hi": str(hi)},
			ExclusiveStartKey: start,
		}
		if q.Action != "" {
			in.FilterExpression = aws.String("#action = :action")
			in.ExpressionAttributeNames["#action"] = "action"
			in.ExpressionAttributeValues[":action"] = str(q.Action)
		}
		for {
			in.Limit = aws.Int32(int32(want + 1 - len(items)))
			out, err := s.db.Query(ctx, in)
			if err != nil {
				return bulkhead.Page[bulkhead.AuditEntry]{}, translate(op, err, bulkhead.Internal, "")
			}
			for _, it := range out.Items {
				n := itemJSONSize(it) + pageItemAllowance
				if len(items) == want || (len(items) > 0 && size+n > bulkhead.MaxPageBytes) {
					return auditPage(op, items, scope)
				}
				items = append(items, it)
				size += n
			}
			if len(out.LastEvaluatedKey) == 0 {
				break
			}
			in.ExclusiveStartKey = out.LastEvaluatedKey
		}
	}
	page, err := auditPage(op, items, nil)
	return page, err
}

// auditPage converts a page of index items; with scope the page continues
// after its last item.
func auditPage(op string, items []map[string]types.AttributeValue, scope []byte) (bulkhead.Page[bulkhead.AuditEntry], error) {
	var recs []auditItem
	if err := attributevalue.UnmarshalListOfMaps(items, &recs); err != nil {
		return bulkhead.Page[bulkhead.AuditEntry]{}, fmt.Errorf("%s: decode: %w", op, err)
	}
	page := bulkhead.Page[bulkhead.AuditEntry]{Items: make([]bulkhead.AuditEntry, len(recs))}
	for i, r := range recs {
		page.Items[i] = r.entry()
	}
	if scope != nil && len(recs) > 0 {
		page.NextCursor = base64.RawURLEncoding.EncodeToString(append(append([]byte{}, scope...), recs[len(recs)-1].AuditSort...))
	}
	return page, nil
}

// auditStartKey rebuilds the index start key of the entry whose audit_sort
// is sortKey (<time>#<tenant>#<id>), and the entry's time.
func auditStartKey(sortKey string) (map[string]types.AttributeValue, time.Time, bool) {
	parts := strings.Split(sortKey, "#")
	if len(parts) != 3 || parts[2] == "" || !utf8.ValidString(sortKey) || len(sortKey) > maxSortKeyBytes {
		return nil, time.Time{}, false
	}
	at, err := time.Parse("2006-01-02T15:04:05.000000000Z", parts[0])
	if err != nil || recordTime(at) != parts[0] {
		return nil, time.Time{}, false
	}
	k := key(auditPK(parts[1]), prefixAudit+parts[0]+"#"+parts[2])
	k[AttrAuditDay] = str(auditDay(at))
	k[AttrAuditSort] = str(sortKey)
	return k, at, true
}

// refusalSet remembers the (tenant, quota, minute) refusals already recorded
// by this process, so a flood of refusals costs one write per minute.
type refusalSet struct {
	mu     sync.Mutex
	minute int64
	seen   map[string]bool
}

// first reports whether k is new in minute m, and remembers it; only the
// current minute is kept.
func (r *refusalSet) first(m int64, k string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if m != r.minute || r.seen == nil {
		if m < r.minute {
			return true // a late clock: do not forget the current minute for it
		}
		r.minute, r.seen = m, map[string]bool{}
	}
	if r.seen[k] {
		return false
	}
	r.seen[k] = true
	return true
}

// forget drops k so the next refusal tries the write again.
func (r *refusalSet) forget(m int64, k string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if m == r.minute {
		delete(r.seen, k)
	}
}

// RecordQuotaRefusal records that quota refused this tenant at now: one
// entry per (tenant, quota, minute), whatever the number of refusals. The
// entry's key is deterministic and the put conditional, so concurrent
// processes write it once; this process remembers the ones it wrote or
// found, so later refusals in the minute cost no write. The count of
// refusals is the QuotaViolations metric's job. Errors: Unavailable.
func (t *TenantStore) RecordQuotaRefusal(ctx context.Context, quota string, now time.Time) error {
	quota = strings.ReplaceAll(quota, "#", "_")
	if quota == "" {
		quota = "unknown"
	}
	minute := now.UTC().Truncate(time.Minute)
	setKey := t.tid + "\x00" + quota
	if !t.s.refusals.first(minute.Unix(), setKey) {
		return nil
	}
	e := t.s.auditEntry(ctx, auditOp{tenant: t.tid, action: bulkhead.ActionQuotaRefused, target: quota})
	e.ID = fmt.Sprintf("qr_%d_%s", minute.Unix(), quota)
	e.Time, e.Changes = minute, nil
	put, err := t.s.auditPut(e)
	if err != nil {
		return err
	}
	_, err = t.s.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: put.Put.TableName, Item: put.Put.Item,
		ConditionExpression: put.Put.ConditionExpression})
	if err = translate("record quota refusal", err, bulkhead.Conflict, ""); err != nil && !bulkhead.IsCode(err, bulkhead.Conflict) {
		t.s.refusals.forget(minute.Unix(), setKey)
		return err
	}
	return nil
}

// AsPlatform returns ctx with the platform component as the actor of the
// changes made under it, keeping the request id (the request during which
// the platform acted, if any) and dropping any detail meant for a change of
// the caller's own.
func AsPlatform(ctx context.Context, component string) context.Context {
	src, _ := AuditSourceFrom(ctx)
	ctx = context.WithValue(ctx, auditDetailKey{}, AuditDetail{})
	return WithAuditSource(ctx, AuditSource{Actor: bulkhead.PlatformActor(component), RequestID: src.RequestID})
}
