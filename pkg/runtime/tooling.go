package runtime

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/google/jsonschema-go/jsonschema"

	"github.com/bulkhead-dev/bulkhead/pkg/bulkhead"
	"github.com/bulkhead-dev/bulkhead/pkg/dynamo"
	"github.com/bulkhead-dev/bulkhead/pkg/mcptool"
	"github.com/bulkhead-dev/bulkhead/pkg/toolsig"
)

// Sealer opens the tool secrets sealed at rest (signing secrets, MCP
// headers); the plaintext lives only while a call is made.
type Sealer interface {
	Seal(ctx context.Context, tenantID string, plaintext []byte) ([]byte, error)
	Open(ctx context.Context, tenantID string, box []byte) ([]byte, error)
}

const (
	// maxCallsPerStep bounds the tool calls run for one model reply; the
	// rest are answered with an error. With the per-call share of
	// maxToolResultBytes below, one step's tool results stay within the
	// bytes an execution reserved for them.
	maxCallsPerStep = 16
	// minToolResultBytes is the least a call's result keeps when many
	// calls share a step.
	minToolResultBytes = maxToolResultBytes / maxCallsPerStep
	// mcpListTTL is how long an MCP server's tool list is reused.
	mcpListTTL = time.Minute
)

// tool kinds.
const (
	kindBuiltin = "builtin"
	kindHTTP    = "http"
	kindMCP     = "mcp"
	// kindLegacy: an inline definition stored before tools were defined
	// with POST /v1/tools; it is offered but has nothing to call.
	kindLegacy = "legacy"
)

// toolTarget is one tool an execution may call, as the model sees it and
// as the platform runs it.
type toolTarget struct {
	name    string
	kind    string
	tool    bulkhead.Tool // the tenant's tool (http) or MCP server (mcp)
	mcpTool string
	schema  *jsonschema.Resolved // validates arguments (http, mcp)
	spec    json.RawMessage      // {"name","description","input_schema"}
}

type builtinSpec struct {
	Name        string          `json:"name"`
	Description string          `json:"description"`
	InputSchema json.RawMessage `json:"input_schema"`
}

// builtins are the platform's own tools, as the model is told of them.
var builtins = map[string]builtinSpec{
	bulkhead.ToolInvokeAgent: {bulkhead.ToolInvokeAgent, "Run another agent of this tenant with a message and return its reply.",
		json.RawMessage(`{"type":"object","properties":{"agent_id":{"type":"string","description":"The agent to run."},` +
			`"message":{"type":"string","description":"The message to send it."}},"required":["agent_id","message"]}`)},
	bulkhead.ToolSearchKB: {bulkhead.ToolSearchKB, "Search this tenant's knowledge base; returns the best matching passages, best first.",
		json.RawMessage(`{"type":"object","properties":{"query":{"type":"string","description":"What to look for."},` +
			`"top_k":{"type":"integer","minimum":1,"maximum":20,"description":"How many passages (default 5)."}},"required":["query"]}`)},
	bulkhead.ToolCreateTicket: {bulkhead.ToolCreateTicket, "Open a support ticket for a person to follow up.",
		json.RawMessage(`{"type":"object","properties":{"subject":{"type":"string"},"body":{"type":"string"},` +
			`"priority":{"type":"string","enum":["low","normal","high","urgent"]}},"required":["subject","body"]}`)},
}

// CompileSchema reads a tool's input_schema: a JSON Schema object (draft
// 2020-12 or draft-07) describing a JSON object, with no references the
// platform would have to fetch.
func CompileSchema(raw json.RawMessage) (*jsonschema.Resolved, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(raw, &top); err != nil || top == nil {
		return nil, errors.New("input_schema must be a JSON Schema object")
	}
	var typ string
	if err := json.Unmarshal(top["type"], &typ); err != nil || typ != "object" {
		return nil, errors.New(`input_schema must describe an object ("type": "object")`)
	}
	var s jsonschema.Schema
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, fmt.Errorf("input_schema is not a valid JSON Schema: %v", err)
	}
	rs, err := s.Resolve(nil)
	if err != nil {
		return nil, fmt.Errorf("input_schema is not a valid JSON Schema: %v", err)
	}
	return rs, nil
}

