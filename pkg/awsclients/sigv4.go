package awsclients

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// signingTransport signs each request with SigV4 over the hash of its body,
// then sends it with next.
type signingTransport struct {
	next    http.RoundTripper
	signer  *v4.Signer
	creds   aws.CredentialsProvider
	region  string
	service string
}

// NewSigningTransport returns an http.RoundTripper that signs every request
// for service in region (execute-api for IAM-authorised API Gateway routes,
// xray for X-Ray's OTLP endpoint) with the credentials creds gives, then
// sends it through next (http.DefaultTransport when nil).
func NewSigningTransport(next http.RoundTripper, creds aws.CredentialsProvider, region, service string) http.RoundTripper {
	if next == nil {
		next = http.DefaultTransport
	}
	return &signingTransport{next: next, signer: v4.NewSigner(), creds: creds, region: region, service: service}
}

// RoundTrip signs a copy of req (a RoundTripper does not change the request
// it is given) and sends it. The body is read from GetBody when the request
// has one, so that the original stays readable for a retry; otherwise it is
// read once and the copy carries it.
func (t *signingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	fail := func(err error) (*http.Response, error) {
		// A RoundTripper closes the body, even when it fails.
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, err
	}
	var body []byte
	switch {
	case req.GetBody != nil:
		rc, err := req.GetBody()
		if err != nil {
			return fail(fmt.Errorf("read the body to sign: %w", err))
		}
		body, err = io.ReadAll(rc)
		rc.Close()
		if err != nil {
			return fail(fmt.Errorf("read the body to sign: %w", err))
		}
	case req.Body != nil && req.Body != http.NoBody:
		var err error
		body, err = io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("read the body to sign: %w", err)
		}
	}
	ctx := req.Context()
	creds, err := t.creds.Retrieve(ctx)
	if err != nil {
		return fail(fmt.Errorf("AWS credentials: %w", err))
	}
	signed := req.Clone(ctx)
	if body != nil {
		signed.Body = io.NopCloser(bytes.NewReader(body))
		signed.ContentLength = int64(len(body))
		signed.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	}
	sum := sha256.Sum256(body)
	if err := t.signer.SignHTTP(ctx, creds, signed, hex.EncodeToString(sum[:]), t.service, t.region, time.Now()); err != nil {
		return fail(fmt.Errorf("sign the request: %w", err))
	}
	return t.next.RoundTrip(signed)
}
