package apigw_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/apigateway"

	"github.com/bulkhead-dev/bulkhead/pkg/apigw"
	"github.com/bulkhead-dev/bulkhead/pkg/awsfake"
	"github.com/bulkhead-dev/bulkhead/pkg/bulkhead"
)

// The region and credentials the client signs with and the fake expects.
const (
	testRegion    = "us-east-1"
	testAccessKey = "AKIDBULKHEADTEST"
	testSecret    = "secret"
)

// fakeClock is a clock that only moves when slept on, so that the rate
// limiter's waits cost no wall-clock time and its timestamps are exact.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

// newFakeClock returns a clock stopped at a fixed instant.
func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 11, 28, 22, 0, 0, 0, time.UTC)}
}

// Now returns the clock's time.
func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Sleep advances the clock by d at once.
func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	return nil
}

// memCounter is an in-memory KeyCounter, for tests only; the platform's is a
// conditional counter in DynamoDB.
type memCounter struct {
	mu sync.Mutex
	n  int
}

var _ apigw.KeyCounter = (*memCounter)(nil)

// Reserve takes a slot if fewer than max are taken.
func (c *memCounter) Reserve(_ context.Context, max int) (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n >= max {
		return false, nil
	}
	c.n++
	return true, nil
}

// Release gives a slot back.
func (c *memCounter) Release(context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n > 0 {
		c.n--
	}
	return nil
}

// count returns the slots taken.
func (c *memCounter) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

// call is one request the fake received.
type call struct {
	// Line is "METHOD /path?sorted-query {canonical JSON body}", trimmed.
	Line string
	At   time.Time
}

// fakeKey is an API key held by the fake.
type fakeKey struct {
	ID, Name, Value string
	Enabled         bool
	Tags            map[string]string
	Created         time.Time
}

// failure makes the fake answer matching requests with an error, times
// times.
type failure struct {
	method, path string
	status       int
	errType      string
	retryAfter   string
	// skip matching requests pass before the next times fail.
	skip, times int
}

// fakeAPIGateway implements the API Gateway REST routes this package calls,
// in API Gateway's wire format, and records every request.
type fakeAPIGateway struct {
	tb    testing.TB
	clock *fakeClock
	// oneStage makes every plan cover the same API stage, so that a key may
	// be in only one of them, as in the platform's stack.
	oneStage bool
	// pageSize caps the items of a GetApiKeys page.
	pageSize int

	mu       sync.Mutex
	calls    []call
	keys     map[string]*fakeKey
	order    []string
	plans    map[string]map[string]bool
	failures []*failure
	lastID   int
}

// newFake starts a fake API Gateway with the given usage plans, stopped at
// the end of the test.
func newFake(tb testing.TB, clock *fakeClock, plans ...string) (*fakeAPIGateway, *httptest.Server) {
	tb.Helper()
	f := &fakeAPIGateway{tb: tb, clock: clock, pageSize: 500, keys: map[string]*fakeKey{}, plans: map[string]map[string]bool{}}
	for _, p := range plans {
		f.plans[p] = map[string]bool{}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /apikeys", f.createAPIKey)
	mux.HandleFunc("GET /apikeys", f.getAPIKeys)
	mux.HandleFunc("PATCH /apikeys/{id}", f.updateAPIKey)
	mux.HandleFunc("DELETE /apikeys/{id}", f.deleteAPIKey)
	mux.HandleFunc("POST /usageplans/{plan}/keys", f.createUsagePlanKey)
	mux.HandleFunc("GET /usageplans/{plan}/keys/{key}", f.getUsagePlanKey)
	mux.HandleFunc("DELETE /usageplans/{plan}/keys/{key}", f.deleteUsagePlanKey)
	srv := httptest.NewServer(f.middleware(mux))
	tb.Cleanup(srv.Close)
	return f, srv
}

// middleware checks the SigV4 signature's presence and scope, records the
// request, and applies injected failures.
func (f *fakeAPIGateway) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			f.tb.Errorf("read body: %v", err)
		}
		creds := awsfake.Credentials{AccessKey: testAccessKey, SecretKey: testSecret, Region: testRegion, Service: "apigateway"}
		if typ, msg := awsfake.VerifySigV4(r, body, creds); typ != "" {
			f.tb.Errorf("%s %s: not SigV4-signed for apigateway in %s: %s: %s (Authorization %q)",
				r.Method, r.URL.Path, testRegion, typ, msg, r.Header.Get("Authorization"))
			writeError(w, http.StatusForbidden, "UnauthorizedException", "missing or bad signature", "")
			return
		}
		line := r.Method + " " + r.URL.Path
		if q := r.URL.Query(); len(q) > 0 {
			line += "?" + q.Encode()
		}
		if len(body) > 0 {
			var v any
			if err := json.Unmarshal(body, &v); err != nil {
				f.tb.Errorf("%s: body is not JSON: %q", line, body)
			}
			canon, _ := json.Marshal(v)
			line += " " + string(canon)
		}
		f.mu.Lock()
		f.calls = append(f.calls, call{Line: line, At: f.clock.Now()})
		var fail *failure
		for _, fl := range f.failures {
			if fl.times == 0 || fl.method != r.Method || !strings.HasPrefix(r.URL.Path, fl.path) {
				continue
			}
			if fl.skip > 0 {
				fl.skip--
				continue
			}
			fl.times--
			fail = fl
			break
		}
		f.mu.Unlock()
		if fail != nil {
			writeError(w, fail.status, fail.errType, "injected "+fail.errType, fail.retryAfter)
			return
		}
		r.Body = io.NopCloser(strings.NewReader(string(body)))
		next.ServeHTTP(w, r)
	})
}

