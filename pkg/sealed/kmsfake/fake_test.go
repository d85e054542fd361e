package kmsfake_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/smithy-go"

	"github.com/bulkhead-dev/bulkhead/pkg/sealed/kmsfake"
)

const (
	region = "eu-west-1"
	keyID  = "AKIDFAKE"
	secret = "fake-secret"
)

func client(fake *kmsfake.Server, reg, sec string) *kms.Client {
	return kms.New(kms.Options{Region: reg, BaseEndpoint: aws.String(fake.URL()), Retryer: aws.NopRetryer{},
		Credentials: credentials.NewStaticCredentialsProvider(keyID, sec, "")})
}

func apiCode(err error) string {
	var api smithy.APIError
	if errors.As(err, &api) {
		return api.ErrorCode()
	}
	return ""
}

func TestDataKeys(t *testing.T) {
	ctx := context.Background()
	fake := kmsfake.New(region, keyID, secret)
	defer fake.Close()
	c := client(fake, region, secret)
	ec := map[string]string{"tenant_id": "t-a"}
	gen, err := c.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: aws.String(fake.KeyARN()), KeySpec: types.DataKeySpecAes256, EncryptionContext: ec})
	if err != nil {
		t.Fatal(err)
	}
	if len(gen.Plaintext) != 32 || aws.ToString(gen.KeyId) != fake.KeyARN() || bytes.Contains(gen.CiphertextBlob, gen.Plaintext) {
		t.Fatalf("GenerateDataKey: %d-byte key, key id %s, or the key in clear in its ciphertext", len(gen.Plaintext), aws.ToString(gen.KeyId))
	}
	dec, err := c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: gen.CiphertextBlob, EncryptionContext: ec, KeyId: aws.String(fake.KeyARN())})
	if err != nil || !bytes.Equal(dec.Plaintext, gen.Plaintext) || aws.ToString(dec.KeyId) != fake.KeyARN() {
		t.Fatalf("Decrypt: %v", err)
	}
	// Without KeyId, KMS finds the key from the blob.
	if dec, err := c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: gen.CiphertextBlob, EncryptionContext: ec}); err != nil || !bytes.Equal(dec.Plaintext, gen.Plaintext) {
		t.Fatalf("Decrypt without KeyId: %v", err)
	}

	var invalid *types.InvalidCiphertextException
	for name, in := range map[string]*kms.DecryptInput{
		"other context":  {CiphertextBlob: gen.CiphertextBlob, EncryptionContext: map[string]string{"tenant_id": "t-b"}},
		"no context":     {CiphertextBlob: gen.CiphertextBlob},
		"extra context":  {CiphertextBlob: gen.CiphertextBlob, EncryptionContext: map[string]string{"tenant_id": "t-a", "x": "y"}},
		"altered blob":   {CiphertextBlob: append(bytes.Clone(gen.CiphertextBlob[:len(gen.CiphertextBlob)-1]), gen.CiphertextBlob[len(gen.CiphertextBlob)-1]^1), EncryptionContext: ec},
		"not a KMS blob": {CiphertextBlob: []byte("garbage"), EncryptionContext: ec},
		"truncated blob": {CiphertextBlob: gen.CiphertextBlob[:20], EncryptionContext: ec},
	} {
		if _, err := c.Decrypt(ctx, in); !errors.As(err, &invalid) {
			t.Errorf("%s: %v, want InvalidCiphertextException", name, err)
		}
	}
	var incorrect *types.IncorrectKeyException
	if _, err := c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: gen.CiphertextBlob, EncryptionContext: ec, KeyId: aws.String(fake.CreateKey())}); !errors.As(err, &incorrect) {
		t.Errorf("Decrypt naming another key: %v, want IncorrectKeyException", err)
	}

	// Keys by bare id and alias; bad requests.
	bare := fake.KeyARN()[strings.LastIndex(fake.KeyARN(), "/")+1:]
	for _, id := range []string{bare, "alias/bulkhead-sealing", "arn:aws:kms:" + region + ":111122223333:alias/bulkhead-sealing"} {
		if _, err := c.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: aws.String(id), KeySpec: types.DataKeySpecAes256}); err != nil {
			t.Errorf("GenerateDataKey with key %s: %v", id, err)
		}
	}
	if _, err := c.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: aws.String("alias/none"), KeySpec: types.DataKeySpecAes256}); apiCode(err) != "NotFoundException" {
		t.Errorf("unknown key: %v", err)
	}
	if _, err := c.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: aws.String(fake.KeyARN())}); apiCode(err) != "ValidationException" {
		t.Errorf("no key spec: %v", err)
	}
	if out, err := c.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: aws.String(fake.KeyARN()), NumberOfBytes: aws.Int32(64)}); err != nil || len(out.Plaintext) != 64 {
		t.Errorf("NumberOfBytes 64: %v", err)
	}
}

