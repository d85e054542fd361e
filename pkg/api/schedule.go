package api

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/bulkhead-dev/bulkhead/pkg/bulkhead"
	"github.com/bulkhead-dev/bulkhead/pkg/dynamo"
)

// BillingHandler is the billing function's Lambda handler. It serves the
// billing routes (API Gateway proxy events), the frequent schedule whose
// event is {"action": ReclaimAction} (reclaim the leases of executions that
// died), and the monthly schedule: an EventBridge "Scheduled Event" closes
// the month before the event's time. A
// close that left any tenant unclosed fails the invocation, so EventBridge
// retries it; closing is idempotent.
func (a *API) BillingHandler() func(ctx context.Context, raw json.RawMessage) (any, error) {
	serve := a.Function(FnBilling)
	return func(ctx context.Context, raw json.RawMessage) (any, error) {
		var probe struct {
			HTTPMethod string `json:"httpMethod"`
			DetailType string `json:"detail-type"`
			Action     string `json:"action"`
		}
		if err := json.Unmarshal(raw, &probe); err != nil {
			return nil, fmt.Errorf("billing: undecodable event: %w", err)
		}
		switch {
		case probe.Action == ReclaimAction:
			// The stack's frequent schedule: give back what executions that
			// died without settling still hold.
			rep, err := a.ReclaimLeases(ctx, false)
			if err != nil {
				return rep, err
			}
			if rep.Reclaimed > 0 || len(rep.Failed) > 0 {
				a.log.Info("reclaimed leases", "tenants", rep.Tenants, "reclaimed", rep.Reclaimed, "failed", len(rep.Failed))
			}
			return rep, nil
		case probe.HTTPMethod != "":
			var ev events.APIGatewayProxyRequest
			if err := json.Unmarshal(raw, &ev); err != nil {
				return nil, fmt.Errorf("billing: decode API Gateway event: %w", err)
			}
			return serve(ctx, ev)
		case probe.DetailType == "Scheduled Event":
			var ev events.EventBridgeEvent
			if err := json.Unmarshal(raw, &ev); err != nil {
				return nil, fmt.Errorf("billing: decode scheduled event: %w", err)
			}
			rep, err := a.CloseMonth(dynamo.AsPlatform(ctx, bulkhead.PlatformSchedule), PreviousMonth(ev.Time))
			if err != nil {
				return nil, err
			}
			a.log.Info("monthly close", "month", rep.Month, "closed", rep.Closed, "already_closed", rep.AlreadyClosed, "failed", len(rep.Failed))
			if len(rep.Failed) > 0 {
				return rep, fmt.Errorf("billing: %d tenants not closed for %s", len(rep.Failed), rep.Month)
			}
			return rep, nil
		default:
			return nil, fmt.Errorf("billing: unknown event")
		}
	}
}

// PreviousMonth is the month before the one t falls in ("2026-11" for any
// time in December 2026).
func PreviousMonth(t time.Time) string {
	t = t.UTC()
	return bulkhead.MonthKey(time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC).AddDate(0, -1, 0))
}

// CloseMonthsDue closes the previous month if its grace has passed, then
// waits for the next month boundary (plus the grace) and closes again, until
// ctx ends: the local platform's stand-in for the monthly schedule.
func (a *API) CloseMonthsDue(ctx context.Context, wait func(context.Context, time.Duration) bool) {
	for {
		now := a.now().UTC()
		thisMonth := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)
		if !now.Before(thisMonth.Add(CloseGrace)) {
			if rep, err := a.CloseMonth(dynamo.AsPlatform(ctx, bulkhead.PlatformSchedule), PreviousMonth(now)); err != nil {
				a.log.Error("monthly close", "error", err)
			} else if rep.Closed > 0 || len(rep.Failed) > 0 {
				a.log.Info("monthly close", "month", rep.Month, "closed", rep.Closed, "failed", len(rep.Failed))
			}
		}
		next := thisMonth.AddDate(0, 1, 0).Add(CloseGrace)
		if now.Before(thisMonth.Add(CloseGrace)) {
			next = thisMonth.Add(CloseGrace)
		}
		if !wait(ctx, next.Sub(now)) {
			return
		}
	}
}
