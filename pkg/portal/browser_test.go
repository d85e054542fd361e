package portal_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/bulkhead-dev/bulkhead/pkg/platform/platformtest"
	"github.com/bulkhead-dev/bulkhead/pkg/portal"
)

const adminToken = "portal-test-admin-token"

// The markup the tests put in an agent's name and in a message. Were it ever
// parsed as HTML, it would set window.__pwned.
const (
	xssName    = `<img src=x onerror="window.__pwned='name'"><script>window.__pwned='name-script'</script>`
	xssMessage = `use tool search_kb <script>window.__pwned='msg'</script><img src=x onerror="window.__pwned='msg-img'">`
)

// startPortal serves the whole platform (embedded DynamoDB and S3, the
// offline model) behind the local gateway, with the portal in front of it,
// as `bulkhead dev` does.
func startPortal(t *testing.T) string {
	t.Helper()
	gw := platformtest.Start(t).Gateway(t, adminToken)
	srv := httptest.NewServer(portal.Handler(gw))
	t.Cleanup(srv.Close)
	return srv.URL
}

// call sends a JSON request and decodes the JSON answer into out (if not nil).
func call(t *testing.T, method, url, token string, body any, out any) int {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = strings.NewReader(string(b))
	}
	req, _ := http.NewRequest(method, url, r)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %d %s: %v", method, url, resp.StatusCode, b, err)
		}
	}
	return resp.StatusCode
}

type tenant struct {
	ID, Key string
}

func createTenant(t *testing.T, base, name string) tenant {
	t.Helper()
	var tn struct {
		TenantID string `json:"tenant_id"`
		APIKey   string `json:"api_key"`
	}
	if st := call(t, "POST", base+"/v1/admin/tenants", adminToken, map[string]string{"name": name, "tier": "professional"}, &tn); st != 201 {
		t.Fatalf("create tenant: %d", st)
	}
	return tenant{ID: tn.TenantID, Key: tn.APIKey}
}

// chromiumPath is the browser the tests drive: BULKHEAD_CHROMIUM, else
// Debian's chromium. A missing browser fails the tests: they are never
// skipped without a word (`make browser` installs it).
func chromiumPath(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("BULKHEAD_CHROMIUM"); p != "" {
		return p
	}
	for _, p := range []string{"/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	t.Fatal("no Chromium for the portal's browser tests: run `make browser` (apt-get install chromium, as root), or set BULKHEAD_CHROMIUM to a Chromium or Chrome binary")
	return ""
}

// browser starts a headless Chromium for the test, with a fresh profile.
func browser(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.Headless, chromedp.NoSandbox, chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	t.Cleanup(cancelAlloc)
	return alloc
}

// tab is one browser tab with the console messages it logged.
type tab struct {
	t    *testing.T
	ctx  context.Context
	base string
	shot string // where screenshots go

	mu      sync.Mutex
	console []string
}

// newTab opens a tab: parent is the allocator (a new browser) or another
// tab's context (a new tab in its browser).
func newTab(t *testing.T, parent context.Context, base, shots string) *tab {
	t.Helper()
	ctx, cancel := chromedp.NewContext(parent)
	t.Cleanup(cancel)
	tb := &tab{t: t, ctx: ctx, base: base, shot: shots}
	if err := chromedp.Do(ctx); err != nil { // start the browser and the tab
		t.Fatalf("start Chromium: %v", err)
	}
	go func() {
		for m, err := range chromedp.Console(ctx) {
			if err != nil {
				return
			}
			tb.mu.Lock()
			tb.console = append(tb.console, m.String())
			tb.mu.Unlock()
		}
	}()
	return tb
}

func (b *tab) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.screenshot("failed")
		page, _ := chromedp.Run(b.ctx, chromedp.Evaluate[string](`document.body.innerText`))
		b.mu.Lock()
		defer b.mu.Unlock()
		b.t.Fatalf("%s: %v\npage:\n%s\nconsole:\n%s", what, err, page, strings.Join(b.console, "\n"))
	}
}

func (b *tab) text(sel string) string {
	b.t.Helper()
	s, err := chromedp.Run(b.ctx, chromedp.TextContent(chromedp.CSS(sel)))
	if err != nil {
		b.screenshot("failed")
		b.t.Fatalf("text of %s: %v", sel, err)
	}
	return s
}

func (b *tab) attr(sel, name string) string {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.AttributeValue(chromedp.CSS(sel), name))
	if err != nil {
		b.t.Fatalf("attribute %s of %s: %v", name, sel, err)
	}
	return v.Value
}

