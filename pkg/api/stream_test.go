package api_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"sort"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/bulkhead-dev/bulkhead/pkg/api"
)

type sseEvent struct {
	name string
	data string
}

// streamExecute posts an execute and reads its Server-Sent Events as a client would.
func (h *harness) streamExecute(key, agent string, body map[string]any, hdr map[string]string) (*http.Response, []sseEvent, string) {
	h.t.Helper()
	b, _ := json.Marshal(body)
	req, err := http.NewRequest("POST", h.srv.URL+"/v1/agents/"+agent+"/execute", bytes.NewReader(b))
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := h.srv.Client().Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	if !strings.HasPrefix(resp.Header.Get("Content-Type"), api.EventStreamType) {
		raw, _ := io.ReadAll(resp.Body)
		return resp, nil, string(raw)
	}
	var evs []sseEvent
	var cur sseEvent
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 8<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if cur.name != "" {
				evs = append(evs, cur)
			}
			cur = sseEvent{}
		case strings.HasPrefix(line, "event: "):
			cur.name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			cur.data += strings.TrimPrefix(line, "data: ")
		}
	}
	if err := sc.Err(); err != nil {
		h.t.Fatalf("read stream: %v", err)
	}
	return resp, evs, ""
}

func keys(m map[string]any) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func TestStreamedExecute(t *testing.T) {
	h := newHarness(t, 0)
	a := h.newTenant("stream", "professional")
	agent := h.newAgent(a)
	buffered := h.must(200, "POST", "/v1/agents/"+agent+"/execute", a.key, map[string]any{"message": "search the docs for pricing"})

	for name, tc := range map[string]struct {
		body map[string]any
		hdr  map[string]string
	}{
		"body":   {map[string]any{"message": "search the docs for pricing", "stream": true}, nil},
		"accept": {map[string]any{"message": "search the docs for pricing"}, map[string]string{"Accept": "text/event-stream"}},
	} {
		t.Run(name, func(t *testing.T) {
			resp, evs, raw := h.streamExecute(a.key, agent, tc.body, tc.hdr)
			if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != api.EventStreamType {
				t.Fatalf("status %d, Content-Type %q; body %s", resp.StatusCode, resp.Header.Get("Content-Type"), raw)
			}
			if resp.Header.Get("Cache-Control") != "no-cache" || resp.Header.Get("X-Accel-Buffering") != "no" {
				t.Errorf("Cache-Control %q, X-Accel-Buffering %q", resp.Header.Get("Cache-Control"), resp.Header.Get("X-Accel-Buffering"))
			}
			if len(evs) == 0 || evs[len(evs)-1].name != api.SSEDone {
				t.Fatalf("events %v, want a final done", evs)
			}
			var done map[string]any
			if err := json.Unmarshal([]byte(evs[len(evs)-1].data), &done); err != nil {
				t.Fatalf("done data %q: %v", evs[len(evs)-1].data, err)
			}
			if got, want := strings.Join(keys(done), ","), strings.Join(keys(buffered.body), ","); got != want {
				t.Errorf("done fields %s, buffered execute's %s", got, want)
			}
			if done["status"] != "completed" || done["message"] != buffered.body["message"] {
				t.Errorf("done %v; want completed with the buffered reply %q", done, buffered.body["message"])
			}
			// Deltas (when the model streams) join into the reply; a
			// tool_result follows its tool_call.
			var text strings.Builder
			deltas, calls := 0, map[string]bool{}
			for _, ev := range evs[:len(evs)-1] {
				var d map[string]any
				if err := json.Unmarshal([]byte(ev.data), &d); err != nil {
					t.Fatalf("%s data %q: %v", ev.name, ev.data, err)
				}
				switch ev.name {
				case api.SSEDelta:
					deltas++
					text.WriteString(d["text"].(string))
				case api.SSEToolCall:
					calls[d["id"].(string)] = true
					if d["name"] == "" || d["arguments"] == nil {
						t.Errorf("tool_call %v", d)
					}
				case api.SSEToolResult:
					if !calls[d["tool_call_id"].(string)] {
						t.Errorf("tool_result %v before its tool_call", d)
					}
				default:
					t.Errorf("unexpected event %s", ev.name)
				}
			}
			if deltas > 0 && text.String() != done["message"] {
				t.Errorf("deltas join to %q, reply %q", text.String(), done["message"])
			}
		})
	}
}

