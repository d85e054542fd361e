//go:build unix

package main_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/bulkhead-dev/bulkhead/pkg/api/apispec"
)

// Deadlines for the platform process. They bound a hung process; a healthy
// one is ready and stopped in well under a second.
const (
	readyTimeout = 60 * time.Second
	stopTimeout  = 30 * time.Second
)

// The binary under test is built once per test binary run, without -race:
// the tests drive it as a user would, from outside.
var (
	binOnce sync.Once
	binPath string
	binErr  error
	binDir  string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// mustBinary returns the path of the freshly built bulkhead binary.
func mustBinary(tb testing.TB) string {
	tb.Helper()
	binOnce.Do(func() {
		binDir, binErr = os.MkdirTemp("", "bulkhead-e2e-bin-")
		if binErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "bulkhead")
		// The test runs in cmd/bulkhead, so "." is the command's package.
		// `go test` puts its own go first on PATH.
		cmd := exec.Command("go", "build", "-o", binPath, ".")
		out, err := cmd.CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		tb.Fatalf("build bulkhead: %v", binErr)
	}
	return binPath
}

// output collects a stream of the process and wakes up whoever waits for
// more of it; it is safe for concurrent use.
type output struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	changed chan struct{} // closed and replaced on every write
}

func newOutput() *output { return &output{changed: make(chan struct{})} }

func (o *output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.buf.Write(p)
	close(o.changed)
	o.changed = make(chan struct{})
	return len(p), nil
}

// snapshot returns what was written so far and a channel closed on the next write.
func (o *output) snapshot() (string, <-chan struct{}) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String(), o.changed
}

func (o *output) String() string {
	s, _ := o.snapshot()
	return s
}

// proc is one running `bulkhead dev`.
type proc struct {
	cmd    *exec.Cmd
	stdout *output
	stderr *output
	exited chan struct{} // closed when the process has exited and its output is drained
	// banner holds the "Name: value" lines printed before "Ready.", in order.
	banner []string
	// URL is the API's base URL, from the "Bulkhead API:" banner line.
	URL string
}

// value returns the banner value of the line "name: value", and whether it was printed.
func (p *proc) value(name string) (string, bool) {
	for _, l := range p.banner {
		if k, v, ok := strings.Cut(l, ": "); ok && k == name {
			return v, true
		}
	}
	return "", false
}

func (p *proc) mustValue(tb testing.TB, name string) string {
	tb.Helper()
	v, ok := p.value(name)
	if !ok {
		tb.Fatalf("banner has no %q line; banner:\n%s", name, strings.Join(p.banner, "\n"))
	}
	return v
}

// exitCode is the process's exit code once it has exited (-1 when killed by a signal).
func (p *proc) exitCode() int { return p.cmd.ProcessState.ExitCode() }

// startDev starts `bulkhead dev` on a free port with dataDir and adminToken and
// waits for "Ready.". The process is killed in cleanup's Cleanup whatever
// happens, so it may outlive the (sub)test tb that started it. A port taken
// between picking it and the process binding it is retried.
func startDev(tb, cleanup testing.TB, dataDir, adminToken string) *proc {
	tb.Helper()
	return startDevEnv(tb, cleanup, dataDir, adminToken)
}

// startDevEnv is startDev with extra environment variables ("NAME=value"),
// which take precedence over the defaults startDev sets.
func startDevEnv(tb, cleanup testing.TB, dataDir, adminToken string, env ...string) *proc {
	tb.Helper()
	bin := mustBinary(tb)
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		p, err := tryStartDev(cleanup, bin, dataDir, adminToken, env)
		if err == nil {
			return p
		}
		lastErr = err
		if !strings.Contains(err.Error(), "address already in use") {
			break
		}
	}
	tb.Fatalf("start bulkhead dev: %v", lastErr)
	return nil
}

