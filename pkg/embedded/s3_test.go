package embedded_test

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/bulkhead-dev/bulkhead/pkg/embedded"
)

const bucket = "bulkhead-data"

func mustStartS3(tb testing.TB, opts embedded.S3Options) *embedded.S3 {
	tb.Helper()
	s, err := embedded.StartS3(testContext(tb), opts)
	if err != nil {
		tb.Fatalf("StartS3(%+v): %v", opts, err)
	}
	tb.Cleanup(func() { _ = s.Close(testContext(tb)) })
	return s
}

func mustCreateBucket(tb testing.TB, c *s3.Client, name string) {
	tb.Helper()
	if _, err := c.CreateBucket(testContext(tb), &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		tb.Fatalf("CreateBucket %s: %v", name, err)
	}
}

func mustGetObject(tb testing.TB, c *s3.Client, key string) []byte {
	tb.Helper()
	out, err := c.GetObject(testContext(tb), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		tb.Fatalf("GetObject %s: %v", key, err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		tb.Fatalf("read object %s: %v", key, err)
	}
	return b
}

func TestS3SurvivesRestart(t *testing.T) {
	ctx := testContext(t)
	path := filepath.Join(t.TempDir(), "data", "s3.bolt")
	// Binary, not a multiple of any buffer size, with every byte value: framing
	// or re-encoding would show.
	want := make([]byte, 1<<20+17)
	rng := rand.NewChaCha8([32]byte{1})
	_, _ = rng.Read(want)
	const key = "tenants/t1/conversations/c1/000001.json"

	s := mustStartS3(t, embedded.S3Options{Path: path})
	c := s3Client(s)
	mustCreateBucket(t, c, bucket)
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(want)}); err != nil {
		t.Fatalf("PutObject: %v", err)
	}
	mustClose(t, s)

	c2 := s3Client(mustStartS3(t, embedded.S3Options{Path: path}))
	if got := mustGetObject(t, c2, key); !bytes.Equal(got, want) {
		t.Errorf("object after restart: %d bytes, want the %d bytes that were put (equal: false)", len(got), len(want))
	}
}

func TestS3IfNoneMatch(t *testing.T) {
	ctx := testContext(t)
	c := s3Client(mustStartS3(t, embedded.S3Options{}))
	mustCreateBucket(t, c, bucket)
	put := func(body string) error {
		_, err := c.PutObject(ctx, &s3.PutObjectInput{
			Bucket:      aws.String(bucket),
			Key:         aws.String("tenants/t1/invoices/2026-01.json"),
			Body:        bytes.NewReader([]byte(body)),
			IfNoneMatch: aws.String("*"),
		})
		return err
	}
	if err := put("first"); err != nil {
		t.Fatalf("first PutObject with IfNoneMatch *: %v", err)
	}
	err := put("second")
	var re *awshttp.ResponseError
	if !errors.As(err, &re) || re.HTTPStatusCode() != http.StatusPreconditionFailed {
		t.Errorf("second PutObject with IfNoneMatch *: err = %v, want HTTP 412", err)
	}
	if got, want := string(mustGetObject(t, c, "tenants/t1/invoices/2026-01.json")), "first"; got != want {
		t.Errorf("object after the refused put = %q, want %q", got, want)
	}
}

func TestS3StoreIsExclusive(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s3.bolt")
	mustStartS3(t, embedded.S3Options{Path: path})
	s, err := embedded.StartS3(testContext(t), embedded.S3Options{Path: path})
	if err == nil {
		_ = s.Close(testContext(t))
		t.Fatalf("second StartS3 on one bolt file: err = nil, want an error")
	}
}
