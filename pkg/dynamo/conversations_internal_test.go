package dynamo

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go/middleware"

	"github.com/bulkhead-dev/bulkhead/pkg/awsclients"
	"github.com/bulkhead-dev/bulkhead/pkg/bulkhead"
	"github.com/bulkhead-dev/bulkhead/pkg/embedded"
)

// readCounter counts, from an SDK middleware on the real client, the
// DynamoDB requests sent and the items they read: a Query's ScannedCount
// (the embedded server reports none, so its items returned, and a filter's
// discarded items show as extra requests), the items a BatchGetItem returned.
type readCounter struct {
	mu       sync.Mutex
	requests map[string]int
	items    int
}

func (c *readCounter) middleware(stack *middleware.Stack) error {
	return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("count-reads", func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
		out, md, err := next.HandleInitialize(ctx, in)
		c.mu.Lock()
		defer c.mu.Unlock()
		c.requests[awsmiddleware.GetOperationName(ctx)]++
		switch o := out.Result.(type) {
		case *dynamodb.QueryOutput:
			c.items += max(int(o.ScannedCount), len(o.Items))
		case *dynamodb.BatchGetItemOutput:
			for _, items := range o.Responses {
				c.items += len(items)
			}
		}
		return out, md, err
	}), middleware.After)
}

func (c *readCounter) take() (map[string]int, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r, n := c.requests, c.items
	c.requests, c.items = map[string]int{}, 0
	return r, n
}

// countedStore is a store on the embedded DynamoDB whose requests are
// counted, and an uncounted client for seeding.
func countedStore(tb testing.TB) (*Store, *dynamodb.Client, *readCounter) {
	tb.Helper()
	ctx := context.Background()
	d, err := embedded.StartDynamoDB(ctx, embedded.DynamoDBOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = d.Close(context.Background()) })
	setup := awsclients.NewDynamoDB(awsclients.Static(""), d.URL())
	if err := CreateTable(ctx, setup, "t"); err != nil {
		tb.Fatal(err)
	}
	c := &readCounter{requests: map[string]int{}}
	cfg := awsclients.Static("")
	cfg.APIOptions = append(cfg.APIOptions, c.middleware)
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	return New(awsclients.NewDynamoDB(cfg, d.URL()), "t", func() time.Time { return now }), setup, c
}

// seedConversations writes n conversations of agent aid exactly as a
// settlement creates them (head and index item), 25 items per BatchWriteItem;
// settling thousands of executions one by one on the embedded server would
// take minutes. It returns their ids.
func seedConversations(tb testing.TB, ts *TenantStore, setup *dynamodb.Client, aid string, n int) []string {
	tb.Helper()
	created := time.Date(2026, 11, 28, 11, 0, 0, 0, time.UTC)
	var reqs []types.WriteRequest
	ids := make([]string, n)
	for i := range n {
		ids[i] = bulkhead.NewID("conv")
		e := bulkhead.Execution{ID: bulkhead.NewID("exec"), AgentID: aid, ConversationID: ids[i], FinishedAt: created}
		writes := ts.settleConversation(Settlement{Execution: e, Turn: &SettledTurn{New: true, AgentID: aid, Bytes: 100, CreatedAt: created}}, 10, 100)
		if len(writes) != 2 {
			tb.Fatalf("a new conversation is %d items, want the head and its index item", len(writes))
		}
		for _, w := range writes {
			reqs = append(reqs, types.WriteRequest{PutRequest: &types.PutRequest{Item: w.Put.Item}})
		}
	}
	for len(reqs) > 0 {
		batch := reqs[:min(25, len(reqs))]
		reqs = reqs[len(batch):]
		for len(batch) > 0 {
			out, err := setup.BatchWriteItem(context.Background(), &dynamodb.BatchWriteItemInput{RequestItems: map[string][]types.WriteRequest{"t": batch}})
			if err != nil {
				tb.Fatalf("seed: %v", err)
			}
			batch = out.UnprocessedItems["t"]
		}
	}
	return ids
}

