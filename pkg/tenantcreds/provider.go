package tenantcreds

import (
	"container/list"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/arn"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	ststypes "github.com/aws/aws-sdk-go-v2/service/sts/types"

	"github.com/bulkhead-dev/bulkhead/pkg/bulkhead"
)

// STSAPI is the part of the STS client a Provider uses, with the SDK's own
// signature, so that *sts.Client can be passed as is.
type STSAPI interface {
	AssumeRole(ctx context.Context, params *sts.AssumeRoleInput, optFns ...func(*sts.Options)) (*sts.AssumeRoleOutput, error)
}

var _ STSAPI = (*sts.Client)(nil)

const (
	// SessionDuration is how long each tenant session lasts: 900 seconds, the
	// least STS allows, so that credentials leaked from a container are
	// useful for as short a time as possible. It is also within the one-hour
	// limit of role chaining (a Lambda role assuming another role).
	SessionDuration = 15 * time.Minute

	// RefreshWindow is how long before STS's expiry a tenant's credentials
	// are replaced. It covers clock skew and a request signed just before
	// expiry arriving just after it. The SDK signs every request afresh, so a
	// long-running execution simply picks up the new credentials.
	RefreshWindow = 2 * time.Minute

	// DefaultMaxTenants is how many tenants' credentials a Provider keeps
	// unless told otherwise (WithMaxTenants). An entry is a few hundred bytes;
	// the bound exists so that a container serving many tenants over its
	// life does not grow without limit, and each eviction costs only one
	// more AssumeRole when that tenant comes back.
	DefaultMaxTenants = 1000

	// TenantTagKey is the session tag that carries the tenant id. The role's
	// own policy can use it (aws:PrincipalTag/tenant_id) to confine sessions a
	// second time, independently of the session policy; tagging requires the
	// role's trust policy to allow sts:TagSession.
	TenantTagKey = "tenant_id"

	// sessionNamePrefix starts every role session name, so CloudTrail shows
	// assumed-role/<role>/bulkhead-<tenant>.
	sessionNamePrefix = "bulkhead-"
	maxSessionName    = 64

	// fetchTimeout bounds one AssumeRole (with the SDK's retries). The call is
	// shared by every request waiting for that tenant, so it does not end
	// when the request that started it is cancelled.
	fetchTimeout = 15 * time.Second
)

// Provider hands out credentials scoped to one tenant, assumed from one role
// and cached per tenant. Its zero value, a nil *Provider, and one built with an
// empty role ARN are in static mode (see ForTenant). It is safe for concurrent
// use.
type Provider struct {
	sts        STSAPI
	roleARN    string
	params     Params
	now        func() time.Time
	maxTenants int

	mu      sync.Mutex
	lru     *list.List // of *entry, most recently used first
	entries map[string]*list.Element
}

// entry is one tenant's cached credentials and, while STS is being asked, the
// call every waiter shares.
type entry struct {
	tenantID string

	mu        sync.Mutex
	creds     aws.Credentials
	refreshAt time.Time // zero until the first success
	inflight  *call
}

type call struct {
	done  chan struct{}
	creds aws.Credentials
	err   error
}

// Option configures a Provider.
type Option func(*Provider)

// WithMaxTenants bounds the number of tenants whose credentials are cached
// (DefaultMaxTenants when n < 1).
func WithMaxTenants(n int) Option {
	return func(p *Provider) {
		if n >= 1 {
			p.maxTenants = n
		}
	}
}

// NewProvider returns a provider that assumes roleARN through client for each
// tenant, with the session policy SessionPolicy builds from params (whose
// TenantID is ignored: ForTenant supplies it). now is the clock deciding when
// credentials are refreshed (time.Now when nil). An empty roleARN gives a
// provider in static mode, and client may then be nil. It makes no request:
// call Validate to check the configuration at start-up.
func NewProvider(client STSAPI, roleARN string, params Params, now func() time.Time, opts ...Option) *Provider {
	if now == nil {
		now = time.Now
	}
	params.IndexARNs = append([]string(nil), params.IndexARNs...)
	params.TenantID = ""
	p := &Provider{
		sts: client, roleARN: roleARN, params: params, now: now, maxTenants: DefaultMaxTenants,
		lru: list.New(), entries: make(map[string]*list.Element),
	}
	for _, o := range opts {
		o(p)
	}
	return p
}

