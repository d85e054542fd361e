package ssrf

import "io"

// MaxResponseBytes is the most of a response body a caller reads from a
// tenant's endpoint.
const MaxResponseBytes = 1 << 20

// ReadLimited reads r to its end or to n bytes, whichever comes first, and
// reports whether there was more: a tenant's endpoint cannot make the
// platform hold an unbounded body in memory. When tooLarge is true, b holds the
// first n bytes and the rest of r is left unread.
func ReadLimited(r io.Reader, n int64) (b []byte, tooLarge bool, err error) {
	n = max(n, 0)
	b, err = io.ReadAll(io.LimitReader(r, n+1))
	if int64(len(b)) > n {
		return b[:n], true, err
	}
	return b, false, err
}
