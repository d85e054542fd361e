// Package toolsig signs the platform's calls to tenant tools, and verifies
// them for receivers: the scheme of Stripe's webhooks. The header is
//
//	Bulkhead-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>
//
// keyed with the whole "whsec_..." secret string. While a tool's secret is
// being rotated the header carries one v1= per valid secret, newest first,
// so a receiver that knows either secret accepts the call. The timestamp is
// signed with the body, so a receiver that refuses stale timestamps refuses
// replays.
package toolsig

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"time"
)

// Header is the request header that carries the signature.
const Header = "Bulkhead-Signature"

// SecretPrefix starts every signing secret.
const SecretPrefix = "whsec_"

// DefaultTolerance is how old a signed timestamp a receiver should accept.
const DefaultTolerance = 5 * time.Minute

// NewSecret returns a new signing secret: the prefix and 32 random bytes.
func NewSecret() string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("crypto/rand: " + err.Error())
	}
	return SecretPrefix + base64.RawURLEncoding.EncodeToString(b[:])
}

func mac(secret string, t int64, body []byte) string {
	h := hmac.New(sha256.New, []byte(secret))
	h.Write(strconv.AppendInt(nil, t, 10))
	h.Write([]byte{'.'})
	h.Write(body)
	return hex.EncodeToString(h.Sum(nil))
}

// Sign returns the header value for body at time t, one v1= per secret in
// the order given (newest first).
func Sign(secrets []string, t time.Time, body []byte) string {
	ts := t.Unix()
	var b strings.Builder
	b.WriteString("t=")
	b.WriteString(strconv.FormatInt(ts, 10))
	for _, s := range secrets {
		b.WriteString(",v1=")
		b.WriteString(mac(s, ts, body))
	}
	return b.String()
}

// Verification errors.
var (
	ErrMalformed = errors.New("toolsig: malformed signature header")
	ErrStale     = errors.New("toolsig: timestamp outside the tolerance")
	ErrNoMatch   = errors.New("toolsig: no signature matches")
)

// Verify checks header against body with secret, refusing timestamps more
// than tolerance away from now (either way).
func Verify(header string, body []byte, secret string, now time.Time, tolerance time.Duration) error {
	var ts int64
	var sigs []string
	haveT := false
	for part := range strings.SplitSeq(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return ErrMalformed
		}
		switch k {
		case "t":
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || haveT {
				return ErrMalformed
			}
			ts, haveT = n, true
		case "v1":
			sigs = append(sigs, v)
		}
	}
	if !haveT || len(sigs) == 0 {
		return ErrMalformed
	}
	if d := now.Sub(time.Unix(ts, 0)); d > tolerance || d < -tolerance {
		return ErrStale
	}
	want := []byte(mac(secret, ts, body))
	for _, s := range sigs {
		if hmac.Equal([]byte(s), want) {
			return nil
		}
	}
	return ErrNoMatch
}
