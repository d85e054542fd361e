package api_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/bulkhead-dev/bulkhead/pkg/awsclients"
	"github.com/bulkhead-dev/bulkhead/pkg/bulkhead"
	"github.com/bulkhead-dev/bulkhead/pkg/platform"
	"github.com/bulkhead-dev/bulkhead/pkg/s3store"
)

// maxStoredItem is what every stored item and every single-resource
// response must stay under: far below DynamoDB's 400 KB item limit.
const maxStoredItem = 128 * 1024

// maxAgent is an agent body at every size limit at once, each field
// encoding to its bound when c is '<' (six bytes encoded) and also storing
// that many bytes when c is 'x'.
func maxAgent(tb testing.TB, c string) map[string]any {
	tb.Helper()
	per := bulkhead.JSONStringLen(c)
	prompt := strings.Repeat(c, bulkhead.MaxSystemPromptLen/per) + strings.Repeat("x", bulkhead.MaxSystemPromptLen%per)
	// Tools are names of at most 64 characters; the built-ins are names
	// every tenant has.
	tools := []any{bulkhead.ToolInvokeAgent, bulkhead.ToolSearchKB, bulkhead.ToolCreateTicket}
	name := strings.Repeat("<", bulkhead.MaxNameLen)
	if c == "x" {
		name = strings.Repeat("\U0001D11E", bulkhead.MaxNameLen) // four bytes stored each
	}
	return map[string]any{"name": name, "system_prompt": prompt, "tools": tools}
}

// dynamoItemSize is an item's size as DynamoDB counts it (attribute names
// plus values; numbers counted generously as their digits).
func dynamoItemSize(item map[string]types.AttributeValue) int {
	n := 0
	for k, v := range item {
		n += len(k) + valueSize(v)
	}
	return n
}

func valueSize(v types.AttributeValue) int {
	switch v := v.(type) {
	case *types.AttributeValueMemberS:
		return len(v.Value)
	case *types.AttributeValueMemberN:
		return len(v.Value)
	case *types.AttributeValueMemberB:
		return len(v.Value)
	case *types.AttributeValueMemberSS:
		n := 0
		for _, s := range v.Value {
			n += len(s)
		}
		return n
	case *types.AttributeValueMemberL:
		n := 3
		for _, e := range v.Value {
			n += 1 + valueSize(e)
		}
		return n
	case *types.AttributeValueMemberM:
		n := 3
		for k, e := range v.Value {
			n += 1 + len(k) + valueSize(e)
		}
		return n
	default:
		return 1
	}
}

