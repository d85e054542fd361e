package api_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go/middleware"

	"github.com/bulkhead-dev/bulkhead/pkg/awsclients"
	"github.com/bulkhead-dev/bulkhead/pkg/platform"
)

// s3Outage makes every S3 request of the platform fail while it is on,
// before it leaves the SDK client (a middleware on the real client; the
// SDK does not retry it).
type s3Outage struct{ on atomic.Bool }

func (o *s3Outage) option(p *platform.Options) {
	p.AWS.APIOptions = append(p.AWS.APIOptions, func(stack *middleware.Stack) error {
		return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("s3-outage", func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			if o.on.Load() && awsmiddleware.GetServiceID(ctx) == "S3" {
				return middleware.InitializeOutput{}, middleware.Metadata{}, errors.New("injected S3 outage")
			}
			return next.HandleInitialize(ctx, in)
		}), middleware.Before)
	})
}

// TestDeleteConversationDuringS3Outage deletes a conversation while S3
// fails: the DELETE answers 503, the conversation is gone for the tenant
// (404 to reads and executions, out of lists) but its bytes stay counted
// and its objects stay; a retried DELETE once S3 is back removes the objects
// and only then gives the bytes back.
func TestDeleteConversationDuringS3Outage(t *testing.T) {
	outage := &s3Outage{}
	h := newHarness(t, 0, outage.option)
	a := h.newTenant("acme", "starter")
	agent := h.newAgent(a)
	first := h.must(200, "POST", "/v1/agents/"+agent+"/execute", a.key, map[string]any{"message": "one"})
	conv := first.str("conversation_id")
	// The first turn is in the head; the second is too large to be inline:
	// it is an object; the third is an inline turn item.
	second := h.must(200, "POST", "/v1/agents/"+agent+"/execute", a.key, map[string]any{"message": strings.Repeat("two ", 1500), "conversation_id": conv})
	third := h.must(200, "POST", "/v1/agents/"+agent+"/execute", a.key, map[string]any{"message": "three", "conversation_id": conv})
	// The executions' logs stay (and stay counted) when the conversation goes.
	logs := h.logBytes(a, first.str("execution_id"), second.str("execution_id"), third.str("execution_id"))
	stored := num(t, h.usage(a)["storage_bytes"])
	if stored <= 0 {
		t.Fatalf("storage_bytes = %d after two turns, want > 0", stored)
	}
	objects := func() int {
		t.Helper()
		client := awsclients.NewS3(awsclients.Static(""), h.env.S3.URL())
		out, err := client.ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: aws.String(platform.DefaultBucket),
			Prefix: aws.String("tenants/" + a.id + "/conversations/" + conv + "/")})
		if err != nil {
			t.Fatal(err)
		}
		return len(out.Contents)
	}
	if n := objects(); n != 1 {
		t.Fatalf("%d transcript objects after a small, a large and a small turn, want 1", n)
	}
	turnItems := func() int {
		t.Helper()
		n := 0
		for _, it := range h.scanTable() {
			if sk, ok := it["SK"].(*types.AttributeValueMemberS); ok && strings.HasPrefix(sk.Value, "TURN#"+conv+"#") {
				n++
			}
		}
		return n
	}
	if n := turnItems(); n != 1 {
		t.Fatalf("%d inline turn items, want 1", n)
	}

	outage.on.Store(true)
	if r := h.do("DELETE", "/v1/conversations/"+conv, a.key, nil); r.status != 503 || r.errCode() != "unavailable" {
		t.Fatalf("DELETE during the outage: %d %s, want 503 unavailable", r.status, r.raw)
	}
	h.must(404, "GET", "/v1/conversations/"+conv, a.key, nil)
	h.must(404, "POST", "/v1/agents/"+agent+"/execute", a.key, map[string]any{"message": "x", "conversation_id": conv})
	for _, path := range []string{"/v1/conversations", "/v1/conversations?agent_id=" + agent} {
		if l := h.must(200, "GET", path, a.key, nil); len(l.body["data"].([]any)) != 0 {
			t.Errorf("GET %s lists the conversation being deleted: %s", path, l.raw)
		}
	}
	if got := num(t, h.usage(a)["storage_bytes"]); got != stored {
		t.Errorf("storage_bytes = %d while the objects remain, want %d (still counted)", got, stored)
	}
	outage.on.Store(false)
	if n := objects(); n == 0 {
		t.Fatal("objects vanished although S3 failed")
	}

	h.must(200, "DELETE", "/v1/conversations/"+conv, a.key, nil)
	if n := objects(); n != 0 {
		t.Errorf("%d transcript objects left after the retried DELETE", n)
	}
	if n := turnItems(); n != 0 {
		t.Errorf("%d inline turn items left after the retried DELETE", n)
	}
	if got := num(t, h.usage(a)["storage_bytes"]); got != logs {
		t.Errorf("storage_bytes = %d after the retried DELETE, want the logs' %d", got, logs)
	}
	h.must(404, "DELETE", "/v1/conversations/"+conv, a.key, nil)
}
