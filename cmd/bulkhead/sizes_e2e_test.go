//go:build unix

package main_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"

	"github.com/bulkhead-dev/bulkhead/pkg/awsclients"
)

// lambdaResponseLimit is Lambda's limit on a synchronous response.
const lambdaResponseLimit = 6 * 1024 * 1024

// TestSizeLimitsHoldAsInAWS: the limits real AWS enforces and the embedded
// servers would not are held by the platform by construction, measured after
// JSON encoding: a field of characters JSON escapes (`<` becomes six bytes)
// is refused past its bound; the largest agents list in pages bounded by
// bytes, each agent exactly once; an idempotent create of the largest agent
// is stored and replayed; and the embedded DynamoDB refuses an item over
// 400 KB with DynamoDB's own error, so the next oversized item is caught.
func TestSizeLimitsHoldAsInAWS(t *testing.T) {
	t.Parallel()
	p := startDevEnv(t, t, t.TempDir(), quotaToken)
	c := newClient(p.URL)
	tn := newQuotaTenant(t, c, "professional", nil, nil)

	// 6,000 `<` are 6,000 bytes sent but 36,000 encoded: over the 32 KiB prompt.
	wantError(t, c.do(t, "POST", "/v1/agents", tn.Key, rawJSON(`{"name":"big","system_prompt":"`+strings.Repeat("<", 6000)+`"}`)),
		"invalid_request", http.StatusBadRequest)

	// The largest agent: a prompt and a name filled to their encoded bounds,
	// and the built-in tools (tools are names of at most 64 characters).
	prompt := strings.Repeat("<", 32*1024/6-1)
	body := fmt.Sprintf(`{"name":"%s","system_prompt":"%s","tools":["invoke_agent","search_kb","create_ticket"]}`, strings.Repeat("<", 128), prompt)
	const agents = 40 // about 34 KB each: more than one 1 MiB page
	ids := map[string]bool{}
	var largest int
	for i := range agents {
		r := c.do(t, "POST", "/v1/agents", tn.Key, rawJSON(body))
		if r.Status != http.StatusCreated {
			t.Fatalf("agent %d at the bounds: %v", i, r)
		}
		ids[r.str(t, "agent_id")] = true
		largest = max(largest, len(r.Body))
	}
	t.Logf("largest agent response: %d bytes", largest)
	// An idempotent create of the same agent stores its response and replays it.
	first := idemCreate(t, p.URL, tn.Key, body, "big-agent")
	replay := idemCreate(t, p.URL, tn.Key, body, "big-agent")
	if first.Status != http.StatusCreated || replay.Header.Get("Idempotent-Replayed") != "true" || string(first.Body) != string(replay.Body) {
		t.Errorf("idempotent create of the largest agent: %d, replay %d %q", first.Status, replay.Status, replay.Header.Get("Idempotent-Replayed"))
	}
	ids[first.str(t, "agent_id")] = true

	// Listing them all: pages bounded by bytes, every agent exactly once.
	seen, pages, cursor := map[string]int{}, 0, ""
	for {
		path := "/v1/agents?limit=100"
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		r := c.must(t, http.StatusOK, "GET", path, tn.Key, nil)
		pages++
		if len(r.Body) > 2*1024*1024 || len(r.Body) > lambdaResponseLimit {
			t.Errorf("page %d is %d bytes", pages, len(r.Body))
		}
		for _, id := range r.ids(t, "agent_id") {
			seen[id]++
		}
		if cursor, _ = r.get(t, "next_cursor").(string); cursor == "" {
			break
		}
		if pages > 50 {
			t.Fatal("more than 50 pages")
		}
	}
	if pages < 2 {
		t.Errorf("%d maximal agents came in %d page: the byte bound did not apply", len(ids), pages)
	}
	for id := range ids {
		if seen[id] != 1 {
			t.Errorf("agent %s listed %d times", id, seen[id])
		}
	}
	t.Logf("%d agents in %d pages", len(seen), pages)

	// The embedded DynamoDB refuses what DynamoDB refuses.
	db := awsclients.NewDynamoDB(awsclients.Static(""), p.mustValue(t, "DynamoDB (embedded)"))
	_, err := db.PutItem(context.Background(), &dynamodb.PutItemInput{TableName: aws.String("bulkhead"), Item: map[string]types.AttributeValue{
		"PK": &types.AttributeValueMemberS{Value: "TENANT#" + tn.ID}, "SK": &types.AttributeValueMemberS{Value: "OVERSIZED"},
		"blob": &types.AttributeValueMemberS{Value: strings.Repeat("x", 410*1024)},
	}})
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode() != "ValidationException" || !strings.Contains(apiErr.ErrorMessage(), "Item size has exceeded the maximum allowed size") {
		t.Errorf("PutItem of a 410 KiB item: %v, want DynamoDB's ValidationException", err)
	}
}

// idemCreate posts an agent with an Idempotency-Key.
func idemCreate(t *testing.T, base, key, body, idem string) *response {
	t.Helper()
	req, err := http.NewRequest("POST", base+"/v1/agents", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Idempotency-Key", idem)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r, err := readResponse(resp, "POST", "/v1/agents")
	if err != nil {
		t.Fatal(err)
	}
	return r
}