// TestAgentListCostsWhatItReturns lists one agent's conversations in a
// partition that holds 1,500 of another agent's: each page costs one Query
// and one BatchGetItem that read at most the page (plus one index item to
// know there is more), not the partition; an empty page costs one Query
// that reads nothing.
func TestAgentListCostsWhatItReturns(t *testing.T) {
	ctx := context.Background()
	s, setup, count := countedStore(t)
	ts := s.Tenant("tn_a")
	seedConversations(t, ts, setup, "agt_aaaaaaaaaaaaaaaa", 1500)
	count.take()

	page, err := ts.ListConversations(ctx, "agt_bbbbbbbbbbbbbbbb", "", 20)
	if err != nil {
		t.Fatal(err)
	}
	reqs, items := count.take()
	if len(page.Items) != 0 || page.NextCursor != "" {
		t.Fatalf("agent B's page = %+v, want empty", page)
	}
	if reqs["Query"] != 1 || reqs["BatchGetItem"] != 0 || items != 0 {
		t.Errorf("an empty page among 1,500 other conversations cost %v requests reading %d items, want 1 Query reading 0", reqs, items)
	}

	// Agent B's own conversations, listed three to a page: exactly those,
	// in id order, each page costing what it returns.
	mine := seedConversations(t, ts, setup, "agt_bbbbbbbbbbbbbbbb", 7)
	count.take()
	var got []string
	cursor := ""
	for pages := 0; ; pages++ {
		if pages > 3 {
			t.Fatal("more pages than conversations")
		}
		page, err := ts.ListConversations(ctx, "agt_bbbbbbbbbbbbbbbb", cursor, 3)
		if err != nil {
			t.Fatal(err)
		}
		reqs, items := count.take()
		if reqs["Query"] != 1 || reqs["BatchGetItem"] != 1 || items > 3+1+3 {
			t.Errorf("page %d cost %v requests reading %d items, want 1 Query and 1 BatchGetItem reading at most 7", pages, reqs, items)
		}
		for _, c := range page.Items {
			if c.AgentID != "agt_bbbbbbbbbbbbbbbb" || c.Turns != 1 || c.Bytes != 100 {
				t.Errorf("listed %+v", c)
			}
			got = append(got, c.ID)
		}
		if cursor = page.NextCursor; cursor == "" {
			break
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(slices.Sorted(slices.Values(mine))) {
		t.Errorf("listed %v, want %v", got, slices.Sorted(slices.Values(mine)))
	}
	// A cursor of the unfiltered list, or of another agent, is refused.
	all, err := ts.ListConversations(ctx, "", "", 2)
	if err != nil || all.NextCursor == "" {
		t.Fatalf("unfiltered list: %+v, %v", all, err)
	}
	if _, err := ts.ListConversations(ctx, "agt_bbbbbbbbbbbbbbbb", all.NextCursor, 2); !bulkhead.IsCode(err, bulkhead.Invalid) {
		t.Errorf("another list's cursor: %v, want Invalid", err)
	}
}

// TestConversationDeletionKeepsBytesCountedUntilDone walks a deletion: the
// marked head is hidden from reads, lists and executions but still counted;
// marking again is allowed (a retried DELETE); finishing removes the head
// and its index item and gives the bytes back exactly once.
func TestConversationDeletionKeepsBytesCountedUntilDone(t *testing.T) {
	ctx := context.Background()
	s, _, _ := countedStore(t)
	ts := s.Tenant("tn_a")
	now := s.now()
	aid := "agt_aaaaaaaaaaaaaaaa"
	quota := bulkhead.Quota{MaxRequestsPerHour: 100, MaxTokensPerMonth: 1 << 40, MaxSpendPerMonth: 1 << 40, MaxConcurrentAgents: 10, MaxStorageMB: 1}
	settle := func(eid, cid string, claim *ConversationClaim) {
		t.Helper()
		if err := ts.Admit(ctx, Admission{ExecutionID: eid, AgentID: aid, Conversation: claim, Now: now, Lease: time.Minute, Quota: quota}); err != nil {
			t.Fatal(err)
		}
		e := bulkhead.Execution{ID: eid, AgentID: aid, ConversationID: cid, Status: bulkhead.ExecCompleted, InputTokens: 1, OutputTokens: 1, StartedAt: now, FinishedAt: now}
		if err := ts.Settle(ctx, Settlement{Execution: e, Turn: &SettledTurn{New: claim == nil, AgentID: aid, Bytes: 100, CreatedAt: now}, Claimed: claim != nil}); err != nil {
			t.Fatal(err)
		}
	}
	settle("exec_1", "conv_1", nil)
	settle("exec_2", "conv_1", &ConversationClaim{ID: "conv_1", Turns: 1})
	settle("exec_3", "conv_2", nil)
	storage := func() int64 {
		t.Helper()
		u, err := ts.Counters(ctx, now)
		if err != nil {
			t.Fatal(err)
		}
		return u.StorageBytes
	}
	if got := storage(); got != 300 {
		t.Fatalf("stored bytes = %d, want 300", got)
	}

	c, err := ts.StartDeleteConversation(ctx, "conv_1")
	if err != nil || c.Bytes != 200 || c.AgentID != aid {
		t.Fatalf("start delete = %+v, %v; want the head with 200 bytes", c, err)
	}
	if _, err := ts.GetConversation(ctx, "conv_1"); !bulkhead.IsCode(err, bulkhead.NotFound) {
		t.Errorf("get while deleting: %v, want NotFound", err)
	}
	if _, err := ts.LoadExecution(ctx, aid, "conv_1"); !bulkhead.IsCode(err, bulkhead.NotFound) {
		t.Errorf("load an execution of it while deleting: %v, want NotFound", err)
	}
	if err := ts.Admit(ctx, Admission{ExecutionID: "exec_4", AgentID: aid, Conversation: &ConversationClaim{ID: "conv_1", Turns: 2},
		Now: now.Add(time.Hour), Lease: time.Minute, Quota: quota}); !bulkhead.IsCode(err, bulkhead.NotFound) {
		t.Errorf("admit a turn of it while deleting: %v, want NotFound", err)
	}
	for _, agent := range []string{"", aid} {
		page, err := ts.ListConversations(ctx, agent, "", 10)
		if err != nil || len(page.Items) != 1 || page.Items[0].ID != "conv_2" {
			t.Errorf("list (agent %q) while deleting = %+v, %v; want conv_2 only", agent, page.Items, err)
		}
	}
	if got := storage(); got != 300 {
		t.Errorf("stored bytes while deleting = %d, want 300 (still counted)", got)
	}
	// The transcript could not be removed; the DELETE is retried.
	again, err := ts.StartDeleteConversation(ctx, "conv_1")
	if err != nil || again.Bytes != 200 {
		t.Fatalf("start delete again = %+v, %v", again, err)
	}
	if err := ts.FinishDeleteConversation(ctx, again); err != nil {
		t.Fatal(err)
	}
	if err := ts.FinishDeleteConversation(ctx, c); err != nil {
		t.Errorf("finishing a finished deletion: %v, want nil", err)
	}
	if got := storage(); got != 100 {
		t.Errorf("stored bytes after delete = %d, want 100 (given back once)", got)
	}
	if _, err := getItem[convItem](ctx, s, "get", ts.pk, convSK("conv_1"), "gone"); !bulkhead.IsCode(err, bulkhead.NotFound) {
		t.Errorf("head after delete: %v, want NotFound", err)
	}
	if _, err := getItem[convItem](ctx, s, "get", ts.pk, agentConvSK(aid, "conv_1"), "gone"); !bulkhead.IsCode(err, bulkhead.NotFound) {
		t.Errorf("index item after delete: %v, want NotFound", err)
	}
	if _, err := ts.StartDeleteConversation(ctx, "conv_1"); !bulkhead.IsCode(err, bulkhead.NotFound) {
		t.Errorf("delete a deleted conversation: %v, want NotFound", err)
	}
}

// TestSettlementConversationItems pins the conversation's share of the
// settlement transaction: the index item costs one more item only in the
// execution that creates the conversation.
func TestSettlementConversationItems(t *testing.T) {
	ts := New(nil, "t", nil).Tenant("tn_a")
	e := bulkhead.Execution{ID: "exec_1", AgentID: "agt_a", ConversationID: "conv_1"}
	for _, c := range []struct {
		name string
		st   Settlement
		want int
	}{
		{"new conversation", Settlement{Execution: e, Turn: &SettledTurn{New: true, AgentID: "agt_a"}}, 2},
		{"next turn", Settlement{Execution: e, Turn: &SettledTurn{AgentID: "agt_a"}, Claimed: true}, 1},
		{"claim released without a turn (on the counter item)", Settlement{Execution: e, Claimed: true}, 0},
		{"no conversation", Settlement{Execution: e}, 0},
	} {
		if got := len(ts.settleConversation(c.st, 1, 1)); got != c.want {
			t.Errorf("%s: %d items, want %d", c.name, got, c.want)
		}
	}
}
