package dynamo

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/bulkhead-dev/bulkhead/pkg/bulkhead"
)

// The priced model catalogue lives in one partition outside every tenant's:
// one item per model an operator stored, which replaces the shipped default
// of the same name. The store's reads are strongly consistent and not
// cached, so an operator's change is in effect at once in the lists; the
// runtime keeps the entries it prices executions with for a bounded time
// (runtime.Runner.ModelCacheTTL).
const (
	modelsPK    = ModelsPartition
	prefixModel = "MODEL#"
)

// ModelsPartition is the partition key of the catalogue's items: the one
// partition outside the tenants' that the data-plane functions read with
// their own role (GetItem and Query), to price and check every execution.
const ModelsPartition = "MODELS"

func modelSK(name string) string { return prefixModel + name }

type modelItem struct {
	PK               string    `dynamodbav:"PK"`
	SK               string    `dynamodbav:"SK"`
	Name             string    `dynamodbav:"name"`
	Provider         string    `dynamodbav:"provider"`
	ModelID          string    `dynamodbav:"model_id"`
	InputPerMillion  int64     `dynamodbav:"input_per_million"`  // micro-dollars
	OutputPerMillion int64     `dynamodbav:"output_per_million"` // micro-dollars
	Tiers            []string  `dynamodbav:"tiers,omitempty"`    // an empty list does not survive the embedded server
	ContextWindow    int64     `dynamodbav:"context_window"`
	MaxOutputTokens  int64     `dynamodbav:"max_output_tokens"`
	UpdatedAt        time.Time `dynamodbav:"updated_at"`
}

func (it modelItem) entry() bulkhead.ModelEntry {
	e := bulkhead.ModelEntry{Name: it.Name, Provider: it.Provider, ModelID: it.ModelID,
		InputPerMillion: bulkhead.Micros(it.InputPerMillion), OutputPerMillion: bulkhead.Micros(it.OutputPerMillion),
		ContextWindow: it.ContextWindow, MaxOutputTokens: it.MaxOutputTokens}
	for _, t := range it.Tiers {
		e.Tiers = append(e.Tiers, bulkhead.TierName(t))
	}
	return e
}

// PutModel stores a catalogue entry, replacing the stored or shipped entry
// of the same name. The caller validates it.
func (s *Store) PutModel(ctx context.Context, e bulkhead.ModelEntry, now time.Time) error {
	it := modelItem{PK: modelsPK, SK: modelSK(e.Name), Name: e.Name, Provider: e.Provider, ModelID: e.ModelID,
		InputPerMillion: int64(e.InputPerMillion), OutputPerMillion: int64(e.OutputPerMillion),
		ContextWindow: e.ContextWindow, MaxOutputTokens: e.MaxOutputTokens, UpdatedAt: now.UTC()}
	for _, t := range e.Tiers {
		it.Tiers = append(it.Tiers, string(t))
	}
	av, err := attributevalue.MarshalMap(it)
	if err != nil {
		return err
	}
	err = s.transactAudited(ctx, auditOp{action: bulkhead.ActionModelPriced, target: e.Name, changes: map[string]bulkhead.Change{
		"input_per_million": {After: e.InputPerMillion.JSON()}, "output_per_million": {After: e.OutputPerMillion.JSON()},
		"provider": {After: e.Provider}, "model_id": {After: e.ModelID}, "tiers": {After: it.Tiers},
	}}, types.TransactWriteItem{Put: &types.Put{TableName: aws.String(s.table), Item: av}})
	return translate("put model", err, bulkhead.Internal, "")
}

// Model is the catalogue entry of a model: the stored one if an operator
// set it, else the shipped default. It reads the table every time (the
// runtime caches its answers, not the store). Errors: NotFound.
func (s *Store) Model(ctx context.Context, name string) (bulkhead.ModelEntry, error) {
	it, err := getItem[modelItem](ctx, s, "get model", modelsPK, modelSK(name), "")
	if err == nil {
		return it.entry(), nil
	}
	if !bulkhead.IsCode(err, bulkhead.NotFound) {
		return bulkhead.ModelEntry{}, err
	}
	if e, ok := bulkhead.DefaultModelEntry(name); ok {
		return e, nil
	}
	return bulkhead.ModelEntry{}, bulkhead.Errorf(bulkhead.NotFound, "model %q is not in the catalogue", name)
}

