package client

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"time"
)

// Error is an error answer of the API: {"error": {"code", "message", ...}}.
type Error struct {
	// Status is the HTTP status.
	Status int
	// Code is the API's error code ("rate_limited", "not_found", ...).
	Code    string
	Message string
	// QuotaType, Limit, Used, Committed and ResetsAt describe a quota
	// refusal (429 rate_limited, quota_exceeded, concurrency_limited). Limit,
	// Used and Committed are numbers of requests or tokens, or USD for spend.
	QuotaType string
	Limit     json.Number
	Used      json.Number
	Committed json.Number
	ResetsAt  time.Time
	// RetryAfter is the Retry-After header's wait (0 when absent).
	RetryAfter time.Duration
	// Fields holds every field of the error object, those above included
	// ("field" names a rejected request field, "open_until" ends an open
	// circuit breaker, ...).
	Fields map[string]any
	// Replayed is true when the answer was replayed for a repeated
	// Idempotency-Key: the first request's answer, final for that key.
	Replayed bool
	// Method and Path are the request's.
	Method, Path string
}

func (e *Error) Error() string {
	s := fmt.Sprintf("bulkhead: %s %s: %d %s: %s", e.Method, e.Path, e.Status, e.Code, e.Message)
	if e.RetryAfter > 0 {
		s += fmt.Sprintf(" (retry after %s)", e.RetryAfter)
	}
	return s
}

// IsCode tells whether err is (or wraps) an *Error with that code.
func IsCode(err error, code string) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == code
}

// IsNotFound tells whether err is the API's 404 not_found.
func IsNotFound(err error) bool { return IsCode(err, "not_found") }

// AsError returns err's *Error, or nil when it is not an API error.
func AsError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return nil
}

// readError reads an error answer and closes its body.
func readError(resp *http.Response, method, path string) *Error {
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	e := parseError(raw)
	e.Status, e.Method, e.Path = resp.StatusCode, method, path
	if e.Code == "" {
		e.Code = http.StatusText(resp.StatusCode)
	}
	e.RetryAfter = parseRetryAfter(resp.Header.Get("Retry-After"))
	e.Replayed = resp.Header.Get(ReplayedHeader) == "true"
	return e
}

// parseError reads the error object of a body (an SSE error event's data too).
func parseError(raw []byte) *Error {
	e := &Error{Fields: map[string]any{}}
	var body struct {
		Error map[string]json.RawMessage `json:"error"`
	}
	if err := json.Unmarshal(raw, &body); err != nil || body.Error == nil {
		e.Message = string(raw)
		return e
	}
	for k, v := range body.Error {
		var x any
		dec := json.NewDecoder(bytes.NewReader(v))
		dec.UseNumber()
		if dec.Decode(&x) == nil {
			e.Fields[k] = x
		}
	}
	str := func(k string) string { s, _ := e.Fields[k].(string); return s }
	num := func(k string) json.Number { n, _ := e.Fields[k].(json.Number); return n }
	e.Code, e.Message, e.QuotaType = str("code"), str("message"), str("quota_type")
	e.Limit, e.Used, e.Committed = num("limit"), num("used"), num("committed")
	if t, err := time.Parse(time.RFC3339, str("resets_at")); err == nil {
		e.ResetsAt = t
	}
	return e
}

func parseRetryAfter(v string) time.Duration {
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil && n >= 0 {
		// A breaker opened by hand stays open for ever: its Retry-After is
		// centuries, more than a Duration holds.
		if n > int64(math.MaxInt64/time.Second) {
			return math.MaxInt64
		}
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(time.Until(t), 0)
	}
	return 0
}