func specOf(name, description string, schema json.RawMessage) json.RawMessage {
	if len(schema) == 0 {
		schema = json.RawMessage(`{"type":"object","properties":{}}`)
	}
	b, _ := json.Marshal(builtinSpec{Name: name, Description: description, InputSchema: schema})
	return b
}

// CheckTools checks an agent's tools as the API receives them: every one
// a name, and every name a built-in, one of the tenant's HTTP tools, or a
// tool its MCP server lists. Errors: Invalid naming the first unknown tool.
func (r *Runner) CheckTools(ctx context.Context, ts *dynamo.TenantStore, tools []json.RawMessage) error {
	_, err := r.resolveTools(ctx, ts, tools, true)
	return err
}

// resolveTools turns an agent's tools into what the model is offered and
// what the platform calls. Strict (the API checking an agent), an unknown
// tool is an error; otherwise (an execution) it is left out and logged: a
// tool deleted after the agent was saved is simply no longer offered.
func (r *Runner) resolveTools(ctx context.Context, ts *dynamo.TenantStore, tools []json.RawMessage, strict bool) (map[string]*toolTarget, error) {
	out := make(map[string]*toolTarget, len(tools))
	names := make([]string, len(tools))
	var lookups []string
	for i, raw := range tools {
		var name string
		if err := json.Unmarshal(raw, &name); err != nil {
			var def struct {
				Name string `json:"name"`
			}
			if strict || json.Unmarshal(raw, &def) != nil || def.Name == "" {
				return nil, bulkhead.Errorf(bulkhead.Invalid, "tools[%d] must be a tool name (define tools with POST /v1/tools)", i)
			}
			out[def.Name] = &toolTarget{name: def.Name, kind: kindLegacy, spec: raw}
			continue
		}
		names[i] = name
		if b, ok := builtins[name]; ok {
			out[name] = &toolTarget{name: name, kind: kindBuiltin, spec: specOf(b.Name, b.Description, b.InputSchema)}
			continue
		}
		if server, _, ok := bulkhead.SplitMCPToolName(name); ok {
			lookups = append(lookups, server)
		} else {
			lookups = append(lookups, name)
		}
	}
	if len(lookups) == 0 {
		return out, nil
	}
	stored, err := ts.ToolsByName(ctx, lookups)
	if err != nil {
		return nil, err
	}
	unknown := func(i int, why string) error {
		if strict {
			return bulkhead.Errorf(bulkhead.Invalid, "tools[%d]: %s", i, why)
		}
		r.logger().WarnContext(ctx, "agent tool left out", "tenant_id", ts.TenantID(), "tool", names[i], "reason", why)
		return nil
	}
	for i, name := range names {
		if name == "" || out[name] != nil {
			continue
		}
		if t, ok := stored[name]; ok && t.Type == bulkhead.ToolHTTP {
			rs, err := r.schema(t)
			if err != nil {
				if err := unknown(i, fmt.Sprintf("tool %q has an unusable input_schema: %v", name, err)); err != nil {
					return nil, err
				}
				continue
			}
			out[name] = &toolTarget{name: name, kind: kindHTTP, tool: t, schema: rs, spec: specOf(name, t.Description, t.InputSchema)}
			continue
		}
		server, tool, ok := bulkhead.SplitMCPToolName(name)
		t, found := stored[server]
		if !ok || !found || t.Type != bulkhead.ToolMCP {
			if err := unknown(i, fmt.Sprintf("unknown tool %q", name)); err != nil {
				return nil, err
			}
			continue
		}
		listed, err := r.mcpTools(ctx, ts.TenantID(), t)
		if err != nil {
			if err := unknown(i, fmt.Sprintf("MCP server %q could not list its tools: %v", server, err)); err != nil {
				return nil, err
			}
			continue
		}
		mt, ok := listed[tool]
		if !ok {
			if err := unknown(i, fmt.Sprintf("MCP server %q has no tool %q", server, tool)); err != nil {
				return nil, err
			}
			continue
		}
		target := &toolTarget{name: name, kind: kindMCP, tool: t, mcpTool: tool, spec: specOf(name, mt.Description, mt.InputSchema)}
		if len(mt.InputSchema) > 0 {
			// A server's schema the validator cannot read is left to the
			// server to enforce.
			target.schema, _ = CompileSchema(mt.InputSchema)
		}
		out[name] = target
	}
	return out, nil
}

