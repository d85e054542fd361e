// Package platformtest starts the platform on the embedded DynamoDB and S3
// servers for tests, spoken to through the real SDK clients.
package platformtest

import (
	"context"
	"crypto/rand"
	"net/http"
	"sync"
	"testing"
	"time"

	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/smithy-go/middleware"

	"github.com/bulkhead-dev/bulkhead/pkg/api"
	"github.com/bulkhead-dev/bulkhead/pkg/awsclients"
	"github.com/bulkhead-dev/bulkhead/pkg/bulkhead"
	"github.com/bulkhead-dev/bulkhead/pkg/embedded"
	"github.com/bulkhead-dev/bulkhead/pkg/gateway"
	"github.com/bulkhead-dev/bulkhead/pkg/offline"
	"github.com/bulkhead-dev/bulkhead/pkg/platform"
	"github.com/bulkhead-dev/bulkhead/pkg/sealed"
	"github.com/bulkhead-dev/bulkhead/pkg/ssrf"
)

// Env is a platform on embedded servers.
type Env struct {
	API     *api.API
	Dynamo  *embedded.DynamoDB
	S3      *embedded.S3
	Options platform.Options

	mu    sync.Mutex
	calls map[string]int64
}

// Calls returns how many AWS requests the platform has sent, by
// "service.Operation" (for example "DynamoDB.GetItem"), and resets the count.
func (e *Env) Calls() map[string]int64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := e.calls
	e.calls = map[string]int64{}
	return out
}

// count is an SDK middleware that counts each operation once per call
// (retries included in that one call).
func (e *Env) count(stack *middleware.Stack) error {
	return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("bulkhead-count", func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
		name := awsmiddleware.GetServiceID(ctx) + "." + awsmiddleware.GetOperationName(ctx)
		e.mu.Lock()
		e.calls[name]++
		e.mu.Unlock()
		return next.HandleInitialize(ctx, in)
	}), middleware.After)
}

// Option changes the platform options before the API is built.
type Option func(*platform.Options)

// WithClock injects a clock.
func WithClock(now func() time.Time) Option { return func(o *platform.Options) { o.Now = now } }

// WithToolGuard replaces the SSRF guard (which allows no exception).
func WithToolGuard(g *ssrf.Guard) Option { return func(o *platform.Options) { o.ToolGuard = g } }

// WithModel replaces the offline model.
func WithModel(m bulkhead.Model) Option { return func(o *platform.Options) { o.Model = m } }

// Start starts in-memory embedded servers, provisions the table and bucket,
// and builds the API; everything is stopped when the test ends.
func Start(tb testing.TB, opts ...Option) *Env {
	tb.Helper()
	ctx := context.Background()
	d, err := embedded.StartDynamoDB(ctx, embedded.DynamoDBOptions{})
	if err != nil {
		tb.Fatalf("start embedded DynamoDB: %v", err)
	}
	tb.Cleanup(func() { _ = d.Close(context.Background()) })
	s, err := embedded.StartS3(ctx, embedded.S3Options{})
	if err != nil {
		tb.Fatalf("start embedded S3: %v", err)
	}
	tb.Cleanup(func() { _ = s.Close(context.Background()) })
	o := platform.Options{
		AWS: awsclients.Static(""), DynamoEndpoint: d.URL(), S3Endpoint: s.URL(),
		Model: offline.New(0), ToolGuard: ssrf.New(nil),
	}
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	sealer, err := sealed.NewLocal(key)
	if err != nil {
		tb.Fatalf("sealer: %v", err)
	}
	o.Sealer = sealer
	for _, opt := range opts {
		opt(&o)
	}
	if err := platform.Provision(ctx, o); err != nil {
		tb.Fatalf("provision: %v", err)
	}
	env := &Env{Dynamo: d, S3: s, calls: map[string]int64{}}
	o.AWS.APIOptions = append(o.AWS.APIOptions, env.count)
	env.API, env.Options = platform.New(o), o
	return env
}

// Gateway is the local API Gateway emulation in front of the environment's
// functions, as `bulkhead dev` serves them: every route of api.Routes(), the
// authorizer, streamed execution and the admin token. opts adjust its
// configuration (a clock, say) before it is built.
func (e *Env) Gateway(tb testing.TB, adminToken string, opts ...func(*gateway.Config)) http.Handler {
	tb.Helper()
	functions := map[string]api.Handler{}
	for _, r := range api.Routes() {
		functions[r.Function] = e.API.Function(r.Function)
	}
	cfg := gateway.Config{Routes: api.Routes(), Functions: functions, Authorizer: e.API.Authorizer,
		Streams:    map[string]api.StreamHandler{api.FnExecute: e.API.StreamFunction(api.FnExecute)},
		AdminToken: adminToken}
	for _, o := range opts {
		o(&cfg)
	}
	gw, err := gateway.New(cfg)
	if err != nil {
		tb.Fatalf("gateway: %v", err)
	}
	return gw
}