// Models pages through the whole catalogue (stored entries and the shipped
// defaults they do not replace), sorted by name.
func (s *Store) Models(ctx context.Context, cursor string, limit int) (bulkhead.Page[bulkhead.ModelEntry], error) {
	return s.modelsPage(ctx, "", cursor, limit)
}

// ModelsForTier pages through the catalogue entries a tenant of the tier
// may use, sorted by name. A cursor of another tier's list is refused.
func (s *Store) ModelsForTier(ctx context.Context, tier bulkhead.TierName, cursor string, limit int) (bulkhead.Page[bulkhead.ModelEntry], error) {
	if tier == "" {
		return bulkhead.Page[bulkhead.ModelEntry]{}, bulkhead.Errorf(bulkhead.Internal, "no tier")
	}
	return s.modelsPage(ctx, tier, cursor, limit)
}

// catalogue reads every stored entry and merges the defaults under them.
// The catalogue is small (one item per model), so it is read whole.
func (s *Store) catalogue(ctx context.Context) ([]bulkhead.ModelEntry, error) {
	byName := map[string]bulkhead.ModelEntry{}
	for _, e := range bulkhead.DefaultCatalogue() {
		byName[e.Name] = e
	}
	in := &dynamodb.QueryInput{
		TableName:                 aws.String(s.table),
		KeyConditionExpression:    aws.String("#pk = :pk AND begins_with(#sk, :prefix)"),
		ExpressionAttributeNames:  map[string]string{"#pk": attrPK, "#sk": attrSK},
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": str(modelsPK), ":prefix": str(prefixModel)},
		ConsistentRead:            aws.Bool(true),
	}
	for {
		out, err := s.db.Query(ctx, in)
		if err != nil {
			return nil, translate("list models", err, bulkhead.Internal, "")
		}
		var recs []modelItem
		if err := attributevalue.UnmarshalListOfMaps(out.Items, &recs); err != nil {
			return nil, fmt.Errorf("list models: decode: %w", err)
		}
		for _, r := range recs {
			byName[r.Name] = r.entry()
		}
		if len(out.LastEvaluatedKey) == 0 {
			break
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
	all := make([]bulkhead.ModelEntry, 0, len(byName))
	for _, e := range byName {
		all = append(all, e)
	}
	slices.SortFunc(all, func(a, b bulkhead.ModelEntry) int { return strings.Compare(a.Name, b.Name) })
	return all, nil
}

// modelsPage pages the merged catalogue; tier, when set, keeps only the
// entries that tier may use. The cursor is the last name returned, tagged
// with the list's scope like every other cursor of the store.
func (s *Store) modelsPage(ctx context.Context, tier bulkhead.TierName, cursor string, limit int) (bulkhead.Page[bulkhead.ModelEntry], error) {
	scope := cursorScope(modelsPK, prefixModel+"tier="+string(tier), nil)
	after := ""
	if cursor != "" {
		b, err := base64.RawURLEncoding.DecodeString(cursor)
		if err != nil || len(b) <= cursorTagLen || !bytes.Equal(b[:cursorTagLen], scope) ||
			len(b)-cursorTagLen > maxSortKeyBytes || !utf8.Valid(b[cursorTagLen:]) {
			return bulkhead.Page[bulkhead.ModelEntry]{}, bulkhead.Errorf(bulkhead.Invalid, "invalid cursor")
		}
		after = string(b[cursorTagLen:])
	}
	all, err := s.catalogue(ctx)
	if err != nil {
		return bulkhead.Page[bulkhead.ModelEntry]{}, err
	}
	want := int(pageLimit(limit))
	page := bulkhead.Page[bulkhead.ModelEntry]{Items: []bulkhead.ModelEntry{}}
	for _, e := range all {
		if e.Name <= after && cursor != "" || tier != "" && !e.Allows(tier) {
			continue
		}
		if len(page.Items) == want {
			last := page.Items[len(page.Items)-1].Name
			page.NextCursor = base64.RawURLEncoding.EncodeToString(append(slices.Clip(scope), last...))
			break
		}
		page.Items = append(page.Items, e)
	}
	return page, nil
}
