//go:build infra

// The infrastructure tests need Node (jsii runs the CDK's JavaScript) and a
// few minutes of compilation on a cold build cache, so they carry the "infra"
// build tag: `go test ./...` skips them, `make test-infra` (go test -tags
// infra ./infra/...) runs them.

package stacks_test

import (
	"crypto/rand"
	"encoding/base64"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/bulkhead-dev/bulkhead/infra/stacks"
	"github.com/bulkhead-dev/bulkhead/pkg/bulkhead"
)

func TestFunctionsMatchTheFunctionsDirectory(t *testing.T) {
	dirs, err := filepath.Glob("../../functions/*/main.go")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range dirs {
		got = append(got, filepath.Base(filepath.Dir(d)))
	}
	sort.Strings(got)
	if want := stacks.FunctionNames(); !slices.Equal(got, want) {
		t.Errorf("functions/ has %v, the stacks deploy %v", got, want)
	}
}

// TestTokenValidationRegex: the gateway's pre-check must accept every key
// the authorizer accepts, in both forms: bk_live_ + tenant id + _ + secret,
// and bk_live_ + secret (keys made before keys named their tenant).
func TestTokenValidationRegex(t *testing.T) {
	re := regexp.MustCompile(stacks.TokenValidationRegex)
	for range 200 {
		secret := make([]byte, 32)
		rand.Read(secret)
		tid := bulkhead.NewID("tn")
		for _, key := range []string{
			"bk_live_" + base64.RawURLEncoding.EncodeToString(secret),
			"bk_live_" + tid + "_" + base64.RawURLEncoding.EncodeToString(secret),
		} {
			for _, h := range []string{"Bearer " + key, "bearer " + key, "BEARER  " + key, "Bearer " + key + " "} {
				if !re.MatchString(h) {
					t.Fatalf("%q refused, the authorizer accepts it", h)
				}
			}
		}
	}
	x43 := strings.Repeat("x", 43)
	for _, h := range []string{"", "Bearer", "Bearer bk_test_" + x43, "Basic dXNlcjpwYXNz", "Bearer bk_live_short",
		"Bearer bk_live_tn_short_" + x43, "Bearer bk_live_tn_aaaaaaaaaaaaaaaa_" + x43 + "x", "Bearer bk_live_tn_aaaaaaaaaaaaaaaa_" + x43[:42],
		"Bearer bk_live_" + x43 + "x"} {
		if re.MatchString(h) {
			t.Errorf("%q accepted; it can never be a key", h)
		}
	}
}

func TestConfigFromContext(t *testing.T) {
	ctx := func(m map[string]any) func(string) any { return func(k string) any { return m[k] } }
	cfg, err := stacks.ConfigFromContext(ctx(map[string]any{}))
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.SiloTenantsToSynthesize(); !slices.Equal(got, []string{stacks.ExampleSiloTenant}) || cfg.DestroyData || cfg.Nag {
		t.Errorf("defaults: silos %v, destroyData %v, nag %v; want the example silo, false, false", got, cfg.DestroyData, cfg.Nag)
	}
	cfg, err = stacks.ConfigFromContext(ctx(map[string]any{"siloTenants": " acme, globex ", "destroyData": "true", "nag": true, "exampleSilo": "false"}))
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.SiloTenantsToSynthesize(); !slices.Equal(got, []string{"acme", "globex"}) || !cfg.DestroyData || !cfg.Nag {
		t.Errorf("got silos %v, destroyData %v, nag %v", got, cfg.DestroyData, cfg.Nag)
	}
	cfg, _ = stacks.ConfigFromContext(ctx(map[string]any{"exampleSilo": false}))
	if got := cfg.SiloTenantsToSynthesize(); len(got) != 0 {
		t.Errorf("exampleSilo=false: silos %v, want none", got)
	}
	for _, bad := range []map[string]any{
		{"siloTenants": "Acme"}, {"siloTenants": "a_b"}, {"siloTenants": "acme,acme"},
		{"siloTenants": strings.Repeat("a", stacks.MaxSiloTenantIDLength+1)}, {"destroyData": "yes please"}, {"maxTenantKeys": "-1"},
	} {
		if _, err := stacks.ConfigFromContext(ctx(bad)); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}
