package dynamo_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/smithy-go/middleware"

	"github.com/bulkhead-dev/bulkhead/pkg/awsclients"
	"github.com/bulkhead-dev/bulkhead/pkg/bulkhead"
	"github.com/bulkhead-dev/bulkhead/pkg/dynamo"
	"github.com/bulkhead-dev/bulkhead/pkg/embedded"
)

// opCounter counts the DynamoDB operations a real SDK client sends.
type opCounter struct {
	mu  sync.Mutex
	ops []string
}

func (c *opCounter) take() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.ops
	c.ops = nil
	return out
}

// mustCountingStore is mustStore whose client counts its operations.
func mustCountingStore(tb testing.TB) (*dynamo.Store, *opCounter) {
	tb.Helper()
	d, err := embedded.StartDynamoDB(context.Background(), embedded.DynamoDBOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = d.Close(context.Background()) })
	c := &opCounter{}
	count := middleware.InitializeMiddlewareFunc("countOps", func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
		c.mu.Lock()
		c.ops = append(c.ops, awsmiddleware.GetOperationName(ctx))
		c.mu.Unlock()
		return next.HandleInitialize(ctx, in)
	})
	client := dynamodb.NewFromConfig(awsclients.Static(""), func(o *dynamodb.Options) {
		o.BaseEndpoint = aws.String(d.URL())
		o.DisableValidateResponseChecksum = true
		o.APIOptions = append(o.APIOptions, func(s *middleware.Stack) error { return s.Initialize.Add(count, middleware.After) })
	})
	if err := dynamo.CreateTable(context.Background(), client, "t"); err != nil {
		tb.Fatal(err)
	}
	c.take()
	return dynamo.New(client, "t", func() time.Time { return t0 }), c
}

func sampleLog() []bulkhead.LogStep {
	return []bulkhead.LogStep{
		{Kind: bulkhead.LogStepModel, DurationMS: 120, Status: bulkhead.LogStatusOK, Provider: "offline", Model: bulkhead.DefaultModel,
			InputTokens: 10, OutputTokens: 3, StopReason: bulkhead.LogStopToolUse},
		{Kind: bulkhead.LogStepTool, OffsetMS: 120, DurationMS: 40, Status: bulkhead.LogStatusError, Tool: "lookup", CallID: "call_1",
			HTTPStatus: 503, ErrorClass: bulkhead.ToolErrHTTPStatus},
		{Kind: bulkhead.LogStepModel, OffsetMS: 160, DurationMS: 90, Status: bulkhead.LogStatusOK, Provider: "offline", Model: bulkhead.DefaultModel,
			InputTokens: 20, OutputTokens: 5, StopReason: bulkhead.LogStopEnd},
		{Kind: bulkhead.LogStepEnd, OffsetMS: 250, Status: bulkhead.LogStatusOK, Code: bulkhead.ExecCompleted},
	}
}

// TestSettlementStoresTheLog: the log rides in the settlement's one
// transaction (no request of its own), reads back as it was written, and
// its bytes are counted as stored, like the turn's.
func TestSettlementStoresTheLog(t *testing.T) {
	ctx := context.Background()
	s, ops := mustCountingStore(t)
	ts := s.Tenant("tn_a")
	res := dynamo.Reservation{Tokens: 1000, Spend: 5000, Bytes: 4096 + bulkhead.MaxExecLogBytes + 64}
	if err := ts.Admit(ctx, dynamo.Admission{ExecutionID: "exec_1", Now: t0, Lease: time.Minute, Quota: bigQuota, Reserve: res}); err != nil {
		t.Fatal(err)
	}
	ops.take()
	st := dynamo.Settlement{Execution: exec("exec_1", "conv_1", 30, 8), Reserved: res,
		Turn: &dynamo.SettledTurn{New: true, AgentID: "agt_a", Bytes: 100, CreatedAt: t0}, Log: sampleLog()}
	if err := ts.Settle(ctx, st); err != nil {
		t.Fatal(err)
	}
	if got := ops.take(); strings.Join(got, ",") != "TransactWriteItems" {
		t.Errorf("the settlement sent %q, want one TransactWriteItems", got)
	}
	l, stored, err := ts.ExecutionLog(ctx, "exec_1")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(l.Steps, sampleLog()) || l.Truncated || l.Dropped != 0 || l.AgentID != "agt_a" || l.Status != bulkhead.ExecCompleted {
		t.Errorf("log read back %+v, want %+v", l, sampleLog())
	}
	// A typical log is small: it keeps a common usage record within one KB.
	if stored <= 0 || stored > 200 {
		t.Errorf("stored log of 4 steps: %d bytes, want 1 to 200", stored)
	}
	u, err := ts.Counters(ctx, t0)
	if err != nil {
		t.Fatal(err)
	}
	if u.StorageBytes != 100+stored || u.StorageCommitted != u.StorageBytes {
		t.Errorf("storage %d stored, %d committed; want the turn's 100 + the log's %d, and nothing left reserved", u.StorageBytes, u.StorageCommitted, stored)
	}
	// Settling again changes nothing: the log is not counted twice.
	if err := ts.Settle(ctx, st); err != nil {
		t.Fatal(err)
	}
	if again, _ := ts.Counters(ctx, t0); again != u {
		t.Errorf("a second settle moved the counters: %+v -> %+v", u, again)
	}
	// A log is read only from its own tenant's partition.
	if _, _, err := s.Tenant("tn_b").ExecutionLog(ctx, "exec_1"); !bulkhead.IsCode(err, bulkhead.NotFound) {
		t.Errorf("another tenant's log: %v, want not_found", err)
	}
	if _, _, err := ts.ExecutionLog(ctx, "exec_2"); !bulkhead.IsCode(err, bulkhead.NotFound) {
		t.Errorf("a missing log: %v, want not_found", err)
	}
}

