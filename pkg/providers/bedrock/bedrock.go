// Package bedrock is the Amazon Bedrock model provider: the Converse and
// ConverseStream APIs of the Bedrock runtime, with tool use, the system
// prompt, the output cap and the usage the service reports.
package bedrock

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/document"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/bulkhead-dev/bulkhead/pkg/bulkhead"
)

// Model calls Bedrock models through one runtime client.
type Model struct {
	client *bedrockruntime.Client
}

var (
	_ bulkhead.Model          = (*Model)(nil)
	_ bulkhead.StreamingModel = (*Model)(nil)
	_ bulkhead.TokenCounter   = (*Model)(nil)
)

// New wraps a runtime client. The client should not retry (see NewFromConfig).
func New(client *bedrockruntime.Client) *Model { return &Model{client: client} }

// NewFromConfig builds the runtime client from an AWS configuration. Retries
// are off: the execution runtime owns retries, backoff and per-model circuits
// inside the execution's wall time, so the SDK makes exactly one attempt. The
// endpoint is the SDK's own: AWS_ENDPOINT_URL_BEDROCK_RUNTIME (resolved by
// config.LoadDefaultConfig) or the region's.
func NewFromConfig(cfg aws.Config, optFns ...func(*bedrockruntime.Options)) *Model {
	fns := append([]func(*bedrockruntime.Options){func(o *bedrockruntime.Options) {
		o.RetryMaxAttempts = 1
		o.Retryer = aws.NopRetryer{}
	}}, optFns...)
	return New(bedrockruntime.NewFromConfig(cfg, fns...))
}

// CountTokens is an upper bound on the request's input tokens: Bedrock's
// models use byte-level BPE tokenizers, which never make more tokens than
// UTF-8 bytes, plus chat-template framing per message.
func (m *Model) CountTokens(req bulkhead.ModelRequest) int64 {
	return bulkhead.UTF8InputBound(req, 16)
}

// Generate sends the request to Converse.
func (m *Model) Generate(ctx context.Context, req bulkhead.ModelRequest) (bulkhead.ModelResponse, error) {
	in, err := converseInput(req)
	if err != nil {
		return bulkhead.ModelResponse{}, err
	}
	out, err := m.client.Converse(ctx, in)
	if err != nil {
		return bulkhead.ModelResponse{}, classify(ctx, err)
	}
	var resp bulkhead.ModelResponse
	if msg, ok := out.Output.(*types.ConverseOutputMemberMessage); ok {
		var text strings.Builder
		for _, b := range msg.Value.Content {
			switch b := b.(type) {
			case *types.ContentBlockMemberText:
				text.WriteString(b.Value)
			case *types.ContentBlockMemberToolUse:
				args, err := documentJSON(b.Value.Input)
				if err != nil {
					return bulkhead.ModelResponse{}, &bulkhead.Error{Code: bulkhead.Unavailable, Message: "bedrock: unreadable tool input", Err: err}
				}
				resp.ToolCalls = append(resp.ToolCalls, bulkhead.ToolCall{ID: aws.ToString(b.Value.ToolUseId), Name: aws.ToString(b.Value.Name), Arguments: args})
			}
		}
		resp.Text = text.String()
	}
	if u := out.Usage; u != nil {
		resp.InputTokens, resp.OutputTokens = int64(aws.ToInt32(u.InputTokens)), int64(aws.ToInt32(u.OutputTokens))
	}
	return resp, nil
}

func documentJSON(d document.Interface) (json.RawMessage, error) {
	if d == nil {
		return json.RawMessage("{}"), nil
	}
	b, err := d.MarshalSmithyDocument()
	if err != nil {
		return nil, err
	}
	return json.RawMessage(b), nil
}

// request is what Converse and ConverseStream share.
type request struct {
	system   []types.SystemContentBlock
	messages []types.Message
	tools    *types.ToolConfiguration
	infer    *types.InferenceConfiguration
}

func converseInput(req bulkhead.ModelRequest) (*bedrockruntime.ConverseInput, error) {
	r, err := build(req)
	if err != nil {
		return nil, err
	}
	return &bedrockruntime.ConverseInput{ModelId: aws.String(req.Model), System: r.system, Messages: r.messages,
		ToolConfig: r.tools, InferenceConfig: r.infer}, nil
}

