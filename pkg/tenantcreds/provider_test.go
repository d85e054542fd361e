package tenantcreds_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"

	"github.com/bulkhead-dev/bulkhead/pkg/bulkhead"
	"github.com/bulkhead-dev/bulkhead/pkg/tenantcreds"
)

// newProvider returns a provider assuming testRoleARN through a fake STS
// endpoint, on an injected clock.
func newProvider(t *testing.T, opts ...tenantcreds.Option) (*tenantcreds.Provider, *fakeSTS, *clock) {
	t.Helper()
	c := newClock()
	f := newFakeSTS(t, c)
	p := tenantcreds.NewProvider(f.Client(), testRoleARN, tenantcreds.Params{TableARN: testTableARN, Bucket: testBucket}, c.Now, opts...)
	if err := p.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	return p, f, c
}

func mustRetrieve(tb testing.TB, p *tenantcreds.Provider, tid string) aws.Credentials {
	tb.Helper()
	cp := p.ForTenant(tid)
	if cp == nil {
		tb.Fatalf("ForTenant(%q) = nil on a scoped provider", tid)
	}
	creds, err := cp.Retrieve(context.Background())
	if err != nil {
		tb.Fatalf("ForTenant(%q).Retrieve: %v", tid, err)
	}
	return creds
}

func wantCalls(tb testing.TB, f *fakeSTS, want int, when string) {
	tb.Helper()
	if got := len(f.Calls()); got != want {
		tb.Fatalf("%s: %d AssumeRole calls, want %d", when, got, want)
	}
}

// TestProviderAssumeRoleOnTheWire checks the AssumeRole request as STS
// receives it, and the credentials made of the answer.
func TestProviderAssumeRoleOnTheWire(t *testing.T) {
	p, f, c := newProvider(t)
	creds := mustRetrieve(t, p, "tn_alpha")

	calls := f.Calls()
	if len(calls) != 1 {
		t.Fatalf("%d AssumeRole calls, want 1", len(calls))
	}
	call := calls[0]
	if call.SignatureErr != nil {
		t.Errorf("request is not SigV4-signed for sts with the function's credentials: %v", call.SignatureErr)
	}
	if !strings.Contains(call.Authorization, "/"+testRegion+"/sts/aws4_request") {
		t.Errorf("Authorization = %q, want a credential scope for service sts", call.Authorization)
	}
	wantPolicy := mustPolicy(t, testParams("tn_alpha"))
	for name, want := range map[string]string{
		"Action":                     "AssumeRole",
		"Version":                    "2011-06-15",
		"RoleArn":                    testRoleARN,
		"RoleSessionName":            "bulkhead-tn_alpha",
		"DurationSeconds":            "900",
		"Policy":                     wantPolicy,
		"Tags.member.1.Key":          "tenant_id",
		"Tags.member.1.Value":        "tn_alpha",
		"TransitiveTagKeys.member.1": "",
	} {
		if got := call.Form.Get(name); got != want {
			t.Errorf("form %s = %q, want %q", name, got, want)
		}
	}
	// The policy on the wire is this tenant's and nobody else's.
	doc := mustParse(t, call.Form.Get("Policy"))
	if got := doc.Statement[0].Condition["ForAllValues:StringEquals"]["dynamodb:LeadingKeys"]; len(got) != 1 || got[0] != "TENANT#tn_alpha" {
		t.Errorf("LeadingKeys on the wire = %v, want [TENANT#tn_alpha]", got)
	}

	if creds.AccessKeyID != calls[0].AccessKeyID || creds.SecretAccessKey != "secret-1" || creds.SessionToken != "token-1-bulkhead-tn_alpha" {
		t.Errorf("credentials = %s/%s/%s, want the ones STS returned", creds.AccessKeyID, creds.SecretAccessKey, creds.SessionToken)
	}
	if !creds.CanExpire {
		t.Errorf("CanExpire = false, want true")
	}
	if want := c.Now().Add(tenantcreds.SessionDuration - tenantcreds.RefreshWindow); !creds.Expires.Equal(want) {
		t.Errorf("Expires = %v, want %v (STS expiry less the refresh window)", creds.Expires, want)
	}
	if creds.AccountID != testAccount {
		t.Errorf("AccountID = %q, want %q (from the assumed role's ARN)", creds.AccountID, testAccount)
	}
}

