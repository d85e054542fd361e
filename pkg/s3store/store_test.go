package s3store_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/bulkhead-dev/bulkhead/pkg/bulkhead"
	"github.com/bulkhead-dev/bulkhead/pkg/s3store"
)

func TestAppendTurnAndRecentMessages(t *testing.T) {
	env := newTestEnv(t)
	ctx := context.Background()
	ts := env.store.Tenant("ten_a")
	const cid = "conv_1"

	var all []bulkhead.Message
	sizes := map[int64]int64{}
	for turn := int64(1); turn <= 5; turn++ {
		msgs := turnMessages(turn, 10)
		sizes[turn] = mustAppend(t, ts, cid, turn, msgs)
		all = append(all, msgs...)
	}

	tests := []struct {
		name   string
		turns  int64
		window int
		want   []bulkhead.Message
		bytes  int64
	}{
		{"last two turns", 5, 2, all[6:], sizes[4] + sizes[5]},
		{"window larger than history", 5, 50, all, sizes[1] + sizes[2] + sizes[3] + sizes[4] + sizes[5]},
		{"head behind the objects", 3, 1, all[4:6], sizes[3]},
		{"no turns yet", 0, 10, nil, 0},
		{"no window", 5, 0, nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, n, err := ts.RecentMessages(ctx, cid, tt.turns, tt.window)
			if err != nil {
				t.Fatalf("RecentMessages: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("messages:\n got %+v\nwant %+v", got, tt.want)
			}
			if n != tt.bytes {
				t.Errorf("bytes read = %d, want %d", n, tt.bytes)
			}
		})
	}

	want := []string{
		"tenants/ten_a/conversations/conv_1/turns/0000000001.json",
		"tenants/ten_a/conversations/conv_1/turns/0000000002.json",
		"tenants/ten_a/conversations/conv_1/turns/0000000003.json",
		"tenants/ten_a/conversations/conv_1/turns/0000000004.json",
		"tenants/ten_a/conversations/conv_1/turns/0000000005.json",
	}
	if got := env.keys(t, ""); !reflect.DeepEqual(got, want) {
		t.Errorf("bucket keys:\n got %q\nwant %q", got, want)
	}
}

func TestRecentMessagesMissingTurnIsInternal(t *testing.T) {
	env := newTestEnv(t)
	ts := env.store.Tenant("ten_a")
	mustAppend(t, ts, "conv_1", 1, turnMessages(1, 0))
	mustAppend(t, ts, "conv_1", 3, turnMessages(3, 0))

	_, _, err := ts.RecentMessages(context.Background(), "conv_1", 3, 3)
	if !bulkhead.IsCode(err, bulkhead.Internal) || !strings.Contains(err.Error(), "turns/0000000002.json") {
		t.Errorf("err = %v, want Internal naming turn 2's key", err)
	}
}

// TestAppendTurnReplacesOrphan: an execution that died after writing its
// turn but before settling leaves an orphan; the next holder of the
// conversation's claim writes the same turn number and must win.
func TestAppendTurnReplacesOrphan(t *testing.T) {
	env := newTestEnv(t)
	ts := env.store.Tenant("ten_a")
	ctx := context.Background()
	mustAppend(t, ts, "conv_1", 1, turnMessages(1, 0))
	mustAppend(t, ts, "conv_1", 2, turnMessages(2, 0)) // the orphan: never settled
	fresh := turnMessages(2, 10)
	if _, err := ts.AppendTurn(ctx, "conv_1", 2, fresh); err != nil {
		t.Fatalf("replacing the orphan: %v", err)
	}
	msgs, _, err := ts.RecentMessages(ctx, "conv_1", 2, 1)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(msgs, fresh) {
		t.Errorf("turn 2 = %v, want the replacement %v", msgs, fresh)
	}
}

func TestInvalidArguments(t *testing.T) {
	env := newTestEnv(t)
	ctx := context.Background()
	good := env.store.Tenant("ten_a")
	msgs := turnMessages(1, 0)

	tests := []struct {
		name string
		call func() error
	}{
		{"turn 0", func() error { _, err := good.AppendTurn(ctx, "conv_1", 0, msgs); return err }},
		{"turn too large", func() error { _, err := good.AppendTurn(ctx, "conv_1", 10_000_000_000, msgs); return err }},
		{"no messages", func() error { _, err := good.AppendTurn(ctx, "conv_1", 1, nil); return err }},
		{"slash in conversation", func() error { _, err := good.AppendTurn(ctx, "conv_1/x", 1, msgs); return err }},
		{"dots in conversation", func() error { _, _, err := good.RecentMessages(ctx, "..", 1, 1); return err }},
		{"empty conversation", func() error { _, err := good.DeleteConversation(ctx, ""); return err }},
		{"slash in tenant", func() error {
			_, err := env.store.Tenant("ten_a/conversations").AppendTurn(ctx, "conv_1", 1, msgs)
			return err
		}},
		{"negative turns", func() error { _, _, err := good.RecentMessages(ctx, "conv_1", -1, 1); return err }},
		{"negative offset", func() error {
			_, _, err := good.Messages(ctx, "conv_1", 1, s3store.Position{Turn: 1, Offset: -1}, 10)
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.call(); !bulkhead.IsCode(err, bulkhead.Invalid) {
				t.Errorf("err = %v, want Invalid", err)
			}
		})
	}
	if keys := env.keys(t, ""); len(keys) != 0 {
		t.Errorf("invalid calls wrote %q", keys)
	}
}