// TestExecutionLogIsCapped: a log too large to store whole keeps its first
// and last steps within MaxExecLogBytes, and says how many it dropped.
func TestExecutionLogIsCapped(t *testing.T) {
	ctx := context.Background()
	ts := mustStore(t).Tenant("tn_a")
	var steps []bulkhead.LogStep
	for i := range 400 {
		steps = append(steps, bulkhead.LogStep{Kind: bulkhead.LogStepTool, OffsetMS: int64(i), Status: bulkhead.LogStatusOK,
			Tool: fmt.Sprintf("tool_%d", i), CallID: fmt.Sprintf("call_%d", i), Input: fmt.Sprintf("%x", sha256.Sum256([]byte{byte(i), byte(i >> 8)}))})
	}
	steps = append(steps, bulkhead.LogStep{Kind: bulkhead.LogStepGuard, OffsetMS: 500, Status: bulkhead.LogStatusRefused, Code: bulkhead.ExecMaxSteps})
	st := dynamo.Settlement{Execution: exec("exec_1", "", 30, 8), Log: steps}
	if err := ts.Settle(ctx, st); err != nil {
		t.Fatal(err)
	}
	l, stored, err := ts.ExecutionLog(ctx, "exec_1")
	if err != nil {
		t.Fatal(err)
	}
	if stored > int64(bulkhead.MaxExecLogBytes+len("log")) || stored < bulkhead.MaxExecLogBytes/2 {
		t.Errorf("stored %d bytes, want at most %d and most of it used", stored, bulkhead.MaxExecLogBytes)
	}
	n := len(l.Steps)
	if !l.Truncated || n < 2 || n >= len(steps) || l.Dropped != int64(len(steps)-n) {
		t.Fatalf("truncated %v, %d steps kept, %d dropped of %d", l.Truncated, n, l.Dropped, len(steps))
	}
	if !reflect.DeepEqual(l.Steps[0], steps[0]) || !reflect.DeepEqual(l.Steps[n-1], steps[len(steps)-1]) ||
		!reflect.DeepEqual(l.Steps[n-2], steps[len(steps)-2]) {
		t.Errorf("kept %+v ... %+v, want the first and the last steps", l.Steps[0], l.Steps[n-1])
	}
	u, _ := ts.Counters(ctx, t0)
	if u.StorageBytes != stored {
		t.Errorf("storage_bytes %d, want the log's %d", u.StorageBytes, stored)
	}
}

// TestSettlementWithoutStepsStoresNoLog: a settlement with no steps (as
// before logs were kept) has an empty log and counts no bytes for it.
func TestSettlementWithoutStepsStoresNoLog(t *testing.T) {
	ctx := context.Background()
	ts := mustStore(t).Tenant("tn_a")
	if err := ts.Settle(ctx, dynamo.Settlement{Execution: exec("exec_1", "", 3, 1)}); err != nil {
		t.Fatal(err)
	}
	l, stored, err := ts.ExecutionLog(ctx, "exec_1")
	if err != nil || len(l.Steps) != 0 || stored != 0 || l.Truncated {
		t.Errorf("log %+v, %d bytes, %v; want none", l, stored, err)
	}
	if u, _ := ts.Counters(ctx, t0); u.StorageBytes != 0 {
		t.Errorf("storage_bytes %d, want 0", u.StorageBytes)
	}
}