func TestProviderCachesPerTenant(t *testing.T) {
	p, f, c := newProvider(t)
	first := mustRetrieve(t, p, "tn_alpha")
	wantCalls(t, f, 1, "first Retrieve")

	// Same handle, a new handle, and later within the window: no STS call.
	cp := p.ForTenant("tn_alpha")
	for range 3 {
		got, err := cp.Retrieve(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if got.AccessKeyID != first.AccessKeyID {
			t.Errorf("cached Retrieve = %s, want %s", got.AccessKeyID, first.AccessKeyID)
		}
	}
	c.Advance(tenantcreds.SessionDuration - tenantcreds.RefreshWindow - time.Second)
	if got := mustRetrieve(t, p, "tn_alpha"); got.AccessKeyID != first.AccessKeyID {
		t.Errorf("Retrieve just before the refresh window = %s, want cached %s", got.AccessKeyID, first.AccessKeyID)
	}
	wantCalls(t, f, 1, "Retrieves before the refresh window")
}

func TestProviderRefreshesBeforeExpiry(t *testing.T) {
	p, f, c := newProvider(t)
	first := mustRetrieve(t, p, "tn_alpha")

	c.Advance(tenantcreds.SessionDuration - tenantcreds.RefreshWindow)
	second := mustRetrieve(t, p, "tn_alpha")
	wantCalls(t, f, 2, "Retrieve at the refresh time")
	if second.AccessKeyID == first.AccessKeyID {
		t.Errorf("refreshed credentials = %s, the same as the first", second.AccessKeyID)
	}
	if want := c.Now().Add(tenantcreds.SessionDuration - tenantcreds.RefreshWindow); !second.Expires.Equal(want) {
		t.Errorf("refreshed Expires = %v, want %v", second.Expires, want)
	}
	if got := mustRetrieve(t, p, "tn_alpha"); got.AccessKeyID != second.AccessKeyID {
		t.Errorf("Retrieve after refresh = %s, want the refreshed %s", got.AccessKeyID, second.AccessKeyID)
	}
	wantCalls(t, f, 2, "Retrieve after refresh")
}

func TestProviderSeparatesTenants(t *testing.T) {
	p, f, _ := newProvider(t)
	a := mustRetrieve(t, p, "tn_alpha")
	b := mustRetrieve(t, p, "tn_beta")
	if a.AccessKeyID == b.AccessKeyID || a.SessionToken == b.SessionToken {
		t.Errorf("tenants share credentials: %s and %s", a.AccessKeyID, b.AccessKeyID)
	}
	calls := f.Calls()
	if len(calls) != 2 {
		t.Fatalf("%d AssumeRole calls for two tenants, want 2", len(calls))
	}
	for i, tid := range []string{"tn_alpha", "tn_beta"} {
		form := calls[i].Form
		if got, want := form.Get("RoleSessionName"), "bulkhead-"+tid; got != want {
			t.Errorf("call %d RoleSessionName = %q, want %q", i, got, want)
		}
		if got, want := form.Get("Policy"), mustPolicy(t, testParams(tid)); got != want {
			t.Errorf("call %d Policy =\n%s\nwant %s's\n%s", i, got, tid, want)
		}
		if other := map[string]string{"tn_alpha": "tn_beta", "tn_beta": "tn_alpha"}[tid]; strings.Contains(form.Get("Policy"), other) {
			t.Errorf("%s's policy names %s", tid, other)
		}
	}
	// Each tenant keeps its own cached credentials.
	if got := mustRetrieve(t, p, "tn_alpha"); got.AccessKeyID != a.AccessKeyID {
		t.Errorf("tn_alpha after tn_beta = %s, want %s", got.AccessKeyID, a.AccessKeyID)
	}
	wantCalls(t, f, 2, "cached Retrieves")
}

func TestProviderConcurrentFirstCallsShareOneAssumeRole(t *testing.T) {
	p, f, _ := newProvider(t)
	gate := make(chan struct{})
	f.mu.Lock()
	f.gate, f.arrived = gate, make(chan struct{}, 100)
	f.mu.Unlock()

	const n = 20
	var started, done sync.WaitGroup
	results := make([]aws.Credentials, n)
	errs := make([]error, n)
	started.Add(n)
	for i := range n {
		done.Go(func() {
			cp := p.ForTenant("tn_alpha")
			started.Done()
			results[i], errs[i] = cp.Retrieve(context.Background())
		})
	}
	started.Wait()
	<-f.arrived // the one AssumeRole is at STS and held there
	time.Sleep(50 * time.Millisecond)
	close(gate)
	done.Wait()

	for i := range n {
		if errs[i] != nil {
			t.Fatalf("Retrieve %d: %v", i, errs[i])
		}
		if results[i].AccessKeyID != results[0].AccessKeyID {
			t.Errorf("Retrieve %d = %s, want the shared %s", i, results[i].AccessKeyID, results[0].AccessKeyID)
		}
	}
	wantCalls(t, f, 1, "20 concurrent first Retrieves")
}

// TestProviderCancelledWaiterDoesNotFailOthers: the request that started the
// AssumeRole gives up; the call goes on, and its answer serves the next one.
func TestProviderCancelledWaiterDoesNotFailOthers(t *testing.T) {
	p, f, _ := newProvider(t)
	gate := make(chan struct{})
	f.mu.Lock()
	f.gate, f.arrived = gate, make(chan struct{}, 10)
	f.mu.Unlock()

	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := p.ForTenant("tn_alpha").Retrieve(ctx)
		errc <- err
	}()
	<-f.arrived
	cancel()
	err := <-errc
	if !bulkhead.IsCode(err, bulkhead.Unavailable) || !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled Retrieve error = %v, want Unavailable wrapping context.Canceled", err)
	}

	go func() { time.Sleep(20 * time.Millisecond); close(gate) }()
	mustRetrieve(t, p, "tn_alpha")
	wantCalls(t, f, 1, "a cancelled and a patient Retrieve")
}

