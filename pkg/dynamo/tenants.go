package dynamo

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/bulkhead-dev/bulkhead/pkg/bulkhead"
)

type tenantItem struct {
	PK       string `dynamodbav:"PK"`
	SK       string `dynamodbav:"SK"`
	TenantID string `dynamodbav:"tenant_id"`
	Name     string `dynamodbav:"name"`
	Tier     string `dynamodbav:"tier"`
	Status   string `dynamodbav:"status"`
	// Overrides is omitted when empty: an empty map does not survive the
	// embedded server's round trip.
	Overrides *bulkhead.QuotaOverrides   `dynamodbav:"overrides,omitempty"`
	Breaker   *bulkhead.BreakerOverrides `dynamodbav:"breaker,omitempty"`
	Edge      *bulkhead.EdgeKey          `dynamodbav:"edge,omitempty"`
	Endpoint  string                     `dynamodbav:"endpoint,omitempty"`
	CreatedAt time.Time                  `dynamodbav:"created_at"`
	UpdatedAt time.Time                  `dynamodbav:"updated_at"`
}

func (it tenantItem) tenant() bulkhead.Tenant {
	t := bulkhead.Tenant{
		ID: it.TenantID, Name: it.Name, Tier: bulkhead.TierName(it.Tier), Status: bulkhead.TenantStatus(it.Status),
		Endpoint: it.Endpoint, CreatedAt: it.CreatedAt, UpdatedAt: it.UpdatedAt,
	}
	if it.Overrides != nil {
		t.Overrides = *it.Overrides
	}
	if it.Breaker != nil {
		t.BreakerOverrides = *it.Breaker
	}
	if it.Edge != nil {
		t.Edge = *it.Edge
	}
	return t
}

func tenantItems(t bulkhead.Tenant) (profile, index tenantItem) {
	profile = tenantItem{
		PK: tenantPK(t.ID), SK: skProfile, TenantID: t.ID, Name: t.Name, Tier: string(t.Tier),
		Status: string(t.Status), Endpoint: t.Endpoint, CreatedAt: t.CreatedAt, UpdatedAt: t.UpdatedAt,
	}
	if t.Overrides != (bulkhead.QuotaOverrides{}) {
		o := t.Overrides
		profile.Overrides = &o
	}
	if t.BreakerOverrides != (bulkhead.BreakerOverrides{}) {
		b := t.BreakerOverrides
		profile.Breaker = &b
	}
	if t.Edge != (bulkhead.EdgeKey{}) {
		e := t.Edge
		profile.Edge = &e
	}
	index = profile
	index.PK, index.SK = tenantIndexPK, tenantIndexSK(t.ID)
	return profile, index
}

type keyItem struct {
	PK        string     `dynamodbav:"PK"`
	SK        string     `dynamodbav:"SK"`
	KeyID     string     `dynamodbav:"key_id"`
	TenantID  string     `dynamodbav:"tenant_id"`
	Name      string     `dynamodbav:"name"`
	Prefix    string     `dynamodbav:"prefix"`
	Hash      string     `dynamodbav:"hash"`
	Status    string     `dynamodbav:"status"`
	CreatedAt time.Time  `dynamodbav:"created_at"`
	RevokedAt *time.Time `dynamodbav:"revoked_at,omitempty"`
}

func (it keyItem) key() bulkhead.APIKey {
	return bulkhead.APIKey{
		ID: it.KeyID, TenantID: it.TenantID, Name: it.Name, Prefix: it.Prefix, Hash: it.Hash,
		Status: bulkhead.KeyStatus(it.Status), CreatedAt: it.CreatedAt, RevokedAt: it.RevokedAt,
	}
}

// CreateTenant writes a new tenant (profile, operator index entry) and its
// first API key in one transaction: a tenant never exists without its key.
func (s *Store) CreateTenant(ctx context.Context, t bulkhead.Tenant, k bulkhead.APIKey) error {
	profile, index := tenantItems(t)
	items := []any{profile, index}
	writes := make([]types.TransactWriteItem, 0, 4)
	for _, it := range items {
		av, err := attributevalue.MarshalMap(it)
		if err != nil {
			return err
		}
		writes = append(writes, types.TransactWriteItem{Put: &types.Put{
			TableName: aws.String(s.table), Item: av,
			ConditionExpression: aws.String("attribute_not_exists(PK)"),
		}})
	}
	kw, err := s.keyWrites(k)
	if err != nil {
		return err
	}
	writes = append(writes, kw...)
	err = s.transactAudited(ctx, auditOp{tenant: t.ID, action: bulkhead.ActionTenantCreated, target: t.ID, changes: map[string]bulkhead.Change{
		"name": {After: t.Name}, "tier": {After: t.Tier}, "status": {After: t.Status}, "key_id": {After: k.ID},
	}}, writes...)
	return translate("create tenant", err, bulkhead.Conflict, "tenant already exists")
}