// specs is what the model is offered, in the agent's order.
func specs(agentTools []json.RawMessage, targets map[string]*toolTarget) []json.RawMessage {
	out := make([]json.RawMessage, 0, len(targets))
	for _, raw := range agentTools {
		name := toolName(raw)
		if t, ok := targets[name]; ok {
			out = append(out, t.spec)
		}
	}
	return out
}

func toolName(raw json.RawMessage) string {
	var name string
	if json.Unmarshal(raw, &name) == nil {
		return name
	}
	var def struct {
		Name string `json:"name"`
	}
	_ = json.Unmarshal(raw, &def)
	return def.Name
}

// schemaCache keeps compiled input schemas by tool id and version.
type schemaCache struct {
	mu sync.Mutex
	m  map[string]*jsonschema.Resolved
}

func (r *Runner) schema(t bulkhead.Tool) (*jsonschema.Resolved, error) {
	k := fmt.Sprintf("%s/%d", t.ID, t.Version)
	r.schemas.mu.Lock()
	rs, ok := r.schemas.m[k]
	r.schemas.mu.Unlock()
	if ok {
		return rs, nil
	}
	rs, err := CompileSchema(t.InputSchema)
	if err != nil {
		return nil, err
	}
	r.schemas.mu.Lock()
	if r.schemas.m == nil || len(r.schemas.m) >= 4096 {
		r.schemas.m = map[string]*jsonschema.Resolved{}
	}
	r.schemas.m[k] = rs
	r.schemas.mu.Unlock()
	return rs, nil
}

// mcpCache keeps MCP servers' tool lists for mcpListTTL, by tenant, server
// id and version (a changed registration is listed anew).
type mcpCache struct {
	mu sync.Mutex
	m  map[string]mcpEntry
}

type mcpEntry struct {
	tools   map[string]mcptool.Tool
	expires time.Time
}

func (r *Runner) mcpTools(ctx context.Context, tenantID string, t bulkhead.Tool) (map[string]mcptool.Tool, error) {
	k := fmt.Sprintf("%s/%s/%d", tenantID, t.ID, t.Version)
	now := time.Now()
	r.mcpLists.mu.Lock()
	e, ok := r.mcpLists.m[k]
	r.mcpLists.mu.Unlock()
	if ok && now.Before(e.expires) {
		return e.tools, nil
	}
	if r.MCP == nil {
		return nil, errors.New("MCP servers are not enabled on this platform")
	}
	headers, err := r.openHeaders(ctx, tenantID, t)
	if err != nil {
		return nil, err
	}
	listCtx, cancel := context.WithTimeout(ctx, t.Timeout)
	defer cancel()
	list, _, err := r.MCP.ListTools(listCtx, mcptool.Server{Name: t.Name, URL: t.URL, Headers: headers})
	if err != nil {
		return nil, err
	}
	tools := make(map[string]mcptool.Tool, len(list))
	for _, mt := range list {
		tools[mt.Name] = mt
	}
	r.mcpLists.mu.Lock()
	if r.mcpLists.m == nil || len(r.mcpLists.m) >= 1024 {
		r.mcpLists.m = map[string]mcpEntry{}
	}
	r.mcpLists.m[k] = mcpEntry{tools: tools, expires: now.Add(mcpListTTL)}
	r.mcpLists.mu.Unlock()
	return tools, nil
}

func (r *Runner) openHeaders(ctx context.Context, tenantID string, t bulkhead.Tool) (map[string]string, error) {
	if len(t.Headers) == 0 {
		return nil, nil
	}
	if r.Sealer == nil {
		return nil, errors.New("tool secrets cannot be opened on this platform")
	}
	plain, err := r.Sealer.Open(ctx, tenantID, t.Headers)
	if err != nil {
		return nil, errors.New("the server's headers could not be opened")
	}
	var h map[string]string
	if err := json.Unmarshal(plain, &h); err != nil {
		return nil, errors.New("the server's headers could not be read")
	}
	return h, nil
}

