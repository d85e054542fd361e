package awsfake_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/bulkhead-dev/bulkhead/pkg/awsfake"
)

var (
	fake     = awsfake.Credentials{AccessKey: "AKIDFAKE", SecretKey: "fake-secret", Region: "eu-west-1", Service: "kms"}
	signedAt = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
)

const body = `{"KeyId":"alias/tenants"}`

// signed is a JSON request as the SDK sends it, signed with creds for the
// given service and region, payload hash as given ("" for the body's).
func signed(t *testing.T, creds aws.Credentials, service, region, payloadHash string) *http.Request {
	t.Helper()
	r, err := http.NewRequest(http.MethodPost, "http://kms.eu-west-1.example/", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	r.Header.Set("Content-Type", "application/x-amz-json-1.1")
	r.Header.Set("X-Amz-Target", "TrentService.GenerateDataKey")
	if payloadHash == "" {
		sum := sha256.Sum256([]byte(body))
		payloadHash = hex.EncodeToString(sum[:])
	} else {
		r.Header.Set("X-Amz-Content-Sha256", payloadHash)
	}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, r, payloadHash, service, region, signedAt); err != nil {
		t.Fatal(err)
	}
	// Headers added after signing, unsigned, must not matter.
	r.Header.Set("User-Agent", "aws-sdk-go-v2")
	return r
}

