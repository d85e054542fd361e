package bulkhead

import (
	"errors"
	"fmt"
	"net/http"
)

// Code classifies an error; each code maps to exactly one HTTP status.
type Code string

// The error codes of the public API.
const (
	Invalid         Code = "invalid_request"
	Unauthenticated Code = "unauthenticated"
	Forbidden       Code = "forbidden"
	NotFound        Code = "not_found"
	Conflict        Code = "conflict"
	TooLarge        Code = "too_large"
	QuotaExceeded   Code = "quota_exceeded"
	RateLimited     Code = "rate_limited"
	Unavailable     Code = "unavailable"
	Internal        Code = "internal"
	// ConcurrencyLimited: the tenant's concurrent executions are all in use (429).
	ConcurrencyLimited Code = "concurrency_limited"
	// CircuitOpen: the tenant's circuit breaker is open (503).
	CircuitOpen Code = "circuit_open"
	// DepthExceeded: agents invoking agents went deeper than allowed (403).
	DepthExceeded Code = "depth_limit_exceeded"
	// IdempotencyMismatch: an Idempotency-Key reused with a different request (422).
	IdempotencyMismatch Code = "idempotency_mismatch"
	// IdempotencyInProgress: the first request with this key is still running (409).
	IdempotencyInProgress Code = "idempotency_in_progress"
	// ModelError: the model provider failed or refused (502).
	ModelError Code = "model_error"
	// ModelTimeout: the model provider did not answer in time (504).
	ModelTimeout Code = "model_timeout"
	// ModelUnavailable: every model the agent may use is failing or its
	// circuit is open (503, with Retry-After).
	ModelUnavailable Code = "model_unavailable"
	// ModelNotAllowed: the tenant's tier may not use the model (403).
	ModelNotAllowed Code = "model_not_allowed"
	// Throttled: a model provider refused for its own rate limit. Providers
	// return it (or Unavailable) for what is worth retrying; Invalid for a
	// request they refused.
	Throttled Code = "throttled"
)

// statusByCode is the one table that maps error codes to HTTP statuses.
var statusByCode = map[Code]int{
	Invalid:               http.StatusBadRequest,
	Unauthenticated:       http.StatusUnauthorized,
	Forbidden:             http.StatusForbidden,
	NotFound:              http.StatusNotFound,
	Conflict:              http.StatusConflict,
	TooLarge:              http.StatusRequestEntityTooLarge,
	QuotaExceeded:         http.StatusTooManyRequests,
	RateLimited:           http.StatusTooManyRequests,
	Unavailable:           http.StatusServiceUnavailable,
	Internal:              http.StatusInternalServerError,
	ConcurrencyLimited:    http.StatusTooManyRequests,
	CircuitOpen:           http.StatusServiceUnavailable,
	DepthExceeded:         http.StatusForbidden,
	IdempotencyMismatch:   http.StatusUnprocessableEntity,
	IdempotencyInProgress: http.StatusConflict,
	ModelError:            http.StatusBadGateway,
	ModelTimeout:          http.StatusGatewayTimeout,
	ModelUnavailable:      http.StatusServiceUnavailable,
	ModelNotAllowed:       http.StatusForbidden,
	Throttled:             http.StatusServiceUnavailable,
}

// HTTPStatus returns the HTTP status for a code (500 for unknown codes).
func (c Code) HTTPStatus() int {
	if s, ok := statusByCode[c]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// Error is the platform's error: a code, the operation that failed, a message
// safe to show to the caller, extra fields for the error body, and the cause.
type Error struct {
	Code    Code
	Op      string
	Message string
	// Fields are added to the public error body (for example the quota's limit).
	Fields map[string]any
	// RetryAfter, when positive, becomes the Retry-After header (seconds).
	RetryAfter int
	Err        error
}

// Error renders the error for logs; the public body is built by the API layer.
func (e *Error) Error() string {
	msg := e.Message
	if msg == "" {
		msg = string(e.Code)
	}
	if e.Op != "" {
		msg = e.Op + ": " + msg
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Errorf builds an Error with a formatted public message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the first *Error in err's chain, Internal for
// any other non-nil error, and "" for nil.
func ErrorCode(err error) Code {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return Internal
}

// IsCode reports whether err carries the given code.
func IsCode(err error, code Code) bool { return ErrorCode(err) == code }

// AsError returns the first *Error in err's chain, or nil.
func AsError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return nil
}