// Static returns a provider in static mode: ForTenant returns nil, and every
// client keeps its own credentials. The local platform uses it, because the
// embedded DynamoDB and S3 servers ignore IAM.
func Static() *Provider { return nil }

// Scoped reports whether the provider hands out tenant-scoped credentials,
// that is whether it is not in static mode.
func (p *Provider) Scoped() bool { return p != nil && p.roleARN != "" }

// Validate checks, without calling AWS, that the provider can build a session
// policy for the longest possible tenant id, so that a misconfigured function
// fails at start-up rather than on its first request. A provider in static
// mode is always valid. Errors: Internal.
func (p *Provider) Validate() error {
	if !p.Scoped() {
		return nil
	}
	if a, err := arn.Parse(p.roleARN); err != nil || a.Service != "iam" || !strings.HasPrefix(a.Resource, "role/") {
		return &bulkhead.Error{Code: bulkhead.Internal, Op: "tenantcreds.Validate", Message: "role ARN " + p.roleARN + " is not an IAM role ARN"}
	}
	if p.sts == nil {
		return &bulkhead.Error{Code: bulkhead.Internal, Op: "tenantcreds.Validate", Message: "no STS client"}
	}
	params := p.params
	params.TenantID = strings.Repeat("x", MaxTenantIDLength)
	_, err := SessionPolicy(params)
	return err
}

// ForTenant returns the credentials provider of one tenant. It makes no
// request: STS is asked on the first Retrieve, and its answer is shared by
// every Retrieve for that tenant until RefreshWindow before it expires.
// Concurrent first Retrieves for one tenant make one AssumeRole call. A tenant
// id that ValidTenantID refuses gives a provider whose Retrieve fails with
// Invalid, without calling STS.
//
// In static mode ForTenant returns nil, meaning "use the client's own
// credentials": callers set the result as a per-operation credentials
// override only when it is not nil.
//
// Retrieve's errors are *bulkhead.Error: Invalid (tenant id), Internal
// (configuration), Unavailable (STS failed or was too slow; callers fail
// closed). Failures are not cached: the next Retrieve asks STS again.
func (p *Provider) ForTenant(tenantID string) aws.CredentialsProvider {
	if !p.Scoped() {
		return nil
	}
	if !ValidTenantID(tenantID) {
		return refused{&bulkhead.Error{Code: bulkhead.Invalid, Op: "tenantcreds.ForTenant", Message: "invalid tenant id"}}
	}
	return &tenantProvider{p: p, tenantID: tenantID}
}

// refused is the provider of a tenant id no session may be built for: it
// fails closed rather than fall back to the function's own credentials.
type refused struct{ err error }

// Retrieve returns the refusal.
func (r refused) Retrieve(context.Context) (aws.Credentials, error) { return aws.Credentials{}, r.err }

// tenantProvider is the aws.CredentialsProvider of one tenant.
type tenantProvider struct {
	p        *Provider
	tenantID string
}

var (
	_ aws.CredentialsProvider = (*tenantProvider)(nil)
	_ aws.CredentialsProvider = refused{}
)

// Retrieve returns the tenant's credentials, from the cache when they are
// fresh. Expires is when the provider stops handing them out (RefreshWindow
// before STS's expiry), so that a cache someone puts in front of it (an
// aws.CredentialsCache) refreshes in step with it.
func (t *tenantProvider) Retrieve(ctx context.Context) (aws.Credentials, error) {
	e := t.p.entry(t.tenantID)

	e.mu.Lock()
	if !e.refreshAt.IsZero() && t.p.now().Before(e.refreshAt) {
		creds := e.creds
		e.mu.Unlock()
		return creds, nil
	}
	c := e.inflight
	if c == nil {
		c = &call{done: make(chan struct{})}
		e.inflight = c
		// Detached from ctx: other requests wait on this call, and one
		// caller giving up must not fail them all.
		go t.p.fetch(context.WithoutCancel(ctx), e, c)
	}
	e.mu.Unlock()

	select {
	case <-c.done:
		return c.creds, c.err
	case <-ctx.Done():
		return aws.Credentials{}, &bulkhead.Error{Code: bulkhead.Unavailable, Op: "tenantcreds.Retrieve", Message: "request cancelled", Err: ctx.Err()}
	}
}

