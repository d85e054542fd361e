package mcptool

import (
	"regexp"
	"strings"
)

// Separator joins a server's name and a tool's name in the name offered to
// the model.
const Separator = "__"

// MaxToolNameLength is the longest function name the model providers accept
// (Bedrock's toolSpec and OpenAI's functions both allow ^[a-zA-Z0-9_-]{1,64}$).
const MaxToolNameLength = 64

// MaxServerNameLength is the longest server name a tenant may choose.
const MaxServerNameLength = 32

var (
	// A server name has no underscore at all, so the first "__" of a full
	// name is always the separator and a tool name may itself hold "__".
	serverNameRE = regexp.MustCompile(`^[A-Za-z0-9-]{1,32}$`)
	// A tool name must be acceptable to the providers as it stands: MCP
	// allows dots and longer names, which would have to be rewritten and
	// mapped back, so such tools are not offered instead.
	toolNameRE = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)
)

// ValidServerName reports whether name may name a tenant's MCP server:
// 1 to 32 ASCII letters, digits or hyphens.
func ValidServerName(name string) bool { return serverNameRE.MatchString(name) }

// ToolName returns the name the model sees for a server's tool, or "" when
// the pair cannot be offered: the server name is invalid, the tool name has
// a character outside [A-Za-z0-9_-], or the whole is longer than
// MaxToolNameLength.
func ToolName(server, tool string) string {
	if !ValidServerName(server) || !toolNameRE.MatchString(tool) ||
		len(server)+len(Separator)+len(tool) > MaxToolNameLength {
		return ""
	}
	return server + Separator + tool
}

// SplitToolName is the inverse of ToolName: it splits a name the model
// called at the first separator and reports whether it is a name ToolName
// could have built.
func SplitToolName(full string) (server, tool string, ok bool) {
	server, tool, found := strings.Cut(full, Separator)
	if !found || ToolName(server, tool) != full {
		return "", "", false
	}
	return server, tool, true
}