// keyWrites are the two items of a key: the tenant's own record and the
// lookup the authorizer reads by hash.
func (s *Store) keyWrites(k bulkhead.APIKey) ([]types.TransactWriteItem, error) {
	rec := keyItem{PK: tenantPK(k.TenantID), SK: keySK(k.ID), KeyID: k.ID, TenantID: k.TenantID, Name: k.Name,
		Prefix: k.Prefix, Hash: k.Hash, Status: string(k.Status), CreatedAt: k.CreatedAt}
	lookup := rec
	lookup.PK, lookup.SK = apiKeyLookupPK(k.Hash), skAPIKey
	var out []types.TransactWriteItem
	for _, it := range []keyItem{rec, lookup} {
		av, err := attributevalue.MarshalMap(it)
		if err != nil {
			return nil, err
		}
		out = append(out, types.TransactWriteItem{Put: &types.Put{
			TableName: aws.String(s.table), Item: av, ConditionExpression: aws.String("attribute_not_exists(PK)"),
		}})
	}
	return out, nil
}

// LookupKey resolves an API key hash to its stored record. Errors: NotFound.
func (s *Store) LookupKey(ctx context.Context, hash string) (bulkhead.APIKey, error) {
	it, err := getItem[keyItem](ctx, s, "lookup key", apiKeyLookupPK(hash), skAPIKey, "key not found")
	return it.key(), err
}

// LookupKeyAndTenant resolves an API key hash to its stored record and reads
// the profile of the tenant tid with it, in one strongly consistent
// BatchGetItem (one more per round of unprocessed keys). tid is the tenant
// the key names, which only the stored record can confirm: a key that is
// not tid's is NotFound, like a missing one, and no profile is returned.
// The store's own credentials are used, as for LookupKey. Errors: NotFound
// (the key), Internal (the key is tid's but its tenant is missing).
func (s *Store) LookupKeyAndTenant(ctx context.Context, hash, tid string) (bulkhead.APIKey, bulkhead.Tenant, error) {
	const op = "lookup key and tenant"
	lookupPK, profilePK := apiKeyLookupPK(hash), tenantPK(tid)
	items, err := s.batchGet(ctx, op, []map[string]types.AttributeValue{
		key(lookupPK, skAPIKey), key(profilePK, skProfile),
	})
	if err != nil {
		return bulkhead.APIKey{}, bulkhead.Tenant{}, err
	}
	var lookup, profile map[string]types.AttributeValue
	for _, it := range items {
		pk, _ := it[attrPK].(*types.AttributeValueMemberS)
		sk, _ := it[attrSK].(*types.AttributeValueMemberS)
		switch {
		case pk == nil || sk == nil:
		case pk.Value == lookupPK && sk.Value == skAPIKey:
			lookup = it
		case pk.Value == profilePK && sk.Value == skProfile:
			profile = it
		}
	}
	if lookup == nil {
		return bulkhead.APIKey{}, bulkhead.Tenant{}, bulkhead.Errorf(bulkhead.NotFound, "key not found")
	}
	var k keyItem
	if err := attributevalue.UnmarshalMap(lookup, &k); err != nil {
		return bulkhead.APIKey{}, bulkhead.Tenant{}, fmt.Errorf("%s: decode %s: %w", op, skAPIKey, err)
	}
	if k.TenantID != tid {
		return bulkhead.APIKey{}, bulkhead.Tenant{}, bulkhead.Errorf(bulkhead.NotFound, "key not found")
	}
	if profile == nil {
		return bulkhead.APIKey{}, bulkhead.Tenant{}, bulkhead.Errorf(bulkhead.Internal, "tenant %s of key %s not found", tid, k.KeyID)
	}
	var t tenantItem
	if err := attributevalue.UnmarshalMap(profile, &t); err != nil {
		return bulkhead.APIKey{}, bulkhead.Tenant{}, fmt.Errorf("%s: decode %s: %w", op, skProfile, err)
	}
	return k.key(), t.tenant(), nil
}

// GetTenant reads a tenant for the operator. Errors: NotFound.
func (s *Store) GetTenant(ctx context.Context, tid string) (bulkhead.Tenant, error) {
	return s.Tenant(tid).Profile(ctx)
}

