package ssrf_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/bulkhead-dev/bulkhead/pkg/ssrf"
)

func TestCheckURLRefuses(t *testing.T) {
	g := ssrf.New(mustAllow(t, "127.0.0.1:8787"))
	tests := []struct {
		url, want string // want: a word the message must contain
	}{
		{"https://2130706433/", "canonical"},
		{"https://0177.0.0.1/", "canonical"},
		{"https://0x7f.0.0.1/", "canonical"},
		{"https://0x7f000001/", "canonical"},
		{"https://017700000001/", "canonical"},
		{"https://127.1/", "canonical"},
		{"https://127.0.0.1./", "canonical"},
		{"https://10.1/", "canonical"},
		{"https://1.2.3.4.5/", "canonical"},
		{"https://[::ffff:127.0.0.1]/", "range"},
		{"https://[::ffff:7f00:1]/", "range"},
		{"https://[64:ff9b::7f00:1]/", "range"},
		{"https://[64:ff9b:1::5db8:d70e]/", "range"},
		{"https://[2002:7f00:1::]/", "range"},
		{"https://[2002:a9fe:a9fe::1]/", "range"},
		{"https://[2001::1]/", "range"},
		{"https://[::127.0.0.1]/", "range"},
		{"https://169.254.169.254/", "range"},
		{"https://[fd00:ec2::254]/", "range"},
		{"https://100.64.0.1/", "range"},
		{"https://0.0.0.0/", "range"},
		{"https://10.0.0.1/", "range"},
		{"https://172.16.0.1/", "range"},
		{"https://172.31.255.255/", "range"},
		{"https://192.168.1.1/", "range"},
		{"https://127.0.0.1/", "range"},
		{"https://[::1]/", "range"},
		{"https://[::]/", "range"},
		{"https://[fe80::1]/", "range"},
		{"https://[fe80::1%25eth0]/", "scoped"},
		{"https://224.0.0.1/", "range"},
		{"https://255.255.255.255/", "range"},
		{"https://198.18.0.1/", "range"},
		{"https://203.0.113.7/", "range"},
		{"https://[2001:db8::1]/", "range"},
		{"https://[ff02::1]/", "range"},
		{"https://localhost/", "loopback"},
		{"https://api.LOCALHOST./", "loopback"},
		{"ftp://example.com/", "scheme"},
		{"file:///etc/passwd", "scheme"},
		{"gopher://example.com/", "scheme"},
		{"//example.com/", "scheme"},
		{"http://example.com/", "scheme"},
		{"http://127.0.0.1:8788/", "scheme"},
		{"http://localhost:8787/", "scheme"},
		{"https://127.0.0.1:8788/", "port"},
		{"https://example.com:8443/", "port"},
		{"https://example.com:0443/", "port"},
		{"https://example.com:22/", "port"},
		{"https://user:pass@example.com/", "credentials"},
		{"https://user@example.com/", "credentials"},
		{"https:example.com", "absolute"},
		{"https:///path", "absolute"},
		{"https://exa_mple..com/", "DNS name"},
		{"https://münchen.example/", "DNS name"},
		{"https://exa mple.com/", "not valid"},
		{"", "scheme"},
	}
	for _, tt := range tests {
		u, err := g.CheckURL(tt.url)
		if err == nil {
			t.Errorf("CheckURL(%q) = %v, want refused", tt.url, u)
			continue
		}
		if !errors.Is(err, ssrf.ErrRefused) {
			t.Errorf("CheckURL(%q) error %v does not match ErrRefused", tt.url, err)
		}
		if !strings.Contains(err.Error(), tt.want) {
			t.Errorf("CheckURL(%q) error %q, want it to mention %q", tt.url, err, tt.want)
		}
	}
}

func TestCheckURLAccepts(t *testing.T) {
	g := ssrf.New(mustAllow(t, "127.0.0.1:8787,LocalHost:9000,[::1]:9001"))
	for _, raw := range []string{
		"https://example.com",
		"https://example.com:443/path",
		"https://EXAMPLE.com/x?y=1#z",
		"https://example.com:80/",
		"https://api.example.com./v1",
		"https://93.184.215.14/",
		"https://[2606:2800:21f:cb07:6820:80da:af6b:8b2c]/",
		"https://[64:ff9b::5db8:d70e]/",
		"https://[2002:5db8:d70e::1]/",
		"https://deadbeef.example/",
		"http://127.0.0.1:8787/tool",
		"https://127.0.0.1:8787/tool",
		"http://localhost:9000/",
		"http://[::1]:9001/",
	} {
		u, err := g.CheckURL(raw)
		if err != nil {
			t.Errorf("CheckURL(%q): %v, want accepted", raw, err)
			continue
		}
		if u.String() != raw {
			t.Errorf("CheckURL(%q) = %q, want the URL as given", raw, u)
		}
	}
}

