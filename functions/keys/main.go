// Command keys is the keys Lambda function: wiring only.
package main

import (
	"github.com/bulkhead-dev/bulkhead/pkg/api"
	"github.com/bulkhead-dev/bulkhead/pkg/platform"
)

func main() { platform.ServeFunction(api.FnKeys) }
