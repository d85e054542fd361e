package platform_test

import (
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/bulkhead-dev/bulkhead/pkg/api"
	"github.com/bulkhead-dev/bulkhead/pkg/platform"
	"github.com/bulkhead-dev/bulkhead/pkg/platform/platformtest"
)

// samEnvFile is sam local's --env-vars file in events/: it points the
// functions at a running `bulkhead dev`'s stores.
const samEnvFile = "sam-env.json"

// waitFor bounds every wait on the bootstrap: generous, as other builds may
// share the machine; only a hung bootstrap reaches it.
const waitFor = 2 * time.Minute

// runtimeAPI is a fake of the Lambda Runtime API (the 2018-06-01 paths a
// runtime calls) that hands out the events put on next, one at a time, and
// records what the runtime reports.
type runtimeAPI struct {
	srv      *httptest.Server
	next     chan []byte   // the first event, then each one sent after a report
	served   atomic.Int64  // events handed out: the request ids
	done     chan struct{} // closed at the end: releases a parked /next
	initErr  chan reported
	response chan reported
	invError chan reported
	// traceHeader, when set, is each event's Lambda-Runtime-Trace-Id.
	traceHeader atomic.Pointer[string]
}

// reported is one report of the runtime: its error type header and body.
type reported struct {
	errorType string
	body      []byte
}

func newRuntimeAPI(t *testing.T, event []byte) *runtimeAPI {
	t.Helper()
	f := &runtimeAPI{
		next: make(chan []byte, 1), done: make(chan struct{}),
		initErr: make(chan reported, 1), response: make(chan reported, 1), invError: make(chan reported, 1),
	}
	f.next <- event
	record := func(to chan reported) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			body, err := io.ReadAll(r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			select {
			case to <- reported{r.Header.Get("Lambda-Runtime-Function-Error-Type"), body}:
				w.WriteHeader(http.StatusAccepted)
			default:
				http.Error(w, "reported twice", http.StatusForbidden)
			}
		}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /2018-06-01/runtime/invocation/next", func(w http.ResponseWriter, r *http.Request) {
		var event []byte
		select {
		case event = <-f.next:
		case <-f.done:
			http.Error(w, "shutting down", http.StatusServiceUnavailable)
			return
		case <-r.Context().Done():
			return
		}
		h := w.Header()
		h.Set("Lambda-Runtime-Aws-Request-Id", "req-"+strconv.FormatInt(f.served.Add(1), 10))
		h.Set("Lambda-Runtime-Deadline-Ms", strconv.FormatInt(time.Now().Add(waitFor).UnixMilli(), 10))
		h.Set("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:123456789012:function:bulkhead-test")
		h.Set("Content-Type", "application/json")
		if th := f.traceHeader.Load(); th != nil {
			h.Set("Lambda-Runtime-Trace-Id", *th)
		}
		_, _ = w.Write(event)
	})
	mux.HandleFunc("POST /2018-06-01/runtime/invocation/{id}/response", record(f.response))
	mux.HandleFunc("POST /2018-06-01/runtime/invocation/{id}/error", record(f.invError))
	mux.HandleFunc("POST /2018-06-01/runtime/init/error", record(f.initErr))
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	t.Cleanup(func() { close(f.done) }) // runs first: nothing stays parked
	return f
}

// hostPort is the AWS_LAMBDA_RUNTIME_API value for the fake.
func (f *runtimeAPI) hostPort() string { return strings.TrimPrefix(f.srv.URL, "http://") }

// buildFunction builds functions/<name> for this machine with the Lambda
// build tag the Makefile uses, and returns the bootstrap's path.
func buildFunction(t *testing.T, name string) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("no go command on PATH: %v", err)
	}
	out := filepath.Join(t.TempDir(), "bootstrap")
	cmd := exec.Command(goTool, "build", "-tags", "lambda.norpc", "-trimpath", "-buildvcs=false", "-o", out, "./functions/"+name)
	cmd.Dir = filepath.Join("..", "..")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, b)
	}
	return out
}

