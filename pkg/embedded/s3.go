package embedded

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3bolt"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	bolt "go.etcd.io/bbolt"
)

// boltLockTimeout is how long bolt waits for its own lock on the file before
// giving up, rather than for ever; our lock file normally refuses a second process
// first.
const boltLockTimeout = 2 * time.Second

// S3Options configures StartS3.
type S3Options struct {
	// Addr is the loopback address to listen on; "" means 127.0.0.1 on a free port.
	// Addresses that are not loopback are refused.
	Addr string
	// Path is the bolt database file that holds the buckets and objects; "" keeps
	// them in memory only. Its directory is created if needed.
	Path string
	// Logger receives gofakes3's messages (its per-request messages at debug level)
	// and server errors; nil discards them.
	Logger *slog.Logger
}

// S3 is an embedded S3-compatible server (gofakes3) listening on loopback, backed
// by a bolt file or by memory. Clients must use path-style addressing. Create it
// with StartS3 and stop it with Close.
type S3 struct {
	ln  net.Listener
	srv *httpServer
	db  *bolt.DB // nil when memory only

	unlock func() error // releases the bolt file's lock; nil when memory only

	closeOnce sync.Once
	closeErr  error
}

// StartS3 opens the bolt file at opts.Path (or memory) and starts serving the S3
// REST protocol on a loopback address. Every write is committed to the bolt file
// (and flushed to disk) before it is acknowledged, so the data survives a crash;
// only multipart uploads still in progress live in memory (gofakes3 keeps their
// parts there), so a restart abandons them. It fails if ctx is already done.
func StartS3(ctx context.Context, opts S3Options) (*S3, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("start embedded s3: %w", err)
	}
	s := &S3{}
	var backend gofakes3.Backend
	if opts.Path == "" {
		backend = s3mem.New()
	} else {
		if err := os.MkdirAll(dirOf(opts.Path), 0o700); err != nil {
			return nil, fmt.Errorf("create directory for s3 store %s: %w", opts.Path, err)
		}
		// Our own lock fails at once with a clear message; bolt's own lock (which
		// it takes too) would only time out.
		unlock, err := lockFile(opts.Path + ".lock")
		if err != nil {
			return nil, fmt.Errorf("lock s3 store %s: %w", opts.Path, err)
		}
		s.unlock = unlock
		db, err := bolt.Open(opts.Path, 0o600, &bolt.Options{Timeout: boltLockTimeout})
		if err != nil {
			s.release()
			return nil, fmt.Errorf("open s3 store %s: %w", opts.Path, err)
		}
		s.db = db
		backend = s3bolt.New(db)
	}

	fakeOpts := []gofakes3.Option{gofakes3.WithLogger(gofakes3.DiscardLog())}
	if opts.Logger != nil {
		fakeOpts = []gofakes3.Option{gofakes3.WithLogger(slogAdapter{opts.Logger})}
	}
	handler := gofakes3.New(backend, fakeOpts...).Server()

	ln, err := listenLoopback(opts.Addr)
	if err != nil {
		_ = s.closeDB()
		return nil, fmt.Errorf("start embedded s3: %w", err)
	}
	s.ln = ln
	s.srv = newHTTPServer(handler, opts.Logger)
	logger := opts.Logger
	if logger == nil {
		logger = discardLogger()
	}
	go s.srv.serve(ln, logger, "s3")
	return s, nil
}

// URL returns the server's base URL, such as "http://127.0.0.1:41235", for the
// SDK's BaseEndpoint.
func (s *S3) URL() string {
	return baseURL(s.ln)
}

// Close stops accepting connections, waits for in-flight requests until ctx is
// done, and closes the bolt file. Close may be called more than once; later calls
// return the first call's result.
func (s *S3) Close(ctx context.Context) error {
	s.closeOnce.Do(func() {
		s.closeErr = errors.Join(s.srv.shutdown(ctx), s.closeDB())
		if s.closeErr != nil {
			s.closeErr = fmt.Errorf("close embedded s3: %w", s.closeErr)
		}
	})
	return s.closeErr
}

// closeDB closes the bolt file, if any, and releases its lock. bolt waits for open
// transactions, so a request still running after a forced shutdown finishes its
// write first.
func (s *S3) closeDB() error {
	if s.db == nil {
		return nil
	}
	err := s.db.Close()
	s.release()
	if err != nil {
		return fmt.Errorf("close s3 store %s: %w", s.db.Path(), err)
	}
	return nil
}

// release unlocks the bolt file's lock, if this server took one.
func (s *S3) release() {
	if s.unlock != nil {
		_ = s.unlock()
		s.unlock = nil
	}
}

// slogAdapter sends gofakes3's messages to slog. gofakes3 logs every request at
// its info level, which is debug-level noise for us.
type slogAdapter struct{ l *slog.Logger }

func (a slogAdapter) Print(level gofakes3.LogLevel, v ...any) {
	msg := fmt.Sprint(v...)
	switch level {
	case gofakes3.LogErr:
		a.l.Error(msg, "component", "gofakes3")
	case gofakes3.LogWarn:
		a.l.Warn(msg, "component", "gofakes3")
	default:
		a.l.Debug(msg, "component", "gofakes3")
	}
}
