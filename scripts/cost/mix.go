package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"time"

	"github.com/bulkhead-dev/bulkhead/pkg/api"
	"github.com/bulkhead-dev/bulkhead/pkg/awsclients"
	"github.com/bulkhead-dev/bulkhead/pkg/embedded"
	"github.com/bulkhead-dev/bulkhead/pkg/local"
	"github.com/bulkhead-dev/bulkhead/pkg/offline"
)

// mixConfig sizes the scripted mix.
type mixConfig struct {
	// NewConversations is how many first turns are measured; the first of
	// them goes on to Turns.
	NewConversations int
	// Turns is the last turn of the long conversation (at least 2).
	Turns int
	// Idempotent is how many executions carry an Idempotency-Key; each is
	// then retried once with the same key (a replay).
	Idempotent int
}

func (c mixConfig) check() error {
	if c.NewConversations < 1 || c.Turns < 2 || c.Idempotent < 1 {
		return fmt.Errorf("the mix needs at least 1 new conversation, 2 turns and 1 idempotent execution (got %d, %d, %d)",
			c.NewConversations, c.Turns, c.Idempotent)
	}
	return nil
}

// The scenarios, in the order they are reported.
const (
	scTurn1      = "turn 1 (new conversation)"
	scTurns      = "turns 2-%d (mean)"
	scTurn       = "turn %d"
	scIdem       = "turn 1 with Idempotency-Key"
	scReplay     = "idempotent replay"
	scRefHourly  = "refused: hourly requests"
	scRefMonthly = "refused: monthly tokens"
)

// scenario is what the executions of one kind cost, summed.
type scenario struct {
	Name       string
	Executions int
	Sum        tally
}

// measurement is what one run of the mix counted.
type measurement struct {
	Scenarios []*scenario
	// Periodic holds the breaker's spend-window reads of the whole run,
	// which come at most every few seconds per tenant and process.
	Periodic tally
	Warnings []string
}

// awsEnv is the environment the platform's SDK configuration reads when it
// is given endpoints: fixed fake credentials (the embedded servers accept
// any) and a region, and nothing from the machine's own AWS configuration.
func awsEnv() map[string]string {
	return map[string]string{
		"AWS_ACCESS_KEY_ID":         awsclients.StaticAccessKey,
		"AWS_SECRET_ACCESS_KEY":     awsclients.StaticAccessKey,
		"AWS_SESSION_TOKEN":         "",
		"AWS_REGION":                awsclients.DefaultRegion,
		"AWS_PROFILE":               "",
		"AWS_CA_BUNDLE":             "",
		"AWS_EC2_METADATA_DISABLED": "true",
	}
}

// run starts the embedded stores, a counting proxy in front of each and the
// local platform on the proxies, and drives the mix through its API one
// request at a time.
func run(ctx context.Context, cfg mixConfig) (*measurement, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "bulkhead-cost-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)

	ddb, err := embedded.StartDynamoDB(ctx, embedded.DynamoDBOptions{})
	if err != nil {
		return nil, err
	}
	defer ddb.Close(context.Background())
	s3, err := embedded.StartS3(ctx, embedded.S3Options{})
	if err != nil {
		return nil, err
	}
	defer s3.Close(context.Background())

	rec := newRecorder()
	dp, err := newDynamoProxy(rec, ddb.URL())
	if err != nil {
		return nil, err
	}
	sp, err := newS3Proxy(rec, s3.URL())
	if err != nil {
		return nil, err
	}
	dsrv, err := serveProxy(dp)
	if err != nil {
		return nil, err
	}
	defer dsrv.close(context.Background())
	ssrv, err := serveProxy(sp)
	if err != nil {
		return nil, err
	}
	defer ssrv.close(context.Background())

	p, err := local.Start(ctx, local.Config{Addr: "127.0.0.1:0", DataDir: dir, DynamoEndpoint: dsrv.url, S3Endpoint: ssrv.url,
		Model: offline.New(0), Out: io.Discard})
	if err != nil {
		return nil, fmt.Errorf("start the local platform: %w", err)
	}
	defer p.Close(context.Background())
	if p.Demo == nil {
		return nil, errors.New("the local platform created no demo tenant")
	}
	d := &driver{base: p.URL, admin: p.AdminToken, hc: &http.Client{Timeout: time.Minute}}
	m := &measurement{}
	if err := d.mix(ctx, cfg, p.Demo, rec, m); err != nil {
		return nil, err
	}
	m.Periodic = rec.takePeriodic()
	m.Warnings = rec.warningList()
	return m, nil
}

// driver calls the platform's API.
type driver struct {
	base, admin string
	hc          *http.Client
}

// reply is an API response.
type reply struct {
	status int
	header http.Header
	body   []byte
}

func (r reply) field(name string) string {
	var v map[string]any
	_ = json.Unmarshal(r.body, &v)
	switch x := v[name].(type) {
	case string:
		return x
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	}
	return ""
}

