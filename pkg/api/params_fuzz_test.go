package api

import (
	"encoding/base64"
	"encoding/hex"
	"math/big"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/bulkhead-dev/bulkhead/pkg/bulkhead"
)

// FuzzPageParams: ?limit= is accepted exactly when it is a decimal integer
// from 1 to 100 (absent: 20), and anything else is invalid_request.
func FuzzPageParams(f *testing.F) {
	for _, v := range []string{"1", "20", "100", "0", "101", "-1", "+5", "007", "ten", "", " 5", "5 ", "1e2", "0x10", "1_0", "99999999999999999999", "٣"} {
		f.Add(v, true, "cursor")
	}
	f.Add("", false, "")
	f.Fuzz(func(t *testing.T, v string, present bool, cursor string) {
		q := map[string]string{"cursor": cursor}
		if present {
			q["limit"] = v
		}
		gotCursor, limit, err := pageParams(events.APIGatewayProxyRequest{QueryStringParameters: q})
		want, inRange := bulkhead.DefaultPageSize, true
		if present {
			n, ok := new(big.Int).SetString(v, 10)
			inRange = ok && n.IsInt64() && n.Int64() >= 1 && n.Int64() <= bulkhead.MaxPageSize
			if inRange {
				want = int(n.Int64())
			}
		}
		if !inRange {
			if !bulkhead.IsCode(err, bulkhead.Invalid) {
				t.Fatalf("limit %q: got %d, %v; want invalid_request", v, limit, err)
			}
			return
		}
		if err != nil || limit != want || gotCursor != cursor {
			t.Fatalf("limit %q: got %d, %q, %v; want %d, %q", v, limit, gotCursor, err, want, cursor)
		}
	})
}

// FuzzParseMonth: a month is YYYY-MM and nothing else; an accepted month is
// the half-open UTC interval from its first instant to the next month's.
func FuzzParseMonth(f *testing.F) {
	for _, s := range []string{"2026-11", "0000-01", "9999-12", "2026-13", "2026-00", "2026-1", "26-11", "2026-11-01", " 2026-11", "2026/11", "２０２６-11", ""} {
		f.Add(s)
	}
	shape := regexp.MustCompile(`^[0-9]{4}-(0[1-9]|1[0-2])$`)
	f.Fuzz(func(t *testing.T, s string) {
		start, end, err := parseMonth(s)
		if valid := shape.MatchString(s); (err == nil) != valid {
			t.Fatalf("parseMonth(%q): %v, want valid=%v", s, err, valid)
		}
		if err != nil {
			if !bulkhead.IsCode(err, bulkhead.Invalid) {
				t.Fatalf("parseMonth(%q): %v, want invalid_request", s, err)
			}
			return
		}
		if start.Location() != time.UTC || start.Format("2006-01") != s || start.Day() != 1 || start.Hour() != 0 ||
			!end.Equal(start.AddDate(0, 1, 0)) || bulkhead.MonthKey(start) != s {
			t.Fatalf("parseMonth(%q) = [%v, %v)", s, start, end)
		}
	})
}

// FuzzParseTime: ?from= and ?to= take an RFC 3339 time or a date; what is
// accepted is a UTC instant that its own RFC 3339 rendering gives back.
func FuzzParseTime(f *testing.F) {
	for _, s := range []string{"2026-11-28", "2026-11-28T10:30:00Z", "2026-11-28T10:30:00.123456789+05:30", "2026-11-28T10:30:00-00:00",
		"2026-02-30", "2026-11-28T24:00:00Z", "2026-11-28T10:30:00", "2026-11-28 10:30:00Z", "0000-01-01", "9999-12-31T23:59:59Z",
		"2026-11-28T10:30:00+24:00", "1", "", "2026-11-28T10:30:00.Z"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tm, err := parseTime(s)
		if err != nil {
			return
		}
		if tm.Location() != time.UTC {
			t.Fatalf("parseTime(%q) = %v, not UTC", s, tm)
		}
		back, err := parseTime(tm.Format(time.RFC3339Nano))
		if err != nil || !back.Equal(tm) {
			t.Fatalf("parseTime(%q) = %v, whose rendering %q parses as %v, %v", s, tm, tm.Format(time.RFC3339Nano), back, err)
		}
		if len(s) == len("2006-01-02") && (tm.Format("2006-01-02") != s || !tm.Equal(tm.Truncate(24*time.Hour))) {
			t.Fatalf("parseTime(%q) = %v, not the start of that day", s, tm)
		}
	})
}

