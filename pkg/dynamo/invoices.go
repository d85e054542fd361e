package dynamo

import (
	"context"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/bulkhead-dev/bulkhead/pkg/bulkhead"
)

// invoiceIndexPK lists one month's invoices across tenants, for the operator.
func invoiceIndexPK(month string) string { return "INVOICES#" + month }

// StoredInvoice is a closed invoice as kept: its rendered document and the
// figures the operator lists by.
type StoredInvoice struct {
	PK          string    `dynamodbav:"PK"`
	SK          string    `dynamodbav:"SK"`
	TenantID    string    `dynamodbav:"tenant_id"`
	Month       string    `dynamodbav:"month"`
	TotalMicros int64     `dynamodbav:"total_micros"`
	ModelMicros int64     `dynamodbav:"model_cost_micros"`
	Document    string    `dynamodbav:"document"`
	ClosedAt    time.Time `dynamodbav:"closed_at"`
}

// MonthTiers returns the tiers the tenant held in a month, as recorded by
// its executions and tier changes (empty when none was recorded).
func (t *TenantStore) MonthTiers(ctx context.Context, month string) ([]bulkhead.TierName, error) {
	live, err := t.counterItem(ctx, "read month")
	if err != nil {
		return nil, err
	}
	ss, _ := live[prefixMonthTiers+month].(*types.AttributeValueMemberSS)
	if ss == nil {
		return nil, nil
	}
	var tiers []bulkhead.TierName
	for _, v := range ss.Value {
		tiers = append(tiers, bulkhead.TierName(v))
	}
	return tiers, nil
}

// PutInvoice stores a month's invoice once: the tenant's item and the
// operator's index entry are written together, only if neither exists, so
// closing a month twice changes nothing. It reports whether this call wrote
// it; when it did not, the stored invoice is returned.
func (t *TenantStore) PutInvoice(ctx context.Context, inv StoredInvoice) (bool, StoredInvoice, error) {
	inv.PK, inv.SK, inv.TenantID = t.pk, invoiceSK(inv.Month), t.tid
	own, err := attributevalue.MarshalMap(inv)
	if err != nil {
		return false, inv, err
	}
	idx := inv
	idx.PK, idx.SK, idx.Document = invoiceIndexPK(inv.Month), tenantIndexSK(t.tid), ""
	idxAV, err := attributevalue.MarshalMap(idx)
	if err != nil {
		return false, inv, err
	}
	cond := aws.String("attribute_not_exists(PK)")
	// The month's use leaves the counter item with the invoice that
	// records it.
	names := map[string]string{}
	var remove []string
	for i, n := range monthAttrs(inv.Month) {
		alias := "#m" + itoa(int64(i))
		names[alias] = n
		remove = append(remove, alias)
	}
	err = t.s.transactAudited(ctx, auditOp{tenant: t.tid, action: bulkhead.ActionMonthClosed, target: inv.Month,
		changes: map[string]bulkhead.Change{"invoice_total": {After: bulkhead.Micros(inv.TotalMicros).JSON()}}},
		types.TransactWriteItem{Put: &types.Put{TableName: aws.String(t.s.table), Item: own, ConditionExpression: cond}},
		types.TransactWriteItem{Put: &types.Put{TableName: aws.String(t.s.table), Item: idxAV, ConditionExpression: cond}},
		types.TransactWriteItem{Update: &types.Update{TableName: aws.String(t.s.table), Key: key(t.pk, skLive),
			UpdateExpression: aws.String("REMOVE " + strings.Join(remove, ", ")), ExpressionAttributeNames: names}})
	if err == nil {
		return true, inv, nil
	}
	if err := translate("store invoice", err, bulkhead.Conflict, ""); !bulkhead.IsCode(err, bulkhead.Conflict) {
		return false, inv, err
	}
	existing, err := t.Invoice(ctx, inv.Month)
	return false, existing, err
}

// Invoice reads one closed month's invoice. Errors: NotFound.
func (t *TenantStore) Invoice(ctx context.Context, month string) (StoredInvoice, error) {
	return getItem[StoredInvoice](ctx, t.s, "read invoice", t.pk, invoiceSK(month), "no invoice for "+month)
}

// Invoices pages through the tenant's invoices, oldest first.
func (t *TenantStore) Invoices(ctx context.Context, cursor string, limit int) (bulkhead.Page[StoredInvoice], error) {
	return listPage(ctx, t.s, "list invoices", t.pk, prefixInv, cursor, limit, nil, func(s StoredInvoice) StoredInvoice { return s })
}

// InvoicesForMonth pages through every tenant's invoice of a month (operator).
func (s *Store) InvoicesForMonth(ctx context.Context, month, cursor string, limit int) (bulkhead.Page[StoredInvoice], error) {
	return listPage(ctx, s, "list month invoices", invoiceIndexPK(month), prefixTenant, cursor, limit, nil, func(s StoredInvoice) StoredInvoice { return s })
}