// entry returns the tenant's cache entry, creating it if needed, marks it most
// recently used and evicts the least recently used beyond the bound. An
// evicted entry may still have a call in flight: its waiters hold it and get
// their answer; the next Retrieve for that tenant starts afresh.
func (p *Provider) entry(tenantID string) *entry {
	p.mu.Lock()
	defer p.mu.Unlock()
	if el, ok := p.entries[tenantID]; ok {
		p.lru.MoveToFront(el)
		return el.Value.(*entry)
	}
	e := &entry{tenantID: tenantID}
	p.entries[tenantID] = p.lru.PushFront(e)
	for p.lru.Len() > p.maxTenants {
		oldest := p.lru.Back()
		p.lru.Remove(oldest)
		delete(p.entries, oldest.Value.(*entry).tenantID)
	}
	return e
}

// fetch asks STS for the tenant's credentials, stores them in the entry on
// success and wakes every waiter of c.
func (p *Provider) fetch(ctx context.Context, e *entry, c *call) {
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	creds, err := p.assumeRole(ctx, e.tenantID)

	e.mu.Lock()
	if err == nil {
		e.creds, e.refreshAt = creds, creds.Expires
	}
	e.inflight = nil
	c.creds, c.err = creds, err
	e.mu.Unlock()
	close(c.done)
}

// assumeRole makes the AssumeRole call for one tenant.
func (p *Provider) assumeRole(ctx context.Context, tenantID string) (aws.Credentials, error) {
	const op = "tenantcreds.AssumeRole"
	params := p.params
	params.TenantID = tenantID
	policy, err := SessionPolicy(params)
	if err != nil {
		return aws.Credentials{}, err
	}
	out, err := p.sts.AssumeRole(ctx, &sts.AssumeRoleInput{
		RoleArn:         aws.String(p.roleARN),
		RoleSessionName: aws.String(SessionName(tenantID)),
		Policy:          aws.String(policy),
		DurationSeconds: aws.Int32(int32(SessionDuration / time.Second)),
		Tags:            []ststypes.Tag{{Key: aws.String(TenantTagKey), Value: aws.String(tenantID)}},
	})
	if err != nil {
		return aws.Credentials{}, &bulkhead.Error{Code: bulkhead.Unavailable, Op: op, Message: "tenant credentials unavailable", Err: err}
	}
	sc := out.Credentials
	if sc == nil || sc.AccessKeyId == nil || sc.SecretAccessKey == nil || sc.SessionToken == nil || sc.Expiration == nil {
		return aws.Credentials{}, &bulkhead.Error{Code: bulkhead.Unavailable, Op: op, Message: "STS returned incomplete credentials"}
	}
	refreshAt := sc.Expiration.Add(-RefreshWindow)
	if now := p.now(); !refreshAt.After(now) {
		// An expiry closer than the window (a skewed clock): use the
		// credentials for what is left rather than asking STS on every call.
		refreshAt = *sc.Expiration
	}
	creds := aws.Credentials{
		AccessKeyID:     aws.ToString(sc.AccessKeyId),
		SecretAccessKey: aws.ToString(sc.SecretAccessKey),
		SessionToken:    aws.ToString(sc.SessionToken),
		Source:          "tenantcreds",
		CanExpire:       true,
		Expires:         refreshAt,
	}
	// The account id lets the DynamoDB client use account-based endpoints,
	// as the SDK's own stscreds provider does.
	if out.AssumedRoleUser != nil {
		if a, err := arn.Parse(aws.ToString(out.AssumedRoleUser.Arn)); err == nil {
			creds.AccountID = a.AccountID
		}
	}
	return creds, nil
}

// SessionName is the role session name of a tenant's sessions:
// "bulkhead-<tenant id>", which CloudTrail records with every call made with
// the session. STS allows at most 64 characters; a longer name keeps the
// first characters of the tenant id and ends with 48 bits of a hash of the
// whole id, so that two tenants' names differ even when their ids share a
// long prefix.
func SessionName(tenantID string) string {
	name := sessionNamePrefix + tenantID
	if len(name) <= maxSessionName {
		return name
	}
	sum := sha256.Sum256([]byte(tenantID))
	suffix := "-" + hex.EncodeToString(sum[:])[:12]
	return name[:maxSessionName-len(suffix)] + suffix
}
