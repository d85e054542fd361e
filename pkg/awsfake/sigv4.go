// Package awsfake holds what tests' wire-level fakes of AWS services share:
// checking the SigV4 signature of a request the real SDK client sent, the way
// the service would, so that a fake refuses what AWS would refuse.
package awsfake

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// Credentials are the key pair a fake accepts and the scope it serves.
type Credentials struct {
	AccessKey, SecretKey string
	Region, Service      string
}

// Option changes what VerifySigV4 accepts.
type Option func(*options)

type options struct {
	unsignedPayload bool
}

// AllowUnsignedPayload accepts X-Amz-Content-Sha256: UNSIGNED-PAYLOAD, which
// services with streamed bodies (Bedrock, S3) allow and JSON services do not.
func AllowUnsignedPayload() Option {
	return func(o *options) { o.unsignedPayload = true }
}

// VerifySigV4 checks r's SigV4 signature by signing the received request
// again with the SDK's signer, over the headers it says it signed. body is
// r's body, already read. It returns "" when the request is valid, and
// otherwise the AWS error type and message the service would answer. The
// session token, if any, is taken as sent: fakes issue no temporary
// credentials to check it against.
func VerifySigV4(r *http.Request, body []byte, c Credentials, opts ...Option) (errType, message string) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	rest, ok := strings.CutPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256 ")
	if !ok {
		return "MissingAuthenticationTokenException", "Missing Authentication Token"
	}
	fields := map[string]string{}
	for part := range strings.SplitSeq(rest, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		fields[k] = v
	}
	scope := strings.Split(fields["Credential"], "/")
	if len(scope) != 5 || scope[4] != "aws4_request" {
		return "IncompleteSignatureException", "malformed Credential"
	}
	if scope[0] != c.AccessKey {
		return "UnrecognizedClientException", "The security token included in the request is invalid."
	}
	if scope[2] != c.Region || scope[3] != c.Service {
		return "InvalidSignatureException", fmt.Sprintf("Credential should be scoped to a valid region and service %s, not %s/%s", c.Service, scope[2], scope[3])
	}
	signingTime, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
	if err != nil || signingTime.Format("20060102") != scope[1] {
		return "IncompleteSignatureException", "X-Amz-Date is missing or does not match the credential scope"
	}
	sum := sha256.Sum256(body)
	bodyHash := hex.EncodeToString(sum[:])
	payloadHash := r.Header.Get("X-Amz-Content-Sha256")
	switch {
	case payloadHash == "":
		payloadHash = bodyHash
	case payloadHash == bodyHash, payloadHash == "UNSIGNED-PAYLOAD" && o.unsignedPayload:
	default:
		return "InvalidSignatureException", "The provided X-Amz-Content-Sha256 header does not match what was computed."
	}
	signed := strings.Split(fields["SignedHeaders"], ";")
	again, err := http.NewRequest(r.Method, "http://"+r.Host+r.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		return "InvalidSignatureException", "unparsable request"
	}
	again.Header = http.Header{}
	// The signer signs Content-Length whenever it is set, so it is set only
	// when the client signed it.
	again.ContentLength = 0
	if slices.Contains(signed, "content-length") {
		again.ContentLength = r.ContentLength
	}
	for _, h := range signed {
		if h == "host" || h == "content-length" {
			continue
		}
		for _, v := range r.Header.Values(h) {
			again.Header.Add(h, v)
		}
	}
	creds := aws.Credentials{AccessKeyID: c.AccessKey, SecretAccessKey: c.SecretKey, SessionToken: r.Header.Get("X-Amz-Security-Token")}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, again, payloadHash, c.Service, c.Region, signingTime); err != nil {
		return "InvalidSignatureException", "cannot verify the signature"
	}
	_, want, _ := strings.Cut(again.Header.Get("Authorization"), "Signature=")
	if want == "" || subtle.ConstantTimeCompare([]byte(want), []byte(fields["Signature"])) != 1 {
		return "InvalidSignatureException", "The request signature we calculated does not match the signature you provided."
	}
	return "", ""
}