func TestMessagesPagination(t *testing.T) {
	env := newTestEnv(t)
	ctx := context.Background()
	ts := env.store.Tenant("ten_a")
	const cid = "conv_1"

	// Turns of different lengths, so pages start and end inside turns.
	lengths := []int{1, 2, 3, 2, 1, 2, 4}
	var all []bulkhead.Message
	for i, n := range lengths {
		turn := int64(i + 1)
		var msgs []bulkhead.Message
		for j := range n {
			msgs = append(msgs, bulkhead.Message{Role: bulkhead.RoleUser, Content: fmt.Sprintf("t%d m%d", turn, j), CreatedAt: baseTime})
		}
		mustAppend(t, ts, cid, turn, msgs)
		all = append(all, msgs...)
	}
	turns := int64(len(lengths))

	for _, limit := range []int{1, 2, 3, 4, 5, 7, 11, 15, 100} {
		t.Run(fmt.Sprintf("limit %d", limit), func(t *testing.T) {
			var got []bulkhead.Message
			cursor := ""
			for pages := 0; ; pages++ {
				if pages > len(all) {
					t.Fatalf("more than %d pages: the cursor does not advance", len(all))
				}
				from, err := s3store.DecodePosition(cursor)
				if err != nil {
					t.Fatalf("DecodePosition(%q): %v", cursor, err)
				}
				page, next, err := ts.Messages(ctx, cid, turns, from, limit)
				if err != nil {
					t.Fatalf("Messages from %+v: %v", from, err)
				}
				if len(page) == 0 || len(page) > limit {
					t.Fatalf("page from %+v has %d messages, want 1..%d", from, len(page), limit)
				}
				got = append(got, page...)
				if next == nil {
					break
				}
				if len(page) != limit {
					t.Errorf("page from %+v has %d messages but is not the last; want %d", from, len(page), limit)
				}
				cursor = s3store.EncodePosition(*next)
			}
			if !reflect.DeepEqual(got, all) {
				t.Errorf("pages joined:\n got %v\nwant %v", contents(got), contents(all))
			}
		})
	}

	// A position the pager never hands out is not of this conversation.
	for name, p := range map[string]s3store.Position{
		"past the end":             {Turn: turns + 1},
		"far past the end":         {Turn: turns + 100, Offset: 1},
		"offset beyond its turn":   {Turn: 1, Offset: 2},
		"offset at its turn's end": {Turn: 2, Offset: 2},
		"negative turn":            {Turn: -1},
		"negative offset":          {Turn: 1, Offset: -1},
	} {
		t.Run(name, func(t *testing.T) {
			_, _, err := ts.Messages(ctx, cid, turns, p, 10)
			if !bulkhead.IsCode(err, bulkhead.Invalid) {
				t.Errorf("Messages from %+v: err = %v, want Invalid", p, err)
			}
		})
	}
	t.Run("empty conversation", func(t *testing.T) {
		page, next, err := ts.Messages(ctx, "conv_empty", 0, s3store.Position{}, 10)
		if err != nil || len(page) != 0 || next != nil {
			t.Errorf("got %v, %v, %v; want an empty last page", page, next, err)
		}
	})
}

func contents(msgs []bulkhead.Message) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = m.Content
	}
	return out
}

func TestPositionCodec(t *testing.T) {
	for _, p := range []s3store.Position{{Turn: 1}, {Turn: 7, Offset: 3}, {Turn: 9_999_999_999, Offset: 99}} {
		got, err := s3store.DecodePosition(s3store.EncodePosition(p))
		if err != nil || got != p {
			t.Errorf("round trip of %+v = %+v, %v", p, got, err)
		}
	}
	if got, err := s3store.DecodePosition(""); err != nil || got != (s3store.Position{}) {
		t.Errorf(`DecodePosition("") = %+v, %v; want the start`, got, err)
	}

	enc := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	invalid := []string{
		"!!!", "MTox+", "a",
		enc("1"), enc("1:2:3"), enc("x:1"), enc("1:x"), enc("0:0"), enc("-1:0"), enc("1:-1"),
		enc("01:0"), enc("+1:0"), enc("1:00"), enc(" 1:0"), enc("10000000000:0"), enc("1:0") + "=",
	}
	for _, cursor := range invalid {
		if p, err := s3store.DecodePosition(cursor); !bulkhead.IsCode(err, bulkhead.Invalid) {
			t.Errorf("DecodePosition(%q) = %+v, %v; want Invalid", cursor, p, err)
		}
	}
}