func TestStreamedExecuteRefusals(t *testing.T) {
	h := newHarness(t, 0)
	a := h.newTenant("refusals", "professional")
	agent := h.newAgent(a)

	resp, _, raw := h.streamExecute(a.key, agent, map[string]any{"message": "hi", "stream": "yes"}, nil)
	if resp.StatusCode != 400 || !strings.Contains(raw, "stream must be a boolean") {
		t.Errorf("stream \"yes\": %d %s, want 400", resp.StatusCode, raw)
	}

	h.setQuota(a, map[string]any{"max_requests_per_hour": 1})
	h.must(200, "POST", "/v1/agents/"+agent+"/execute", a.key, map[string]any{"message": "hi"})
	resp, _, raw = h.streamExecute(a.key, agent, map[string]any{"message": "hi", "stream": true}, nil)
	var body map[string]any
	_ = json.Unmarshal([]byte(raw), &body)
	e, _ := body["error"].(map[string]any)
	if resp.StatusCode != 429 || resp.Header.Get("Content-Type") != "application/json" || e["code"] != "rate_limited" {
		t.Errorf("over quota: %d %q %s, want an ordinary 429 JSON error", resp.StatusCode, resp.Header.Get("Content-Type"), raw)
	}
}

// A streamed execute with an Idempotency-Key replays its stored body as a
// single done event.
func TestStreamedExecuteIdempotentReplay(t *testing.T) {
	h := newHarness(t, 0)
	a := h.newTenant("replay", "professional")
	agent := h.newAgent(a)
	body := map[string]any{"message": "hello", "stream": true}
	hdr := map[string]string{"Idempotency-Key": "k-1"}
	_, first, raw := h.streamExecute(a.key, agent, body, hdr)
	if len(first) == 0 {
		t.Fatalf("first: no events; %s", raw)
	}
	resp, again, raw := h.streamExecute(a.key, agent, body, hdr)
	if len(again) != 1 || again[0].name != api.SSEDone || again[0].data != first[len(first)-1].data {
		t.Fatalf("replay: %v %s; want the stored body as one done event %s", again, raw, first[len(first)-1].data)
	}
	if resp.Header.Get(api.ReplayedHeader) != "true" {
		t.Errorf("replay without %s", api.ReplayedHeader)
	}
}

func TestGetExecution(t *testing.T) {
	h := newHarness(t, 0)
	a, b := h.newTenant("owner", "professional"), h.newTenant("other", "professional")
	agent := h.newAgent(a)
	ex := h.must(200, "POST", "/v1/agents/"+agent+"/execute", a.key, map[string]any{"message": "hello there"})
	id := ex.str("execution_id")

	got := h.must(200, "GET", "/v1/executions/"+id, a.key, nil)
	for _, k := range []string{"execution_id", "agent_id", "conversation_id", "model", "status", "message", "tokens_used", "cost"} {
		if g, w := got.body[k], ex.body[k]; g != w {
			t.Errorf("%s = %v, execute answered %v", k, g, w)
		}
	}
	if got.str("started_at") == "" || got.str("finished_at") == "" || got.body["usage"] == nil {
		t.Errorf("missing times or usage: %s", got.raw)
	}
	if r := h.do("GET", "/v1/executions/"+id, b.key, nil); r.status != 404 || r.errCode() != "not_found" {
		t.Errorf("another tenant's execution: %d %s, want 404", r.status, r.raw)
	}
	if r := h.do("GET", "/v1/executions/exec_aaaaaaaaaaaaaaaa", a.key, nil); r.status != 404 {
		t.Errorf("unknown execution: %d %s, want 404", r.status, r.raw)
	}
}

// The streaming Lambda response of a buffered answer is the prelude (status
// and headers as JSON), eight NUL bytes, then the JSON body intact.
func TestStreamFunctionBufferedPrelude(t *testing.T) {
	h := newHarness(t, 0)
	resp, err := h.env.API.StreamFunction(api.FnHealth)(context.Background(), events.APIGatewayProxyRequest{HTTPMethod: "GET", Resource: "/health", Path: "/health"})
	if err != nil {
		t.Fatal(err)
	}
	wire, err := io.ReadAll(resp)
	if err != nil {
		t.Fatal(err)
	}
	prelude, body, ok := bytes.Cut(wire, make([]byte, 8))
	if !ok {
		t.Fatalf("no 8-NUL separator in %q", wire)
	}
	var p struct {
		StatusCode int               `json:"statusCode"`
		Headers    map[string]string `json:"headers"`
	}
	if err := json.Unmarshal(prelude, &p); err != nil || p.StatusCode != 200 || p.Headers["Content-Type"] != "application/json" {
		t.Errorf("prelude %s (%v)", prelude, err)
	}
	if string(body) != `{"status":"healthy"}` {
		t.Errorf("body %q", body)
	}
}
