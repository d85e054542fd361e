package sealed_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/smithy-go"

	"github.com/bulkhead-dev/bulkhead/pkg/sealed"
	"github.com/bulkhead-dev/bulkhead/pkg/sealed/kmsfake"
)

const (
	region    = "eu-west-1"
	accessKey = "AKIDFAKE"
	secretKey = "fake-secret"
)

func creds() aws.CredentialsProvider {
	return credentials.NewStaticCredentialsProvider(accessKey, secretKey, "")
}

// kmsClient is the real SDK client pointed at the fake, without retries so
// that an injected failure reaches the sealer.
func kmsClient(fake *kmsfake.Server) *kms.Client {
	return kms.New(kms.Options{Region: region, BaseEndpoint: aws.String(fake.URL()), Credentials: creds(), Retryer: aws.NopRetryer{}})
}

func newKMS(t testing.TB, opts ...sealed.KMSOption) (*kmsfake.Server, *sealed.KMS) {
	t.Helper()
	fake := kmsfake.New(region, accessKey, secretKey)
	return fake, sealed.NewKMS(kmsClient(fake), fake.KeyARN(), opts...)
}

func apiCode(err error) string {
	var api smithy.APIError
	if errors.As(err, &api) {
		return api.ErrorCode()
	}
	return ""
}

