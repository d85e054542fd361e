package ssrf_test

import (
	"net/netip"
	"strconv"
	"strings"
	"testing"

	"github.com/bulkhead-dev/bulkhead/pkg/ssrf"
)

// FuzzCheckURL checks what CheckURL accepts against rules written out
// independently of the package: the scheme, no credentials, the port, the
// address of an IP literal (by net/netip's own classification plus the
// reserved ranges), and no host that inet_aton would read as an address.
func FuzzCheckURL(f *testing.F) {
	for _, s := range []string{
		"https://example.com/", "https://example.com:443/p?q=1", "http://127.0.0.1:8787/",
		"https://2130706433/", "https://0177.0.0.1/", "https://0x7f.0.0.1/", "https://127.1/",
		"https://[::ffff:127.0.0.1]/", "https://[::ffff:7f00:1]/", "https://[64:ff9b::7f00:1]/",
		"https://[2002:7f00:1::]/", "https://169.254.169.254/", "https://[fd00:ec2::254]/",
		"https://100.64.0.1/", "https://0.0.0.0/", "https://[fe80::1%25eth0]/", "ftp://example.com/",
		"https://user:pass@example.com/", "https://example.com:8443/", "http://example.com/",
		"https://93.184.215.14/", "https://[2606:4700::1111]/", "https://%31%32%37.0.0.1/",
		"https://localhost./", "https://1.2.3.4./", "HTTPS://EXAMPLE.COM:443",
	} {
		f.Add(s)
	}
	const allowed = "127.0.0.1:8787"
	g := ssrf.New(mustAllow(f, allowed))
	f.Fuzz(func(t *testing.T, raw string) {
		u, err := g.CheckURL(raw)
		if err != nil {
			return
		}
		host, port := u.Hostname(), u.Port()
		if port == "" {
			port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
		}
		onList := host+":"+port == allowed
		switch {
		case u.Scheme != "https" && u.Scheme != "http":
			t.Fatalf("accepted %q with scheme %q", raw, u.Scheme)
		case u.User != nil:
			t.Fatalf("accepted %q with credentials", raw)
		case u.Scheme == "http" && !onList:
			t.Fatalf("accepted http URL %q not on the allow-list", raw)
		case !onList && port != "80" && port != "443":
			t.Fatalf("accepted %q with port %q", raw, port)
		}
		if a, err := netip.ParseAddr(host); err == nil {
			if !onList && refusedByOracle(a) {
				t.Fatalf("accepted %q whose address %s is refused", raw, a)
			}
		} else if a, ok := inetAton(host); ok {
			t.Fatalf("accepted %q whose host %q reads as %s to inet_aton", raw, host, a)
		}
	})
}

// refusedByOracle is the address rule stated with netip's predicates.
func refusedByOracle(a netip.Addr) bool {
	if a.Zone() != "" {
		return true
	}
	a = a.Unmap()
	if a.Is6() {
		b := a.As16()
		switch {
		case netip.MustParsePrefix("64:ff9b::/96").Contains(a):
			return refusedByOracle(netip.AddrFrom4([4]byte(b[12:])))
		case netip.MustParsePrefix("2002::/16").Contains(a):
			return refusedByOracle(netip.AddrFrom4([4]byte(b[2:6])))
		}
	}
	if !a.IsGlobalUnicast() || a.IsPrivate() || a.IsLoopback() || a.IsLinkLocalUnicast() {
		return true
	}
	for _, p := range []string{
		"0.0.0.0/8", "100.64.0.0/10", "192.0.0.0/24", "192.0.2.0/24", "198.18.0.0/15",
		"198.51.100.0/24", "203.0.113.0/24", "240.0.0.0/4", "2001:db8::/32", "2001::/32",
	} {
		if netip.MustParsePrefix(p).Contains(a) {
			return true
		}
	}
	return false
}

// inetAton reads s as the BSD inet_aton does: one to four parts, each
// decimal, octal (leading 0) or hex (0x), the last filling the remaining
// bytes; a trailing dot is tolerated, as some resolvers do.
func inetAton(s string) (netip.Addr, bool) {
	parts := strings.Split(strings.TrimSuffix(s, "."), ".")
	if len(parts) > 4 {
		return netip.Addr{}, false
	}
	var vals []uint64
	for _, p := range parts {
		base := 10
		switch {
		case len(p) > 1 && (p[:2] == "0x" || p[:2] == "0X"):
			base, p = 16, p[2:]
			if p == "" {
				p = "0"
			}
		case len(p) > 1 && p[0] == '0':
			base, p = 8, p[1:]
		}
		v, err := strconv.ParseUint(p, base, 32)
		if err != nil {
			return netip.Addr{}, false
		}
		vals = append(vals, v)
	}
	var n uint64
	for i, v := range vals[:len(vals)-1] {
		if v > 255 {
			return netip.Addr{}, false
		}
		n |= v << (24 - 8*i)
	}
	last := vals[len(vals)-1]
	if last >= 1<<(8*(5-len(vals))) {
		return netip.Addr{}, false
	}
	n |= last
	return netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}), true
}