func TestSignature(t *testing.T) {
	ctx := context.Background()
	fake := kmsfake.New(region, keyID, secret)
	defer fake.Close()
	in := &kms.GenerateDataKeyInput{KeyId: aws.String(fake.KeyARN()), KeySpec: types.DataKeySpecAes256}
	if _, err := client(fake, region, "wrong").GenerateDataKey(ctx, in); apiCode(err) != "InvalidSignatureException" {
		t.Errorf("wrong secret: %v", err)
	}
	if _, err := client(fake, "us-east-1", secret).GenerateDataKey(ctx, in); apiCode(err) != "InvalidSignatureException" {
		t.Errorf("wrong region: %v", err)
	}
	anon := kms.New(kms.Options{Region: region, BaseEndpoint: aws.String(fake.URL()), Retryer: aws.NopRetryer{}, Credentials: aws.AnonymousCredentials{}})
	if _, err := anon.GenerateDataKey(ctx, in); apiCode(err) != "MissingAuthenticationTokenException" {
		t.Errorf("unsigned: %v", err)
	}
	if n := fake.Calls("GenerateDataKey"); n != 0 {
		t.Errorf("%d unsigned or badly signed requests served", n)
	}

	// A request signed right but altered after signing.
	good := client(fake, region, secret)
	tamper := func(o *kms.Options) {
		o.HTTPClient = tampering{http.DefaultClient}
	}
	if _, err := good.GenerateDataKey(ctx, in, tamper); apiCode(err) != "InvalidSignatureException" {
		t.Errorf("body altered after signing: %v", err)
	}
	if _, err := good.GenerateDataKey(ctx, in); err != nil {
		t.Errorf("signed request: %v", err)
	}
}

// tampering changes the body of a request after it was signed.
type tampering struct{ c *http.Client }

func (t tampering) Do(r *http.Request) (*http.Response, error) {
	var b bytes.Buffer
	_, _ = b.ReadFrom(r.Body)
	body := bytes.Replace(b.Bytes(), []byte("AES_256"), []byte("AES_128"), 1)
	r.Body = readCloser{bytes.NewReader(body)}
	return t.c.Do(r)
}

type readCloser struct{ *bytes.Reader }

func (readCloser) Close() error { return nil }

func TestFailures(t *testing.T) {
	ctx := context.Background()
	fake := kmsfake.New(region, keyID, secret)
	defer fake.Close()
	c := client(fake, region, secret)
	fake.FailNext(kmsfake.Fail{Status: 500, Type: "KMSInternalException"}, kmsfake.Fail{Status: 400, Type: "ThrottlingException"})
	in := &kms.GenerateDataKeyInput{KeyId: aws.String(fake.KeyARN()), KeySpec: types.DataKeySpecAes256}
	var internal *types.KMSInternalException
	if _, err := c.GenerateDataKey(ctx, in); !errors.As(err, &internal) {
		t.Errorf("first: %v, want KMSInternalException", err)
	}
	if _, err := c.GenerateDataKey(ctx, in); apiCode(err) != "ThrottlingException" {
		t.Errorf("second: %v, want ThrottlingException", err)
	}
	if _, err := c.GenerateDataKey(ctx, in); err != nil {
		t.Errorf("third: %v", err)
	}
	if n := fake.Calls("GenerateDataKey"); n != 3 || len(fake.Requests()) != 3 {
		t.Errorf("%d calls recorded, want 3", n)
	}
}