// ListTenants pages through all tenants (operator only).
func (s *Store) ListTenants(ctx context.Context, cursor string, limit int) (bulkhead.Page[bulkhead.Tenant], error) {
	return listPage(ctx, s, "list tenants", tenantIndexPK, prefixTenant, cursor, limit, nil, tenantItem.tenant)
}

// TenantPatch changes a tenant; nil fields stay as they are.
type TenantPatch struct {
	Tier      *bulkhead.TierName
	Status    *bulkhead.TenantStatus
	Overrides *bulkhead.QuotaOverrides
	Breaker   *bulkhead.BreakerOverrides
	Edge      *bulkhead.EdgeKey
	// Endpoint, when set, replaces the silo endpoint ("" clears it).
	Endpoint *string
}

// UpdateTenant applies a patch to the profile and the operator index in one
// transaction, guarded by the profile's last update time so that concurrent
// patches cannot lose each other's overrides. Errors: NotFound, Conflict.
func (s *Store) UpdateTenant(ctx context.Context, tid string, p TenantPatch) (bulkhead.Tenant, error) {
	cur, err := s.GetTenant(ctx, tid)
	if err != nil {
		return bulkhead.Tenant{}, err
	}
	next := cur
	if p.Tier != nil {
		next.Tier = *p.Tier
	}
	if p.Status != nil {
		next.Status = *p.Status
	}
	if p.Overrides != nil {
		next.Overrides = cur.Overrides.Merge(*p.Overrides)
	}
	if p.Breaker != nil {
		next.BreakerOverrides = cur.BreakerOverrides.Merge(*p.Breaker)
	}
	if p.Edge != nil {
		next.Edge = *p.Edge
	}
	if p.Endpoint != nil {
		next.Endpoint = *p.Endpoint
	}
	next.UpdatedAt = s.now().UTC()
	if !next.UpdatedAt.After(cur.UpdatedAt) {
		next.UpdatedAt = cur.UpdatedAt.Add(time.Nanosecond)
	}
	profile, index := tenantItems(next)
	var writes []types.TransactWriteItem
	for i, it := range []tenantItem{profile, index} {
		av, err := attributevalue.MarshalMap(it)
		if err != nil {
			return bulkhead.Tenant{}, err
		}
		put := &types.Put{TableName: aws.String(s.table), Item: av}
		if i == 0 {
			prev, err := attributevalue.Marshal(cur.UpdatedAt)
			if err != nil {
				return bulkhead.Tenant{}, err
			}
			put.ConditionExpression = aws.String("updated_at = :prev")
			put.ExpressionAttributeValues = map[string]types.AttributeValue{":prev": prev}
		}
		writes = append(writes, types.TransactWriteItem{Put: put})
	}
	if next.Tier != cur.Tier {
		// The month remembers every tier held in it, for billing.
		writes = append(writes, types.TransactWriteItem{Update: &types.Update{
			TableName: aws.String(s.table), Key: key(tenantPK(tid), skLive),
			UpdateExpression:         aws.String("ADD #tiers :tiers"),
			ExpressionAttributeNames: map[string]string{"#tiers": prefixMonthTiers + bulkhead.MonthKey(next.UpdatedAt)},
			ExpressionAttributeValues: map[string]types.AttributeValue{
				":tiers": &types.AttributeValueMemberSS{Value: []string{string(cur.Tier), string(next.Tier)}}},
		}})
	}
	action, changes := tenantChanges(cur, next)
	err = s.transactAudited(ctx, auditOp{tenant: tid, action: action, target: tid, changes: changes}, writes...)
	if err != nil {
		return bulkhead.Tenant{}, translate("update tenant", err, bulkhead.Conflict, "tenant was changed concurrently; retry")
	}
	return next, nil
}

// Profile reads the tenant's profile. Errors: NotFound.
func (t *TenantStore) Profile(ctx context.Context) (bulkhead.Tenant, error) {
	it, err := getItem[tenantItem](ctx, t.s, "get tenant", t.pk, skProfile, "tenant not found")
	return it.tenant(), err
}

// CreateKey stores a new key of this tenant, and with idem its idempotent
// result in the same transaction. Errors: Conflict.
func (t *TenantStore) CreateKey(ctx context.Context, k bulkhead.APIKey, idem *IdemCompletion) error {
	k.TenantID = t.tid
	writes, err := t.s.keyWrites(k)
	if err != nil {
		return err
	}
	return t.transact(ctx, "create key", "key already exists", auditOp{action: bulkhead.ActionKeyCreated, target: k.ID,
		changes: map[string]bulkhead.Change{"name": {After: k.Name}, "status": {After: k.Status}}}, idem, writes...)
}

