// Package local is the local platform behind `bulkhead dev`: embedded
// DynamoDB and S3 servers (or endpoints from the environment), the API
// Gateway emulation and the same handlers the Lambda functions run.
package local

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/bulkhead-dev/bulkhead/pkg/api"
	"github.com/bulkhead-dev/bulkhead/pkg/awsclients"
	"github.com/bulkhead-dev/bulkhead/pkg/bulkhead"
	"github.com/bulkhead-dev/bulkhead/pkg/embedded"
	"github.com/bulkhead-dev/bulkhead/pkg/gateway"
	"github.com/bulkhead-dev/bulkhead/pkg/metrics"
	"github.com/bulkhead-dev/bulkhead/pkg/platform"
	"github.com/bulkhead-dev/bulkhead/pkg/portal"
	"github.com/bulkhead-dev/bulkhead/pkg/sealed"
	"github.com/bulkhead-dev/bulkhead/pkg/ssrf"
	"github.com/bulkhead-dev/bulkhead/pkg/tracing"
)

// Config is the local platform's configuration, normally from the environment.
type Config struct {
	Addr       string // BULKHEAD_ADDR, default 127.0.0.1:8080
	AdminToken string // BULKHEAD_ADMIN_TOKEN; generated (and kept in the data dir) when empty
	DataDir    string // BULKHEAD_DATA_DIR, default .bulkhead
	// DynamoEndpoint and S3Endpoint, when set, replace the embedded servers
	// (AWS_ENDPOINT_URL_DYNAMODB, AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL). Both
	// or neither, unless the other store is kept embedded explicitly: a store
	// without an endpoint would otherwise go to AWS itself, unnoticed.
	DynamoEndpoint string
	S3Endpoint     string
	// KeepDynamoEmbedded and KeepS3Embedded keep a store on its embedded
	// server while the other uses an endpoint (BULKHEAD_DYNAMODB=embedded,
	// BULKHEAD_S3=embedded).
	KeepDynamoEmbedded bool
	KeepS3Embedded     bool
	// DynamoAddr and S3Addr fix the embedded servers' loopback addresses
	// (BULKHEAD_DYNAMODB_ADDR, BULKHEAD_S3_ADDR), so that tools can be
	// pointed at them once; "" picks a free port at every start.
	DynamoAddr string
	S3Addr     string
	Model      bulkhead.Model
	// Providers are the real model providers' clients, by provider name.
	Providers map[string]bulkhead.Model
	// SnapshotEvery is how often the embedded DynamoDB state is written to disk.
	SnapshotEvery time.Duration
	// ShutdownGrace is how long a graceful stop waits for running executions
	// before it stops them (they are then settled with status "stopped");
	// BULKHEAD_SHUTDOWN_GRACE, default DefaultShutdownGrace.
	ShutdownGrace time.Duration
	Out           io.Writer // the banner; os.Stdout when nil
	Logger        *slog.Logger
	// ToolGuard is the SSRF guard of tenant tools' calls; nil allows no
	// exception (BULKHEAD_TOOL_ALLOW_HOSTS sets them).
	ToolGuard *ssrf.Guard
	// MetricsTenants bounds the tenant_id labels of /metrics
	// (BULKHEAD_METRICS_TENANTS; metrics.DefaultTenantLabels when 0).
	MetricsTenants int
}

