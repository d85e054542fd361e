package api

import "strconv"

// memoryMB is the memory, in MB, of each function's Lambda configuration:
// the stack (infra/) deploys it, the cost model (scripts/cost) prices it, and
// TestFunctionMemory (pkg/platform) holds it to the functions' measured peak
// resident memory. Lambda gives CPU in proportion to memory (1,769 MB is one
// vCPU) and bills each second of a run at this size, model wait included.
//
// Each is the smallest of 128, 256 and 512 MB that holds the function's peak
// under half its memory and its mean CPU per invocation under about 50 ms of
// wall time at its share of a vCPU. Every function peaks near 40 MB, so CPU
// decides: usage and billing 256 MB (about 4 ms of CPU), the others 128 MB.
// Execute is the exception: most of its run is spent waiting for a model, and
// every second of that wait is billed at this size, so it gets 256 MB (its
// 9 ms of CPU take about 65 ms there, 33 ms at 512 MB) and each second of
// model wait costs half what it would at 512 MB.
var memoryMB = map[string]int{
	FnAuthorizer: 128,
	FnHealth:     128,
	FnAgents:     128,
	FnExecute:    256,
	FnUsage:      256,
	FnBilling:    256,
	FnKeys:       128,
	FnAdmin:      128,
}

// MemoryMB returns the memory, in MB, the named function (an Fn* constant)
// is deployed with, or 0 for a name that is no function.
func MemoryMB(fn string) int { return memoryMB[fn] }

// GoMemLimit returns the GOMEMLIMIT the named function runs with: 80% of its
// memory, so that the Go collector works harder before the process nears
// Lambda's limit, leaving room for what the Go runtime does not count.
// It is "" for a name that is no function.
func GoMemLimit(fn string) string {
	mb := memoryMB[fn]
	if mb == 0 {
		return ""
	}
	return strconv.Itoa(mb*8/10) + "MiB"
}