// samEnvironment is the environment sam local gives the usage function of a
// template synthesized from infra/: its own variables (no credentials: SAM's
// placeholders), then each variable the template declares with the value SAM
// resolves (a Ref is the logical id, a Fn::GetAtt of an ARN a made-up Lambda
// function ARN, whatever the resource), then the values of the --env-vars
// file for the declared variables only.
func samEnvironment(home string, overrides map[string]string) map[string]string {
	env := map[string]string{
		"AWS_SAM_LOCAL":                   "true",
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
		"AWS_LAMBDA_FUNCTION_TIMEOUT":     "30",
		"AWS_LAMBDA_FUNCTION_HANDLER":     "bootstrap",
		"AWS_LAMBDA_FUNCTION_NAME":        "PlatformFnUsage",
		"AWS_LAMBDA_FUNCTION_VERSION":     "$LATEST",
		"AWS_REGION":                      "us-east-1",
		"AWS_DEFAULT_REGION":              "us-east-1",
		"AWS_ACCESS_KEY_ID":               "defaultkey",
		"AWS_SECRET_ACCESS_KEY":           "defaultsecret",
		"AWS_ACCOUNT_ID":                  "123456789012",
		// Not SAM's: keeps the developer's own AWS configuration out.
		"HOME": home, "AWS_CONFIG_FILE": filepath.Join(home, "none"), "AWS_SHARED_CREDENTIALS_FILE": filepath.Join(home, "none"),
	}
	declared := map[string]string{
		"BULKHEAD_TABLE":            "PlatformTable0D7B3A2C",
		"BULKHEAD_BUCKET":           "PlatformBucket5C3B8E1F",
		"AWS_ENDPOINT_URL_DYNAMODB": "",
		"AWS_ENDPOINT_URL_S3":       "",
		platform.EnvTenantRoleARN:   "arn:aws:lambda:us-east-1:123456789012:function:PlatformTenantAccessRole1A2B3C4D",
		"BULKHEAD_TABLE_ARN":        "arn:aws:lambda:us-east-1:123456789012:function:PlatformTable0D7B3A2C",
	}
	for k, v := range declared {
		if o, ok := overrides[k]; ok {
			v = o
		}
		env[k] = v
	}
	return env
}

// samEnvFileParameters reads the --env-vars file's values for every function.
func samEnvFileParameters(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(eventsDir, samEnvFile))
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Parameters map[string]string `json:"Parameters"`
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		t.Fatalf("events/%s: %v", samEnvFile, err)
	}
	return f.Parameters
}

// started is a bootstrap process and the fake it talks to.
type started struct {
	fake   *runtimeAPI
	pid    int
	exited chan struct{} // closed when the process has exited, with err set
	err    error
}

func startBootstrap(t *testing.T, bootstrap string, event []byte, env map[string]string) *started {
	t.Helper()
	return startTracedBootstrap(t, bootstrap, event, env, "")
}

// startTracedBootstrap is startBootstrap with an X-Ray trace header on the
// event, as Lambda gives a function with active tracing ("" for none).
func startTracedBootstrap(t *testing.T, bootstrap string, event []byte, env map[string]string, traceHeader string) *started {
	t.Helper()
	fake := newRuntimeAPI(t, event)
	if traceHeader != "" {
		fake.traceHeader.Store(&traceHeader)
	}
	env[platform.EnvRuntimeAPI] = fake.hostPort()
	cmd := exec.Command(bootstrap)
	for _, k := range slices.Sorted(maps.Keys(env)) {
		cmd.Env = append(cmd.Env, k+"="+env[k])
	}
	cmd.Stdout, cmd.Stderr = t.Output(), t.Output()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &started{fake: fake, pid: cmd.Process.Pid, exited: make(chan struct{})}
	go func() { s.err = cmd.Wait(); close(s.exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-s.exited
	})
	return s
}

