package ssrf_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/bulkhead-dev/bulkhead/pkg/ssrf"
)

// envProxy is the proxy every test runs with in its environment. net/http
// reads the proxy variables once per process, so they are set before any
// test runs rather than with t.Setenv in one test.
var envProxy *countingServer

func TestMain(m *testing.M) {
	envProxy = startCounting(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "proxied", http.StatusBadGateway)
	}), false)
	for _, k := range []string{"HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"} {
		os.Setenv(k, envProxy.URL)
	}
	for _, k := range []string{"NO_PROXY", "no_proxy", "REQUEST_METHOD"} {
		os.Unsetenv(k)
	}
	code := m.Run()
	envProxy.Close()
	os.Exit(code)
}

// countingServer is an HTTP server on loopback that counts the connections
// it accepts.
type countingServer struct {
	*httptest.Server
	ln *countingListener
}

type countingListener struct {
	net.Listener
	n atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

func startCounting(h http.Handler, useTLS bool) *countingServer {
	srv := httptest.NewUnstartedServer(h)
	ln := &countingListener{Listener: srv.Listener}
	srv.Listener = ln
	if useTLS {
		srv.StartTLS()
	} else {
		srv.Start()
	}
	return &countingServer{Server: srv, ln: ln}
}

func newCounting(t *testing.T, h http.Handler, useTLS bool) *countingServer {
	t.Helper()
	s := startCounting(h, useTLS)
	t.Cleanup(s.Close)
	return s
}

// Accepted is the number of connections accepted so far. Accepts happen in
// the server's goroutine; a count read after a request that reached the
// server has seen every connection made before it, since the kernel queues
// them in order.
func (s *countingServer) Accepted() int64 { return s.ln.n.Load() }

// HostPort is the listener's address, "127.0.0.1:port".
func (s *countingServer) HostPort() string { return s.Listener.Addr().String() }

// Port is the listener's port.
func (s *countingServer) Port() int { return s.Listener.Addr().(*net.TCPAddr).Port }

// TLSConfig is a client TLS configuration trusting the server's certificate, which is
// valid for 127.0.0.1, example.com and *.example.com.
func (s *countingServer) TLSConfig() *tls.Config {
	return &tls.Config{RootCAs: s.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs}
}

var okHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	fmt.Fprint(w, "ok")
})

// fakeResolver answers from a table; a name with several answers gives the
// next one on each lookup and then keeps the last.
type fakeResolver struct {
	mu      sync.Mutex
	answers map[string][][]netip.Addr
	calls   map[string]int
}

func newResolver(answers map[string][]string) *fakeResolver {
	r := &fakeResolver{answers: map[string][][]netip.Addr{}, calls: map[string]int{}}
	for name, seq := range answers {
		for _, one := range seq {
			var addrs []netip.Addr
			for _, s := range strings.Split(one, ",") {
				addrs = append(addrs, netip.MustParseAddr(s))
			}
			r.answers[name] = append(r.answers[name], addrs)
		}
	}
	return r
}

func (r *fakeResolver) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	seq, ok := r.answers[host]
	if !ok {
		return nil, &net.DNSError{Err: "no such host", Name: host, Server: "10.0.0.2:53", IsNotFound: true}
	}
	i := min(r.calls[host], len(seq)-1)
	r.calls[host]++
	return seq[i], nil
}

func (r *fakeResolver) Calls(host string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls[host]
}

var _ ssrf.Resolver = (*fakeResolver)(nil)

// connector stands in for the network in tests of resolved names: whatever
// checked address a dial ends at, it connects to one loopback server, and it
// records the addresses. A refused call must never reach it.
type connector struct {
	to      string
	mu      sync.Mutex
	targets []string
}

func (c *connector) connect(ctx context.Context, network, address string, checked bool) (net.Conn, error) {
	c.mu.Lock()
	c.targets = append(c.targets, address)
	c.mu.Unlock()
	var d net.Dialer
	return d.DialContext(ctx, "tcp", c.to)
}

func (c *connector) Targets() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.targets...)
}

func mustAllow(tb testing.TB, s string) ssrf.Allow {
	tb.Helper()
	a, err := ssrf.ParseAllowHosts(s)
	if err != nil {
		tb.Fatalf("ParseAllowHosts(%q): %v", s, err)
	}
	return a
}
