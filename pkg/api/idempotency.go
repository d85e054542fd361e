package api

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/bulkhead-dev/bulkhead/pkg/bulkhead"
	"github.com/bulkhead-dev/bulkhead/pkg/dynamo"
)

// Idempotency-Key handling, with Stripe's semantics: a retry with the same
// key and the same request gets the first response again, without doing the
// work or charging again; the same key with a different request is 422; a
// retry while the first is still running is answered 409 at once, with
// Retry-After. It does not wait: a waiting retry would hold a request (in
// AWS, a Lambda invocation billed by the second) for as long as the first
// runs, and a tenant retrying in a loop could keep any number of them busy.
const (
	IdempotencyHeader = "Idempotency-Key"
	// ReplayedHeader marks a response replayed from an earlier request.
	ReplayedHeader = "Idempotent-Replayed"
	maxIdemKeyLen  = 255
	// idemLock outlasts the longest execution (the enterprise wall-time
	// ceiling plus its lease margin): a claim is only taken over from a
	// request that died.
	idemLock = 7 * time.Minute
	// idemRetryAfter is the Retry-After of a 409 idempotency_in_progress.
	idemRetryAfter = 1
)

func (a *API) serveIdempotent(ctx context.Context, ep endpoint, r *request) events.APIGatewayProxyResponse {
	key := header(r.APIGatewayProxyRequest, IdempotencyHeader)
	if len(key) > maxIdemKeyLen {
		return respondError(r.log, bulkhead.Errorf(bulkhead.Invalid, "%s must be at most %d characters", IdempotencyHeader, maxIdemKeyLen))
	}
	body, err := rawBody(r.APIGatewayProxyRequest)
	if err != nil {
		return respondError(r.log, err)
	}
	// Keys are per tenant (the store is the tenant's); the fingerprint is
	// what was asked: the route, its parameters and the exact body.
	hash := digest(key)
	fingerprint := digest(r.HTTPMethod + " " + r.Path + "\n" + string(body))
	ts := a.tenantStore(r)
	var exec *dynamo.ExecutionRef
	if ep.fn == FnExecute {
		// An execution stores its result on its usage record, in its
		// settlement: name it now, so that the key points there.
		exec = &dynamo.ExecutionRef{ID: bulkhead.NewID("exec"), StartedAt: a.now().UTC()}
	}
	claim, rec, err := ts.ClaimIdempotency(ctx, hash, fingerprint, a.now().UTC(), idemLock, exec)
	switch {
	case err != nil:
		return respondError(r.log, err)
	case claim != nil:
		return a.runClaimed(ctx, ep, r, ts, claim)
	case rec.Fingerprint != fingerprint:
		return respondError(r.log, bulkhead.Errorf(bulkhead.IdempotencyMismatch,
			"%s was already used with a different request", IdempotencyHeader))
	case rec.State == dynamo.IdemDone:
		return events.APIGatewayProxyResponse{StatusCode: rec.Status, Body: rec.Body,
			Headers: map[string]string{"Content-Type": "application/json", ReplayedHeader: "true"}}
	default:
		e := bulkhead.Errorf(bulkhead.IdempotencyInProgress, "a request with this %s is still in progress; retry later", IdempotencyHeader)
		e.RetryAfter = idemRetryAfter
		return respondError(r.log, e)
	}
}

// runClaimed serves a request holding its key. Handlers store the result in
// their own transaction, which marks the claim; if none was (the request was
// refused before it did anything, or a commit's answer was lost), the record
// is read, and the claim is released when it holds no result, so that a
// retry runs afresh.
func (a *API) runClaimed(ctx context.Context, ep endpoint, r *request, ts *dynamo.TenantStore, claim *dynamo.IdemClaim) events.APIGatewayProxyResponse {
	r.idem = claim
	body, err := ep.serve(ctx, r)
	resp := respond(ep.status, body)
	if err != nil {
		a.countRefusal(ctx, r, err)
		resp = respondError(r.log, err)
	}
	if claim.Stored() {
		return resp // the handler's transaction committed the result
	}
	bg := context.WithoutCancel(ctx)
	rec, gerr := ts.GetIdempotency(bg, claim.Hash)
	if gerr == nil && rec.Token == claim.Token && rec.State == dynamo.IdemDone {
		return resp
	}
	if err := ts.ReleaseIdempotency(bg, *claim); err != nil {
		r.log.Error("release idempotency key", "error", err)
	}
	return resp
}

// render turns a handler's outcome into the status and body of its response.
func render(log *slog.Logger, status int, body any, err error) (int, string) {
	resp := respond(status, body)
	if err != nil {
		resp = respondError(log, err)
	}
	return resp.StatusCode, resp.Body
}

func digest(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}
