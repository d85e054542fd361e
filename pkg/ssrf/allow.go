package ssrf

import (
	"fmt"
	"net"
	"strconv"
	"strings"
)

// AllowHostsEnv names the environment variable the allow-list is read from.
const AllowHostsEnv = "BULKHEAD_TOOL_ALLOW_HOSTS"

// Allow is a set of exact host:port pairs that calls may reach whatever the
// address and port rules say, over http as well as https. Keys are in
// canonical form (see ParseAllowHosts); the zero value allows nothing.
type Allow map[string]bool

// ParseAllowHosts parses a comma-separated list of host:port pairs, such as
// "127.0.0.1:8787,localhost:8787,[::1]:9000". Names are lowercased and IP
// literals put in canonical form; an entry without a port, or with a host
// that is neither a name nor a canonical address, is an error, since a typo
// in the allow-list should stop the deployment rather than widen it.
func ParseAllowHosts(s string) (Allow, error) {
	allow := Allow{}
	for entry := range strings.SplitSeq(s, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		host, portText, err := net.SplitHostPort(entry)
		if err != nil {
			return nil, fmt.Errorf("%s: entry %q is not host:port", AllowHostsEnv, entry)
		}
		port, err := parsePort(portText)
		if err != nil {
			return nil, fmt.Errorf("%s: entry %q: %w", AllowHostsEnv, entry, err)
		}
		canon, _, _, err := canonicalHost(host)
		if err != nil {
			return nil, fmt.Errorf("%s: entry %q: %w", AllowHostsEnv, entry, err)
		}
		allow[allowKey(canon, port)] = true
	}
	return allow, nil
}

// allows reports whether the canonical host and port are on the list.
func (a Allow) allows(canonHost string, port uint16) bool {
	return a[allowKey(canonHost, port)]
}

func allowKey(canonHost string, port uint16) string {
	return net.JoinHostPort(canonHost, strconv.Itoa(int(port)))
}

// parsePort accepts 1 to 65535 in decimal.
func parsePort(s string) (uint16, error) {
	n, err := strconv.ParseUint(s, 10, 16)
	// A leading zero ("0443") is refused rather than read as 443: a port is
	// written one way, so what is stored, shown and compared with the
	// allow-list is what is dialled.
	if err != nil || n == 0 || s[0] == '0' {
		return 0, refusedf("port %q is not a valid port", s)
	}
	return uint16(n), nil
}
