package runtime_test

import (
	"context"
	"testing"

	"github.com/bulkhead-dev/bulkhead/pkg/bulkhead"
	"github.com/bulkhead-dev/bulkhead/pkg/providers/bedrock"
	"github.com/bulkhead-dev/bulkhead/pkg/providers/bedrock/bedrockfake"
	"github.com/bulkhead-dev/bulkhead/pkg/providers/openai"
	"github.com/bulkhead-dev/bulkhead/pkg/providers/openai/openaifake"
	"github.com/bulkhead-dev/bulkhead/pkg/runtime"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
)

// The provider tests run executions on the real provider clients against
// wire-level fakes: an OpenAI-compatible server and a Bedrock runtime that
// checks SigV4.

const (
	oaModel  = "openai/gpt-4o-mini"
	bedModel = "bedrock/amazon.nova-lite-v1:0"
)

type fakes struct {
	oa  *openaifake.Server
	bed *bedrockfake.Server
}

// onFakes points the env's runner at the two fakes through the real clients.
func onFakes(t *testing.T, e *modelEnv) fakes {
	t.Helper()
	f := fakes{oa: openaifake.New(), bed: bedrockfake.New("us-east-1", "AKIDTEST", "secret")}
	t.Cleanup(f.oa.Close)
	t.Cleanup(f.bed.Close)
	oa, err := openai.New(openai.Config{BaseURL: f.oa.URL()})
	if err != nil {
		t.Fatal(err)
	}
	bed := bedrock.NewFromConfig(aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", "")},
		func(o *bedrockruntime.Options) { o.BaseEndpoint = aws.String(f.bed.URL()) })
	e.runner.Providers = map[string]bulkhead.Model{bulkhead.ProviderOpenAI: oa, bulkhead.ProviderBedrock: bed}
	e.runner.Catalogue = nil // the shipped catalogue
	return f
}

func price(t *testing.T, name string) bulkhead.ModelPrice {
	t.Helper()
	e, ok := bulkhead.DefaultModelEntry(name)
	if !ok {
		t.Fatalf("%s not shipped", name)
	}
	return e.Price()
}

// TestThrottledThenAnswered: a 429 with Retry-After, then an answer from the
// same model: one execution, charged once, for the answer's tokens.
func TestThrottledThenAnswered(t *testing.T) {
	e := newModelEnv(t, oaModel)
	f := onFakes(t, e)
	f.oa.Enqueue(openaifake.Fail{Status: 429, Message: "Rate limit reached", RetryAfter: 1},
		openaifake.Reply{Text: "after the wait", PromptTokens: 50, CompletionTokens: 5})
	res, err := e.execute(t, "hello")
	if err != nil || res.Reply != "after the wait" || res.Execution.Model != oaModel {
		t.Fatalf("%+v, %v: want the answer after the throttle", res, err)
	}
	if f.oa.Count() != 2 || res.Execution.Cost != price(t, oaModel).Cost(50, 5) {
		t.Errorf("%d calls, cost %d µ$: want 2 calls and the answer's cost", f.oa.Count(), res.Execution.Cost)
	}
	e.settledCounters(t)
}

// TestFallbackAcrossProviders: the OpenAI-compatible model stays down (5xx);
// the Bedrock fallback answers, and the execution is priced as Bedrock.
func TestFallbackAcrossProviders(t *testing.T) {
	e := newModelEnv(t, oaModel, bedModel)
	f := onFakes(t, e)
	f.oa.Enqueue(openaifake.Fail{Status: 503, Message: "overloaded"}, openaifake.Fail{Status: 500, Message: "boom"}, openaifake.Fail{Status: 502})
	f.bed.Script(bedrockfake.Reply{Text: "Bedrock here.", InputTokens: 70, OutputTokens: 9})
	res, err := e.execute(t, "hello")
	if err != nil || res.Reply != "Bedrock here." || res.Execution.Model != bedModel {
		t.Fatalf("%+v, %v: want the Bedrock fallback's answer", res, err)
	}
	if res.Execution.Cost != price(t, bedModel).Cost(70, 9) || res.Execution.InputTokens != 70 {
		t.Errorf("execution %+v: want Bedrock's tokens at Bedrock's price", res.Execution)
	}
	e.settledCounters(t)
}

// TestProviderRefusal: a 400 from the provider ends the execution with
// model_error and the provider's message.
func TestProviderRefusal(t *testing.T) {
	e := newModelEnv(t, bedModel, oaModel)
	f := onFakes(t, e)
	f.bed.Script(bedrockfake.Fail{Status: 400, Type: "ValidationException", Message: "The model returned the following errors: bad input"})
	_, err := e.execute(t, "hello")
	if ge := bulkhead.AsError(err); ge == nil || ge.Code != bulkhead.ModelError || ge.Message == "" {
		t.Fatalf("%v: want model_error with the provider's message", err)
	}
	if f.oa.Count() != 0 {
		t.Error("a refusal fell back to another model")
	}
	e.settledCounters(t)
}

// TestProviderNeverAnswers: a provider that hangs is cut at the agent's
// wall time; the execution ends timed_out and settles.
func TestProviderNeverAnswers(t *testing.T) {
	e := newModelEnv(t, oaModel)
	f := onFakes(t, e)
	ag, err := e.ts.GetAgent(context.Background(), agentID)
	if err != nil {
		t.Fatal(err)
	}
	ag.Limits.MaxWallSeconds = 1
	if err := e.ts.PutAgent(context.Background(), ag, ag.Version); err != nil {
		t.Fatal(err)
	}
	f.oa.Enqueue(openaifake.Hang{})
	res, err := e.execute(t, "hello")
	if err != nil || res.Execution.Status != bulkhead.ExecTimedOut {
		t.Fatalf("%+v, %v: want timed_out", res.Execution, err)
	}
	if s := e.runner.CircuitState(oaModel); s != "closed" {
		t.Errorf("circuit %q: the execution's own wall time is not the model's failure", s)
	}
	e.settledCounters(t)
}

// TestStreamedFromProvider: deltas from the provider's stream reach the
// execution's events in order and join to its reply.
func TestStreamedFromProvider(t *testing.T) {
	for _, model := range []string{oaModel, bedModel} {
		t.Run(model, func(t *testing.T) {
			e := newModelEnv(t, model)
			f := onFakes(t, e)
			f.oa.Enqueue(openaifake.Reply{Text: "one two three four five", PromptTokens: 20, CompletionTokens: 5})
			f.bed.Script(bedrockfake.Reply{Text: "one two three four five", InputTokens: 20, OutputTokens: 5})
			var joined string
			n := 0
			res, err := e.runner.Execute(context.Background(), e.ts, e.tr, runtime.Request{AgentID: agentID, Message: "count",
				OnEvent: func(ev runtime.Event) {
					if ev.Kind == runtime.EventDelta {
						n++
						joined += ev.Text
					}
				}})
			if err != nil || res.Reply != "one two three four five" || joined != res.Reply || n < 2 {
				t.Errorf("%+v, %v: %d deltas joined %q", res, err, n, joined)
			}
			if res.Execution.InputTokens != 20 || res.Execution.OutputTokens != 5 {
				t.Errorf("execution %+v: want the stream's reported usage", res.Execution)
			}
		})
	}
}
