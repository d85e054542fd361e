package api

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"time"

	"github.com/bulkhead-dev/bulkhead/pkg/bulkhead"
	"github.com/bulkhead-dev/bulkhead/pkg/dynamo"
	"github.com/bulkhead-dev/bulkhead/pkg/mcptool"
	"github.com/bulkhead-dev/bulkhead/pkg/runtime"
	"github.com/bulkhead-dev/bulkhead/pkg/toolsig"
)

// toolBody is POST /v1/tools and PATCH /v1/tools/{tool_id}.
type toolBody struct {
	Type        *string            `json:"type"`
	Name        *string            `json:"name"`
	Description *string            `json:"description"`
	InputSchema *json.RawMessage   `json:"input_schema"`
	URL         *string            `json:"url"`
	TimeoutMS   *int64             `json:"timeout_ms"`
	Headers     *map[string]string `json:"headers"`
}

type toolView struct {
	ToolID      string          `json:"tool_id"`
	Type        string          `json:"type"`
	Name        string          `json:"name"`
	Description string          `json:"description"`
	InputSchema json.RawMessage `json:"input_schema,omitempty"`
	URL         string          `json:"url"`
	TimeoutMS   int64           `json:"timeout_ms"`
	// HeaderNames are an MCP server's header names; values are never shown.
	HeaderNames []string `json:"header_names,omitempty"`
	// SigningSecrets are the prefixes of the secrets that sign calls now.
	SigningSecrets []secretView `json:"signing_secrets,omitempty"`
	Version        int64        `json:"version"`
	CreatedAt      string       `json:"created_at"`
	UpdatedAt      string       `json:"updated_at"`
}

type secretView struct {
	Prefix    string  `json:"prefix"`
	ExpiresAt *string `json:"expires_at"`
}

func (a *API) viewTool(t bulkhead.Tool) toolView {
	v := toolView{ToolID: t.ID, Type: string(t.Type), Name: t.Name, Description: t.Description, InputSchema: t.InputSchema,
		URL: t.URL, TimeoutMS: t.Timeout.Milliseconds(), HeaderNames: t.HeaderNames, Version: t.Version,
		CreatedAt: timestamp(t.CreatedAt), UpdatedAt: timestamp(t.UpdatedAt)}
	for _, s := range t.SigningSecrets(a.now()) {
		sv := secretView{Prefix: s.Prefix}
		if !s.ExpiresAt.IsZero() {
			e := timestamp(s.ExpiresAt)
			sv.ExpiresAt = &e
		}
		v.SigningSecrets = append(v.SigningSecrets, sv)
	}
	return v
}

// secretPrefixLen is how much of a signing secret its views show.
const secretPrefixLen = len(toolsig.SecretPrefix) + 6