func TestProviderEvictsLeastRecentlyUsed(t *testing.T) {
	p, f, _ := newProvider(t, tenantcreds.WithMaxTenants(2))
	a := mustRetrieve(t, p, "tn_a")
	mustRetrieve(t, p, "tn_b")
	wantCalls(t, f, 2, "two tenants")

	// tn_a is used again, so tn_b is now the least recently used...
	if got := mustRetrieve(t, p, "tn_a"); got.AccessKeyID != a.AccessKeyID {
		t.Errorf("tn_a = %s, want cached %s", got.AccessKeyID, a.AccessKeyID)
	}
	wantCalls(t, f, 2, "tn_a again")
	// ...and a third tenant evicts it.
	mustRetrieve(t, p, "tn_c")
	wantCalls(t, f, 3, "a third tenant")
	if got := mustRetrieve(t, p, "tn_a"); got.AccessKeyID != a.AccessKeyID {
		t.Errorf("tn_a after tn_c = %s, want still cached %s", got.AccessKeyID, a.AccessKeyID)
	}
	wantCalls(t, f, 3, "tn_a after the eviction")
	mustRetrieve(t, p, "tn_b")
	wantCalls(t, f, 4, "the evicted tenant comes back")
	// tn_b's return evicted tn_c (tn_a was used more recently).
	mustRetrieve(t, p, "tn_a")
	wantCalls(t, f, 4, "tn_a once more")
	mustRetrieve(t, p, "tn_c")
	wantCalls(t, f, 5, "tn_c after its eviction")
}

// TestProviderBoundedUnderManyTenants: many tenants through a small cache
// only ever cost one AssumeRole each while they stay within the bound.
func TestProviderBoundedUnderManyTenants(t *testing.T) {
	p, f, _ := newProvider(t, tenantcreds.WithMaxTenants(8))
	for i := range 40 {
		mustRetrieve(t, p, "tn_"+string(rune('a'+i%26))+string(rune('a'+i/26)))
	}
	wantCalls(t, f, 40, "40 tenants")
	// The last 8 are cached; the first is long gone.
	mustRetrieve(t, p, "tn_"+string(rune('a'+39%26))+string(rune('a'+39/26)))
	wantCalls(t, f, 40, "the most recent tenant")
	mustRetrieve(t, p, "tn_aa")
	wantCalls(t, f, 41, "the first tenant")
}

func TestProviderSTSFailureIsUnavailableAndNotCached(t *testing.T) {
	p, f, _ := newProvider(t)
	f.mu.Lock()
	f.failNext = 1
	f.mu.Unlock()

	_, err := p.ForTenant("tn_alpha").Retrieve(context.Background())
	if !bulkhead.IsCode(err, bulkhead.Unavailable) {
		t.Errorf("Retrieve with STS refusing = %v, want code %s", err, bulkhead.Unavailable)
	}
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode() != "AccessDenied" {
		t.Errorf("Retrieve error %v does not carry STS's AccessDenied", err)
	}
	mustRetrieve(t, p, "tn_alpha")
	wantCalls(t, f, 2, "a failure then a success")
}

func TestProviderRefusesBadTenantIDWithoutCallingSTS(t *testing.T) {
	p, f, _ := newProvider(t)
	for _, tid := range []string{"", "a*", "a/b", "TENANT#x", strings.Repeat("a", 65), "a?"} {
		cp := p.ForTenant(tid)
		if cp == nil {
			t.Fatalf("ForTenant(%q) = nil on a scoped provider, want a provider that refuses", tid)
		}
		if _, err := cp.Retrieve(context.Background()); !bulkhead.IsCode(err, bulkhead.Invalid) {
			t.Errorf("ForTenant(%q).Retrieve error = %v, want code %s", tid, err, bulkhead.Invalid)
		}
	}
	wantCalls(t, f, 0, "invalid tenant ids")
}