// fail makes the next times requests whose method is method and whose path
// starts with path fail with status and errType, and the Retry-After header
// when one is given.
func (f *fakeAPIGateway) fail(method, path string, status int, errType string, times int, retryAfter ...string) {
	fl := &failure{method: method, path: path, status: status, errType: errType, times: times}
	if len(retryAfter) > 0 {
		fl.retryAfter = retryAfter[0]
	}
	f.addFailure(fl)
}

// failAfter is fail for the requests after the first skip matching ones.
func (f *fakeAPIGateway) failAfter(skip int, method, path string, status int, errType string, times int) {
	f.addFailure(&failure{method: method, path: path, status: status, errType: errType, skip: skip, times: times})
}

// addFailure adds a failure.
func (f *fakeAPIGateway) addFailure(fl *failure) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failures = append(f.failures, fl)
}

// takeCalls returns the requests recorded since the last takeCalls.
func (f *fakeAPIGateway) takeCalls() []call {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.calls
	f.calls = nil
	return c
}

// plansOf returns the plans that hold a key, sorted.
func (f *fakeAPIGateway) plansOf(keyID string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for p, keys := range f.plans {
		if keys[keyID] {
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return out
}

// key returns a copy of a key, and whether it exists.
func (f *fakeAPIGateway) key(id string) (fakeKey, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	k, ok := f.keys[id]
	if !ok {
		return fakeKey{}, false
	}
	return *k, true
}

// keyCount returns how many keys the fake holds.
func (f *fakeAPIGateway) keyCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.keys)
}

// attachDirect puts a key in a plan without a request, as another process
// would have.
func (f *fakeAPIGateway) attachDirect(plan, keyID string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.plans[plan][keyID] = true
}

// writeError answers in API Gateway's error format: the exception's name in
// X-Amzn-ErrorType and {"message": ...} in the body.
func writeError(w http.ResponseWriter, status int, errType, msg, retryAfter string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Amzn-ErrorType", errType)
	if retryAfter != "" {
		w.Header().Set("Retry-After", retryAfter)
	}
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"message": msg})
}

// writeJSON answers with a JSON body.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// keyJSON renders a key as API Gateway does; the value only when asked.
func keyJSON(k *fakeKey, withValue bool) map[string]any {
	m := map[string]any{
		"id": k.ID, "name": k.Name, "enabled": k.Enabled, "tags": k.Tags,
		"createdDate": k.Created.Unix(), "lastUpdatedDate": k.Created.Unix(), "stageKeys": []string{},
	}
	if withValue {
		m["value"] = k.Value
	}
	return m
}

