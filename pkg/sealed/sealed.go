package sealed

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// Sealer seals secrets for one tenant and opens them again. Implementations
// are safe for concurrent use.
type Sealer interface {
	// Seal encrypts plaintext for tenantID and returns the box to store.
	Seal(ctx context.Context, tenantID string, plaintext []byte) ([]byte, error)
	// Open returns the plaintext of a box sealed for tenantID. A box sealed
	// for another tenant, with another key or altered in any way fails with
	// an error wrapping ErrInvalidBox.
	Open(ctx context.Context, tenantID string, box []byte) ([]byte, error)
}

// ErrInvalidBox is wrapped by every error of Open caused by the box itself:
// malformed, altered, sealed for another tenant or with another key, or by
// the other scheme.
var ErrInvalidBox = errors.New("sealed: invalid box")

// EnvKeyID names the KMS key (key ARN, key id, alias name or alias ARN) the
// Lambda functions seal with.
const EnvKeyID = "BULKHEAD_SEALING_KEY_ID"

// KeyFileName is the local key's file in the data directory.
const KeyFileName = "sealing.key"

const (
	version     = 0x01
	schemeLocal = 0x01
	schemeKMS   = 0x02
	nonceSize   = 12
	keySize     = 32
	// aadLabel starts the additional data of every box: a box cannot be
	// passed off as another format's GCM ciphertext under the same key.
	aadLabel = "bulkhead/sealed/v1\x00"
)

// FromEnv returns the Sealer a process uses: KMS with the key getenv(EnvKeyID)
// names when set (cfg's region and credentials), otherwise the key file in
// dataDir, created if absent. Without either it fails: secrets are never
// stored unsealed.
func FromEnv(getenv func(string) string, cfg aws.Config, dataDir string) (Sealer, error) {
	if keyID := getenv(EnvKeyID); keyID != "" {
		return NewKMSFromConfig(cfg, keyID), nil
	}
	if dataDir == "" {
		return nil, fmt.Errorf("sealed: no sealing key: set %s to a KMS key, or give a data directory for %s", EnvKeyID, KeyFileName)
	}
	return LoadOrCreateKeyFile(filepath.Join(dataDir, KeyFileName))
}

// newGCM returns AES-256-GCM under key.
func newGCM(key []byte) (cipher.AEAD, error) {
	if len(key) != keySize {
		return nil, fmt.Errorf("sealed: key of %d bytes, want %d", len(key), keySize)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// additionalData binds a box's ciphertext to its header and tenant.
func additionalData(header []byte, tenantID string) []byte {
	aad := make([]byte, 0, len(aadLabel)+len(header)+len(tenantID))
	aad = append(aad, aadLabel...)
	aad = append(aad, header...)
	return append(aad, tenantID...)
}

// seal appends nonce | ciphertext to header, authenticating header and tenant.
func seal(aead cipher.AEAD, header []byte, tenantID string, plaintext []byte) ([]byte, error) {
	nonce := make([]byte, nonceSize)
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("sealed: nonce: %w", err)
	}
	box := make([]byte, 0, len(header)+nonceSize+len(plaintext)+aead.Overhead())
	box = append(box, header...)
	box = append(box, nonce...)
	return aead.Seal(box, nonce, plaintext, additionalData(header, tenantID)), nil
}

// open opens rest (nonce | ciphertext) of a box whose header is header.
func open(aead cipher.AEAD, header, rest []byte, tenantID string) ([]byte, error) {
	if len(rest) < nonceSize+aead.Overhead() {
		return nil, fmt.Errorf("%w: truncated", ErrInvalidBox)
	}
	plaintext, err := aead.Open(nil, rest[:nonceSize], rest[nonceSize:], additionalData(header, tenantID))
	if err != nil {
		return nil, fmt.Errorf("%w: authentication failed (altered, or sealed for another tenant)", ErrInvalidBox)
	}
	return plaintext, nil
}

// checkHeader checks a box's version and scheme.
func checkHeader(box []byte, scheme byte) error {
	if len(box) < 2 {
		return fmt.Errorf("%w: truncated", ErrInvalidBox)
	}
	if box[0] != version {
		return fmt.Errorf("%w: unknown version %d", ErrInvalidBox, box[0])
	}
	if box[1] != scheme {
		return fmt.Errorf("%w: sealed with scheme %s, this sealer opens %s", ErrInvalidBox, schemeName(box[1]), schemeName(scheme))
	}
	return nil
}

func schemeName(s byte) string {
	switch s {
	case schemeLocal:
		return "local"
	case schemeKMS:
		return "kms"
	}
	return fmt.Sprintf("unknown (%d)", s)
}

func checkTenant(tenantID string) error {
	if tenantID == "" {
		return errors.New("sealed: empty tenant id")
	}
	return nil
}