func TestAddrAllowed(t *testing.T) {
	tests := []struct {
		addr string
		want bool
	}{
		{"93.184.215.14", true},
		{"1.1.1.1", true},
		{"100.63.255.255", true},
		{"100.128.0.0", true},
		{"172.32.0.1", true},
		{"2606:4700::1111", true},
		{"::ffff:93.184.215.14", true},
		{"64:ff9b::5db8:d70e", true},
		{"127.0.0.1", false},
		{"127.255.255.254", false},
		{"10.255.0.1", false},
		{"100.127.255.255", false},
		{"169.254.169.254", false},
		{"192.0.0.9", false},
		{"192.88.99.1", false},
		{"198.19.255.255", false},
		{"198.51.100.1", false},
		{"240.0.0.1", false},
		{"::ffff:10.0.0.1", false},
		{"::ffff:169.254.169.254", false},
		{"64:ff9b::a9fe:a9fe", false},
		{"64:ff9b:1::1", false},
		{"2002:c0a8:101::", false},
		{"2001:0:4136:e378:8000:63bf:3fff:fdd2", false},
		{"fd00:ec2::254", false},
		{"fc00::1", false},
		{"fec0::1", false},
		{"100::1", false},
		{"3fff::1", false},
		{"fe80::1%eth0", false},
		{"2606:4700::1111%eth0", false},
	}
	for _, tt := range tests {
		if got := ssrf.AddrAllowed(netip.MustParseAddr(tt.addr)); got != tt.want {
			t.Errorf("AddrAllowed(%s) = %v, want %v", tt.addr, got, tt.want)
		}
	}
	if ssrf.AddrAllowed(netip.Addr{}) {
		t.Error("AddrAllowed(zero Addr) = true, want false")
	}
}

