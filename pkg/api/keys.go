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
	keyPrefix       = "bk_live_"
	keySecretBytes  = 32
	keyDisplayChars = len(keyPrefix) + 4
)

// newAPIKey makes a key: the secret (shown once) and the record to store,
// which holds only the secret's SHA-256 (the secret has 256 bits of entropy,
// so a plain hash cannot be brute-forced and needs no pepper).
func newAPIKey(tenantID, name string, now time.Time) (secret string, k bulkhead.APIKey) {
	var b [keySecretBytes]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("crypto/rand: " + err.Error())
	}
	secret = keyPrefix + base64.RawURLEncoding.EncodeToString(b[:])
	return secret, bulkhead.APIKey{
		ID: bulkhead.NewID("key"), TenantID: tenantID, Name: name, Prefix: secret[:keyDisplayChars],
		Hash: hashKey(secret), Status: bulkhead.KeyActive, CreatedAt: now.UTC(),
	}
}

// hashKey is the stored form of a key.
func hashKey(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// wellFormedKey rejects anything that cannot be a key before any lookup.
func wellFormedKey(s string) bool {
	rest, ok := strings.CutPrefix(s, keyPrefix)
	if !ok || len(rest) != base64.RawURLEncoding.EncodedLen(keySecretBytes) {
		return false
	}
	// The decoder skips line breaks, so the length is checked after decoding too.
	b, err := base64.RawURLEncoding.DecodeString(rest)
	return err == nil && len(b) == keySecretBytes
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
