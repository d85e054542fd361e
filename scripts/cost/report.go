package main

import (
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"text/tabwriter"
)

// Figures is what one execution of a scenario costs, on average.
type Figures struct {
	Scenario   string `json:"scenario"`
	Executions int    `json:"executions"`
	// Requests are store requests (DynamoDB and S3), the authorizer's
	// included.
	Requests     float64 `json:"store_requests"`
	DynamoDB     float64 `json:"dynamodb_requests"`
	S3           float64 `json:"s3_requests"`
	ReadUnits    float64 `json:"dynamodb_read_units"`
	WriteUnits   float64 `json:"dynamodb_write_units"`
	ItemsWritten float64 `json:"dynamodb_items_written"`
	// S3Put and S3Get are S3 requests at the PUT rate (PUT, POST, LIST) and
	// at the GET rate (GET, HEAD); DELETE is free.
	S3Put      float64 `json:"s3_put_requests"`
	S3Get      float64 `json:"s3_get_requests"`
	S3BytesIn  float64 `json:"s3_bytes_in"`
	S3BytesOut float64 `json:"s3_bytes_out"`
	// Operations is where the requests go.
	Operations map[string]opStat `json:"operations"`
	Cost       Cost              `json:"usd_per_million_executions"`
}

// Cost is dollars per million executions at list prices. Lambda's duration
// is not in it: see Report.LambdaPerSecond.
type Cost struct {
	APIGateway     float64 `json:"api_gateway"`
	LambdaRequests float64 `json:"lambda_requests"`
	DynamoDB       float64 `json:"dynamodb"`
	S3             float64 `json:"s3"`
	// Stores is DynamoDB and S3; Total adds API Gateway and Lambda's
	// request fees.
	Stores float64 `json:"stores"`
	Total  float64 `json:"total"`
}

// Report is the cost model's output.
type Report struct {
	Scenarios []Figures `json:"scenarios"`
	// SpendCheck is one check of the circuit breaker's windows (at most
	// every 5 s per tenant and process, not per execution: one Query, and a
	// checkpoint written at most once per 10-second slot), priced per
	// million checks; nil when the run made none.
	SpendCheck *Figures `json:"breaker_spend_check,omitempty"`
	// LambdaPerSecond is what each second of a function's run costs per
	// million executions, at the stack's memory sizes.
	LambdaPerSecond LambdaSeconds `json:"lambda_usd_per_million_per_second"`
	// APIGatewayHTTP is what API Gateway would cost per million requests as
	// an HTTP API instead of a REST API.
	APIGatewayHTTP float64  `json:"api_gateway_http_usd_per_million"`
	Warnings       []string `json:"warnings,omitempty"`
}

// LambdaSeconds is Lambda's duration price per second of run time.
type LambdaSeconds struct {
	ExecuteMemoryMB    int     `json:"execute_memory_mb"`
	Execute            float64 `json:"execute"`
	AuthorizerMemoryMB int     `json:"authorizer_memory_mb"`
	Authorizer         float64 `json:"authorizer"`
}

// figures averages a scenario per execution and prices it.
func figures(name string, n int, sum tally, perRequest bool) Figures {
	f := Figures{Scenario: name, Executions: n, Operations: map[string]opStat{}}
	for _, op := range sum.ops() {
		s := sum[op].per(n)
		f.Operations[op] = s
		f.Requests += s.Requests
		f.ReadUnits += s.ReadUnits
		f.WriteUnits += s.WriteUnits
		f.ItemsWritten += s.ItemsWritten
		if service, _, _ := strings.Cut(op, "."); service == "S3" {
			f.S3 += s.Requests
			f.S3BytesIn += s.BytesIn
			f.S3BytesOut += s.BytesOut
			switch {
			case s3PutTier(op):
				f.S3Put += s.Requests
			case op != "S3.DELETE":
				f.S3Get += s.Requests
			}
		} else {
			f.DynamoDB += s.Requests
		}
	}
	c := &f.Cost
	c.DynamoDB = f.ReadUnits*dynamoReadPerMillion + f.WriteUnits*dynamoWritePerMillion
	c.S3 = f.S3Put*s3PutPerMillion + f.S3Get*s3GetPerMillion
	c.Stores = c.DynamoDB + c.S3
	if perRequest {
		c.APIGateway = apiGatewayRESTPerMillion
		c.LambdaRequests = lambdaInvocations * lambdaRequestPerMillion
	}
	c.Total = c.Stores + c.APIGateway + c.LambdaRequests
	return f
}