// TestBootstrapUnderSAMLocal runs a real function bootstrap against a fake of
// the Lambda Runtime API, with the environment sam local gives it: with
// events/sam-env.json it serves the sample event from the stores it names;
// misconfigured, it reports why through the Runtime API's init error call.
func TestBootstrapUnderSAMLocal(t *testing.T) {
	t.Parallel()
	bootstrap := buildFunction(t, api.FnUsage)
	params := samEnvFileParameters(t)
	for _, k := range []string{"AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL_S3", platform.EnvTenantRoleARN} {
		if _, ok := params[k]; !ok {
			t.Fatalf("events/%s sets no %s", samEnvFile, k)
		}
	}

	t.Run("serves", func(t *testing.T) {
		env := platformtest.Start(t)
		f := mustFixture(t, env)
		// The file names the stores as seen from sam local's container; here
		// they are the embedded servers this test started.
		stores := map[string]string{"AWS_ENDPOINT_URL_DYNAMODB": env.Dynamo.URL(), "AWS_ENDPOINT_URL_S3": env.S3.URL()}
		for k := range stores {
			if _, err := url.Parse(params[k]); err != nil || !strings.HasPrefix(params[k], "http://") {
				t.Fatalf("events/%s: %s = %q, want an http URL", samEnvFile, k, params[k])
			}
		}
		cases := map[string]map[string]string{
			"env file": maps.Clone(params),
			// Without the file's empty ARNs, SAM's made-up ARNs stay: they
			// read as unset under sam local.
			"placeholders": {"BULKHEAD_TABLE": params["BULKHEAD_TABLE"], "BULKHEAD_BUCKET": params["BULKHEAD_BUCKET"]},
		}
		for name, overrides := range cases {
			t.Run(name, func(t *testing.T) {
				maps.Copy(overrides, stores)
				payload := f.rewrite(mustReadEvent(t, api.FnUsage))
				s := startBootstrap(t, bootstrap, payload, samEnvironment(t.TempDir(), overrides))
				var got reported
				select {
				case got = <-s.fake.response:
				case r := <-s.fake.initErr:
					t.Fatalf("init error %s: %s", r.errorType, r.body)
				case r := <-s.fake.invError:
					t.Fatalf("invocation error %s: %s", r.errorType, r.body)
				case <-s.exited:
					t.Fatalf("bootstrap exited before responding: %v", s.err)
				case <-time.After(waitFor):
					t.Fatal("no response from the bootstrap")
				}
				var resp events.APIGatewayProxyResponse
				mustDecodeStrict(t, got.body, &resp)
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("status = %d, want 200; body %s", resp.StatusCode, resp.Body)
				}
				var req events.APIGatewayProxyRequest
				if err := json.Unmarshal(payload, &req); err != nil {
					t.Fatal(err)
				}
				proxyChecks[api.FnUsage].body(t, f, req, mustJSONObject(t, resp.Body))
			})
		}
	})

	t.Run("init error", func(t *testing.T) {
		placeholder := "arn:aws:lambda:us-east-1:123456789012:function:PlatformTenantAccessRole1A2B3C4D"
		cases := []struct {
			name     string
			change   func(env map[string]string)
			wantText string
		}{
			// SAM's made-up ARN is dropped under sam local only: anywhere
			// else it is a misconfiguration, and the function does not start.
			{"placeholder outside sam local", func(env map[string]string) {
				delete(env, "AWS_SAM_LOCAL")
				env[platform.EnvTenantRoleARN] = placeholder
			}, "is not an IAM role ARN"},
			{"not an ARN under sam local", func(env map[string]string) {
				env[platform.EnvTenantRoleARN] = "PlatformTenantAccessRole1A2B3C4D"
			}, "is not an IAM role ARN"},
			{"bad setting", func(env map[string]string) {
				env["BULKHEAD_LOCAL_MODEL_DELAY"] = "soon"
			}, "BULKHEAD_LOCAL_MODEL_DELAY"},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				t.Parallel()
				env := samEnvironment(t.TempDir(), params)
				c.change(env)
				s := startBootstrap(t, bootstrap, mustReadEvent(t, api.FnUsage), env)
				var got reported
				select {
				case got = <-s.fake.initErr:
				case r := <-s.fake.response:
					t.Fatalf("the function served the event (%s); want an init error", r.body)
				case <-s.exited:
					// The report comes before the exit, but both may be
					// ready by now.
					select {
					case got = <-s.fake.initErr:
					default:
						t.Fatalf("bootstrap exited without reporting an init error: %v", s.err)
					}
				case <-time.After(waitFor):
					t.Fatal("no init error from the bootstrap")
				}
				if got.errorType != "Runtime.InitError" {
					t.Errorf("Lambda-Runtime-Function-Error-Type = %q, want Runtime.InitError", got.errorType)
				}
				var body struct {
					ErrorMessage string `json:"errorMessage"`
					ErrorType    string `json:"errorType"`
				}
				if err := json.Unmarshal(got.body, &body); err != nil {
					t.Fatalf("init error body %s: %v", got.body, err)
				}
				if !strings.Contains(body.ErrorMessage, c.wantText) || body.ErrorType != got.errorType {
					t.Errorf("init error body = %+v, want a message with %q and errorType %s", body, c.wantText, got.errorType)
				}
				select {
				case <-s.exited:
					if s.err == nil {
						t.Error("bootstrap exited with status 0 after an init error")
					}
				case <-time.After(waitFor):
					t.Error("bootstrap still running after reporting an init error")
				}
				select {
				case <-s.fake.next:
				default:
					t.Error("the bootstrap asked for an event after failing to start")
				}
			})
		}
	})
}
