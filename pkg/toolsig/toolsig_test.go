package toolsig_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/bulkhead-dev/bulkhead/pkg/toolsig"
)

func TestSignMatchesTheDocumentedScheme(t *testing.T) {
	at := time.Unix(1764547200, 0)
	body := []byte(`{"tool":"lookup","arguments":{"q":"x"}}`)
	secret := "whsec_test"
	h := hmac.New(sha256.New, []byte(secret))
	h.Write([]byte("1764547200." + string(body)))
	want := "t=1764547200,v1=" + hex.EncodeToString(h.Sum(nil))
	if got := toolsig.Sign([]string{secret}, at, body); got != want {
		t.Fatalf("Sign = %s, want %s", got, want)
	}
}

func TestVerify(t *testing.T) {
	now := time.Unix(1764547200, 0)
	body := []byte(`{"a":1}`)
	newS, oldS := toolsig.NewSecret(), toolsig.NewSecret()
	if !strings.HasPrefix(newS, toolsig.SecretPrefix) || newS == oldS || len(newS) != len(toolsig.SecretPrefix)+43 {
		t.Fatalf("secrets %q %q", newS, oldS)
	}
	rotating := toolsig.Sign([]string{newS, oldS}, now, body)
	if strings.Count(rotating, "v1=") != 2 {
		t.Fatalf("header %q: want two signatures", rotating)
	}
	cases := []struct {
		name   string
		header string
		body   []byte
		secret string
		now    time.Time
		want   error
	}{
		{"current", toolsig.Sign([]string{newS}, now, body), body, newS, now, nil},
		{"rotation, new secret", rotating, body, newS, now, nil},
		{"rotation, old secret", rotating, body, oldS, now, nil},
		{"other secret", toolsig.Sign([]string{newS}, now, body), body, oldS, now, toolsig.ErrNoMatch},
		{"body changed", toolsig.Sign([]string{newS}, now, body), []byte(`{"a":2}`), newS, now, toolsig.ErrNoMatch},
		{"stale", toolsig.Sign([]string{newS}, now.Add(-6*time.Minute), body), body, newS, now, toolsig.ErrStale},
		{"future", toolsig.Sign([]string{newS}, now.Add(6*time.Minute), body), body, newS, now, toolsig.ErrStale},
		{"no timestamp", "v1=00", body, newS, now, toolsig.ErrMalformed},
		{"no signature", "t=1764547200", body, newS, now, toolsig.ErrMalformed},
		{"two timestamps", "t=1,t=2,v1=00", body, newS, now, toolsig.ErrMalformed},
		{"garbage", "garbage", body, newS, now, toolsig.ErrMalformed},
	}
	for _, c := range cases {
		if err := toolsig.Verify(c.header, c.body, c.secret, c.now, toolsig.DefaultTolerance); !errors.Is(err, c.want) {
			t.Errorf("%s: Verify = %v, want %v", c.name, err, c.want)
		}
	}
}
