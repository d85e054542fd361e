package platform

import (
	"context"
	"errors"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/bulkhead-dev/bulkhead/pkg/metrics"
)

// throttlingCodes are the error codes with which DynamoDB and S3 refuse a
// request for load: the store's fault as far as the platform is concerned,
// though AWS answers them with a 4xx.
var throttlingCodes = map[string]bool{
	"ThrottlingException":                    true,
	"ProvisionedThroughputExceededException": true,
	"RequestLimitExceeded":                   true,
	"SlowDown":                               true,
}

// countStoreErrors makes every client built from cfg count, as StoreErrors,
// each call that failed for the store's reason after the SDK's retries: a
// server error, throttling, a timeout, or no answer at all. A failed
// condition, a cancelled transaction, a missing item or a bad request is the
// caller's answer, not a store error, and is not counted; nor is a call the
// caller cancelled. The count sits in the client, so it sees every store
// call (the authorizer's, a settlement retried in the background), not only
// those that ended a request with a 5xx.
func countStoreErrors(cfg *aws.Config, m *metrics.Emitter) {
	if m == nil {
		return
	}
	// Added after the operation's own Initialize middlewares (the SDK applies
	// APIOptions last), so the service and operation names are in ctx.
	count := middleware.InitializeMiddlewareFunc("BulkheadStoreErrors", func(ctx context.Context, in middleware.InitializeInput,
		next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
		out, md, err := next.HandleInitialize(ctx, in)
		if code, ok := storeErrorCode(err); ok {
			m.Emit(map[string]float64{metrics.StoreErrors: 1}, [][]string{{}, {"service"}}, map[string]any{
				"service": awsmiddleware.GetServiceID(ctx), "operation": awsmiddleware.GetOperationName(ctx), "code": code})
		}
		return out, md, err
	})
	cfg.APIOptions = append(cfg.APIOptions[:len(cfg.APIOptions):len(cfg.APIOptions)], func(s *middleware.Stack) error {
		return s.Initialize.Add(count, middleware.After)
	})
}

// storeErrorCode says whether err is the store's failure, and names it: the
// service's error code, Timeout, or Unreachable when no answer came.
func storeErrorCode(err error) (string, bool) {
	switch {
	case err == nil, errors.Is(err, context.Canceled):
		return "", false
	case errors.Is(err, context.DeadlineExceeded):
		return "Timeout", true
	}
	var resp *smithyhttp.ResponseError
	serverStatus := errors.As(err, &resp) && resp.HTTPStatusCode() >= 500
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		code := apiErr.ErrorCode()
		return code, serverStatus || apiErr.ErrorFault() == smithy.FaultServer || throttlingCodes[code]
	}
	if resp != nil {
		// An answer the SDK could not read as a service error.
		return "HTTP" + strconv.Itoa(resp.HTTPStatusCode()), serverStatus
	}
	// No HTTP answer: refused, reset or unresolvable. (An invalid parameter
	// the SDK refuses before sending is the caller's error.)
	var invalid smithy.InvalidParamsError
	if errors.As(err, &invalid) {
		return "", false
	}
	return "Unreachable", true
}