// scanTable returns every item of the platform's table, read through the SDK.
func (h *harness) scanTable() []map[string]types.AttributeValue {
	h.t.Helper()
	db := awsclients.NewDynamoDB(awsclients.Static(""), h.env.Dynamo.URL())
	var items []map[string]types.AttributeValue
	in := &dynamodb.ScanInput{TableName: aws.String(platform.DefaultTable)}
	for {
		out, err := db.Scan(context.Background(), in)
		if err != nil {
			h.t.Fatalf("scan: %v", err)
		}
		items = append(items, out.Items...)
		if len(out.LastEvaluatedKey) == 0 {
			return items
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
}

// largestItems is the size of the largest item in the table of each kind
// (its sort key up to the first '#').
func (h *harness) largestItems() map[string]int {
	h.t.Helper()
	out := map[string]int{}
	for _, it := range h.scanTable() {
		sk, _ := it["SK"].(*types.AttributeValueMemberS)
		kind, _, _ := strings.Cut(sk.Value, "#")
		out[kind] = max(out[kind], dynamoItemSize(it))
	}
	return out
}

// proxySize is the size of the Lambda response API Gateway would get for
// this body: the proxy JSON, with the body escaped once more inside it.
func proxySize(tb testing.TB, r response) int {
	tb.Helper()
	b, err := json.Marshal(events.APIGatewayProxyResponse{StatusCode: r.status,
		Headers: map[string]string{"Content-Type": "application/json"}, Body: r.raw})
	if err != nil {
		tb.Fatal(err)
	}
	return len(b)
}

// TestAgentLimitsAreMeasuredEncoded: the size limits of an agent hold on
// its JSON encoding, where '<' takes six bytes, and bound the tools together.
func TestAgentLimitsAreMeasuredEncoded(t *testing.T) {
	h := newHarness(t, 0)
	a := h.newTenant("acme", "starter")
	agent := h.newAgent(a)
	cases := []struct {
		name string
		body map[string]any
		want int
	}{
		{"prompt at the limit", map[string]any{"system_prompt": strings.Repeat("x", bulkhead.MaxSystemPromptLen)}, 201},
		{"prompt one byte over", map[string]any{"system_prompt": strings.Repeat("x", bulkhead.MaxSystemPromptLen+1)}, 400},
		{"prompt over once escaped", map[string]any{"system_prompt": strings.Repeat("<", bulkhead.MaxSystemPromptLen/6+1)}, 400},
		{"an inline tool definition", map[string]any{"tools": []any{map[string]any{"name": "t", "d": "x"}}}, 400},
		{"a tool that does not exist", map[string]any{"tools": []any{"nope"}}, 400},
		{"a name over 64 characters", map[string]any{"tools": []any{strings.Repeat("x", 65)}}, 400},
		{"everything at its limit", maxAgent(t, "<"), 201},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			body := map[string]any{"name": "a", "system_prompt": "p"}
			for k, v := range c.body {
				body[k] = v
			}
			if r := h.do("POST", "/v1/agents", a.key, unescaped(t, body)); r.status != c.want || (c.want == 400 && r.errCode() != "invalid_request") {
				t.Errorf("create: %d %s, want %d", r.status, r.errCode(), c.want)
			}
			if r := h.do("PATCH", "/v1/agents/"+agent, a.key, unescaped(t, c.body)); (c.want == 201) != (r.status == 200) {
				t.Errorf("patch: %d %s, want %d", r.status, r.errCode(), c.want)
			}
		})
	}
}

// TestStoredItemsAndViewsAreBounded tries the largest agents there can be,
// and the ones today's older limits let through (64 tools of '<', six bytes
// each once encoded), with an Idempotency-Key so that the view is stored
// too: no response and no item in the table may pass maxStoredItem.
func TestStoredItemsAndViewsAreBounded(t *testing.T) {
	h := newHarness(t, 0)
	a := h.newTenant("acme", "starter")
	var wide []any
	for i := range bulkhead.MaxTools {
		wide = append(wide, map[string]any{"name": fmt.Sprintf("t%d", i), "d": strings.Repeat("<", 3900)})
	}
	attempts := map[string]map[string]any{
		"escaped":  maxAgent(t, "<"),
		"plain":    maxAgent(t, "x"),
		"64 tools": {"name": "wide", "system_prompt": strings.Repeat("<", 4000), "tools": wide},
	}
	largestView := 0
	for name, body := range attempts {
		r := h.doWithHeader("POST", "/v1/agents", a.key, unescaped(t, body), "Idempotency-Key", name)
		if len(r.raw) > largestView {
			largestView = len(r.raw)
		}
		if len(r.raw) > maxStoredItem {
			t.Errorf("%s: a %d-byte agent view", name, len(r.raw))
		}
		if r.status == 201 {
			g := h.must(200, "GET", "/v1/agents/"+r.str("agent_id"), a.key, nil)
			if len(g.raw) > maxStoredItem {
				t.Errorf("%s: GET returns %d bytes", name, len(g.raw))
			}
		}
	}
	sizes := h.largestItems()
	for kind, size := range sizes {
		if size > maxStoredItem {
			t.Errorf("the largest %s item is %d bytes, want at most %d", kind, size, maxStoredItem)
		}
	}
	t.Logf("largest agent view %d bytes; largest items by kind %v", largestView, sizes)
}