// createAPIKey is POST /apikeys.
func (f *fakeAPIGateway) createAPIKey(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Name    string            `json:"name"`
		Enabled bool              `json:"enabled"`
		Tags    map[string]string `json:"tags"`
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		writeError(w, http.StatusBadRequest, "BadRequestException", err.Error(), "")
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lastID++
	id := fmt.Sprintf("k%d", f.lastID)
	k := &fakeKey{ID: id, Name: in.Name, Value: "v-" + id, Enabled: in.Enabled, Tags: in.Tags, Created: f.clock.Now()}
	f.keys[id] = k
	f.order = append(f.order, id)
	writeJSON(w, http.StatusCreated, keyJSON(k, true))
}

// getAPIKeys is GET /apikeys: a prefix match on name, paginated by position
// (the index of the next key, in creation order).
func (f *fakeAPIGateway) getAPIKeys(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit := f.pageSize
	if s := q.Get("limit"); s != "" {
		if n, err := strconv.Atoi(s); err == nil && n < limit {
			limit = n
		}
	}
	start := 0
	if s := q.Get("position"); s != "" {
		start, _ = strconv.Atoi(s)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	items := []map[string]any{}
	i := start
	for ; i < len(f.order) && len(items) < limit; i++ {
		k, ok := f.keys[f.order[i]]
		if !ok || !strings.HasPrefix(k.Name, q.Get("name")) {
			continue
		}
		items = append(items, keyJSON(k, q.Get("includeValues") == "true"))
	}
	out := map[string]any{"item": items}
	if i < len(f.order) {
		out["position"] = strconv.Itoa(i)
	}
	writeJSON(w, http.StatusOK, out)
}

// updateAPIKey is PATCH /apikeys/{id}; it knows the /enabled path only.
func (f *fakeAPIGateway) updateAPIKey(w http.ResponseWriter, r *http.Request) {
	var in struct {
		PatchOperations []struct{ Op, Path, Value string } `json:"patchOperations"`
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		writeError(w, http.StatusBadRequest, "BadRequestException", err.Error(), "")
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	k, ok := f.keys[r.PathValue("id")]
	if !ok {
		writeError(w, http.StatusNotFound, "NotFoundException", "Invalid API Key identifier specified", "")
		return
	}
	for _, p := range in.PatchOperations {
		if p.Op != "replace" || p.Path != "/enabled" || (p.Value != "true" && p.Value != "false") {
			writeError(w, http.StatusBadRequest, "BadRequestException", "unsupported patch "+p.Op+" "+p.Path, "")
			return
		}
		k.Enabled = p.Value == "true"
	}
	writeJSON(w, http.StatusOK, keyJSON(k, false))
}

// deleteAPIKey is DELETE /apikeys/{id}; it also removes the key from every plan.
func (f *fakeAPIGateway) deleteAPIKey(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	id := r.PathValue("id")
	if _, ok := f.keys[id]; !ok {
		writeError(w, http.StatusNotFound, "NotFoundException", "Invalid API Key identifier specified", "")
		return
	}
	delete(f.keys, id)
	for _, keys := range f.plans {
		delete(keys, id)
	}
	w.WriteHeader(http.StatusAccepted)
}

// createUsagePlanKey is POST /usageplans/{plan}/keys.
func (f *fakeAPIGateway) createUsagePlanKey(w http.ResponseWriter, r *http.Request) {
	var in struct {
		KeyID   string `json:"keyId"`
		KeyType string `json:"keyType"`
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil || in.KeyType != "API_KEY" {
		writeError(w, http.StatusBadRequest, "BadRequestException", "keyId and keyType API_KEY are required", "")
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	plan := r.PathValue("plan")
	keys, ok := f.plans[plan]
	if !ok {
		writeError(w, http.StatusNotFound, "NotFoundException", "Invalid Usage Plan ID specified", "")
		return
	}
	k, ok := f.keys[in.KeyID]
	if !ok {
		writeError(w, http.StatusNotFound, "NotFoundException", "Invalid API Key identifier specified", "")
		return
	}
	if keys[in.KeyID] {
		writeError(w, http.StatusConflict, "ConflictException", "Usage Plan Key already exists", "")
		return
	}
	if f.oneStage {
		for other, ks := range f.plans {
			if ks[in.KeyID] {
				writeError(w, http.StatusBadRequest, "BadRequestException",
					fmt.Sprintf("Usage Plan %s cannot be added because API Key %s cannot reference multiple Usage Plans with the same API Stage (it is in %s)", plan, in.KeyID, other), "")
				return
			}
		}
	}
	keys[in.KeyID] = true
	writeJSON(w, http.StatusCreated, map[string]any{"id": k.ID, "type": "API_KEY", "name": k.Name, "value": k.Value})
}

// getUsagePlanKey is GET /usageplans/{plan}/keys/{key}.
func (f *fakeAPIGateway) getUsagePlanKey(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	keyID := r.PathValue("key")
	if !f.plans[r.PathValue("plan")][keyID] {
		writeError(w, http.StatusNotFound, "NotFoundException", "Invalid Usage Plan Key specified", "")
		return
	}
	k := f.keys[keyID]
	writeJSON(w, http.StatusOK, map[string]any{"id": k.ID, "type": "API_KEY", "name": k.Name, "value": k.Value})
}

// deleteUsagePlanKey is DELETE /usageplans/{plan}/keys/{key}.
func (f *fakeAPIGateway) deleteUsagePlanKey(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	keys := f.plans[r.PathValue("plan")]
	if !keys[r.PathValue("key")] {
		writeError(w, http.StatusNotFound, "NotFoundException", "Invalid Usage Plan Key specified", "")
		return
	}
	delete(keys, r.PathValue("key"))
	w.WriteHeader(http.StatusAccepted)
}

// plans are the usage plan ids of the tiers in the tests.
var plans = map[bulkhead.TierName]string{
	bulkhead.Starter:      "plan-starter",
	bulkhead.Professional: "plan-pro",
	bulkhead.Enterprise:   "plan-ent",
}

// env is one test's fake API Gateway, clock, counter and Onboarder.
type env struct {
	fake    *fakeAPIGateway
	clock   *fakeClock
	counter *memCounter
	client  *apigateway.Client
	o       *apigw.Onboarder
}

// newEnv builds an Onboarder over the real SDK client pointed at a fake API
// Gateway holding the tiers' plans. cfg's UsagePlans, Now and Sleep are
// filled in when empty.
func newEnv(tb testing.TB, cfg apigw.Config) *env {
	tb.Helper()
	clock := newFakeClock()
	ids := make([]string, 0, len(plans))
	for _, id := range plans {
		ids = append(ids, id)
	}
	fake, srv := newFake(tb, clock, ids...)
	client := apigateway.New(apigateway.Options{
		Region:       testRegion,
		Credentials:  credentials.NewStaticCredentialsProvider(testAccessKey, testSecret, ""),
		BaseEndpoint: aws.String(srv.URL),
		HTTPClient:   srv.Client(),
		// The SDK's standard retryer, without its wall-clock backoff.
		Retryer: retry.NewStandard(func(o *retry.StandardOptions) {
			o.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return 0, nil })
		}),
	})
	if cfg.UsagePlans == nil {
		cfg.UsagePlans = plans
	}
	if cfg.Now == nil {
		cfg.Now = clock.Now
	}
	if cfg.Sleep == nil {
		cfg.Sleep = clock.Sleep
	}
	counter := &memCounter{}
	return &env{fake: fake, clock: clock, counter: counter, client: client, o: apigw.New(client, cfg, counter)}
}

// lines returns the request lines of calls.
func lines(calls []call) []string {
	out := make([]string, len(calls))
	for i, c := range calls {
		out[i] = c.Line
	}
	return out
}

// assertCalls checks the requests the fake received since the last check,
// in order.
func assertCalls(tb testing.TB, e *env, want ...string) []call {
	tb.Helper()
	calls := e.fake.takeCalls()
	got := lines(calls)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		tb.Errorf("requests:\ngot:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	return calls
}

// mustOnboard onboards a tenant or fails the test.
func mustOnboard(tb testing.TB, e *env, tenantID string, tier bulkhead.TierName) apigw.EdgeKey {
	tb.Helper()
	k, err := e.o.Onboard(context.Background(), tenantID, tier)
	if err != nil {
		tb.Fatalf("Onboard(%s, %s): %v", tenantID, tier, err)
	}
	return k
}

// assertCode checks an error's bulkhead code.
func assertCode(tb testing.TB, err error, want bulkhead.Code) {
	tb.Helper()
	if got := bulkhead.ErrorCode(err); got != want {
		tb.Errorf("error code: got %q (%v), want %q", got, err, want)
	}
}
