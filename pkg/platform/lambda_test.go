package platform_test

import (
	"bytes"
	"context"
	"debug/elf"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/bulkhead-dev/bulkhead/pkg/api"
	"github.com/bulkhead-dev/bulkhead/pkg/bulkhead"
	"github.com/bulkhead-dev/bulkhead/pkg/platform"
	"github.com/bulkhead-dev/bulkhead/pkg/platform/platformtest"
)

// The tests run in pkg/platform; the repository root is two levels up.
var (
	eventsDir    = filepath.Join("..", "..", "events")
	functionsDir = filepath.Join("..", "..", "functions")
)

// The sample events carry made-up tenant, agent and key ids and a made-up API
// key; sampleIDs and sampleKey find them so the test can put in the ones it
// created. Matching the shapes (not fixed strings) lets the samples change.
var (
	sampleIDs = regexp.MustCompile(`\b(tn|agt|key)_[a-z2-7]{16}\b`)
	sampleKey = regexp.MustCompile(`\bbk_live_(?:tn_[a-z2-7]{16}_)?[A-Za-z0-9_-]{43}`)
)

// fixture is what a sample event's placeholders are replaced with.
type fixture struct {
	tenant bulkhead.Tenant
	secret string
	keyID  string
	agent  string
}

// mustFixture creates a tenant (with its first key) and an agent the way a
// customer would: the operator call, then POST /v1/agents through the agents function.
func mustFixture(tb testing.TB, env *platformtest.Env) fixture {
	tb.Helper()
	ctx := context.Background()
	t, secret, k, err := env.API.CreateTenant(ctx, "Acme Support", bulkhead.Starter)
	if err != nil {
		tb.Fatalf("create tenant: %v", err)
	}
	resp, err := env.API.Function(api.FnAgents)(ctx, events.APIGatewayProxyRequest{
		HTTPMethod: http.MethodPost, Resource: "/v1/agents", Path: "/v1/agents",
		Body: `{"name":"fixture","system_prompt":"You are a helpful assistant."}`,
		RequestContext: events.APIGatewayProxyRequestContext{
			RequestID:  "fixture",
			Authorizer: map[string]any{api.CtxTenantID: t.ID, api.CtxTier: string(t.Tier), api.CtxKeyID: k.ID},
		},
	})
	if err != nil || resp.StatusCode != http.StatusCreated {
		tb.Fatalf("create agent: got %d %s (err %v), want 201", resp.StatusCode, resp.Body, err)
	}
	var a struct {
		AgentID string `json:"agent_id"`
	}
	if err := json.Unmarshal([]byte(resp.Body), &a); err != nil || !bulkhead.ValidID("agt", a.AgentID) {
		tb.Fatalf("create agent: body %s has no agent_id (%v)", resp.Body, err)
	}
	return fixture{tenant: t, secret: secret, keyID: k.ID, agent: a.AgentID}
}

// rewrite puts the fixture's ids and API key in place of the sample's.
func (f fixture) rewrite(payload []byte) []byte {
	payload = sampleIDs.ReplaceAllFunc(payload, func(id []byte) []byte {
		switch prefix, _, _ := bytes.Cut(id, []byte("_")); string(prefix) {
		case "tn":
			return []byte(f.tenant.ID)
		case "agt":
			return []byte(f.agent)
		default:
			return []byte(f.keyID)
		}
	})
	return sampleKey.ReplaceAll(payload, []byte(f.secret))
}

// eventNames lists the sample events by function name (events/ also holds
// sam local's --env-vars file, which is no event).
func eventNames(tb testing.TB) []string {
	tb.Helper()
	paths, err := filepath.Glob(filepath.Join(eventsDir, "*.json"))
	if err != nil {
		tb.Fatal(err)
	}
	var out []string
	for _, p := range paths {
		if filepath.Base(p) != samEnvFile {
			out = append(out, strings.TrimSuffix(filepath.Base(p), ".json"))
		}
	}
	slices.Sort(out)
	return out
}

func functionNames(tb testing.TB) []string {
	tb.Helper()
	entries, err := os.ReadDir(functionsDir)
	if err != nil {
		tb.Fatalf("read functions/: %v", err)
	}
	var out []string
	for _, e := range entries {
		if e.IsDir() {
			out = append(out, e.Name())
		}
	}
	return out
}

func mustReadEvent(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join(eventsDir, name+".json"))
	if err != nil {
		tb.Fatalf("read sample event: %v", err)
	}
	return b
}

