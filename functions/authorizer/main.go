// Command authorizer is the API Gateway Lambda authorizer: wiring only.
package main

import "github.com/bulkhead-dev/bulkhead/pkg/platform"

func main() { platform.ServeAuthorizer() }
