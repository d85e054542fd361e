package sealed

import (
	"container/list"
	"context"
	"crypto/cipher"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
)

// KMSAPI is the part of the KMS client a KMS sealer uses, with the SDK's own
// signatures, so that *kms.Client can be passed as is.
type KMSAPI interface {
	GenerateDataKey(ctx context.Context, params *kms.GenerateDataKeyInput, optFns ...func(*kms.Options)) (*kms.GenerateDataKeyOutput, error)
	Decrypt(ctx context.Context, params *kms.DecryptInput, optFns ...func(*kms.Options)) (*kms.DecryptOutput, error)
}

var _ KMSAPI = (*kms.Client)(nil)

const (
	// DefaultCacheTTL is how long a decrypted data key stays in memory. A hot
	// tool opens its secret on every call; the cache makes that one KMS
	// Decrypt per container every five minutes instead of one per call
	// (latency, cost and KMS's request quota). The price: a data key lives in
	// the process's memory for that long after its last use, and a key
	// disabled in KMS, or a grant revoked, keeps opening cached boxes until
	// their entries expire.
	DefaultCacheTTL = 5 * time.Minute
	// DefaultCacheSize bounds the cached data keys (one per box opened
	// recently, about a hundred bytes each); the least recently used goes.
	DefaultCacheSize = 1000

	// tenantContextKey is the encryption context's key naming the tenant.
	tenantContextKey = "tenant_id"
)

// KMS seals with envelope encryption: a KMS data key per box. Seal calls
// GenerateDataKey every time (secrets are sealed when a tool is written, which
// is rare), so no data key ever seals two secrets. Open caches decrypted data
// keys per tenant and box (DefaultCacheTTL, DefaultCacheSize).
type KMS struct {
	client KMSAPI
	keyID  string
	ttl    time.Duration
	size   int
	now    func() time.Time

	mu      sync.Mutex
	lru     *list.List // of *cached, most recently used first
	entries map[string]*list.Element
}

var _ Sealer = (*KMS)(nil)

type cached struct {
	key     string // tenant id, NUL, encrypted data key
	aead    cipher.AEAD
	expires time.Time
}

// KMSOption configures a KMS sealer.
type KMSOption func(*KMS)

// WithCache sets how long decrypted data keys are kept and how many at most.
// A zero ttl or size turns the cache off: every Open calls KMS.
func WithCache(ttl time.Duration, size int) KMSOption {
	return func(k *KMS) { k.ttl, k.size = ttl, size }
}

// NewKMS returns a sealer using keyID (key ARN, key id, alias name or alias
// ARN) through client. Open passes keyID to Decrypt too, so a box sealed under
// another key is refused (IncorrectKeyException) rather than decrypted with
// whichever key its data key ciphertext names.
func NewKMS(client KMSAPI, keyID string, opts ...KMSOption) *KMS {
	k := &KMS{client: client, keyID: keyID, ttl: DefaultCacheTTL, size: DefaultCacheSize, now: time.Now,
		lru: list.New(), entries: map[string]*list.Element{}}
	for _, o := range opts {
		o(k)
	}
	return k
}

// NewKMSFromConfig returns a sealer using keyID with a KMS client built from
// cfg (region, credentials, and the SDK's endpoint settings).
func NewKMSFromConfig(cfg aws.Config, keyID string, opts ...KMSOption) *KMS {
	return NewKMS(kms.NewFromConfig(cfg), keyID, opts...)
}

func encryptionContext(tenantID string) map[string]string {
	return map[string]string{tenantContextKey: tenantID}
}