// transact writes items in one transaction with the change's audit entry,
// and a claimed idempotency key's result when idem is set.
func (t *TenantStore) transact(ctx context.Context, op, conflict string, audit auditOp, idem *IdemCompletion, writes ...types.TransactWriteItem) error {
	if idem != nil {
		writes = append(writes, t.completionWrite(idem))
	}
	audit.tenant = t.tid
	err := t.s.transactAudited(ctx, audit, writes...)
	if err == nil {
		idem.markStored()
	}
	return translate(op, err, bulkhead.Conflict, conflict)
}

// ListKeys pages through this tenant's keys.
func (t *TenantStore) ListKeys(ctx context.Context, cursor string, limit int) (bulkhead.Page[bulkhead.APIKey], error) {
	return listPage(ctx, t.s, "list keys", t.pk, prefixKey, cursor, limit, nil, keyItem.key)
}

// RevokeKey marks one of this tenant's keys revoked, in its record and in the
// authorizer's lookup, in one transaction. Errors: NotFound.
func (t *TenantStore) RevokeKey(ctx context.Context, kid string) (bulkhead.APIKey, error) {
	it, err := getItem[keyItem](ctx, t.s, "revoke key", t.pk, keySK(kid), "key "+kid+" not found")
	if err != nil {
		return bulkhead.APIKey{}, err
	}
	now := t.s.now().UTC()
	revokedAt, err := attributevalue.Marshal(now)
	if err != nil {
		return bulkhead.APIKey{}, err
	}
	upd := func(pk, sk string) types.TransactWriteItem {
		return types.TransactWriteItem{Update: &types.Update{
			TableName: aws.String(t.s.table), Key: key(pk, sk),
			UpdateExpression:          aws.String("SET #st = :revoked, revoked_at = if_not_exists(revoked_at, :now)"),
			ConditionExpression:       aws.String("attribute_exists(PK)"),
			ExpressionAttributeNames:  map[string]string{"#st": "status"},
			ExpressionAttributeValues: map[string]types.AttributeValue{":revoked": str(string(bulkhead.KeyRevoked)), ":now": revokedAt},
		}}
	}
	err = t.s.transactAudited(ctx, auditOp{tenant: t.tid, action: bulkhead.ActionKeyRevoked, target: kid,
		changes: map[string]bulkhead.Change{"status": {Before: it.Status, After: bulkhead.KeyRevoked}}},
		upd(t.pk, keySK(kid)), upd(apiKeyLookupPK(it.Hash), skAPIKey))
	if err != nil {
		return bulkhead.APIKey{}, translate("revoke key", err, bulkhead.NotFound, "key not found")
	}
	k := it.key()
	if k.Status != bulkhead.KeyRevoked {
		k.Status, k.RevokedAt = bulkhead.KeyRevoked, &now
	}
	return k, nil
}

// tenantChanges are the fields a tenant update changed, and the action that
// names it: a status, tier or quota change alone has its own action.
func tenantChanges(cur, next bulkhead.Tenant) (string, map[string]bulkhead.Change) {
	changes := map[string]bulkhead.Change{}
	var actions []string
	if cur.Status != next.Status {
		changes["status"] = bulkhead.Change{Before: cur.Status, After: next.Status}
		if next.Status == bulkhead.TenantSuspended {
			actions = append(actions, bulkhead.ActionTenantSuspended)
		} else {
			actions = append(actions, bulkhead.ActionTenantResumed)
		}
	}
	if cur.Tier != next.Tier {
		changes["tier"] = bulkhead.Change{Before: cur.Tier, After: next.Tier}
		actions = append(actions, bulkhead.ActionTenantTierChanged)
	}
	if cur.Overrides != next.Overrides {
		changes["quota_overrides"] = bulkhead.Change{Before: cur.Overrides, After: next.Overrides}
		actions = append(actions, bulkhead.ActionTenantQuotaChanged)
	}
	if cur.BreakerOverrides != next.BreakerOverrides {
		changes["circuit_breaker_config"] = bulkhead.Change{Before: cur.BreakerOverrides, After: next.BreakerOverrides}
		actions = append(actions, bulkhead.ActionTenantUpdated)
	}
	if cur.Endpoint != next.Endpoint {
		changes["endpoint"] = bulkhead.Change{Before: cur.Endpoint, After: next.Endpoint}
		actions = append(actions, bulkhead.ActionTenantUpdated)
	}
	if len(actions) == 1 {
		return actions[0], changes
	}
	return bulkhead.ActionTenantUpdated, changes
}