func converseStreamInput(req bulkhead.ModelRequest) (*bedrockruntime.ConverseStreamInput, error) {
	r, err := build(req)
	if err != nil {
		return nil, err
	}
	return &bedrockruntime.ConverseStreamInput{ModelId: aws.String(req.Model), System: r.system, Messages: r.messages,
		ToolConfig: r.tools, InferenceConfig: r.infer}, nil
}

// build maps the platform's request to Converse's: tool results travel in
// user messages, and consecutive messages of one role are merged because
// Converse wants user and assistant to alternate.
func build(req bulkhead.ModelRequest) (request, error) {
	var r request
	if req.SystemPrompt != "" {
		r.system = []types.SystemContentBlock{&types.SystemContentBlockMemberText{Value: req.SystemPrompt}}
	}
	if req.MaxOutputTokens > 0 {
		r.infer = &types.InferenceConfiguration{MaxTokens: aws.Int32(int32(min(req.MaxOutputTokens, 1<<31-1)))}
	}
	var used []string // tools named by the conversation's tool blocks
	for _, msg := range req.Messages {
		role := types.ConversationRoleUser
		var blocks []types.ContentBlock
		switch msg.Role {
		case bulkhead.RoleUser:
			if msg.Content != "" {
				blocks = append(blocks, &types.ContentBlockMemberText{Value: msg.Content})
			}
		case bulkhead.RoleAssistant:
			role = types.ConversationRoleAssistant
			if msg.Content != "" {
				blocks = append(blocks, &types.ContentBlockMemberText{Value: msg.Content})
			}
			for _, c := range msg.ToolCalls {
				var input any = map[string]any{}
				if len(c.Arguments) > 0 && json.Unmarshal(c.Arguments, &input) != nil {
					// Arguments another provider produced that are not JSON
					// still travel, so the history stays sendable.
					input = map[string]any{"raw_arguments": string(c.Arguments)}
				}
				blocks = append(blocks, &types.ContentBlockMemberToolUse{Value: types.ToolUseBlock{
					ToolUseId: aws.String(c.ID), Name: aws.String(c.Name), Input: document.NewLazyDocument(input)}})
				used = append(used, c.Name)
			}
		case bulkhead.RoleTool:
			content := msg.Content
			if content == "" {
				content = "(no output)"
			}
			blocks = append(blocks, &types.ContentBlockMemberToolResult{Value: types.ToolResultBlock{
				ToolUseId: aws.String(msg.ToolCallID),
				Content:   []types.ToolResultContentBlock{&types.ToolResultContentBlockMemberText{Value: content}}}})
			if msg.Name != "" {
				used = append(used, msg.Name)
			}
		default:
			return r, bulkhead.Errorf(bulkhead.Invalid, "bedrock: unknown message role %q", msg.Role)
		}
		if len(blocks) == 0 {
			continue
		}
		if n := len(r.messages); n > 0 && r.messages[n-1].Role == role {
			r.messages[n-1].Content = append(r.messages[n-1].Content, blocks...)
			continue
		}
		r.messages = append(r.messages, types.Message{Role: role, Content: blocks})
	}
	tools, err := toolConfig(req.Tools, used)
	if err != nil {
		return r, err
	}
	r.tools = tools
	return r, nil
}

