package ssrf

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"sync"
	"syscall"
	"time"
)

// ErrRefused matches (with errors.Is) every error by which the guard refuses
// a URL or a connection.
var ErrRefused = errors.New("ssrf: refused")

// refusedError carries the reason for a refusal. Its text is meant for the
// tenant (a 400 message at validation) and never holds a resolved address.
type refusedError struct{ reason string }

func (e *refusedError) Error() string        { return e.reason }
func (e *refusedError) Is(target error) bool { return target == ErrRefused }

func refusedf(format string, args ...any) error {
	return &refusedError{reason: fmt.Sprintf(format, args...)}
}

// Resolver looks up a name's addresses; *net.Resolver satisfies it, and
// tests give a Guard a fake one.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

var _ Resolver = (*net.Resolver)(nil)

// Guard checks URLs and connections by the package's rules. Set its fields
// before the first call and leave them alone afterwards.
type Guard struct {
	// Allow lists the host:port pairs exempt from the address and port
	// rules (see ParseAllowHosts).
	Allow Allow
	// Resolver resolves names at dial time; nil means net.DefaultResolver.
	Resolver Resolver
	// TLSClientConfig is the client's TLS configuration; nil means the
	// defaults and the system's roots.
	TLSClientConfig *tls.Config

	// connect makes the final connection to a checked address; nil means a
	// net.Dialer. Tests replace it to observe which address is dialed.
	connect func(ctx context.Context, network, address string, checked bool) (net.Conn, error)

	once sync.Once
	rt   *transport
}

// New returns a Guard with the given allow-list and the default resolver.
func New(allow Allow) *Guard {
	return &Guard{Allow: allow}
}

// CheckURL parses raw and checks it by the rules that need no resolution:
// scheme, credentials, port, and the address when the host is an IP literal.
// Names are checked again on every call, at dial time. The error's text
// says what is wrong, for the tenant; it matches ErrRefused.
func (g *Guard) CheckURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, refusedf("URL is not valid")
	}
	if err := g.checkURL(u); err != nil {
		return nil, err
	}
	return u, nil
}

func (g *Guard) checkURL(u *url.URL) error {
	var defaultPort uint16
	switch u.Scheme {
	case "https":
		defaultPort = 443
	case "http":
		defaultPort = 80
	default:
		return refusedf("URL scheme %q is not allowed: use https", u.Scheme)
	}
	if u.Opaque != "" || u.Host == "" {
		return refusedf("URL must be absolute, with a host")
	}
	if u.User != nil {
		return refusedf("URL must not carry credentials")
	}
	canon, ip, isIP, err := canonicalHost(u.Hostname())
	if err != nil {
		return err
	}
	port := defaultPort
	if p := u.Port(); p != "" {
		if port, err = parsePort(p); err != nil {
			return err
		}
	}
	if g.Allow.allows(canon, port) {
		return nil
	}
	switch {
	case u.Scheme == "http":
		return refusedf("URL scheme %q is not allowed: use https", u.Scheme)
	case !PortAllowed(port):
		return refusedf("URL port %d is not allowed: use 443 or 80", port)
	case isIP && !AddrAllowed(ip):
		return refusedf("URL host %s is in a private, loopback, link-local or reserved range", u.Hostname())
	case !isIP && isLocalhost(canon):
		return refusedf("URL host %s is a loopback name", u.Hostname())
	}
	return nil
}

