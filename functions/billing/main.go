// Command billing is the billing Lambda function (its routes and the monthly
// close on a schedule): wiring only.
package main

import "github.com/bulkhead-dev/bulkhead/pkg/platform"

func main() { platform.ServeBilling() }
