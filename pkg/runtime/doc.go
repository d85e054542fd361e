// Package runtime runs one agent execution: admission, the model call, the
// transcript turn and the exactly-once settlement of its usage.
package runtime
