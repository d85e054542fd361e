package tracing

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

// signingTransport signs each request with SigV4 before sending it: X-Ray's
// OTLP endpoint authenticates callers as the AWS APIs do.
type signingTransport struct {
	base    http.RoundTripper
	signer  *v4.Signer
	creds   aws.CredentialsProvider
	region  string
	service string
}

// NewSigningTransport returns an http.RoundTripper that signs every request
// for service in region with the credentials creds gives, then sends it
// through base (http.DefaultTransport when nil).
func NewSigningTransport(base http.RoundTripper, creds aws.CredentialsProvider, region, service string) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	return &signingTransport{base: base, signer: v4.NewSigner(), creds: creds, region: region, service: service}
}

// RoundTrip signs a copy of req (whose whole body it hashes) and sends it.
func (t *signingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		var err error
		body, err = io.ReadAll(req.Body)
		_ = req.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("read the request body to sign it: %w", err)
		}
	}
	sum := sha256.Sum256(body)
	signed := req.Clone(req.Context())
	signed.Body = io.NopCloser(bytes.NewReader(body))
	signed.ContentLength = int64(len(body))
	signed.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	creds, err := t.creds.Retrieve(req.Context())
	if err != nil {
		return nil, fmt.Errorf("credentials to sign the request: %w", err)
	}
	if err := t.signer.SignHTTP(req.Context(), creds, signed, hex.EncodeToString(sum[:]), t.service, t.region, time.Now()); err != nil {
		return nil, fmt.Errorf("sign the request: %w", err)
	}
	return t.base.RoundTrip(signed)
}
