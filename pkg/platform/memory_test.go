package platform_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/bulkhead-dev/bulkhead/pkg/api"
	"github.com/bulkhead-dev/bulkhead/pkg/platform/platformtest"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/<pid>/stat:
// 100 on every Linux that Lambda and this project's builds run on.
const clockTicks = 100

// lambdaMBPerVCPU is the memory size at which Lambda gives a function one
// full vCPU; below it, CPU is a proportional share.
const lambdaMBPerVCPU = 1769

// usage is what one bootstrap process used, read from /proc.
type usage struct {
	invocations int
	peakRSSKB   int     // VmHWM: what Lambda reports as Max Memory Used
	coldCPUms   float64 // start-up and the first invocation
	warmCPUms   float64 // mean of every later invocation
}

// TestFunctionMemory runs every function's real bootstrap, built for this
// machine, through the fake Runtime API with a few dozen typical requests
// each (execute: more than 50 executions, one conversation continued well
// past its full context window) on the embedded servers, then reads the
// process's peak resident memory and CPU time from /proc. It holds each
// function's peak under half of the memory it is deployed with
// (api.MemoryMB) and logs the table the README's sizing comes from.
func TestFunctionMemory(t *testing.T) {
	t.Parallel()
	if runtime.GOOS != "linux" {
		t.Skipf("reads peak memory and CPU time from /proc, which %s does not have", runtime.GOOS)
	}
	if _, err := os.Stat("/proc/self/status"); err != nil {
		t.Skipf("no /proc to read peak memory and CPU time from: %v", err)
	}
	if got, want := slices.Sorted(maps.Keys(workloads)), functionNames(t); !slices.Equal(got, want) {
		t.Fatalf("workloads for %v, want one per function %v", got, want)
	}
	bins := buildFunctions(t)
	env := platformtest.Start(t)
	f := mustFixture(t, env)
	overrides := samEnvFileParameters(t)
	overrides["AWS_ENDPOINT_URL_DYNAMODB"], overrides["AWS_ENDPOINT_URL_S3"] = env.Dynamo.URL(), env.S3.URL()

	used := map[string]usage{}
	t.Run("functions", func(t *testing.T) {
		for _, name := range slices.Sorted(maps.Keys(workloads)) {
			// One at a time, as each runs alone in its Lambda instance: CPU
			// time measured while the others run would count their contention.
			t.Run(name, func(t *testing.T) {
				fnEnv := samEnvironment(t.TempDir(), maps.Clone(overrides))
				fnEnv["AWS_LAMBDA_FUNCTION_NAME"] = "PlatformFn" + name
				fnEnv["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] = strconv.Itoa(api.MemoryMB(name))
				fnEnv["GOMEMLIMIT"] = api.GoMemLimit(name)
				d := &driver{t: t, bootstrap: bins[name], env: fnEnv, f: f}
				workloads[name](d)
				if d.s == nil {
					t.Fatal("the workload invoked nothing")
				}
				end := readProc(t, d.s.pid)
				u := usage{invocations: d.n, peakRSSKB: end.peakRSSKB, coldCPUms: d.cold.cpuMS()}
				if d.n > 1 {
					u.warmCPUms = (end.cpuMS() - d.cold.cpuMS()) / float64(d.n-1)
				}
				used[name] = u
			})
		}
	})

	var table strings.Builder
	fmt.Fprintf(&table, "\n%-10s %11s %9s %9s %9s %6s %8s %s\n", "function", "invocations", "peak RSS", "cold CPU", "CPU/inv", "size", "headroom", "CPU as wall ms at 128/256/512 MB")
	for _, name := range slices.Sorted(maps.Keys(used)) {
		u, size := used[name], api.MemoryMB(name)
		peakMB := float64(u.peakRSSKB) / 1024
		wall := func(mb int) float64 { return u.warmCPUms / (float64(mb) / lambdaMBPerVCPU) }
		fmt.Fprintf(&table, "%-10s %11d %6.1f MB %6.1f ms %6.2f ms %3d MB %7.1fx %9.1f /%6.1f /%6.1f\n",
			name, u.invocations, peakMB, u.coldCPUms, u.warmCPUms, size, float64(size)/peakMB, wall(128), wall(256), wall(512))
		if size == 0 {
			t.Errorf("%s: api.MemoryMB gives no size", name)
		} else if peakMB >= float64(size)/2 {
			t.Errorf("%s: peak RSS %.1f MB, want under half of its %d MB", name, peakMB, size)
		}
	}
	t.Log(table.String())
}

// buildFunctions builds every functions/<name> for this machine with the
// flags the Makefile's build uses, in one go command (the packages they
// share are compiled once), and returns each bootstrap's path by name.
func buildFunctions(t *testing.T) map[string]string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("no go command on PATH: %v", err)
	}
	dir := t.TempDir()
	cmd := exec.Command(goTool, "build", "-tags", "lambda.norpc", "-trimpath", "-buildvcs=false", "-ldflags=-s -w", "-o", dir+string(filepath.Separator), "./functions/...")
	cmd.Dir = filepath.Join("..", "..")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, b)
	}
	out := map[string]string{}
	for _, name := range functionNames(t) {
		out[name] = filepath.Join(dir, name)
	}
	return out
}

