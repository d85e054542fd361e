package portal_test

import (
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/bulkhead-dev/bulkhead/pkg/portal"
)

// TestHandler: the portal's files with their security headers at "/" and
// "/<file>"; everything else goes to the API untouched.
func TestHandler(t *testing.T) {
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-From", "api")
		w.WriteHeader(http.StatusTeapot)
	})
	srv := httptest.NewServer(portal.Handler(api))
	defer srv.Close()
	for _, c := range []struct {
		method, path, ctype string
		portal              bool
	}{
		{"GET", "/", "text/html", true},
		{"HEAD", "/", "text/html", true},
		{"GET", "/app.js", "text/javascript", true},
		{"GET", "/app.css", "text/css", true},
		{"POST", "/", "", false},
		{"GET", "/index.html", "", false},
		{"GET", "/health", "", false},
		{"GET", "/openapi.json", "", false},
		{"GET", "/docs", "", false},
		{"GET", "/docs/style.css", "", false},
		{"GET", "/v1/agents", "", false},
		{"GET", "/nope.js", "", false},
		{"GET", "/static/app.js", "", false},
		{"GET", "/../app.js", "", false},
	} {
		req, _ := http.NewRequest(c.method, srv.URL+c.path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		fromAPI := resp.Header.Get("X-From") == "api"
		if fromAPI == c.portal {
			t.Errorf("%s %s: served by the portal = %v, want %v", c.method, c.path, !fromAPI, c.portal)
			continue
		}
		if !c.portal {
			if resp.Header.Get("Content-Security-Policy") != "" {
				t.Errorf("%s %s: the portal's headers on an API answer", c.method, c.path)
			}
			continue
		}
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), c.ctype) {
			t.Errorf("%s %s: %d %q", c.method, c.path, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		for h, want := range map[string]string{
			"Content-Security-Policy": portal.ContentSecurityPolicy,
			"X-Content-Type-Options":  "nosniff",
			"Referrer-Policy":         "no-referrer",
		} {
			if got := resp.Header.Get(h); got != want {
				t.Errorf("%s %s: %s = %q, want %q", c.method, c.path, h, got, want)
			}
		}
	}
}

// TestRevalidation: a file asked for again with its ETag is a 304.
func TestRevalidation(t *testing.T) {
	srv := httptest.NewServer(portal.Handler(http.NotFoundHandler()))
	defer srv.Close()
	for _, path := range []string{"/", "/app.js"} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		etag := resp.Header.Get("ETag")
		req, _ := http.NewRequest("GET", srv.URL+path, nil)
		req.Header.Set("If-None-Match", etag)
		resp, err = http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if etag == "" || resp.StatusCode != http.StatusNotModified {
			t.Errorf("GET %s with If-None-Match %s: %d", path, etag, resp.StatusCode)
		}
	}
}

// TestPolicyIsStrict: the policy allows nothing inline, nothing evaluated
// and no other origin.
func TestPolicyIsStrict(t *testing.T) {
	csp := portal.ContentSecurityPolicy
	for _, bad := range []string{"unsafe-inline", "unsafe-eval", "*", "http:", "https:", "unsafe-hashes", "nonce-", "sha256-"} {
		if strings.Contains(csp, bad) {
			t.Errorf("the policy contains %q: %s", bad, csp)
		}
	}
	for _, need := range []string{"default-src 'none'", "script-src 'self'", "style-src 'self'", "connect-src 'self'",
		"img-src 'self' data:", "base-uri 'none'", "form-action 'none'", "frame-ancestors 'none'"} {
		if !strings.Contains(csp, need) {
			t.Errorf("the policy lacks %q", need)
		}
	}
}

// TestStaticFiles: no inline script or style in the HTML, and the
// JavaScript never parses data as HTML or code, nor keeps the key beyond the tab.
func TestStaticFiles(t *testing.T) {
	files := portal.Files()
	read := func(name string) string {
		f, err := files.Open(name)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		b, _ := io.ReadAll(f)
		return string(b)
	}
	if _, err := fs.Stat(files, "index.html"); err != nil {
		t.Fatal(err)
	}
	html := read("index.html")
	for _, tag := range regexp.MustCompile(`<script[^>]*>`).FindAllString(html, -1) {
		if !strings.Contains(tag, ` src="`) {
			t.Errorf("index.html: a script without src: %s", tag)
		}
	}
	for _, re := range []string{`<script(?:\s[^>]*)?>\s*[^<\s]`, `(?i)\sstyle\s*=`, `(?i)<style`, `(?i)\son[a-z]+\s*=`, `(?i)javascript:`} {
		if m := regexp.MustCompile(re).FindString(html); m != "" {
			t.Errorf("index.html: inline script or style %q", m)
		}
	}
	js := read("app.js")
	for _, bad := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function", "localStorage", "document.cookie", "console.log", "setAttribute('style'", ".style."} {
		if strings.Contains(js, bad) {
			t.Errorf("app.js uses %s", bad)
		}
	}
}
