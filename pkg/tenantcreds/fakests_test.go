package tenantcreds_test

import (
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/bulkhead-dev/bulkhead/pkg/awsfake"
)

// The function's own credentials, which sign the AssumeRole calls.
const (
	baseAccessKey = "AKIDFUNCTIONROLE"
	baseSecret    = "function-role-secret"
	testRegion    = "us-east-1"
	testAccount   = "123456789012"
	testRoleARN   = "arn:aws:iam::" + testAccount + ":role/bulkhead-tenant-data"
)

// clock is an injectable, settable clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// stsCall is one AssumeRole request as the fake STS endpoint received it.
type stsCall struct {
	Form          url.Values
	Authorization string
	// SignatureErr is nil when the request's SigV4 signature, recomputed here
	// with the function's credentials for service sts, matches the one sent.
	SignatureErr error
	AccessKeyID  string // what the fake answered
}

// fakeSTS is a local STS endpoint speaking the Query protocol: a
// form-encoded POST answered with XML, like sts.amazonaws.com.
type fakeSTS struct {
	srv   *httptest.Server
	clock *clock

	mu    sync.Mutex
	calls []stsCall
	// gate, when set, holds every AssumeRole until it is closed; arrived
	// receives a value as each one starts waiting.
	gate    chan struct{}
	arrived chan struct{}
	// failNext answers the next n calls with an AccessDenied error.
	failNext int
}

func newFakeSTS(t *testing.T, c *clock) *fakeSTS {
	t.Helper()
	f := &fakeSTS{clock: c}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

// Client is the real SDK STS client, pointed at the fake and signing with the
// function's own static credentials.
func (f *fakeSTS) Client() *sts.Client {
	return sts.NewFromConfig(aws.Config{
		Region:      testRegion,
		Credentials: credentials.NewStaticCredentialsProvider(baseAccessKey, baseSecret, ""),
		HTTPClient:  f.srv.Client(),
	}, func(o *sts.Options) { o.BaseEndpoint = aws.String(f.srv.URL) })
}

// Calls returns the AssumeRole calls received so far.
func (f *fakeSTS) Calls() []stsCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]stsCall(nil), f.calls...)
}

func (f *fakeSTS) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil || r.Method != http.MethodPost || r.URL.Path != "/" ||
		!strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		http.Error(w, "not an STS query request", http.StatusBadRequest)
		return
	}
	form, err := url.ParseQuery(string(body))
	if err != nil || form.Get("Action") != "AssumeRole" || form.Get("Version") != "2011-06-15" {
		http.Error(w, "not AssumeRole", http.StatusBadRequest)
		return
	}

	f.mu.Lock()
	gate, arrived := f.gate, f.arrived
	f.mu.Unlock()
	if gate != nil {
		if arrived != nil {
			arrived <- struct{}{}
		}
		<-gate
	}

	f.mu.Lock()
	n := len(f.calls) + 1
	call := stsCall{Form: form, Authorization: r.Header.Get("Authorization"), SignatureErr: verifySignature(r, body)}
	fail := f.failNext > 0
	if fail {
		f.failNext--
	} else {
		call.AccessKeyID = fmt.Sprintf("ASIATENANT%06d", n)
	}
	f.calls = append(f.calls, call)
	f.mu.Unlock()

	w.Header().Set("Content-Type", "text/xml")
	if fail {
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprintf(w, `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>not authorized to perform sts:AssumeRole</Message></Error><RequestId>req-%d</RequestId></ErrorResponse>`, n)
		return
	}
	session := form.Get("RoleSessionName")
	expires := f.clock.Now().Add(time.Duration(mustAtoi(form.Get("DurationSeconds"))) * time.Second)
	fmt.Fprintf(w, `<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleResult>
    <SourceIdentity></SourceIdentity>
    <AssumedRoleUser>
      <Arn>arn:aws:sts::%s:assumed-role/bulkhead-tenant-data/%s</Arn>
      <AssumedRoleId>AROAFAKEROLEID:%s</AssumedRoleId>
    </AssumedRoleUser>
    <Credentials>
      <AccessKeyId>%s</AccessKeyId>
      <SecretAccessKey>secret-%d</SecretAccessKey>
      <SessionToken>token-%d-%s</SessionToken>
      <Expiration>%s</Expiration>
    </Credentials>
    <PackedPolicySize>12</PackedPolicySize>
  </AssumeRoleResult>
  <ResponseMetadata>
    <RequestId>req-%d</RequestId>
  </ResponseMetadata>
</AssumeRoleResponse>`, testAccount, html.EscapeString(session), html.EscapeString(session), call.AccessKeyID, n, n,
		html.EscapeString(session), expires.UTC().Format(time.RFC3339), n)
}

func mustAtoi(s string) int {
	var n int
	if _, err := fmt.Sscan(s, &n); err != nil {
		return -1
	}
	return n
}

// verifySignature checks the request's SigV4 signature with the function's
// credentials for service "sts" in the test region, as STS would.
func verifySignature(r *http.Request, body []byte) error {
	creds := awsfake.Credentials{AccessKey: baseAccessKey, SecretKey: baseSecret, Region: testRegion, Service: "sts"}
	if typ, msg := awsfake.VerifySigV4(r, body, creds); typ != "" {
		return fmt.Errorf("%s: %s (Authorization %q)", typ, msg, r.Header.Get("Authorization"))
	}
	return nil
}
