package s3store

import (
	"strconv"
	"testing"

	"github.com/bulkhead-dev/bulkhead/pkg/bulkhead"
)

// FuzzPosition: a transcript cursor from the client either decodes to the
// position it canonically encodes (a turn that has a key, an offset that is
// not negative) or is refused as invalid_request, never a panic; and every
// valid position survives EncodePosition then DecodePosition unchanged.
func FuzzPosition(f *testing.F) {
	f.Add("", int64(1), 0)
	f.Add(EncodePosition(Position{Turn: 1, Offset: 0}), int64(3), 7)
	f.Add(EncodePosition(Position{Turn: maxTurn, Offset: 99}), int64(maxTurn), 1<<40)
	for _, c := range []string{"MTow", "MDow", "LTE6MA", "KzE6MA", "MTotMQ", "MTowMQ", "MTAwMDAwMDAwMDA6MA", "MTo", "!!", "zz", "MQ", "MTowCg", "MTow==", " MTow"} {
		f.Add(c, int64(0), -1)
	}
	f.Fuzz(func(t *testing.T, cursor string, turn int64, offset int) {
		p, err := DecodePosition(cursor)
		switch {
		case err != nil:
			if !bulkhead.IsCode(err, bulkhead.Invalid) {
				t.Fatalf("DecodePosition(%q): error %v, want invalid_request", cursor, err)
			}
		case cursor == "":
			if p != (Position{}) {
				t.Fatalf("DecodePosition(\"\") = %+v, want the start", p)
			}
		default:
			if p.Turn < 1 || p.Turn > maxTurn || p.Offset < 0 {
				t.Fatalf("DecodePosition(%q) = %+v, outside the transcript", cursor, p)
			}
			if got := EncodePosition(p); got != cursor {
				t.Fatalf("DecodePosition(%q) = %+v, which encodes as %q", cursor, p, got)
			}
		}

		in := Position{Turn: turn, Offset: offset}
		enc := EncodePosition(in)
		back, err := DecodePosition(enc)
		valid := turn >= 1 && turn <= maxTurn && offset >= 0
		if valid && (err != nil || back != in) {
			t.Fatalf("DecodePosition(EncodePosition(%+v) = %q) = %+v, %v", in, enc, back, err)
		}
		if !valid && err == nil {
			t.Fatalf("position %+v (turn 1-%s, offset >= 0) was accepted back from %q", in, strconv.FormatInt(maxTurn, 10), enc)
		}
	})
}
