package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/bulkhead-dev/bulkhead/pkg/metrics"
	"github.com/bulkhead-dev/bulkhead/pkg/runtime"
)

// StreamHandler is a Lambda handler for API Gateway REST proxy events whose
// integration uses response streaming (transfer mode STREAM): the function
// is invoked with InvokeWithResponseStream and answers a prelude (status and
// headers), then a body read as it is produced. A buffered answer is the
// same shape with the whole body in one read. ctx is the invocation's
// context: when it is done the client is taken to be gone; the execution
// itself runs without its cancellation.
type StreamHandler func(ctx context.Context, req events.APIGatewayProxyRequest) (*events.LambdaFunctionURLStreamingResponse, error)

// Server-Sent Events of a streamed execution.
const (
	SSEDelta      = "delta"
	SSEToolCall   = "tool_call"
	SSEToolResult = "tool_result"
	SSEDone       = "done"
	SSEError      = "error"
	// EventStreamType is the Content-Type of a streamed response.
	EventStreamType = "text/event-stream"
)

// StreamFunction returns the streaming Lambda handler of one function. A
// request that asks for a stream ("stream": true in its JSON body, or
// Accept: text/event-stream) is answered with Server-Sent Events once its
// execution is admitted; every other request, and any refusal before
// admission, is the buffered response in one body.
func (a *API) StreamFunction(name string) StreamHandler {
	return func(ctx context.Context, ev events.APIGatewayProxyRequest) (*events.LambdaFunctionURLStreamingResponse, error) {
		run := context.WithoutCancel(ctx)
		if !wantsStream(ev) {
			return buffered(a.serveEvent(run, name, ev, nil)), nil
		}
		s := newSSEStream()
		go func() {
			select {
			case <-ctx.Done():
				s.leave()
			case <-s.finished:
			}
		}()
		go func() {
			resp := a.serveEvent(run, name, ev, s)
			s.finish(resp)
		}()
		select {
		case <-s.start:
			return &events.LambdaFunctionURLStreamingResponse{StatusCode: http.StatusOK, Headers: sseHeaders(), Body: s.pr}, nil
		case resp := <-s.early:
			if resp.StatusCode == http.StatusOK {
				// An Idempotency-Key replay: the stored body is the done event.
				h := sseHeaders()
				for k, v := range resp.Headers {
					if k != "Content-Type" {
						h[k] = v
					}
				}
				return &events.LambdaFunctionURLStreamingResponse{StatusCode: http.StatusOK, Headers: h,
					Body: strings.NewReader(sseFrame(SSEDone, resp.Body))}, nil
			}
			return buffered(resp), nil
		}
	}
}