// mustDecodeStrict decodes a payload into v and fails if any of its fields
// did not survive the trip through the Go type: a misspelt or miscased key
// in a sample (Go's decoder matches keys case-insensitively) would reach a
// real function as nothing. Zero values are ignored on both sides because
// the SDK types omit some of them.
func mustDecodeStrict(tb testing.TB, payload []byte, v any) {
	tb.Helper()
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		tb.Fatalf("decode as %T: %v", v, err)
	}
	again, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	var got, want any
	if err := json.Unmarshal(again, &got); err != nil {
		tb.Fatal(err)
	}
	if err := json.Unmarshal(payload, &want); err != nil {
		tb.Fatal(err)
	}
	if diff := jsonDiff("", dropZero(got), dropZero(want)); len(diff) > 0 {
		tb.Errorf("payload does not round-trip through %T (misspelt or miscased field?):\n%s", v, strings.Join(diff, "\n"))
	}
}

// jsonDiff lists the paths where decoded JSON values differ.
func jsonDiff(path string, got, want any) []string {
	g, gok := got.(map[string]any)
	w, wok := want.(map[string]any)
	if !gok || !wok {
		if !reflect.DeepEqual(got, want) {
			return []string{fmt.Sprintf("  %s: decoded %v, payload has %v", path, got, want)}
		}
		return nil
	}
	var diff []string
	for _, k := range slices.Sorted(maps.Keys(w)) {
		if _, ok := g[k]; !ok {
			diff = append(diff, fmt.Sprintf("  %s.%s: in the payload, lost in decoding", path, k))
			continue
		}
		diff = append(diff, jsonDiff(path+"."+k, g[k], w[k])...)
	}
	for _, k := range slices.Sorted(maps.Keys(g)) {
		if _, ok := w[k]; !ok {
			diff = append(diff, fmt.Sprintf("  %s.%s: not in the payload", path, k))
		}
	}
	return diff
}

// dropZero removes null, false, "", 0 and empty objects and arrays from decoded JSON.
func dropZero(v any) any {
	switch v := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, e := range v {
			if e = dropZero(e); e != nil {
				out[k] = e
			}
		}
		if len(out) == 0 {
			return nil
		}
		return out
	case []any:
		if len(v) == 0 {
			return nil
		}
		return v
	case string, bool, float64:
		if reflect.ValueOf(v).IsZero() {
			return nil
		}
	}
	return v
}

// TestEventsAndFunctionsAgree checks that every function has a sample event,
// every sample event a function, and that the route table names only
// functions that exist (and every function but the authorizer serves a route).
func TestEventsAndFunctionsAgree(t *testing.T) {
	t.Parallel()
	functions := functionNames(t)
	if len(functions) == 0 {
		t.Fatal("no function directories under functions/")
	}
	if got, want := eventNames(t), functions; !slices.Equal(got, want) {
		t.Errorf("events/*.json = %v, functions/* = %v: want one sample event per function", got, want)
	}
	for _, fn := range functions {
		if _, err := os.Stat(filepath.Join(functionsDir, fn, "main.go")); err != nil {
			t.Errorf("functions/%s has no main.go: %v", fn, err)
		}
	}
	routed := map[string]bool{}
	for _, r := range api.Routes() {
		routed[r.Function] = true
		if !slices.Contains(functions, r.Function) {
			t.Errorf("route %s %s is served by %q, which has no functions/%s/main.go", r.Method, r.Resource, r.Function, r.Function)
		}
	}
	for _, fn := range functions {
		if fn != api.FnAuthorizer && !routed[fn] {
			t.Errorf("functions/%s serves no route of api.Routes()", fn)
		}
	}
}

// proxyCheck is what one function's sample event must get back.
type proxyCheck struct {
	status int
	body   func(t *testing.T, f fixture, req events.APIGatewayProxyRequest, body map[string]any)
}

