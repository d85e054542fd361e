package local

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bulkhead-dev/bulkhead/pkg/offline"
)

// startLocal starts the local platform with the read timeout shortened to
// d and a model that takes modelDelay to answer; it returns the platform
// and its demo tenant.
func startLocal(t *testing.T, d, modelDelay time.Duration) (*Platform, Demo) {
	t.Helper()
	prev := readTimeout
	readTimeout = d
	t.Cleanup(func() { readTimeout = prev })
	dir := t.TempDir()
	p, err := Start(context.Background(), Config{Addr: "127.0.0.1:0", DataDir: dir, Model: offline.New(modelDelay), Out: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close(context.Background()) })
	if p.Demo == nil || p.Demo.APIKey == "" {
		t.Fatal("the first start created no demo tenant")
	}
	b, err := os.ReadFile(filepath.Join(dir, "demo.json"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), p.Demo.APIKey) {
		t.Errorf("demo.json holds the demo API key in plaintext: %s", b)
	}
	return p, *p.Demo
}

// TestSlowBodyIsCutOff: a client that sends its headers and then trickles
// its body is disconnected once the read timeout passes, long before its
// body is complete.
func TestSlowBodyIsCutOff(t *testing.T) {
	p, demo := startLocal(t, 300*time.Millisecond, 0)
	c, err := net.Dial("tcp", strings.TrimPrefix(p.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const bodyLen = 300
	fmt.Fprintf(c, "POST /v1/agents HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", demo.APIKey, bodyLen)
	var sent atomic.Int64
	go func() {
		// One byte every 10 ms: the whole body would take 3 s.
		for range bodyLen {
			if _, err := c.Write([]byte(" ")); err != nil {
				return
			}
			sent.Add(1)
			time.Sleep(10 * time.Millisecond)
		}
	}()
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	// The server may answer before closing; either way it closes.
	_, err = io.Copy(io.Discard, c)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("the server kept the connection open for 30 s")
	}
	if n := sent.Load(); n >= bodyLen {
		t.Errorf("the connection stayed open until the whole trickled body (%d bytes) was sent", n)
	}
}

// TestLongExecutionOutlivesReadTimeout: the read timeout bounds how long a
// client takes to send its request, not how long the execution runs.
func TestLongExecutionOutlivesReadTimeout(t *testing.T) {
	p, demo := startLocal(t, 200*time.Millisecond, 600*time.Millisecond)
	req, err := http.NewRequest("POST", p.URL+"/v1/agents/"+demo.AgentID+"/execute", strings.NewReader(`{"message":"hello"}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+demo.APIKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Status string `json:"status"`
	}
	body, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(body, &out); err != nil || resp.StatusCode != 200 || out.Status != "completed" {
		t.Errorf("execution longer than the read timeout: %d %s, want 200 completed", resp.StatusCode, body)
	}
}

// TestMalformedPathGetsTheErrorShape: a percent-escape net/http cannot
// parse is answered by the local platform in the platform's error shape.
func TestMalformedPathGetsTheErrorShape(t *testing.T) {
	p, _ := startLocal(t, readTimeout, 0)
	c, err := net.Dial("tcp", strings.TrimPrefix(p.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	_, _ = io.WriteString(c, "GET /v1/agents/%zz HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	var e struct {
		Error struct{ Code string } `json:"error"`
	}
	if err := json.Unmarshal(body, &e); err != nil || resp.StatusCode != 400 || e.Error.Code != "invalid_request" {
		t.Errorf("GET /v1/agents/%%zz: %d %q, want 400 invalid_request", resp.StatusCode, body)
	}
}

// TestPortalIsServed: the local server serves the portal at "/" with its
// security headers, and leaves the API's paths to the API.
func TestPortalIsServed(t *testing.T) {
	p, _ := startLocal(t, readTimeout, 0)
	get := func(path string) (*http.Response, string) {
		t.Helper()
		resp, err := http.Get(p.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	for _, path := range []string{"/", "/app.js", "/app.css"} {
		resp, _ := get(path)
		if resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Content-Security-Policy"), "default-src 'none'") ||
			resp.Header.Get("X-Content-Type-Options") != "nosniff" || resp.Header.Get("Referrer-Policy") != "no-referrer" {
			t.Errorf("GET %s: %d %v", path, resp.StatusCode, resp.Header)
		}
	}
	if _, body := get("/"); !strings.Contains(body, `<script src="app.js"`) {
		t.Errorf("GET / is not the portal: %.200s", body)
	}
	if resp, body := get("/health"); resp.StatusCode != 200 || !strings.Contains(body, "healthy") || resp.Header.Get("Content-Security-Policy") != "" {
		t.Errorf("GET /health: %d %s", resp.StatusCode, body)
	}
	if resp, body := get("/v1/agents"); resp.StatusCode != 401 || !strings.Contains(body, "unauthenticated") {
		t.Errorf("GET /v1/agents without a key: %d %s", resp.StatusCode, body)
	}
	if resp, body := get("/nope"); resp.StatusCode != 404 || !strings.Contains(body, "not_found") {
		t.Errorf("GET /nope: %d %s", resp.StatusCode, body)
	}
}