func sseHeaders() map[string]string {
	return map[string]string{"Content-Type": EventStreamType, "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
}

// buffered is a proxy response as a streaming response with its whole body.
func buffered(resp events.APIGatewayProxyResponse) *events.LambdaFunctionURLStreamingResponse {
	body, err := rawBody(events.APIGatewayProxyRequest{Body: resp.Body, IsBase64Encoded: resp.IsBase64Encoded})
	if err != nil {
		body = []byte(internalBody)
	}
	h := map[string]string{}
	for k, v := range resp.Headers {
		h[k] = v
	}
	for k, vs := range resp.MultiValueHeaders {
		h[k] = strings.Join(vs, ", ")
	}
	return &events.LambdaFunctionURLStreamingResponse{StatusCode: resp.StatusCode, Headers: h, Body: bytes.NewReader(body)}
}

// wantsStream tells whether a request asks for Server-Sent Events. A
// "stream" that is not a boolean is left to the handler, which refuses it.
func wantsStream(ev events.APIGatewayProxyRequest) bool {
	if strings.Contains(strings.ToLower(header(ev, "Accept")), EventStreamType) {
		return true
	}
	b, err := rawBody(ev)
	if err != nil {
		return false
	}
	var v struct {
		Stream json.RawMessage `json:"stream"`
	}
	if json.Unmarshal(b, &v) != nil {
		return false
	}
	return string(v.Stream) == "true"
}

// sseFrame renders one event; data is one line of JSON.
func sseFrame(event, data string) string {
	return "event: " + event + "\ndata: " + data + "\n\n"
}

// sseStream is one streamed execution's response body.
type sseStream struct {
	pr *io.PipeReader
	pw *io.PipeWriter
	// start is closed when the stream begins (admission or first event).
	start     chan struct{}
	startOnce sync.Once
	started   bool
	// early receives the response when it was ready before the stream began.
	early chan events.APIGatewayProxyResponse
	// gone is closed when the client left (runtime.Request.ClientGone).
	gone     chan struct{}
	goneOnce sync.Once
	finished chan struct{}
	mu       sync.Mutex
}

func newSSEStream() *sseStream {
	pr, pw := io.Pipe()
	return &sseStream{pr: pr, pw: pw, start: make(chan struct{}), early: make(chan events.APIGatewayProxyResponse, 1),
		gone: make(chan struct{}), finished: make(chan struct{})}
}

// begin commits the 200 and the event-stream headers.
func (s *sseStream) begin() {
	s.startOnce.Do(func() { s.started = true; close(s.start) })
}

func (s *sseStream) leave() { s.goneOnce.Do(func() { close(s.gone) }) }

func (s *sseStream) write(event string, data any) {
	b, err := json.Marshal(data)
	if err != nil {
		return
	}
	s.writeRaw(event, string(b))
}

func (s *sseStream) writeRaw(event, data string) {
	s.begin()
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := io.WriteString(s.pw, sseFrame(event, data)); err != nil {
		// The reader closed the body: the client is gone.
		s.leave()
	}
}

// onEvent relays an execution's progress.
func (s *sseStream) onEvent(ev runtime.Event) {
	switch ev.Kind {
	case runtime.EventDelta:
		s.write(SSEDelta, map[string]string{"text": ev.Text})
	case runtime.EventToolCall:
		args := ev.Call.Arguments
		if len(args) == 0 {
			args = json.RawMessage("{}")
		}
		s.write(SSEToolCall, map[string]any{"id": ev.Call.ID, "name": ev.Call.Name, "arguments": args})
	case runtime.EventToolResult:
		s.write(SSEToolResult, map[string]any{"tool_call_id": ev.Call.ID, "name": ev.Call.Name, "output": ev.Result})
	}
}

// finish ends the stream with the response: a done event carrying the
// buffered body, or an error event with the error shape. A response ready
// before the stream began is answered as it is.
func (s *sseStream) finish(resp events.APIGatewayProxyResponse) {
	defer close(s.finished)
	early := false
	s.startOnce.Do(func() { early = true })
	if early {
		s.early <- resp
		return
	}
	event := SSEDone
	if resp.StatusCode != http.StatusOK {
		event = SSEError
	}
	s.writeRaw(event, resp.Body)
	_ = s.pw.Close()
}

// serveEvent serves one event, logging it; stream is set for a streamed execution.
func (a *API) serveEvent(ctx context.Context, name string, ev events.APIGatewayProxyRequest, stream *sseStream) events.APIGatewayProxyResponse {
	start := time.Now()
	r := &request{APIGatewayProxyRequest: ev, stream: stream}
	r.log = a.log.With("request_id", ev.RequestContext.RequestID, "route", routeKey(ev.HTTPMethod, ev.Resource), "function", name)
	resp := a.dispatch(ctx, name, r)
	elapsed := time.Since(start)
	r.log.Info("request", "status", resp.StatusCode, "duration_ms", elapsed.Milliseconds(), "streamed", stream != nil)
	a.countRequest(r, name, resp, elapsed)
	return resp
}

// countRequest emits a request's metrics: the request by function and status
// class with its latency. (Store errors are counted in the store's clients.)
func (a *API) countRequest(r *request, name string, resp events.APIGatewayProxyResponse, elapsed time.Duration) {
	if a.metrics == nil {
		return
	}
	a.metrics.Emit(map[string]float64{metrics.Requests: 1, metrics.RequestLatency: float64(elapsed.Microseconds()) / 1000},
		[][]string{{}, {"function"}}, map[string]any{"tenant_id": r.tenant, "function": name,
			"status_class": strconv.Itoa(resp.StatusCode/100) + "xx", "route": routeKey(r.HTTPMethod, r.Resource)})
}

// validStream checks the body's "stream" field.
func validStream(raw json.RawMessage) error {
	if raw == nil {
		return nil
	}
	var b bool
	if err := json.Unmarshal(raw, &b); err != nil {
		return fmt.Errorf("stream must be a boolean")
	}
	return nil
}