// proxyChecks has one entry per sample event of a proxy function; a new
// function's sample needs one here too.
var proxyChecks = map[string]proxyCheck{
	api.FnHealth: {http.StatusOK, func(t *testing.T, _ fixture, _ events.APIGatewayProxyRequest, body map[string]any) {
		wantField(t, body, "status", "healthy")
	}},
	api.FnAgents: {http.StatusCreated, func(t *testing.T, f fixture, req events.APIGatewayProxyRequest, body map[string]any) {
		var sent struct {
			Name  string `json:"name"`
			Tools []any  `json:"tools"`
		}
		if err := json.Unmarshal([]byte(req.Body), &sent); err != nil {
			t.Fatalf("sample body: %v", err)
		}
		id := wantID(t, body, "agent_id", "agt")
		if id == f.agent {
			t.Errorf("agent_id = %s, the fixture's agent: want a new agent", id)
		}
		wantField(t, body, "name", sent.Name)
		wantField(t, body, "status", "active")
		if tools, _ := body["tools"].([]any); len(tools) != len(sent.Tools) {
			t.Errorf("tools = %v, want the %d sent", body["tools"], len(sent.Tools))
		}
	}},
	api.FnExecute: {http.StatusOK, func(t *testing.T, f fixture, _ events.APIGatewayProxyRequest, body map[string]any) {
		wantID(t, body, "execution_id", "exec")
		wantID(t, body, "conversation_id", "conv")
		wantField(t, body, "agent_id", f.agent)
		if msg, _ := body["message"].(string); strings.TrimSpace(msg) == "" {
			t.Errorf("message = %v, want the agent's reply", body["message"])
		}
		tokens := wantPositive(t, body, "tokens_used")
		wantPositive(t, body, "cost")
		usage := wantObject(t, body, "usage")
		in, out := wantPositive(t, usage, "input_tokens"), wantPositive(t, usage, "output_tokens")
		if in+out != tokens {
			t.Errorf("usage input_tokens %v + output_tokens %v != tokens_used %v", in, out, tokens)
		}
	}},
	api.FnUsage: {http.StatusOK, func(t *testing.T, f fixture, _ events.APIGatewayProxyRequest, body map[string]any) {
		wantField(t, body, "tenant_id", f.tenant.ID)
		wantField(t, body, "tier", string(bulkhead.Starter))
		wantPositive(t, wantObject(t, body, "quota"), "max_tokens_per_month")
		u := wantObject(t, body, "usage")
		for _, k := range []string{"tokens_this_month", "spend_this_month", "remaining_tokens", "remaining_budget"} {
			if _, ok := u[k].(json.Number); !ok {
				t.Errorf("usage.%s = %v, want a number", k, u[k])
			}
		}
		wantObject(t, body, "period")
	}},
	api.FnBilling: {http.StatusOK, func(t *testing.T, f fixture, _ events.APIGatewayProxyRequest, body map[string]any) {
		wantField(t, body, "tenant_id", f.tenant.ID)
		wantField(t, body, "currency", "USD")
		wantField(t, body, "tier", string(bulkhead.Starter))
		wantPositive(t, body, "base_fee")
		if _, ok := body["total"].(json.Number); !ok {
			t.Errorf("total = %v, want a number", body["total"])
		}
		if body["estimate"] != true {
			t.Errorf("estimate = %v, want true", body["estimate"])
		}
	}},
	api.FnKeys: {http.StatusOK, func(t *testing.T, f fixture, _ events.APIGatewayProxyRequest, body map[string]any) {
		key := wantListed(t, body, "key_id", f.keyID)
		wantField(t, key, "status", "active")
		if _, ok := key["api_key"]; ok {
			t.Error("a listed key carries its secret")
		}
	}},
	api.FnAdmin: {http.StatusOK, func(t *testing.T, f fixture, _ events.APIGatewayProxyRequest, body map[string]any) {
		wantField(t, wantListed(t, body, "tenant_id", f.tenant.ID), "name", f.tenant.Name)
	}},
}

// TestSampleEvents drives every function's real handler with its sample
// event, through the Lambda library's handler wrapper as the runtime would,
// on the embedded DynamoDB and S3 servers.
func TestSampleEvents(t *testing.T) {
	t.Parallel()
	// Warnings and errors (an internal error's detail) show up with a failure.
	logger := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	env := platformtest.Start(t, func(o *platform.Options) { o.Logger = logger })
	f := mustFixture(t, env)
	ctx := context.Background()
	for _, name := range eventNames(t) {
		t.Run(name, func(t *testing.T) {
			sample := mustReadEvent(t, name)
			if name == api.FnAuthorizer {
				checkAuthorizer(t, env, f, sample)
				return
			}
			check, ok := proxyChecks[name]
			if !ok {
				t.Fatalf("events/%s.json has no entry in proxyChecks", name)
			}
			payload := f.rewrite(sample)
			var req events.APIGatewayProxyRequest
			mustDecodeStrict(t, payload, &req)
			route := checkRouted(t, name, req)
			if route.Auth == api.AuthTenant {
				if got := req.RequestContext.Authorizer[api.CtxTenantID]; got != f.tenant.ID {
					t.Fatalf("after rewriting, authorizer tenant_id = %v, want %s (is the sample's tenant id well formed?)", got, f.tenant.ID)
				}
			}

			out, err := lambda.NewHandler(env.API.Function(name)).Invoke(ctx, payload)
			if err != nil {
				t.Fatalf("invoke: %v (a returned error means the invocation failed)", err)
			}
			var resp events.APIGatewayProxyResponse
			mustDecodeStrict(t, out, &resp)
			if resp.StatusCode != check.status {
				t.Fatalf("status = %d, want %d; body %s", resp.StatusCode, check.status, resp.Body)
			}
			if got := resp.Headers["Content-Type"]; got != "application/json" {
				t.Errorf("Content-Type = %q, want application/json", got)
			}
			check.body(t, f, req, mustJSONObject(t, resp.Body))
		})
	}
}

