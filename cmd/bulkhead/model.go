package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"strings"

	"github.com/bulkhead-dev/bulkhead/pkg/bulkhead"
	"github.com/bulkhead-dev/bulkhead/pkg/client"
)

// The priced model catalogue: `bulkhead model list` and `bulkhead model set`
// call the operator API's /v1/admin/models.

var modelHeader = []string{"MODEL", "INPUT/M USD", "OUTPUT/M USD", "CONTEXT", "MAX OUTPUT", "TIERS"}

// modelCells is what the table shows of a catalogue entry.
func modelCells(m client.CatalogueModel) []string {
	return []string{m.Model, m.InputPerMillion.String(), m.OutputPerMillion.String(), fmt.Sprint(m.ContextWindow), fmt.Sprint(m.MaxOutputTokens),
		strings.Join(m.Tiers, ",")}
}

func modelList(cl *cmdLine, args []string) error {
	return operatorList(cl, args, (*client.Operator).ListModels, "models", modelHeader, modelCells)
}

// modelSet adds or changes a catalogue entry: every field is sent (the
// entry is replaced), --tiers omitted meaning every tier.
func modelSet(cl *cmdLine, args []string) error {
	in := cl.fs.String("input-per-million", "", "USD per million input tokens (required, > 0, at most 6 decimals)")
	out := cl.fs.String("output-per-million", "", "USD per million output tokens (required, > 0, at most 6 decimals)")
	tiers := cl.fs.String("tiers", "", "comma-separated tiers that may use the model (default: every tier)")
	window := cl.fs.Int64("context-window", 0, "the model's context window in tokens (required)")
	maxOut := cl.fs.Int64("max-output-tokens", 0, "the most tokens one reply may have (required, at most --context-window)")
	output := cl.outputFlag("json")
	conn := cl.operatorFlags()
	pos, err := cl.parse(args, 1, "PROVIDER/MODEL_ID")
	if err != nil {
		return err
	}
	if err := checkOutput(*output); err != nil {
		return err
	}
	name := pos[0]
	if name == bulkhead.DefaultModel {
		name = bulkhead.ProviderOffline + "/" + name
	}
	provider, id, ok := strings.Cut(name, "/")
	if !ok || provider == "" || id == "" {
		return usagef("model %q: want PROVIDER/MODEL_ID, PROVIDER one of %s", pos[0], strings.Join(bulkhead.Providers, ", "))
	}
	for _, f := range []struct {
		name, v string
	}{{"input-per-million", *in}, {"output-per-million", *out}} {
		if !usdAmount.MatchString(f.v) {
			return usagef("--%s is %q, want a USD amount such as 0.15 or 3", f.name, f.v)
		}
	}
	if *window <= 0 || *maxOut <= 0 {
		return usagef("--context-window and --max-output-tokens are required, greater than 0")
	}
	req := client.PutModelRequest{InputPerMillion: json.Number(*in), OutputPerMillion: json.Number(*out),
		ContextWindow: *window, MaxOutputTokens: *maxOut}
	cl.fs.Visit(func(f *flag.Flag) {
		if f.Name == "tiers" {
			// None listed (--tiers ""): every tier, as without the flag.
			for t := range strings.SplitSeq(*tiers, ",") {
				if t = strings.TrimSpace(t); t != "" {
					req.Tiers = append(req.Tiers, t)
				}
			}
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	c, err := conn.client(ctx)
	if err != nil {
		return err
	}
	m, err := c.PutModel(ctx, provider, id, req)
	if err != nil {
		return err
	}
	if *output == "json" {
		return printJSON(m.RawJSON())
	}
	return printTable(modelHeader, [][]string{modelCells(*m)})
}
