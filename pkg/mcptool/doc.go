// Package mcptool offers the tools of a tenant's MCP servers to the model.
//
// A tenant registers an MCP server by a name of its own, a Streamable HTTP
// URL and optional headers (the server's own authentication, for example an
// Authorization header). Its tools are offered to the model as
// <server>__<tool>; ToolName and SplitToolName define that naming and its
// rules.
//
// The package speaks MCP with the official Go SDK but never builds an HTTP
// client of its own: every request goes through the *http.Client its caller
// passes, which carries the platform's SSRF guard, timeouts and size caps.
// The server's headers are added by a RoundTripper wrapped around that
// client's transport, on requests to the server's own origin only, so a
// redirect elsewhere never carries them.
//
// Each ListTools or CallTool opens an MCP session, does its work and closes
// it. That costs an initialization round trip per call, but holds no state
// between invocations, which is what a Lambda function wants; a per-process
// session cache keyed by (tenant, server) is a later optimisation.
//
// Header values can hold secrets. They never appear in an error: errors are
// built by this package from what it observed (connection failure, HTTP
// status, deadline, size), and any text that comes from the server or the
// network stack is redacted first. Tool results and descriptions are
// redacted the same way, so a server that echoes a token does not hand it to
// the model.
package mcptool