func TestKMSRoundTrip(t *testing.T) {
	ctx := context.Background()
	fake, k := newKMS(t)
	defer fake.Close()
	box, err := k.Seal(ctx, "t-a", []byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(box, []byte(secret)) || bytes.Contains(box, []byte("MfKQ9r8GKYqr")) {
		t.Fatal("the box holds the plaintext")
	}
	// Another process (the execute function) opens it through KMS.
	other := sealed.NewKMS(kmsClient(fake), fake.KeyARN())
	got, err := other.Open(ctx, "t-a", box)
	if err != nil || string(got) != secret {
		t.Fatalf("Open = %q, %v", got, err)
	}
	reqs := fake.Requests()
	if len(reqs) != 2 || reqs[0].Op != "GenerateDataKey" || reqs[1].Op != "Decrypt" {
		t.Fatalf("requests %+v, want GenerateDataKey then Decrypt", reqs)
	}
	for _, r := range reqs {
		if len(r.EncryptionContext) != 1 || r.EncryptionContext["tenant_id"] != "t-a" || r.KeyID != fake.KeyARN() {
			t.Errorf("%s: key %q, encryption context %v; want %s and tenant_id=t-a only", r.Op, r.KeyID, r.EncryptionContext, fake.KeyARN())
		}
	}
	// Each seal has its own data key.
	again, err := k.Seal(ctx, "t-a", []byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	edk := func(b []byte) []byte { return b[4 : 4+int(binary.BigEndian.Uint16(b[2:4]))] }
	if bytes.Equal(edk(again), edk(box)) {
		t.Error("two seals share a data key")
	}
	// An alias names the key as well.
	byAlias := sealed.NewKMS(kmsClient(fake), "alias/bulkhead-sealing")
	if got, err := byAlias.Open(ctx, "t-a", again); err != nil || string(got) != secret {
		t.Errorf("Open by alias = %q, %v", got, err)
	}
}

func TestKMSTenantBinding(t *testing.T) {
	ctx := context.Background()
	fake, k := newKMS(t)
	defer fake.Close()
	box, err := k.Seal(ctx, "t-a", []byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	// The sealing process has the data key cached for t-a only: t-b gets
	// it neither from the cache nor from KMS.
	got, err := k.Open(ctx, "t-b", box)
	if !errors.Is(err, sealed.ErrInvalidBox) || apiCode(err) != "InvalidCiphertextException" || got != nil {
		t.Fatalf("Open as another tenant = %q, %v; want ErrInvalidBox from InvalidCiphertextException", got, err)
	}
	if n := fake.Calls("Decrypt"); n != 1 {
		t.Errorf("%d Decrypt calls, want 1 (the cache must not answer for another tenant)", n)
	}
	// t-a still opens it, from the cache.
	if got, err := k.Open(ctx, "t-a", box); err != nil || string(got) != secret {
		t.Errorf("Open = %q, %v", got, err)
	}
}

func TestKMSTamperedBox(t *testing.T) {
	ctx := context.Background()
	fake, k := newKMS(t)
	defer fake.Close()
	box, err := k.Seal(ctx, "t-a", []byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	// A byte changed in the data key ciphertext (KMS refuses it), in the
	// nonce or the ciphertext (GCM refuses it), the header, or the box cut.
	fresh := sealed.NewKMS(kmsClient(fake), fake.KeyARN())
	for _, i := range []int{0, 1, 2, 3, 10, len(box) - 40, len(box) - 20, len(box) - 1} {
		bad := bytes.Clone(box)
		bad[i] ^= 0x20
		for _, s := range []*sealed.KMS{k, fresh} {
			if got, err := s.Open(ctx, "t-a", bad); !errors.Is(err, sealed.ErrInvalidBox) {
				t.Errorf("byte %d altered: Open = %q, %v", i, got, err)
			}
		}
	}
	for _, n := range []int{0, 1, 3, 4, 30, len(box) - 17} {
		if _, err := fresh.Open(ctx, "t-a", box[:n]); !errors.Is(err, sealed.ErrInvalidBox) {
			t.Errorf("box cut to %d bytes: %v", n, err)
		}
	}
}

func TestKMSOtherKey(t *testing.T) {
	ctx := context.Background()
	fake, k := newKMS(t)
	defer fake.Close()
	box, err := k.Seal(ctx, "t-a", []byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	other := sealed.NewKMS(kmsClient(fake), fake.CreateKey())
	if _, err := other.Open(ctx, "t-a", box); !errors.Is(err, sealed.ErrInvalidBox) || apiCode(err) != "IncorrectKeyException" {
		t.Errorf("Open with another key: %v", err)
	}
}

// TestKMSCache: a hot secret costs one Decrypt per cache lifetime.
func TestKMSCache(t *testing.T) {
	ctx := context.Background()
	fake, k := newKMS(t)
	defer fake.Close()
	box, err := k.Seal(ctx, "t-a", []byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_700_000_000, 0)
	opener := sealed.NewKMS(kmsClient(fake), fake.KeyARN())
	sealed.SetClock(opener, func() time.Time { return now })
	for range 2 {
		if got, err := opener.Open(ctx, "t-a", box); err != nil || string(got) != secret {
			t.Fatalf("Open = %q, %v", got, err)
		}
	}
	if n := fake.Calls("Decrypt"); n != 1 {
		t.Errorf("two Opens of one box: %d Decrypt calls, want 1", n)
	}
	// The sealer itself kept the data key it generated.
	if _, err := k.Open(ctx, "t-a", box); err != nil || fake.Calls("Decrypt") != 1 {
		t.Errorf("Open in the sealing process: %v, %d Decrypt calls; want the cached key", err, fake.Calls("Decrypt"))
	}
	// Expiry counts from the Decrypt, not from the last use.
	now = now.Add(sealed.DefaultCacheTTL - time.Second)
	if _, err := opener.Open(ctx, "t-a", box); err != nil || fake.Calls("Decrypt") != 1 {
		t.Errorf("within the TTL: %v, %d Decrypt calls", err, fake.Calls("Decrypt"))
	}
	now = now.Add(time.Second)
	if _, err := opener.Open(ctx, "t-a", box); err != nil || fake.Calls("Decrypt") != 2 {
		t.Errorf("past the TTL: %v, %d Decrypt calls, want 2", err, fake.Calls("Decrypt"))
	}

	// Bounded: the least recently used key goes.
	small := sealed.NewKMS(kmsClient(fake), fake.KeyARN(), sealed.WithCache(time.Minute, 2))
	var boxes [][]byte
	for i := range 3 {
		b, err := small.Seal(ctx, fmt.Sprintf("t-%d", i), []byte(secret))
		if err != nil {
			t.Fatal(err)
		}
		boxes = append(boxes, b)
	}
	if n := sealed.CachedKeys(small); n != 2 {
		t.Errorf("%d cached keys, want 2", n)
	}
	before := fake.Calls("Decrypt")
	if _, err := small.Open(ctx, "t-2", boxes[2]); err != nil || fake.Calls("Decrypt") != before {
		t.Errorf("recent key: %v, %d Decrypt calls", err, fake.Calls("Decrypt")-before)
	}
	if _, err := small.Open(ctx, "t-0", boxes[0]); err != nil || fake.Calls("Decrypt") != before+1 {
		t.Errorf("evicted key: %v, %d Decrypt calls, want 1", err, fake.Calls("Decrypt")-before)
	}

	// Off: every Open asks KMS.
	off := sealed.NewKMS(kmsClient(fake), fake.KeyARN(), sealed.WithCache(0, 0))
	before = fake.Calls("Decrypt")
	for range 3 {
		if _, err := off.Open(ctx, "t-a", box); err != nil {
			t.Fatal(err)
		}
	}
	if n := fake.Calls("Decrypt") - before; n != 3 || sealed.CachedKeys(off) != 0 {
		t.Errorf("cache off: %d Decrypt calls, %d cached keys; want 3, 0", n, sealed.CachedKeys(off))
	}
}

func TestKMSFailures(t *testing.T) {
	ctx := context.Background()
	fake, k := newKMS(t)
	defer fake.Close()

	fake.FailNext(kmsfake.Fail{Status: 500, Type: "KMSInternalException"})
	box, err := k.Seal(ctx, "t-a", []byte(secret))
	if err == nil || box != nil || apiCode(err) != "KMSInternalException" || errors.Is(err, sealed.ErrInvalidBox) {
		t.Fatalf("Seal with KMS failing: %q, %v", box, err)
	}
	if strings.Contains(err.Error(), secret) {
		t.Error("the error holds the secret")
	}

	box, err = k.Seal(ctx, "t-a", []byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	opener := sealed.NewKMS(kmsClient(fake), fake.KeyARN())
	fake.FailNext(kmsfake.Fail{Status: 400, Type: "ThrottlingException"})
	got, err := opener.Open(ctx, "t-a", box)
	if err == nil || got != nil || apiCode(err) != "ThrottlingException" || errors.Is(err, sealed.ErrInvalidBox) {
		t.Fatalf("Open with KMS throttling: %q, %v", got, err)
	}
	// A failure is not cached: the next Open asks again and succeeds.
	if got, err := opener.Open(ctx, "t-a", box); err != nil || string(got) != secret {
		t.Errorf("Open after the throttling: %q, %v", got, err)
	}

	// The SDK's standard retryer rides out one throttling.
	retrying := sealed.NewKMS(kms.New(kms.Options{Region: region, BaseEndpoint: aws.String(fake.URL()), Credentials: creds()}), fake.KeyARN())
	fake.FailNext(kmsfake.Fail{Status: 400, Type: "ThrottlingException"})
	before := fake.Calls("Decrypt")
	if got, err := retrying.Open(ctx, "t-a", box); err != nil || string(got) != secret || fake.Calls("Decrypt") != before+2 {
		t.Errorf("Open through a throttling with retries: %q, %v, %d calls", got, err, fake.Calls("Decrypt")-before)
	}

	// Unsigned or wrongly signed requests are refused by the fake.
	wrong := sealed.NewKMS(kms.New(kms.Options{Region: region, BaseEndpoint: aws.String(fake.URL()), Retryer: aws.NopRetryer{},
		Credentials: credentials.NewStaticCredentialsProvider(accessKey, "another-secret", "")}), fake.KeyARN())
	if _, err := wrong.Seal(ctx, "t-a", []byte(secret)); apiCode(err) != "InvalidSignatureException" {
		t.Errorf("Seal with a bad signature: %v", err)
	}
	otherRegion := sealed.NewKMS(kms.New(kms.Options{Region: "us-east-1", BaseEndpoint: aws.String(fake.URL()), Retryer: aws.NopRetryer{},
		Credentials: creds()}), fake.KeyARN())
	if _, err := otherRegion.Seal(ctx, "t-a", []byte(secret)); apiCode(err) != "InvalidSignatureException" {
		t.Errorf("Seal signed for another region: %v", err)
	}
	missing := sealed.NewKMS(kmsClient(fake), "alias/nothing")
	if _, err := missing.Seal(ctx, "t-a", []byte(secret)); apiCode(err) != "NotFoundException" {
		t.Errorf("Seal with an unknown key: %v", err)
	}
}

func TestKMSConcurrent(t *testing.T) {
	fake, k := newKMS(t)
	defer fake.Close()
	concurrently(t, k, 2)
	// Every box was sealed here, its key cached: only the 100 Opens as
	// another tenant went to KMS (and were refused).
	if n := fake.Calls("Decrypt"); n != 50*2 {
		t.Errorf("%d Decrypt calls, want 100", n)
	}
	// A process that sealed nothing: concurrent Opens share the cache.
	opener := sealed.NewKMS(kmsClient(fake), fake.KeyARN())
	concurrentlyOpen(t, k, opener)
}

// concurrently seals and opens from 50 goroutines, rounds times each, each its
// own tenant and secret, and checks every box opens to its own secret only.
func concurrently(t *testing.T, s sealed.Sealer, rounds int) {
	t.Helper()
	ctx := context.Background()
	const n = 50
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			tenant, plain := fmt.Sprintf("t-%d", i), fmt.Sprintf("whsec_%d_%s", i, secret)
			for range rounds {
				box, err := s.Seal(ctx, tenant, []byte(plain))
				if err != nil {
					errs <- err
					return
				}
				got, err := s.Open(ctx, tenant, box)
				if err != nil || string(got) != plain {
					errs <- fmt.Errorf("%s: %q, %v", tenant, got, err)
					return
				}
				if _, err := s.Open(ctx, fmt.Sprintf("t-%d", (i+1)%n), box); !errors.Is(err, sealed.ErrInvalidBox) {
					errs <- fmt.Errorf("%s's box opened as another tenant: %v", tenant, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// concurrentlyOpen opens boxes sealed by sealer from 50 goroutines through opener.
func concurrentlyOpen(t *testing.T, sealer, opener sealed.Sealer) {
	t.Helper()
	ctx := context.Background()
	const n = 50
	boxes := make([][]byte, 5)
	for i := range boxes {
		b, err := sealer.Seal(ctx, fmt.Sprintf("t-%d", i), []byte(secret))
		if err != nil {
			t.Fatal(err)
		}
		boxes[i] = b
	}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			j := i % len(boxes)
			for range 10 {
				if got, err := opener.Open(ctx, fmt.Sprintf("t-%d", j), boxes[j]); err != nil || string(got) != secret {
					errs <- fmt.Errorf("box %d: %q, %v", j, got, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func BenchmarkKMSOpen(b *testing.B) {
	ctx := context.Background()
	fake, k := newKMS(b)
	defer fake.Close()
	box, err := k.Seal(ctx, "t-a", []byte(secret))
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name string
		s    *sealed.KMS
	}{
		{"cached", sealed.NewKMS(kmsClient(fake), fake.KeyARN())},
		{"uncached", sealed.NewKMS(kmsClient(fake), fake.KeyARN(), sealed.WithCache(0, 0))},
	} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := bc.s.Open(ctx, "t-a", box); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
