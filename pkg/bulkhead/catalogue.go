package bulkhead

import (
	"context"
	"fmt"
	"slices"
	"strings"
)

// The model providers. A model's full name is "<provider>/<model id>"; the
// offline model's name is DefaultModel, with no prefix.
const (
	ProviderOffline = "offline"
	ProviderBedrock = "bedrock"
	ProviderOpenAI  = "openai"
)

// Providers lists every provider a model name may name.
var Providers = []string{ProviderOffline, ProviderBedrock, ProviderOpenAI}

// MaxFallbackModels is how many fallback models an agent may name.
const MaxFallbackModels = 3

// ModelEntry is one row of the priced model catalogue: what the platform pays
// the provider, who may use the model, and its size limits.
type ModelEntry struct {
	// Name is the full model name ("openai/gpt-4o-mini", DefaultModel).
	Name     string
	Provider string
	// ModelID is what the provider is sent: Name without the provider prefix.
	ModelID          string
	InputPerMillion  Micros
	OutputPerMillion Micros
	// Tiers may use the model; empty means every tier.
	Tiers           []TierName
	ContextWindow   int64
	MaxOutputTokens int64
}

// Price is the entry's price per million tokens.
func (e ModelEntry) Price() ModelPrice {
	return ModelPrice{InputPerMillion: e.InputPerMillion, OutputPerMillion: e.OutputPerMillion}
}

// Allows reports whether a tenant of the tier may use the model.
func (e ModelEntry) Allows(t TierName) bool {
	return len(e.Tiers) == 0 || slices.Contains(e.Tiers, t)
}

// Priced reports whether the entry has a price: a model without one is never run.
func (e ModelEntry) Priced() bool {
	return e.InputPerMillion > 0 && e.OutputPerMillion > 0
}

// ParseModelName splits a model name into its provider and the id the
// provider is sent. DefaultModel is the offline provider's.
func ParseModelName(name string) (provider, id string, err error) {
	if name == DefaultModel {
		return ProviderOffline, name, nil
	}
	provider, id, ok := strings.Cut(name, "/")
	if !ok || id == "" || strings.TrimSpace(id) != id || !slices.Contains(Providers[1:], provider) {
		return "", "", fmt.Errorf("model %q: want %s, bedrock/<model or inference profile id> or openai/<model>", name, DefaultModel)
	}
	if len(id) > 256 || strings.ContainsAny(id, "\x00\r\n\t ") {
		return "", "", fmt.Errorf("model %q: the model id must be at most 256 characters without spaces or control characters", name)
	}
	return provider, id, nil
}

// ModelName is the full name of a provider's model.
func ModelName(provider, id string) string {
	if provider == ProviderOffline {
		return id
	}
	return provider + "/" + id
}

// PricesAsOf is the date of the list prices in DefaultCatalogue.
const PricesAsOf = "2026-12-01"

// DefaultCatalogue is the catalogue shipped in code; entries stored by
// operators replace these by name. Prices are list prices on PricesAsOf
// (on-demand, us-east-1 for Bedrock).
func DefaultCatalogue() []ModelEntry {
	all := []TierName(nil)
	paid := []TierName{Professional, Enterprise}
	entry := func(provider, id string, in, out float64, tiers []TierName, window, maxOut int64) ModelEntry {
		return ModelEntry{Name: ModelName(provider, id), Provider: provider, ModelID: id,
			InputPerMillion: Micros(in * 1e6), OutputPerMillion: Micros(out * 1e6), Tiers: tiers,
			ContextWindow: window, MaxOutputTokens: maxOut}
	}
	return []ModelEntry{
		entry(ProviderOffline, DefaultModel, 3, 15, all, 200_000, 4_096),
		entry(ProviderBedrock, "anthropic.claude-3-5-haiku-20241022-v1:0", 0.80, 4, all, 200_000, 8_192),
		entry(ProviderBedrock, "us.anthropic.claude-sonnet-4-20250514-v1:0", 3, 15, paid, 200_000, 64_000),
		entry(ProviderBedrock, "amazon.nova-micro-v1:0", 0.035, 0.14, all, 128_000, 10_000),
		entry(ProviderBedrock, "amazon.nova-lite-v1:0", 0.06, 0.24, all, 300_000, 10_000),
		entry(ProviderBedrock, "amazon.nova-pro-v1:0", 0.80, 3.20, paid, 300_000, 10_000),
		entry(ProviderOpenAI, "gpt-4o-mini", 0.15, 0.60, all, 128_000, 16_384),
		entry(ProviderOpenAI, "gpt-4o", 2.50, 10, paid, 128_000, 16_384),
		entry(ProviderOpenAI, "gpt-4.1-mini", 0.40, 1.60, all, 1_047_576, 32_768),
		entry(ProviderOpenAI, "gpt-4.1", 2, 8, paid, 1_047_576, 32_768),
	}
}

// DefaultModelEntry returns the shipped entry of a model.
func DefaultModelEntry(name string) (ModelEntry, bool) {
	for _, e := range DefaultCatalogue() {
		if e.Name == name {
			return e, true
		}
	}
	return ModelEntry{}, false
}

// StreamingModel is a Model that can hand out its reply's text as it is
// generated. onDelta is called, in order, with each piece of text; the
// pieces joined are the response's Text. The response is as Generate's.
type StreamingModel interface {
	Model
	GenerateStream(ctx context.Context, req ModelRequest, onDelta func(text string)) (ModelResponse, error)
}

// UTF8InputBound is an upper bound on the input tokens of a request for any
// byte-level BPE tokenizer, which never makes more tokens than UTF-8 bytes:
// every byte of the system prompt, the messages, their tool calls and the
// tools, plus perMessage tokens of chat-template framing for each message
// (and the system prompt and the tool list).
func UTF8InputBound(req ModelRequest, perMessage int64) int64 {
	n := int64(len(req.SystemPrompt)) + perMessage
	for _, m := range req.Messages {
		n += int64(len(m.Content)+len(m.Name)+len(m.ToolCallID)) + perMessage
		for _, c := range m.ToolCalls {
			n += int64(len(c.ID)+len(c.Name)+len(c.Arguments)) + perMessage
		}
	}
	for _, t := range req.Tools {
		n += int64(len(t)) + perMessage
	}
	return n
}

// ModelNames is the agent's model followed by its fallbacks.
func (a Agent) ModelNames() []string {
	return append([]string{a.Model}, a.FallbackModels...)
}