func TestParseAllowHosts(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"", nil},
		{" , ", nil},
		{"127.0.0.1:8787", []string{"127.0.0.1:8787"}},
		{"LocalHost:8787, 127.0.0.1:9000,", []string{"127.0.0.1:9000", "localhost:8787"}},
		{"[0:0::1]:9000", []string{"[::1]:9000"}},
	}
	for _, tt := range tests {
		a, err := ssrf.ParseAllowHosts(tt.in)
		if err != nil {
			t.Errorf("ParseAllowHosts(%q): %v", tt.in, err)
			continue
		}
		var got []string
		for k, v := range a {
			if v {
				got = append(got, k)
			}
		}
		slices.Sort(got)
		if !slices.Equal(got, tt.want) {
			t.Errorf("ParseAllowHosts(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
	for _, bad := range []string{
		"localhost", "127.0.0.1", "127.1:80", "2130706433:80", "host:0", "host:65536", "host:http",
		"http://localhost:80", "[fe80::1%eth0]:80", ":80", "a b:80",
	} {
		if a, err := ssrf.ParseAllowHosts(bad); err == nil {
			t.Errorf("ParseAllowHosts(%q) = %v, want an error", bad, a)
		}
	}
}

// Names are checked at dial time: every refused answer is refused before any
// connection is made. The connector sends every connection the guard does
// make to one loopback server, so its count is the number of connections the
// guard would have opened.
func TestResolvedAddressesRefusedBeforeConnecting(t *testing.T) {
	srv := newCounting(t, okHandler, false)
	conn := &connector{to: srv.HostPort()}
	res := newResolver(map[string][]string{
		"private.test":   {"10.0.0.1"},
		"mapped.test":    {"::ffff:10.0.0.1"},
		"loopback.test":  {"127.0.0.1"},
		"metadata.test":  {"169.254.169.254"},
		"aws6.test":      {"fd00:ec2::254"},
		"nat64.test":     {"64:ff9b::a9fe:a9fe"},
		"sixtofour.test": {"2002:7f00:1::"},
		"mixed.test":     {"93.184.215.14,10.0.0.1"},
		"mixed6.test":    {"2606:4700::1111,::1"},
		"tool.test":      {"127.0.0.1"},
	})
	g := &ssrf.Guard{Allow: mustAllow(t, "tool.test:80"), Resolver: res}
	ssrf.SetConnect(g, conn.connect)
	client := g.Client(10 * time.Second)

	for _, name := range []string{
		"private.test", "mapped.test", "loopback.test", "metadata.test", "aws6.test",
		"nat64.test", "sixtofour.test", "mixed.test", "mixed6.test",
	} {
		resp, err := client.Get("https://" + name + "/")
		if err == nil {
			resp.Body.Close()
			t.Errorf("GET https://%s/ = %s, want refused", name, resp.Status)
			continue
		}
		if !errors.Is(err, ssrf.ErrRefused) {
			t.Errorf("GET https://%s/: %v, want ErrRefused", name, err)
		}
		if res.Calls(name) != 1 {
			t.Errorf("%s looked up %d times, want 1", name, res.Calls(name))
		}
		for _, leak := range []string{"10.0.0.1", "127.0.0.1", "169.254", "fd00", "::1"} {
			if strings.Contains(err.Error(), leak) {
				t.Errorf("GET https://%s/: error %q names the resolved address", name, err)
			}
		}
	}
	// The allow-list names a host, not an address: tool.test:80 may reach
	// loopback, another name for the same address on the same port may not.
	if _, err := g.DialContext(context.Background(), "tcp", "loopback.test:80"); !errors.Is(err, ssrf.ErrRefused) {
		t.Errorf("dial loopback.test:80: %v, want ErrRefused", err)
	}
	if got := srv.Accepted(); got != 0 {
		t.Fatalf("server accepted %d connections from refused calls, want 0", got)
	}
	if got := conn.Targets(); len(got) != 0 {
		t.Fatalf("guard connected to %v for refused calls, want nothing", got)
	}

	// Positive control: the allow-listed pair reaches the same server.
	resp, err := client.Get("http://tool.test/")
	if err != nil {
		t.Fatalf("GET http://tool.test/ (allow-listed): %v", err)
	}
	body, _, _ := ssrf.ReadLimited(resp.Body, 100)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != "ok" {
		t.Fatalf("GET http://tool.test/ = %s %q, want 200 ok", resp.Status, body)
	}
	if got := srv.Accepted(); got != 1 {
		t.Errorf("server accepted %d connections, want 1 (the allow-listed call)", got)
	}
	if got, want := conn.Targets(), []string{"127.0.0.1:80"}; !slices.Equal(got, want) {
		t.Errorf("guard connected to %v, want %v", got, want)
	}
}

// Without a stand-in for the network: a name or an address pointing at a
// real loopback listener is refused, and only the exact allow-listed pair
// reaches it.
func TestLoopbackListenerReachedOnlyByAllowedPair(t *testing.T) {
	srv := newCounting(t, okHandler, false)
	res := newResolver(map[string][]string{"loopback.test": {"127.0.0.1"}})
	g := &ssrf.Guard{Allow: mustAllow(t, srv.HostPort()), Resolver: res}
	client := g.Client(10 * time.Second)
	port := srv.Port()

	for _, raw := range []string{
		fmt.Sprintf("http://loopback.test:%d/", port),
		fmt.Sprintf("https://loopback.test:%d/", port),
		fmt.Sprintf("http://localhost:%d/", port),
		fmt.Sprintf("http://[::ffff:127.0.0.1]:%d/", port),
		fmt.Sprintf("http://2130706433:%d/", port),
		fmt.Sprintf("http://127.1:%d/", port),
		fmt.Sprintf("http://0.0.0.0:%d/", port),
	} {
		resp, err := client.Get(raw)
		if err == nil {
			resp.Body.Close()
			t.Errorf("GET %s = %s, want refused", raw, resp.Status)
		} else if !errors.Is(err, ssrf.ErrRefused) {
			t.Errorf("GET %s: %v, want ErrRefused", raw, err)
		}
	}
	for _, addr := range []string{
		fmt.Sprintf("loopback.test:%d", port),
		fmt.Sprintf("localhost:%d", port),
		fmt.Sprintf("127.1:%d", port),
		"loopback.test:443",
		"127.0.0.1:443",
	} {
		if c, err := g.DialContext(context.Background(), "tcp", addr); !errors.Is(err, ssrf.ErrRefused) {
			if c != nil {
				c.Close()
			}
			t.Errorf("DialContext(%s): %v, want ErrRefused", addr, err)
		}
	}
	if got := srv.Accepted(); got != 0 {
		t.Fatalf("server accepted %d connections from refused calls, want 0", got)
	}

	resp, err := client.Get(srv.URL + "/")
	if err != nil {
		t.Fatalf("GET %s (allow-listed): %v", srv.URL, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET %s = %s, want 200", srv.URL, resp.Status)
	}
	if got := srv.Accepted(); got != 1 {
		t.Errorf("server accepted %d connections, want 1", got)
	}
}

func TestAllowListedHTTPS(t *testing.T) {
	srv := newCounting(t, okHandler, true)
	g := &ssrf.Guard{Allow: mustAllow(t, srv.HostPort()), TLSClientConfig: srv.TLSConfig()}
	resp, err := g.Client(10 * time.Second).Get(srv.URL + "/")
	if err != nil {
		t.Fatalf("GET %s: %v", srv.URL, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.TLS == nil {
		t.Errorf("GET %s = %s (TLS %v), want 200 over TLS", srv.URL, resp.Status, resp.TLS != nil)
	}
}

// The address checked is the address dialed: a name that answers with a
// public address and then, on the next lookup, with a private one reaches
// the public one once and is refused the second time.
func TestRebindingRefusedOnNextLookup(t *testing.T) {
	srv := newCounting(t, okHandler, true)
	conn := &connector{to: srv.HostPort()}
	res := newResolver(map[string][]string{"rebind.example.com": {"93.184.215.14", "127.0.0.1"}})
	g := &ssrf.Guard{Resolver: res, TLSClientConfig: srv.TLSConfig()}
	ssrf.SetConnect(g, conn.connect)
	client := g.Client(10 * time.Second)

	resp, err := client.Get("https://rebind.example.com/")
	if err != nil {
		t.Fatalf("first GET: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("first GET = %s, want 200", resp.Status)
	}
	// A pooled connection would be reused without a lookup; the point is the
	// next connection.
	client.CloseIdleConnections()

	resp, err = client.Get("https://rebind.example.com/")
	if err == nil {
		resp.Body.Close()
		t.Fatalf("second GET = %s, want refused", resp.Status)
	}
	if !errors.Is(err, ssrf.ErrRefused) {
		t.Errorf("second GET: %v, want ErrRefused", err)
	}
	if got, want := conn.Targets(), []string{"93.184.215.14:443"}; !slices.Equal(got, want) {
		t.Errorf("guard connected to %v, want %v", got, want)
	}
	if got := srv.Accepted(); got != 1 {
		t.Errorf("server accepted %d connections, want 1 (the first call)", got)
	}
	if got := res.Calls("rebind.example.com"); got != 2 {
		t.Errorf("%d lookups, want 2", got)
	}
}

func TestRedirectNotFollowed(t *testing.T) {
	target := newCounting(t, okHandler, false)
	redirector := newCounting(t, http.RedirectHandler(target.URL+"/", http.StatusFound), false)
	// Both are allow-listed: following the redirect would succeed.
	g := ssrf.New(mustAllow(t, redirector.HostPort()+","+target.HostPort()))
	client := g.Client(10 * time.Second)

	resp, err := client.Get(redirector.URL + "/")
	if err != nil {
		t.Fatalf("GET %s: %v", redirector.URL, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != target.URL+"/" {
		t.Errorf("GET %s = %s Location %q, want 302 to %s/", redirector.URL, resp.Status, resp.Header.Get("Location"), target.URL)
	}
	if got := target.Accepted(); got != 0 {
		t.Fatalf("redirect target accepted %d connections, want 0", got)
	}

	// Positive control: the target is reachable when asked directly.
	resp, err = client.Get(target.URL + "/")
	if err != nil {
		t.Fatalf("GET %s: %v", target.URL, err)
	}
	resp.Body.Close()
	if got := target.Accepted(); got != 1 {
		t.Errorf("target accepted %d connections, want 1", got)
	}
}

// Every test runs with the proxy variables pointing at envProxy (TestMain).
// The name is not a loopback literal, which net/http never proxies.
func TestProxyFromEnvironmentIgnored(t *testing.T) {
	srv := newCounting(t, okHandler, false)
	res := newResolver(map[string][]string{"tool.test": {"127.0.0.1"}})
	hostPort := fmt.Sprintf("tool.test:%d", srv.Port())
	g := &ssrf.Guard{Allow: mustAllow(t, hostPort), Resolver: res}

	req, err := http.NewRequest(http.MethodGet, "http://"+hostPort+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	// Control: the standard library does see the proxy for this request.
	proxy, err := http.ProxyFromEnvironment(req)
	if err != nil || proxy == nil || proxy.String() != envProxy.URL {
		t.Fatalf("ProxyFromEnvironment = %v, %v; want %s (the environment is not set up)", proxy, err, envProxy.URL)
	}

	before := envProxy.Accepted()
	resp, err := g.Client(10 * time.Second).Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", req.URL, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET %s = %s, want 200 from the tool itself", req.URL, resp.Status)
	}
	if got := envProxy.Accepted() - before; got != 0 {
		t.Errorf("proxy accepted %d connections, want 0", got)
	}
	if got := srv.Accepted(); got != 1 {
		t.Errorf("tool accepted %d connections, want 1", got)
	}
}

// The port rule holds at dial time too, for callers that dial without
// Client, and is applied before the name is looked up.
func TestPortRefusedAtDial(t *testing.T) {
	srv := newCounting(t, okHandler, false)
	conn := &connector{to: srv.HostPort()}
	res := newResolver(map[string][]string{"public.test": {"93.184.215.14"}})
	g := &ssrf.Guard{Resolver: res}
	ssrf.SetConnect(g, conn.connect)

	for _, addr := range []string{"public.test:8080", "public.test:22", "93.184.215.14:8080", "public.test:0", "public.test:x"} {
		c, err := g.DialContext(context.Background(), "tcp", addr)
		if c != nil {
			c.Close()
		}
		if !errors.Is(err, ssrf.ErrRefused) {
			t.Errorf("DialContext(%s): %v, want ErrRefused", addr, err)
		}
	}
	if _, err := g.DialContext(context.Background(), "udp", "public.test:443"); !errors.Is(err, ssrf.ErrRefused) {
		t.Errorf("DialContext(udp): %v, want ErrRefused", err)
	}
	if _, err := g.Client(10 * time.Second).Get("https://public.test:8080/"); !errors.Is(err, ssrf.ErrRefused) {
		t.Errorf("GET https://public.test:8080/: %v, want ErrRefused", err)
	}
	if got := res.Calls("public.test"); got != 0 {
		t.Errorf("public.test looked up %d times for refused ports, want 0", got)
	}
	if got := conn.Targets(); len(got) != 0 {
		t.Fatalf("guard connected to %v, want nothing", got)
	}

	// Positive control: port 443 on the same name is dialed, at the address
	// that was checked.
	c, err := g.DialContext(context.Background(), "tcp", "public.test:443")
	if err != nil {
		t.Fatalf("DialContext(public.test:443): %v", err)
	}
	c.Close()
	if got, want := conn.Targets(), []string{"93.184.215.14:443"}; !slices.Equal(got, want) {
		t.Errorf("guard connected to %v, want %v", got, want)
	}
}

func TestResolveErrorHidesServer(t *testing.T) {
	g := &ssrf.Guard{Resolver: newResolver(nil)}
	_, err := g.DialContext(context.Background(), "tcp", "missing.test:443")
	var dnsErr *net.DNSError
	if !errors.As(err, &dnsErr) || !dnsErr.IsNotFound {
		t.Fatalf("dial missing.test: %v, want a not-found DNSError", err)
	}
	if strings.Contains(err.Error(), "10.0.0.2") || !strings.Contains(err.Error(), "no such host") {
		t.Errorf("dial missing.test: %q, want no such host without the DNS server", err)
	}
}

// The dialer's Control function is the last check, on the address being
// connected to. With a real socket it refuses before the connection is made.
func TestControlCheck(t *testing.T) {
	tests := []struct {
		addr string
		ok   bool
	}{
		{"93.184.215.14:443", true},
		{"93.184.215.14:80", true},
		{"[2606:4700::1111]:443", true},
		{"93.184.215.14:8080", false},
		{"127.0.0.1:443", false},
		{"[::ffff:127.0.0.1]:443", false},
		{"[::1]:443", false},
		{"[fe80::1%eth0]:443", false},
		{"169.254.169.254:80", false},
		{"localhost:443", false},
	}
	for _, tt := range tests {
		err := ssrf.ControlCheck("tcp4", tt.addr, nil)
		if tt.ok && err != nil {
			t.Errorf("ControlCheck(%s): %v, want allowed", tt.addr, err)
		}
		if !tt.ok && !errors.Is(err, ssrf.ErrRefused) {
			t.Errorf("ControlCheck(%s): %v, want ErrRefused", tt.addr, err)
		}
	}

	srv := newCounting(t, okHandler, false)
	d := net.Dialer{Control: ssrf.ControlCheck}
	if c, err := d.Dial("tcp", srv.HostPort()); !errors.Is(err, ssrf.ErrRefused) {
		if c != nil {
			c.Close()
		}
		t.Errorf("dial %s with ControlCheck: %v, want ErrRefused", srv.HostPort(), err)
	}
	resp, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := srv.Accepted(); got != 1 {
		t.Errorf("server accepted %d connections, want 1 (the control request)", got)
	}
}

func TestRequestBodyClosedWhenRefused(t *testing.T) {
	g := ssrf.New(nil)
	body := &closeRecorder{Reader: strings.NewReader("{}")}
	req, err := http.NewRequest(http.MethodPost, "https://10.0.0.1/", body)
	if err != nil {
		t.Fatal(err)
	}
	_, err = g.Client(time.Second).Do(req)
	if !errors.Is(err, ssrf.ErrRefused) {
		t.Fatalf("POST https://10.0.0.1/: %v, want ErrRefused", err)
	}
	if !body.closed {
		t.Error("request body not closed after a refusal")
	}
	var uerr *url.Error
	if !errors.As(err, &uerr) {
		t.Errorf("error %T, want the client's *url.Error around the refusal", err)
	}
}

type closeRecorder struct {
	io.Reader
	closed bool
}

func (c *closeRecorder) Close() error { c.closed = true; return nil }

func TestReadLimited(t *testing.T) {
	tests := []struct {
		in       string
		n        int64
		want     string
		tooLarge bool
	}{
		{"hello", 5, "hello", false},
		{"hello!", 5, "hello", true},
		{"", 0, "", false},
		{"a", 0, "", true},
		{"abc", -1, "", true},
		{strings.Repeat("x", ssrf.MaxResponseBytes), ssrf.MaxResponseBytes, strings.Repeat("x", ssrf.MaxResponseBytes), false},
	}
	for _, tt := range tests {
		got, tooLarge, err := ssrf.ReadLimited(strings.NewReader(tt.in), tt.n)
		if err != nil || string(got) != tt.want || tooLarge != tt.tooLarge {
			t.Errorf("ReadLimited(%d bytes, %d) = %d bytes, %v, %v; want %d bytes, %v", len(tt.in), tt.n, len(got), tooLarge, err, len(tt.want), tt.tooLarge)
		}
	}
	boom := errors.New("boom")
	if _, _, err := ssrf.ReadLimited(iotest.ErrReader(boom), 10); !errors.Is(err, boom) {
		t.Errorf("ReadLimited(failing reader): %v, want %v", err, boom)
	}
}

// The client applies the URL rules to every request, not only at tool
// creation: plain http to a public name on port 80 would pass the dial
// checks, and must be refused anyway.
func TestClientChecksEveryRequest(t *testing.T) {
	srv := newCounting(t, okHandler, false)
	conn := &connector{to: srv.HostPort()}
	res := newResolver(map[string][]string{"public.test": {"93.184.215.14"}})
	g := &ssrf.Guard{Resolver: res}
	ssrf.SetConnect(g, conn.connect)
	client := g.Client(10 * time.Second)
	for _, raw := range []string{"http://public.test/", "https://user:pass@public.test/", "http://public.test:443/"} {
		resp, err := client.Get(raw)
		if err == nil {
			resp.Body.Close()
			t.Errorf("GET %s = %s, want refused", raw, resp.Status)
		} else if !errors.Is(err, ssrf.ErrRefused) {
			t.Errorf("GET %s: %v, want ErrRefused", raw, err)
		}
	}
	if got := conn.Targets(); len(got) != 0 {
		t.Fatalf("guard connected to %v, want nothing", got)
	}
	// Positive control: https on the same name connects (the server speaks
	// plain HTTP, so the handshake then fails, after the connection).
	if resp, err := client.Get("https://public.test/"); err == nil {
		resp.Body.Close()
	} else if errors.Is(err, ssrf.ErrRefused) {
		t.Fatalf("GET https://public.test/: %v, want it let through", err)
	}
	if got, want := conn.Targets(), []string{"93.184.215.14:443"}; !slices.Equal(got, want) {
		t.Errorf("guard connected to %v, want %v", got, want)
	}
}

func BenchmarkCheckURL(b *testing.B) {
	g := ssrf.New(nil)
	for _, raw := range []string{"https://api.example.com/v1/tool", "https://[2606:4700::1111]/x", "https://0x7f.0.0.1/"} {
		b.Run(raw, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				g.CheckURL(raw)
			}
		})
	}
}
