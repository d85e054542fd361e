package s3store_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/bulkhead-dev/bulkhead/pkg/bulkhead"
	"github.com/bulkhead-dev/bulkhead/pkg/s3store"
)

// TestMessagePagesAreBoundedByBytes pages through turns of the largest
// messages there are, each of '<' (six bytes once encoded): a page of 100
// stops at the byte budget, and the pages together are the transcript,
// each message exactly once and in order.
func TestMessagePagesAreBoundedByBytes(t *testing.T) {
	env := newTestEnv(t)
	ctx := context.Background()
	ts := env.store.Tenant("ten_a")
	const cid = "conv_big"
	big := strings.Repeat("<", bulkhead.MaxMessageBytes)
	var all []bulkhead.Message
	const turns = 12
	for turn := int64(1); turn <= turns; turn++ {
		msgs := []bulkhead.Message{
			{Role: bulkhead.RoleUser, Content: fmt.Sprintf("%d %s", turn, big), CreatedAt: baseTime},
			{Role: bulkhead.RoleAssistant, Content: fmt.Sprintf("answer %d", turn), CreatedAt: baseTime},
		}
		mustAppend(t, ts, cid, turn, msgs)
		all = append(all, msgs...)
	}
	var got []bulkhead.Message
	var from s3store.Position
	pages, largest := 0, 0
	for {
		page, next, err := ts.Messages(ctx, cid, turns, from, bulkhead.MaxPageSize)
		if err != nil {
			t.Fatalf("Messages from %+v: %v", from, err)
		}
		pages++
		b, _ := json.Marshal(page)
		largest = max(largest, len(b))
		if len(page) == 0 || (len(page) > 1 && len(b) > bulkhead.MaxPageBytes+len(page)+1) {
			t.Errorf("page from %+v: %d messages, %d bytes encoded (budget %d)", from, len(page), len(b), bulkhead.MaxPageBytes)
		}
		got = append(got, page...)
		if next == nil {
			break
		}
		// The next position must be one a later request can use.
		if from, err = s3store.DecodePosition(s3store.EncodePosition(*next)); err != nil {
			t.Fatal(err)
		}
	}
	if len(got) != len(all) {
		t.Fatalf("pages joined hold %d messages, want %d", len(got), len(all))
	}
	for i := range all {
		if got[i].Content != all[i].Content {
			t.Fatalf("message %d is %.20q, want %.20q", i, got[i].Content, all[i].Content)
		}
	}
	if pages < 2 {
		t.Errorf("%d pages: the budget did not split %d bytes of messages", pages, len(big)*6*turns)
	}
	t.Logf("%d messages in %d pages, largest page %d bytes encoded", len(all), pages, largest)
}