func TestStaticMode(t *testing.T) {
	for name, p := range map[string]*tenantcreds.Provider{
		"empty role ARN": tenantcreds.NewProvider(nil, "", tenantcreds.Params{}, nil),
		"Static":         tenantcreds.Static(),
		"nil":            nil,
	} {
		t.Run(name, func(t *testing.T) {
			if p.Scoped() {
				t.Errorf("Scoped() = true, want false")
			}
			if cp := p.ForTenant("tn_alpha"); cp != nil {
				t.Errorf("ForTenant = %T, want nil (use the client's own credentials)", cp)
			}
			if err := p.Validate(); err != nil {
				t.Errorf("Validate() = %v, want nil", err)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	good := tenantcreds.Params{TableARN: testTableARN, Bucket: testBucket}
	client := newFakeSTS(t, newClock()).Client()
	tests := []struct {
		name   string
		client tenantcreds.STSAPI
		role   string
		params tenantcreds.Params
		ok     bool
	}{
		{"good", client, testRoleARN, good, true},
		{"not a role", client, "arn:aws:iam::123456789012:user/someone", good, false},
		{"not an ARN", client, "bulkhead-tenant-data", good, false},
		{"no STS client", nil, testRoleARN, good, false},
		{"bad table", client, testRoleARN, tenantcreds.Params{TableARN: "bulkhead", Bucket: testBucket}, false},
		{"bad bucket", client, testRoleARN, tenantcreds.Params{TableARN: testTableARN, Bucket: "*"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tenantcreds.NewProvider(tt.client, tt.role, tt.params, nil).Validate()
			if tt.ok && err != nil {
				t.Errorf("Validate() = %v, want nil", err)
			}
			if !tt.ok && !bulkhead.IsCode(err, bulkhead.Internal) {
				t.Errorf("Validate() = %v, want code %s", err, bulkhead.Internal)
			}
		})
	}
}

// TestPerOperationCredentials shows the wiring the stores use: the tenant's
// provider set as a per-operation credentials override on a shared client.
// The DynamoDB request is signed with the tenant's session, token included,
// while a call without the override keeps the client's own credentials.
func TestPerOperationCredentials(t *testing.T) {
	p, _, _ := newProvider(t)
	var mu sync.Mutex
	var auths, tokens []string
	ddbSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		auths = append(auths, r.Header.Get("Authorization"))
		tokens = append(tokens, r.Header.Get("X-Amz-Security-Token"))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/x-amz-json-1.0")
		_, _ = w.Write([]byte(`{}`))
	}))
	t.Cleanup(ddbSrv.Close)
	ddb := dynamodb.NewFromConfig(aws.Config{
		Region:      testRegion,
		Credentials: credentials.NewStaticCredentialsProvider(baseAccessKey, baseSecret, ""),
		HTTPClient:  ddbSrv.Client(),
	}, func(o *dynamodb.Options) {
		o.BaseEndpoint = aws.String(ddbSrv.URL)
		o.DisableValidateResponseChecksum = true
	})

	in := &dynamodb.GetItemInput{TableName: aws.String("bulkhead"), Key: map[string]types.AttributeValue{
		"PK": &types.AttributeValueMemberS{Value: "TENANT#tn_alpha"}, "SK": &types.AttributeValueMemberS{Value: "PROFILE"},
	}}
	tenant := p.ForTenant("tn_alpha")
	if _, err := ddb.GetItem(context.Background(), in, func(o *dynamodb.Options) { o.Credentials = tenant }); err != nil {
		t.Fatalf("GetItem with tenant credentials: %v", err)
	}
	if _, err := ddb.GetItem(context.Background(), in); err != nil {
		t.Fatalf("GetItem with the client's credentials: %v", err)
	}
	want := mustRetrieve(t, p, "tn_alpha")
	mu.Lock()
	defer mu.Unlock()
	if len(auths) != 2 {
		t.Fatalf("%d DynamoDB requests, want 2", len(auths))
	}
	if !strings.Contains(auths[0], "Credential="+want.AccessKeyID+"/") || tokens[0] != want.SessionToken {
		t.Errorf("tenant request signed with %q (token %q), want %s with its session token", auths[0], tokens[0], want.AccessKeyID)
	}
	if !strings.Contains(auths[1], "Credential="+baseAccessKey+"/") || tokens[1] != "" {
		t.Errorf("plain request signed with %q (token %q), want the client's own %s", auths[1], tokens[1], baseAccessKey)
	}
}
