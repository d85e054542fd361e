// Package portal is the tenants' self-service portal: a static single-page
// front end (HTML, JavaScript and CSS, no build step, no framework) that
// calls the public API from the browser with the tenant's API key.
//
// The files live in static/, exactly as they are deployed to S3 behind the
// CDN; the local platform serves them from this embedded copy at "/", next to
// the API on the same origin. The API key is the only credential: the pages
// keep it in the tab (in memory or sessionStorage) and send it as a bearer
// token, so nothing is rendered or kept on the server.
package portal

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"net/http"
	"path"
	"strings"
)

//go:embed static
var files embed.FS

// Files is the portal's static files (index.html at the root).
func Files() fs.FS {
	sub, err := fs.Sub(files, "static")
	if err != nil {
		panic(err) // the embedded directory always exists
	}
	return sub
}

// ContentSecurityPolicy is sent with every file of the portal: scripts,
// styles and API calls from the portal's own origin only, no inline script
// or style, no eval, no framing, no form posts, no base URL change.
const ContentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; " +
	"img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// Handler serves the portal's files at "/" (index.html) and "/<file>", and
// passes every other request to api unchanged: the API's routes (/v1/...,
// /health, /openapi.json, /docs) and its own 404s stay the API's.
func Handler(api http.Handler) http.Handler {
	static := Files()
	fileServer := http.FileServerFS(static)
	// Embedded files have no modification time: an ETag of their content
	// lets a browser revalidate (no-cache) with a 304 instead of the bytes.
	etags := map[string]string{}
	_ = fs.WalkDir(static, ".", func(name string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if b, err := fs.ReadFile(static, name); err == nil {
				sum := sha256.Sum256(b)
				etags[name] = `"` + hex.EncodeToString(sum[:16]) + `"`
			}
		}
		return nil
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name, ok := portalFile(static, r)
		if !ok {
			api.ServeHTTP(w, r)
			return
		}
		h := w.Header()
		h.Set("Content-Security-Policy", ContentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		// Revalidate every time: a new build is picked up at the next load.
		h.Set("Cache-Control", "no-cache")
		h.Set("ETag", etags[name])
		if name == "index.html" {
			// FileServer redirects /index.html to /; serve the bytes directly.
			http.ServeFileFS(w, r, static, name)
			return
		}
		fileServer.ServeHTTP(w, r)
	})
}

// portalFile reports which of the portal's files a GET or HEAD request asks
// for: "/" is index.html; any other path must name a file of static/ exactly.
func portalFile(static fs.FS, r *http.Request) (string, bool) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return "", false
	}
	p := r.URL.Path
	if p == "/" {
		return "index.html", true
	}
	name := strings.TrimPrefix(p, "/")
	if name == "" || name != path.Clean(name) || strings.HasPrefix(name, "v1/") || name == "index.html" {
		return "", false
	}
	st, err := fs.Stat(static, name)
	if err != nil || st.IsDir() {
		return "", false
	}
	return name, true
}
