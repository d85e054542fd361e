package sealed

import (
	"context"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
)

// Local seals with AES-256-GCM under a key kept in a file.
type Local struct {
	aead cipher.AEAD
	// keyID is the first bytes of a hash of the key, stored in every box so
	// that a box sealed under another key file is told apart from an
	// altered one. It says nothing usable about the key itself.
	keyID [4]byte
}

var _ Sealer = (*Local)(nil)

// NewLocal returns a Local sealing with key (32 bytes).
func NewLocal(key []byte) (*Local, error) {
	aead, err := newGCM(key)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(append([]byte("bulkhead/sealed/key-id\x00"), key...))
	l := &Local{aead: aead}
	copy(l.keyID[:], sum[:])
	return l, nil
}

// LoadOrCreateKeyFile returns a Local under the key in path. An absent file is
// created with a random key, mode 0600, atomically: a process starting at the
// same time reads the same key, never a partial file. A file of the wrong size,
// not a regular file, or readable by group or others is refused.
func LoadOrCreateKeyFile(path string) (*Local, error) {
	key, err := readKeyFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		key, err = createKeyFile(path)
	}
	if err != nil {
		return nil, err
	}
	return NewLocal(key)
}

func readKeyFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !info.Mode().IsRegular() {
		return nil, fmt.Errorf("sealed: sealing key %s is not a regular file", path)
	}
	// Windows has no such permission bits to check.
	if perm := info.Mode().Perm(); perm&0o077 != 0 && runtime.GOOS != "windows" {
		return nil, fmt.Errorf("sealed: sealing key %s has mode %#o: it must be readable by its owner only (chmod 600)", path, perm)
	}
	if info.Size() != keySize {
		return nil, fmt.Errorf("sealed: sealing key %s has %d bytes, want %d: not a sealing key, or damaged", path, info.Size(), keySize)
	}
	key := make([]byte, keySize)
	if _, err := io.ReadFull(f, key); err != nil {
		return nil, fmt.Errorf("sealed: reading sealing key %s: %w", path, err)
	}
	return key, nil
}

// createKeyFile writes a new key to a temporary file in path's directory and
// links it into place, which fails if another process created path first: its
// key then wins and is read back.
func createKeyFile(path string) ([]byte, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("sealed: %w", err)
	}
	key := make([]byte, keySize)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("sealed: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".sealing-key-*") // mode 0600
	if err != nil {
		return nil, fmt.Errorf("sealed: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("sealed: %w", err)
	}
	if _, err := tmp.Write(key); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("sealed: writing sealing key: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("sealed: writing sealing key: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return nil, fmt.Errorf("sealed: writing sealing key: %w", err)
	}
	switch err := os.Link(tmp.Name(), path); {
	case err == nil:
	case errors.Is(err, fs.ErrExist):
		return readKeyFile(path)
	default:
		// A file system without hard links: rename, which replaces a file
		// created in the meantime (only a race between two first starts).
		if err := os.Rename(tmp.Name(), path); err != nil {
			return nil, fmt.Errorf("sealed: creating sealing key: %w", err)
		}
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync() // the new name survives a crash; best effort
		d.Close()
	}
	return key, nil
}

// Seal implements Sealer.
func (l *Local) Seal(_ context.Context, tenantID string, plaintext []byte) ([]byte, error) {
	if err := checkTenant(tenantID); err != nil {
		return nil, err
	}
	return seal(l.aead, l.header(), tenantID, plaintext)
}

// Open implements Sealer.
func (l *Local) Open(_ context.Context, tenantID string, box []byte) ([]byte, error) {
	if err := checkTenant(tenantID); err != nil {
		return nil, err
	}
	if err := checkHeader(box, schemeLocal); err != nil {
		return nil, err
	}
	header := l.header()
	if len(box) < len(header) {
		return nil, fmt.Errorf("%w: truncated", ErrInvalidBox)
	}
	if string(box[2:len(header)]) != string(l.keyID[:]) {
		return nil, fmt.Errorf("%w: sealed under another key file", ErrInvalidBox)
	}
	return open(l.aead, header, box[len(header):], tenantID)
}

func (l *Local) header() []byte {
	return append([]byte{version, schemeLocal}, l.keyID[:]...)
}
