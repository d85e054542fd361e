package s3store

import (
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"

	"github.com/bulkhead-dev/bulkhead/pkg/bulkhead"
)

// Position is where a page of a transcript starts: message Offset (from 0)
// within turn Turn (from 1). The zero Position is the start of the transcript.
type Position struct {
	Turn   int64
	Offset int
}

// EncodePosition returns p as an opaque cursor for the public API.
func EncodePosition(p Position) string {
	return base64.RawURLEncoding.EncodeToString(fmt.Appendf(nil, "%d:%d", p.Turn, p.Offset))
}

// DecodePosition parses a cursor made by EncodePosition. The empty cursor is
// the start of the transcript; anything else that EncodePosition could not
// have produced is an Invalid error, so forged cursors never reach a key.
func DecodePosition(cursor string) (Position, error) {
	if cursor == "" {
		return Position{}, nil
	}
	invalid := &bulkhead.Error{Code: bulkhead.Invalid, Op: "s3store.DecodePosition", Message: "invalid cursor"}
	raw, err := base64.RawURLEncoding.DecodeString(cursor)
	if err != nil {
		return Position{}, invalid
	}
	turnStr, offStr, ok := strings.Cut(string(raw), ":")
	if !ok {
		return Position{}, invalid
	}
	turn, err1 := strconv.ParseInt(turnStr, 10, 64)
	off, err2 := strconv.Atoi(offStr)
	p := Position{Turn: turn, Offset: off}
	// Requiring the canonical encoding refuses signs, leading zeros and
	// other spellings of the same position.
	if err1 != nil || err2 != nil || turn < 1 || turn > maxTurn || off < 0 || EncodePosition(p) != cursor {
		return Position{}, invalid
	}
	return p, nil
}