// TestListPagesAreBoundedByBytes lists 100 agents at every size limit: a page
// of 100 stops at the byte budget, far under Lambda's 6 MB, and walking the
// cursor returns each agent exactly once.
func TestListPagesAreBoundedByBytes(t *testing.T) {
	h := newHarness(t, 0)
	a := h.newTenant("acme", "enterprise")
	want := map[string]bool{}
	body := unescaped(t, maxAgent(t, "<"))
	for range 100 {
		want[h.must(201, "POST", "/v1/agents", a.key, body).str("agent_id")] = true
	}
	seen := map[string]int{}
	path, pages, largest, largestBody := "/v1/agents?limit=100", 0, 0, 0
	for {
		r := h.must(200, "GET", path, a.key, nil)
		pages++
		largest, largestBody = max(largest, proxySize(t, r)), max(largestBody, len(r.raw))
		if len(r.raw) > bulkhead.MaxPageBytes+1024 {
			t.Errorf("page %d is %d bytes, over the %d-byte budget", pages, len(r.raw), bulkhead.MaxPageBytes)
		}
		if n := proxySize(t, r); n > bulkhead.MaxResponseBytes {
			t.Errorf("page %d: a %d-byte Lambda response", pages, n)
		}
		data := r.body["data"].([]any)
		if len(data) == 0 {
			t.Fatalf("page %d is empty", pages)
		}
		for _, it := range data {
			seen[it.(map[string]any)["agent_id"].(string)]++
		}
		if !r.body["has_more"].(bool) {
			break
		}
		path = "/v1/agents?limit=100&cursor=" + r.str("next_cursor")
	}
	for id := range want {
		if seen[id] != 1 {
			t.Errorf("agent %s listed %d times", id, seen[id])
		}
	}
	if len(seen) != len(want) {
		t.Errorf("listed %d agents, want %d", len(seen), len(want))
	}
	t.Logf("100 agents of %d bytes each: %d pages, largest body %d bytes, largest Lambda response %d bytes",
		len(h.must(200, "GET", "/v1/agents?limit=1", a.key, nil).raw), pages, largestBody, largest)
}