// ConfigFromEnv reads the configuration from the environment.
func ConfigFromEnv() (Config, error) {
	models, err := platform.ModelsFromEnv(context.Background(), nil)
	if err != nil {
		return Config{}, err
	}
	guard, err := platform.ToolGuardFromEnv()
	if err != nil {
		return Config{}, err
	}
	c := Config{
		ToolGuard:     guard,
		Addr:          envOr("BULKHEAD_ADDR", "127.0.0.1:8080"),
		AdminToken:    os.Getenv("BULKHEAD_ADMIN_TOKEN"),
		DataDir:       envOr("BULKHEAD_DATA_DIR", ".bulkhead"),
		Model:         models.Offline,
		Providers:     models.Providers,
		ShutdownGrace: DefaultShutdownGrace,
	}
	if v := os.Getenv("BULKHEAD_SHUTDOWN_GRACE"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return Config{}, fmt.Errorf("BULKHEAD_SHUTDOWN_GRACE=%q is not a non-negative Go duration (e.g. 30s)", v)
		}
		c.ShutdownGrace = d
	}
	c.DynamoEndpoint, c.S3Endpoint = awsclients.EndpointsFromEnv()
	c.DynamoAddr, c.S3Addr = os.Getenv("BULKHEAD_DYNAMODB_ADDR"), os.Getenv("BULKHEAD_S3_ADDR")
	for _, s := range []struct {
		name, endpointVar string
		keep              *bool
		endpoint          *string
	}{
		{"BULKHEAD_DYNAMODB", "AWS_ENDPOINT_URL_DYNAMODB", &c.KeepDynamoEmbedded, &c.DynamoEndpoint},
		{"BULKHEAD_S3", "AWS_ENDPOINT_URL_S3", &c.KeepS3Embedded, &c.S3Endpoint},
	} {
		switch v := os.Getenv(s.name); v {
		case "":
		case "embedded":
			// The store's own endpoint variable contradicts this one; the general
			// AWS_ENDPOINT_URL is then meant for the other store alone.
			if *s.endpoint != "" && os.Getenv(s.endpointVar) != "" {
				return Config{}, fmt.Errorf("%s=embedded and %s=%s contradict each other: unset one", s.name, s.endpointVar, os.Getenv(s.endpointVar))
			}
			*s.keep, *s.endpoint = true, ""
		default:
			return Config{}, fmt.Errorf("%s=%q: the only value is \"embedded\" (to use an endpoint, set %s)", s.name, v, s.endpointVar)
		}
	}
	if v := os.Getenv("BULKHEAD_METRICS_TENANTS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return Config{}, fmt.Errorf("BULKHEAD_METRICS_TENANTS=%q is not a positive integer", v)
		}
		c.MetricsTenants = n
	}
	if err := c.checkStores(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// checkStores refuses a configuration in which a store would silently go to AWS
// itself (one endpoint set, the other store not kept embedded), or that names
// an embedded server's address or keeps it embedded while that store uses an
// endpoint.
func (c Config) checkStores() error {
	for _, s := range []struct {
		store, endpoint, endpointVar, addr, addrVar string
		keep                                        bool
		keepVar                                     string
	}{
		{"DynamoDB", c.DynamoEndpoint, "AWS_ENDPOINT_URL_DYNAMODB", c.DynamoAddr, "BULKHEAD_DYNAMODB_ADDR", c.KeepDynamoEmbedded, "BULKHEAD_DYNAMODB"},
		{"S3", c.S3Endpoint, "AWS_ENDPOINT_URL_S3", c.S3Addr, "BULKHEAD_S3_ADDR", c.KeepS3Embedded, "BULKHEAD_S3"},
	} {
		if s.endpoint == "" {
			continue
		}
		if s.keep {
			return fmt.Errorf("%s=embedded, but %s has the endpoint %s", s.keepVar, s.store, s.endpoint)
		}
		if s.addr != "" {
			return fmt.Errorf("%s=%s sets the embedded %s server's address, but %s uses the endpoint %s: unset one", s.addrVar, s.addr, s.store, s.store, s.endpoint)
		}
	}
	switch {
	case c.DynamoEndpoint != "" && c.S3Endpoint == "" && !c.KeepS3Embedded:
		return fmt.Errorf("DynamoDB uses the endpoint %s but S3 has none, so S3 would go to AWS itself: "+
			"set AWS_ENDPOINT_URL_S3 too, or BULKHEAD_S3=embedded to keep the embedded S3 server", c.DynamoEndpoint)
	case c.S3Endpoint != "" && c.DynamoEndpoint == "" && !c.KeepDynamoEmbedded:
		return fmt.Errorf("S3 uses the endpoint %s but DynamoDB has none, so DynamoDB would go to AWS itself: "+
			"set AWS_ENDPOINT_URL_DYNAMODB too, or BULKHEAD_DYNAMODB=embedded to keep the embedded DynamoDB server", c.S3Endpoint)
	}
	return nil
}

// DefaultShutdownGrace is the longest wall time any tier allows an
// execution, plus time to settle: a graceful stop lets every running
// execution finish.
var DefaultShutdownGrace = bulkhead.MaxWallTimeCeiling() + 30*time.Second

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// Platform is a running local platform.
type Platform struct {
	URL        string
	AdminToken string
	API        *api.API
	Dynamo     *embedded.DynamoDB // nil when an external endpoint is used
	S3         *embedded.S3
	// Demo is the demo tenant when this start created it (its key included).
	Demo *Demo
	// Metrics holds the metrics served at /metrics, counted from the start.
	Metrics *metrics.Registry

	srv    *http.Server
	served chan error
	grace  time.Duration
	out    io.Writer
	// stopLoops ends the monthly-close and lease-reclaim loops.
	stopLoops context.CancelFunc
	loopsDone sync.WaitGroup
}

// Start starts the local platform and prints its banner.
func Start(ctx context.Context, c Config) (*Platform, error) {
	out := c.Out
	if out == nil {
		out = os.Stdout
	}
	logger := c.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if err := c.checkStores(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(c.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	p := &Platform{served: make(chan error, 1), grace: c.ShutdownGrace, out: out, Metrics: metrics.NewRegistry(c.MetricsTenants)}
	ok := false
	defer func() {
		if !ok {
			p.closeStores(context.Background())
		}
	}()

	opts := platform.Options{Model: c.Model, Providers: c.Providers, Logger: logger, DynamoEndpoint: c.DynamoEndpoint, S3Endpoint: c.S3Endpoint,
		ToolGuard: c.ToolGuard, Metrics: metrics.NewRegistryEmitter(p.Metrics)}
	if opts.ToolGuard == nil {
		opts.ToolGuard = ssrf.New(nil)
	}
	retention, err := platform.AuditRetentionFromEnv(os.Getenv)
	if err != nil {
		return nil, err
	}
	opts.AuditRetention = retention
	// Tool secrets are sealed with a key kept in the data dir (KMS in AWS).
	sealer, err := sealed.LoadOrCreateKeyFile(filepath.Join(c.DataDir, sealed.KeyFileName))
	if err != nil {
		return nil, err
	}
	opts.Sealer = sealer
	external := c.DynamoEndpoint != "" || c.S3Endpoint != ""
	if external {
		cfg, err := awsclients.FromEnvironment(ctx)
		if err != nil {
			return nil, err
		}
		opts.AWS = cfg
	} else {
		opts.AWS = awsclients.Static("")
	}
	// With BULKHEAD_OTEL_EXPORTER set (tracing.Start in bulkhead dev), the
	// stores' calls are spans too.
	tracing.InstrumentAWS(&opts.AWS)
	// checkStores made sure that a store without an endpoint is meant to be
	// embedded. An embedded server accepts any credentials, so the
	// environment's serve it too when the other store is external.
	if c.DynamoEndpoint == "" {
		d, err := embedded.StartDynamoDB(ctx, embedded.DynamoDBOptions{
			Addr: c.DynamoAddr, SnapshotPath: filepath.Join(c.DataDir, "dynamodb.json"), SnapshotEvery: c.SnapshotEvery, Logger: logger,
		})
		if err != nil {
			return nil, fmt.Errorf("start embedded DynamoDB%s: %w", addrVar("BULKHEAD_DYNAMODB_ADDR", c.DynamoAddr), err)
		}
		p.Dynamo, opts.DynamoEndpoint = d, d.URL()
	}
	if c.S3Endpoint == "" {
		s, err := embedded.StartS3(ctx, embedded.S3Options{Addr: c.S3Addr, Path: filepath.Join(c.DataDir, "s3.bolt"), Logger: logger})
		if err != nil {
			return nil, fmt.Errorf("start embedded S3%s: %w", addrVar("BULKHEAD_S3_ADDR", c.S3Addr), err)
		}
		p.S3, opts.S3Endpoint = s, s.URL()
	}
	fmt.Fprintf(out, "DynamoDB (%s): %s\n", storeKind(c.DynamoEndpoint), orAWS(opts.DynamoEndpoint))
	fmt.Fprintf(out, "S3 (%s): %s\n", storeKind(c.S3Endpoint), orAWS(opts.S3Endpoint))

	if err := platform.Provision(ctx, opts); err != nil {
		return nil, fmt.Errorf("provision table and bucket: %w", err)
	}
	p.API = platform.New(opts)
	if p.Dynamo != nil {
		// This process alone uses the embedded store (its data dir is
		// locked), so no execution recorded as running is running: a crash
		// or a kill left them. Give back what they hold before serving.
		// A data dir written by an earlier version keeps the month's counts
		// and the leases in items of their own: move them onto the counter
		// items first, so that nothing is lost and the reclaim sees them.
		moved, err := p.API.Store().MigrateCounters(ctx, time.Now())
		if err != nil {
			return nil, fmt.Errorf("move counters to the counter items: %w", err)
		}
		if moved > 0 {
			fmt.Fprintf(out, "Moved %d counter items of an earlier version onto the counter items\n", moved)
		}
		rep, err := p.API.ReclaimLeases(ctx, true)
		if err != nil {
			return nil, fmt.Errorf("reclaim the leases a previous run left: %w", err)
		}
		if rep.Reclaimed > 0 {
			fmt.Fprintf(out, "Reclaimed %d executions a previous run left unsettled\n", rep.Reclaimed)
		}
	}

	token, err := adminToken(c)
	if err != nil {
		return nil, err
	}
	p.AdminToken = token

	functions := map[string]api.Handler{}
	for _, r := range api.Routes() {
		functions[r.Function] = tracing.Handler(r.Function, p.API.Function(r.Function))
	}
	gw, err := gateway.New(gateway.Config{
		Routes: api.Routes(), Functions: functions, Streams: map[string]api.StreamHandler{api.FnExecute: tracing.StreamHandler(api.FnExecute, p.API.StreamFunction(api.FnExecute))}, Authorizer: tracing.Handler(api.FnAuthorizer, p.API.Authorizer), AdminToken: token, Logger: logger,
	})
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", c.Addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", c.Addr, err)
	}
	p.URL = "http://" + ln.Addr().String()
	// A client gets readTimeout for its whole request (headers and body: a
	// 10 MiB body at about 175 KB/s), then the connection is closed, so a
	// trickled body cannot hold a connection open. net/http lifts the read
	// deadline once the body is read, so it never cuts an execution short;
	// no WriteTimeout, which would. Gateway.Listener gives net/http's own
	// refusals (a malformed percent-escape...) the platform's error shape.
	// The portal's static files are served at "/" by this server itself,
	// next to the API on the same origin; /metrics is the metrics' (with
	// the admin token); every other path is the API's.
	p.srv = &http.Server{Handler: metricsHandler(p.Metrics, token, portal.Handler(gw)), ReadHeaderTimeout: readHeaderTimeout, ReadTimeout: readTimeout, IdleTimeout: idleTimeout}
	go func() { p.served <- p.srv.Serve(gateway.Listener(ln)) }()

	fmt.Fprintf(out, "Bulkhead API: %s\n", p.URL)
	fmt.Fprintf(out, "Portal: %s/ (sign in with an API key)\n", p.URL)
	fmt.Fprintf(out, "Admin token: %s\n", token)
	if err := p.demo(ctx, c, out); err != nil {
		_ = p.srv.Close()
		return nil, err
	}
	// The local stand-ins for the stack's schedules: close the previous month
	// now if it is due, then at every month boundary; reclaim the leases of
	// executions that died, every minute.
	loopsCtx, stop := context.WithCancel(context.Background())
	p.stopLoops = stop
	p.loopsDone.Add(2)
	go func() {
		defer p.loopsDone.Done()
		p.API.CloseMonthsDue(loopsCtx, sleep)
	}()
	go func() {
		defer p.loopsDone.Done()
		p.API.ReclaimLoop(loopsCtx, sleep)
	}()
	ok = true
	return p, nil
}

// The local server's read timeouts (variables so that tests can shorten them).
var (
	readHeaderTimeout = 10 * time.Second
	readTimeout       = 60 * time.Second
	idleTimeout       = 2 * time.Minute
)

// storeKind is how the banner names a store with this configured endpoint.
func storeKind(endpoint string) string {
	if endpoint == "" {
		return "embedded"
	}
	return "external"
}

// addrVar names the variable that fixed an embedded server's address, for
// the error of a start that could not listen there.
func addrVar(name, addr string) string {
	if addr == "" {
		return ""
	}
	return " (" + name + "=" + addr + ")"
}

func orAWS(endpoint string) string {
	if endpoint == "" {
		return "(AWS default endpoint)"
	}
	return endpoint
}

// adminToken returns the configured token, or the one generated on the first
// start and kept in the data dir, so restarts keep it.
func adminToken(c Config) (string, error) {
	if c.AdminToken != "" {
		return c.AdminToken, nil
	}
	path := filepath.Join(c.DataDir, "admin-token")
	if b, err := os.ReadFile(path); err == nil && len(strings.TrimSpace(string(b))) > 0 {
		return strings.TrimSpace(string(b)), nil
	}
	var b [24]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	token := "bk_admin_" + hex.EncodeToString(b[:])
	if err := os.WriteFile(path, []byte(token+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("save admin token: %w", err)
	}
	return token, nil
}

// Demo is the demo tenant created on first start. Its API key is printed
// once and never saved: demo.json holds the ids only.
type Demo struct {
	TenantID string `json:"tenant_id"`
	APIKey   string `json:"-"`
	AgentID  string `json:"agent_id"`
}

// demo creates a demo tenant and agent when the platform has no tenant yet,
// and prints how to use them.
func (p *Platform) demo(ctx context.Context, c Config, out io.Writer) error {
	page, err := p.API.Store().ListTenants(ctx, "", 1)
	if err != nil {
		return fmt.Errorf("list tenants: %w", err)
	}
	path := filepath.Join(c.DataDir, "demo.json")
	if len(page.Items) > 0 {
		if b, err := os.ReadFile(path); err == nil {
			var d Demo
			if json.Unmarshal(b, &d) == nil {
				fmt.Fprintf(out, "Demo tenant: %s (agent %s; its API key was shown on the first start only)\n", d.TenantID, d.AgentID)
			}
		}
		return nil
	}
	t, secret, _, err := p.API.CreateTenant(ctx, "Demo", bulkhead.Starter)
	if err != nil {
		return fmt.Errorf("create demo tenant: %w", err)
	}
	resp, err := p.API.Function(api.FnAgents)(ctx, events.APIGatewayProxyRequest{
		HTTPMethod: "POST", Resource: "/v1/agents", Path: "/v1/agents",
		Body: `{"name":"demo-assistant","system_prompt":"You are a helpful assistant.","tools":["search_kb"]}`,
		RequestContext: events.APIGatewayProxyRequestContext{
			RequestID: "demo", Authorizer: map[string]any{api.CtxTenantID: t.ID, api.CtxTier: string(t.Tier)},
		},
	})
	if err != nil || resp.StatusCode != http.StatusCreated {
		return fmt.Errorf("create demo agent: %d %s %v", resp.StatusCode, resp.Body, err)
	}
	var agent struct {
		AgentID string `json:"agent_id"`
	}
	if err := json.Unmarshal([]byte(resp.Body), &agent); err != nil {
		return err
	}
	d := Demo{TenantID: t.ID, APIKey: secret, AgentID: agent.AgentID}
	p.Demo = &d
	b, _ := json.MarshalIndent(d, "", "  ")
	if err := os.WriteFile(path, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("save demo tenant: %w", err)
	}
	fmt.Fprintf(out, "Demo tenant: %s\nDemo API key: %s\nDemo agent: %s\n", t.ID, secret, agent.AgentID)
	fmt.Fprintf(out, "Try: curl -s -X POST %s/v1/agents/%s/execute -H 'Authorization: Bearer %s' -H 'Content-Type: application/json' -d '{\"message\":\"Hello!\"}'\n",
		p.URL, agent.AgentID, secret)
	return nil
}

// Wait blocks until the server stops on its own (an error) or ctx ends.
func (p *Platform) Wait(ctx context.Context) error {
	select {
	case err := <-p.served:
		return err
	case <-ctx.Done():
		return nil
	}
}

// Close stops the platform gracefully: it stops accepting requests and lets
// running executions finish, up to the shutdown grace (the longest wall time
// any tier allows, by default) or until ctx ends, whichever comes first.
// Executions still running then are stopped at once: each ends with status
// "stopped", is charged for what the model reported, settles, and its client
// (if still connected) gets that answer. Then the stores close (the embedded
// DynamoDB writes its final snapshot). So a stop never leaves a slot, a
// reservation or an unbilled execution behind.
func (p *Platform) Close(ctx context.Context) error {
	var errs []error
	if p.stopLoops != nil {
		p.stopLoops()
		p.loopsDone.Wait()
	}
	if p.srv != nil {
		if n := p.API.Runner().Running(); n > 0 {
			fmt.Fprintf(p.out, "Stopping: waiting up to %s for %d running executions (a second Ctrl-C stops them now)\n", p.grace, n)
		}
		graceCtx, cancel := context.WithTimeout(ctx, p.grace)
		err := p.srv.Shutdown(graceCtx)
		cancel()
		if err != nil {
			// The grace is over: stop what still runs, let it settle and
			// answer, then close the connections.
			if n := p.API.Runner().Running(); n > 0 {
				fmt.Fprintf(p.out, "Stopping %d running executions now; they are settled and billed for what they used\n", n)
			}
			p.API.Runner().Abandon()
			settleCtx, cancel := context.WithTimeout(context.Background(), settleWait)
			if err := p.API.Runner().Wait(settleCtx); err != nil {
				errs = append(errs, fmt.Errorf("executions did not settle in %s: %w", settleWait, err))
			}
			// Let the handlers write the settled answers before closing.
			if err := p.srv.Shutdown(settleCtx); err != nil {
				_ = p.srv.Close()
			}
			cancel()
		}
	}
	errs = append(errs, p.closeStores(context.Background()))
	return errors.Join(errs...)
}

// settleWait bounds how long stopped executions take to settle: a settlement
// retries while DynamoDB is unavailable for up to 30 s.
const settleWait = 40 * time.Second

func (p *Platform) closeStores(ctx context.Context) error {
	var errs []error
	if p.Dynamo != nil {
		errs = append(errs, p.Dynamo.Close(ctx))
		p.Dynamo = nil
	}
	if p.S3 != nil {
		errs = append(errs, p.S3.Close(ctx))
		p.S3 = nil
	}
	return errors.Join(errs...)
}

// sleep waits for d or until ctx ends; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