// Seal implements Sealer.
func (k *KMS) Seal(ctx context.Context, tenantID string, plaintext []byte) ([]byte, error) {
	if err := checkTenant(tenantID); err != nil {
		return nil, err
	}
	out, err := k.client.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{
		KeyId:             aws.String(k.keyID),
		KeySpec:           types.DataKeySpecAes256,
		EncryptionContext: encryptionContext(tenantID),
	})
	if err != nil {
		return nil, fmt.Errorf("sealed: KMS GenerateDataKey: %w", err)
	}
	if len(out.CiphertextBlob) == 0 || len(out.CiphertextBlob) > 0xffff {
		return nil, fmt.Errorf("sealed: KMS GenerateDataKey returned a data key ciphertext of %d bytes", len(out.CiphertextBlob))
	}
	aead, err := newGCM(out.Plaintext)
	clear(out.Plaintext)
	if err != nil {
		return nil, fmt.Errorf("sealed: KMS data key: %w", err)
	}
	header := make([]byte, 0, 4+len(out.CiphertextBlob))
	header = append(header, version, schemeKMS)
	header = binary.BigEndian.AppendUint16(header, uint16(len(out.CiphertextBlob)))
	header = append(header, out.CiphertextBlob...)
	box, err := seal(aead, header, tenantID, plaintext)
	if err != nil {
		return nil, err
	}
	// The process that seals often opens soon after (a tool written, then
	// run): it may as well not ask KMS for the key it already has.
	k.put(cacheKey(tenantID, out.CiphertextBlob), aead)
	return box, nil
}

// Open implements Sealer.
func (k *KMS) Open(ctx context.Context, tenantID string, box []byte) ([]byte, error) {
	if err := checkTenant(tenantID); err != nil {
		return nil, err
	}
	if err := checkHeader(box, schemeKMS); err != nil {
		return nil, err
	}
	if len(box) < 4 {
		return nil, fmt.Errorf("%w: truncated", ErrInvalidBox)
	}
	n := int(binary.BigEndian.Uint16(box[2:4]))
	if n == 0 || len(box) < 4+n {
		return nil, fmt.Errorf("%w: truncated", ErrInvalidBox)
	}
	header, edk := box[:4+n], box[4:4+n]
	// The tenant is part of the cache key: a data key KMS released for one
	// tenant's context is never used to open another tenant's box unasked.
	ck := cacheKey(tenantID, edk)
	aead := k.get(ck)
	if aead == nil {
		out, err := k.client.Decrypt(ctx, &kms.DecryptInput{
			CiphertextBlob:    edk,
			EncryptionContext: encryptionContext(tenantID),
			KeyId:             aws.String(k.keyID),
		})
		if err != nil {
			var invalid *types.InvalidCiphertextException
			var incorrect *types.IncorrectKeyException
			if errors.As(err, &invalid) || errors.As(err, &incorrect) {
				return nil, fmt.Errorf("%w: KMS refused its data key (another tenant, another key, or altered): %w", ErrInvalidBox, err)
			}
			return nil, fmt.Errorf("sealed: KMS Decrypt: %w", err)
		}
		aead, err = newGCM(out.Plaintext)
		clear(out.Plaintext)
		if err != nil {
			return nil, fmt.Errorf("sealed: KMS data key: %w", err)
		}
		k.put(ck, aead)
	}
	return open(aead, header, box[len(header):], tenantID)
}

func cacheKey(tenantID string, edk []byte) string {
	return tenantID + "\x00" + string(edk)
}

func (k *KMS) get(key string) cipher.AEAD {
	if k.ttl <= 0 || k.size <= 0 {
		return nil
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	el, ok := k.entries[key]
	if !ok {
		return nil
	}
	c := el.Value.(*cached)
	if !k.now().Before(c.expires) {
		k.lru.Remove(el)
		delete(k.entries, key)
		return nil
	}
	k.lru.MoveToFront(el)
	return c.aead
}

// put caches a data key for ttl from now; its expiry is not extended by use,
// so a key revoked in KMS stops working here within ttl.
func (k *KMS) put(key string, aead cipher.AEAD) {
	if k.ttl <= 0 || k.size <= 0 {
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if el, ok := k.entries[key]; ok {
		k.lru.MoveToFront(el)
		return
	}
	k.entries[key] = k.lru.PushFront(&cached{key: key, aead: aead, expires: k.now().Add(k.ttl)})
	for k.lru.Len() > k.size {
		last := k.lru.Back()
		k.lru.Remove(last)
		delete(k.entries, last.Value.(*cached).key)
	}
}

// cachedKeys returns how many data keys are cached.
func (k *KMS) cachedKeys() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.lru.Len()
}
