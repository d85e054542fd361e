//go:build unix

package main_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The quota tests fire many executions at real `bulkhead dev` processes at
// once and check, over HTTP only, that admission is exact: what one DynamoDB
// transaction admits never passes a limit, a refusal says which limit and
// changes nothing, and every reservation is given back after settlement.

// quotaToken is the operator token of the quota tests' processes.
const quotaToken = "bk_admin_e2e-quota-operator-8d2e71"

// Model latencies: long enough for the executions of a burst to overlap.
const (
	quotaModelDelay       = "150ms"
	concurrencyModelDelay = "300ms"
)

// burstTimeout bounds one request of a burst; a healthy one takes well
// under a second.
const burstTimeout = 30 * time.Second

// startQuotaDev starts one `bulkhead dev` with the given model delay.
func startQuotaDev(t *testing.T, delay string) *proc {
	t.Helper()
	return startDevEnv(t, t, t.TempDir(), quotaToken, "BULKHEAD_LOCAL_MODEL_DELAY="+delay)
}

// startSharedPair starts process A with its embedded DynamoDB and S3, and
// process B pointed at A's servers as at any external endpoint, so the two
// share one store as two Lambda instances share one table.
func startSharedPair(t *testing.T, delay string) (a, b *proc) {
	t.Helper()
	a = startQuotaDev(t, delay)
	dynamoURL := a.mustValue(t, "DynamoDB (embedded)")
	s3URL := a.mustValue(t, "S3 (embedded)")
	// No shared config or profile of the developer's may change what B uses.
	empty := filepath.Join(t.TempDir(), "empty-aws-config")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	b = startDevEnv(t, t, t.TempDir(), quotaToken,
		"BULKHEAD_LOCAL_MODEL_DELAY="+delay,
		"AWS_ENDPOINT_URL_DYNAMODB="+dynamoURL, "AWS_ENDPOINT_URL_S3="+s3URL,
		"AWS_ACCESS_KEY_ID=x", "AWS_SECRET_ACCESS_KEY=x", "AWS_SESSION_TOKEN=",
		"AWS_REGION=us-east-1", "AWS_DEFAULT_REGION=us-east-1",
		"AWS_PROFILE=", "AWS_DEFAULT_PROFILE=", "AWS_CA_BUNDLE=",
		"AWS_CONFIG_FILE="+empty, "AWS_SHARED_CREDENTIALS_FILE="+empty,
		"AWS_EC2_METADATA_DISABLED=true", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=",
	)
	for name, want := range map[string]string{"DynamoDB (external)": dynamoURL, "S3 (external)": s3URL} {
		if got := b.mustValue(t, name); got != want {
			t.Fatalf("process B banner %q = %q, want A's %q", name, got, want)
		}
	}
	return a, b
}

// quotaTenant is a tenant made for one quota test, with one agent.
type quotaTenant struct {
	ID, Key, Agent string
}

// newQuotaTenant creates a tenant of tier with the quota overrides quota (nil:
// the tier's), and an agent with limits (nil: the tier's defaults) on the
// model named (the default model when none is).
func newQuotaTenant(t *testing.T, c *client, tier string, quota, limits map[string]any, model ...string) quotaTenant {
	t.Helper()
	r := c.must(t, http.StatusCreated, "POST", "/v1/admin/tenants", quotaToken,
		map[string]any{"name": "quota-" + tier, "tier": tier})
	tn := quotaTenant{ID: r.str(t, "tenant_id"), Key: r.str(t, "api_key")}
	if quota != nil {
		r = c.must(t, http.StatusOK, "PATCH", "/v1/admin/tenants/"+tn.ID, quotaToken, map[string]any{"quota": quota})
		for name, v := range quota {
			if want, ok := v.(int); ok {
				if got := r.int(t, "quota."+name); got != int64(want) {
					t.Fatalf("quota.%s after PATCH = %d, want %d", name, got, want)
				}
			}
		}
	}
	body := map[string]any{"name": "quota-bot", "system_prompt": "Quota test agent."}
	if limits != nil {
		body["limits"] = limits
	}
	if len(model) > 0 && model[0] != "" {
		body["model"] = model[0]
	}
	tn.Agent = c.must(t, http.StatusCreated, "POST", "/v1/agents", tn.Key, body).str(t, "agent_id")
	return tn
}