// Client returns an HTTP client whose every request is checked with the
// rules of CheckURL and whose every connection goes through DialContext. It
// uses no proxy and follows no redirect (a 3xx is returned as the
// response). timeout bounds the whole request, reading the body included.
// Clients from one Guard share their connection pool.
func (g *Guard) Client(timeout time.Duration) *http.Client {
	return &http.Client{
		Transport: g.transport(),
		Timeout:   timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

func (g *Guard) transport() *transport {
	g.once.Do(func() {
		g.rt = &transport{g: g, next: &http.Transport{
			Proxy:                  nil, // never from the environment: a proxy would do the dialing
			DialContext:            g.DialContext,
			TLSClientConfig:        g.TLSClientConfig.Clone(),
			ForceAttemptHTTP2:      true,
			MaxIdleConns:           100,
			IdleConnTimeout:        90 * time.Second,
			TLSHandshakeTimeout:    10 * time.Second,
			ExpectContinueTimeout:  time.Second,
			MaxResponseHeaderBytes: 64 << 10,
		}}
	})
	return g.rt
}

// transport checks each request's URL before handing it on: the dial alone
// cannot tell http from https.
type transport struct {
	g    *Guard
	next *http.Transport
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if err := t.g.checkURL(req.URL); err != nil {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, err
	}
	return t.next.RoundTrip(req)
}

// CloseIdleConnections lets http.Client.CloseIdleConnections reach the pool.
func (t *transport) CloseIdleConnections() { t.next.CloseIdleConnections() }

// DialContext connects to address ("host:port", as an http.Transport passes
// it) if the rules allow it. A pair on the allow-list is dialed whatever it
// resolves to. Otherwise the port must be 80 or 443, a name is resolved with
// the guard's Resolver and refused if any of its addresses is refused, and
// the connection is made to a checked address, never to the name. Use it
// for connections that are not made through Client.
func (g *Guard) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	switch network {
	case "tcp", "tcp4", "tcp6":
	default:
		return nil, refusedf("dial %s: network %q is not allowed", address, network)
	}
	host, portText, err := net.SplitHostPort(address)
	if err != nil {
		return nil, refusedf("dial %q: not host:port", address)
	}
	port, err := parsePort(portText)
	if err != nil {
		return nil, refusedf("dial %s: %v", address, err)
	}
	canon, ip, isIP, err := canonicalHost(host)
	if err != nil {
		return nil, refusedf("dial %s: %v", address, err)
	}
	allowed := g.Allow.allows(canon, port)
	if !allowed && !PortAllowed(port) {
		return nil, refusedf("dial %s: port not allowed", address)
	}
	addrs := []netip.Addr{ip}
	if !isIP {
		if addrs, err = g.resolve(ctx, network, canon); err != nil {
			return nil, err
		}
	}
	if !allowed {
		for _, a := range addrs {
			if !AddrAllowed(a) {
				// The address stays out of the message: naming it would let a
				// tenant map private networks through its tools' errors.
				return nil, refusedf("dial %s: address not allowed", address)
			}
		}
	}
	return g.dialEach(ctx, network, addrs, port, !allowed)
}

func (g *Guard) resolve(ctx context.Context, network, host string) ([]netip.Addr, error) {
	ipNetwork := map[string]string{"tcp": "ip", "tcp4": "ip4", "tcp6": "ip6"}[network]
	r := g.Resolver
	if r == nil {
		r = net.DefaultResolver
	}
	addrs, err := r.LookupNetIP(ctx, ipNetwork, host)
	if err != nil {
		return nil, &resolveError{host: host, err: err}
	}
	if len(addrs) == 0 {
		return nil, &resolveError{host: host, err: &net.DNSError{Err: "no addresses", Name: host, IsNotFound: true}}
	}
	return addrs, nil
}

// resolveError hides the resolver's own text, which names the DNS server
// (an address inside the deployment's network), from the tenant.
type resolveError struct {
	host string
	err  error
}

func (e *resolveError) Error() string {
	var dnsErr *net.DNSError
	switch {
	case errors.As(e.err, &dnsErr) && dnsErr.IsNotFound:
		return "resolve " + e.host + ": no such host"
	case errors.As(e.err, &dnsErr) && dnsErr.IsTimeout:
		return "resolve " + e.host + ": timeout"
	}
	return "resolve " + e.host + ": lookup failed"
}

func (e *resolveError) Unwrap() error { return e.err }

// dialEach tries the addresses in order, as net.Dialer does, giving each a
// share of the time left so that one silent address cannot use it all.
func (g *Guard) dialEach(ctx context.Context, network string, addrs []netip.Addr, port uint16, checked bool) (net.Conn, error) {
	var first error
	for i, a := range addrs {
		attempt := ctx
		if deadline, ok := ctx.Deadline(); ok {
			share := time.Until(deadline) / time.Duration(len(addrs)-i)
			var cancel context.CancelFunc
			attempt, cancel = context.WithTimeout(ctx, max(share, 2*time.Second))
			defer cancel()
		}
		target := netip.AddrPortFrom(a.Unmap(), port).String()
		conn, err := g.connectTo(attempt, network, target, checked)
		if err == nil {
			return conn, nil
		}
		if first == nil {
			first = err
		}
		if ctx.Err() != nil {
			break
		}
	}
	return nil, first
}

func (g *Guard) connectTo(ctx context.Context, network, target string, checked bool) (net.Conn, error) {
	if g.connect != nil {
		return g.connect(ctx, network, target, checked)
	}
	d := &net.Dialer{}
	if checked {
		d.Control = controlCheck
	}
	return d.DialContext(ctx, network, target)
}

// controlCheck runs just before the socket connects, on the address actually
// connected to: the last line, should anything above it let a name through.
func controlCheck(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil || !AddrAllowed(ap.Addr()) || !PortAllowed(ap.Port()) {
		return refusedf("connect: address not allowed")
	}
	return nil
}