// procSample is a process's peak resident memory and CPU time so far.
type procSample struct {
	peakRSSKB int
	cpuTicks  int
}

func (p procSample) cpuMS() float64 { return float64(p.cpuTicks) * 1000 / clockTicks }

// readProc reads VmHWM from /proc/<pid>/status and utime+stime from
// /proc/<pid>/stat.
func readProc(tb testing.TB, pid int) procSample {
	tb.Helper()
	dir := filepath.Join("/proc", strconv.Itoa(pid))
	status, err := os.ReadFile(filepath.Join(dir, "status"))
	if err != nil {
		tb.Fatal(err)
	}
	var p procSample
	for line := range strings.Lines(string(status)) {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			if err != nil {
				tb.Fatalf("VmHWM %q: %v", v, err)
			}
			p.peakRSSKB = kb
		}
	}
	if p.peakRSSKB == 0 {
		tb.Fatalf("%s/status has no VmHWM", dir)
	}
	stat, err := os.ReadFile(filepath.Join(dir, "stat"))
	if err != nil {
		tb.Fatal(err)
	}
	// The command name, in parentheses, may hold spaces: the fields that
	// follow it are state (3), ..., utime (14), stime (15).
	i := bytes.LastIndexByte(stat, ')')
	fields := strings.Fields(string(stat[i+1:]))
	if i < 0 || len(fields) < 13 {
		tb.Fatalf("%s/stat: %q", dir, stat)
	}
	for _, s := range fields[11:13] {
		n, err := strconv.Atoi(s)
		if err != nil {
			tb.Fatalf("%s/stat: %q: %v", dir, s, err)
		}
		p.cpuTicks += n
	}
	return p
}

// driver invokes one bootstrap, event after event.
type driver struct {
	t         *testing.T
	bootstrap string
	env       map[string]string
	f         fixture
	s         *started
	n         int        // invocations so far
	cold      procSample // after the first invocation
}

// invoke hands the bootstrap one event and returns what it reported: a
// response, or (failed) an invocation error, the authorizer's answer to a
// bad key.
func (d *driver) invoke(event []byte) (got reported, failed bool) {
	d.t.Helper()
	if d.s == nil {
		d.s = startBootstrap(d.t, d.bootstrap, event, d.env)
	} else {
		d.s.fake.next <- event
	}
	select {
	case got = <-d.s.fake.response:
	case got = <-d.s.fake.invError:
		failed = true
	case r := <-d.s.fake.initErr:
		d.t.Fatalf("init error %s: %s", r.errorType, r.body)
	case <-d.s.exited:
		d.t.Fatalf("bootstrap exited: %v", d.s.err)
	case <-time.After(waitFor):
		d.t.Fatal("no response from the bootstrap")
	}
	if d.n++; d.n == 1 {
		d.cold = readProc(d.t, d.s.pid)
	}
	return got, failed
}

// call sends an API Gateway request and checks its status; it returns the
// response body, decoded.
func (d *driver) call(req events.APIGatewayProxyRequest, want int) map[string]any {
	d.t.Helper()
	req.RequestContext.RequestID = fmt.Sprintf("mem-%d", d.n+1)
	payload, err := json.Marshal(req)
	if err != nil {
		d.t.Fatal(err)
	}
	got, failed := d.invoke(payload)
	if failed {
		d.t.Fatalf("%s %s: invocation error: %s", req.HTTPMethod, req.Path, got.body)
	}
	status, body := proxyResponse(d.t, got.body)
	if status != want {
		d.t.Fatalf("%s %s: status %d, want %d; body %s", req.HTTPMethod, req.Path, status, want, body)
	}
	if strings.HasPrefix(body, "{") {
		return mustJSONObject(d.t, body)
	}
	return nil
}