// TestCursorsAreCheckedAgainstTheirRequest: a cursor from another list,
// another range or another conversation is a 400, never a 500 and never
// another type's items.
func TestCursorsAreCheckedAgainstTheirRequest(t *testing.T) {
	h := newHarness(t, 0)
	a := h.newTenant("acme", "starter")
	agent := h.newAgent(a)
	h.newAgent(a)
	day := func(d int) time.Time { return time.Date(2026, 11, d, 12, 0, 0, 0, time.UTC) }
	conv := ""
	for _, d := range []int{2, 3, 4} {
		h.clock.Set(day(d))
		conv = h.must(200, "POST", "/v1/agents/"+agent+"/execute", a.key, map[string]any{"message": "hi"}).str("conversation_id")
	}
	h.clock.Set(day(28))
	agentsCursor := h.must(200, "GET", "/v1/agents?limit=1", a.key, nil).str("next_cursor")
	recs := h.must(200, "GET", "/v1/usage/records?from=2026-11-01&to=2026-11-05&limit=1", a.key, nil)
	recCursor := recs.str("next_cursor") // at the record of 2 November
	convCursor := h.must(200, "GET", "/v1/conversations?limit=1", a.key, nil).str("next_cursor")
	if agentsCursor == "" || recCursor == "" || convCursor == "" {
		t.Fatalf("no cursors: %q %q %q", agentsCursor, recCursor, convCursor)
	}
	enc := func(s string) string { return url.QueryEscape(base64URL(s)) }
	cases := []struct{ name, path string }{
		{"agents cursor on keys", "/v1/keys?cursor=" + agentsCursor},
		{"agents cursor on conversations", "/v1/conversations?cursor=" + agentsCursor},
		{"agents cursor on records", "/v1/usage/records?cursor=" + agentsCursor},
		{"agents cursor on invoices", "/v1/billing/invoices?cursor=" + agentsCursor},
		{"record before the range", "/v1/usage/records?from=2026-11-03&to=2026-11-05&cursor=" + recCursor},
		{"record after the range", "/v1/usage/records?from=2026-10-01&to=2026-11-02&cursor=" + recCursor},
		{"record cursor with another range that holds it", "/v1/usage/records?from=2026-11-02&to=2026-11-05&cursor=" + recCursor},
		{"record cursor with an agent filter", "/v1/usage/records?from=2026-11-01&to=2026-11-05&agent_id=" + agent + "&cursor=" + recCursor},
		{"conversations cursor with an agent filter", "/v1/conversations?agent_id=" + agent + "&cursor=" + convCursor},
		{"record of another month", "/v1/usage/records?cursor=" + enc("EXEC#2026-12-01T00:00:00.000000000Z#exe_x")},
		{"not UTF-8", "/v1/agents?cursor=" + enc("AGENT#\xff")},
		{"longer than a sort key", "/v1/agents?cursor=" + enc("AGENT#"+strings.Repeat("a", 1100))},
		{"message cursor past the turns", "/v1/conversations/" + conv + "?cursor=" + s3store.EncodePosition(s3store.Position{Turn: 2})},
		{"message cursor past a turn's messages", "/v1/conversations/" + conv + "?cursor=" + s3store.EncodePosition(s3store.Position{Turn: 1, Offset: 50})},
		{"message cursor of a list", "/v1/conversations/" + conv + "?cursor=" + agentsCursor},
		{"negative message cursor", "/v1/conversations/" + conv + "?cursor=" + enc("-1:0")},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if r := h.do("GET", c.path, a.key, nil); r.status != 400 || r.errCode() != "invalid_request" {
				t.Errorf("%s: %d %s", c.path, r.status, r.raw)
			}
		})
	}
	admin := []string{"/v1/admin/tenants?cursor=" + agentsCursor, "/v1/admin/invoices?month=2026-10&cursor=" + agentsCursor}
	for _, p := range admin {
		if r := h.do("GET", p, adminToken, nil); r.status != 400 {
			t.Errorf("%s: %d %s", p, r.status, r.raw)
		}
	}
	// The cursor still works where it belongs, and continues after its record.
	next := h.must(200, "GET", "/v1/usage/records?from=2026-11-01&to=2026-11-05&limit=1&cursor="+recCursor, a.key, nil)
	if got := next.body["data"].([]any)[0].(map[string]any)["started_at"].(string); !strings.HasPrefix(got, "2026-11-03") {
		t.Errorf("after the record of 2 November came one that started at %s", got)
	}
}

// TestBodiesMustBeObjects: every route that takes a body refuses a JSON
// value that is not an object, and does nothing.
func TestBodiesMustBeObjects(t *testing.T) {
	h := newHarness(t, 0)
	a := h.newTenant("acme", "starter")
	agent := h.newAgent(a)
	routes := []struct{ method, path, key string }{
		{"POST", "/v1/agents", a.key},
		{"PATCH", "/v1/agents/" + agent, a.key},
		{"POST", "/v1/agents/" + agent + "/execute", a.key},
		{"POST", "/v1/keys", a.key},
		{"POST", "/v1/admin/tenants", adminToken},
		{"PATCH", "/v1/admin/tenants/" + a.id, adminToken},
		{"PATCH", "/v1/admin/tenants/" + a.id + "/agents/" + agent, adminToken},
		{"POST", "/v1/admin/billing/close", adminToken},
	}
	for _, rt := range routes {
		for _, body := range []string{"null", " null ", "[]", `[{"name":"x"}]`, `"x"`, "1", "true"} {
			r := h.do(rt.method, rt.path, rt.key, body)
			e, _ := r.body["error"].(map[string]any)
			msg, _ := e["message"].(string)
			if r.status != 400 || r.errCode() != "invalid_request" || msg != "request body must be a JSON object" {
				t.Errorf("%s %s %s: %d %s", rt.method, rt.path, body, r.status, r.raw)
			}
		}
	}
	if v := h.must(200, "GET", "/v1/agents/"+agent, a.key, nil).body["version"]; num(t, v) != 1 {
		t.Errorf("agent version %v after refused PATCHes, want 1", v)
	}
	if n := len(h.must(200, "GET", "/v1/keys", a.key, nil).body["data"].([]any)); n != 1 {
		t.Errorf("%d keys after refused creates, want 1", n)
	}
	// No body at all still creates a key named "default", as documented.
	if r := h.must(201, "POST", "/v1/keys", a.key, nil); r.str("name") != "default" || r.str("api_key") == "" {
		t.Errorf("key without a body: %s", r.raw)
	}
}

