// Command execute is the execute Lambda function: wiring only.
package main

import (
	"github.com/bulkhead-dev/bulkhead/pkg/api"
	"github.com/bulkhead-dev/bulkhead/pkg/platform"
)

func main() { platform.ServeFunction(api.FnExecute) }
