package embedded

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"
)

// defaultAddr binds an ephemeral port on the IPv4 loopback, so that tests can run
// many servers side by side and nothing is reachable from outside the machine.
const defaultAddr = "127.0.0.1:0"

// listenLoopback listens on addr, refusing any address that is not a loopback one:
// the embedded servers accept any credentials, so they must never be reachable from
// the network.
func listenLoopback(addr string) (net.Listener, error) {
	if addr == "" {
		addr = defaultAddr
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("listen address %q: %w", addr, err)
	}
	if host != "localhost" {
		ip := net.ParseIP(host)
		if ip == nil || !ip.IsLoopback() {
			return nil, fmt.Errorf("listen address %q: not a loopback address (use 127.0.0.1, [::1] or localhost)", addr)
		}
	}
	ln, err := net.Listen("tcp", addr)
	if errors.Is(err, syscall.EADDRINUSE) {
		return nil, fmt.Errorf("listen on %s: the port is in use by another process: %w", addr, err)
	}
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	// "localhost" may resolve to a non-loopback address on a misconfigured
	// machine; check what was actually bound.
	if tcp, ok := ln.Addr().(*net.TCPAddr); !ok || !tcp.IP.IsLoopback() {
		_ = ln.Close()
		return nil, fmt.Errorf("listen on %s: bound %s, which is not a loopback address", addr, ln.Addr())
	}
	return ln, nil
}

// httpServer is an http.Server whose Close does not wait for connections that
// never sent a request. Go's HTTP client may open a spare connection for a burst
// of requests (its dial race) and then keep it unused; http.Server.Shutdown treats
// such a connection as busy for five seconds before closing it, which would make
// every Close after a burst take five seconds.
type httpServer struct {
	srv *http.Server

	mu      sync.Mutex
	fresh   map[net.Conn]struct{} // connections that have not started a request yet
	closing bool
}

// newHTTPServer returns the server that serves h. It sets no write timeout because
// S3 objects may be large and slow to stream; the header timeout only protects
// against connections that never send a request.
func newHTTPServer(h http.Handler, logger *slog.Logger) *httpServer {
	var errLog *log.Logger
	if logger != nil {
		errLog = slog.NewLogLogger(logger.Handler(), slog.LevelWarn)
	} else {
		errLog = log.New(io.Discard, "", 0)
	}
	s := &httpServer{fresh: map[net.Conn]struct{}{}}
	s.srv = &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          errLog,
		ConnState:         s.connState,
	}
	return s
}

// connState tracks the connections that have not started a request.
func (s *httpServer) connState(c net.Conn, state http.ConnState) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if state != http.StateNew {
		delete(s.fresh, c)
		return
	}
	if s.closing {
		_ = c.Close()
		return
	}
	s.fresh[c] = struct{}{}
}

// serve runs the server on ln until it is shut down, logging (rather than losing)
// an unexpected stop.
func (s *httpServer) serve(ln net.Listener, logger *slog.Logger, name string) {
	if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		logger.Error("embedded server stopped", "server", name, "err", err)
	}
}

// shutdown stops the server gracefully: it stops accepting, closes connections
// that are idle or have not started a request (none of which has a request being
// served), and waits for in-flight requests until ctx is done, after which it
// closes the remaining connections.
func (s *httpServer) shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	for c := range s.fresh {
		_ = c.Close()
	}
	clear(s.fresh)
	s.mu.Unlock()

	if err := s.srv.Shutdown(ctx); err != nil {
		_ = s.srv.Close()
		return fmt.Errorf("shut down http server: %w", err)
	}
	return nil
}

// discardLogger is used when the caller gives no logger.
func discardLogger() *slog.Logger {
	return slog.New(slog.DiscardHandler)
}

// baseURL is the http URL of a listener's address.
func baseURL(ln net.Listener) string {
	return "http://" + ln.Addr().String()
}
