package bedrock_test

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"

	"github.com/bulkhead-dev/bulkhead/pkg/bulkhead"
	"github.com/bulkhead-dev/bulkhead/pkg/providers/bedrock"
	"github.com/bulkhead-dev/bulkhead/pkg/providers/bedrock/bedrockfake"
)

const (
	region = "eu-west-1"
	keyID  = "AKIDTESTBEDROCK"
	secret = "test-secret-not-real"
)

func setup(t *testing.T) (*bedrockfake.Server, *bedrock.Model) {
	t.Helper()
	fake := bedrockfake.New(region, keyID, secret)
	t.Cleanup(fake.Close)
	return fake, modelFor(fake, secret)
}

func modelFor(fake *bedrockfake.Server, sec string) *bedrock.Model {
	cfg := aws.Config{Region: region, Credentials: credentials.NewStaticCredentialsProvider(keyID, sec, "")}
	return bedrock.NewFromConfig(cfg, func(o *bedrockruntime.Options) { o.BaseEndpoint = aws.String(fake.URL()) })
}

func userReq(model, text string) bulkhead.ModelRequest {
	return bulkhead.ModelRequest{Model: model, SystemPrompt: "You are terse.", MaxOutputTokens: 256,
		Messages: []bulkhead.Message{{Role: bulkhead.RoleUser, Content: text}}}
}

func TestGenerateBufferedReplyAndUsage(t *testing.T) {
	fake, m := setup(t)
	fake.Script(bedrockfake.Reply{Text: "Paris.", InputTokens: 42, OutputTokens: 3})
	resp, err := m.Generate(context.Background(), userReq("amazon.nova-lite-v1:0", "Capital of France?"))
	if err != nil {
		t.Fatal(err)
	}
	if resp.Text != "Paris." || resp.InputTokens != 42 || resp.OutputTokens != 3 || len(resp.ToolCalls) != 0 {
		t.Fatalf("response = %+v", resp)
	}
	reqs := fake.Requests()
	if len(reqs) != 1 || reqs[0].Streamed || reqs[0].ModelID != "amazon.nova-lite-v1:0" {
		t.Fatalf("requests = %+v", reqs)
	}
	body := reqs[0].Body
	sys, _ := json.Marshal(body["system"])
	if string(sys) != `[{"text":"You are terse."}]` {
		t.Errorf("system = %s", sys)
	}
	inf, _ := json.Marshal(body["inferenceConfig"])
	if string(inf) != `{"maxTokens":256}` {
		t.Errorf("inferenceConfig = %s", inf)
	}
	if _, ok := body["toolConfig"]; ok {
		t.Errorf("toolConfig sent without tools: %v", body["toolConfig"])
	}
}