// toolCall is what one call needs to know of its execution.
type toolCall struct {
	exec  *bulkhead.Execution
	depth int64
	call  bulkhead.ToolCall
}

// toolOutcome is how a tool call went, in typed fields only (what an
// execution log keeps): the error class of a failed call (empty when it
// succeeded) and the HTTP status an HTTP tool answered.
type toolOutcome struct {
	class      string
	httpStatus int64
}

func (o toolOutcome) ok() bool { return o.class == "" }

// failed is a failed call's result for the model and its class.
func failed(class, msg string) (string, toolOutcome) {
	return toolError(msg), toolOutcome{class: class}
}

// callTool runs one call the model asked for and returns its result for the
// model and how it went. A tool's failure is a result, never the
// execution's failure: the model decides what to do with it.
func (r *Runner) callTool(ctx context.Context, st stores, targets map[string]*toolTarget, c toolCall) (string, toolOutcome) {
	t, ok := targets[c.call.Name]
	if !ok {
		return failed(bulkhead.ToolErrUnknown, fmt.Sprintf("tool %q does not exist", c.call.Name))
	}
	if t.schema != nil {
		if err := validateArgs(t.schema, c.call.Arguments); err != nil {
			return failed(bulkhead.ToolErrArguments, "invalid arguments: "+err.Error())
		}
	}
	switch t.kind {
	case kindBuiltin:
		out := r.runTool(ctx, st, c)
		if isToolError(out) {
			return out, toolOutcome{class: bulkhead.ToolErrFailed}
		}
		return out, toolOutcome{}
	case kindHTTP:
		return r.callHTTPTool(ctx, st.ts.TenantID(), t, c)
	case kindMCP:
		return r.callMCPTool(ctx, st.ts.TenantID(), t, c)
	default:
		return failed(bulkhead.ToolErrUnavailable, fmt.Sprintf("tool %q has nothing to call: define it with POST /v1/tools", c.call.Name))
	}
}

func validateArgs(rs *jsonschema.Resolved, args json.RawMessage) error {
	var v any
	if len(bytes.TrimSpace(args)) == 0 {
		args = json.RawMessage(`{}`)
	}
	if err := json.Unmarshal(args, &v); err != nil {
		return errors.New("arguments must be a JSON object")
	}
	if _, ok := v.(map[string]any); !ok {
		return errors.New("arguments must be a JSON object")
	}
	return rs.Validate(v)
}

func isToolError(out string) bool {
	var e struct {
		Error *string `json:"error"`
	}
	return json.Unmarshal([]byte(out), &e) == nil && e.Error != nil
}

// callTimeout is the tool's own timeout, within what the execution has left.
func callTimeout(ctx context.Context, t bulkhead.Tool) (context.Context, context.CancelFunc) {
	d := t.Timeout
	if d <= 0 || d > bulkhead.MaxToolTimeout {
		d = bulkhead.DefaultToolTimeout
	}
	return context.WithTimeout(ctx, d)
}

