//go:build infra

// The infrastructure tests need Node (jsii runs the CDK's JavaScript) and a
// few minutes of compilation on a cold build cache, so they carry the "infra"
// build tag: `go test ./...` skips them, `make test-infra` (go test -tags
// infra ./infra/...) runs them.

package stacks_test

import (
	"archive/zip"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/jsii-runtime-go"

	"github.com/bulkhead-dev/bulkhead/infra/stacks"
	"github.com/bulkhead-dev/bulkhead/pkg/api"
	"github.com/bulkhead-dev/bulkhead/pkg/bulkhead"
	"github.com/bulkhead-dev/bulkhead/pkg/dynamo"
)

// siloTenant is the silo stack the tests synthesize next to the pool.
const siloTenant = "acme"

// synthesized is one stack, synthesized once for every test.
type synthesized struct {
	name     string
	stack    awscdk.Stack
	template assertions.Template
	// res is the template's Resources, decoded once.
	res map[string]resource
	// nagErrors and nagWarnings are the cdk-nag AwsSolutions findings left
	// after the suppressions.
	nagErrors, nagWarnings []string
}

type resource struct {
	Type           string         `json:"Type"`
	Properties     map[string]any `json:"Properties"`
	Metadata       map[string]any `json:"Metadata"`
	DependsOn      any            `json:"DependsOn"`
	DeletionPolicy string         `json:"DeletionPolicy"`
	UpdateReplace  string         `json:"UpdateReplacePolicy"`
}

var fixture struct {
	once       sync.Once
	failure    string
	took       time.Duration
	logged     bool
	pool, silo *synthesized
	// disposable is a silo synthesized with DestroyData.
	disposable *synthesized
	dir        string
}

// TestMain closes the jsii runtime (a node process) and removes the
// placeholder assets once every test has run.
func TestMain(m *testing.M) {
	code := m.Run()
	if fixture.dir != "" {
		jsii.Close()
		os.RemoveAll(fixture.dir)
	}
	os.Exit(code)
}

// stacksUnderTest synthesizes the pool stack and one silo stack, once per
// test process (jsii's start and the synthesis take seconds), with cdk-nag's
// AwsSolutions checks applied, from placeholder zips: no `make build` needed.
func stacksUnderTest(t *testing.T) (pool, silo *synthesized) {
	t.Helper()
	fixture.once.Do(func() {
		start := time.Now()
		defer func() {
			// jsii reports synthesis failures (cdk-nag errors fail
			// validation) as panics.
			if r := recover(); r != nil {
				fixture.failure = fmt.Sprint(r) + stacks.ValidationReport(filepath.Join(fixture.dir, "cdk.out"))
			}
			fixture.took = time.Since(start)
		}()
		dir, err := os.MkdirTemp("", "bulkhead-infra-test-")
		if err != nil {
			panic(err)
		}
		fixture.dir = dir
		assets := filepath.Join(dir, "dist")
		for _, name := range stacks.FunctionNames() {
			writePlaceholderZip(filepath.Join(assets, name+".zip"), name)
		}
		portal := filepath.Join(dir, "portal")
		writePlaceholderPortal(portal)

		ctx, err := stacks.ContextFromFile("../../cdk.json")
		if err != nil {
			panic(err)
		}
		ctx[stacks.CtxSiloTenants] = siloTenant
		ctx[stacks.CtxAssetDir] = assets
		ctx[stacks.CtxPortalDir] = portal
		ctx[stacks.CtxOpenAIBaseURL] = openAIBaseURL
		ctx[stacks.CtxOpenAIKeySecret] = openAIKeySecret
		app := stacks.NewApp(ctx, filepath.Join(dir, "cdk.out"))
		cfg, err := stacks.ConfigFromContext(func(k string) any { return app.Node().TryGetContext(jsii.String(k)) })
		if err != nil {
			panic(err)
		}
		built := stacks.Build(app, cfg, nil)
		stacks.AddNagChecks(app)
		if len(built.Silos) != 1 {
			panic(fmt.Sprintf("%d silo stacks, want 1", len(built.Silos)))
		}
		disposable := stacks.NewSiloStack(app, stacks.SiloStackPrefix+"disposable", &stacks.SiloStackProps{
			TenantID: "disposable",
			Platform: stacks.PlatformProps{AssetDir: assets, PortalDir: portal, DestroyData: true},
		})
		fixture.pool = synthesize(built.Pool.Stack)
		fixture.silo = synthesize(built.Silos[0].Stack)
		fixture.disposable = synthesize(disposable.Stack)
	})
	if fixture.failure != "" {
		t.Fatalf("synthesis failed: %s", fixture.failure)
	}
	if !fixture.logged {
		fixture.logged = true
		t.Logf("synthesis of the stacks (once per process): %v", fixture.took.Round(time.Millisecond))
	}
	return fixture.pool, fixture.silo
}

func synthesize(stack awscdk.Stack) *synthesized {
	s := &synthesized{name: *stack.StackName(), stack: stack, template: assertions.Template_FromStack(stack, nil)}
	b, err := json.Marshal(s.template.ToJSON())
	if err != nil {
		panic(err)
	}
	var tmpl struct {
		Resources map[string]resource `json:"Resources"`
	}
	if err := json.Unmarshal(b, &tmpl); err != nil {
		panic(err)
	}
	s.res = tmpl.Resources
	annotations := assertions.Annotations_FromStack(stack)
	nag := assertions.Match_StringLikeRegexp(jsii.String("AwsSolutions-.*"))
	for _, m := range *annotations.FindError(jsii.String("*"), nag) {
		s.nagErrors = append(s.nagErrors, fmt.Sprintf("%s: %v", *m.Id, m.Entry.Data))
	}
	for _, m := range *annotations.FindWarning(jsii.String("*"), nag) {
		s.nagWarnings = append(s.nagWarnings, fmt.Sprintf("%s: %v", *m.Id, m.Entry.Data))
	}
	return s
}

// writePlaceholderZip writes a zip holding a bootstrap that differs per
// function, so that every function gets an asset of its own.
func writePlaceholderZip(path, name string) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		panic(err)
	}
	f, err := os.Create(path)
	if err != nil {
		panic(err)
	}
	defer f.Close()
	zw := zip.NewWriter(f)
	w, err := zw.CreateHeader(&zip.FileHeader{Name: "bootstrap", Method: zip.Deflate})
	if err != nil {
		panic(err)
	}
	fmt.Fprintf(w, "#!/bin/sh\necho placeholder for %s\n", name)
	if err := zw.Close(); err != nil {
		panic(err)
	}
}

// writePlaceholderPortal writes the portal's three files, so that the tests
// do not depend on the real ones.
func writePlaceholderPortal(dir string) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		panic(err)
	}
	for name, body := range map[string]string{
		"index.html": "<!doctype html><title>placeholder</title><script src=\"app.js\"></script>\n",
		"app.js":     "// placeholder\n",
		"app.css":    "/* placeholder */\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			panic(err)
		}
	}
}

