package client

import (
	"context"
	"iter"
	"net/http"
	"net/url"
)

// Client calls a tenant's routes with one of the tenant's API keys.
type Client struct {
	t *transport
}

// New returns a client of the API at baseURL (such as
// "http://127.0.0.1:8080") authorised with a tenant's API key.
func New(baseURL, apiKey string, opts ...Option) *Client {
	return &Client{t: newTransport(baseURL, apiKey, opts)}
}

// Health is GET /health (no key needed).
func (c *Client) Health(ctx context.Context) error {
	return c.t.call(ctx, http.MethodGet, "/health", nil, nil, nil)
}

// Agents

// CreateAgent creates an agent (201).
func (c *Client) CreateAgent(ctx context.Context, req CreateAgentRequest) (*Agent, error) {
	var out Agent
	if err := c.t.post(ctx, "/v1/agents", req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// GetAgent reads one agent.
func (c *Client) GetAgent(ctx context.Context, agentID string) (*Agent, error) {
	var out Agent
	if err := c.t.call(ctx, http.MethodGet, "/v1/agents/"+pathEscape(agentID), nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ListAgents lists the tenant's agents.
func (c *Client) ListAgents(ctx context.Context, opts *ListOptions) iter.Seq2[Agent, error] {
	return paginate[Agent](ctx, c.t, "/v1/agents", opts.query())
}

// UpdateAgent changes the fields req sets; Status "disabled" disables the
// agent (its executions are refused with 409 conflict) and "active" enables it.
func (c *Client) UpdateAgent(ctx context.Context, agentID string, req UpdateAgentRequest) (*Agent, error) {
	var out Agent
	if err := c.t.call(ctx, http.MethodPatch, "/v1/agents/"+pathEscape(agentID), nil, req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// DeleteAgent deletes an agent.
func (c *Client) DeleteAgent(ctx context.Context, agentID string) error {
	return c.t.call(ctx, http.MethodDelete, "/v1/agents/"+pathEscape(agentID), nil, nil, nil)
}

// Executions

// Execute runs one turn of an agent and waits for its result. The request
// carries an Idempotency-Key, so a retry after a lost answer gets the first
// execution's result (Replayed set) rather than running it again.
func (c *Client) Execute(ctx context.Context, agentID string, req ExecuteRequest) (*ExecuteResult, error) {
	r, err := jsonRequest(http.MethodPost, "/v1/agents/"+pathEscape(agentID)+"/execute", req)
	if err != nil {
		return nil, err
	}
	r.replaySafe = true
	ctx, cancel := c.t.withTimeout(ctx)
	defer cancel()
	resp, err := c.t.send(ctx, r)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var out ExecuteResult
	if err := decodeBody(resp, r, &out); err != nil {
		return nil, err
	}
	out.Replayed = resp.Header.Get(ReplayedHeader) == "true"
	return &out, nil
}

// GetExecution reads a settled execution of the tenant.
func (c *Client) GetExecution(ctx context.Context, executionID string) (*Execution, error) {
	var out Execution
	if err := c.t.call(ctx, http.MethodGet, "/v1/executions/"+pathEscape(executionID), nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ExecutionLog reads a settled execution's log: its model calls, tool calls
// and what ended it. An execution still running is not found until it
// settles.
func (c *Client) ExecutionLog(ctx context.Context, executionID string) (*ExecutionLog, error) {
	var out ExecutionLog
	if err := c.t.call(ctx, http.MethodGet, "/v1/executions/"+pathEscape(executionID)+"/log", nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Conversations

// ListConversations lists conversation heads, of one agent when agentID is set.
func (c *Client) ListConversations(ctx context.Context, agentID string, opts *ListOptions) iter.Seq2[Conversation, error] {
	q := opts.query()
	if agentID != "" {
		q.Set("agent_id", agentID)
	}
	return paginate[Conversation](ctx, c.t, "/v1/conversations", q)
}

// GetConversation reads a conversation's head and one page of its messages
// (opts.Limit messages from opts.Cursor, oldest first).
func (c *Client) GetConversation(ctx context.Context, conversationID string, opts *ListOptions) (*ConversationPage, error) {
	var out ConversationPage
	if err := c.t.call(ctx, http.MethodGet, "/v1/conversations/"+pathEscape(conversationID), opts.query(), nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Messages iterates over all of a conversation's messages, oldest first,
// reading opts.Limit of them a request.
func (c *Client) Messages(ctx context.Context, conversationID string, opts *ListOptions) iter.Seq2[Message, error] {
	return func(yield func(Message, error) bool) {
		o := ListOptions{}
		if opts != nil {
			o = *opts
		}
		for {
			page, err := c.GetConversation(ctx, conversationID, &o)
			if err != nil {
				yield(Message{}, err)
				return
			}
			for _, m := range page.Messages {
				if !yield(m, nil) {
					return
				}
			}
			if page.NextCursor == nil || *page.NextCursor == "" {
				return
			}
			o.Cursor = *page.NextCursor
		}
	}
}

// DeleteConversation deletes a conversation and its transcript. A 503 means
// the deletion is unfinished; the call retries it.
func (c *Client) DeleteConversation(ctx context.Context, conversationID string) error {
	return c.t.call(ctx, http.MethodDelete, "/v1/conversations/"+pathEscape(conversationID), nil, nil, nil)
}

// Models

// ListModels lists the models the tenant's tier may use.
func (c *Client) ListModels(ctx context.Context, opts *ListOptions) iter.Seq2[Model, error] {
	return paginate[Model](ctx, c.t, "/v1/models", opts.query())
}

// Usage and billing

// Usage reads the tenant's quota and current counters.
func (c *Client) Usage(ctx context.Context) (*Usage, error) {
	var out Usage
	if err := c.t.call(ctx, http.MethodGet, "/v1/usage", nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// UsageRecords lists usage records (one per execution), oldest first.
func (c *Client) UsageRecords(ctx context.Context, q UsageRecordsQuery) iter.Seq2[UsageRecord, error] {
	v := q.ListOptions.query()
	for k, s := range map[string]string{"from": q.From, "to": q.To, "agent_id": q.AgentID} {
		if s != "" {
			v.Set(k, s)
		}
	}
	return paginate[UsageRecord](ctx, c.t, "/v1/usage/records", v)
}

// DailyUsage reads a month's (YYYY-MM; empty: the current one) per-day usage.
func (c *Client) DailyUsage(ctx context.Context, month string) (*DailyUsageMonth, error) {
	var q url.Values
	if month != "" {
		q = url.Values{"month": {month}}
	}
	var out DailyUsageMonth
	if err := c.t.call(ctx, http.MethodGet, "/v1/usage/daily", q, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// CurrentBill estimates the running month's bill.
func (c *Client) CurrentBill(ctx context.Context) (*Bill, error) {
	var out Bill
	if err := c.t.call(ctx, http.MethodGet, "/v1/billing/current", nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ListInvoices lists the tenant's closed invoices.
func (c *Client) ListInvoices(ctx context.Context, opts *ListOptions) iter.Seq2[Invoice, error] {
	return paginate[Invoice](ctx, c.t, "/v1/billing/invoices", opts.query())
}

// GetInvoice reads a closed month's (YYYY-MM) invoice.
func (c *Client) GetInvoice(ctx context.Context, month string) (*Invoice, error) {
	var out Invoice
	if err := c.t.call(ctx, http.MethodGet, "/v1/billing/invoices/"+pathEscape(month), nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Keys

// CreateKey creates an API key for the tenant; its secret (APIKey) is shown
// in this answer only. name may be empty ("default").
func (c *Client) CreateKey(ctx context.Context, name string) (*NewKey, error) {
	body := map[string]string{}
	if name != "" {
		body["name"] = name
	}
	var out NewKey
	if err := c.t.post(ctx, "/v1/keys", body, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ListKeys lists the tenant's keys, without secrets.
func (c *Client) ListKeys(ctx context.Context, opts *ListOptions) iter.Seq2[Key, error] {
	return paginate[Key](ctx, c.t, "/v1/keys", opts.query())
}

// RevokeKey revokes a key: requests with it are refused (403) from then on.
func (c *Client) RevokeKey(ctx context.Context, keyID string) (*Key, error) {
	var out Key
	if err := c.t.call(ctx, http.MethodDelete, "/v1/keys/"+pathEscape(keyID), nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Tools

// CreateTool registers an HTTP tool or an MCP server (201); an HTTP tool's
// SigningSecret is shown in this answer only.
func (c *Client) CreateTool(ctx context.Context, req CreateToolRequest) (*ToolWithSecret, error) {
	var out ToolWithSecret
	if err := c.t.post(ctx, "/v1/tools", req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// GetTool reads a tool.
func (c *Client) GetTool(ctx context.Context, toolID string) (*Tool, error) {
	var out Tool
	if err := c.t.call(ctx, http.MethodGet, "/v1/tools/"+pathEscape(toolID), nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ListTools lists the tenant's tools.
func (c *Client) ListTools(ctx context.Context, opts *ListOptions) iter.Seq2[Tool, error] {
	return paginate[Tool](ctx, c.t, "/v1/tools", opts.query())
}

// UpdateTool changes the fields req sets.
func (c *Client) UpdateTool(ctx context.Context, toolID string, req UpdateToolRequest) (*Tool, error) {
	var out Tool
	if err := c.t.call(ctx, http.MethodPatch, "/v1/tools/"+pathEscape(toolID), nil, req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// DeleteTool deletes a tool.
func (c *Client) DeleteTool(ctx context.Context, toolID string) error {
	return c.t.call(ctx, http.MethodDelete, "/v1/tools/"+pathEscape(toolID), nil, nil, nil)
}

// RotateToolSecret gives an HTTP tool a new signing secret (shown here
// only); the previous one keeps signing for 24 hours. The route does not
// honour Idempotency-Key, so a failed connection is not retried.
func (c *Client) RotateToolSecret(ctx context.Context, toolID string) (*ToolWithSecret, error) {
	var out ToolWithSecret
	if err := c.t.call(ctx, http.MethodPost, "/v1/tools/"+pathEscape(toolID)+"/rotate-secret", nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Tickets

// ListTickets lists tickets, of one status ("open", "pending", "closed")
// when status is set.
func (c *Client) ListTickets(ctx context.Context, status string, opts *ListOptions) iter.Seq2[Ticket, error] {
	q := opts.query()
	if status != "" {
		q.Set("status", status)
	}
	return paginate[Ticket](ctx, c.t, "/v1/tickets", q)
}

// GetTicket reads a ticket.
func (c *Client) GetTicket(ctx context.Context, ticketID string) (*Ticket, error) {
	var out Ticket
	if err := c.t.call(ctx, http.MethodGet, "/v1/tickets/"+pathEscape(ticketID), nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// UpdateTicket sets a ticket's status or priority.
func (c *Client) UpdateTicket(ctx context.Context, ticketID string, req UpdateTicketRequest) (*Ticket, error) {
	var out Ticket
	if err := c.t.call(ctx, http.MethodPatch, "/v1/tickets/"+pathEscape(ticketID), nil, req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Knowledge base

// PutDocument adds or replaces a knowledge-base document; contentType is
// "text/plain" or "text/markdown" (empty: text/plain).
func (c *Client) PutDocument(ctx context.Context, docID, contentType string, text []byte) (*Document, error) {
	if contentType == "" {
		contentType = "text/plain"
	}
	r := &request{method: http.MethodPut, path: "/v1/kb/documents/" + pathEscape(docID), body: text,
		contentType: contentType, replaySafe: true}
	if text == nil {
		r.body = []byte{}
	}
	var out Document
	if err := c.t.do(ctx, r, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// GetDocument reads a document with its text.
func (c *Client) GetDocument(ctx context.Context, docID string) (*Document, error) {
	var out Document
	if err := c.t.call(ctx, http.MethodGet, "/v1/kb/documents/"+pathEscape(docID), nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ListDocuments lists documents (without their text).
func (c *Client) ListDocuments(ctx context.Context, opts *ListOptions) iter.Seq2[Document, error] {
	return paginate[Document](ctx, c.t, "/v1/kb/documents", opts.query())
}

// DeleteDocument deletes a document, freeing its storage.
func (c *Client) DeleteDocument(ctx context.Context, docID string) error {
	return c.t.call(ctx, http.MethodDelete, "/v1/kb/documents/"+pathEscape(docID), nil, nil, nil)
}
