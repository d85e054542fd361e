package apigw

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/service/apigateway/types"
	"github.com/aws/smithy-go"

	"github.com/bulkhead-dev/bulkhead/pkg/bulkhead"
)

// translate turns an API Gateway error into the platform's error at the
// boundary, so no caller has to know API Gateway's exception names. what names
// the key or plan in the cause, for logs; it never reaches the public message.
func translate(op, what string, err error) error {
	if err == nil {
		return nil
	}
	cause := fmt.Errorf("%s: %w", what, err)
	var (
		notFound *types.NotFoundException
		conflict *types.ConflictException
		tooMany  *types.TooManyRequestsException
		limit    *types.LimitExceededException
	)
	switch {
	case errors.As(err, &notFound):
		return &bulkhead.Error{Code: bulkhead.NotFound, Op: op, Message: "API Gateway key or usage plan not found", Err: cause}
	case errors.As(err, &conflict):
		return &bulkhead.Error{Code: bulkhead.Conflict, Op: op, Message: "conflicting API Gateway change", Err: cause}
	case errors.As(err, &tooMany):
		// The SDK's retryer has already retried it: the account is being
		// throttled for longer than one call should wait, which is API
		// Gateway being unavailable to us, not the caller exceeding a limit.
		return &bulkhead.Error{Code: bulkhead.Unavailable, Op: op, Message: "API Gateway is throttling requests, retry later", RetryAfter: retryAfter(tooMany.RetryAfterSeconds), Err: cause}
	case errors.As(err, &limit):
		return &bulkhead.Error{Code: bulkhead.Unavailable, Op: op, Message: "API Gateway is throttling requests, retry later", RetryAfter: retryAfter(limit.RetryAfterSeconds), Err: cause}
	default:
		return &bulkhead.Error{Code: bulkhead.Unavailable, Op: op, Message: "API Gateway unavailable", Err: cause}
	}
}

// retryAfter reads API Gateway's Retry-After header (seconds), 0 when absent
// or malformed.
func retryAfter(s *string) int {
	if s == nil {
		return 0
	}
	n, err := strconv.Atoi(*s)
	if err != nil || n < 0 {
		return 0
	}
	return n
}

// isAPICode reports whether err is an API Gateway error with one of the codes.
func isAPICode(err error, codes ...string) bool {
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) {
		return false
	}
	for _, c := range codes {
		if apiErr.ErrorCode() == c {
			return true
		}
	}
	return false
}

// answered reports whether API Gateway answered the request with an error,
// as opposed to the request failing in a way (a timeout, a cancelled context,
// a broken connection) that leaves unknown whether it took effect.
func answered(err error) bool {
	var apiErr smithy.APIError
	return errors.As(err, &apiErr)
}

// counterError wraps a failure of the KeyCounter; a *bulkhead.Error from it
// (a DynamoDB adapter's translation) keeps its code.
func counterError(op string, err error) error {
	if bulkhead.AsError(err) != nil {
		return fmt.Errorf("%s: tenant key counter: %w", op, err)
	}
	return &bulkhead.Error{Code: bulkhead.Unavailable, Op: op, Message: "tenant key counter unavailable", Err: err}
}