// TestSecretsAreNeverStored creates keys (one with an Idempotency-Key) and a
// tenant, then searches every DynamoDB item, every S3 object and the logs
// for their secrets. A replay of the key creation carries no secret.
func TestSecretsAreNeverStored(t *testing.T) {
	var logs syncBuffer
	h := newHarness(t, 0, func(o *platform.Options) {
		o.Logger = slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	a := h.newTenant("acme", "starter")
	agent := h.newAgent(a)
	h.must(200, "POST", "/v1/agents/"+agent+"/execute", a.key, map[string]any{"message": "hi"})
	// A turn too large to be inline, so that S3 holds a transcript object.
	h.must(200, "POST", "/v1/agents/"+agent+"/execute", a.key, map[string]any{"message": strings.Repeat("hello ", 1000)})
	first := h.doWithHeader("POST", "/v1/keys", a.key, map[string]any{"name": "ci"}, "Idempotency-Key", "create-key")
	secret := first.str("api_key")
	if first.status != 201 || !strings.HasPrefix(secret, "bk_live_") {
		t.Fatalf("create key: %d %s", first.status, first.raw)
	}
	replay := h.doWithHeader("POST", "/v1/keys", a.key, map[string]any{"name": "ci"}, "Idempotency-Key", "create-key")
	if replay.status != 201 || replay.header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("replay: %d %s", replay.status, replay.raw)
	}
	if _, ok := replay.body["api_key"]; ok || replay.body["api_key_redacted"] != true {
		t.Errorf("replay %s: want no api_key and api_key_redacted: true", replay.raw)
	}
	for _, f := range []string{"key_id", "prefix", "name", "status", "created_at"} {
		if replay.str(f) == "" || replay.str(f) != first.str(f) {
			t.Errorf("replay %s = %q, first response %q", f, replay.str(f), first.str(f))
		}
	}
	if _, ok := first.body["api_key_redacted"]; ok {
		t.Errorf("first response %s says redacted", first.raw)
	}
	h.must(200, "GET", "/v1/agents", secret, nil) // the key works

	secrets := []string{secret, a.key}
	for _, it := range h.scanTable() {
		b, _ := json.Marshal(it)
		for _, s := range secrets {
			if strings.Contains(string(b), s) || strings.Contains(string(b), s[len(s)-43:]) {
				t.Errorf("a secret is stored in DynamoDB: %s", b)
			}
		}
	}
	s3c := awsclients.NewS3(awsclients.Static(""), h.env.S3.URL())
	objects := 0
	pages := s3.NewListObjectsV2Paginator(s3c, &s3.ListObjectsV2Input{Bucket: aws.String(platform.DefaultBucket)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range page.Contents {
			out, err := s3c.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(platform.DefaultBucket), Key: o.Key})
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(out.Body)
			out.Body.Close()
			objects++
			for _, s := range secrets {
				if strings.Contains(string(b), s) {
					t.Errorf("a secret is stored in S3 object %s", aws.ToString(o.Key))
				}
			}
		}
	}
	if objects == 0 {
		t.Error("no S3 object was searched")
	}
	for _, line := range logs.lines() {
		for _, s := range secrets {
			if strings.Contains(line, s) {
				t.Errorf("a secret is logged: %s", line)
			}
		}
	}
}

func base64URL(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// unescaped encodes v as a client would that does not escape HTML
// characters (json.Marshal would send each '<' as six bytes already).
func unescaped(tb testing.TB, v any) string {
	tb.Helper()
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		tb.Fatal(err)
	}
	return b.String()
}