func tryStartDev(cleanup testing.TB, bin, dataDir, adminToken string, env []string) (*proc, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "dev")
	cmd.Env = append(os.Environ(),
		"BULKHEAD_ADDR="+addr,
		"BULKHEAD_DATA_DIR="+dataDir,
		"BULKHEAD_ADMIN_TOKEN="+adminToken,
		// The embedded servers must be used even when the developer's shell
		// points the SDK somewhere else.
		"AWS_ENDPOINT_URL=", "AWS_ENDPOINT_URL_DYNAMODB=", "AWS_ENDPOINT_URL_S3=",
		"BULKHEAD_DYNAMODB_ADDR=", "BULKHEAD_S3_ADDR=", "BULKHEAD_DYNAMODB=", "BULKHEAD_S3=",
		"BULKHEAD_LOCAL_MODEL_DELAY=",
	)
	// exec.Cmd uses the last value of a duplicated name.
	cmd.Env = append(cmd.Env, env...)
	noteSecret(adminToken)
	noteSecretsInEnv(env)
	p := &proc{cmd: cmd, stdout: newOutput(), stderr: newOutput(), exited: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.stdout, p.stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		_ = cmd.Wait()
		close(p.exited)
	}()
	cleanup.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			_ = cmd.Process.Kill()
			<-p.exited
		}
		checkNoSecrets(cleanup, p, dataDir)
		if cleanup.Failed() {
			cleanup.Logf("bulkhead dev (data dir %s) stdout:\n%s\nstderr (last 4 KiB):\n%s",
				dataDir, p.stdout.String(), tail(p.stderr.String(), 4096))
		}
	})

	deadline := time.NewTimer(readyTimeout)
	defer deadline.Stop()
	for {
		out, changed := p.stdout.snapshot()
		if banner, ok := bannerBeforeReady(out); ok {
			p.banner = banner
			break
		}
		select {
		case <-changed:
		case <-p.exited:
			// The output is complete once the process has exited.
			if banner, ok := bannerBeforeReady(p.stdout.String()); ok {
				p.banner = banner
				return nil, fmt.Errorf("exited right after Ready (code %d)\nstderr:\n%s", p.exitCode(), p.stderr.String())
			}
			return nil, fmt.Errorf("exited before Ready (code %d)\nstdout:\n%s\nstderr:\n%s",
				p.exitCode(), p.stdout.String(), p.stderr.String())
		case <-deadline.C:
			return nil, fmt.Errorf("no \"Ready.\" within %v\nstdout:\n%s\nstderr:\n%s",
				readyTimeout, p.stdout.String(), tail(p.stderr.String(), 4096))
		}
	}
	p.URL, _ = p.value("Bulkhead API")
	if !strings.HasPrefix(p.URL, "http://") {
		return nil, fmt.Errorf("banner's API URL is %q, want http://%s\n%s", p.URL, addr, strings.Join(p.banner, "\n"))
	}
	return p, nil
}

// bannerBeforeReady returns the complete lines printed before the "Ready." line, once it was printed.
func bannerBeforeReady(out string) ([]string, bool) {
	var banner []string
	for len(out) > 0 {
		line, rest, complete := strings.Cut(out, "\n")
		if !complete {
			return nil, false
		}
		if strings.HasPrefix(line, "Ready.") {
			return banner, true
		}
		banner = append(banner, line)
		out = rest
	}
	return nil, false
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}

// stop sends SIGTERM, as Ctrl-C or a service manager would, and insists on a
// clean exit with code 0.
func (p *proc) stop(tb testing.TB) {
	tb.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		tb.Fatalf("SIGTERM: %v", err)
	}
	select {
	case <-p.exited:
	case <-time.After(stopTimeout):
		tb.Fatalf("bulkhead dev did not exit within %v of SIGTERM", stopTimeout)
	}
	if got := p.exitCode(); got != 0 {
		tb.Fatalf("exit code after SIGTERM = %d, want 0\nstderr:\n%s", got, tail(p.stderr.String(), 4096))
	}
	if out := p.stdout.String(); !strings.Contains(out, "Stopped; state saved in") {
		tb.Errorf("stdout after SIGTERM has no \"Stopped; state saved in\" line:\n%s", out)
	}
}