func TestTenantIsolation(t *testing.T) {
	env := newTestEnv(t)
	ctx := context.Background()
	a, b := env.store.Tenant("ten_a"), env.store.Tenant("ten_b")
	const cid = "conv_shared_name"
	aMsgs := append(turnMessages(1, 0), turnMessages(2, 0)...)
	mustAppend(t, a, cid, 1, aMsgs[:2])
	mustAppend(t, a, cid, 2, aMsgs[2:])

	// B names A's conversation: it reads nothing of A's.
	if got, _, err := b.RecentMessages(ctx, cid, 2, 10); err == nil || len(got) != 0 {
		t.Errorf("B RecentMessages = %v, %v; want an error and no messages", got, err)
	}
	if got, _, err := b.Messages(ctx, cid, 2, s3store.Position{}, 10); err == nil || len(got) != 0 {
		t.Errorf("B Messages = %v, %v; want an error and no messages", got, err)
	}
	// B deleting "its" conversation of that name removes nothing of A's.
	if n, err := b.DeleteConversation(ctx, cid); err != nil || n != 0 {
		t.Errorf("B DeleteConversation = %d, %v; want 0, nil", n, err)
	}
	// B writing turn 1 of the same name is its own object, not a conflict with A's.
	bMsgs := turnMessages(1, 5)
	mustAppend(t, b, cid, 1, bMsgs)

	if got, _, err := a.RecentMessages(ctx, cid, 2, 10); err != nil || !reflect.DeepEqual(got, aMsgs) {
		t.Errorf("A after B's calls = %v, %v; want A's messages untouched", contents(got), err)
	}
	if got, _, err := b.RecentMessages(ctx, cid, 1, 10); err != nil || !reflect.DeepEqual(got, bMsgs) {
		t.Errorf("B's own turn = %v, %v", contents(got), err)
	}
	for _, key := range env.keys(t, "tenants/ten_b/") {
		if !strings.HasPrefix(key, "tenants/ten_b/conversations/"+cid+"/turns/") {
			t.Errorf("B's object %q is outside its conversation prefix", key)
		}
	}
	if got := len(env.keys(t, "tenants/ten_a/")); got != 2 {
		t.Errorf("A has %d objects, want 2", got)
	}
}

func TestDeleteConversation(t *testing.T) {
	env := newTestEnv(t)
	ctx := context.Background()
	ts := env.store.Tenant("ten_a")

	var written int64
	for turn := int64(1); turn <= 5; turn++ {
		written += mustAppend(t, ts, "conv_1", turn, turnMessages(turn, int(turn)*7))
	}
	// A neighbour whose ID extends the deleted one's must survive.
	kept := mustAppend(t, ts, "conv_10", 1, turnMessages(1, 0))

	env.requests.take()
	n, err := ts.DeleteConversation(ctx, "conv_1")
	if err != nil {
		t.Fatalf("DeleteConversation: %v", err)
	}
	if n != written {
		t.Errorf("bytes deleted = %d, want %d (the bytes written)", n, written)
	}
	if got := env.requests.take(); got[reqList] != 1 || got[reqDelete] != 1 {
		t.Errorf("requests = %v, want 1 LIST and 1 DELETE_OBJECTS", got)
	}
	if keys := env.keys(t, "tenants/ten_a/conversations/conv_1/"); len(keys) != 0 {
		t.Errorf("left behind: %q", keys)
	}
	if _, _, err := ts.RecentMessages(ctx, "conv_1", 5, 1); err == nil {
		t.Error("RecentMessages after delete: no error")
	}
	if got, n, err := ts.RecentMessages(ctx, "conv_10", 1, 1); err != nil || n != kept || len(got) != 2 {
		t.Errorf("neighbour after delete = %d messages, %d bytes, %v; want 2, %d", len(got), n, err, kept)
	}
	if n, err := ts.DeleteConversation(ctx, "conv_1"); err != nil || n != 0 {
		t.Errorf("second delete = %d, %v; want 0, nil", n, err)
	}
}

func TestDeleteConversationInBatches(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 1,001 objects")
	}
	env := newTestEnv(t)
	ctx := context.Background()
	ts := env.store.Tenant("ten_a")

	const turns = 1001
	var written int64
	for turn := int64(1); turn <= turns; turn++ {
		written += mustAppend(t, ts, "conv_long", turn, turnMessages(turn, 0)[:1])
	}
	env.requests.take()
	n, err := ts.DeleteConversation(ctx, "conv_long")
	if err != nil {
		t.Fatalf("DeleteConversation: %v", err)
	}
	if n != written {
		t.Errorf("bytes deleted = %d, want %d", n, written)
	}
	if got := env.requests.take(); got[reqList] != 2 || got[reqDelete] != 2 {
		t.Errorf("requests = %v, want 2 LIST and 2 DELETE_OBJECTS (1,000 keys per batch)", got)
	}
	if keys := env.keys(t, "tenants/ten_a/"); len(keys) != 0 {
		t.Errorf("%d objects left behind", len(keys))
	}
}
