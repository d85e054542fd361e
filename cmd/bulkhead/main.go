// Command bulkhead is the Bulkhead CLI; `bulkhead dev` runs the local platform.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/bulkhead-dev/bulkhead/pkg/local"
	"github.com/bulkhead-dev/bulkhead/pkg/platform"
)

const usage = `usage: bulkhead <command>

commands:
  dev                          run the local platform (embedded DynamoDB and S3, API Gateway emulation)
  bill close --month YYYY-MM   close a month: one immutable invoice per tenant (needs a running platform;
                               --url, default BULKHEAD_URL or http://BULKHEAD_ADDR; --admin-token)

environment for dev:
  BULKHEAD_ADDR               listen address (default 127.0.0.1:8080)
  BULKHEAD_ADMIN_TOKEN        operator token (default: generated once, kept in the data dir)
  BULKHEAD_DATA_DIR           state directory (default .bulkhead)
  BULKHEAD_LOCAL_MODEL_DELAY  offline model latency, a Go duration (default 0)
  AWS_ENDPOINT_URL[_DYNAMODB|_S3]  use these endpoints instead of the embedded servers
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	switch os.Args[1] {
	case "dev":
		if err := dev(); err != nil {
			fmt.Fprintln(os.Stderr, "bulkhead dev:", err)
			os.Exit(1)
		}
	case "bill":
		if len(os.Args) < 3 || os.Args[2] != "close" {
			fmt.Fprintf(os.Stderr, "usage: bulkhead bill close --month YYYY-MM\n")
			os.Exit(2)
		}
		if err := billClose(os.Args[3:]); err != nil {
			fmt.Fprintln(os.Stderr, "bulkhead bill close:", err)
			os.Exit(1)
		}
	case "help", "-h", "--help":
		fmt.Print(usage)
	default:
		fmt.Fprintf(os.Stderr, "bulkhead: unknown command %q\n\n%s", os.Args[1], usage)
		os.Exit(2)
	}
}

func dev() error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg, err := local.ConfigFromEnv()
	if err != nil {
		return err
	}
	cfg.Logger = platform.Logger()
	p, err := local.Start(ctx, cfg)
	if err != nil {
		return err
	}
	fmt.Println("Ready. Ctrl-C stops the platform.")
	waitErr := p.Wait(ctx)
	stop()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.Close(shutdownCtx); err != nil {
		return err
	}
	fmt.Println("Stopped; state saved in", cfg.DataDir)
	return waitErr
}