// proxyResponse reads a proxy function's response: an API Gateway proxy
// response, or a streamed one (a JSON prelude, eight zero bytes, the body).
func proxyResponse(tb testing.TB, raw []byte) (int, string) {
	tb.Helper()
	var resp struct {
		StatusCode int    `json:"statusCode"`
		Body       string `json:"body"`
	}
	prelude, body, streamed := bytes.Cut(raw, make([]byte, 8))
	if err := json.Unmarshal(prelude, &resp); err != nil {
		tb.Fatalf("response %q: %v", raw, err)
	}
	if streamed {
		return resp.StatusCode, string(body)
	}
	return resp.StatusCode, resp.Body
}

// request is the function's sample event, rewritten for the fixture, as a
// request of another route of the same function.
func (d *driver) request(name, method, resource, path string, params, query map[string]string, body string) events.APIGatewayProxyRequest {
	d.t.Helper()
	var req events.APIGatewayProxyRequest
	mustDecodeStrict(d.t, d.f.rewrite(mustReadEvent(d.t, name)), &req)
	req.HTTPMethod, req.Resource, req.Path = method, resource, path
	req.RequestContext.HTTPMethod, req.RequestContext.ResourcePath = method, resource
	req.RequestContext.Path = "/" + req.RequestContext.Stage + path
	req.PathParameters, req.QueryStringParameters, req.MultiValueQueryStringParameters = params, query, nil
	for k, v := range query {
		if req.MultiValueQueryStringParameters == nil {
			req.MultiValueQueryStringParameters = map[string][]string{}
		}
		req.MultiValueQueryStringParameters[k] = []string{v}
	}
	req.Body = body
	return req
}

