package bulkhead

import (
	"encoding/json"
	"regexp"
	"strings"
	"time"
)

// ToolType is how a tenant's tool runs.
type ToolType string

// Tool types.
const (
	// ToolHTTP is a tenant's HTTPS endpoint, called with a signed POST.
	ToolHTTP ToolType = "http"
	// ToolMCP is a tenant's MCP server (Streamable HTTP); its tools are
	// offered to the model as "<name>__<tool>".
	ToolMCP ToolType = "mcp"
)

// Built-in tools: the platform runs them, agents name them, and no tenant
// tool may take their names.
const (
	ToolInvokeAgent  = "invoke_agent"
	ToolSearchKB     = "search_kb"
	ToolCreateTicket = "create_ticket"
)

// BuiltinTool says whether name is a built-in tool.
func BuiltinTool(name string) bool {
	switch name {
	case ToolInvokeAgent, ToolSearchKB, ToolCreateTicket:
		return true
	}
	return false
}

// Tool limits, documented in the README.
const (
	DefaultToolTimeout = 10 * time.Second
	MaxToolTimeout     = 30 * time.Second
	MaxToolDescription = 1024
	MaxToolSchemaBytes = 16 * 1024
	MaxToolURLBytes    = 2048
	MaxToolHeaders     = 16
	MaxToolHeaderBytes = 8 * 1024
	// MaxToolAnswerBytes is the most of a tool's answer the platform reads.
	MaxToolAnswerBytes = 1 << 20
	// SigningSecretOverlap is how long a rotated-out signing secret keeps
	// signing alongside the new one.
	SigningSecretOverlap = 24 * time.Hour
	// MCPToolSeparator joins an MCP server's name and its tool's.
	MCPToolSeparator = "__"
)

var (
	toolNameRE   = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
	serverNameRE = regexp.MustCompile(`^[A-Za-z0-9-]{1,32}$`)
)

// ValidToolName is the rule for a tool's name as the model sees it (the
// common ground of the providers' function names).
func ValidToolName(s string) bool { return toolNameRE.MatchString(s) }

// ValidToolNameFor checks a tenant tool's own name: an HTTP tool may not
// contain the MCP separator (so "<server>__<tool>" stays unambiguous), and
// an MCP server's name has no underscores at all.
func ValidToolNameFor(t ToolType, s string) bool {
	if t == ToolMCP {
		return serverNameRE.MatchString(s)
	}
	return ValidToolName(s) && !strings.Contains(s, MCPToolSeparator)
}

// SplitMCPToolName splits "<server>__<tool>".
func SplitMCPToolName(s string) (server, tool string, ok bool) {
	server, tool, ok = strings.Cut(s, MCPToolSeparator)
	return server, tool, ok && serverNameRE.MatchString(server) && tool != ""
}

// SealedSecret is a signing secret encrypted at rest, with the time after
// which it no longer signs (zero: the current secret).
type SealedSecret struct {
	Box       []byte    `dynamodbav:"box"`
	Prefix    string    `dynamodbav:"prefix"`
	ExpiresAt time.Time `dynamodbav:"expires_at,omitempty"`
}

// Tool is a tenant's tool as stored. Secrets (signing secrets, MCP headers)
// are sealed; their plaintext exists only while a call is made.
type Tool struct {
	ID          string
	Type        ToolType
	Name        string
	Description string
	// InputSchema is the JSON Schema of an HTTP tool's arguments.
	InputSchema json.RawMessage
	URL         string
	Timeout     time.Duration
	// Secrets sign an HTTP tool's calls, newest first.
	Secrets []SealedSecret
	// Headers are an MCP server's sealed request headers (a JSON object).
	Headers []byte
	// HeaderNames are the names of those headers, shown to the tenant.
	HeaderNames []string
	Version     int64
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// SigningSecrets returns the secrets that still sign at now, newest first.
func (t Tool) SigningSecrets(now time.Time) []SealedSecret {
	var out []SealedSecret
	for _, s := range t.Secrets {
		if s.ExpiresAt.IsZero() || now.Before(s.ExpiresAt) {
			out = append(out, s)
		}
	}
	return out
}

// ToolCallRecord is what an execution says of one tool call.
type ToolCallRecord struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	Status     string `json:"status"`
	DurationMS int64  `json:"duration_ms"`
}

// Tool call statuses.
const (
	ToolCallOK    = "ok"
	ToolCallError = "error"
)
