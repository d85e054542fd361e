// Command cost is the platform's cost model, run rather than estimated: it
// starts the embedded DynamoDB and S3 servers with a request-counting
// reverse proxy in front of each, starts the local platform on those
// proxies (so every store request of every handler, the authorizer's
// included, passes through one), drives a scripted mix of executions through
// the API one request at a time, and prices what each kind of execution
// cost at us-east-1 list prices (prices.go):
//
//	go run ./scripts/cost            # the table
//	go run ./scripts/cost -json      # the figures as JSON
//
// The mix: new conversations (turn 1); one conversation continued to turn
// -turns (turns 2, 11 and the last reported on their own, and the mean of
// turns 2 on); executions with an Idempotency-Key and a retry of each
// (replayed); and two refused admissions, a tenant whose hourly requests
// are used up and one whose monthly tokens are. DynamoDB's read and write
// units follow its published rules (units.go, proxy.go). The counts are
// deterministic; nothing here is a timing.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
)

func main() {
	cfg := mixConfig{}
	asJSON := flag.Bool("json", false, "print the figures as JSON")
	flag.IntVar(&cfg.NewConversations, "new", 5, "new conversations (turn 1) to measure")
	flag.IntVar(&cfg.Turns, "turns", 100, "the last turn of the long conversation")
	flag.IntVar(&cfg.Idempotent, "idempotent", 5, "executions with an Idempotency-Key, each retried once")
	flag.Parse()

	// The platform's SDK configuration is read from the environment when
	// it is given endpoints, as here.
	for k, v := range awsEnv() {
		if err := os.Setenv(k, v); err != nil {
			fail(err)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	m, err := run(ctx, cfg)
	if err != nil {
		fail(err)
	}
	r := report(m)
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		err = enc.Encode(r)
	} else {
		err = printText(os.Stdout, r)
	}
	if err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "cost:", err)
	os.Exit(1)
}