// report prices a measurement.
func report(m *measurement) Report {
	r := Report{
		LambdaPerSecond: LambdaSeconds{
			ExecuteMemoryMB: executeMemoryMB, Execute: lambdaPerSecondPerMillion(executeMemoryMB),
			AuthorizerMemoryMB: authorizerMemoryMB, Authorizer: lambdaPerSecondPerMillion(authorizerMemoryMB),
		},
		APIGatewayHTTP: apiGatewayHTTPPerMillion,
		Warnings:       m.Warnings,
	}
	for _, sc := range m.Scenarios {
		r.Scenarios = append(r.Scenarios, figures(sc.Name, sc.Executions, sc.Sum, true))
	}
	// One Query per check; a check writes a checkpoint at most once per
	// 10-second slot, counted with the checks.
	checks := m.Periodic["DynamoDB.Query"].Requests
	if checks > 0 {
		f := figures("breaker check", int(checks), m.Periodic, false)
		r.SpendCheck = &f
	}
	return r
}

// num prints a figure to two decimals, whole numbers without.
func num(v float64) string {
	if v = math.Round(v*100) / 100; v == math.Trunc(v) {
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	return strconv.FormatFloat(v, 'f', 2, 64)
}

func usd(v float64) string { return "$" + strconv.FormatFloat(v, 'f', 2, 64) }

// printText prints the report as a table, where the requests go, and the
// prices that are not per request.
func printText(w io.Writer, r Report) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "per execution\tn\trequests\tDynamoDB\tS3\tRCU\tWCU\titems written\tS3 PUT\tS3 GET\tS3 bytes in\tS3 bytes out\t$/M stores\t$/M total\t")
	for _, f := range r.Scenarios {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", f.Scenario, f.Executions, num(f.Requests), num(f.DynamoDB), num(f.S3),
			num(f.ReadUnits), num(f.WriteUnits), num(f.ItemsWritten), num(f.S3Put), num(f.S3Get), num(math.Round(f.S3BytesIn)), num(math.Round(f.S3BytesOut)),
			usd(f.Cost.Stores), usd(f.Cost.Total))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Where the requests go (per execution):")
	for _, f := range r.Scenarios {
		fmt.Fprintf(w, "  %s: %s\n", f.Scenario, breakdown(f))
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "$/M total = stores + API Gateway REST %s + Lambda requests %s (%d per execution: the authorizer, uncached, and the function).\n",
		usd(apiGatewayRESTPerMillion), usd(lambdaInvocations*lambdaRequestPerMillion), lambdaInvocations)
	fmt.Fprintf(w, "Not in it: Lambda duration. Each second the execute function runs (%d MB), waiting for a model or not, costs %s per million executions; each second of the authorizer (%d MB) %s.\n",
		r.LambdaPerSecond.ExecuteMemoryMB, usd(r.LambdaPerSecond.Execute), r.LambdaPerSecond.AuthorizerMemoryMB, usd(r.LambdaPerSecond.Authorizer))
	fmt.Fprintf(w, "API Gateway HTTP APIs cost %s per million requests instead of %s, but have no usage plans or API keys.\n",
		usd(r.APIGatewayHTTP), usd(apiGatewayRESTPerMillion))
	if s := r.SpendCheck; s != nil {
		fmt.Fprintf(w, "Not per execution: the breaker's check, at most every 5 s per tenant and process (%d in this run), each %s: %s per million checks.\n",
			s.Executions, breakdown(*s), usd(s.Cost.Stores))
	}
	for _, warning := range r.Warnings {
		fmt.Fprintf(w, "warning: %s\n", warning)
	}
	return nil
}

// breakdown lists a scenario's operations with their counts and units.
func breakdown(f Figures) string {
	var parts []string
	for _, op := range tally(f.Operations).ops() {
		s := f.Operations[op]
		var detail []string
		if s.ItemsWritten > 0 {
			detail = append(detail, num(s.ItemsWritten)+" items of "+num(math.Round(s.ItemBytesWritten))+" B")
		}
		if s.ReadUnits > 0 {
			detail = append(detail, num(s.ReadUnits)+" RCU")
		}
		if s.WriteUnits > 0 {
			detail = append(detail, num(s.WriteUnits)+" WCU")
		}
		if s.BytesIn > 0 {
			detail = append(detail, num(math.Round(s.BytesIn))+" B in")
		}
		if s.BytesOut > 0 {
			detail = append(detail, num(math.Round(s.BytesOut))+" B out")
		}
		part := op + " " + num(s.Requests)
		if len(detail) > 0 {
			part += " (" + strings.Join(detail, ", ") + ")"
		}
		parts = append(parts, part)
	}
	return strings.Join(parts, "; ")
}
