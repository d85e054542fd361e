package client_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bulkhead-dev/bulkhead/pkg/client"
	"github.com/bulkhead-dev/bulkhead/pkg/offline"
	"github.com/bulkhead-dev/bulkhead/pkg/platform/platformtest"
	"github.com/bulkhead-dev/bulkhead/pkg/ssrf"
)

func TestToolsDocumentsTickets(t *testing.T) {
	var calls atomic.Int64
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		if !strings.Contains(r.Header.Get("Bulkhead-Signature"), "v1=") {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		_, _ = w.Write([]byte(`{"status":"shipped"}`))
	}))
	t.Cleanup(hook.Close)
	allow, err := ssrf.ParseAllowHosts(strings.TrimPrefix(hook.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	p := startPlatform(t, platformtest.WithToolGuard(ssrf.New(allow)))
	ctx := context.Background()
	_, c := p.tenant(t, "acme")

	// Tools.
	schema := json.RawMessage(`{"type":"object","properties":{"query":{"type":"string"}},"required":["query"]}`)
	tool, err := c.CreateTool(ctx, client.CreateToolRequest{Name: "order_status", Description: "Where an order is.", URL: hook.URL + "/hook", InputSchema: schema})
	if err != nil || tool.ToolID == "" || tool.Type != "http" || !strings.HasPrefix(tool.SigningSecret, "whsec_") || len(tool.SigningSecrets) != 1 ||
		tool.TimeoutMS != 10000 {
		t.Fatalf("create tool: %+v, %v", tool, err)
	}
	desc := "Where an order is, by id."
	up, err := c.UpdateTool(ctx, tool.ToolID, client.UpdateToolRequest{Description: &desc})
	if err != nil || up.Description != desc || up.Version != 2 {
		t.Fatalf("update tool: %+v, %v", up, err)
	}
	rot, err := c.RotateToolSecret(ctx, tool.ToolID)
	if err != nil || rot.SigningSecret == "" || rot.SigningSecret == tool.SigningSecret || len(rot.SigningSecrets) != 2 || rot.SigningSecrets[1].ExpiresAt == nil {
		t.Fatalf("rotate: %+v, %v", rot, err)
	}
	if got, err := c.GetTool(ctx, tool.ToolID); err != nil || got.Name != "order_status" {
		t.Fatalf("get tool: %+v, %v", got, err)
	}
	if tools := collect(t, c.ListTools(ctx, nil)); len(tools) != 1 {
		t.Fatalf("tools: %+v", tools)
	}

	// Knowledge base.
	doc, err := c.PutDocument(ctx, "refunds.md", "text/markdown", []byte("# Refunds\n\nRefunds are paid within 14 days of the return."))
	if err != nil || doc.DocID != "refunds.md" || doc.Bytes == 0 {
		t.Fatalf("put document: %+v, %v", doc, err)
	}
	got, err := c.GetDocument(ctx, "refunds.md")
	if err != nil || got.ContentType != "text/markdown" || !strings.Contains(got.Text, "14 days") {
		t.Fatalf("get document: %+v, %v", got, err)
	}
	if docs := collect(t, c.ListDocuments(ctx, nil)); len(docs) != 1 || docs[0].Text != "" {
		t.Fatalf("documents: %+v", docs)
	}
	if _, err := c.PutDocument(ctx, "x.pdf", "application/pdf", []byte("%PDF")); !client.IsCode(err, "invalid_request") {
		t.Fatalf("a PDF: %v", err)
	}

	// An agent with all three tools.
	a, err := c.CreateAgent(ctx, client.CreateAgentRequest{Name: "helper", SystemPrompt: "You help.", Tools: []string{"order_status", "search_kb", "create_ticket"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, msg := range []string{"use tool order_status 1234", "use tool search_kb refund days", "use tool create_ticket Order 1234 arrived broken"} {
		res, err := c.Execute(ctx, a.AgentID, client.ExecuteRequest{Message: msg})
		if err != nil || len(res.ToolCalls) != 1 || res.ToolCalls[0].Status != "ok" {
			t.Fatalf("%s: %+v, %v", msg, res, err)
		}
	}
	if calls.Load() != 1 {
		t.Errorf("the HTTP tool was called %d times", calls.Load())
	}

	// Tickets.
	tickets := collect(t, c.ListTickets(ctx, "open", nil))
	if len(tickets) != 1 || tickets[0].AgentID == nil || *tickets[0].AgentID != a.AgentID || tickets[0].ExecutionID == nil {
		t.Fatalf("tickets: %+v", tickets)
	}
	closed, urgent := "closed", "urgent"
	tk, err := c.UpdateTicket(ctx, tickets[0].TicketID, client.UpdateTicketRequest{Status: &closed, Priority: &urgent})
	if err != nil || tk.Status != "closed" || tk.Priority != "urgent" {
		t.Fatalf("update ticket: %+v, %v", tk, err)
	}
	if got, err := c.GetTicket(ctx, tk.TicketID); err != nil || got.Version != tk.Version {
		t.Fatalf("get ticket: %+v, %v", got, err)
	}
	if open := collect(t, c.ListTickets(ctx, "open", nil)); len(open) != 0 {
		t.Fatalf("open tickets after closing: %+v", open)
	}

	// Deletes.
	if err := c.DeleteDocument(ctx, "refunds.md"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetDocument(ctx, "refunds.md"); !client.IsNotFound(err) {
		t.Fatalf("deleted document: %v", err)
	}
	if err := c.DeleteTool(ctx, tool.ToolID); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetTool(ctx, tool.ToolID); !client.IsNotFound(err) {
		t.Fatalf("deleted tool: %v", err)
	}
}

// TestLeavingAStreamStopsTheExecution: breaking out of the range closes the
// connection, and the platform settles the execution as stopped.
func TestLeavingAStreamStopsTheExecution(t *testing.T) {
	p := startPlatform(t, platformtest.WithModel(offline.New(2*time.Second)))
	ctx := context.Background()
	_, c := p.tenant(t, "acme")
	a := newAgent(t, c, "support")
	deltas := 0
	for ev, err := range c.ExecuteStream(ctx, a.AgentID, client.ExecuteRequest{Message: "Tell me a long story about refunds."}) {
		if err != nil {
			t.Fatalf("stream: %v", err)
		}
		if ev.Type == client.EventDone {
			t.Fatal("the stream finished before the range was left")
		}
		if ev.Type == client.EventDelta {
			deltas++
			break
		}
	}
	if deltas != 1 {
		t.Fatalf("%d deltas before leaving", deltas)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		recs := collect(t, c.UsageRecords(ctx, client.UsageRecordsQuery{}))
		if len(recs) == 1 && recs[0].Status == "stopped" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("usage records after leaving the stream: %+v", recs)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