func TestDefaultEchoUsage(t *testing.T) {
	_, m := setup(t)
	req := userReq("amazon.nova-micro-v1:0", "hello")
	resp, err := m.Generate(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	// "You are terse." (14) + "hello" (5) = 19 bytes -> 5 tokens; "Echo: hello" (11) -> 3.
	if resp.Text != "Echo: hello" || resp.InputTokens != 5 || resp.OutputTokens != 3 {
		t.Fatalf("response = %+v", resp)
	}
	if resp.InputTokens > m.CountTokens(req) {
		t.Fatalf("input bound %d below the reported %d", m.CountTokens(req), resp.InputTokens)
	}
}

func TestModelAndInferenceProfileIDs(t *testing.T) {
	fake, m := setup(t)
	ids := []string{"amazon.nova-lite-v1:0", "us.anthropic.claude-sonnet-4-20250514-v1:0",
		"arn:aws:bedrock:eu-west-1:123456789012:inference-profile/eu.amazon.nova-pro-v1:0"}
	for _, id := range ids {
		if _, err := m.Generate(context.Background(), userReq(id, "hi")); err != nil {
			t.Fatalf("%s: %v", id, err)
		}
	}
	for i, r := range fake.Requests() {
		if r.ModelID != ids[i] {
			t.Errorf("request %d: model id %q, want %q", i, r.ModelID, ids[i])
		}
	}
}

func TestToolCallRoundTrip(t *testing.T) {
	fake, m := setup(t)
	tools := []json.RawMessage{
		json.RawMessage(`"invoke_agent"`),
		json.RawMessage(`{"name":"get_weather","description":"Weather of a city","input_schema":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}`),
	}
	call := bulkhead.ToolCall{ID: "tooluse_1", Name: "get_weather", Arguments: json.RawMessage(`{"city":"Oslo"}`)}
	fake.Script(bedrockfake.Reply{Text: "Let me check.", ToolCalls: []bulkhead.ToolCall{call}}, bedrockfake.Reply{Text: "It is 3°C in Oslo."})

	req := userReq("amazon.nova-pro-v1:0", "Weather in Oslo?")
	req.Tools = tools
	first, err := m.Generate(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if first.Text != "Let me check." || len(first.ToolCalls) != 1 || first.ToolCalls[0].ID != "tooluse_1" ||
		first.ToolCalls[0].Name != "get_weather" || string(first.ToolCalls[0].Arguments) != `{"city":"Oslo"}` {
		t.Fatalf("first = %+v", first)
	}
	req.Messages = append(req.Messages,
		bulkhead.Message{Role: bulkhead.RoleAssistant, Content: first.Text, ToolCalls: first.ToolCalls},
		bulkhead.Message{Role: bulkhead.RoleTool, ToolCallID: "tooluse_1", Name: "get_weather", Content: `{"temp_c":3}`})
	second, err := m.Generate(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if second.Text != "It is 3°C in Oslo." {
		t.Fatalf("second = %+v", second)
	}
	body := fake.Requests()[1].Body
	tc, _ := json.Marshal(body["toolConfig"])
	want := `{"tools":[{"toolSpec":{"inputSchema":{"json":{"properties":{},"type":"object"}},"name":"invoke_agent"}},` +
		`{"toolSpec":{"description":"Weather of a city","inputSchema":{"json":{"properties":{"city":{"type":"string"}},"required":["city"],"type":"object"}},"name":"get_weather"}}]}`
	if string(tc) != want {
		t.Errorf("toolConfig = %s\nwant %s", tc, want)
	}
	msgs, _ := json.Marshal(body["messages"])
	wantMsgs := `[{"content":[{"text":"Weather in Oslo?"}],"role":"user"},` +
		`{"content":[{"text":"Let me check."},{"toolUse":{"input":{"city":"Oslo"},"name":"get_weather","toolUseId":"tooluse_1"}}],"role":"assistant"},` +
		`{"content":[{"toolResult":{"content":[{"text":"{\"temp_c\":3}"}],"toolUseId":"tooluse_1"}}],"role":"user"}]`
	if string(msgs) != wantMsgs {
		t.Errorf("messages = %s\nwant %s", msgs, wantMsgs)
	}
}

// A history with tool blocks but an agent without tools still sends a tool
// configuration; consecutive tool results and same-role messages merge, and
// empty text is dropped.
func TestHistoryMergingWithoutTools(t *testing.T) {
	fake, m := setup(t)
	req := bulkhead.ModelRequest{Model: "amazon.nova-lite-v1:0", Messages: []bulkhead.Message{
		{Role: bulkhead.RoleUser, Content: "first"},
		{Role: bulkhead.RoleUser, Content: "second"},
		{Role: bulkhead.RoleAssistant, ToolCalls: []bulkhead.ToolCall{
			{ID: "a", Name: "invoke_agent", Arguments: json.RawMessage(`{"agent_id":"x","message":"m"}`)},
			{ID: "b", Name: "lookup"}}},
		{Role: bulkhead.RoleTool, ToolCallID: "a", Name: "invoke_agent", Content: "done"},
		{Role: bulkhead.RoleTool, ToolCallID: "b", Name: "lookup", Content: ""},
		{Role: bulkhead.RoleAssistant, Content: ""},
		{Role: bulkhead.RoleUser, Content: "third"},
	}}
	if _, err := m.Generate(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	body := fake.Requests()[0].Body
	msgs := body["messages"].([]any)
	if len(msgs) != 3 {
		t.Fatalf("messages = %v", msgs)
	}
	user := msgs[2].(map[string]any)["content"].([]any)
	if len(user) != 3 { // two tool results and "third"
		t.Fatalf("last user message = %v", user)
	}
	tc, _ := json.Marshal(body["toolConfig"])
	if !strings.Contains(string(tc), `"name":"invoke_agent"`) || !strings.Contains(string(tc), `"name":"lookup"`) {
		t.Errorf("toolConfig = %s", tc)
	}
}

func TestStreamDeltasAndUsage(t *testing.T) {
	fake, m := setup(t)
	text := "Streaming works in several pieces, ünïcödé included."
	call := bulkhead.ToolCall{ID: "t9", Name: "lookup", Arguments: json.RawMessage(`{"q":"x"}`)}
	fake.Script(bedrockfake.Reply{Text: text, ToolCalls: []bulkhead.ToolCall{call}, InputTokens: 17, OutputTokens: 11})
	var deltas []string
	req := userReq("us.anthropic.claude-sonnet-4-20250514-v1:0", "go")
	req.Tools = []json.RawMessage{json.RawMessage(`"lookup"`)}
	resp, err := m.GenerateStream(context.Background(), req, func(s string) { deltas = append(deltas, s) })
	if err != nil {
		t.Fatal(err)
	}
	if len(deltas) < 2 || strings.Join(deltas, "") != resp.Text || resp.Text != text {
		t.Fatalf("deltas %q, text %q", deltas, resp.Text)
	}
	if resp.InputTokens != 17 || resp.OutputTokens != 11 {
		t.Fatalf("usage = %d/%d", resp.InputTokens, resp.OutputTokens)
	}
	if len(resp.ToolCalls) != 1 || resp.ToolCalls[0].ID != "t9" || resp.ToolCalls[0].Name != "lookup" || string(resp.ToolCalls[0].Arguments) != `{"q":"x"}` {
		t.Fatalf("tool calls = %+v", resp.ToolCalls)
	}
	if r := fake.Requests(); len(r) != 1 || !r[0].Streamed {
		t.Fatalf("requests = %+v", r)
	}
}

func TestErrorsClassified(t *testing.T) {
	cases := []struct {
		fail bedrockfake.Fail
		code bulkhead.Code
	}{
		{bedrockfake.Fail{Status: 429, Type: "ThrottlingException", Message: "Too many requests, please wait."}, bulkhead.Throttled},
		{bedrockfake.Fail{Status: 400, Type: "ServiceQuotaExceededException", Message: "quota"}, bulkhead.Throttled},
		{bedrockfake.Fail{Status: 500, Type: "InternalServerException", Message: "boom"}, bulkhead.Unavailable},
		{bedrockfake.Fail{Status: 500, Type: "", Message: "no type"}, bulkhead.Unavailable},
		{bedrockfake.Fail{Status: 503, Type: "ServiceUnavailableException", Message: "later"}, bulkhead.Unavailable},
		{bedrockfake.Fail{Status: 429, Type: "ModelNotReadyException", Message: "warming"}, bulkhead.Unavailable},
		{bedrockfake.Fail{Status: 408, Type: "ModelTimeoutException", Message: "slow"}, bulkhead.Unavailable},
		{bedrockfake.Fail{Status: 400, Type: "ValidationException", Message: "The provided model identifier is invalid."}, bulkhead.Invalid},
		{bedrockfake.Fail{Status: 403, Type: "AccessDeniedException", Message: "no access"}, bulkhead.Invalid},
		{bedrockfake.Fail{Status: 404, Type: "ResourceNotFoundException", Message: "no model"}, bulkhead.Invalid},
		{bedrockfake.Fail{Status: 424, Type: "ModelErrorException", Message: "model broke"}, bulkhead.Invalid},
		{bedrockfake.Fail{Status: 418, Type: "", Message: "teapot"}, bulkhead.Invalid},
	}
	for _, stream := range []bool{false, true} {
		for _, c := range cases {
			fake, m := setup(t)
			fake.Script(c.fail)
			var err error
			if stream {
				_, err = m.GenerateStream(context.Background(), userReq("amazon.nova-lite-v1:0", "x"), nil)
			} else {
				_, err = m.Generate(context.Background(), userReq("amazon.nova-lite-v1:0", "x"))
			}
			if got := bulkhead.ErrorCode(err); got != c.code {
				t.Errorf("stream=%v %d %s: code %q, want %q (%v)", stream, c.fail.Status, c.fail.Type, got, c.code, err)
			}
			if c.code == bulkhead.Invalid && c.fail.Type != "" {
				if e := bulkhead.AsError(err); e == nil || !strings.Contains(e.Message, c.fail.Message) {
					t.Errorf("%s: message %v lacks %q", c.fail.Type, err, c.fail.Message)
				}
			}
		}
	}
}

func TestLongMessageBounded(t *testing.T) {
	fake, m := setup(t)
	fake.Script(bedrockfake.Fail{Status: 400, Type: "ValidationException", Message: strings.Repeat("é", 1000)})
	_, err := m.Generate(context.Background(), userReq("amazon.nova-lite-v1:0", "x"))
	e := bulkhead.AsError(err)
	if e == nil || e.Code != bulkhead.Invalid || len(e.Message) > 400 || !strings.Contains(e.Message, "ValidationException: éé") {
		t.Fatalf("error = %v", err)
	}
}

func TestHangWithDeadline(t *testing.T) {
	for _, stream := range []bool{false, true} {
		fake, m := setup(t)
		fake.Script(bedrockfake.Hang{})
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		var err error
		if stream {
			_, err = m.GenerateStream(ctx, userReq("amazon.nova-lite-v1:0", "x"), nil)
		} else {
			_, err = m.Generate(ctx, userReq("amazon.nova-lite-v1:0", "x"))
		}
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("stream=%v: err = %v, want DeadlineExceeded", stream, err)
		}
	}
}

// A request signed with the wrong secret is refused with 403
// InvalidSignatureException. The provider calls that Unavailable: the
// platform's credentials, not the caller's request, are wrong, so the model's
// circuit opens and a fallback model may answer until an operator fixes them.
func TestWrongSecretRefused(t *testing.T) {
	fake, _ := setup(t)
	m := modelFor(fake, "the-wrong-secret")
	_, err := m.Generate(context.Background(), userReq("amazon.nova-lite-v1:0", "x"))
	if e := bulkhead.AsError(err); e == nil || e.Code != bulkhead.Unavailable || !strings.Contains(e.Message, "InvalidSignatureException") {
		t.Fatalf("err = %v", err)
	}
	if n := len(fake.Requests()); n != 0 {
		t.Fatalf("the fake recorded %d refused requests", n)
	}
	other := bedrockfake.New(region, "AKIDSOMEONEELSE", secret)
	defer other.Close()
	_, err = modelFor(other, secret).Generate(context.Background(), userReq("amazon.nova-lite-v1:0", "x"))
	if e := bulkhead.AsError(err); e == nil || !strings.Contains(e.Message, "UnrecognizedClientException") {
		t.Fatalf("unknown key: err = %v", err)
	}
}

func TestEndpointFromEnvironment(t *testing.T) {
	fake := bedrockfake.New(region, keyID, secret)
	defer fake.Close()
	t.Setenv("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", fake.URL())
	t.Setenv("AWS_ENDPOINT_URL", "")
	t.Setenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "")
	// No shared config or profile of the machine takes part.
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "credentials"))
	t.Setenv("AWS_PROFILE", "")
	cfg, err := config.LoadDefaultConfig(context.Background(), config.WithRegion(region),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(keyID, secret, "")))
	if err != nil {
		t.Fatal(err)
	}
	fake.Script(bedrockfake.Reply{Text: "from the environment's endpoint"})
	resp, err := bedrock.NewFromConfig(cfg).Generate(context.Background(), userReq("amazon.nova-lite-v1:0", "x"))
	if err != nil {
		t.Fatal(err)
	}
	if resp.Text != "from the environment's endpoint" || len(fake.Requests()) != 1 {
		t.Fatalf("resp = %+v", resp)
	}
}

