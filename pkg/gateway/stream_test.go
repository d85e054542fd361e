package gateway_test

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/bulkhead-dev/bulkhead/pkg/api"
	"github.com/bulkhead-dev/bulkhead/pkg/gateway"
)

// A streaming function's body reaches the client write by write: the client
// reads the first event before the function writes the second, and when the
// client leaves, the function's context ends and its writes fail.
func TestStreamingFunctionFlushesAndSeesTheClientLeave(t *testing.T) {
	next := make(chan struct{})
	ctxDone := make(chan struct{})
	writeErr := make(chan error, 1)
	h := func(ctx context.Context, ev events.APIGatewayProxyRequest) (*events.LambdaFunctionURLStreamingResponse, error) {
		pr, pw := io.Pipe()
		go func() {
			_, _ = io.WriteString(pw, "event: delta\ndata: {\"text\":\"a\"}\n\n")
			<-next
			<-ctx.Done()
			close(ctxDone)
			var err error
			for err == nil {
				_, err = io.WriteString(pw, "event: delta\ndata: {\"text\":\"b\"}\n\n")
			}
			writeErr <- err
		}()
		return &events.LambdaFunctionURLStreamingResponse{StatusCode: 200,
			Headers: map[string]string{"Content-Type": "text/event-stream"}, Body: pr}, nil
	}
	g := mustGateway(t, gateway.Config{Routes: []api.Route{route("GET", "/s", "fn", api.AuthNone)},
		Streams: map[string]api.StreamHandler{"fn": h}})
	srv := httptest.NewServer(g)
	defer srv.Close()

	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/s", nil)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" || resp.Header.Get("X-Request-Id") == "" {
		t.Fatalf("status %d, headers %v", resp.StatusCode, resp.Header)
	}
	br := bufio.NewReader(resp.Body)
	for _, want := range []string{"event: delta\n", "data: {\"text\":\"a\"}\n"} {
		if line, err := br.ReadString('\n'); err != nil || line != want {
			t.Fatalf("read %q (%v), want %q", line, err, want)
		}
	}
	close(next)
	cancel()
	resp.Body.Close()
	<-ctxDone
	if err := <-writeErr; err == nil {
		t.Fatal("writes after the client left succeeded")
	}
}

// A buffered answer through a streaming function keeps its status, headers
// and JSON body.
func TestStreamingFunctionBufferedAnswer(t *testing.T) {
	h := func(ctx context.Context, ev events.APIGatewayProxyRequest) (*events.LambdaFunctionURLStreamingResponse, error) {
		return &events.LambdaFunctionURLStreamingResponse{StatusCode: 429,
			Headers: map[string]string{"Content-Type": "application/json", "Retry-After": "3"},
			Body:    io.NopCloser(strings.NewReader(`{"error":{"code":"rate_limited","message":"slow down"}}`))}, nil
	}
	g := mustGateway(t, gateway.Config{Routes: []api.Route{route("GET", "/s", "fn", api.AuthNone)},
		Streams: map[string]api.StreamHandler{"fn": h}})
	rec := do(g, "GET", "/s", nil)
	mustError(t, rec, 429, "rate_limited")
	if rec.Header().Get("Retry-After") != "3" {
		t.Errorf("Retry-After %q", rec.Header().Get("Retry-After"))
	}
}