// kill sends SIGKILL: no shutdown code runs, as in a crash or an OOM kill.
func (p *proc) kill(tb testing.TB) {
	tb.Helper()
	if err := p.cmd.Process.Kill(); err != nil {
		tb.Fatalf("SIGKILL: %v", err)
	}
	select {
	case <-p.exited:
	case <-time.After(stopTimeout):
		tb.Fatalf("bulkhead dev did not exit within %v of SIGKILL", stopTimeout)
	}
}

// client calls the API over HTTP.
type client struct {
	base string
	hc   *http.Client
}

func newClient(base string) *client {
	return &client{base: base, hc: &http.Client{Timeout: 30 * time.Second}}
}

// response is an API answer: its status, raw body and the body decoded as a
// JSON object (numbers kept as json.Number), nil when it is not one.
type response struct {
	method, path string
	Status       int
	Header       http.Header
	Body         []byte
	JSON         map[string]any
}

func (r *response) String() string {
	return fmt.Sprintf("%s %s -> %d %s", r.method, r.path, r.Status, tail(string(r.Body), 1000))
}

// rawJSON is a request body sent exactly as given (malformed JSON included).
type rawJSON string

// do sends one request. key is the bearer token ("" sends no Authorization
// header); body is nil (no body), a rawJSON, or anything json.Marshal takes.
// Only transport failures fail the test here: statuses are the caller's to check.
func (c *client) do(tb testing.TB, method, path, key string, body any) *response {
	tb.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case rawJSON:
		rd = strings.NewReader(string(b))
	default:
		bs, err := json.Marshal(b)
		if err != nil {
			tb.Fatalf("marshal request body: %v", err)
		}
		rd = bytes.NewReader(bs)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		tb.Fatalf("new request %s %s: %v", method, path, err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
		noteSecret(key)
	}
	if b, ok := body.(rawJSON); ok {
		noteSecretsIn([]byte(b))
	} else if body != nil {
		bs, _ := json.Marshal(body)
		noteSecretsIn(bs)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, path, err)
	}
	r, err := readResponse(resp, method, path)
	if err != nil {
		tb.Fatalf("%s %s: read body: %v", method, path, err)
	}
	noteSecretsIn(r.Body)
	// Every answer is held to the OpenAPI document.
	if oracle, err := apispec.Load(); err != nil {
		tb.Fatalf("OpenAPI document: %v", err)
	} else if err := oracle.Check(req, r.Status, r.Header, r.Body); err != nil {
		tb.Error(err)
	}
	return r
}

// readResponse reads and closes an answer: its status, body, and the body
// decoded as a JSON object when it is one.
func readResponse(resp *http.Response, method, path string) (*response, error) {
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	r := &response{method: method, path: path, Status: resp.StatusCode, Header: resp.Header, Body: b}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var m map[string]any
	if dec.Decode(&m) == nil {
		r.JSON = m
	}
	return r, err
}

// must sends a request and fails the test unless the status is want.
func (c *client) must(tb testing.TB, want int, method, path, key string, body any) *response {
	tb.Helper()
	r := c.do(tb, method, path, key, body)
	if r.Status != want {
		tb.Fatalf("%v\nstatus = %d, want %d", r, r.Status, want)
	}
	if r.JSON == nil {
		tb.Fatalf("%v\nbody is not a JSON object", r)
	}
	return r
}

// wantError checks that r is an error in the public shape
// {"error":{"code":...,"message":...}} with one of the given statuses and the code.
func wantError(tb testing.TB, r *response, code string, statuses ...int) {
	tb.Helper()
	okStatus := false
	for _, s := range statuses {
		okStatus = okStatus || r.Status == s
	}
	if !okStatus {
		tb.Errorf("%v\nstatus = %d, want one of %v", r, r.Status, statuses)
		return
	}
	e, ok := r.JSON["error"].(map[string]any)
	if !ok {
		tb.Errorf("%v\nbody has no \"error\" object", r)
		return
	}
	if got, _ := e["code"].(string); code != "" && got != code {
		tb.Errorf("%v\nerror.code = %q, want %q", r, got, code)
	}
	if msg, _ := e["message"].(string); strings.TrimSpace(msg) == "" {
		tb.Errorf("%v\nerror.message is empty", r)
	}
}

