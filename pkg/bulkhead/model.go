package bulkhead

import (
	"context"
	"encoding/json"
)

// ModelRequest is what an execution sends to a model.
type ModelRequest struct {
	Model        string
	SystemPrompt string
	// Messages is the bounded context window, oldest first, ending with the new user message.
	Messages []Message
	Tools    []json.RawMessage
	// MaxOutputTokens caps the reply.
	MaxOutputTokens int64
}

// ToolCall is a model's request to run a tool.
type ToolCall struct {
	ID        string          `json:"id"`
	Name      string          `json:"name"`
	Arguments json.RawMessage `json:"arguments"`
}

// ModelResponse is a model's answer and the tokens it used, as the provider counts them.
type ModelResponse struct {
	Text         string
	ToolCalls    []ToolCall
	InputTokens  int64
	OutputTokens int64
}

// Model is a model provider. Errors: Unavailable when the provider cannot be
// reached, Invalid for a request it refuses.
type Model interface {
	Generate(ctx context.Context, req ModelRequest) (ModelResponse, error)
}

// TokenCounter is implemented by models that can count a request's input
// tokens before sending it; the runtime then knows a step fits its budget.
type TokenCounter interface {
	CountTokens(req ModelRequest) int64
}

// ModelPrice is a model's price per million tokens, in Micros.
type ModelPrice struct {
	InputPerMillion  Micros
	OutputPerMillion Micros
}

// DefaultModel is the model an agent gets when it names none.
const DefaultModel = "bulkhead-offline-1"

// LookupModel returns the shipped price of a known model (DefaultCatalogue);
// entries stored by operators are looked up through the store.
func LookupModel(name string) (ModelPrice, bool) {
	e, ok := DefaultModelEntry(name)
	return e.Price(), ok && e.Priced()
}

// MaxCost is the most n tokens can cost, whatever their mix of input and
// output, rounded up: what an execution reserves against the spend quota.
func (p ModelPrice) MaxCost(n int64) Micros {
	per := max(p.InputPerMillion, p.OutputPerMillion)
	return Micros((n*int64(per) + 999_999) / 1_000_000)
}

// Cost prices a model call exactly: (in*inPrice + out*outPrice) / 1e6, rounded
// half up to a whole micro-dollar.
func (p ModelPrice) Cost(inputTokens, outputTokens int64) Micros {
	num := inputTokens*int64(p.InputPerMillion) + outputTokens*int64(p.OutputPerMillion)
	return Micros((num + 500_000) / 1_000_000)
}
