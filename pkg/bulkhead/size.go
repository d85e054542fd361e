package bulkhead

import (
	"unicode/utf8"
)

// Size bounds. DynamoDB refuses items over 400 KB and Lambda refuses a
// synchronous response over 6 MB; the embedded servers enforce neither, so
// the platform bounds what it stores and answers by construction, measuring
// after JSON encoding (Go escapes <, > and & as six bytes each).
const (
	// MaxPageBytes is the byte budget of one list page: a page stops before
	// its items, JSON-encoded, would pass it (it always holds at least one).
	MaxPageBytes = 1024 * 1024
	// MaxResponseBytes is the largest API Gateway proxy response (the whole
	// JSON document Lambda returns, the body escaped inside it) that is sent;
	// Lambda's synchronous limit is 6,291,556 bytes.
	MaxResponseBytes = 6 * 1024 * 1024
)

// JSONStringLen is the number of bytes encoding/json writes for s as a JSON
// string, without the two quotes: it escapes ", \ and control characters,
// and (HTML-safe, its default) <, > and &, U+2028 and U+2029; invalid UTF-8
// becomes \ufffd.
func JSONStringLen(s string) int {
	n := 0
	for i := 0; i < len(s); {
		if b := s[i]; b < utf8.RuneSelf {
			switch {
			case b == '"' || b == '\\' || b == '\n' || b == '\r' || b == '\t' || b == '\b' || b == '\f':
				n += 2
			case b < 0x20 || b == '<' || b == '>' || b == '&':
				n += 6
			default:
				n++
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1, r == '\u2028', r == '\u2029':
			n += 6
		default:
			n += size
		}
		i += size
	}
	return n
}
