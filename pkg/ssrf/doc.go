// Package ssrf guards the outbound calls a tenant can aim: its HTTP tools and
// its MCP servers. Every such call goes through a Guard, so a tenant cannot use
// the platform to reach the metadata service, the VPC, or the host itself.
//
// The rules, for every URL that is not on the deployment's allow-list:
//
//   - https only (http is refused), no credentials in the URL, port 443 or 80.
//   - The host is a DNS name or a canonical IP literal. A host that looks
//     numeric but is not a canonical dotted quad ("2130706433", "0177.0.0.1",
//     "0x7f.0.0.1", "127.1", "1.2.3.4.") is refused outright and never given
//     to a resolver, since some resolvers read these forms as addresses.
//     "localhost" and names under ".localhost" are refused at validation.
//   - The address connected to is public. Refused IPv4 ranges: 0.0.0.0/8,
//     10/8, 100.64/10 (CGNAT), 127/8, 169.254/16 (link-local, including the
//     metadata service 169.254.169.254), 172.16/12, 192.0.0.0/24,
//     192.0.2.0/24, 192.88.99.0/24, 192.168/16, 198.18/15, 198.51.100.0/24,
//     203.0.113.0/24, 224/4 (multicast) and 240/4 (reserved, including the
//     broadcast address). Of IPv6 only global unicast (2000::/3) is accepted,
//     which leaves out ::, ::1, fc00::/7 (unique-local, including the metadata
//     service's fd00:ec2::254), fe80::/10, ff00::/8 and the deprecated
//     IPv4-compatible forms; within it 2001::/23 (protocol assignments,
//     Teredo among them), 2001:db8::/32 and 3fff::/20 (documentation) and
//     64:ff9b:1::/48 (local-use NAT64) are refused. An address that embeds an
//     IPv4 address is judged by it: IPv4-mapped (::ffff:0:0/96), NAT64
//     (64:ff9b::/96) and 6to4 (2002::/16). Zoned (scoped) addresses are
//     refused.
//
// Names are checked at dial time, on every connection: the Guard resolves the
// name with its Resolver, refuses the call if ANY of the answers is refused
// (a mixed answer is treated as hostile rather than filtered), and then dials
// the checked address itself, never the name, so a DNS answer that changes
// between the check and the connection (rebinding) cannot switch the target.
// The dialer's Control function checks the address once more, just before
// the socket connects. Literal addresses in a URL are refused earlier, by
// CheckURL, so a tool with such a URL cannot be created.
//
// The client never takes a proxy from the environment and never follows a
// redirect: a 3xx comes back as the response, so a redirect cannot lead a
// call to an address the guard would refuse.
//
// The allow-list (BULKHEAD_TOOL_ALLOW_HOSTS, comma-separated exact host:port
// pairs such as "127.0.0.1:8787" or "localhost:8787") lets local development
// and tests reach a tool on loopback. It names the URL's host and port, not
// the address: "localhost:8787" allows a URL naming localhost on port 8787,
// over http or https, whatever it resolves to, and nothing else; another
// name resolving to loopback is still refused. It is empty by default.
//
// Refusals match ErrRefused with errors.Is. Their text names the URL's host
// but never the address a name resolved to, so the guard cannot be used as
// an oracle to map private networks.
package ssrf