// apply checks the body's fields onto t; create says which are required.
func (a *API) applyTool(ctx context.Context, tenantID string, b toolBody, t *bulkhead.Tool, create bool) error {
	if create {
		t.Type = bulkhead.ToolHTTP
		if b.Type != nil {
			t.Type = bulkhead.ToolType(*b.Type)
		}
		if t.Type != bulkhead.ToolHTTP && t.Type != bulkhead.ToolMCP {
			return bulkhead.Errorf(bulkhead.Invalid, `type must be "http" or "mcp"`)
		}
		switch {
		case b.Name == nil:
			return bulkhead.Errorf(bulkhead.Invalid, "name is required")
		case b.URL == nil:
			return bulkhead.Errorf(bulkhead.Invalid, "url is required")
		case t.Type == bulkhead.ToolHTTP && b.InputSchema == nil:
			return bulkhead.Errorf(bulkhead.Invalid, "input_schema is required")
		}
		if !bulkhead.ValidToolNameFor(t.Type, *b.Name) {
			if t.Type == bulkhead.ToolMCP {
				return bulkhead.Errorf(bulkhead.Invalid, "an MCP server's name is 1-32 letters, digits and -")
			}
			return bulkhead.Errorf(bulkhead.Invalid, "name is 1-64 letters, digits, _ and - (and no %q)", bulkhead.MCPToolSeparator)
		}
		if bulkhead.BuiltinTool(*b.Name) {
			return bulkhead.Errorf(bulkhead.Invalid, "name %q is a built-in tool's", *b.Name)
		}
		t.Name = *b.Name
		t.Timeout = bulkhead.DefaultToolTimeout
	} else {
		if b.Type != nil && bulkhead.ToolType(*b.Type) != t.Type {
			return bulkhead.Errorf(bulkhead.Invalid, "a tool's type cannot change")
		}
		if b.Name != nil && *b.Name != t.Name {
			return bulkhead.Errorf(bulkhead.Invalid, "a tool's name cannot change (agents name it); create another tool")
		}
	}
	if b.Description != nil {
		if bulkhead.JSONStringLen(*b.Description) > bulkhead.MaxToolDescription {
			return bulkhead.Errorf(bulkhead.Invalid, "description must be at most %d bytes JSON-encoded", bulkhead.MaxToolDescription)
		}
		t.Description = *b.Description
	}
	if b.InputSchema != nil {
		if t.Type == bulkhead.ToolMCP {
			return bulkhead.Errorf(bulkhead.Invalid, "an MCP server's tools bring their own input schemas")
		}
		var c bytes.Buffer
		if err := json.Compact(&c, *b.InputSchema); err != nil {
			return bulkhead.Errorf(bulkhead.Invalid, "input_schema must be a JSON Schema object")
		}
		enc, _ := json.Marshal(json.RawMessage(c.Bytes())) // escaped as responses carry it
		if len(enc) > bulkhead.MaxToolSchemaBytes {
			return bulkhead.Errorf(bulkhead.Invalid, "input_schema must be at most %d bytes JSON-encoded", bulkhead.MaxToolSchemaBytes)
		}
		if _, err := runtime.CompileSchema(c.Bytes()); err != nil {
			return bulkhead.Errorf(bulkhead.Invalid, "%s", err.Error())
		}
		t.InputSchema = json.RawMessage(c.Bytes())
	}
	if b.URL != nil {
		if len(*b.URL) > bulkhead.MaxToolURLBytes {
			return bulkhead.Errorf(bulkhead.Invalid, "url must be at most %d bytes", bulkhead.MaxToolURLBytes)
		}
		if a.guard == nil {
			return bulkhead.Errorf(bulkhead.Unavailable, "tenant tools are not enabled on this platform")
		}
		u, err := a.guard.CheckURL(*b.URL)
		if err != nil {
			return bulkhead.Errorf(bulkhead.Invalid, "url: %s", err.Error())
		}
		t.URL = u.String()
	}
	if b.TimeoutMS != nil {
		if *b.TimeoutMS < 1 || *b.TimeoutMS > bulkhead.MaxToolTimeout.Milliseconds() {
			return bulkhead.Errorf(bulkhead.Invalid, "timeout_ms must be from 1 to %d", bulkhead.MaxToolTimeout.Milliseconds())
		}
		t.Timeout = time.Duration(*b.TimeoutMS) * time.Millisecond
	}
	if b.Headers != nil {
		if t.Type != bulkhead.ToolMCP {
			return bulkhead.Errorf(bulkhead.Invalid, "headers are for MCP servers; an HTTP tool's calls are signed")
		}
		if err := a.sealHeaders(ctx, tenantID, *b.Headers, t); err != nil {
			return err
		}
	}
	if t.Type == bulkhead.ToolMCP {
		if err := (mcptool.Server{Name: t.Name, URL: t.URL}).Validate(); err != nil {
			return bulkhead.Errorf(bulkhead.Invalid, "%s", err.Error())
		}
	}
	return nil
}