// toolConfig lists the agent's tools: a tool is a name ("search_kb") or a
// definition {"name", "description", "input_schema" (or "inputSchema" or
// "parameters")}; a bare name gets an empty object schema. Tools the
// conversation used but the request does not list are added by name, since
// Bedrock refuses tool blocks without a tool configuration naming them.
func toolConfig(raw []json.RawMessage, used []string) (*types.ToolConfiguration, error) {
	var tools []types.Tool
	seen := map[string]bool{}
	add := func(name, desc string, schema any) {
		if seen[name] || name == "" {
			return
		}
		seen[name] = true
		if schema == nil {
			schema = map[string]any{"type": "object", "properties": map[string]any{}}
		}
		spec := types.ToolSpecification{Name: aws.String(name), InputSchema: &types.ToolInputSchemaMemberJson{Value: document.NewLazyDocument(schema)}}
		if desc != "" {
			spec.Description = aws.String(desc)
		}
		tools = append(tools, &types.ToolMemberToolSpec{Value: spec})
	}
	for i, t := range raw {
		var name string
		if err := json.Unmarshal(t, &name); err == nil {
			add(name, "", nil)
			continue
		}
		var def struct {
			Name        string         `json:"name"`
			Description string         `json:"description"`
			InputSchema map[string]any `json:"input_schema"`
			Camel       map[string]any `json:"inputSchema"`
			Parameters  map[string]any `json:"parameters"`
		}
		if err := json.Unmarshal(t, &def); err != nil || def.Name == "" {
			return nil, bulkhead.Errorf(bulkhead.Invalid, "bedrock: tools[%d] must be a tool name or an object with a \"name\"", i)
		}
		var schema any
		switch {
		case def.InputSchema != nil:
			schema = def.InputSchema
		case def.Camel != nil:
			schema = def.Camel
		case def.Parameters != nil:
			schema = def.Parameters
		}
		add(def.Name, def.Description, schema)
	}
	for _, name := range used {
		add(name, "", nil)
	}
	if len(tools) == 0 {
		return nil, nil
	}
	return &types.ToolConfiguration{Tools: tools}, nil
}

// maxMessage bounds the service's message carried in an error.
const maxMessage = 300

// classify maps a Bedrock failure to the platform's codes: Throttled and
// Unavailable are worth retrying, Invalid is a request the service refused.
// When ctx has ended the error wraps ctx.Err().
func classify(ctx context.Context, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		if !errors.Is(err, ctxErr) {
			err = fmt.Errorf("%w (%w)", ctxErr, err)
		}
		return &bulkhead.Error{Code: bulkhead.Unavailable, Message: "bedrock: " + ctxErr.Error(), Err: err}
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return &bulkhead.Error{Code: bulkhead.Unavailable, Message: "bedrock: request cancelled", Err: err}
	}
	var api smithy.APIError
	if errors.As(err, &api) {
		msg := "bedrock: " + api.ErrorCode()
		if m := api.ErrorMessage(); m != "" {
			msg += ": " + truncate(m, maxMessage)
		}
		return &bulkhead.Error{Code: apiCode(api.ErrorCode(), status(err)), Message: msg, Err: err}
	}
	if s := status(err); s != 0 {
		return &bulkhead.Error{Code: statusCode(s), Message: fmt.Sprintf("bedrock: HTTP %d", s), Err: err}
	}
	var netErr net.Error
	var opErr *net.OpError
	if errors.As(err, &netErr) || errors.As(err, &opErr) {
		return &bulkhead.Error{Code: bulkhead.Unavailable, Message: "bedrock: cannot reach the service", Err: err}
	}
	// Transport failures the SDK does not type (a broken connection, an
	// unreadable response) are the service being unreachable.
	return &bulkhead.Error{Code: bulkhead.Unavailable, Message: "bedrock: request failed", Err: err}
}

func status(err error) int {
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

func apiCode(code string, httpStatus int) bulkhead.Code {
	switch code {
	case "ThrottlingException", "ServiceQuotaExceededException", "TooManyRequestsException":
		return bulkhead.Throttled
	case "InternalServerException", "ServiceUnavailableException", "ModelNotReadyException", "ModelTimeoutException",
		"ModelStreamErrorException":
		return bulkhead.Unavailable
	case "UnrecognizedClientException", "InvalidSignatureException", "SignatureDoesNotMatch", "ExpiredTokenException",
		"InvalidClientTokenId", "IncompleteSignature", "MissingAuthenticationToken":
		// The platform's credentials were refused: not the caller's request
		// but this deployment's Bedrock being unusable until an operator
		// fixes it. Unavailable lets the model's circuit open and a fallback
		// model answer.
		return bulkhead.Unavailable
	case "ValidationException", "AccessDeniedException", "ResourceNotFoundException", "ModelErrorException":
		return bulkhead.Invalid
	}
	if httpStatus == 0 {
		return bulkhead.Unavailable
	}
	return statusCode(httpStatus)
}

func statusCode(s int) bulkhead.Code {
	switch {
	case s == 429:
		return bulkhead.Throttled
	case s >= 500:
		return bulkhead.Unavailable
	case s >= 400:
		return bulkhead.Invalid
	}
	return bulkhead.Unavailable
}

// truncate cuts s to at most n bytes on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s + "..."
}
