package platform

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws/arn"
)

// Environment of a Lambda function that the platform reads.
const (
	// EnvTenantRoleARN is the tenant-access role the data-plane functions
	// assume per tenant (pkg/tenantcreds); unset or empty, a function keeps
	// its own credentials.
	EnvTenantRoleARN = "BULKHEAD_TENANT_ROLE_ARN"
	// EnvRuntimeAPI is the host:port of the Lambda Runtime API, set by Lambda
	// and by sam local.
	EnvRuntimeAPI = "AWS_LAMBDA_RUNTIME_API"
	// EnvSAMLocal is "true" inside a function run by sam local.
	EnvSAMLocal = "AWS_SAM_LOCAL"
)

// samAccountID is the account sam local puts in the ARNs it makes up.
const samAccountID = "123456789012"

// lambdaGetenv wraps getenv for a function's start-up. Under sam local, a
// variable the stack sets to a resource's ARN (Fn::GetAtt) gets a made-up
// Lambda function ARN, arn:<partition>:lambda:<region>:123456789012:function:<logical id>,
// whatever the resource is: such a value reads as unset, as if no resource
// were configured. Nothing changes outside sam local: in AWS the stack sets
// real ARNs, and a value that is not one still fails validation.
func lambdaGetenv(getenv func(string) string) func(string) string {
	if getenv(EnvSAMLocal) != "true" {
		return getenv
	}
	return func(key string) string {
		v := getenv(key)
		if isSAMPlaceholderARN(v) {
			return ""
		}
		return v
	}
}

// isSAMPlaceholderARN reports whether v is an ARN sam local made up for a
// reference it cannot resolve.
func isSAMPlaceholderARN(v string) bool {
	a, err := arn.Parse(v)
	return err == nil && a.Service == "lambda" && a.AccountID == samAccountID && strings.HasPrefix(a.Resource, "function:")
}

// initErrorType is the error type a failed start-up reports, in the Runtime
// API's Category.Reason form.
const initErrorType = "Runtime.InitError"

// reportInitError tells the Runtime API at runtimeAPI (host:port) that the
// function could not start, and why. Lambda then fails the invocation with
// that message; the runtime is expected to exit.
func reportInitError(ctx context.Context, runtimeAPI string, cause error) error {
	body, err := json.Marshal(struct {
		ErrorMessage string `json:"errorMessage"`
		ErrorType    string `json:"errorType"`
	}{cause.Error(), initErrorType})
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+runtimeAPI+"/2018-06-01/runtime/init/error", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Lambda-Runtime-Function-Error-Type", initErrorType)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("runtime API answered the init error with %s", resp.Status)
	}
	return nil
}
