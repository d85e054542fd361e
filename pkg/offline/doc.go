// Package offline is a deterministic model provider for development and tests:
// it answers from the conversation it is given, can request tools, and counts
// tokens by a fixed rule, so that executions, the tool loop and metering run
// without a network and give the same result every time.
//
// # Replies
//
// The reply names the turn (the number of user messages in the request),
// quotes the last user message and, when there is one, the user message
// before it, so a test can tell which context window the model saw. The same
// request always gets the same reply.
//
// # Token rule
//
// A text's tokens are ceil(UTF-8 bytes / 4), so "" is 0 tokens, "abcd" is 1
// and "abcde" is 2.
//
//	input_tokens  = tokens(system prompt)
//	              + sum over messages of (tokens(content) + 4)
//	              + sum over tool definitions of tokens(the tool's JSON, as given)
//	output_tokens = tokens(reply)
//
// If MaxOutputTokens > 0 and the reply would be longer, the reply is cut on a
// rune boundary so that output_tokens == MaxOutputTokens exactly. Output
// tokens therefore never exceed MaxOutputTokens, which is what lets quota
// admission reserve MaxOutputTokens as an upper bound.
//
// # Tools
//
// When the last user message contains "use tool <name>" and <name> is one of
// the request's tools (a JSON string that is the name, or an object with a
// "name" field), the response carries one ToolCall instead of text: its
// arguments are {"query": <the rest of the message after the name>} and its ID
// is derived from the turn, the name and the arguments. Its output_tokens are
// tokens(name) + tokens(arguments JSON); if that exceeds MaxOutputTokens the
// query is shortened to fit, and if even an empty query cannot fit the model
// answers with (truncated) text instead.
//
// "use tool" calls the tool once: when the request's last message is the
// tool's result, the model answers in text quoting it. "loop tool <name>"
// calls the tool at every step, for ever, like a runaway agent: it is how
// tests exercise the runtime's step, token and wall-time guards.
//
// # Failures
//
// A last user message containing "[[fail]]" is refused with an Invalid error,
// as a provider refuses a request it finds wrong (the execution ends
// model_error, 502). "[[unavailable]]" fails with an Unavailable error, as a
// provider outage would: the runtime retries, opens the model's circuit and
// answers 503 model_unavailable. A cancelled context fails with the
// context's error, wrapped.
//
// # Streaming
//
// GenerateStream hands the reply out word by word, in two bursts when the
// model has a delay, so tests can disconnect mid-stream.
package offline
