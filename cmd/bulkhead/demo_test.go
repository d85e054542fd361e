//go:build unix

package main_test

import (
	"net/http"
	"strings"
	"testing"
)

// TestDevFirstStartDemo checks what a new user sees: on a fresh data dir the
// banner prints a demo tenant, key and agent, and the printed `Try: curl ...`
// command works as printed.
func TestDevFirstStartDemo(t *testing.T) {
	t.Parallel()
	p := startDev(t, t, t.TempDir(), "bk_admin_e2e-demo-token")

	tenantID := p.mustValue(t, "Demo tenant")
	key := p.mustValue(t, "Demo API key")
	agent := p.mustValue(t, "Demo agent")
	try := p.mustValue(t, "Try")
	if !strings.HasPrefix(tenantID, "tn_") || !strings.HasPrefix(key, "bk_live_") || !strings.HasPrefix(agent, "agt_") {
		t.Errorf("demo tenant %q, key %q, agent %q: want tn_..., bk_live_..., agt_...", tenantID, key, agent)
	}

	// Run the command as a shell would parse it, with net/http instead of curl.
	words, err := shellWords(try)
	if err != nil || len(words) == 0 || words[0] != "curl" {
		t.Fatalf("Try line %q: want a curl command (%v)", try, err)
	}
	method, url, body := "GET", "", ""
	header := http.Header{}
	for i := 1; i < len(words); i++ {
		arg := func() string {
			i++
			if i >= len(words) {
				t.Fatalf("Try line %q: %s has no argument", try, words[i-1])
			}
			return words[i]
		}
		switch w := words[i]; {
		case w == "-s":
		case w == "-X":
			method = arg()
		case w == "-H":
			name, value, ok := strings.Cut(arg(), ":")
			if !ok {
				t.Fatalf("Try line %q: malformed header %q", try, words[i])
			}
			header.Add(strings.TrimSpace(name), strings.TrimSpace(value))
		case w == "-d":
			body = arg()
			if method == "GET" {
				method = "POST"
			}
		case strings.HasPrefix(w, "-"):
			t.Fatalf("Try line %q: unexpected curl option %q", try, w)
		default:
			if url != "" {
				t.Fatalf("Try line %q: two URLs %q and %q", try, url, w)
			}
			url = w
		}
	}
	if want := p.URL + "/v1/agents/" + agent + "/execute"; url != want || method != "POST" {
		t.Errorf("Try command: %s %s, want POST %s", method, url, want)
	}
	if got, want := header.Get("Authorization"), "Bearer "+key; got != want {
		t.Errorf("Try command's Authorization = %q, want %q", got, want)
	}

	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatalf("Try command: %v", err)
	}
	req.Header = header
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("Try command: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("Try command: status %d, want 200", resp.StatusCode)
	}

	// The same request through the test client, to look at the answer.
	c := newClient(p.URL)
	r := c.must(t, http.StatusOK, "POST", "/v1/agents/"+agent+"/execute", key, rawJSON(body))
	if got := r.str(t, "message"); !strings.Contains(got, `you said "Hello!"`) {
		t.Errorf("demo agent's reply = %q, want it to quote Hello!", got)
	}
	u := c.must(t, http.StatusOK, "GET", "/v1/usage", key, nil)
	if got := u.str(t, "tenant_id"); got != tenantID {
		t.Errorf("demo key's tenant = %q, want %q", got, tenantID)
	}
	if got := u.int(t, "usage.executions_this_month"); got != 2 {
		t.Errorf("demo tenant's executions = %d, want 2", got)
	}
}

// TestDevAgentWithoutTools checks that tools are optional: an agent created
// without them can be read, listed and executed, also after a restart.
func TestDevAgentWithoutTools(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := startDev(t, t, dir, "bk_admin_e2e-tools-token")
	key := p.mustValue(t, "Demo API key")
	c := newClient(p.URL)

	var ids []string
	for _, body := range []map[string]any{
		{"name": "no-tools", "system_prompt": "Plain."},
		{"name": "empty-tools", "system_prompt": "Plain.", "tools": []string{}},
	} {
		r := c.must(t, http.StatusCreated, "POST", "/v1/agents", key, body)
		id := r.str(t, "agent_id")
		ids = append(ids, id)
		wantNoTools(t, r)
		if r := c.do(t, "GET", "/v1/agents/"+id, key, nil); r.Status != http.StatusOK {
			t.Errorf("%v\nstatus = %d, want 200", r, r.Status)
		} else {
			wantNoTools(t, r)
		}
		if r := c.do(t, "POST", "/v1/agents/"+id+"/execute", key, map[string]any{"message": "hi"}); r.Status != http.StatusOK {
			t.Errorf("%v\nstatus = %d, want 200", r, r.Status)
		}
	}
	listed := func() {
		t.Helper()
		if r := c.do(t, "GET", "/v1/agents", key, nil); r.Status != http.StatusOK {
			t.Errorf("%v\nstatus = %d, want 200 (one agent without tools must not break the list)", r, r.Status)
		} else if n := len(r.items(t)); n != 3 {
			t.Errorf("%d agents listed, want 3 (demo, no-tools, empty-tools)", n)
		}
	}
	listed()

	// The empty list must also survive the embedded DynamoDB's snapshot.
	p.stop(t)
	p = startDev(t, t, dir, "bk_admin_e2e-tools-token")
	c = newClient(p.URL)
	for _, id := range ids {
		if r := c.do(t, "GET", "/v1/agents/"+id, key, nil); r.Status != http.StatusOK {
			t.Errorf("after restart: %v\nstatus = %d, want 200", r, r.Status)
		} else {
			wantNoTools(t, r)
		}
	}
	listed()
}

func wantNoTools(t *testing.T, r *response) {
	t.Helper()
	if tools, ok := r.JSON["tools"].([]any); !ok || len(tools) != 0 {
		t.Errorf("%v\ntools = %v, want []", r, r.JSON["tools"])
	}
}