// FuzzAPIKey: the Authorization header and the key in it are checked before
// any lookup. Whatever the header, nothing panics; a token that passes is
// exactly bk_live_ + 32 base64url bytes, or bk_live_ + a tenant id + _ + 32
// base64url bytes; hashes are 64 hex digits; and a freshly made key always
// passes, names its tenant, hashes to what is stored, and no other token
// hashes like it.
func FuzzAPIKey(f *testing.F) {
	secret, _ := newAPIKey("tn_aaaaaaaaaaaaaaaa", "seed", time.Unix(0, 0))
	for _, h := range []string{"Bearer " + secret, "bearer " + secret, "BEARER  " + secret + " ", "Bearer " + secret + "=", "Bearer " + secret[:50],
		"Bearer " + secret + "A", "Basic " + secret, secret, "Bearer", "Bearer ", "", "Bearer bk_live_nope", "Bearer bk_test_" + secret[8:],
		"Bearer bk_live_" + strings.Repeat("/", 43), "Bearer bk_live_" + strings.Repeat("A", 42) + "B", "Bearer\t" + secret, "Bearer " + strings.ToUpper(secret),
		"Bearer " + keyPrefix + secret[len(secret)-43:], "Bearer bk_live_tn_aaaaaaaaaaaaaaa1_" + secret[len(secret)-43:],
		"Bearer bk_live_tn_aaaaaaaaaaaaaaaa" + secret[len(secret)-43:], "Bearer bk_live_tn_aaaaaaaaaaaaaaaa__" + secret[len(secret)-43:],
		"Bearer bk_live_key_aaaaaaaaaaaaaaaa_" + secret[len(secret)-43:], "Bearer bk_live__" + secret[len(secret)-43:]} {
		f.Add(h)
	}
	hexDigits := regexp.MustCompile(`^[0-9a-f]{64}$`)
	f.Fuzz(func(t *testing.T, h string) {
		token, ok := bearer(h)
		if ok && (token == "" || token != strings.TrimSpace(token)) {
			t.Fatalf("bearer(%q) = %q: empty or padded", h, token)
		}
		if tid, ok := parseKey(token); ok {
			rest, hasPrefix := strings.CutPrefix(token, keyPrefix)
			named := ""
			if tid != "" {
				named = tid + "_"
			}
			secret, names := strings.CutPrefix(rest, named)
			b, err := base64.RawURLEncoding.DecodeString(secret)
			if !hasPrefix || !names || len(secret) != 43 || err != nil || len(b) != keySecretBytes ||
				(tid != "" && !bulkhead.ValidID("tn", tid)) {
				t.Fatalf("parseKey(%q) = %q: accepted a token that is not bk_live_ + [tenant id + _] + 32 bytes", token, tid)
			}
		} else if wellFormedKey(token) {
			t.Fatalf("wellFormedKey(%q) accepts what parseKey refuses", token)
		}
		if hk := hashKey(h); !hexDigits.MatchString(hk) || hk != hashKey(h) {
			t.Fatalf("hashKey(%q) = %q", h, hk)
		}

		fresh, k := newAPIKey("tn_aaaaaaaaaaaaaaaa", "k", time.Unix(0, 0))
		if tid, ok := parseKey(fresh); !ok || tid != "tn_aaaaaaaaaaaaaaaa" || k.Hash != hashKey(fresh) ||
			k.Prefix != "bk_live_tn_aaaaaaaaaaaaaaaa_"+fresh[len(fresh)-43:][:4] || !bulkhead.ValidID("key", k.ID) {
			t.Fatalf("newAPIKey made %q / %+v", fresh, k)
		}
		if got, ok := bearer("Bearer " + fresh); !ok || got != fresh {
			t.Fatalf("bearer(\"Bearer \" + %q) = %q, %v", fresh, got, ok)
		}
		if h != fresh && hashKey(h) == k.Hash {
			t.Fatalf("%q hashes like the key %q", h, fresh)
		}
		if _, err := hex.DecodeString(k.Hash); err != nil {
			t.Fatalf("hash %q: %v", k.Hash, err)
		}
	})
}