// checkRouted checks that the sample is a request of the route table that the
// function serves, with a path that fits the resource and its parameters.
func checkRouted(tb testing.TB, name string, req events.APIGatewayProxyRequest) api.Route {
	tb.Helper()
	i := slices.IndexFunc(api.Routes(), func(r api.Route) bool { return r.Method == req.HTTPMethod && r.Resource == req.Resource })
	if i < 0 {
		tb.Fatalf("%s %s is not in api.Routes()", req.HTTPMethod, req.Resource)
	}
	r := api.Routes()[i]
	if r.Function != name {
		tb.Fatalf("%s %s is served by %s, not %s", r.Method, r.Resource, r.Function, name)
	}
	path := r.Resource
	for k, v := range req.PathParameters {
		path = strings.Replace(path, "{"+k+"}", v, 1)
	}
	if path != req.Path {
		tb.Errorf("path = %s, want %s (the resource with pathParameters %v)", req.Path, path, req.PathParameters)
	}
	rc := req.RequestContext
	if rc.ResourcePath != req.Resource || rc.HTTPMethod != req.HTTPMethod || rc.Path != "/"+rc.Stage+req.Path {
		tb.Errorf("requestContext (resourcePath %s, httpMethod %s, path %s) disagrees with the request", rc.ResourcePath, rc.HTTPMethod, rc.Path)
	}
	if req.Body != "" {
		mustJSONObject(tb, req.Body)
	}
	return r
}

// checkAuthorizer invokes the authorizer with the sample as it is (a made-up
// key: refused) and with the fixture's key (allowed, for its tenant).
func checkAuthorizer(t *testing.T, env *platformtest.Env, f fixture, sample []byte) {
	t.Helper()
	var sampleReq events.APIGatewayCustomAuthorizerRequest
	mustDecodeStrict(t, sample, &sampleReq)
	if sampleReq.Type != "TOKEN" || !sampleKey.MatchString(sampleReq.AuthorizationToken) {
		t.Fatalf("sample is not a TOKEN authorizer event with a well-formed bearer key: %+v", sampleReq)
	}
	ctx := context.Background()
	h := lambda.NewHandler(env.API.Authorizer)

	// The sample as it stands names no key the platform knows: 401.
	if _, err := h.Invoke(ctx, sample); err == nil || err.Error() != api.ErrUnauthorized.Error() {
		t.Errorf("sample with its made-up key: err = %v, want %q", err, api.ErrUnauthorized)
	}

	out, err := h.Invoke(ctx, f.rewrite(sample))
	if err != nil {
		t.Fatalf("invoke with the tenant's key: %v", err)
	}
	var resp events.APIGatewayCustomAuthorizerResponse
	mustDecodeStrict(t, out, &resp)
	if resp.PrincipalID != f.tenant.ID {
		t.Errorf("principalId = %q, want the tenant %s", resp.PrincipalID, f.tenant.ID)
	}
	st := resp.PolicyDocument.Statement
	if len(st) != 1 || st[0].Effect != "Allow" || !slices.Equal(st[0].Action, []string{"execute-api:Invoke"}) {
		t.Fatalf("policy statements = %+v, want one Allow of execute-api:Invoke", st)
	}
	// API Gateway caches the policy per token for every route: the whole stage.
	arn := strings.SplitN(sampleReq.MethodArn, "/", 3) // arn:...:api-id, stage, METHOD/path
	if len(arn) != 3 {
		t.Fatalf("methodArn %q is not arn:...:api-id/stage/METHOD/path", sampleReq.MethodArn)
	}
	if want := []string{arn[0] + "/" + arn[1] + "/*"}; !slices.Equal(st[0].Resource, want) {
		t.Errorf("policy resource = %v, want %v", st[0].Resource, want)
	}
	for k, want := range map[string]string{api.CtxTenantID: f.tenant.ID, api.CtxTier: string(f.tenant.Tier), api.CtxKeyID: f.keyID} {
		if got := resp.Context[k]; got != want {
			t.Errorf("context[%s] = %v, want %s", k, got, want)
		}
	}
	// The raw policy must use the keys IAM reads.
	var raw struct {
		PolicyDocument struct {
			Version   string
			Statement []map[string]any
		} `json:"policyDocument"`
	}
	if err := json.Unmarshal(out, &raw); err != nil || raw.PolicyDocument.Version != "2012-10-17" ||
		len(raw.PolicyDocument.Statement) != 1 || raw.PolicyDocument.Statement[0]["Effect"] != "Allow" {
		t.Errorf("policyDocument JSON = %s, want Version 2012-10-17 and a Statement with Effect (err %v)", out, err)
	}
}