// lookup follows a dotted path ("usage.input_tokens") through JSON objects.
func lookup(v any, path string) (any, bool) {
	for _, k := range strings.Split(path, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			return nil, false
		}
		if v, ok = m[k]; !ok {
			return nil, false
		}
	}
	return v, true
}

func (r *response) get(tb testing.TB, path string) any {
	tb.Helper()
	v, ok := lookup(r.JSON, path)
	if !ok {
		tb.Fatalf("%v\nno field %q", r, path)
	}
	return v
}

func (r *response) str(tb testing.TB, path string) string {
	tb.Helper()
	s, ok := r.get(tb, path).(string)
	if !ok {
		tb.Fatalf("%v\n%s = %v, want a string", r, path, r.get(tb, path))
	}
	return s
}

func (r *response) num(tb testing.TB, path string) json.Number {
	tb.Helper()
	n, ok := r.get(tb, path).(json.Number)
	if !ok {
		tb.Fatalf("%v\n%s = %#v, want a number", r, path, r.get(tb, path))
	}
	return n
}

// int returns an integer field; a number with a fraction or exponent fails the test.
func (r *response) int(tb testing.TB, path string) int64 {
	tb.Helper()
	n := r.num(tb, path)
	i, err := n.Int64()
	if err != nil || strings.ContainsAny(n.String(), ".eE") {
		tb.Fatalf("%v\n%s = %s, want an integer", r, path, n)
	}
	return i
}

// micros returns a USD amount field as exact micro-dollars, never through a float.
func (r *response) micros(tb testing.TB, path string) int64 {
	tb.Helper()
	n := r.num(tb, path)
	m, err := micros(n)
	if err != nil {
		tb.Fatalf("%v\n%s: %v", r, path, err)
	}
	return m
}

func micros(n json.Number) (int64, error) {
	rat, ok := new(big.Rat).SetString(n.String())
	if !ok {
		return 0, fmt.Errorf("%s is not a decimal", n)
	}
	rat.Mul(rat, big.NewRat(1_000_000, 1))
	if !rat.IsInt() || !rat.Num().IsInt64() {
		return 0, fmt.Errorf("%s is not a whole number of micro-dollars", n)
	}
	return rat.Num().Int64(), nil
}

// items returns the "data" array of a list response, each item a JSON object.
func (r *response) items(tb testing.TB) []map[string]any {
	tb.Helper()
	return r.objects(tb, "data")
}

func (r *response) objects(tb testing.TB, path string) []map[string]any {
	tb.Helper()
	arr, ok := r.get(tb, path).([]any)
	if !ok {
		tb.Fatalf("%v\n%s is not an array", r, path)
	}
	out := make([]map[string]any, len(arr))
	for i, v := range arr {
		if out[i], ok = v.(map[string]any); !ok {
			tb.Fatalf("%v\n%s[%d] is not an object", r, path, i)
		}
	}
	return out
}

// ids returns field of each item of a list response.
func (r *response) ids(tb testing.TB, field string) []string {
	tb.Helper()
	var out []string
	for _, it := range r.items(tb) {
		s, _ := it[field].(string)
		out = append(out, s)
	}
	return out
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// shellWords splits a command line as a POSIX shell would for the quoting the
// banner uses: blanks separate words, '...' and "..." quote.
func shellWords(s string) ([]string, error) {
	var (
		words []string
		cur   strings.Builder
		in    bool // inside a word
		quote rune
	)
	for _, c := range s {
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			} else {
				cur.WriteRune(c)
			}
		case c == '\'' || c == '"':
			quote, in = c, true
		case c == ' ' || c == '\t':
			if in {
				words = append(words, cur.String())
				cur.Reset()
				in = false
			}
		default:
			cur.WriteRune(c)
			in = true
		}
	}
	if quote != 0 {
		return nil, errors.New("unterminated quote")
	}
	if in {
		words = append(words, cur.String())
	}
	return words, nil
}
