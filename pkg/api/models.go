package api

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/bulkhead-dev/bulkhead/pkg/bulkhead"
)

// modelView is a catalogue entry as tenants see it: prices in USD per
// million tokens.
type modelView struct {
	Model            string      `json:"model"`
	Provider         string      `json:"provider"`
	InputPerMillion  json.Number `json:"input_per_million"`
	OutputPerMillion json.Number `json:"output_per_million"`
	ContextWindow    int64       `json:"context_window"`
	MaxOutputTokens  int64       `json:"max_output_tokens"`
}

// adminModelView adds the tiers that may use the model (every tier when the
// entry names none).
type adminModelView struct {
	modelView
	Tiers []bulkhead.TierName `json:"tiers"`
}

func viewModel(e bulkhead.ModelEntry) modelView {
	return modelView{Model: e.Name, Provider: e.Provider, InputPerMillion: e.InputPerMillion.JSON(),
		OutputPerMillion: e.OutputPerMillion.JSON(), ContextWindow: e.ContextWindow, MaxOutputTokens: e.MaxOutputTokens}
}

func viewAdminModel(e bulkhead.ModelEntry) adminModelView {
	tiers := slices.Clone(e.Tiers)
	if len(tiers) == 0 {
		for _, t := range bulkhead.Tiers() {
			tiers = append(tiers, t.Name)
		}
	}
	return adminModelView{modelView: viewModel(e), Tiers: tiers}
}

type modelBody struct {
	InputPerMillion  *json.Number `json:"input_per_million"`
	OutputPerMillion *json.Number `json:"output_per_million"`
	Tiers            *[]string    `json:"tiers"`
	ContextWindow    *int64       `json:"context_window"`
	MaxOutputTokens  *int64       `json:"max_output_tokens"`
}

// invalidField is a validation error naming the offending field.
func invalidField(field, format string, args ...any) error {
	return &bulkhead.Error{Code: bulkhead.Invalid, Message: fmt.Sprintf(format, args...), Fields: map[string]any{"field": field}}
}

// entry validates the body into the catalogue entry of provider/id.
func (b modelBody) entry(provider, id string) (bulkhead.ModelEntry, error) {
	name := bulkhead.ModelName(provider, id)
	p, mid, err := bulkhead.ParseModelName(name)
	if err != nil || p != provider || mid != id {
		return bulkhead.ModelEntry{}, invalidField("model", "model %q: the provider must be one of %v and the model id at most 256 characters without spaces (the offline model is offline/%s)",
			provider+"/"+id, bulkhead.Providers, bulkhead.DefaultModel)
	}
	e := bulkhead.ModelEntry{Name: name, Provider: provider, ModelID: id}
	price := func(field string, v *json.Number, dst *bulkhead.Micros) error {
		if v == nil {
			return invalidField(field, "%s is required", field)
		}
		m, err := bulkhead.ParseMicros(v.String())
		if err != nil || m <= 0 {
			return invalidField(field, "%s must be a USD amount greater than 0 with at most 6 decimals (a model without a price is never run)", field)
		}
		*dst = m
		return nil
	}
	if err := price("input_per_million", b.InputPerMillion, &e.InputPerMillion); err != nil {
		return e, err
	}
	if err := price("output_per_million", b.OutputPerMillion, &e.OutputPerMillion); err != nil {
		return e, err
	}
	if b.Tiers != nil {
		for i, t := range *b.Tiers {
			tier, err := parseTier(t)
			if err != nil {
				return e, invalidField(fmt.Sprintf("tiers[%d]", i), "tiers[%d]: %s", i, bulkhead.AsError(err).Message)
			}
			if !slices.Contains(e.Tiers, tier) {
				e.Tiers = append(e.Tiers, tier)
			}
		}
	}
	switch {
	case b.ContextWindow == nil || *b.ContextWindow <= 0:
		return e, invalidField("context_window", "context_window must be a number of tokens greater than 0")
	case b.MaxOutputTokens == nil || *b.MaxOutputTokens <= 0 || *b.MaxOutputTokens > *b.ContextWindow:
		return e, invalidField("max_output_tokens", "max_output_tokens must be greater than 0 and at most context_window (%d)", *b.ContextWindow)
	}
	e.ContextWindow, e.MaxOutputTokens = *b.ContextWindow, *b.MaxOutputTokens
	return e, nil
}