func TestNoRetries(t *testing.T) {
	fake, m := setup(t)
	fake.Script(bedrockfake.Fail{Status: 503, Type: "ServiceUnavailableException", Message: "later"})
	_, err := m.Generate(context.Background(), userReq("amazon.nova-lite-v1:0", "x"))
	if !bulkhead.IsCode(err, bulkhead.Unavailable) {
		t.Fatalf("err = %v", err)
	}
	if n := len(fake.Requests()); n != 1 {
		t.Fatalf("the SDK sent %d requests, want 1 (retries are the runtime's)", n)
	}
}

func TestCountTokens(t *testing.T) {
	_, m := setup(t)
	req := userReq("amazon.nova-lite-v1:0", "héllo")
	if got, want := m.CountTokens(req), bulkhead.UTF8InputBound(req, 16); got != want {
		t.Fatalf("CountTokens = %d, want %d", got, want)
	}
}

// A stream that breaks after some text returns what arrived, with upper
// bounds for the tokens the service never reported, and the error.
func TestStreamBrokenAfterOutput(t *testing.T) {
	fake, m := setup(t)
	text := "partial answer that never ends"
	fake.Script(bedrockfake.Cut{Text: text})
	var got strings.Builder
	req := userReq("amazon.nova-lite-v1:0", "go")
	resp, err := m.GenerateStream(context.Background(), req, func(s string) { got.WriteString(s) })
	if !bulkhead.IsCode(err, bulkhead.Unavailable) {
		t.Fatalf("err = %v, want Unavailable", err)
	}
	if resp.Text != text || got.String() != text {
		t.Fatalf("partial text %q, deltas %q", resp.Text, got.String())
	}
	if resp.InputTokens != m.CountTokens(req) || resp.OutputTokens != int64(len(text)) {
		t.Fatalf("tokens %d/%d, want %d/%d", resp.InputTokens, resp.OutputTokens, m.CountTokens(req), len(text))
	}
}