// sealHeaders checks an MCP server's headers and keeps them sealed; only
// their names stay readable.
func (a *API) sealHeaders(ctx context.Context, tenantID string, h map[string]string, t *bulkhead.Tool) error {
	if len(h) > bulkhead.MaxToolHeaders {
		return bulkhead.Errorf(bulkhead.Invalid, "at most %d headers", bulkhead.MaxToolHeaders)
	}
	total := 0
	names := make([]string, 0, len(h))
	for k, v := range h {
		total += len(k) + len(v)
		names = append(names, http.CanonicalHeaderKey(k))
	}
	if total > bulkhead.MaxToolHeaderBytes {
		return bulkhead.Errorf(bulkhead.Invalid, "headers must be at most %d bytes together", bulkhead.MaxToolHeaderBytes)
	}
	if err := mcptool.ValidateHeaders(h); err != nil {
		return bulkhead.Errorf(bulkhead.Invalid, "%s", err.Error())
	}
	slices.Sort(names)
	t.HeaderNames, t.Headers = nil, nil
	if len(h) == 0 {
		return nil
	}
	plain, _ := json.Marshal(h)
	box, err := a.seal(ctx, tenantID, plain)
	if err != nil {
		return err
	}
	t.HeaderNames, t.Headers = names, box
	return nil
}

func (a *API) seal(ctx context.Context, tenantID string, plain []byte) ([]byte, error) {
	if a.sealer == nil {
		return nil, bulkhead.Errorf(bulkhead.Unavailable, "tool secrets cannot be sealed on this platform")
	}
	box, err := a.sealer.Seal(ctx, tenantID, plain)
	if err != nil {
		return nil, &bulkhead.Error{Code: bulkhead.Unavailable, Message: "tool secrets cannot be sealed now; retry", Err: err}
	}
	return box, nil
}

// newSigningSecret makes a signing secret and its sealed form.
func (a *API) newSigningSecret(ctx context.Context, tenantID string) (string, bulkhead.SealedSecret, error) {
	secret := toolsig.NewSecret()
	box, err := a.seal(ctx, tenantID, []byte(secret))
	if err != nil {
		return "", bulkhead.SealedSecret{}, err
	}
	return secret, bulkhead.SealedSecret{Box: box, Prefix: secret[:secretPrefixLen]}, nil
}

func (a *API) createTool(ctx context.Context, r *request) (any, error) {
	var b toolBody
	if err := decode(r.APIGatewayProxyRequest, &b); err != nil {
		return nil, err
	}
	now := a.now().UTC()
	t := bulkhead.Tool{ID: bulkhead.NewID("tool"), Version: 1, CreatedAt: now, UpdatedAt: now}
	if err := a.applyTool(ctx, r.tenant, b, &t, true); err != nil {
		return nil, err
	}
	var secret string
	if t.Type == bulkhead.ToolHTTP {
		s, sealed, err := a.newSigningSecret(ctx, r.tenant)
		if err != nil {
			return nil, err
		}
		secret, t.Secrets = s, []bulkhead.SealedSecret{sealed}
	}
	view := a.viewTool(t)
	// No secret is ever stored in plaintext, so an Idempotency-Key replay
	// answers the tool without it (rotate-secret makes a new one).
	stored := struct {
		toolView
		Redacted bool `json:"signing_secret_redacted,omitempty"`
	}{view, secret != ""}
	ctx = audited(ctx, bulkhead.ActionToolCreated, nil, view)
	if err := a.tenantStore(r).CreateTool(ctx, t, r.completion(http.StatusCreated, stored)); err != nil {
		return nil, err
	}
	if secret == "" {
		return view, nil
	}
	return struct {
		toolView
		SigningSecret string `json:"signing_secret"`
	}{view, secret}, nil
}

// pathTool reads the path's tool of the request's tenant.
func (a *API) pathTool(ctx context.Context, r *request) (bulkhead.Tool, error) {
	id := r.PathParameters["tool_id"]
	if !bulkhead.ValidID("tool", id) {
		// A malformed id is simply not found.
		return bulkhead.Tool{}, bulkhead.Errorf(bulkhead.NotFound, "tool %s not found", id)
	}
	return a.tenantStore(r).GetTool(ctx, id)
}