func mustJSONObject(tb testing.TB, s string) map[string]any {
	tb.Helper()
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil || m == nil {
		tb.Fatalf("body %q is not a JSON object: %v", s, err)
	}
	return m
}

func wantField(tb testing.TB, obj map[string]any, key, want string) {
	tb.Helper()
	if got := obj[key]; got != want {
		tb.Errorf("%s = %v, want %q", key, got, want)
	}
}

func wantID(tb testing.TB, obj map[string]any, key, prefix string) string {
	tb.Helper()
	id, _ := obj[key].(string)
	if !bulkhead.ValidID(prefix, id) {
		tb.Errorf("%s = %v, want a %s_ id", key, obj[key], prefix)
	}
	return id
}

func wantPositive(tb testing.TB, obj map[string]any, key string) float64 {
	tb.Helper()
	n, ok := obj[key].(json.Number)
	f, err := n.Float64()
	if !ok || err != nil || f <= 0 {
		tb.Errorf("%s = %v, want a number > 0", key, obj[key])
	}
	return f
}

func wantObject(tb testing.TB, obj map[string]any, key string) map[string]any {
	tb.Helper()
	m, ok := obj[key].(map[string]any)
	if !ok {
		tb.Fatalf("%s = %v, want an object", key, obj[key])
	}
	return m
}

// wantListed finds the item whose key is id in a list body {"data": [...], "has_more", "next_cursor"}.
func wantListed(tb testing.TB, body map[string]any, key, id string) map[string]any {
	tb.Helper()
	data, isList := body["data"].([]any)
	if _, ok := body["has_more"].(bool); !isList || !ok {
		tb.Fatalf("body %v is not a list (data, has_more)", body)
	}
	for _, item := range data {
		if m, _ := item.(map[string]any); m != nil && m[key] == id {
			return m
		}
	}
	tb.Fatalf("no item with %s %s in %v", key, id, data)
	return nil
}

// TestFunctionCrossCompiles builds one function the way `make build` does
// (linux/arm64, no cgo, lambda.norpc; keep the flags in step with the
// Makefile) and checks the result is an arm64 ELF executable. The compiled
// packages land in the build cache, so a later `make build` reuses them.
func TestFunctionCrossCompiles(t *testing.T) {
	if testing.Short() {
		t.Skip("cross-compiles a function; skipped in -short mode")
	}
	t.Parallel()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("no go command on PATH: %v", err)
	}
	out := filepath.Join(t.TempDir(), "bootstrap")
	cmd := exec.Command(goTool, "build", "-tags", "lambda.norpc", "-trimpath", "-buildvcs=false", "-ldflags=-s -w",
		"-o", out, "./"+filepath.ToSlash(filepath.Join("functions", api.FnHealth)))
	cmd.Dir = filepath.Join("..", "..")
	cmd.Env = append(os.Environ(), "GOOS=linux", "GOARCH=arm64", "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, b)
	}
	f, err := elf.Open(out)
	if err != nil {
		t.Fatalf("open %s as ELF: %v", out, err)
	}
	defer f.Close()
	if f.Machine != elf.EM_AARCH64 || f.Class != elf.ELFCLASS64 || f.Type != elf.ET_EXEC {
		t.Errorf("bootstrap is %v %v %v, want EM_AARCH64 ELFCLASS64 ET_EXEC", f.Machine, f.Class, f.Type)
	}
	if f.Section(".interp") != nil {
		t.Error("bootstrap names a dynamic loader (.interp): want a static binary (CGO_ENABLED=0)")
	}
	st, err := os.Stat(out)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm()&0o111 == 0 {
		t.Errorf("bootstrap mode = %v, want executable", st.Mode())
	}
}