// putModel adds or changes a catalogue entry; it is in effect at once, in
// every process (the catalogue is read from the table at each use).
func (a *API) putModel(ctx context.Context, r *request) (any, error) {
	var b modelBody
	if err := decode(r.APIGatewayProxyRequest, &b); err != nil {
		return nil, err
	}
	e, err := b.entry(r.PathParameters["provider"], r.PathParameters["model_id"])
	if err != nil {
		return nil, err
	}
	if err := a.store.PutModel(ctx, e, a.now()); err != nil {
		return nil, err
	}
	return viewAdminModel(e), nil
}

// adminModels lists the whole catalogue, with the tiers of each entry.
func (a *API) adminModels(ctx context.Context, r *request) (any, error) {
	cursor, limit, err := pageParams(r.APIGatewayProxyRequest)
	if err != nil {
		return nil, err
	}
	page, err := a.store.Models(ctx, cursor, limit)
	if err != nil {
		return nil, err
	}
	views := make([]adminModelView, len(page.Items))
	for i, e := range page.Items {
		views[i] = viewAdminModel(e)
	}
	return list(views, page.NextCursor), nil
}

// listModels lists the models the tenant's tier may use.
func (a *API) listModels(ctx context.Context, r *request) (any, error) {
	cursor, limit, err := pageParams(r.APIGatewayProxyRequest)
	if err != nil {
		return nil, err
	}
	tier, err := a.tenantTier(ctx, r)
	if err != nil {
		return nil, err
	}
	page, err := a.store.ModelsForTier(ctx, tier.Name, cursor, limit)
	if err != nil {
		return nil, err
	}
	views := make([]modelView, len(page.Items))
	for i, e := range page.Items {
		views[i] = viewModel(e)
	}
	return list(views, page.NextCursor), nil
}

// checkModel checks a model an agent names: it must be in the catalogue,
// priced, and usable by the tenant's tier.
func (a *API) checkModel(ctx context.Context, field, name string, tier bulkhead.TierName) error {
	if _, _, err := bulkhead.ParseModelName(name); err != nil {
		return invalidField(field, "%s: %s", field, err.Error())
	}
	e, err := a.store.Model(ctx, name)
	if bulkhead.IsCode(err, bulkhead.NotFound) {
		return invalidField(field, "%s: unknown model %q (GET /v1/models lists the models you may use)", field, name)
	}
	if err != nil {
		return err
	}
	if !e.Priced() {
		return invalidField(field, "%s: model %q has no price and cannot be run", field, name)
	}
	if !e.Allows(tier) {
		return &bulkhead.Error{Code: bulkhead.ModelNotAllowed, Message: fmt.Sprintf("%s: model %q is not available on the %s tier", field, name, tier),
			Fields: map[string]any{"field": field, "model": name, "tier": tier}}
	}
	return nil
}

// checkAgentModels checks an agent's model and fallback models.
func (a *API) checkAgentModels(ctx context.Context, model string, fallbacks []string, tier bulkhead.TierName) error {
	if err := a.checkModel(ctx, "model", model, tier); err != nil {
		return err
	}
	if len(fallbacks) > bulkhead.MaxFallbackModels {
		return invalidField("fallback_models", "fallback_models: at most %d models", bulkhead.MaxFallbackModels)
	}
	for i, f := range fallbacks {
		field := fmt.Sprintf("fallback_models[%d]", i)
		if f == model {
			return invalidField(field, "%s: %q is already the agent's model", field, f)
		}
		if slices.Contains(fallbacks[:i], f) {
			return invalidField(field, "%s: duplicate model %q", field, f)
		}
		if err := a.checkModel(ctx, field, f, tier); err != nil {
			return err
		}
	}
	return nil
}