// burst sends n executions of agent at once, each starting a new
// conversation, request i to urls[i%len(urls)], and returns the answers in
// order. Only transport failures fail the test here.
func burst(t *testing.T, urls []string, key, agent, message string, n int) []*response {
	t.Helper()
	hc := &http.Client{Timeout: burstTimeout, Transport: &http.Transport{MaxIdleConnsPerHost: n}}
	defer hc.CloseIdleConnections()
	path := "/v1/agents/" + agent + "/execute"
	body, err := json.Marshal(map[string]any{"message": message})
	if err != nil {
		t.Fatal(err)
	}
	out := make([]*response, n)
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			out[i], errs[i] = post(hc, urls[i%len(urls)], path, key, body)
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("execution %d of the burst: %v", i, err)
		}
	}
	return out
}

// post is client.do for goroutines other than the test's: it returns
// transport errors instead of failing the test.
func post(hc *http.Client, base, path, key string, body []byte) (*response, error) {
	req, err := http.NewRequest("POST", base+path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(resp.Body); err != nil {
		return nil, fmt.Errorf("read body: %w", err)
	}
	r := &response{method: "POST", path: path, Status: resp.StatusCode, Header: resp.Header, Body: buf.Bytes()}
	dec := json.NewDecoder(bytes.NewReader(r.Body))
	dec.UseNumber()
	var m map[string]any
	if dec.Decode(&m) == nil {
		r.JSON = m
	}
	return r, nil
}

// outcome is a burst's answers sorted: the successes' totals, and the
// refusals by error code.
type outcome struct {
	ok      int
	tokens  int64 // sum of tokens_used
	cost    int64 // micro-dollars
	perExec map[int64]int
	refused map[string][]*response
}

func (o outcome) String() string {
	codes := map[string]int{}
	for c, rs := range o.refused {
		codes[c] = len(rs)
	}
	return fmt.Sprintf("%d admitted (%d tokens, %d micro-dollars), refusals %v", o.ok, o.tokens, o.cost, codes)
}

func sortOut(t *testing.T, rs []*response) outcome {
	t.Helper()
	o := outcome{perExec: map[int64]int{}, refused: map[string][]*response{}}
	ids := map[string]bool{}
	for _, r := range rs {
		if r.Status != http.StatusOK {
			code, _ := lookup(r.JSON, "error.code")
			s, _ := code.(string)
			o.refused[s] = append(o.refused[s], r)
			continue
		}
		o.ok++
		tok, in, out := r.int(t, "tokens_used"), r.int(t, "usage.input_tokens"), r.int(t, "usage.output_tokens")
		if tok != in+out || tok <= 0 {
			t.Errorf("%v\ntokens_used %d, want input %d + output %d > 0", r, tok, in, out)
		}
		o.tokens += tok
		o.cost += r.micros(t, "cost")
		o.perExec[tok]++
		id := r.str(t, "execution_id")
		if ids[id] {
			t.Errorf("execution_id %s answered twice", id)
		}
		ids[id] = true
	}
	return o
}

// only fails the test unless every refusal has one of codes.
func (o outcome) only(t *testing.T, codes ...string) {
	t.Helper()
	for c, rs := range o.refused {
		if !contains(codes, c) {
			t.Errorf("%d refusals with code %q, want only %q; first:\n%v", len(rs), c, codes, rs[0])
		}
	}
}

// wantRefusal checks one refusal's shape: 429, code, quota_type, limit and a
// Retry-After of at least a second; it returns the error object.
func wantRefusal(t *testing.T, r *response, code, quotaType string, limit int64) map[string]any {
	t.Helper()
	wantError(t, r, code, http.StatusTooManyRequests)
	e, _ := r.JSON["error"].(map[string]any)
	if got, _ := e["quota_type"].(string); got != quotaType {
		t.Errorf("%v\nerror.quota_type = %q, want %q", r, got, quotaType)
	}
	if got := r.int(t, "error.limit"); got != limit {
		t.Errorf("%v\nerror.limit = %d, want %d", r, got, limit)
	}
	if ra, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || ra <= 0 {
		t.Errorf("%v\nRetry-After = %q, want a positive number of seconds", r, r.Header.Get("Retry-After"))
	}
	return e
}

// usage is what /v1/usage says, money in micro-dollars.
type usage struct {
	hour                                           string
	requests, tokens, in, out, executions, running int64
	committed                                      int64
	spend, committedSpend                          int64
}

func getUsage(t *testing.T, c *client, key string) usage {
	t.Helper()
	r := c.must(t, http.StatusOK, "GET", "/v1/usage", key, nil)
	return usage{
		hour:     r.str(t, "period.hour"),
		requests: r.int(t, "usage.requests_this_hour"), tokens: r.int(t, "usage.tokens_this_month"),
		in: r.int(t, "usage.input_tokens"), out: r.int(t, "usage.output_tokens"),
		executions: r.int(t, "usage.executions_this_month"), running: r.int(t, "usage.concurrent_agents"),
		committed: r.int(t, "usage.committed_tokens"),
		spend:     r.micros(t, "usage.spend_this_month"), committedSpend: r.micros(t, "usage.committed_spend"),
	}
}

// wantSettled checks that usage is exactly the admitted executions' and that
// nothing is held any more: no slot, no reservation.
func wantSettled(t *testing.T, u usage, o outcome) {
	t.Helper()
	for _, c := range []struct {
		name      string
		got, want int64
	}{
		{"executions_this_month", u.executions, int64(o.ok)},
		{"tokens_this_month (sum of tokens_used)", u.tokens, o.tokens},
		{"input_tokens + output_tokens", u.in + u.out, u.tokens},
		{"spend_this_month (sum of costs, micro-dollars)", u.spend, o.cost},
		{"concurrent_agents", u.running, 0},
		{"committed_tokens (no reservation left)", u.committed, u.tokens},
		{"committed_spend (no reservation left, micro-dollars)", u.committedSpend, u.spend},
	} {
		if c.got != c.want {
			t.Errorf("after the burst: %s = %d, want %d", c.name, c.got, c.want)
		}
	}
}

// wantConversations checks that the tenant has exactly n conversations: each
// admitted execution started one, and a refused one left nothing behind.
func wantConversations(t *testing.T, c *client, key string, n int) {
	t.Helper()
	got, cursor := 0, ""
	for page := 0; ; page++ {
		if page > n/100+1 {
			t.Fatalf("more than %d pages of conversations, want %d conversations", page, n)
		}
		path := "/v1/conversations?limit=100"
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		r := c.must(t, http.StatusOK, "GET", path, key, nil)
		got += len(r.items(t))
		if cursor, _ = r.get(t, "next_cursor").(string); cursor == "" {
			break
		}
	}
	if got != n {
		t.Errorf("the tenant has %d conversations, want %d (one per admitted execution, none for a refusal)", got, n)
	}
}

// peaks watches a tenant's live counters through the operator API while a
// burst runs, for the highest committed tokens and running executions seen.
type peaks struct {
	stop      chan struct{}
	done      chan struct{}
	committed int64
	running   int64
	samples   int
	err       error
}

func watchPeaks(base, tenantID string) *peaks {
	p := &peaks{stop: make(chan struct{}), done: make(chan struct{})}
	hc := &http.Client{Timeout: burstTimeout}
	go func() {
		defer close(p.done)
		defer hc.CloseIdleConnections()
		for {
			select {
			case <-p.stop:
				return
			default:
			}
			req, _ := http.NewRequest("GET", base+"/v1/admin/tenants/"+tenantID, nil)
			req.Header.Set("Authorization", "Bearer "+quotaToken)
			resp, err := hc.Do(req)
			if err != nil {
				p.err = err
				return
			}
			var v struct {
				Usage struct {
					Committed int64 `json:"committed_tokens"`
					Running   int64 `json:"concurrent_agents"`
				} `json:"usage"`
			}
			err = json.NewDecoder(resp.Body).Decode(&v)
			resp.Body.Close()
			if err != nil || resp.StatusCode != http.StatusOK {
				p.err = fmt.Errorf("GET tenant: status %d, %v", resp.StatusCode, err)
				return
			}
			p.samples++
			p.committed = max(p.committed, v.Usage.Committed)
			p.running = max(p.running, v.Usage.Running)
		}
	}()
	return p
}

// end stops the watcher and returns its peaks.
func (p *peaks) end(t *testing.T) *peaks {
	t.Helper()
	close(p.stop)
	<-p.done
	if p.err != nil {
		t.Errorf("watching the tenant's counters: %v", p.err)
	}
	return p
}

// nextHour is the start of the UTC hour after the window hour ("2006-01-02T15").
func nextHour(t *testing.T, hour string) time.Time {
	t.Helper()
	h, err := time.Parse("2006-01-02T15", hour)
	if err != nil {
		t.Fatalf("hour window %q: %v", hour, err)
	}
	return h.Add(time.Hour)
}

// requestsRun is one try of the hourly-quota proof: a fresh enterprise tenant
// allowed limit requests an hour gets n executions at once, spread over urls.
// It returns false, having checked nothing, when the burst straddled an hour
// boundary (the window reset in the middle).
func requestsRun(t *testing.T, c *client, urls []string, model string, limit, n int) bool {
	t.Helper()
	tn := newQuotaTenant(t, c, "enterprise", map[string]any{"max_requests_per_hour": limit}, nil, model)
	hour := currentHour()
	began := time.Now()
	rs := burst(t, urls, tn.Key, tn.Agent, "How many of us get in?", n)
	took := time.Since(began)
	u := getUsage(t, c, tn.Key)
	if u.hour != hour || currentHour() != hour {
		t.Logf("the burst straddled an hour boundary (%s to %s): trying again", hour, u.hour)
		return false
	}
	o := sortOut(t, rs)
	t.Logf("%d executions over %d process(es) in %v: %v", n, len(urls), took.Round(time.Millisecond), o)

	if o.ok != limit {
		t.Errorf("%d executions admitted, want exactly the hourly quota %d", o.ok, limit)
	}
	o.only(t, "rate_limited")
	if got := len(o.refused["rate_limited"]); got != n-limit {
		t.Errorf("%d rate_limited refusals, want %d", got, n-limit)
	}
	resets := nextHour(t, hour)
	for _, r := range o.refused["rate_limited"] {
		e := wantRefusal(t, r, "rate_limited", "requests", int64(limit))
		if got := r.int(t, "error.used"); got != int64(limit) {
			t.Errorf("%v\nerror.used = %d, want %d (the hour's count never passes the quota)", r, got, limit)
		}
		if got, _ := e["resets_at"].(string); got != resets.Format(time.RFC3339) {
			t.Errorf("%v\nerror.resets_at = %q, want the next UTC hour %s", r, got, resets.Format(time.RFC3339))
		}
		if ra, _ := strconv.Atoi(r.Header.Get("Retry-After")); time.Duration(ra)*time.Second > time.Hour {
			t.Errorf("%v\nRetry-After = %d s, want at most an hour", r, ra)
		}
		if t.Failed() {
			break // one refusal's detail is enough
		}
	}
	if u.requests != int64(limit) {
		t.Errorf("requests_this_hour = %d, want %d (refusals are not counted)", u.requests, limit)
	}
	wantSettled(t, u, o)
	wantConversations(t, c, tn.Key, o.ok)
	return true
}

// requestsProof runs requestsRun, once more if an hour boundary got in the way.
func requestsProof(t *testing.T, c *client, urls []string, model string) {
	t.Helper()
	for range 2 {
		if requestsRun(t, c, urls, model, 50, 200) {
			return
		}
	}
	t.Fatal("two bursts in a row straddled an hour boundary")
}

// TestQuotaRequestsExactUnderConcurrency fires 200 executions at once at a
// tenant allowed 50 requests an hour: exactly 50 run, 150 are refused with
// rate_limited, and the counters are exactly the 50's.
func TestQuotaRequestsExactUnderConcurrency(t *testing.T) {
	t.Parallel()
	p := startQuotaDev(t, quotaModelDelay)
	requestsProof(t, newClient(p.URL), []string{p.URL}, "")
}

// Token quota proof: each execution reserves its agent's max_tokens (1,000)
// against a monthly quota of 30,000.
const (
	tokenQuota   = 30_000
	tokenReserve = 1_000
)

// fullBudgetMessage makes an execution of the quota agent use exactly its
// 1,000-token budget: about 990 input tokens (offline model: a token per 4
// bytes), and the reply is cut to what is left.
var fullBudgetMessage = strings.Repeat("fill the budget ", 3920/16)

// tokensRun fires n executions with message at a fresh enterprise tenant
// with the token quota, spread over urls, and checks what holds whatever the
// timing: no refusal but the token quota's, the quota never passed (neither
// by what ran nor by what was reserved), and no refusal before it was
// reached. It returns the outcome and the tenant's usage afterwards.
func tokensRun(t *testing.T, c *client, urls []string, model, message string, n int) (outcome, usage) {
	t.Helper()
	tn := newQuotaTenant(t, c, "enterprise",
		map[string]any{"max_tokens_per_month": tokenQuota, "max_requests_per_hour": 1_000_000},
		map[string]any{"max_tokens": tokenReserve}, model)
	watch := watchPeaks(urls[0], tn.ID)
	began := time.Now()
	rs := burst(t, urls, tn.Key, tn.Agent, message, n)
	took := time.Since(began)
	pk := watch.end(t)
	u := getUsage(t, c, tn.Key)
	o := sortOut(t, rs)
	t.Logf("%d executions over %d process(es) in %v: %v; tokens_used per execution: %v; peak committed_tokens %d over %d samples",
		n, len(urls), took.Round(time.Millisecond), o, o.perExec, pk.committed, pk.samples)

	o.only(t, "quota_exceeded")
	refused := o.refused["quota_exceeded"]
	if len(refused) == 0 {
		t.Errorf("no execution of %d was refused: the burst did not reach the token quota, so it proves nothing", n)
	}
	for _, r := range refused {
		e := wantRefusal(t, r, "quota_exceeded", "tokens", tokenQuota)
		used, committed := r.int(t, "error.used"), int64(-1)
		if _, ok := e["committed"]; ok {
			committed = r.int(t, "error.committed")
		}
		// Refused exactly when this reservation would not fit.
		if committed+tokenReserve <= tokenQuota || committed > tokenQuota || used > committed {
			t.Errorf("%v\nrefused with used %d, committed %d: want used <= committed, and committed in (%d, %d]",
				r, used, committed, tokenQuota-tokenReserve, tokenQuota)
		}
		if t.Failed() {
			break
		}
	}
	// Every admitted execution adds at most its reservation to the committed
	// tokens, so a refusal (committed > 29,000) proves at least 30 admitted.
	if len(refused) > 0 && o.ok < tokenQuota/tokenReserve {
		t.Errorf("%d executions admitted, want at least %d before the first refusal", o.ok, tokenQuota/tokenReserve)
	}
	if u.tokens > tokenQuota {
		t.Errorf("tokens_this_month = %d, passed the quota %d", u.tokens, tokenQuota)
	}
	if pk.committed > tokenQuota {
		t.Errorf("committed_tokens reached %d during the burst, past the quota %d", pk.committed, tokenQuota)
	}
	wantSettled(t, u, o)
	wantConversations(t, c, tn.Key, o.ok)
	return o, u
}

// tokensExact is the token proof with executions that use their whole
// reservation: then the quota admits exactly 30, whatever the timing.
func tokensExact(t *testing.T, c *client, urls []string) {
	t.Helper()
	o, u := tokensRun(t, c, urls, "", fullBudgetMessage, 200)
	if o.perExec[tokenReserve] != o.ok {
		t.Fatalf("tokens_used per execution %v, want all %d (the message is sized to use the whole budget)", o.perExec, tokenReserve)
	}
	if o.ok != tokenQuota/tokenReserve {
		t.Errorf("%d executions admitted, want exactly %d", o.ok, tokenQuota/tokenReserve)
	}
	if u.tokens != tokenQuota {
		t.Errorf("tokens_this_month = %d, want exactly the quota %d", u.tokens, tokenQuota)
	}
}

// TestQuotaTokensNeverPassed fires 200 executions at once, each reserving
// 1,000 tokens, at a tenant allowed 30,000 tokens a month.
func TestQuotaTokensNeverPassed(t *testing.T) {
	t.Parallel()
	p := startQuotaDev(t, quotaModelDelay)
	c := newClient(p.URL)
	t.Run("executions use their whole reservation", func(t *testing.T) {
		tokensExact(t, c, []string{p.URL})
	})
	t.Run("small executions give most of it back", func(t *testing.T) {
		tokensRun(t, c, []string{p.URL}, "", "How many of us fit?", 200)
	})
}

// TestQuotaSharedStoreTwoProcesses runs the request and token proofs with the
// executions split between two processes that share one DynamoDB and one S3:
// admission is exact across processes, not only within one.
func TestQuotaSharedStoreTwoProcesses(t *testing.T) {
	t.Parallel()
	a, b := startSharedPair(t, quotaModelDelay)
	c := newClient(a.URL)
	urls := []string{a.URL, b.URL}
	t.Run("requests", func(t *testing.T) { requestsProof(t, c, urls, "") })
	t.Run("tokens", func(t *testing.T) { tokensExact(t, c, urls) })
	t.Run("tenant seen alike by both", func(t *testing.T) {
		tn := newQuotaTenant(t, c, "starter", nil, nil)
		ua, ub := getUsage(t, c, tn.Key), getUsage(t, newClient(b.URL), tn.Key)
		if ua != ub {
			t.Errorf("usage through A %+v, through B %+v: want the same store", ua, ub)
		}
	})
}

// TestConcurrencySlots fires 20 executions of 300 ms at once at a starter
// tenant (5 concurrent executions): the sixth running one is refused with
// concurrency_limited, and every slot is given back afterwards.
func TestConcurrencySlots(t *testing.T) {
	t.Parallel()
	p := startQuotaDev(t, concurrencyModelDelay)
	c := newClient(p.URL)
	const slots, n = 5, 20
	tn := newQuotaTenant(t, c, "starter", nil, nil)
	if got := c.must(t, http.StatusOK, "GET", "/v1/usage", tn.Key, nil).int(t, "quota.max_concurrent_agents"); got != slots {
		t.Fatalf("starter quota.max_concurrent_agents = %d, want %d", got, slots)
	}
	hour := currentHour()
	watch := watchPeaks(p.URL, tn.ID)
	began := time.Now()
	rs := burst(t, []string{p.URL}, tn.Key, tn.Agent, "Is there a free slot?", n)
	took := time.Since(began)
	pk := watch.end(t)
	u := getUsage(t, c, tn.Key)
	o := sortOut(t, rs)
	t.Logf("%d executions in %v: %v; peak concurrent_agents %d over %d samples", n, took.Round(time.Millisecond), o, pk.running, pk.samples)

	o.only(t, "concurrency_limited")
	refused := o.refused["concurrency_limited"]
	if len(refused) == 0 {
		t.Errorf("no concurrency_limited refusal among %d executions of %s at once", n, concurrencyModelDelay)
	}
	for _, r := range refused {
		wantRefusal(t, r, "concurrency_limited", "concurrent_agents", slots)
		if got := r.int(t, "error.used"); got != slots {
			t.Errorf("%v\nerror.used = %d, want %d (all slots taken)", r, got, slots)
		}
		if t.Failed() {
			break
		}
	}
	// A refusal means all slots were taken: at least that many ran.
	if len(refused) > 0 && o.ok < slots {
		t.Errorf("%d executions admitted, want at least %d", o.ok, slots)
	}
	if pk.running > slots {
		t.Errorf("concurrent_agents reached %d during the burst, want at most %d", pk.running, slots)
	}
	if u.hour == hour && u.requests != int64(o.ok) {
		t.Errorf("requests_this_hour = %d, want %d (refusals are not counted)", u.requests, o.ok)
	}
	wantSettled(t, u, o)
	wantConversations(t, c, tn.Key, o.ok)
}
