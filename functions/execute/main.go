// Command execute is the execute Lambda function: wiring only. Its response
// streams (API Gateway response transfer mode STREAM), buffered or not.
package main

import (
	"github.com/bulkhead-dev/bulkhead/pkg/api"
	"github.com/bulkhead-dev/bulkhead/pkg/platform"
)

func main() { platform.ServeStreamingFunction(api.FnExecute) }