func eval[T any](b *tab, expr string) T {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		b.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// open shows a page of the portal by its hash route and waits until it has rendered.
func (b *tab) open(route, page string) {
	b.t.Helper()
	b.do("open "+route,
		chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`(() => {
			document.getElementById('view').removeAttribute('data-ready');
			if (location.hash === %[1]q) window.dispatchEvent(new HashChangeEvent('hashchange'));
			else location.hash = %[1]q;
		})()`, route)),
		chromedp.WaitVisible(chromedp.CSS(`#view[data-ready="`+page+`"]`)))
}

func (b *tab) screenshot(name string) {
	png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
		return
	}
	path := filepath.Join(b.shot, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
	}
}

func (b *tab) signIn(key string) {
	b.t.Helper()
	b.do("sign in",
		chromedp.Navigate(b.base+"/"),
		chromedp.WaitVisible(chromedp.CSS("#api-key")),
		chromedp.SendKeys(chromedp.CSS("#api-key"), key),
		chromedp.Click(chromedp.CSS("#signin-button")),
		chromedp.WaitVisible(chromedp.CSS(`#view[data-ready="usage"]`)))
}

// TestPortalInBrowser drives the portal in headless Chromium against the
// real local platform: sign-in, an agent created and run with its reply
// streamed, the usage it shows, a key created and revoked, markup that must
// stay text, and a second tenant who sees nothing of the first's.
func TestPortalInBrowser(t *testing.T) {
	base := startPortal(t)
	shots := t.TempDir()
	if dir := os.Getenv("BULKHEAD_PORTAL_SCREENSHOTS"); dir != "" {
		shots = dir // to refresh the README's screenshots
	}
	alloc := browser(t)
	acme := createTenant(t, base, "acme")
	globex := createTenant(t, base, "globex")

	b := newTab(t, alloc, base, shots)

	// A wrong key is refused in the API's own words.
	b.do("wrong key",
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(chromedp.CSS("#api-key")),
		chromedp.SendKeys(chromedp.CSS("#api-key"), "bk_live_nope"),
		chromedp.Click(chromedp.CSS("#signin-button")),
		chromedp.WaitVisible(chromedp.CSS(`#signin-error .error[data-code="unauthenticated"]`)))
	b.screenshot("signin-refused")
	b.do("clear", chromedp.Evaluate[chromedp.Void](`document.getElementById('api-key').value = ''`))

	b.signIn(acme.Key)
	if n := eval[int](b, `Object.keys(localStorage).length + document.cookie.length`); n != 0 {
		t.Errorf("the portal wrote %d localStorage keys or cookie bytes", n)
	}
	if strings.Contains(eval[string](b, `location.href`), acme.Key) {
		t.Error("the API key is in the URL")
	}
	b.screenshot("usage-empty")

	// Create an agent whose name is markup.
	b.open("#/agents", "agents")
	if got := b.text("#view .empty"); !strings.Contains(got, "No agents yet") {
		t.Errorf("agents empty state: %q", got)
	}
	b.do("create agent",
		chromedp.Click(chromedp.CSS("#new-agent")),
		chromedp.WaitVisible(chromedp.CSS("#agent-form")),
		chromedp.SetValue(chromedp.CSS("#agent-name"), xssName),
		chromedp.SetValue(chromedp.CSS("#agent-tools"), "search_kb"),
		chromedp.Click(chromedp.CSS("#agent-save")),
		chromedp.WaitVisible(chromedp.CSS("#agents-table")))
	if got := b.text("#agents-table .agent-name"); got != xssName {
		t.Errorf("agent name shown as %q, want the markup as text %q", got, xssName)
	}
	agentID := b.attr("#agents-table tbody tr", "data-agent-id")
	var agents struct {
		Data []struct {
			AgentID string `json:"agent_id"`
			Name    string `json:"name"`
		} `json:"data"`
	}
	call(t, "GET", base+"/v1/agents", acme.Key, nil, &agents)
	if len(agents.Data) != 1 || agents.Data[0].AgentID != agentID || agents.Data[0].Name != xssName {
		t.Fatalf("agents after create: %+v (page shows %s)", agents.Data, agentID)
	}
	b.screenshot("agents")

	// Run it in the console: the reply streams in as deltas, with the tool call.
	b.open("#/console/"+agentID, "console")
	b.do("run",
		chromedp.SetValue(chromedp.CSS("#console-message"), xssMessage),
		chromedp.Click(chromedp.CSS("#console-run")),
		chromedp.WaitVisible(chromedp.CSS("#console-transcript .turn.done")))
	reply := b.text("#console-transcript .reply")
	deltas := eval[int](b, `document.querySelector('#console-transcript .reply').childNodes.length`)
	execID := b.text("#console-transcript .exec-link")
	var x struct {
		Message    string `json:"message"`
		TokensUsed int64  `json:"tokens_used"`
		Status     string `json:"status"`
		ToolCalls  int    `json:"tool_call_count"`
	}
	if st := call(t, "GET", base+"/v1/executions/"+execID, acme.Key, nil, &x); st != 200 {
		t.Fatalf("execution %s: %d", execID, st)
	}
	if reply == "" || reply != x.Message || x.Status != "completed" {
		t.Errorf("console reply %q; execution %+v", reply, x)
	}
	if deltas < 2 {
		t.Errorf("the reply came in %d text node(s): not streamed", deltas)
	}
	if got := b.text("#console-transcript .tool-call .tool-name"); got != "search_kb" || x.ToolCalls != 1 {
		t.Errorf("tool call shown %q, execution has %d", got, x.ToolCalls)
	}
	if got := b.text("#console-transcript .msg.user .content"); got != xssMessage {
		t.Errorf("message shown as %q", got)
	}
	if got := b.attr("#console-transcript .exec-tokens", "data-value"); got != fmt.Sprint(x.TokensUsed) {
		t.Errorf("console shows %s tokens, the execution used %d", got, x.TokensUsed)
	}
	b.screenshot("console")

	// The usage page shows exactly what the run used.
	var usage struct {
		Usage struct {
			TokensThisMonth int64 `json:"tokens_this_month"`
		} `json:"usage"`
	}
	call(t, "GET", base+"/v1/usage", acme.Key, nil, &usage)
	b.open("#/usage", "usage")
	if got := b.attr("#used-tokens", "data-value"); got != fmt.Sprint(x.TokensUsed) || usage.Usage.TokensThisMonth != x.TokensUsed {
		t.Errorf("usage page: %s tokens; GET /v1/usage: %d; the run: %d", got, usage.Usage.TokensThisMonth, x.TokensUsed)
	}
	if got := b.attr("#daily-chart rect.bar", "data-tokens"); got != fmt.Sprint(x.TokensUsed) {
		t.Errorf("daily chart: %s tokens, want %d", got, x.TokensUsed)
	}
	if got := b.text("#bill-tokens"); got == "" {
		t.Error("no running bill")
	}
	for _, q := range []string{"tokens", "spend", "requests", "concurrency", "storage"} {
		b.do("quota bar "+q, chromedp.WaitVisible(chromedp.CSS("#bar-"+q)))
	}
	b.screenshot("usage")

	// The execution's detail and the conversation show the message as text.
	b.open("#/executions/"+execID, "executions")
	if got := b.text("#execution-steps"); got != "2" {
		t.Errorf("execution steps %q, want 2 (the tool call, then the reply)", got)
	}
	if got := b.text("#execution-calls td"); got != "search_kb" {
		t.Errorf("execution tool calls: %q", got)
	}
	b.open("#/conversations", "conversations")
	b.do("conversation", chromedp.Click(chromedp.CSS("#conversations-table a")),
		chromedp.WaitVisible(chromedp.CSS("#conversation-messages")))
	if got := b.text("#conversation-messages .msg.user .content"); got != xssMessage {
		t.Errorf("conversation shows the message as %q", got)
	}

	// A key: its secret shown once, then revoked.
	b.open("#/keys", "keys")
	b.do("create key",
		chromedp.SetValue(chromedp.CSS("#key-name"), "ci"),
		chromedp.Click(chromedp.CSS("#key-create")),
		chromedp.WaitVisible(chromedp.CSS("#new-key-secret")))
	secret := b.text("#new-key-secret")
	if !strings.HasPrefix(secret, "bk_live_") || call(t, "GET", base+"/v1/usage", secret, nil, nil) != 200 {
		t.Fatalf("new key %q does not work", secret)
	}
	b.screenshot("keys")
	b.open("#/keys", "keys")
	if n := eval[int](b, `document.querySelectorAll('#new-key-secret').length`); n != 0 {
		t.Error("the new key's secret is shown again")
	}
	if strings.Contains(eval[string](b, `document.body.textContent`), secret) {
		t.Error("the secret is still on the page")
	}
	var newKey struct {
		Data []struct {
			KeyID string `json:"key_id"`
			Name  string `json:"name"`
		} `json:"data"`
	}
	call(t, "GET", base+"/v1/keys", acme.Key, nil, &newKey)
	keyID := ""
	for _, k := range newKey.Data {
		if k.Name == "ci" {
			keyID = k.KeyID
		}
	}
	row := `#keys-table tr[data-key-id="` + keyID + `"]`
	b.do("revoke key",
		chromedp.Click(chromedp.CSS(row+" .revoke")),
		chromedp.Click(chromedp.CSS(row+" .revoke")),
		chromedp.WaitVisible(chromedp.CSS(`#keys-table tr[data-key-id="`+keyID+`"][data-status="revoked"]`)))
	if st := call(t, "GET", base+"/v1/usage", secret, nil, nil); st != 403 {
		t.Errorf("the revoked key answers %d, want 403", st)
	}

	// No month is closed yet: the invoices page says so.
	b.open("#/invoices", "invoices")
	if got := b.text("#view .empty"); !strings.Contains(got, "No invoices yet") {
		t.Errorf("invoices empty state: %q", got)
	}

	// Disable the agent, then delete it (the second click confirms).
	agentRow := `#agents-table tr[data-agent-id="` + agentID + `"]`
	b.open("#/agents", "agents")
	b.do("disable agent",
		chromedp.Click(chromedp.CSS(agentRow+" .toggle")),
		chromedp.WaitVisible(chromedp.CSS(agentRow+" .status-disabled")))
	var ag struct {
		Status string `json:"status"`
	}
	if call(t, "GET", base+"/v1/agents/"+agentID, acme.Key, nil, &ag); ag.Status != "disabled" {
		t.Errorf("agent status %q after Disable", ag.Status)
	}
	b.do("delete agent",
		chromedp.Click(chromedp.CSS(agentRow+" .delete")),
		chromedp.Click(chromedp.CSS(agentRow+" .delete")),
		chromedp.WaitVisible(chromedp.CSS(`#view[data-ready="agents"] .empty`)))
	if st := call(t, "GET", base+"/v1/agents/"+agentID, acme.Key, nil, nil); st != 404 {
		t.Errorf("deleted agent answers %d, want 404", st)
	}

	// Nothing of the markup ran.
	if v := eval[string](b, `String(window.__pwned)`); v != "undefined" {
		t.Errorf("injected markup ran: window.__pwned = %s", v)
	}

	// A second tenant, in a tab of its own, sees none of the first's agents.
	g := newTab(t, b.ctx, base, shots) // a new tab of the same browser
	g.signIn(globex.Key)
	g.open("#/agents", "agents")
	if n := eval[int](g, `document.querySelectorAll('#agents-table tr[data-agent-id]').length`); n != 0 {
		t.Errorf("the second tenant sees %d agents", n)
	}
	body := eval[string](g, `document.body.textContent`)
	if strings.Contains(body, agentID) || strings.Contains(body, "window.__pwned") {
		t.Error("the second tenant's page shows the first tenant's agent")
	}
	g.open("#/conversations", "conversations")
	if n := eval[int](g, `document.querySelectorAll('#conversations-table tbody tr').length`); n != 0 {
		t.Errorf("the second tenant sees %d conversations", n)
	}

	// A 429 shows when the quota resets: the second tenant's token quota is 0.
	var ga struct {
		AgentID string `json:"agent_id"`
	}
	call(t, "POST", base+"/v1/agents", globex.Key, map[string]any{"name": "helper", "system_prompt": "Be brief."}, &ga)
	if st := call(t, "PATCH", base+"/v1/admin/tenants/"+globex.ID, adminToken, map[string]any{"quota": map[string]any{"max_tokens_per_month": 0}}, nil); st != 200 {
		t.Fatalf("set quota: %d", st)
	}
	g.open("#/console/"+ga.AgentID, "console")
	g.do("run over quota",
		chromedp.SetValue(chromedp.CSS("#console-message"), "Hello"),
		chromedp.Click(chromedp.CSS("#console-run")),
		chromedp.WaitVisible(chromedp.CSS(`#console-status .error[data-code="quota_exceeded"]`)))
	if got := g.text("#console-status .error-reset"); !strings.Contains(got, "Resets at ") || !strings.Contains(got, "tokens") {
		t.Errorf("429 shown as %q", g.text("#console-status .error"))
	}
	g.screenshot("quota-exceeded")

	if v := eval[string](g, `String(window.__pwned)`); v != "undefined" {
		t.Errorf("injected markup ran in the second tab: %s", v)
	}
	// No Content-Security-Policy violation and no script error in either tab.
	for _, tb := range []*tab{b, g} {
		tb.mu.Lock()
		for _, m := range tb.console {
			if strings.Contains(m, "Content Security Policy") || strings.Contains(strings.ToLower(m), "uncaught") {
				t.Errorf("browser console: %s", m)
			}
		}
		tb.mu.Unlock()
	}
	t.Logf("screenshots in %s", shots)
}