func TestVerifySigV4(t *testing.T) {
	good := aws.Credentials{AccessKeyID: fake.AccessKey, SecretAccessKey: fake.SecretKey}
	withToken := good
	withToken.SessionToken = "session-token"
	mismatch := "The request signature we calculated does not match the signature you provided."

	for _, tc := range []struct {
		name    string
		req     func(t *testing.T) *http.Request
		body    string
		opts    []awsfake.Option
		wantTyp string
		wantMsg string
	}{
		{name: "valid", req: func(t *testing.T) *http.Request { return signed(t, good, "kms", "eu-west-1", "") }},
		{name: "valid with a session token", req: func(t *testing.T) *http.Request { return signed(t, withToken, "kms", "eu-west-1", "") }},
		{name: "valid with the payload hash sent", req: func(t *testing.T) *http.Request {
			sum := sha256.Sum256([]byte(body))
			return signed(t, good, "kms", "eu-west-1", hex.EncodeToString(sum[:]))
		}},
		{name: "unsigned payload allowed", opts: []awsfake.Option{awsfake.AllowUnsignedPayload()},
			req: func(t *testing.T) *http.Request { return signed(t, good, "kms", "eu-west-1", "UNSIGNED-PAYLOAD") }},
		{name: "unsigned payload refused by default", wantTyp: "InvalidSignatureException",
			wantMsg: "The provided X-Amz-Content-Sha256 header does not match what was computed.",
			req:     func(t *testing.T) *http.Request { return signed(t, good, "kms", "eu-west-1", "UNSIGNED-PAYLOAD") }},
		{name: "payload hash of another body", wantTyp: "InvalidSignatureException",
			wantMsg: "The provided X-Amz-Content-Sha256 header does not match what was computed.",
			req:     func(t *testing.T) *http.Request { return signed(t, good, "kms", "eu-west-1", strings.Repeat("0", 64)) }},
		{name: "not signed", wantTyp: "MissingAuthenticationTokenException", wantMsg: "Missing Authentication Token",
			req: func(t *testing.T) *http.Request {
				r := signed(t, good, "kms", "eu-west-1", "")
				r.Header.Del("Authorization")
				return r
			}},
		{name: "malformed credential", wantTyp: "IncompleteSignatureException", wantMsg: "malformed Credential",
			req: func(t *testing.T) *http.Request {
				r := signed(t, good, "kms", "eu-west-1", "")
				r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "/aws4_request", "", 1))
				return r
			}},
		{name: "unknown access key", wantTyp: "UnrecognizedClientException",
			wantMsg: "The security token included in the request is invalid.",
			req: func(t *testing.T) *http.Request {
				return signed(t, aws.Credentials{AccessKeyID: "AKIDOTHER", SecretAccessKey: fake.SecretKey}, "kms", "eu-west-1", "")
			}},
		{name: "wrong secret", wantTyp: "InvalidSignatureException", wantMsg: mismatch,
			req: func(t *testing.T) *http.Request {
				return signed(t, aws.Credentials{AccessKeyID: fake.AccessKey, SecretAccessKey: "guessed"}, "kms", "eu-west-1", "")
			}},
		{name: "another service", wantTyp: "InvalidSignatureException",
			wantMsg: "Credential should be scoped to a valid region and service kms, not eu-west-1/s3",
			req:     func(t *testing.T) *http.Request { return signed(t, good, "s3", "eu-west-1", "") }},
		{name: "another region", wantTyp: "InvalidSignatureException",
			wantMsg: "Credential should be scoped to a valid region and service kms, not us-east-1/kms",
			req:     func(t *testing.T) *http.Request { return signed(t, good, "kms", "us-east-1", "") }},
		{name: "date outside the scope", wantTyp: "IncompleteSignatureException",
			wantMsg: "X-Amz-Date is missing or does not match the credential scope",
			req: func(t *testing.T) *http.Request {
				r := signed(t, good, "kms", "eu-west-1", "")
				r.Header.Set("X-Amz-Date", signedAt.AddDate(0, 0, 1).Format("20060102T150405Z"))
				return r
			}},
		{name: "altered body", body: `{"KeyId":"alias/other"}`, wantTyp: "InvalidSignatureException", wantMsg: mismatch,
			req: func(t *testing.T) *http.Request { return signed(t, good, "kms", "eu-west-1", "") }},
		{name: "altered signed header", wantTyp: "InvalidSignatureException", wantMsg: mismatch,
			req: func(t *testing.T) *http.Request {
				r := signed(t, good, "kms", "eu-west-1", "")
				r.Header.Set("X-Amz-Target", "TrentService.Decrypt")
				return r
			}},
		{name: "altered session token", wantTyp: "InvalidSignatureException", wantMsg: mismatch,
			req: func(t *testing.T) *http.Request {
				r := signed(t, withToken, "kms", "eu-west-1", "")
				r.Header.Set("X-Amz-Security-Token", "another-token")
				return r
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := body
			if tc.body != "" {
				b = tc.body
			}
			typ, msg := awsfake.VerifySigV4(tc.req(t), []byte(b), fake, tc.opts...)
			if typ != tc.wantTyp || msg != tc.wantMsg {
				t.Errorf("VerifySigV4 = %q, %q; want %q, %q", typ, msg, tc.wantTyp, tc.wantMsg)
			}
		})
	}
}

// TestVerifySigV4ContentLength checks that a request is verified whether or
// not its client signed Content-Length.
func TestVerifySigV4ContentLength(t *testing.T) {
	creds := aws.Credentials{AccessKeyID: fake.AccessKey, SecretAccessKey: fake.SecretKey}
	sum := sha256.Sum256([]byte(body))
	for _, length := range []int64{int64(len(body)), 0} {
		r, err := http.NewRequest(http.MethodPost, "http://kms.eu-west-1.example/", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		r.ContentLength = length
		if err := v4.NewSigner().SignHTTP(context.Background(), creds, r, hex.EncodeToString(sum[:]), "kms", "eu-west-1", signedAt); err != nil {
			t.Fatal(err)
		}
		if signs := strings.Contains(r.Header.Get("Authorization"), "content-length"); signs != (length > 0) {
			t.Fatalf("length %d: Authorization %q signs content-length: %v", length, r.Header.Get("Authorization"), signs)
		}
		// The server sees the body's length whether it was signed or not.
		r.ContentLength = int64(len(body))
		if typ, msg := awsfake.VerifySigV4(r, []byte(body), fake); typ != "" {
			t.Errorf("length %d: VerifySigV4 = %q, %q; want valid", length, typ, msg)
		}
	}
}
