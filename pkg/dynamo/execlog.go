package dynamo

import (
	"bytes"
	"compress/flate"
	"context"
	"encoding/json"
	"io"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/bulkhead-dev/bulkhead/pkg/bulkhead"
)

// attrLog is the usage record's attribute holding the execution's log:
// compact JSON (one-letter names, which the log repeats at every step),
// deflated. It rides in the settlement's record item, so keeping a log costs
// no request of its own, only the record's extra bytes; those bytes are
// added to the tenant's storage counters in the same transaction.
const attrLog = "log"

// logStepRec is a log step as stored.
type logStepRec struct {
	Kind       string `json:"k"`
	OffsetMS   int64  `json:"t,omitempty"`
	DurationMS int64  `json:"d,omitempty"`
	Status     string `json:"s,omitempty"`
	Provider   string `json:"p,omitempty"`
	Model      string `json:"m,omitempty"`
	In         int64  `json:"i,omitempty"`
	Out        int64  `json:"o,omitempty"`
	Stop       string `json:"r,omitempty"`
	Tool       string `json:"n,omitempty"`
	CallID     string `json:"c,omitempty"`
	HTTPStatus int64  `json:"h,omitempty"`
	ErrorClass string `json:"e,omitempty"`
	Code       string `json:"x,omitempty"`
	Input      string `json:"ti,omitempty"`
	Output     string `json:"to,omitempty"`
}

// logRec is a log as stored: its steps, and how many were dropped between
// the first and the last ones to keep it within MaxExecLogBytes.
type logRec struct {
	Steps   []logStepRec `json:"s"`
	Dropped int64        `json:"x,omitempty"`
}

func stepRec(s bulkhead.LogStep) logStepRec {
	return logStepRec{Kind: s.Kind, OffsetMS: s.OffsetMS, DurationMS: s.DurationMS, Status: s.Status, Provider: s.Provider, Model: s.Model,
		In: s.InputTokens, Out: s.OutputTokens, Stop: s.StopReason, Tool: s.Tool, CallID: s.CallID, HTTPStatus: s.HTTPStatus,
		ErrorClass: s.ErrorClass, Code: s.Code, Input: s.Input, Output: s.Output}
}

func (r logStepRec) step() bulkhead.LogStep {
	return bulkhead.LogStep{Kind: r.Kind, OffsetMS: r.OffsetMS, DurationMS: r.DurationMS, Status: r.Status, Provider: r.Provider, Model: r.Model,
		InputTokens: r.In, OutputTokens: r.Out, StopReason: r.Stop, Tool: r.Tool, CallID: r.CallID, HTTPStatus: r.HTTPStatus,
		ErrorClass: r.ErrorClass, Code: r.Code, Input: r.Input, Output: r.Output}
}

// encodeLog is a log's stored form, at most max bytes: when all its steps do
// not fit, the middle ones are dropped (the first steps say how it began,
// the last ones how it ended) and their number kept. Nil when there are no
// steps.
func encodeLog(steps []bulkhead.LogStep, max int) ([]byte, error) {
	if len(steps) == 0 {
		return nil, nil
	}
	recs := make([]logStepRec, len(steps))
	for i, s := range steps {
		recs[i] = stepRec(s)
	}
	// keep(k) is the log with k steps: the first k/2 and the last k-k/2.
	keep := func(k int) ([]byte, error) {
		rec := logRec{Steps: recs}
		if k < len(recs) {
			head := k / 2
			rec.Steps = append(append([]logStepRec{}, recs[:head]...), recs[len(recs)-(k-head):]...)
			rec.Dropped = int64(len(recs) - k)
		}
		return deflateJSON(rec)
	}
	b, err := keep(len(recs))
	if err != nil || len(b) <= max {
		return b, err
	}
	// The size grows with the steps kept: the most that fit is searched for.
	lo, hi := 1, len(recs)-1 // hi steps may fit; len(recs) do not
	var best []byte
	for lo <= hi {
		mid := (lo + hi) / 2
		b, err := keep(mid)
		if err != nil {
			return nil, err
		}
		if len(b) <= max {
			best, lo = b, mid+1
		} else {
			hi = mid - 1
		}
	}
	if best == nil {
		// Not even the last step fits (a content-heavy one): it is kept
		// without its content.
		last := recs[len(recs)-1]
		last.Input, last.Output = "", ""
		return deflateJSON(logRec{Steps: []logStepRec{last}, Dropped: int64(len(recs) - 1)})
	}
	return best, nil
}

func deflateJSON(v any) ([]byte, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return deflate(raw)
}

// decodeLog reads a stored log into l.
func decodeLog(b []byte, l *bulkhead.ExecutionLog) error {
	raw, err := io.ReadAll(io.LimitReader(flate.NewReader(bytes.NewReader(b)), 1<<20))
	if err != nil {
		return err
	}
	var rec logRec
	if err := json.Unmarshal(raw, &rec); err != nil {
		return err
	}
	l.Steps = make([]bulkhead.LogStep, len(rec.Steps))
	for i, s := range rec.Steps {
		l.Steps[i] = s.step()
	}
	l.Truncated, l.Dropped = rec.Dropped > 0, rec.Dropped
	return nil
}

// logAttr is the record's log attribute and its size, counted as stored
// bytes; nil when the execution has no steps.
func logAttr(steps []bulkhead.LogStep) (types.AttributeValue, int64, error) {
	b, err := encodeLog(steps, bulkhead.MaxExecLogBytes)
	if err != nil || b == nil {
		return nil, 0, err
	}
	// The attribute's name is stored with it.
	return &types.AttributeValueMemberB{Value: b}, int64(len(b) + len(attrLog)), nil
}

// ExecutionLog reads the log of one of this tenant's settled executions,
// from its usage record, with StoredBytes the bytes it holds against the
// storage quota. A record settled without a log (before logs were kept) has
// no steps. Errors: NotFound (no such execution of this tenant, or not
// settled yet), Internal, Unavailable.
func (t *TenantStore) ExecutionLog(ctx context.Context, executionID string) (l bulkhead.ExecutionLog, storedBytes int64, err error) {
	const op = "get execution log"
	f := &filterExpr{expr: "execution_id = :eid", values: map[string]types.AttributeValue{":eid": str(executionID)}}
	cursor := ""
	for {
		items, next, err := t.s.queryPage(ctx, op, t.pk, prefixExec, cursor, bulkhead.MaxPageSize, f)
		if err != nil {
			return l, 0, err
		}
		for _, it := range items {
			if strAttr(it, "execution_id") != executionID {
				continue
			}
			l = bulkhead.ExecutionLog{ExecutionID: executionID, AgentID: strAttr(it, "agent_id"), Status: strAttr(it, "status")}
			b, _ := it[attrLog].(*types.AttributeValueMemberB)
			if b == nil {
				return l, 0, nil
			}
			if err := decodeLog(b.Value, &l); err != nil {
				return l, 0, &bulkhead.Error{Code: bulkhead.Internal, Op: op, Message: "unreadable log of execution " + executionID, Err: err}
			}
			return l, int64(len(b.Value) + len(attrLog)), nil
		}
		if cursor = next; cursor == "" {
			return l, 0, bulkhead.Errorf(bulkhead.NotFound, "execution %s not found", executionID)
		}
	}
}
