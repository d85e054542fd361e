package ssrf

import (
	"net/netip"
	"strings"
)

// IPv4 ranges refused wherever an IPv4 address appears, embedded ones included.
var refused4 = prefixes(
	"0.0.0.0/8",       // "this network"; 0.0.0.0 reaches the host itself on Linux
	"10.0.0.0/8",      // private
	"100.64.0.0/10",   // carrier-grade NAT
	"127.0.0.0/8",     // loopback
	"169.254.0.0/16",  // link-local, the metadata service
	"172.16.0.0/12",   // private
	"192.0.0.0/24",    // IETF protocol assignments
	"192.0.2.0/24",    // documentation
	"192.88.99.0/24",  // deprecated 6to4 relay anycast
	"192.168.0.0/16",  // private
	"198.18.0.0/15",   // benchmarking
	"198.51.100.0/24", // documentation
	"203.0.113.0/24",  // documentation
	"224.0.0.0/4",     // multicast
	"240.0.0.0/4",     // reserved, and the broadcast address
)

// IPv6 ranges refused inside global unicast.
var refused6 = prefixes(
	"2001::/23",     // IETF protocol assignments, Teredo (2001::/32) among them
	"2001:db8::/32", // documentation
	"3fff::/20",     // documentation
)

var (
	global6   = netip.MustParsePrefix("2000::/3")
	nat64     = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour = netip.MustParsePrefix("2002::/16")
)

func prefixes(ss ...string) []netip.Prefix {
	ps := make([]netip.Prefix, len(ss))
	for i, s := range ss {
		ps[i] = netip.MustParsePrefix(s)
	}
	return ps
}

// AddrAllowed reports whether a call may connect to a, by the rules in the
// package documentation. It knows nothing of the allow-list.
func AddrAllowed(a netip.Addr) bool {
	if !a.IsValid() || a.Zone() != "" {
		return false
	}
	a = a.Unmap()
	if a.Is4() {
		return !inAny(refused4, a)
	}
	b := a.As16()
	switch {
	case nat64.Contains(a):
		return AddrAllowed(netip.AddrFrom4([4]byte(b[12:16])))
	case sixToFour.Contains(a):
		return AddrAllowed(netip.AddrFrom4([4]byte(b[2:6])))
	case !global6.Contains(a):
		// Loopback, unspecified, unique-local, link-local, multicast,
		// IPv4-compatible, the local-use NAT64 prefix and everything IANA
		// has not allocated for global unicast.
		return false
	}
	return !inAny(refused6, a)
}

// PortAllowed reports whether a call to a host not on the allow-list may
// use port.
func PortAllowed(port uint16) bool { return port == 80 || port == 443 }

func inAny(ps []netip.Prefix, a netip.Addr) bool {
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// canonicalHost returns host in the form allow-list keys use (a lowercase
// name, or the address's canonical text), and the address when host is an
// IP literal. It refuses hosts that look numeric without being a canonical
// address, and anything that is not a plausible DNS name.
func canonicalHost(host string) (canon string, ip netip.Addr, isIP bool, err error) {
	if a, perr := netip.ParseAddr(host); perr == nil {
		if a.Zone() != "" {
			return "", netip.Addr{}, false, refusedf("host %q: scoped addresses are not allowed", host)
		}
		return a.String(), a, true, nil
	}
	if looksNumeric(host) {
		return "", netip.Addr{}, false, refusedf("host %q is not a canonical IP address", host)
	}
	if !validName(host) {
		return "", netip.Addr{}, false, refusedf("host %q is not a valid DNS name", host)
	}
	return strings.ToLower(host), netip.Addr{}, false, nil
}

// looksNumeric reports whether host's last label is a number, decimal or
// 0x-hex. The URL standard and inet_aton read such a host as an IPv4 address
// (decimal, octal, hex, short forms), and no public name ends that way.
func looksNumeric(host string) bool {
	host = strings.TrimSuffix(host, ".")
	last := host[strings.LastIndexByte(host, '.')+1:]
	if len(last) >= 2 && last[0] == '0' && (last[1] == 'x' || last[1] == 'X') {
		return strings.Trim(last[2:], "0123456789abcdefABCDEF") == ""
	}
	return last != "" && strings.Trim(last, "0123456789") == ""
}

// validName accepts ASCII DNS names (underscores included, as some records
// use them) with at most one trailing dot. Internationalised names must be
// given in their punycode form.
func validName(host string) bool {
	host = strings.TrimSuffix(host, ".")
	if host == "" || len(host) > 253 {
		return false
	}
	for label := range strings.SplitSeq(host, ".") {
		if label == "" || len(label) > 63 {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// isLocalhost reports whether name is reserved for loopback (RFC 6761).
func isLocalhost(name string) bool {
	name = strings.TrimSuffix(name, ".")
	return name == "localhost" || strings.HasSuffix(name, ".localhost")
}
