package openaifake_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/bulkhead-dev/bulkhead/pkg/providers/openai/openaifake"
)

// post may run on other goroutines: it reports failures with t.Error.
func post(t *testing.T, url, contentType, body string, header ...string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url+"/chat/completions", strings.NewReader(body))
	if err != nil {
		t.Error(err)
		return 0, ""
	}
	req.Header.Set("Content-Type", contentType)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Error(err)
		return 0, ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestValidation(t *testing.T) {
	s := openaifake.New()
	defer s.Close()
	cases := map[string]string{
		"no model":       `{"messages":[{"role":"user","content":"hi"}]}`,
		"no messages":    `{"model":"m","messages":[]}`,
		"bad role":       `{"model":"m","messages":[{"role":"robot","content":"hi"}]}`,
		"orphan tool":    `{"model":"m","messages":[{"role":"user","content":"hi"},{"role":"tool","tool_call_id":"c9","content":"r"}]}`,
		"args not str":   `{"model":"m","messages":[{"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":{}}}]}]}`,
		"bad tool":       `{"model":"m","messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function","function":{"name":""}}]}`,
		"bad schema":     `{"model":"m","messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function","function":{"name":"f","parameters":"x"}}]}`,
		"not json":       `{"model":`,
		"options no str": `{"model":"m","messages":[{"role":"user","content":"hi"}],"stream_options":{"include_usage":true}}`,
	}
	for name, body := range cases {
		status, resp := post(t, s.URL(), "application/json", body)
		var e struct {
			Error struct {
				Message string `json:"message"`
			} `json:"error"`
		}
		if status != 400 || json.Unmarshal([]byte(resp), &e) != nil || e.Error.Message == "" {
			t.Errorf("%s: %d %s", name, status, resp)
		}
	}
	if status, _ := post(t, s.URL(), "text/plain", `{"model":"m","messages":[{"role":"user","content":"hi"}]}`); status != 400 {
		t.Errorf("text/plain: %d", status)
	}
	ok := `{"model":"m","messages":[{"role":"system","content":"s"},{"role":"user","content":"hi"},` +
		`{"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{}"}}]},` +
		`{"role":"tool","tool_call_id":"c1","content":"done"}],"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}]}`
	if status, resp := post(t, s.URL(), "application/json; charset=utf-8", ok); status != 200 || !strings.Contains(resp, "Tool said: done") {
		t.Errorf("valid: %d %s", status, resp)
	}
	if s.Count() != len(cases)+2 {
		t.Errorf("count %d", s.Count())
	}
}

func TestKey(t *testing.T) {
	s := openaifake.New()
	defer s.Close()
	s.Key = "k1"
	body := `{"model":"m","messages":[{"role":"user","content":"hi"}]}`
	if status, _ := post(t, s.URL(), "application/json", body); status != 401 {
		t.Errorf("no key: %d", status)
	}
	if status, _ := post(t, s.URL(), "application/json", body, "Authorization", "Bearer k1"); status != 200 {
		t.Errorf("key: %d", status)
	}
	for _, r := range s.Requests() {
		if r.Header.Get("Authorization") != "" {
			t.Error("Authorization recorded")
		}
	}
}

func TestStreamWithoutUsage(t *testing.T) {
	s := openaifake.New()
	defer s.Close()
	req, _ := http.NewRequest(http.MethodPost, s.URL()+"/chat/completions",
		strings.NewReader(`{"model":"m","stream":true,"messages":[{"role":"user","content":"hello world"}]}`))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var text strings.Builder
	events, done := 0, false
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		if data == "[DONE]" {
			done = true
			continue
		}
		events++
		var c struct {
			Choices []struct {
				Delta struct{ Content string } `json:"delta"`
			} `json:"choices"`
			Usage any `json:"usage"`
		}
		if err := json.Unmarshal([]byte(data), &c); err != nil {
			t.Fatal(err)
		}
		if c.Usage != nil {
			t.Error("usage sent without include_usage")
		}
		if len(c.Choices) > 0 {
			text.WriteString(c.Choices[0].Delta.Content)
		}
	}
	if !done || events < 4 || text.String() != "Echo: hello world" {
		t.Errorf("done=%v events=%d text=%q", done, events, text.String())
	}
}

func TestConcurrentScripted(t *testing.T) {
	s := openaifake.New()
	defer s.Close()
	const n = 40
	for i := range n / 2 {
		s.Enqueue(openaifake.Reply{Text: fmt.Sprint("scripted ", i)})
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	scripted := 0
	for range n {
		wg.Go(func() {
			status, resp := post(t, s.URL(), "application/json", `{"model":"m","messages":[{"role":"user","content":"hi"}]}`)
			if status != 200 {
				t.Errorf("status %d", status)
			}
			if strings.Contains(resp, "scripted ") {
				mu.Lock()
				scripted++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if scripted != n/2 || s.Count() != n {
		t.Errorf("scripted %d count %d", scripted, s.Count())
	}
}
