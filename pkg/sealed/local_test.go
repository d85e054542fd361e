package sealed_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/bulkhead-dev/bulkhead/pkg/sealed"
)

const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

func newLocal(t *testing.T) (*sealed.Local, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "data", sealed.KeyFileName)
	l, err := sealed.LoadOrCreateKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return l, path
}

func TestLocalRoundTrip(t *testing.T) {
	ctx := context.Background()
	l, path := newLocal(t)
	box, err := l.Seal(ctx, "t-a", []byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(box, []byte(secret)) || bytes.Contains(box, []byte("MfKQ9r8GKYqr")) {
		t.Fatal("the box holds the plaintext")
	}
	got, err := l.Open(ctx, "t-a", box)
	if err != nil || string(got) != secret {
		t.Fatalf("Open = %q, %v", got, err)
	}
	again, err := l.Seal(ctx, "t-a", []byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(again, box) {
		t.Error("two seals of one secret gave the same box: nonce reused")
	}

	// The key file was created, owner-only, and a second load reads the
	// same key: boxes survive a restart.
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 || info.Size() != 32 {
		t.Errorf("key file mode %#o, %d bytes; want 0600, 32", info.Mode().Perm(), info.Size())
	}
	if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 1 {
		t.Errorf("data directory holds %d entries, want the key file only (temporary file left?)", len(entries))
	}
	reloaded, err := sealed.LoadOrCreateKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := reloaded.Open(ctx, "t-a", box); err != nil || string(got) != secret {
		t.Fatalf("Open after reload = %q, %v", got, err)
	}

	// Empty secrets round-trip too; an empty tenant is refused.
	empty, err := l.Seal(ctx, "t-a", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := l.Open(ctx, "t-a", empty); err != nil || len(got) != 0 {
		t.Errorf("empty secret: %q, %v", got, err)
	}
	if _, err := l.Seal(ctx, "", []byte(secret)); err == nil {
		t.Error("Seal with an empty tenant id succeeded")
	}
}

func TestLocalTenantBinding(t *testing.T) {
	ctx := context.Background()
	l, _ := newLocal(t)
	box, err := l.Seal(ctx, "t-a", []byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	for _, other := range []string{"t-b", "t-a ", "T-A", "t-"} {
		got, err := l.Open(ctx, other, box)
		if !errors.Is(err, sealed.ErrInvalidBox) || got != nil {
			t.Errorf("Open as %q = %q, %v; want ErrInvalidBox", other, got, err)
		}
	}
}

func TestLocalTamperedBox(t *testing.T) {
	ctx := context.Background()
	l, _ := newLocal(t)
	box, err := l.Seal(ctx, "t-a", []byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	// Every single bit flipped anywhere in the box is detected.
	for i := range box {
		for bit := range 8 {
			bad := bytes.Clone(box)
			bad[i] ^= 1 << bit
			if got, err := l.Open(ctx, "t-a", bad); !errors.Is(err, sealed.ErrInvalidBox) {
				t.Fatalf("byte %d bit %d flipped: Open = %q, %v", i, bit, got, err)
			}
		}
	}
	for _, bad := range [][]byte{nil, {}, box[:1], box[:2], box[:20], box[:len(box)-1], append(bytes.Clone(box), 0)} {
		if _, err := l.Open(ctx, "t-a", bad); !errors.Is(err, sealed.ErrInvalidBox) {
			t.Errorf("box of %d bytes: %v, want ErrInvalidBox", len(bad), err)
		}
	}
}

func TestLocalOtherKeyFile(t *testing.T) {
	ctx := context.Background()
	a, _ := newLocal(t)
	b, _ := newLocal(t)
	box, err := a.Seal(ctx, "t-a", []byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	_, err = b.Open(ctx, "t-a", box)
	if !errors.Is(err, sealed.ErrInvalidBox) || !strings.Contains(err.Error(), "another key file") {
		t.Errorf("Open under another key file: %v", err)
	}
}

func TestKeyFileRefused(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, data []byte, mode os.FileMode) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, data, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, mode); err != nil { // past the umask
			t.Fatal(err)
		}
		return path
	}
	key := bytes.Repeat([]byte{7}, 32)
	cases := []struct {
		name, path, want string
	}{
		{"short", write("short", key[:16], 0o600), "has 16 bytes"},
		{"long", write("long", append(key, '\n'), 0o600), "has 33 bytes"},
		{"empty", write("empty", nil, 0o600), "has 0 bytes"},
		{"group readable", write("group", key, 0o640), "mode 0640"},
		{"world readable", write("world", key, 0o604), "mode 0604"},
		{"directory", dir, "not a regular file"},
	}
	for _, tc := range cases {
		l, err := sealed.LoadOrCreateKeyFile(tc.path)
		if err == nil || l != nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error saying %q", tc.name, err, tc.want)
		}
	}
	// The refused files are left as they were: nothing replaces a key.
	if data, _ := os.ReadFile(filepath.Join(dir, "short")); !bytes.Equal(data, key[:16]) {
		t.Error("a refused key file was rewritten")
	}
	// A good file written by hand is used as is.
	path := write("good", key, 0o600)
	a, err := sealed.LoadOrCreateKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b, err := sealed.NewLocal(key)
	if err != nil {
		t.Fatal(err)
	}
	box, err := b.Seal(context.Background(), "t-a", []byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := a.Open(context.Background(), "t-a", box); err != nil || string(got) != secret {
		t.Errorf("the key file's key is not the key written: %q, %v", got, err)
	}
	if _, err := sealed.NewLocal(key[:31]); err == nil {
		t.Error("NewLocal accepted a 31-byte key")
	}
}

// TestKeyFileCreatedOnce: processes starting together agree on one key.
func TestKeyFileCreatedOnce(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), sealed.KeyFileName)
	const n = 20
	sealers := make([]*sealed.Local, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { sealers[i], errs[i] = sealed.LoadOrCreateKeyFile(path) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	box, err := sealers[0].Seal(ctx, "t-a", []byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range sealers {
		if _, err := s.Open(ctx, "t-a", box); err != nil {
			t.Errorf("sealer %d has another key: %v", i, err)
		}
	}
}

func TestSchemesRefuseEachOther(t *testing.T) {
	ctx := context.Background()
	l, _ := newLocal(t)
	fake, k := newKMS(t)
	defer fake.Close()
	lbox, err := l.Seal(ctx, "t-a", []byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	kbox, err := k.Seal(ctx, "t-a", []byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k.Open(ctx, "t-a", lbox); !errors.Is(err, sealed.ErrInvalidBox) || !strings.Contains(err.Error(), "scheme local") {
		t.Errorf("KMS opening a local box: %v", err)
	}
	if _, err := l.Open(ctx, "t-a", kbox); !errors.Is(err, sealed.ErrInvalidBox) || !strings.Contains(err.Error(), "scheme kms") {
		t.Errorf("Local opening a KMS box: %v", err)
	}
}

func TestFromEnv(t *testing.T) {
	ctx := context.Background()
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

	dir := t.TempDir()
	s, err := sealed.FromEnv(env(nil), aws.Config{}, dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s.(*sealed.Local); !ok {
		t.Fatalf("without %s: %T, want *Local", sealed.EnvKeyID, s)
	}
	if _, err := os.Stat(filepath.Join(dir, sealed.KeyFileName)); err != nil {
		t.Errorf("no key file in the data directory: %v", err)
	}

	if _, err := sealed.FromEnv(env(nil), aws.Config{}, ""); err == nil || !strings.Contains(err.Error(), sealed.EnvKeyID) {
		t.Errorf("neither a key id nor a data directory: %v", err)
	}

	fake, _ := newKMS(t)
	defer fake.Close()
	cfg := aws.Config{Region: region, Credentials: creds(), BaseEndpoint: aws.String(fake.URL()), Retryer: func() aws.Retryer { return aws.NopRetryer{} }}
	s, err = sealed.FromEnv(env(map[string]string{sealed.EnvKeyID: "alias/bulkhead-sealing"}), cfg, dir)
	if err != nil {
		t.Fatal(err)
	}
	box, err := s.Seal(ctx, "t-a", []byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s.(*sealed.KMS); !ok || fake.Calls("GenerateDataKey") != 1 {
		t.Fatalf("with %s: %T and %d GenerateDataKey, want *KMS and 1", sealed.EnvKeyID, s, fake.Calls("GenerateDataKey"))
	}
	if got, err := s.Open(ctx, "t-a", box); err != nil || string(got) != secret {
		t.Errorf("Open = %q, %v", got, err)
	}
}

func TestLocalConcurrent(t *testing.T) {
	l, _ := newLocal(t)
	concurrently(t, l, 10)
}

func BenchmarkLocalSealOpen(b *testing.B) {
	ctx := context.Background()
	l, err := sealed.LoadOrCreateKeyFile(filepath.Join(b.TempDir(), sealed.KeyFileName))
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		box, err := l.Seal(ctx, "t-a", []byte(secret))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := l.Open(ctx, "t-a", box); err != nil {
			b.Fatal(err)
		}
	}
}