// workloads drives each function with typical requests.
var workloads = map[string]func(d *driver){
	api.FnExecute: func(d *driver) {
		ag := d.f.agent
		params := map[string]string{"agent_id": ag}
		execute := func(conv, message string, stream bool) string {
			body := map[string]string{"message": message}
			if conv != "" {
				body["conversation_id"] = conv
			}
			b, _ := json.Marshal(body)
			req := d.request(api.FnExecute, http.MethodPost, "/v1/agents/{agent_id}/execute", "/v1/agents/"+ag+"/execute", params, nil, string(b))
			if stream {
				req.Headers["Accept"], req.MultiValueHeaders["Accept"] = api.EventStreamType, []string{api.EventStreamType}
				if out := d.call(req, http.StatusOK); out != nil {
					d.t.Fatalf("a streamed execution answered %v, want an event stream", out)
				}
				return ""
			}
			out := d.call(req, http.StatusOK)
			id, _ := out["conversation_id"].(string)
			if id == "" || (conv != "" && id != conv) {
				d.t.Fatalf("conversation_id = %v, want %q", out["conversation_id"], conv)
			}
			return id
		}
		// One conversation to turn 30, well past its full context window
		// (10 turns), three to turn 8, and four new ones streamed.
		for c, turns := range []int{30, 8, 8, 8} {
			conv := ""
			for turn := 1; turn <= turns; turn++ {
				conv = execute(conv, fmt.Sprintf("Conversation %d, turn %d: my invoice for March looks too high. Can you check the overage?", c, turn), false)
			}
		}
		for i := range 4 {
			execute("", fmt.Sprintf("Streamed question %d: what does the Starter tier include?", i), true)
		}
	},

	api.FnAuthorizer: func(d *driver) {
		sample := d.f.rewrite(mustReadEvent(d.t, api.FnAuthorizer))
		routes := api.Routes()
		for i := range 30 {
			var ev events.APIGatewayCustomAuthorizerRequest
			mustDecodeStrict(d.t, sample, &ev)
			r := routes[i%len(routes)]
			ev.MethodArn = "arn:aws:execute-api:us-east-1:123456789012:abc123/prod/" + r.Method + strings.ReplaceAll(r.Resource, "{agent_id}", d.f.agent)
			bad := i%10 == 9 // a key that is no key: refused
			if bad {
				ev.AuthorizationToken = "Bearer bk_live_" + strings.Repeat("A", 43)
			}
			payload, _ := json.Marshal(ev)
			got, failed := d.invoke(payload)
			if failed != bad {
				d.t.Fatalf("authorizer with a bad key %v: failed %v, want %v; body %s", bad, failed, bad, got.body)
			}
		}
	},

	api.FnAgents: func(d *driver) {
		fn := api.FnAgents
		one := map[string]string{"agent_id": d.f.agent}
		var ev events.APIGatewayProxyRequest
		mustDecodeStrict(d.t, d.f.rewrite(mustReadEvent(d.t, fn)), &ev)
		for range 3 {
			d.call(d.request(fn, http.MethodPost, "/v1/agents", "/v1/agents", nil, nil, ev.Body), http.StatusCreated)
		}
		for range 8 {
			d.call(d.request(fn, http.MethodGet, "/v1/agents", "/v1/agents", nil, map[string]string{"limit": "20"}, ""), http.StatusOK)
			d.call(d.request(fn, http.MethodGet, "/v1/agents/{agent_id}", "/v1/agents/"+d.f.agent, one, nil, ""), http.StatusOK)
			d.call(d.request(fn, http.MethodGet, "/v1/conversations", "/v1/conversations", nil, nil, ""), http.StatusOK)
		}
		for range 4 {
			d.call(d.request(fn, http.MethodGet, "/v1/models", "/v1/models", nil, nil, ""), http.StatusOK)
			d.call(d.request(fn, http.MethodPatch, "/v1/agents/{agent_id}", "/v1/agents/"+d.f.agent, one, nil, `{"system_prompt":"You are a helpful assistant. Keep replies short."}`), http.StatusOK)
		}
	},

	api.FnUsage: func(d *driver) {
		fn := api.FnUsage
		for range 10 {
			d.call(d.request(fn, http.MethodGet, "/v1/usage", "/v1/usage", nil, nil, ""), http.StatusOK)
			d.call(d.request(fn, http.MethodGet, "/v1/usage/records", "/v1/usage/records", nil, map[string]string{"limit": "50"}, ""), http.StatusOK)
			d.call(d.request(fn, http.MethodGet, "/v1/usage/daily", "/v1/usage/daily", nil, nil, ""), http.StatusOK)
		}
	},

	api.FnKeys: func(d *driver) {
		fn := api.FnKeys
		var created []string
		for i := range 5 {
			out := d.call(d.request(fn, http.MethodPost, "/v1/keys", "/v1/keys", nil, nil, fmt.Sprintf(`{"name":"ci-%d"}`, i)), http.StatusCreated)
			created = append(created, wantID(d.t, out, "key_id", "key"))
		}
		for range 20 {
			d.call(d.request(fn, http.MethodGet, "/v1/keys", "/v1/keys", nil, map[string]string{"limit": "20"}, ""), http.StatusOK)
		}
		for _, id := range created {
			d.call(d.request(fn, http.MethodDelete, "/v1/keys/{key_id}", "/v1/keys/"+id, map[string]string{"key_id": id}, nil, ""), http.StatusOK)
		}
	},

	api.FnAdmin: func(d *driver) {
		fn := api.FnAdmin
		for i := range 5 {
			d.call(d.request(fn, http.MethodPost, "/v1/admin/tenants", "/v1/admin/tenants", nil, nil, fmt.Sprintf(`{"name":"Tenant %d","tier":"starter"}`, i)), http.StatusCreated)
		}
		tn := d.f.tenant.ID
		for range 8 {
			d.call(d.request(fn, http.MethodGet, "/v1/admin/tenants", "/v1/admin/tenants", nil, map[string]string{"limit": "10"}, ""), http.StatusOK)
			d.call(d.request(fn, http.MethodGet, "/v1/admin/tenants/{tenant_id}", "/v1/admin/tenants/"+tn, map[string]string{"tenant_id": tn}, nil, ""), http.StatusOK)
			d.call(d.request(fn, http.MethodGet, "/v1/admin/models", "/v1/admin/models", nil, nil, ""), http.StatusOK)
		}
	},

	api.FnHealth: func(d *driver) {
		for range 30 {
			d.call(d.request(api.FnHealth, http.MethodGet, "/health", "/health", nil, nil, ""), http.StatusOK)
		}
	},

	api.FnBilling: func(d *driver) {
		fn := api.FnBilling
		for range 10 {
			d.call(d.request(fn, http.MethodGet, "/v1/billing/current", "/v1/billing/current", nil, nil, ""), http.StatusOK)
			d.call(d.request(fn, http.MethodGet, "/v1/billing/invoices", "/v1/billing/invoices", nil, nil, ""), http.StatusOK)
		}
		// The stack's schedules: the lease reclaim every few minutes, and
		// the monthly close of every tenant.
		for range 5 {
			if got, failed := d.invoke([]byte(`{"action":"` + api.ReclaimAction + `"}`)); failed {
				d.t.Fatalf("reclaim: %s", got.body)
			}
		}
		monthly := `{"version":"0","id":"mem","detail-type":"Scheduled Event","source":"aws.events","account":"123456789012","time":"` +
			time.Now().UTC().Format(time.RFC3339) + `","region":"us-east-1","resources":[],"detail":{}}`
		if got, failed := d.invoke([]byte(monthly)); failed {
			d.t.Fatalf("monthly close: %s", got.body)
		}
	},
}
