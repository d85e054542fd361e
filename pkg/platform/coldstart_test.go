package platform_test

import (
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bulkhead-dev/bulkhead/pkg/api"
	"github.com/bulkhead-dev/bulkhead/pkg/platform"
)

// EnvBenchBootstrap names a bootstrap BenchmarkColdStart times instead of
// building functions/execute: an earlier version's, to compare.
const EnvBenchBootstrap = "BULKHEAD_BENCH_BOOTSTRAP"

// BenchmarkColdStart times a function's init the way Lambda sees it: from
// exec of the execute bootstrap (built for this machine with the Makefile's
// flags) to its first request for an event, with tracing configured as the
// stack configures it. ns/op is the mean of that time, median-init-ms its
// median.
func BenchmarkColdStart(b *testing.B) {
	bootstrap := os.Getenv(EnvBenchBootstrap)
	if bootstrap == "" {
		bootstrap = buildLambdaBootstrap(b, api.FnExecute)
	}
	asked := make(chan struct{}, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/runtime/invocation/next") {
			asked <- struct{}{}
			<-r.Context().Done() // parked, as Lambda parks it, until the process is killed
			return
		}
		http.Error(w, "unexpected "+r.Method+" "+r.URL.Path, http.StatusNotFound)
	}))
	b.Cleanup(srv.Close)
	home := b.TempDir()
	env := map[string]string{
		platform.EnvRuntimeAPI:     strings.TrimPrefix(srv.URL, "http://"),
		"AWS_LAMBDA_FUNCTION_NAME": "bulkhead-execute", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
		"AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "secret", "AWS_SESSION_TOKEN": "token",
		"AWS_XRAY_DAEMON_ADDRESS": "169.254.79.129:2000", "BULKHEAD_OTEL_EXPORTER": "xray",
		"BULKHEAD_TABLE": "bulkhead", "BULKHEAD_BUCKET": "bulkhead-data",
		"HOME": home, "AWS_CONFIG_FILE": filepath.Join(home, "none"), "AWS_SHARED_CREDENTIALS_FILE": filepath.Join(home, "none"),
	}
	var environ []string
	for _, k := range slices.Sorted(maps.Keys(env)) {
		environ = append(environ, k+"="+env[k])
	}
	var inits []time.Duration
	b.ResetTimer()
	for b.Loop() {
		cmd := exec.Command(bootstrap)
		cmd.Env = environ
		start := time.Now()
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		select {
		case <-asked:
		case <-time.After(waitFor):
			_ = cmd.Process.Kill()
			b.Fatal("the bootstrap never asked for an event")
		}
		inits = append(inits, time.Since(start))
		b.StopTimer()
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		b.StartTimer()
	}
	// The median is steadier than the mean on a shared machine.
	slices.Sort(inits)
	b.ReportMetric(float64(inits[len(inits)/2].Microseconds())/1000, "median-init-ms")
}

// buildLambdaBootstrap builds functions/<name> for this machine with the
// Makefile's Lambda flags (LAMBDA_FLAGS), and returns the bootstrap's path.
func buildLambdaBootstrap(tb testing.TB, name string) string {
	tb.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		tb.Fatalf("no go command on PATH: %v", err)
	}
	out := filepath.Join(tb.TempDir(), "bootstrap")
	cmd := exec.Command(goTool, "build", "-tags", "lambda.norpc", "-trimpath", "-buildvcs=false", "-ldflags=-s -w", "-o", out, "./functions/"+name)
	cmd.Dir = filepath.Join("..", "..")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, b)
	}
	return out
}
