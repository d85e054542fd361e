// Command bulkhead is the Bulkhead CLI; `bulkhead dev` runs the local platform.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/bulkhead-dev/bulkhead/pkg/local"
	"github.com/bulkhead-dev/bulkhead/pkg/platform"
	"github.com/bulkhead-dev/bulkhead/pkg/tracing"
)

const usage = `usage: bulkhead <command> [arguments] [flags]

commands:
  dev                          run the local platform (embedded DynamoDB and S3, API Gateway emulation)

operator commands (the operator API of a running platform; <command> -h lists the flags):
  tenant create --name NAME [--tier TIER]   create a tenant; prints it with its api_key, shown only this once
  tenant list [--limit N]                   tenants, all of them or the first N: id, name, tier, status
  tenant get ID                             one tenant: effective quota, circuit breaker, live counters
  tenant set-tier ID TIER                   starter, professional or enterprise
  tenant suspend ID                         refuse every request made with the tenant's keys (403)
  tenant resume ID                          accept them again
  tenant set-quota ID --max-tokens-per-month N ...
                                            override quota fields (--max-requests-per-hour,
                                            --max-spend-per-month USD, --max-concurrent-agents,
                                            --max-storage-mb); the others keep their value
  bill close --month YYYY-MM                close a month: one immutable invoice per tenant
  audit [list] [--tenant ID] [--action ACTION] [--since T] [--until T] [--limit N]
                                            the audit log: one tenant's changes (any range), or every
                                            tenant's within at most 31 days (default the last 7)
  model list [--limit N]                    the priced model catalogue: prices (USD per million tokens), tiers, sizes
  model set PROVIDER/MODEL_ID --input-per-million USD --output-per-million USD
            --context-window N --max-output-tokens N [--tiers starter,professional]
                                            add or replace a catalogue entry (in effect at once; no --tiers: every tier)

  --url URL            the API (default BULKHEAD_URL, else http://BULKHEAD_ADDR, else http://127.0.0.1:8080)
  --admin-token TOKEN  the operator token (default BULKHEAD_ADMIN_TOKEN,
                       else <BULKHEAD_DATA_DIR or .bulkhead>/admin-token)
  --sigv4              sign with AWS SigV4 (service execute-api) instead of the token, as the IAM-authorised
                       operator routes in AWS want; credentials and region from the AWS SDK's default chain
                       (environment, shared config, SSO, instance role). BULKHEAD_SIGV4=1 sets it.
  --output json|table  for tenant list and model list (default table) and the commands printing one tenant (default json)

tenant key commands (the tenant API, authenticated with one of the tenant's own keys):
  key create --tenant-key KEY [--name N]    a new key of KEY's tenant; prints it with its api_key, shown only this once
  key list --tenant-key KEY                 the tenant's keys, without secrets (--output json|table)
  key revoke --tenant-key KEY KEY_ID        revoke one of the tenant's keys

  --url as above; --tenant-key defaults to BULKHEAD_TENANT_KEY (which keeps the key out of the process list).
  The operator API has no key routes: to revoke a key, an operator needs one of the tenant's keys (such as the
  api_key tenant create printed); without one, tenant suspend refuses all of the tenant's keys until tenant resume.

errors: an API error prints "bulkhead: <code>: <message>" ("bulkhead: HTTP <status>: <message>" when API
Gateway itself refuses, e.g. a SigV4 signature IAM denies) and exits 1; a usage error exits 2.

environment for dev:
  BULKHEAD_ADDR               listen address (default 127.0.0.1:8080)
  BULKHEAD_ADMIN_TOKEN        operator token (default: generated once, kept in the data dir)
  BULKHEAD_DATA_DIR           state directory (default .bulkhead)
  BULKHEAD_LOCAL_MODEL_DELAY  offline model latency, a Go duration (default 0)
  BULKHEAD_SHUTDOWN_GRACE     how long a stop waits for running executions before it stops them
                              (default: the longest wall time any tier allows, plus 30s)
  BULKHEAD_METRICS_TENANTS    how many tenants /metrics labels by id; the rest are tenant_id="other" (default 50)
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
	case "tenant", "key", "bill", "model":
		os.Exit(runAPICommand(os.Args[1], os.Args[2:]))
	case "audit":
		args := os.Args[2:]
		if len(args) == 0 || strings.HasPrefix(args[0], "-") && args[0] != "-h" && args[0] != "--help" && args[0] != "-help" {
			// `bulkhead audit --tenant ...` is `bulkhead audit list --tenant ...`.
			args = append([]string{"list"}, args...)
		}
		os.Exit(runAPICommand("audit", args))
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
	// BULKHEAD_OTEL_EXPORTER=<OTLP/HTTP URL> sends traces there; unset, off.
	stopTracing, err := tracing.Start(ctx, tracing.ConfigFromEnv(os.Getenv))
	if err != nil {
		return err
	}
	defer func() { _ = stopTracing(context.Background()) }()
	p, err := local.Start(ctx, cfg)
	if err != nil {
		return err
	}
	fmt.Println("Ready. Ctrl-C stops the platform.")
	waitErr := p.Wait(ctx)
	stop()
	// A graceful stop waits for running executions (up to the shutdown
	// grace); a second signal stops them at once (they still settle).
	shutdownCtx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	if err := p.Close(shutdownCtx); err != nil {
		return err
	}
	fmt.Println("Stopped; state saved in", cfg.DataDir)
	return waitErr
}
