// Command usage is the usage Lambda function: wiring only.
package main

import (
	"github.com/bulkhead-dev/bulkhead/pkg/api"
	"github.com/bulkhead-dev/bulkhead/pkg/platform"
)

func main() { platform.ServeFunction(api.FnUsage) }
