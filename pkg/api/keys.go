package api

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"strings"
	"time"

	"github.com/bulkhead-dev/bulkhead/pkg/bulkhead"
)

const (
	keyPrefix      = "bk_live_"
	keySecretBytes = 32
	// keySecretChars is the length of the secret's base64url text (43).
	keySecretChars = (keySecretBytes*8 + 5) / 6
	// keyDisplaySecretChars is how much of the secret the displayed prefix
	// shows: everything before the secret, then this many characters of it.
	keyDisplaySecretChars = 4
)

// newAPIKey makes a key: the secret (shown once) and the record to store,
// which holds only the secret's SHA-256 (the secret has 256 bits of entropy,
// so a plain hash cannot be brute-forced and needs no pepper). The key names
// its tenant, bk_live_<tenant id>_<secret>, so that the authorizer reads the
// key and the tenant in one request; the tenant id in it is only a hint,
// checked against the stored key. A tenant id that is not one NewID makes
// gets a key of the earlier form, bk_live_<secret>.
func newAPIKey(tenantID, name string, now time.Time) (secret string, k bulkhead.APIKey) {
	var b [keySecretBytes]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("crypto/rand: " + err.Error())
	}
	secret = keyPrefix
	if bulkhead.ValidID("tn", tenantID) {
		secret += tenantID + "_"
	}
	secret += base64.RawURLEncoding.EncodeToString(b[:])
	return secret, bulkhead.APIKey{
		ID: bulkhead.NewID("key"), TenantID: tenantID, Name: name, Prefix: keyDisplay(secret),
		Hash: hashKey(secret), Status: bulkhead.KeyActive, CreatedAt: now.UTC(),
	}
}

// keyDisplay is the part of a well-formed key that may be shown again: its
// prefix and tenant id, and the first characters of its secret
// (bk_live_tn_..._AbCd, or bk_live_AbCd for a key of the earlier form).
func keyDisplay(key string) string {
	return key[:len(key)-keySecretChars+keyDisplaySecretChars]
}

// hashKey is the stored form of a key.
func hashKey(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// parseKey checks a key's shape before any lookup. A key is
// bk_live_<tenant id>_<secret> or, made before keys named their tenant,
// bk_live_<secret>, the secret being 32 bytes in base64url (43 characters,
// which may themselves hold "_" and "-", so the key is read from the right).
// tenantID is the tenant the key names, "" for a key of the earlier form.
func parseKey(s string) (tenantID string, ok bool) {
	rest, ok := strings.CutPrefix(s, keyPrefix)
	if !ok || len(rest) < keySecretChars {
		return "", false
	}
	head, secret := rest[:len(rest)-keySecretChars], rest[len(rest)-keySecretChars:]
	// The decoder skips line breaks, so the length is checked after decoding too.
	if b, err := base64.RawURLEncoding.DecodeString(secret); err != nil || len(b) != keySecretBytes {
		return "", false
	}
	if head == "" {
		return "", true
	}
	tid, ok := strings.CutSuffix(head, "_")
	if !ok || !bulkhead.ValidID("tn", tid) {
		return "", false
	}
	return tid, true
}

// wellFormedKey rejects anything that cannot be a key before any lookup.
func wellFormedKey(s string) bool {
	_, ok := parseKey(s)
	return ok
}

type keyView struct {
	KeyID     string  `json:"key_id"`
	Name      string  `json:"name"`
	Prefix    string  `json:"prefix"`
	Status    string  `json:"status"`
	CreatedAt string  `json:"created_at"`
	RevokedAt *string `json:"revoked_at"`
}

func viewKey(k bulkhead.APIKey) keyView {
	v := keyView{KeyID: k.ID, Name: k.Name, Prefix: k.Prefix, Status: string(k.Status), CreatedAt: timestamp(k.CreatedAt)}
	if k.RevokedAt != nil {
		s := timestamp(*k.RevokedAt)
		v.RevokedAt = &s
	}
	return v
}

func (a *API) createKey(ctx context.Context, r *request) (any, error) {
	var b struct {
		Name *string `json:"name"`
	}
	// The body is optional (name defaults), but a body that is there must be
	// an object: JSON null is refused like anywhere else.
	raw, err := rawBody(r.APIGatewayProxyRequest)
	if err != nil {
		return nil, err
	}
	if len(bytes.TrimSpace(raw)) > 0 {
		if err := decode(r.APIGatewayProxyRequest, &b); err != nil {
			return nil, err
		}
	}
	name := "default"
	if b.Name != nil {
		if err := validName("name", *b.Name); err != nil {
			return nil, err
		}
		name = *b.Name
	}
	secret, k := newAPIKey(r.tenant, name, a.now())
	// No secret is ever stored, so the result kept for an Idempotency-Key
	// replay is the key without it, saying so; a caller that lost the first
	// response revokes that key and creates another.
	stored := struct {
		keyView
		Redacted bool `json:"api_key_redacted"`
	}{viewKey(k), true}
	if err := a.tenantStore(r).CreateKey(ctx, k, r.completion(http.StatusCreated, stored)); err != nil {
		return nil, err
	}
	return struct {
		keyView
		APIKey string `json:"api_key"`
	}{viewKey(k), secret}, nil
}

func (a *API) listKeys(ctx context.Context, r *request) (any, error) {
	cursor, limit, err := pageParams(r.APIGatewayProxyRequest)
	if err != nil {
		return nil, err
	}
	page, err := a.tenantStore(r).ListKeys(ctx, cursor, limit)
	if err != nil {
		return nil, err
	}
	views := make([]keyView, len(page.Items))
	for i, k := range page.Items {
		views[i] = viewKey(k)
	}
	return list(views, page.NextCursor), nil
}

func (a *API) revokeKey(ctx context.Context, r *request) (any, error) {
	id := r.PathParameters["key_id"]
	if !bulkhead.ValidID("key", id) {
		return nil, bulkhead.Errorf(bulkhead.NotFound, "key %s not found", id)
	}
	k, err := a.tenantStore(r).RevokeKey(ctx, id)
	if err != nil {
		return nil, err
	}
	return viewKey(k), nil
}
