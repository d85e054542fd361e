package tracing_test

import (
	"context"
	"errors"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-xray-sdk-go/xray"

	"github.com/bulkhead-dev/bulkhead/pkg/tracing"
)

var daemon *net.UDPConn

// TestMain stands up a fake X-Ray daemon (a UDP socket on loopback) and
// makes this process look like a traced Lambda function.
func TestMain(m *testing.M) {
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		panic(err)
	}
	daemon = conn
	os.Setenv("AWS_LAMBDA_FUNCTION_NAME", "bulkhead-test")
	os.Setenv("AWS_XRAY_DAEMON_ADDRESS", conn.LocalAddr().String())
	code := m.Run()
	conn.Close()
	os.Exit(code)
}

// TestSpansReachTheDaemon checks at the wire level that a span becomes a
// subsegment with the tenant annotation and the error recorded.
func TestSpansReachTheDaemon(t *testing.T) {
	if !tracing.Enabled() {
		t.Fatal("tracing is off inside a traced Lambda environment")
	}
	ctx, seg := xray.BeginSegment(context.Background(), "execute")
	boom := errors.New("boom")
	err := tracing.Span(ctx, "admit", func(ctx context.Context) error {
		tracing.Annotate(ctx, "tenant_id", "tn_example")
		return boom
	})
	if !errors.Is(err, boom) {
		t.Errorf("Span returned %v, want the function's error", err)
	}
	seg.Close(nil)

	buf := make([]byte, 64*1024)
	_ = daemon.SetReadDeadline(time.Now().Add(5 * time.Second))
	var got string
	for !strings.Contains(got, `"admit"`) {
		n, _, err := daemon.ReadFromUDP(buf)
		if err != nil {
			t.Fatalf("no segment reached the daemon: %v (got %q)", err, got)
		}
		got += string(buf[:n])
	}
	for _, want := range []string{`"name":"admit"`, `"annotations":{"tenant_id":"tn_example"}`, `"fault":true`, `"message":"boom"`} {
		if !strings.Contains(got, want) {
			t.Errorf("segment document lacks %s: %s", want, got)
		}
	}
}

// TestInstrumentAWS adds the X-Ray middleware to SDK clients.
func TestInstrumentAWS(t *testing.T) {
	var cfg aws.Config
	tracing.InstrumentAWS(&cfg)
	if len(cfg.APIOptions) == 0 {
		t.Error("no X-Ray middleware added to the AWS configuration")
	}
}