// callHTTPTool makes the signed POST to a tenant's HTTP tool. It is not
// retried once sent: tools need not be idempotent, and call_id lets a
// receiver recognise a call it has seen.
func (r *Runner) callHTTPTool(ctx context.Context, tenantID string, t *toolTarget, c toolCall) (string, toolOutcome) {
	if r.ToolHTTP == nil {
		return failed(bulkhead.ToolErrUnavailable, "tenant tools are not enabled on this platform")
	}
	args := c.call.Arguments
	if len(bytes.TrimSpace(args)) == 0 {
		args = json.RawMessage(`{}`)
	}
	body, err := json.Marshal(map[string]any{
		"tool": t.name, "arguments": args, "call_id": c.call.ID, "execution_id": c.exec.ID,
		"agent_id": c.exec.AgentID, "conversation_id": c.exec.ConversationID,
	})
	if err != nil {
		return failed(bulkhead.ToolErrArguments, "arguments must be a JSON object")
	}
	var secrets []string
	for _, s := range t.tool.SigningSecrets(r.now()) {
		if r.Sealer == nil {
			return failed(bulkhead.ToolErrUnavailable, "the tool's signing secret cannot be opened on this platform")
		}
		plain, err := r.Sealer.Open(ctx, tenantID, s.Box)
		if err != nil {
			r.logger().ErrorContext(ctx, "open a tool's signing secret", "tenant_id", tenantID, "tool_id", t.tool.ID, "error", err)
			return failed(bulkhead.ToolErrUnavailable, "the tool's signing secret could not be opened")
		}
		secrets = append(secrets, string(plain))
	}
	callCtx, cancel := callTimeout(ctx, t.tool)
	defer cancel()
	req, err := http.NewRequestWithContext(callCtx, http.MethodPost, t.tool.URL, bytes.NewReader(body))
	if err != nil {
		return failed(bulkhead.ToolErrUnreachable, "the tool's URL is not usable")
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Bulkhead-Tools/1")
	// Signed with the real time, not the platform's clock: receivers check
	// it against theirs.
	req.Header.Set(toolsig.Header, toolsig.Sign(secrets, time.Now(), body))
	resp, err := r.ToolHTTP.Do(req)
	if err != nil {
		return failed(callErrorClass(callCtx), describeCallError(callCtx, err))
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, bulkhead.MaxToolAnswerBytes+1))
	code := int64(resp.StatusCode)
	switch {
	case err != nil:
		return toolError(describeCallError(callCtx, err)), toolOutcome{class: callErrorClass(callCtx), httpStatus: code}
	case len(answer) > bulkhead.MaxToolAnswerBytes:
		return toolError(fmt.Sprintf("the tool's answer is larger than %d bytes", bulkhead.MaxToolAnswerBytes)), toolOutcome{class: bulkhead.ToolErrTooLarge, httpStatus: code}
	case resp.StatusCode < 200 || resp.StatusCode > 299:
		return toolError(fmt.Sprintf("the tool answered HTTP %d: %s", resp.StatusCode, truncateUTF8(strings.ToValidUTF8(string(answer), "\uFFFD"), 200))),
			toolOutcome{class: bulkhead.ToolErrHTTPStatus, httpStatus: code}
	case !utf8.Valid(answer):
		return toolError("the tool's answer is not UTF-8 text"), toolOutcome{class: bulkhead.ToolErrNotText, httpStatus: code}
	}
	return string(answer), toolOutcome{httpStatus: code}
}

// callErrorClass is the class of a call that got no answer.
func callErrorClass(ctx context.Context) string {
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return bulkhead.ToolErrTimeout
	case ctx.Err() != nil:
		return bulkhead.ToolErrStopped
	}
	return bulkhead.ToolErrUnreachable
}

func describeCallError(ctx context.Context, err error) string {
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return "the tool did not answer in time"
	case ctx.Err() != nil:
		return "the execution stopped before the tool answered"
	}
	msg := err.Error()
	var ue interface{ Unwrap() error }
	if errors.As(err, &ue) {
		if inner := ue.Unwrap(); inner != nil {
			msg = inner.Error()
		}
	}
	return "the tool could not be called: " + msg
}

func (r *Runner) callMCPTool(ctx context.Context, tenantID string, t *toolTarget, c toolCall) (string, toolOutcome) {
	if r.MCP == nil {
		return failed(bulkhead.ToolErrUnavailable, "MCP servers are not enabled on this platform")
	}
	headers, err := r.openHeaders(ctx, tenantID, t.tool)
	if err != nil {
		return failed(bulkhead.ToolErrUnavailable, err.Error())
	}
	callCtx, cancel := callTimeout(ctx, t.tool)
	defer cancel()
	args := c.call.Arguments
	if len(bytes.TrimSpace(args)) == 0 {
		args = json.RawMessage(`{}`)
	}
	res, err := r.MCP.CallTool(callCtx, mcptool.Server{Name: t.tool.Name, URL: t.tool.URL, Headers: headers}, t.mcpTool, args)
	if err != nil {
		if callCtx.Err() != nil {
			return failed(callErrorClass(callCtx), describeCallError(callCtx, err))
		}
		return failed(bulkhead.ToolErrUnreachable, "the MCP server failed: "+err.Error())
	}
	if res.IsError {
		return failed(bulkhead.ToolErrFailed, res.Text)
	}
	return res.Text, toolOutcome{}
}
