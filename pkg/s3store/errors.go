package s3store

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/bulkhead-dev/bulkhead/pkg/bulkhead"
)

// translate turns an S3 error into the platform's error at the boundary, so
// no caller has to know S3's error codes. key names the object in the cause,
// for logs; it never reaches the public message.
func translate(op, key string, err error) error {
	if err == nil {
		return nil
	}
	cause := fmt.Errorf("%s: %w", key, err)
	switch {
	case hasAPICode(err, "NoSuchKey", "NotFound"):
		return &bulkhead.Error{Code: bulkhead.NotFound, Op: op, Message: "not found", Err: cause}
	case hasAPICode(err, "PreconditionFailed", "ConditionalRequestConflict") || httpStatus(err) == http.StatusPreconditionFailed:
		// ConditionalRequestConflict is real S3's answer to a conditional
		// write racing another one on the same key: the same conflict.
		return &bulkhead.Error{Code: bulkhead.Conflict, Op: op, Message: "already exists", Err: cause}
	default:
		return &bulkhead.Error{Code: bulkhead.Unavailable, Op: op, Message: "object storage unavailable", Err: cause}
	}
}

// hasAPICode reports whether err carries one of the S3 error codes.
func hasAPICode(err error, codes ...string) bool {
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

// httpStatus returns the HTTP status of a failed S3 response, or 0.
func httpStatus(err error) int {
	var respErr *smithyhttp.ResponseError
	if errors.As(err, &respErr) {
		return respErr.HTTPStatusCode()
	}
	return 0
}