// both runs f on the pool and the silo stack.
func both(t *testing.T, f func(t *testing.T, s *synthesized)) {
	pool, silo := stacksUnderTest(t)
	for _, s := range []*synthesized{pool, silo} {
		t.Run(s.name, func(t *testing.T) { f(t, s) })
	}
}

// must runs a jsii assertion, turning its panic into a test error.
func must(t *testing.T, what string, f func()) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			t.Errorf("%s: %v", what, r)
		}
	}()
	f()
}

// ofType returns the logical ids of a type's resources, sorted.
func (s *synthesized) ofType(typ string) []string {
	var ids []string
	for id, r := range s.res {
		if r.Type == typ {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	return ids
}

// only returns the single resource of a type.
func (s *synthesized) only(t *testing.T, typ string) (string, resource) {
	t.Helper()
	ids := s.ofType(typ)
	if len(ids) != 1 {
		t.Fatalf("%d resources of type %s, want 1: %v", len(ids), typ, ids)
	}
	return ids[0], s.res[ids[0]]
}

// functionID returns the logical id of the function named "<stack>-<name>".
func (s *synthesized) functionID(t *testing.T, name string) string {
	t.Helper()
	for _, id := range s.ofType("AWS::Lambda::Function") {
		if s.res[id].Properties["FunctionName"] == s.name+"-"+name {
			return id
		}
	}
	t.Fatalf("no function %s-%s", s.name, name)
	return ""
}

// render flattens a CloudFormation value to a string: Fn::Join concatenated,
// {"Ref": X} as <X>, {"Fn::GetAtt": [X, A]} as <X.A>.
func render(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	case bool:
		return fmt.Sprint(v)
	case []any:
		parts := make([]string, len(v))
		for i, p := range v {
			parts[i] = render(p)
		}
		return strings.Join(parts, ",")
	case map[string]any:
		if ref, ok := v["Ref"]; ok {
			return "<" + render(ref) + ">"
		}
		if ga, ok := v["Fn::GetAtt"].([]any); ok && len(ga) == 2 {
			return "<" + render(ga[0]) + "." + render(ga[1]) + ">"
		}
		if j, ok := v["Fn::Join"].([]any); ok && len(j) == 2 {
			var b strings.Builder
			for _, p := range j[1].([]any) {
				b.WriteString(render(p))
			}
			return b.String()
		}
		// Render nested intrinsic functions inside plain objects too.
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var b strings.Builder
		b.WriteString("{")
		for i, k := range keys {
			if i > 0 {
				b.WriteString(",")
			}
			fmt.Fprintf(&b, "%q:%s", k, renderJSON(v[k]))
		}
		b.WriteString("}")
		return b.String()
	}
	return fmt.Sprint(v)
}

// renderJSON renders a value inside an object: strings quoted, intrinsic
// functions flattened by render and quoted, lists bracketed.
func renderJSON(v any) string {
	switch v := v.(type) {
	case string:
		var b strings.Builder
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		enc.Encode(v)
		return strings.TrimSuffix(b.String(), "\n")
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	case []any:
		parts := make([]string, len(v))
		for i, p := range v {
			parts[i] = renderJSON(p)
		}
		return "[" + strings.Join(parts, ",") + "]"
	case map[string]any:
		if _, ok := v["Ref"]; ok {
			return renderJSON(render(v))
		}
		if _, ok := v["Fn::GetAtt"]; ok {
			return renderJSON(render(v))
		}
		if _, ok := v["Fn::Join"]; ok {
			return renderJSON(render(v))
		}
		return render(v)
	}
	return fmt.Sprint(v)
}

// statements returns every statement of every AWS::IAM::Policy attached to
// the role with logical id role.
func (s *synthesized) statements(role string) []map[string]any {
	var out []map[string]any
	for _, id := range s.ofType("AWS::IAM::Policy") {
		p := s.res[id].Properties
		attached := false
		for _, r := range p["Roles"].([]any) {
			if render(r) == "<"+role+">" {
				attached = true
			}
		}
		if !attached {
			continue
		}
		for _, st := range p["PolicyDocument"].(map[string]any)["Statement"].([]any) {
			out = append(out, st.(map[string]any))
		}
	}
	return out
}

func strs(v any) []string {
	switch v := v.(type) {
	case string:
		return []string{v}
	case []any:
		out := make([]string, len(v))
		for i, x := range v {
			out[i] = render(x)
		}
		return out
	case nil:
		return nil
	}
	return []string{render(v)}
}

// roleOf returns the logical id of a function's execution role.
func (s *synthesized) roleOf(t *testing.T, fnID string) string {
	t.Helper()
	role := render(s.res[fnID].Properties["Role"])
	return strings.TrimSuffix(strings.TrimPrefix(role, "<"), ".Arn>")
}

func TestFunctions(t *testing.T) {
	timeouts := map[string]float64{
		// The largest tier's wall time plus time to settle.
		api.FnExecute: bulkhead.MaxWallTimeCeiling().Seconds() + 30,
		api.FnBilling: 900,
	}
	both(t, func(t *testing.T, s *synthesized) {
		// The platform's functions, and the handler of the portal's
		// BucketDeployment (TestPortal).
		fns := s.ofType("AWS::Lambda::Function")
		if len(fns) != len(stacks.FunctionNames())+1 {
			t.Errorf("%d functions, want %d and the portal deployment's", len(fns), len(stacks.FunctionNames()))
		}
		keys := map[string]string{}
		for _, name := range stacks.FunctionNames() {
			id := s.functionID(t, name)
			r := s.res[id]
			p := r.Properties
			// Memory is sized from measured use in one place, api.MemoryMB.
			want := struct{ memory, timeout float64 }{float64(api.MemoryMB(name)), timeouts[name]}
			if want.timeout == 0 {
				want.timeout = 30
			}
			if want.memory < 128 {
				t.Errorf("%s: api.MemoryMB = %v, want at least Lambda's 128 MB", name, want.memory)
			}
			checks := []struct {
				what      string
				got, want any
			}{
				{"Runtime", p["Runtime"], "provided.al2023"},
				{"Architectures", render(p["Architectures"]), "arm64"},
				{"Handler", p["Handler"], "bootstrap"},
				{"TracingConfig", render(p["TracingConfig"]), `{"Mode":"Active"}`},
				{"MemorySize", p["MemorySize"], want.memory},
				{"Timeout", p["Timeout"], want.timeout},
			}
			for _, c := range checks {
				if c.got != c.want {
					t.Errorf("%s: %s = %v, want %v", name, c.what, c.got, c.want)
				}
			}
			if s.res[s.roleOf(t, id)].Properties["ManagedPolicyArns"] != nil {
				t.Errorf("%s: its role has managed policies; want inline least-privilege grants only", name)
			}
			// sam local invoke -t cdk.out/<stack>.template.json finds the code here.
			path, _ := r.Metadata["aws:asset:path"].(string)
			if !strings.HasPrefix(path, "asset.") || r.Metadata["aws:asset:property"] != "Code" {
				t.Errorf("%s: asset metadata %v, want aws:asset:path asset.<hash>.zip and aws:asset:property Code", name, r.Metadata)
			}
			key := render(p["Code"].(map[string]any)["S3Key"])
			if other, dup := keys[key]; dup {
				t.Errorf("%s and %s share the asset %s", name, other, key)
			}
			keys[key] = name

			env := p["Environment"].(map[string]any)["Variables"].(map[string]any)
			table, _ := s.only(t, "AWS::DynamoDB::Table")
			if render(env[stacks.EnvTable]) != "<"+table+">" {
				t.Errorf("%s: %s = %s, want the table", name, stacks.EnvTable, render(env[stacks.EnvTable]))
			}
			if b := render(env[stacks.EnvBucket]); !strings.HasPrefix(b, "<PlatformBucket") {
				t.Errorf("%s: %s = %s, want the data bucket", name, stacks.EnvBucket, b)
			}
			// Declared, so that sam local passes the values of
			// events/sam-env.json; empty, so that in AWS the SDK ignores them.
			for _, k := range []string{stacks.EnvEndpointDynamoDB, stacks.EnvEndpointS3} {
				if v, ok := env[k]; !ok || v != "" {
					t.Errorf("%s: %s = %v (declared %v), want declared and empty", name, k, v, ok)
				}
			}
			if got, want := env[stacks.EnvGoMemLimit], fmt.Sprintf("%dMiB", api.MemoryMB(name)*8/10); got != want {
				t.Errorf("%s: %s = %v, want %s (80%% of its %d MB)", name, stacks.EnvGoMemLimit, got, want, api.MemoryMB(name))
			}
			// Spans go to X-Ray's OTLP endpoint, which authorizes them as
			// xray:PutTraceSegments: the role must have it, and no layer is
			// needed (no ADOT collector).
			if env[stacks.EnvOTelExporter] != "xray" {
				t.Errorf("%s: %s = %v, want xray", name, stacks.EnvOTelExporter, env[stacks.EnvOTelExporter])
			}
			if p["Layers"] != nil {
				t.Errorf("%s: layers %v, want none", name, render(p["Layers"]))
			}
			putSegments := false
			for _, st := range s.statements(s.roleOf(t, id)) {
				if st["Effect"] == "Allow" && slices.Contains(strs(st["Action"]), "xray:PutTraceSegments") && slices.Equal(strs(st["Resource"]), []string{"*"}) {
					putSegments = true
				}
			}
			if !putSegments {
				t.Errorf("%s: its role may not xray:PutTraceSegments, which X-Ray's OTLP endpoint requires", name)
			}

			logs := render(p["LoggingConfig"].(map[string]any)["LogGroup"])
			lg, ok := s.res[strings.Trim(logs, "<>")]
			if !ok || lg.Type != "AWS::Logs::LogGroup" {
				t.Errorf("%s: logs to %s, want a log group of the stack", name, logs)
			}
		}
	})
}

func TestLogGroupsHaveRetention(t *testing.T) {
	both(t, func(t *testing.T, s *synthesized) {
		groups := s.ofType("AWS::Logs::LogGroup")
		// One per function, the API's access logs and its execution logs,
		// the portal deployment's handler.
		if want := len(stacks.FunctionNames()) + 3; len(groups) != want {
			t.Errorf("%d log groups, want %d", len(groups), want)
		}
		for _, id := range groups {
			if got := s.res[id].Properties["RetentionInDays"]; got != 30.0 {
				t.Errorf("%s: RetentionInDays = %v, want 30", id, got)
			}
		}
	})
}

func TestAuthorizer(t *testing.T) {
	both(t, func(t *testing.T, s *synthesized) {
		_, a := s.only(t, "AWS::ApiGateway::Authorizer")
		p := a.Properties
		if p["Type"] != "TOKEN" || p["IdentitySource"] != "method.request.header.Authorization" {
			t.Errorf("authorizer Type %v, IdentitySource %v; want TOKEN on method.request.header.Authorization", p["Type"], p["IdentitySource"])
		}
		if ttl, _ := p["AuthorizerResultTtlInSeconds"].(float64); ttl <= 0 || ttl > 60 {
			t.Errorf("AuthorizerResultTtlInSeconds = %v, want 1..60 (the worst-case delay of a revocation)", p["AuthorizerResultTtlInSeconds"])
		}
		if !strings.Contains(render(p["AuthorizerUri"]), "<"+s.functionID(t, api.FnAuthorizer)+".Arn>") {
			t.Errorf("AuthorizerUri %s does not invoke the authorizer function", render(p["AuthorizerUri"]))
		}
		_, api := s.only(t, "AWS::ApiGateway::RestApi")
		if api.Properties["ApiKeySourceType"] != "AUTHORIZER" {
			t.Errorf("ApiKeySourceType = %v, want AUTHORIZER", api.Properties["ApiKeySourceType"])
		}
		if render(api.Properties["EndpointConfiguration"]) != `{"Types":["REGIONAL"]}` {
			t.Errorf("EndpointConfiguration = %s, want REGIONAL", render(api.Properties["EndpointConfiguration"]))
		}
	})
}

func TestStage(t *testing.T) {
	both(t, func(t *testing.T, s *synthesized) {
		_, st := s.only(t, "AWS::ApiGateway::Stage")
		p := st.Properties
		if p["StageName"] != "prod" || p["TracingEnabled"] != true {
			t.Errorf("stage %v, tracing %v; want prod with tracing", p["StageName"], p["TracingEnabled"])
		}
		logs, _ := p["AccessLogSetting"].(map[string]any)
		format, _ := logs["Format"].(string)
		for _, field := range []string{`"tenant_id":"$context.authorizer.tenant_id"`, `"status":$context.status`, "$context.requestId"} {
			if !strings.Contains(format, field) {
				t.Errorf("access log format lacks %s: %s", field, format)
			}
		}
		if strings.Contains(format, "$context.identity.apiKey\"") || strings.Contains(strings.ToLower(format), "authorization") {
			t.Errorf("access log format logs a credential: %s", format)
		}
		if settings := render(p["MethodSettings"]); !strings.Contains(settings, `"LoggingLevel":"ERROR"`) || !strings.Contains(settings, `"DataTraceEnabled":false`) {
			t.Errorf("MethodSettings %s, want execution logging at ERROR without data trace", settings)
		}
	})
}

// TestRoutes finds every route of api.Routes() as a method on its resource
// path, with the route's authorization and function, and no other method.
func TestRoutes(t *testing.T) {
	both(t, func(t *testing.T, s *synthesized) {
		restAPI, _ := s.only(t, "AWS::ApiGateway::RestApi")
		authorizer, _ := s.only(t, "AWS::ApiGateway::Authorizer")
		paths := map[string]string{"<" + restAPI + ".RootResourceId>": ""}
		// Resources name their parents; resolve until every path is known.
		for changed := true; changed; {
			changed = false
			for _, id := range s.ofType("AWS::ApiGateway::Resource") {
				p := s.res[id].Properties
				if _, done := paths["<"+id+">"]; done {
					continue
				}
				if parent, ok := paths[render(p["ParentId"])]; ok {
					paths["<"+id+">"] = parent + "/" + p["PathPart"].(string)
					changed = true
				}
			}
		}
		methods := map[string]map[string]any{}
		for _, id := range s.ofType("AWS::ApiGateway::Method") {
			p := s.res[id].Properties
			path, ok := paths[render(p["ResourceId"])]
			if !ok {
				t.Fatalf("method %s on unknown resource %s", id, render(p["ResourceId"]))
			}
			methods[p["HttpMethod"].(string)+" "+path] = p
		}
		routes := api.Routes()
		if len(methods) != len(routes) {
			t.Errorf("%d methods, %d routes", len(methods), len(routes))
		}
		for _, r := range routes {
			key := r.Method + " " + r.Resource
			m, ok := methods[key]
			if !ok {
				t.Errorf("%s: no method", key)
				continue
			}
			switch r.Auth {
			case api.AuthTenant:
				if m["AuthorizationType"] != "CUSTOM" || render(m["AuthorizerId"]) != "<"+authorizer+">" || m["ApiKeyRequired"] != true {
					t.Errorf("%s: AuthorizationType %v, AuthorizerId %v, ApiKeyRequired %v; want CUSTOM, the authorizer, true",
						key, m["AuthorizationType"], render(m["AuthorizerId"]), m["ApiKeyRequired"])
				}
			case api.AuthAdmin:
				if m["AuthorizationType"] != "AWS_IAM" || m["ApiKeyRequired"] == true {
					t.Errorf("%s: AuthorizationType %v, ApiKeyRequired %v; want AWS_IAM without API key", key, m["AuthorizationType"], m["ApiKeyRequired"])
				}
			case api.AuthNone:
				if m["AuthorizationType"] != "NONE" || m["ApiKeyRequired"] == true {
					t.Errorf("%s: AuthorizationType %v, ApiKeyRequired %v; want NONE", key, m["AuthorizationType"], m["ApiKeyRequired"])
				}
			}
			integ := m["Integration"].(map[string]any)
			uri := render(integ["Uri"])
			byRef := strings.Contains(uri, "<"+s.functionID(t, r.Function)+".Arn>")
			byName := strings.Contains(uri, ":function:"+s.name+"-"+r.Function+"/invocations")
			if integ["Type"] != "AWS_PROXY" || !(byRef || byName || strings.Contains(uri, "<"+s.functionID(t, r.Function)+".Arn>/response-streaming-invocations")) {
				t.Errorf("%s: integration %v %s, want AWS_PROXY to function %s", key, integ["Type"], uri, r.Function)
			}
			if r.Function != api.FnExecute {
				if integ["ResponseTransferMode"] == "STREAM" || !strings.Contains(uri, "/2015-03-31/functions/") {
					t.Errorf("%s: integration %v to %s; want a buffered Invoke", key, integ["ResponseTransferMode"], uri)
				}
				continue
			}
			// execute streams (InvokeWithResponseStream), so no execution
			// is cut at 29 seconds: API Gateway waits as long as the function runs.
			if integ["ResponseTransferMode"] != "STREAM" {
				t.Errorf("%s: ResponseTransferMode %v, want STREAM", key, integ["ResponseTransferMode"])
			}
			if !strings.Contains(uri, "/2021-11-15/functions/") || !strings.HasSuffix(uri, "/response-streaming-invocations") {
				t.Errorf("%s: integration URI %s, want the 2021-11-15 response-streaming-invocations path", key, uri)
			}
			fnTimeout := s.res[s.functionID(t, api.FnExecute)].Properties["Timeout"].(float64)
			ms, _ := integ["TimeoutInMillis"].(float64)
			if ms != fnTimeout*1000 || ms > float64(stacks.MaxStreamingIntegrationTimeout.Milliseconds()) ||
				ms <= float64(bulkhead.MaxWallTimeCeiling().Milliseconds()) {
				t.Errorf("%s: TimeoutInMillis %v; want the function's %v s, above the largest wall time %s and at most %s",
					key, ms, fnTimeout, bulkhead.MaxWallTimeCeiling(), stacks.MaxStreamingIntegrationTimeout)
			}
		}
	})
}

var pathParams = regexp.MustCompile(`\{[^}]+\}`)

// TestInvokePermissions: every function behind the API may be invoked by
// API Gateway, from its own routes only.
func TestInvokePermissions(t *testing.T) {
	both(t, func(t *testing.T, s *synthesized) {
		allowed := map[string][]string{}
		for _, id := range s.ofType("AWS::Lambda::Permission") {
			p := s.res[id].Properties
			if p["Principal"] == "apigateway.amazonaws.com" {
				fn := strings.TrimSuffix(strings.TrimPrefix(render(p["FunctionName"]), "<"), ".Arn>")
				allowed[fn] = append(allowed[fn], render(p["SourceArn"]))
			}
		}
		for _, r := range api.Routes() {
			fn := s.functionID(t, r.Function)
			route := "/" + r.Method + pathParams.ReplaceAllString(r.Resource, "*")
			ok := slices.ContainsFunc(allowed[fn], func(src string) bool {
				return strings.HasSuffix(src, route) || (r.Function == api.FnAdmin && strings.HasSuffix(src, "/prod/*/v1/admin/*"))
			})
			if !ok {
				t.Errorf("%s %s: no invoke permission on %s for %s (has %v)", r.Method, r.Resource, r.Function, route, allowed[fn])
			}
		}
	})
}

func TestUsagePlansFollowTheTiers(t *testing.T) {
	both(t, func(t *testing.T, s *synthesized) {
		stageID, _ := s.only(t, "AWS::ApiGateway::Stage")
		plans := s.ofType("AWS::ApiGateway::UsagePlan")
		if len(plans) != len(bulkhead.Tiers()) {
			t.Errorf("%d usage plans, want one per tier (%d)", len(plans), len(bulkhead.Tiers()))
		}
		admin := s.res[s.functionID(t, api.FnAdmin)].Properties["Environment"].(map[string]any)["Variables"].(map[string]any)
		for _, tier := range bulkhead.Tiers() {
			found := false
			for _, id := range plans {
				p := s.res[id].Properties
				if p["UsagePlanName"] != s.name+"-"+string(tier.Name) {
					continue
				}
				found = true
				want := fmt.Sprintf(`{"BurstLimit":%d,"RateLimit":%d}`, tier.Throttle.Burst, tier.Throttle.RatePerSecond)
				if got := render(p["Throttle"]); got != want {
					t.Errorf("%s: throttle %s, want %s", tier.Name, got, want)
				}
				want = fmt.Sprintf(`{"Limit":%d,"Period":"DAY"}`, tier.Throttle.DailyRequests)
				if got := render(p["Quota"]); got != want {
					t.Errorf("%s: quota %s, want %s", tier.Name, got, want)
				}
				if stages := render(p["ApiStages"]); !strings.Contains(stages, "<"+stageID+">") {
					t.Errorf("%s: ApiStages %s, want the stage", tier.Name, stages)
				}
				env := stacks.EnvUsagePlan + strings.ToUpper(string(tier.Name))
				if got := render(admin[env]); got != "<"+id+">" {
					t.Errorf("admin %s = %s, want <%s>", env, got, id)
				}
			}
			if !found {
				t.Errorf("no usage plan for tier %s", tier.Name)
			}
		}
	})
}

func TestGatewayResponses(t *testing.T) {
	want := map[string]string{
		"UNAUTHORIZED": "401", "ACCESS_DENIED": "403", "THROTTLED": "429", "QUOTA_EXCEEDED": "429",
		"DEFAULT_4XX": "", "DEFAULT_5XX": "", "AUTHORIZER_FAILURE": "503",
	}
	// What API Gateway substitutes: plain strings, and messageString quoted.
	sample := strings.NewReplacer("$context.error.messageString", `"Some \"quoted\" message"`, "$context.authorizer.error_code", "forbidden",
		"$context.authorizer.message", "Tenant is suspended", "$context.requestId", "abc-123")
	both(t, func(t *testing.T, s *synthesized) {
		got := map[string]map[string]any{}
		for _, id := range s.ofType("AWS::ApiGateway::GatewayResponse") {
			p := s.res[id].Properties
			got[p["ResponseType"].(string)] = p
		}
		for typ, status := range want {
			p, ok := got[typ]
			if !ok {
				t.Errorf("no %s gateway response", typ)
				continue
			}
			if status != "" && p["StatusCode"] != status {
				t.Errorf("%s: status %v, want %s", typ, p["StatusCode"], status)
			}
		}
		for typ, p := range got {
			tmpl := p["ResponseTemplates"].(map[string]any)["application/json"].(string)
			var body struct {
				Error struct {
					Code    string `json:"code"`
					Message string `json:"message"`
				} `json:"error"`
			}
			if err := json.Unmarshal([]byte(sample.Replace(tmpl)), &body); err != nil || body.Error.Code == "" || body.Error.Message == "" {
				t.Errorf("%s: template %s is not the error shape once rendered (%v)", typ, tmpl, err)
			}
		}
		if tmpl := got["ACCESS_DENIED"]["ResponseTemplates"].(map[string]any)["application/json"].(string); !strings.Contains(tmpl, "$context.authorizer."+api.CtxErrorCode) || !strings.Contains(tmpl, "$context.authorizer."+api.CtxMessage) {
			t.Errorf("ACCESS_DENIED does not show the authorizer's reason: %s", tmpl)
		}
	})
}

func TestTable(t *testing.T) {
	both(t, func(t *testing.T, s *synthesized) {
		_, tbl := s.only(t, "AWS::DynamoDB::Table")
		p := tbl.Properties
		checks := map[string]string{
			"KeySchema":                        `[{"AttributeName":"PK","KeyType":"HASH"},{"AttributeName":"SK","KeyType":"RANGE"}]`,
			"BillingMode":                      "PAY_PER_REQUEST",
			"PointInTimeRecoverySpecification": `{"PointInTimeRecoveryEnabled":true}`,
			"TimeToLiveSpecification":          `{"AttributeName":"expires_at","Enabled":true}`,
			"DeletionProtectionEnabled":        "true",
			"SSESpecification":                 `{"SSEEnabled":true}`,
		}
		for k, want := range checks {
			got := render(p[k])
			if _, list := p[k].([]any); list {
				got = renderJSON(p[k])
			}
			if got != want {
				t.Errorf("table %s = %s, want %s", k, got, want)
			}
		}
		if got, want := renderJSON(p["GlobalSecondaryIndexes"]),
			`[{"IndexName":"audit_by_day","KeySchema":[{"AttributeName":"audit_day","KeyType":"HASH"},{"AttributeName":"audit_sort","KeyType":"RANGE"}],"Projection":{"ProjectionType":"ALL"}}]`; got != want {
			t.Errorf("table GlobalSecondaryIndexes = %s, want %s", got, want)
		}
		if tbl.DeletionPolicy != "Retain" || tbl.UpdateReplace != "Retain" {
			t.Errorf("table DeletionPolicy %q, UpdateReplacePolicy %q; want Retain", tbl.DeletionPolicy, tbl.UpdateReplace)
		}
		must(t, "table via assertions", func() {
			s.template.HasResource(jsii.String("AWS::DynamoDB::Table"), map[string]any{
				"DeletionPolicy": "Retain",
				"Properties":     assertions.Match_ObjectLike(&map[string]any{"BillingMode": "PAY_PER_REQUEST"}),
			})
		})
	})
}

func TestBuckets(t *testing.T) {
	both(t, func(t *testing.T, s *synthesized) {
		buckets := s.ofType("AWS::S3::Bucket")
		if len(buckets) != 3 {
			t.Fatalf("%d buckets, want the data bucket, the portal bucket and the access-log bucket", len(buckets))
		}
		var data resource
		for _, id := range buckets {
			b := s.res[id]
			p := b.Properties
			if got := render(p["PublicAccessBlockConfiguration"]); got != `{"BlockPublicAcls":true,"BlockPublicPolicy":true,"IgnorePublicAcls":true,"RestrictPublicBuckets":true}` {
				t.Errorf("%s: public access block %s", id, got)
			}
			if !strings.Contains(render(p["BucketEncryption"]), `"SSEAlgorithm":"AES256"`) {
				t.Errorf("%s: encryption %s", id, render(p["BucketEncryption"]))
			}
			if b.DeletionPolicy != "Retain" || b.UpdateReplace != "Retain" {
				t.Errorf("%s: DeletionPolicy %q, UpdateReplacePolicy %q; want Retain", id, b.DeletionPolicy, b.UpdateReplace)
			}
			// enforceSSL: a Deny on aws:SecureTransport=false.
			tls := false
			for _, pid := range s.ofType("AWS::S3::BucketPolicy") {
				bp := s.res[pid].Properties
				if render(bp["Bucket"]) == "<"+id+">" && strings.Contains(render(bp["PolicyDocument"]), `"Bool":{"aws:SecureTransport":"false"}`) {
					tls = true
				}
			}
			if !tls {
				t.Errorf("%s: no TLS-only bucket policy", id)
			}
			if strings.HasPrefix(id, "PlatformBucket") {
				data = b
			}
		}
		p := data.Properties
		if render(p["VersioningConfiguration"]) != `{"Status":"Enabled"}` {
			t.Errorf("data bucket versioning %s", render(p["VersioningConfiguration"]))
		}
		if rules := render(p["LifecycleConfiguration"]); !strings.Contains(rules, `"NoncurrentVersionExpiration":{"NoncurrentDays":30}`) {
			t.Errorf("data bucket lifecycle %s, want noncurrent versions expiring after 30 days", rules)
		}
		if logs := render(p["LoggingConfiguration"]); !strings.Contains(logs, "<PlatformAccessLogBucket") {
			t.Errorf("data bucket logging %s, want the access-log bucket", logs)
		}
	})
}

// TestTenantIsolation: the data-plane functions reach the table and the
// bucket only through the tenant-access role; that role trusts exactly them,
// demands a tenant session tag, and confines sessions to the tag's tenant.
func TestTenantIsolation(t *testing.T) {
	both(t, func(t *testing.T, s *synthesized) {
		var tenantRole string
		for _, id := range s.ofType("AWS::IAM::Role") {
			if strings.HasPrefix(id, "PlatformTenantAccessRole") {
				tenantRole = id
			}
		}
		if tenantRole == "" {
			t.Fatal("no tenant-access role")
		}
		var dataPlaneRoles []string
		for _, name := range stacks.DataPlaneFunctions() {
			fn := s.functionID(t, name)
			role := s.roleOf(t, fn)
			dataPlaneRoles = append(dataPlaneRoles, "<"+role+".Arn>")
			for _, st := range s.statements(role) {
				if st["Sid"] == "ModelCatalogue" {
					// The one direct read: the model catalogue's partition, read-only.
					acts := strs(st["Action"])
					cond := render(st["Condition"])
					if strings.Join(acts, ",") != "dynamodb:GetItem,dynamodb:Query" || cond != `{"ForAllValues:StringEquals":{"dynamodb:LeadingKeys":["`+dynamo.ModelsPartition+`"]}}` {
						t.Errorf("%s: model catalogue statement %v on %s", name, acts, cond)
					}
					continue
				}
				for _, a := range strs(st["Action"]) {
					if strings.HasPrefix(a, "dynamodb:") || strings.HasPrefix(a, "s3:") {
						t.Errorf("%s has %s directly (%v); want data access only through the tenant-access role", name, a, render(st["Resource"]))
					}
				}
			}
			assumes := slices.ContainsFunc(s.statements(role), func(st map[string]any) bool {
				acts := strs(st["Action"])
				return slices.Contains(acts, "sts:AssumeRole") && slices.Contains(acts, "sts:TagSession") && render(st["Resource"]) == "<"+tenantRole+".Arn>"
			})
			if !assumes {
				t.Errorf("%s may not assume and tag the tenant-access role", name)
			}
			env := s.res[fn].Properties["Environment"].(map[string]any)["Variables"].(map[string]any)
			table, _ := s.only(t, "AWS::DynamoDB::Table")
			if render(env[stacks.EnvTenantRoleARN]) != "<"+tenantRole+".Arn>" || render(env[stacks.EnvTableARN]) != "<"+table+".Arn>" {
				t.Errorf("%s: %s=%s %s=%s", name, stacks.EnvTenantRoleARN, render(env[stacks.EnvTenantRoleARN]), stacks.EnvTableARN, render(env[stacks.EnvTableARN]))
			}
		}
		sort.Strings(dataPlaneRoles)

		trust := s.res[tenantRole].Properties["AssumeRolePolicyDocument"].(map[string]any)["Statement"].([]any)
		var trusted []string
		for _, raw := range trust {
			st := raw.(map[string]any)
			acts := strs(st["Action"])
			if !slices.Contains(acts, "sts:AssumeRole") || !slices.Contains(acts, "sts:TagSession") {
				t.Errorf("trust statement actions %v, want sts:AssumeRole and sts:TagSession", acts)
			}
			if !strings.Contains(render(st["Condition"]), `"aws:RequestTag/tenant_id":"?*"`) {
				t.Errorf("trust statement without the tenant_id session-tag condition: %s", render(st["Condition"]))
			}
			trusted = append(trusted, strs(st["Principal"].(map[string]any)["AWS"])...)
		}
		sort.Strings(trusted)
		if !slices.Equal(trusted, dataPlaneRoles) {
			t.Errorf("tenant-access role trusts %v, want exactly the data-plane roles %v", trusted, dataPlaneRoles)
		}

		var rendered []string
		for _, st := range s.statements(tenantRole) {
			rendered = append(rendered, render(st))
		}
		perms := strings.Join(rendered, "\n")
		for _, want := range []string{
			`"dynamodb:LeadingKeys":["TENANT#${aws:PrincipalTag/tenant_id}"]`,
			`/tenants/${aws:PrincipalTag/tenant_id}/*`,
			`"dynamodb:PutItem"`, `"s3:GetObject"`,
		} {
			if !strings.Contains(perms, want) {
				t.Errorf("tenant-access role policy lacks %s: %s", want, perms)
			}
		}
		if strings.Contains(perms, "dynamodb:Scan") || strings.Contains(perms, `"dynamodb:*"`) || strings.Contains(perms, `"s3:*"`) {
			t.Errorf("tenant-access role policy is too wide: %s", perms)
		}
	})
}

// TestControlPlaneGrants: explicit item actions, no wildcards, and only
// where needed.
func TestControlPlaneGrants(t *testing.T) {
	both(t, func(t *testing.T, s *synthesized) {
		for _, name := range stacks.FunctionNames() {
			var actions []string
			for _, st := range s.statements(s.roleOf(t, s.functionID(t, name))) {
				actions = append(actions, strs(st["Action"])...)
			}
			for _, a := range actions {
				if strings.HasSuffix(a, ":*") || a == "dynamodb:Scan" || strings.HasPrefix(a, "dynamodb:PartiQL") {
					t.Errorf("%s: action %s", name, a)
				}
			}
			data := slices.ContainsFunc(actions, func(a string) bool { return strings.HasPrefix(a, "dynamodb:") || strings.HasPrefix(a, "s3:") })
			switch name {
			case api.FnHealth:
				if data {
					t.Errorf("health reaches data: %v", actions)
				}
			case api.FnAuthorizer:
				for _, a := range actions {
					if strings.HasPrefix(a, "dynamodb:") && a != "dynamodb:GetItem" && a != "dynamodb:BatchGetItem" {
						t.Errorf("authorizer: %s, want reads only", a)
					}
				}
			case api.FnAdmin:
				if !slices.Contains(actions, "apigateway:POST") {
					t.Errorf("admin cannot create API keys: %v", actions)
				}
				if !strings.Contains(renderJSON(s.statements(s.roleOf(t, s.functionID(t, name)))), "/index/"+dynamo.AuditIndex) {
					t.Errorf("admin cannot query the audit index")
				}
			}
		}
	})
}

// The OpenAI-compatible endpoint the fixture configures.
const (
	openAIBaseURL   = "https://api.openai.com/v1"
	openAIKeySecret = "bulkhead/openai-key"
)

// TestModelAccess: only the execute function calls models. It may invoke
// Bedrock foundation models and the account's inference profiles (buffered
// and streamed), has Bedrock on, the endpoint's URL, and the name of the
// secret holding its key, which it may read; the key itself is nowhere in
// the template.
func TestModelAccess(t *testing.T) {
	both(t, func(t *testing.T, s *synthesized) {
		for _, name := range stacks.FunctionNames() {
			id := s.functionID(t, name)
			var bedrock, secrets []map[string]any
			for _, st := range s.statements(s.roleOf(t, id)) {
				for _, a := range strs(st["Action"]) {
					if strings.HasPrefix(a, "bedrock:") {
						bedrock = append(bedrock, st)
						break
					}
					if strings.HasPrefix(a, "secretsmanager:") {
						secrets = append(secrets, st)
						break
					}
				}
			}
			env := s.res[id].Properties["Environment"].(map[string]any)["Variables"].(map[string]any)
			if name != api.FnExecute {
				if len(bedrock) > 0 || len(secrets) > 0 || env[stacks.EnvBedrock] != nil || env[stacks.EnvOpenAIKeySecret] != nil {
					t.Errorf("%s reaches the model providers: %v %v", name, bedrock, secrets)
				}
				continue
			}
			if len(bedrock) != 1 {
				t.Fatalf("execute: Bedrock statements %v, want one", bedrock)
			}
			actions := strs(bedrock[0]["Action"])
			slices.Sort(actions)
			if !slices.Equal(actions, []string{"bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream"}) {
				t.Errorf("execute: Bedrock actions %v", actions)
			}
			res := render(bedrock[0]["Resource"])
			if !strings.Contains(res, ":foundation-model/*") || !strings.Contains(res, ":inference-profile/*") || strings.Contains(res, `"*"`) {
				t.Errorf("execute: Bedrock resources %s, want foundation models and inference profiles only", res)
			}
			if env[stacks.EnvBedrock] != "on" || env[stacks.EnvOpenAIBaseURL] != openAIBaseURL {
				t.Errorf("execute: %s = %v, %s = %v", stacks.EnvBedrock, env[stacks.EnvBedrock], stacks.EnvOpenAIBaseURL, env[stacks.EnvOpenAIBaseURL])
			}
			if got := render(env[stacks.EnvOpenAIKeySecret]); !strings.Contains(got, openAIKeySecret) {
				t.Errorf("execute: %s = %s, want the secret's name", stacks.EnvOpenAIKeySecret, got)
			}
			if len(secrets) != 1 || !slices.Contains(strs(secrets[0]["Action"]), "secretsmanager:GetSecretValue") ||
				!strings.Contains(render(secrets[0]["Resource"]), "secret:"+openAIKeySecret+"-") {
				t.Errorf("execute: secret statements %v, want GetSecretValue on %s only", secrets, openAIKeySecret)
			}
			if _, ok := env["BULKHEAD_OPENAI_API_KEY"]; ok {
				t.Error("execute: the provider key is in the function's environment")
			}
		}
	})
}

func TestBillingSchedule(t *testing.T) {
	both(t, func(t *testing.T, s *synthesized) {
		rules := map[string]string{} // schedule -> targets
		for _, id := range s.ofType("AWS::Events::Rule") {
			p := s.res[id].Properties
			rules[fmt.Sprint(p["ScheduleExpression"])] = render(p["Targets"])
		}
		if len(rules) != 2 {
			t.Fatalf("rules %v, want the monthly close and the lease reclaim", rules)
		}
		billing := "<" + s.functionID(t, api.FnBilling) + ".Arn>"
		for schedule, targets := range rules {
			if !strings.Contains(targets, billing) {
				t.Errorf("rule %s targets %s, want the billing function", schedule, targets)
			}
		}
		if _, ok := rules["cron(15 0 1 * ? *)"]; !ok {
			t.Errorf("no monthly close: %v", rules)
		}
		reclaim, ok := rules["rate(1 minute)"]
		if !ok || !strings.Contains(reclaim, api.ReclaimAction) {
			t.Errorf("no lease reclaim every minute with {\"action\": %q}: %v", api.ReclaimAction, rules)
		}
	})
}

func TestObservability(t *testing.T) {
	both(t, func(t *testing.T, s *synthesized) {
		s.only(t, "AWS::CloudWatch::Dashboard")
		names := map[string]bool{}
		for _, id := range s.ofType("AWS::CloudWatch::Alarm") {
			p := s.res[id].Properties
			names[p["AlarmName"].(string)] = true
			if len(strs(p["AlarmActions"])) == 0 {
				t.Errorf("alarm %v notifies no one", p["AlarmName"])
			}
		}
		want := []string{"Api5xxRate", "TableThrottles", "QuotaViolationSpike", "TenantErrorSpike", "TokensOverReserved"}
		for _, fn := range stacks.FunctionNames() {
			f := strings.ToUpper(fn[:1]) + fn[1:]
			want = append(want, f+"Errors", f+"Throttles")
		}
		for _, w := range want {
			if !names[s.name+"-"+w] {
				t.Errorf("no alarm %s-%s (have %v)", s.name, w, names)
			}
		}
		rules := map[string]string{}
		for _, id := range s.ofType("AWS::CloudWatch::InsightRule") {
			p := s.res[id].Properties
			rules[p["RuleName"].(string)] = render(p["RuleBody"])
		}
		errors := rules[s.name+"-"+stacks.RuleErrorsByTenant]
		if !strings.Contains(errors, `"Keys":["$.tenant_id"]`) || !strings.Contains(errors, `"GreaterThan":499,"Match":"$.status"`) {
			t.Errorf("errors-by-tenant rule %q", errors)
		}
		if len(rules) != 3 {
			t.Errorf("%d Contributor Insights rules, want 3: %v", len(rules), rules)
		}
		var dash string
		for _, id := range s.ofType("AWS::CloudWatch::Dashboard") {
			dash = render(s.res[id].Properties["DashboardBody"])
		}
		for _, m := range []string{stacks.MetricTokens, stacks.MetricSpend, stacks.MetricQuotaViolations, stacks.MetricExecutions, "5XXError", "Latency"} {
			if !strings.Contains(dash, `"`+m+`"`) {
				t.Errorf("dashboard shows no %s", m)
			}
		}
	})
}

// TestSavedQueries: the two Logs Insights queries, named after the stack so
// that the pool and the silos do not collide, over the functions' own log
// groups, with the text the operator runs.
func TestSavedQueries(t *testing.T) {
	wantQuery := map[string]string{
		stacks.QueryTenantErrors: `# One tenant's server errors, newest first: replace tn_REPLACE_ME with the tenant's id.
fields @timestamp, function, route, status, request_id, level, msg, code, error
| filter tenant_id = "tn_REPLACE_ME"
| filter (msg = "request" and status >= 500) or level = "ERROR"
| sort @timestamp desc
| limit 200`,
		stacks.QueryTopTenantsSpend: `# Top tenants by spend over the console's time range: set it to the hour you want (1h for the last one).
# From the execute function's EMF lines, one per settled execution; Spend is in USD.
filter ispresent(Spend)
| stats sum(Spend) as spend_usd, sum(Tokens) as tokens, sum(Executions) as executions by tenant_id
| sort spend_usd desc
| limit 20`,
	}
	both(t, func(t *testing.T, s *synthesized) {
		// Function log groups by logical id, as a Ref renders them.
		groupOf := map[string]string{}
		for _, id := range s.ofType("AWS::Logs::LogGroup") {
			groupOf[render(s.res[id].Properties["LogGroupName"])] = "<" + id + ">"
		}
		var every []string
		for _, name := range stacks.FunctionNames() {
			g, ok := groupOf["/aws/lambda/"+s.name+"-"+name]
			if !ok {
				t.Fatalf("no log group for function %s", name)
			}
			every = append(every, g)
		}
		wantGroups := map[string][]string{
			stacks.QueryTenantErrors:    every,
			stacks.QueryTopTenantsSpend: {groupOf["/aws/lambda/"+s.name+"-"+api.FnExecute]},
		}

		got := map[string]resource{}
		for _, id := range s.ofType("AWS::Logs::QueryDefinition") {
			got[s.res[id].Properties["Name"].(string)] = s.res[id]
		}
		if len(got) != len(wantQuery) {
			t.Errorf("%d query definitions, want %d: %v", len(got), len(wantQuery), slices.Sorted(maps.Keys(got)))
		}
		for q, text := range wantQuery {
			name := s.name + "/" + q
			r, ok := got[name]
			if !ok {
				t.Errorf("no query definition %q", name)
				continue
			}
			if r.Properties["QueryString"] != text {
				t.Errorf("%s: query\n%v\nwant\n%s", name, r.Properties["QueryString"], text)
			}
			var groups []string
			for _, g := range r.Properties["LogGroupNames"].([]any) {
				groups = append(groups, render(g))
			}
			if !slices.Equal(groups, wantGroups[q]) {
				t.Errorf("%s: log groups %v, want %v", name, groups, wantGroups[q])
			}
		}
	})
}

func TestSiloStack(t *testing.T) {
	pool, silo := stacksUnderTest(t)
	if silo.name != stacks.SiloStackPrefix+siloTenant {
		t.Errorf("silo stack %q, want %s%s", silo.name, stacks.SiloStackPrefix, siloTenant)
	}
	reserved := stacks.DefaultSiloConcurrency()
	if reserved[api.FnExecute] < 1 {
		t.Fatal("no reserved concurrency for execute")
	}
	for _, name := range stacks.FunctionNames() {
		got := silo.res[silo.functionID(t, name)].Properties["ReservedConcurrentExecutions"]
		if got != float64(reserved[name]) {
			t.Errorf("silo %s: ReservedConcurrentExecutions %v, want %d", name, got, reserved[name])
		}
		if got := pool.res[pool.functionID(t, name)].Properties["ReservedConcurrentExecutions"]; got != nil {
			t.Errorf("pool %s: ReservedConcurrentExecutions %v, want none", name, got)
		}
	}
	for _, typ := range []string{"AWS::DynamoDB::Table", "AWS::ApiGateway::RestApi", "AWS::ApiGateway::Stage"} {
		if n := len(silo.ofType(typ)); n != 1 {
			t.Errorf("silo has %d %s, want its own one", n, typ)
		}
	}
	if n := len(silo.ofType("AWS::ApiGateway::Account")); n != 0 {
		t.Errorf("silo manages the account's API Gateway settings (%d); only the pool should", n)
	}
	if n := len(pool.ofType("AWS::ApiGateway::Account")); n != 1 {
		t.Errorf("pool has %d AWS::ApiGateway::Account, want 1", n)
	}
	if pool.res[pool.functionID(t, api.FnExecute)].Properties["FunctionName"] == silo.res[silo.functionID(t, api.FnExecute)].Properties["FunctionName"] {
		t.Error("pool and silo functions share a name")
	}
}

func TestCdkNag(t *testing.T) {
	both(t, func(t *testing.T, s *synthesized) {
		for _, e := range s.nagErrors {
			t.Errorf("unsuppressed cdk-nag error: %s", e)
		}
		for _, w := range s.nagWarnings {
			t.Errorf("unsuppressed cdk-nag warning: %s", w)
		}
	})
}

// TestNoDependencyCycle: CloudFormation refuses a template whose resources
// depend on each other in a circle; nothing short of a deployment would say so.
func TestNoDependencyCycle(t *testing.T) {
	refs := regexp.MustCompile(`<([A-Za-z0-9]+)[.>]`)
	both(t, func(t *testing.T, s *synthesized) {
		deps := map[string][]string{}
		for id, r := range s.res {
			for _, m := range refs.FindAllStringSubmatch(render(r.Properties), -1) {
				if _, ok := s.res[m[1]]; ok {
					deps[id] = append(deps[id], m[1])
				}
			}
			deps[id] = append(deps[id], strs(r.DependsOn)...)
		}
		state := map[string]int{}
		var visit func(id string, path []string)
		visit = func(id string, path []string) {
			switch state[id] {
			case 1:
				t.Fatalf("dependency cycle: %s", strings.Join(append(path, id), " → "))
			case 2:
				return
			}
			state[id] = 1
			for _, d := range deps[id] {
				visit(d, append(path, id))
			}
			state[id] = 2
		}
		for id := range s.res {
			visit(id, nil)
		}
	})
}

// TestDestroyData: with destroyData the data goes with the stack.
func TestDestroyData(t *testing.T) {
	stacksUnderTest(t)
	s := fixture.disposable
	_, tbl := s.only(t, "AWS::DynamoDB::Table")
	if tbl.DeletionPolicy != "Delete" || tbl.Properties["DeletionProtectionEnabled"] != false {
		t.Errorf("table DeletionPolicy %q, DeletionProtectionEnabled %v; want Delete, false", tbl.DeletionPolicy, tbl.Properties["DeletionProtectionEnabled"])
	}
	for _, typ := range []string{"AWS::S3::Bucket", "AWS::Logs::LogGroup"} {
		for _, id := range s.ofType(typ) {
			if p := s.res[id].DeletionPolicy; p != "Delete" {
				t.Errorf("%s: DeletionPolicy %q, want Delete", id, p)
			}
		}
	}
	if len(s.nagErrors) > 0 {
		t.Errorf("cdk-nag errors: %v", s.nagErrors)
	}
}