func (r reply) errorCode() string {
	var v struct {
		Error struct{ Code string }
	}
	_ = json.Unmarshal(r.body, &v)
	return v.Error.Code
}

func (d *driver) do(ctx context.Context, method, path, token string, body any, header map[string]string) (reply, error) {
	raw, err := json.Marshal(body)
	if err != nil {
		return reply{}, err
	}
	req, err := http.NewRequestWithContext(ctx, method, d.base+path, bytes.NewReader(raw))
	if err != nil {
		return reply{}, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := d.hc.Do(req)
	if err != nil {
		return reply{}, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return reply{status: resp.StatusCode, header: resp.Header, body: b}, err
}

// must calls the API and wants status want.
func (d *driver) must(ctx context.Context, want int, method, path, token string, body any) (reply, error) {
	r, err := d.do(ctx, method, path, token, body, nil)
	if err == nil && r.status != want {
		err = fmt.Errorf("%s %s: %d %s, want %d", method, path, r.status, r.body, want)
	}
	return r, err
}

// tenant is a tenant the mix uses: its key and agent.
type tenant struct{ id, key, agent string }

// message is what every execution says; the offline model answers it the
// same way every time.
const message = "Where is my order 1234? It was due yesterday."

func (d *driver) execute(ctx context.Context, t tenant, conv string, header map[string]string) (reply, error) {
	body := map[string]any{"message": message}
	if conv != "" {
		body["conversation_id"] = conv
	}
	return d.do(ctx, http.MethodPost, "/v1/agents/"+t.agent+"/execute", t.key, body, header)
}

// refusedMaxTokens is the max_tokens of the refused tenants' agents: an
// execution reserves it, so a monthly allowance of this many tokens admits
// exactly one.
const refusedMaxTokens = 1000

// newTenant creates a starter tenant with an agent of refusedMaxTokens,
// and sets its quota.
func (d *driver) newTenant(ctx context.Context, name string, quota map[string]any) (tenant, error) {
	r, err := d.must(ctx, http.StatusCreated, http.MethodPost, "/v1/admin/tenants", d.admin, map[string]any{"name": name})
	if err != nil {
		return tenant{}, err
	}
	t := tenant{id: r.field("tenant_id"), key: r.field("api_key")}
	if t.agent, err = d.newAgent(ctx, t.key, map[string]any{"max_tokens": refusedMaxTokens}); err != nil {
		return tenant{}, err
	}
	_, err = d.must(ctx, http.StatusOK, http.MethodPatch, "/v1/admin/tenants/"+t.id, d.admin, map[string]any{"quota": quota})
	return t, err
}

// newAgent creates an agent without tools; limits nil keeps the tier's.
func (d *driver) newAgent(ctx context.Context, key string, limits map[string]any) (string, error) {
	body := map[string]any{"name": "cost", "system_prompt": "Be brief."}
	if limits != nil {
		body["limits"] = limits
	}
	r, err := d.must(ctx, http.StatusCreated, http.MethodPost, "/v1/agents", key, body)
	return r.field("agent_id"), err
}

// mix drives the scripted mix and measures each execution on its own.
func (d *driver) mix(ctx context.Context, cfg mixConfig, demo *local.Demo, rec *recorder, m *measurement) error {
	// The demo tenant's throttle and hourly quota would stop a long run:
	// the operator moves it to the enterprise tier and lifts its quotas.
	if _, err := d.must(ctx, http.StatusOK, http.MethodPatch, "/v1/admin/tenants/"+demo.TenantID, d.admin,
		map[string]any{"tier": "enterprise", "quota": map[string]any{"max_requests_per_hour": 10_000_000, "max_tokens_per_month": 10_000_000_000}}); err != nil {
		return err
	}
	demoTenant := tenant{id: demo.TenantID, key: demo.APIKey}
	var err error
	if demoTenant.agent, err = d.newAgent(ctx, demoTenant.key, nil); err != nil {
		return err
	}
	// Two tenants to be refused, each after one admitted execution: one
	// whose hourly requests are used up (an allowance of 1), one whose
	// monthly tokens are (an allowance of one execution's reservation).
	hourly, err := d.newTenant(ctx, "cost-hourly", map[string]any{"max_requests_per_hour": 1})
	if err != nil {
		return err
	}
	monthly, err := d.newTenant(ctx, "cost-monthly", map[string]any{"max_tokens_per_month": refusedMaxTokens})
	if err != nil {
		return err
	}
	// A first execution of each tenant creates its hour, month and day
	// counters, and reads its breaker's spend window; it is not measured.
	for _, t := range []tenant{demoTenant, hourly, monthly} {
		if _, err := d.mustExecute(ctx, t, "", nil); err != nil {
			return err
		}
	}
	if err := quiesce(ctx, rec); err != nil {
		return err
	}

	scenarios := map[string]*scenario{}
	record := func(name string, t tally) {
		sc := scenarios[name]
		if sc == nil {
			sc = &scenario{Name: name, Sum: tally{}}
			scenarios[name] = sc
		}
		sc.Executions++
		sc.Sum.merge(t)
	}
	// measure counts what f makes the platform do, as one execution of the
	// scenario name.
	measure := func(name string, f func() error) (tally, error) {
		_, bg := rec.take()
		if err := f(); err != nil {
			return nil, err
		}
		t, after := rec.take()
		if after != bg {
			return nil, fmt.Errorf("%s: a background pass of the platform (lease reclaim or monthly close) ran during the measurement; run again", name)
		}
		record(name, t)
		return t, nil
	}

	var conv string
	for i := range cfg.NewConversations {
		if _, err := measure(scTurn1, func() error {
			r, err := d.mustExecute(ctx, demoTenant, "", nil)
			if i == 0 {
				conv = r.field("conversation_id")
			}
			return err
		}); err != nil {
			return err
		}
	}
	turnsName := fmt.Sprintf(scTurns, cfg.Turns)
	for turn := 2; turn <= cfg.Turns; turn++ {
		name := turnsName
		if turn == 2 || turn == 11 || turn == cfg.Turns {
			name = fmt.Sprintf(scTurn, turn)
		}
		t, err := measure(name, func() error {
			r, err := d.mustExecute(ctx, demoTenant, conv, nil)
			if err == nil && r.field("conversation_id") != conv {
				err = fmt.Errorf("turn %d went to conversation %s, not %s", turn, r.field("conversation_id"), conv)
			}
			return err
		})
		if err != nil {
			return err
		}
		if name != turnsName && cfg.Turns > 2 {
			record(turnsName, t) // the single turns are part of the mean too
		}
	}
	for i := range cfg.Idempotent {
		key := map[string]string{api.IdempotencyHeader: fmt.Sprintf("cost-%d", i)}
		var first string
		if _, err := measure(scIdem, func() error {
			r, err := d.mustExecute(ctx, demoTenant, "", key)
			first = r.field("execution_id")
			return err
		}); err != nil {
			return err
		}
		if _, err := measure(scReplay, func() error {
			r, err := d.mustExecute(ctx, demoTenant, "", key)
			if err == nil && (r.header.Get(api.ReplayedHeader) != "true" || r.field("execution_id") != first) {
				err = fmt.Errorf("a retry with the same %s was not a replay: %s", api.IdempotencyHeader, r.body)
			}
			return err
		}); err != nil {
			return err
		}
	}
	for _, ref := range []struct {
		name, code string
		t          tenant
	}{{scRefHourly, "rate_limited", hourly}, {scRefMonthly, "quota_exceeded", monthly}} {
		refuse := func() error {
			r, err := d.execute(ctx, ref.t, "", nil)
			if err == nil && r.status == http.StatusOK {
				// A new hour or month began since the tenant's first
				// execution, and gave it a new allowance, which this one
				// used: not a refusal, so not counted. The next is refused.
				rec.take()
				r, err = d.execute(ctx, ref.t, "", nil)
			}
			if err == nil && (r.status != http.StatusTooManyRequests || r.errorCode() != ref.code) {
				err = fmt.Errorf("%s: got %d %s, want 429 %s", ref.name, r.status, r.body, ref.code)
			}
			return err
		}
		if _, err := measure(ref.name, func() error {
			// The first refusal of a tenant's quota in a minute puts the
			// minute's audit entry (one small item); the others of the
			// minute write nothing, and a flood is those: measure one of
			// them, in the same minute as the first.
			if left := time.Until(time.Now().Truncate(time.Minute).Add(time.Minute)); left < 2*time.Second {
				time.Sleep(left)
			}
			if err := refuse(); err != nil {
				return err
			}
			rec.take()
			return refuse()
		}); err != nil {
			return err
		}
	}

	for _, name := range []string{scTurn1, fmt.Sprintf(scTurn, 2), fmt.Sprintf(scTurn, 11), fmt.Sprintf(scTurn, cfg.Turns), turnsName, scIdem, scReplay, scRefHourly, scRefMonthly} {
		if sc := scenarios[name]; sc != nil && !slices.Contains(m.Scenarios, sc) {
			m.Scenarios = append(m.Scenarios, sc)
		}
	}
	return nil
}

// mustExecute runs one execution that must succeed.
func (d *driver) mustExecute(ctx context.Context, t tenant, conv string, header map[string]string) (reply, error) {
	r, err := d.execute(ctx, t, conv, header)
	if err == nil && r.status != http.StatusOK {
		err = fmt.Errorf("execute: %d %s", r.status, r.body)
	}
	return r, err
}

// quiesce waits until the platform's start-up work (the monthly close it
// runs at once) has stopped sending requests: nothing for a quarter second.
func quiesce(ctx context.Context, rec *recorder) error {
	deadline := time.Now().Add(10 * time.Second)
	for quiet := 0; quiet < 5; {
		if time.Now().After(deadline) {
			return errors.New("the platform did not fall quiet after starting")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if t, _ := rec.take(); len(t) == 0 {
			quiet++
		} else {
			quiet = 0
		}
	}
	return nil
}