func (a *API) getTool(ctx context.Context, r *request) (any, error) {
	t, err := a.pathTool(ctx, r)
	if err != nil {
		return nil, err
	}
	return a.viewTool(t), nil
}

func (a *API) listTools(ctx context.Context, r *request) (any, error) {
	cursor, limit, err := pageParams(r.APIGatewayProxyRequest)
	if err != nil {
		return nil, err
	}
	page, err := a.tenantStore(r).ListTools(ctx, cursor, limit)
	if err != nil {
		return nil, err
	}
	views := make([]toolView, len(page.Items))
	for i, t := range page.Items {
		views[i] = a.viewTool(t)
	}
	return list(views, page.NextCursor), nil
}

func (a *API) patchTool(ctx context.Context, r *request) (any, error) {
	var b toolBody
	if err := decode(r.APIGatewayProxyRequest, &b); err != nil {
		return nil, err
	}
	t, err := a.pathTool(ctx, r)
	if err != nil {
		return nil, err
	}
	ts := a.tenantStore(r)
	prev, before := t.Version, a.viewTool(t)
	if err := a.applyTool(ctx, r.tenant, b, &t, false); err != nil {
		return nil, err
	}
	t.Version, t.UpdatedAt = prev+1, a.now().UTC()
	ctx = audited(ctx, bulkhead.ActionToolUpdated, before, a.viewTool(t))
	if err := ts.PutTool(ctx, t, prev); err != nil {
		return nil, err
	}
	return a.viewTool(t), nil
}

func (a *API) deleteTool(ctx context.Context, r *request) (any, error) {
	t, err := a.pathTool(ctx, r)
	if err != nil {
		return nil, err
	}
	if err := a.tenantStore(r).DeleteTool(ctx, t); err != nil {
		return nil, err
	}
	return map[string]any{"tool_id": t.ID, "deleted": true}, nil
}

// rotateToolSecret makes a new signing secret; the one it replaces keeps
// signing for bulkhead.SigningSecretOverlap, so receivers can move over.
// Calls carry at most two signatures: a secret rotated out earlier stops
// at the next rotation.
func (a *API) rotateToolSecret(ctx context.Context, r *request) (any, error) {
	t, err := a.pathTool(ctx, r)
	if err != nil {
		return nil, err
	}
	ts := a.tenantStore(r)
	if t.Type != bulkhead.ToolHTTP {
		return nil, bulkhead.Errorf(bulkhead.Invalid, "only HTTP tools have signing secrets")
	}
	secret, sealed, err := a.newSigningSecret(ctx, r.tenant)
	if err != nil {
		return nil, err
	}
	now := a.now().UTC()
	secrets := []bulkhead.SealedSecret{sealed}
	for _, s := range t.SigningSecrets(now) {
		if s.ExpiresAt.IsZero() {
			s.ExpiresAt = now.Add(bulkhead.SigningSecretOverlap)
			secrets = append(secrets, s)
			break
		}
	}
	prev := t.Version
	t.Secrets, t.Version, t.UpdatedAt = secrets, prev+1, now
	// The entry says a rotation happened; the store redacts the secrets' prefixes.
	ctx = dynamo.WithAuditDetail(ctx, bulkhead.ActionToolSecretRotated, nil)
	if err := ts.PutTool(ctx, t, prev); err != nil {
		return nil, err
	}
	return struct {
		toolView
		SigningSecret string `json:"signing_secret"`
	}{a.viewTool(t), secret}, nil
}

// checkAgentTools checks an agent's tools against the tenant's.
func (a *API) checkAgentTools(ctx context.Context, r *request, tools []json.RawMessage) error {
	return a.runner.CheckTools(ctx, a.tenantStore(r), tools)
}