func TestBufferedConnectionBroken(t *testing.T) {
	fake, m := setup(t)
	fake.Script(bedrockfake.Cut{})
	_, err := m.Generate(context.Background(), userReq("amazon.nova-lite-v1:0", "go"))
	if !bulkhead.IsCode(err, bulkhead.Unavailable) {
		t.Fatalf("err = %v, want Unavailable", err)
	}
}

func TestStreamBrokenBeforeOutput(t *testing.T) {
	fake, m := setup(t)
	fake.Script(bedrockfake.Cut{})
	resp, err := m.GenerateStream(context.Background(), userReq("amazon.nova-lite-v1:0", "go"), nil)
	if !bulkhead.IsCode(err, bulkhead.Unavailable) || resp.Text != "" || resp.OutputTokens != 0 {
		t.Fatalf("resp %+v, err = %v", resp, err)
	}
}

func TestHistoryWithUnparsableArguments(t *testing.T) {
	fake, m := setup(t)
	req := bulkhead.ModelRequest{Model: "amazon.nova-lite-v1:0", Messages: []bulkhead.Message{
		{Role: bulkhead.RoleUser, Content: "a"},
		{Role: bulkhead.RoleAssistant, ToolCalls: []bulkhead.ToolCall{{ID: "x", Name: "lookup", Arguments: json.RawMessage(`{"q":`)}}},
		{Role: bulkhead.RoleTool, ToolCallID: "x", Name: "lookup", Content: "error"},
	}}
	if _, err := m.Generate(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	msgs, _ := json.Marshal(fake.Requests()[0].Body["messages"])
	if !strings.Contains(string(msgs), `"input":{"raw_arguments":"{\"q\":"}`) {
		t.Fatalf("messages = %s", msgs)
	}
}
