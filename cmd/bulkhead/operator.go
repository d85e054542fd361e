package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"iter"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/aws/aws-sdk-go-v2/config"

	"github.com/bulkhead-dev/bulkhead/pkg/awsclients"
	"github.com/bulkhead-dev/bulkhead/pkg/client"
)

// The API client commands: `bulkhead tenant ...` and `bulkhead bill close`
// call the operator API, `bulkhead key ...` the tenant API. They only speak
// HTTP to a running platform, local or in AWS, through the Go SDK
// (pkg/client): an Operator, or a Client on a tenant's key.

// callTimeout bounds one command's calls; closing a month has its own, longer one.
const callTimeout = time.Minute

// command is one `bulkhead <group> <verb>`.
type command struct {
	verb, synopsis string
	run            func(cl *cmdLine, args []string) error
}

// apiCommands are the commands runAPICommand serves, by group, in the order
// the help lists them.
var apiCommands = map[string][]command{
	"tenant": {
		{"create", "--name NAME [--tier TIER]", tenantCreate},
		{"list", "[--limit N]", tenantList},
		{"get", "ID", tenantGet},
		{"set-tier", "ID TIER", tenantSetTier},
		{"suspend", "ID", tenantSetStatus("suspended")},
		{"resume", "ID", tenantSetStatus("active")},
		{"set-quota", "ID --max-tokens-per-month N ...", tenantSetQuota},
	},
	"key": {
		{"create", "--tenant-key KEY [--name NAME]", keyCreate},
		{"list", "--tenant-key KEY", keyList},
		{"revoke", "--tenant-key KEY KEY_ID", keyRevoke},
	},
	"bill": {
		{"close", "--month YYYY-MM", billClose},
	},
	"audit": {
		{"list", "[--tenant ID] [--action ACTION] [--since T] [--until T] [--limit N]", auditList},
	},
	"model": {
		{"list", "[--limit N]", modelList},
		{"set", "PROVIDER/MODEL_ID --input-per-million USD --output-per-million USD [--tiers T1,T2] --context-window N --max-output-tokens N", modelSet},
	},
}

// runAPICommand runs `bulkhead <group> <verb> ...`, reports its error on
// stderr and returns the exit code: 0, 1 when it failed, 2 for a usage error.
func runAPICommand(group string, args []string) int {
	cmds := apiCommands[group]
	var verbs []string
	for _, c := range cmds {
		verbs = append(verbs, c.verb)
	}
	groupUsage := fmt.Sprintf("usage: bulkhead %s %s ... (bulkhead %[1]s <command> -h for its flags)\n", group, strings.Join(verbs, "|"))
	if len(args) == 0 {
		fmt.Fprintf(os.Stderr, "bulkhead %s: missing command\n%s", group, groupUsage)
		return 2
	}
	if args[0] == "-h" || args[0] == "-help" || args[0] == "--help" || args[0] == "help" {
		fmt.Print(groupUsage)
		return 0
	}
	for _, c := range cmds {
		if c.verb == args[0] {
			cl := newCmdLine(group+" "+c.verb, c.synopsis)
			return report(cl, c.run(cl, args[1:]))
		}
	}
	fmt.Fprintf(os.Stderr, "bulkhead %s: unknown command %q\n%s", group, args[0], groupUsage)
	return 2
}

// report prints err the way the commands promise and returns the exit code.
func report(cl *cmdLine, err error) int {
	var (
		help  *helpRequested
		usage *usageError
		api   *apiError
	)
	if e := client.AsError(err); e != nil {
		err = apiErrorOf(e)
	}
	switch {
	case err == nil:
		return 0
	case errors.As(err, &help):
		fmt.Printf("usage: bulkhead %s %s\n\nflags:\n", cl.name, cl.synopsis)
		cl.fs.SetOutput(os.Stdout)
		cl.fs.PrintDefaults()
		return 0
	case errors.As(err, &usage):
		fmt.Fprintf(os.Stderr, "bulkhead %[1]s: %[2]s\nusage: bulkhead %[1]s %[3]s (-h for the flags)\n", cl.name, usage.msg, cl.synopsis)
		return 2
	case errors.As(err, &api):
		fmt.Fprintln(os.Stderr, "bulkhead: "+printable(api.Error()))
		return 1
	default:
		fmt.Fprintf(os.Stderr, "bulkhead %s: %v\n", cl.name, cl.transportError(err))
		return 1
	}
}

// transportError is how a request that got no answer is reported: the
// HTTP client's own error, with a hint when nothing listens at the URL.
func (cl *cmdLine) transportError(err error) error {
	var ue *url.Error
	if !errors.As(err, &ue) {
		return err
	}
	if errors.Is(ue, syscall.ECONNREFUSED) && cl.url != nil {
		return fmt.Errorf("is the platform running at %s? %w", strings.TrimRight(*cl.url, "/"), ue)
	}
	return ue
}

// usageError is a command line the command cannot run (exit code 2).
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

// helpRequested is -h: the command's flags go to stdout and it exits 0.
type helpRequested struct{}

func (*helpRequested) Error() string { return "help requested" }

// apiError is an error answer of the platform,
// {"error": {"code": "...", "message": "..."}}, or of what stands in front
// of it (API Gateway refusing an unsigned request answers {"message": "..."}).
type apiError struct {
	Status  int
	Code    string // empty when the answer was not the platform's
	Message string
}

func (e *apiError) Error() string {
	if e.Code == "" {
		return fmt.Sprintf("HTTP %d: %s", e.Status, e.Message)
	}
	return e.Code + ": " + e.Message
}

// apiErrorOf is the SDK's error answer as the commands report it: the
// platform's code and message, or what stood in front of it answered.
func apiErrorOf(e *client.Error) *apiError {
	if code, _ := e.Fields["code"].(string); code != "" {
		a := &apiError{Status: e.Status, Code: code, Message: e.Message}
		if a.Message == "" {
			a.Message = http.StatusText(e.Status)
		}
		return a
	}
	if len(e.Fields) > 0 {
		// An error object without a code.
		return &apiError{Status: e.Status, Message: http.StatusText(e.Status)}
	}
	// Not the platform's error object: the SDK keeps the body as Message.
	return decodeAPIError(e.Status, []byte(e.Message))
}

func decodeAPIError(status int, body []byte) *apiError {
	var b struct {
		Error *struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
		Message string `json:"message"`
	}
	e := &apiError{Status: status}
	switch {
	case json.Unmarshal(body, &b) != nil:
		e.Message = strings.TrimSpace(string(body))
		if len(e.Message) > 200 {
			e.Message = e.Message[:200] + "..."
		}
	case b.Error != nil && b.Error.Code != "":
		e.Code, e.Message = b.Error.Code, b.Error.Message
	default:
		e.Message = b.Message
	}
	if e.Message == "" {
		e.Message = http.StatusText(status)
	}
	return e
}

// printable replaces control characters, so that what the API or a tenant
// chose (a tenant's name) cannot move the cursor or break a table row.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
}

// cmdLine parses one command's flags and arguments.
type cmdLine struct {
	name, synopsis string
	fs             *flag.FlagSet
	url            *string // --url, for the commands that call the API
}

func newCmdLine(name, synopsis string) *cmdLine {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	// Errors are reported once, by report.
	fs.SetOutput(io.Discard)
	return &cmdLine{name: name, synopsis: synopsis, fs: fs}
}

func usagef(format string, a ...any) error {
	return &usageError{msg: fmt.Sprintf(format, a...)}
}

// parse parses the flags wherever they are among the arguments (tenant get
// ID --output table) and returns the arguments, of which it wants exactly n
// (named by names for the message).
func (cl *cmdLine) parse(args []string, n int, names string) ([]string, error) {
	var pos []string
	for {
		if err := cl.fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, &helpRequested{}
			}
			return nil, &usageError{msg: err.Error()}
		}
		rest := cl.fs.Args()
		if used := len(args) - len(rest); used > 0 && args[used-1] == "--" {
			pos = append(pos, rest...)
			break
		}
		if len(rest) == 0 {
			break
		}
		pos, args = append(pos, rest[0]), rest[1:]
	}
	if len(pos) != n {
		if n == 0 {
			return nil, usagef("unexpected argument %q", pos[0])
		}
		return nil, usagef("want %s, got %d argument(s)", names, len(pos))
	}
	for i, a := range pos {
		if strings.TrimSpace(a) == "" {
			return nil, usagef("argument %d is empty", i+1)
		}
	}
	return pos, nil
}

// outputFlag adds --output, json or table, with def the default.
func (cl *cmdLine) outputFlag(def string) *string {
	return cl.fs.String("output", def, "json or table")
}

func checkOutput(o string) error {
	if o != "json" && o != "table" {
		return usagef("--output is %q, want json or table", o)
	}
	return nil
}

// operatorConn is how a command reaches the operator API.
type operatorConn struct {
	url, token string
	sigv4      bool
	sigv4Env   error // BULKHEAD_SIGV4 is not a boolean
}

// operatorFlags adds the flags every operator command takes.
func (cl *cmdLine) operatorFlags() *operatorConn {
	o := &operatorConn{}
	sigv4 := false
	if v := os.Getenv("BULKHEAD_SIGV4"); v != "" {
		if sigv4, o.sigv4Env = strconv.ParseBool(v); o.sigv4Env != nil {
			o.sigv4Env = usagef("BULKHEAD_SIGV4 is %q, want 1, true, 0 or false", v)
		}
	}
	cl.fs.StringVar(&o.url, "url", defaultURL(), "the platform's API base URL (BULKHEAD_URL, else http://BULKHEAD_ADDR)")
	cl.url = &o.url
	cl.fs.StringVar(&o.token, "admin-token", "", "the operator token (default BULKHEAD_ADMIN_TOKEN, else <BULKHEAD_DATA_DIR or .bulkhead>/admin-token)")
	cl.fs.BoolVar(&o.sigv4, "sigv4", sigv4, "sign requests with AWS SigV4 for IAM-authorised operator routes, instead of the token; "+
		"credentials and region from the AWS SDK's default chain (BULKHEAD_SIGV4=1)")
	return o
}

// sdkOptions are the SDK options of every command: its calls are bounded by
// the command's context alone.
func sdkOptions(hc *http.Client) []client.Option {
	opts := []client.Option{client.WithUserAgent("bulkhead-cli"), client.WithTimeout(0)}
	if hc != nil {
		opts = append(opts, client.WithHTTPClient(hc))
	}
	return opts
}

// client returns a client of the operator API: SigV4-signed, or with the
// operator token.
func (o *operatorConn) client(ctx context.Context) (*client.Operator, error) {
	if o.sigv4Env != nil {
		return nil, o.sigv4Env
	}
	base, err := baseURL(o.url)
	if err != nil {
		return nil, err
	}
	if o.sigv4 {
		cfg, err := config.LoadDefaultConfig(ctx)
		if err != nil {
			return nil, fmt.Errorf("load the AWS configuration: %w", err)
		}
		if cfg.Region == "" {
			return nil, errors.New("--sigv4 needs an AWS region: set AWS_REGION or the profile's region")
		}
		if cfg.Credentials == nil {
			return nil, errors.New("--sigv4 found no AWS credentials")
		}
		if _, err := cfg.Credentials.Retrieve(ctx); err != nil {
			return nil, fmt.Errorf("AWS credentials: %w", err)
		}
		// Signed requests carry no operator token.
		hc := &http.Client{Transport: awsclients.NewSigningTransport(nil, cfg.Credentials, cfg.Region, "execute-api")}
		return client.NewOperator(base, "", sdkOptions(hc)...), nil
	}
	token := o.token
	if token == "" {
		if token, err = adminTokenFromEnv(); err != nil {
			return nil, err
		}
	}
	return client.NewOperator(base, token, sdkOptions(nil)...), nil
}

// tenantConn is how a command reaches the tenant API: with a tenant's key.
type tenantConn struct{ url, key string }

func (cl *cmdLine) tenantFlags() *tenantConn {
	t := &tenantConn{}
	cl.fs.StringVar(&t.url, "url", defaultURL(), "the platform's API base URL (BULKHEAD_URL, else http://BULKHEAD_ADDR)")
	cl.url = &t.url
	cl.fs.StringVar(&t.key, "tenant-key", "", "an API key of the tenant (default BULKHEAD_TENANT_KEY)")
	return t
}

func (t *tenantConn) client() (*client.Client, error) {
	base, err := baseURL(t.url)
	if err != nil {
		return nil, err
	}
	key := t.key
	if key == "" {
		key = os.Getenv("BULKHEAD_TENANT_KEY")
	}
	if key == "" {
		return nil, usagef("--tenant-key (or BULKHEAD_TENANT_KEY) is required")
	}
	return client.New(base, key, sdkOptions(nil)...), nil
}

func baseURL(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", usagef("--url is %q, want http(s)://host[:port][/stage]", s)
	}
	return strings.TrimRight(s, "/"), nil
}

// listItems reads a list to its end, or its first limit items (0: all).
func listItems[T any](seq iter.Seq2[T, error], limit int) ([]T, error) {
	var items []T
	for it, err := range seq {
		if err != nil {
			return nil, err
		}
		items = append(items, it)
		if limit > 0 && len(items) >= limit {
			break
		}
	}
	return items, nil
}

// pageOptions asks for pages of at most 100 items, fewer when the command
// wants fewer (limit; 0: all).
func pageOptions(limit int) *client.ListOptions {
	if limit > 0 && limit < 100 {
		return &client.ListOptions{Limit: limit}
	}
	return &client.ListOptions{Limit: 100}
}

// printJSONList prints the items of a list as one indented JSON array.
func printJSONList(items []json.RawMessage) error {
	if items == nil {
		items = []json.RawMessage{}
	}
	raw, err := json.Marshal(items)
	if err != nil {
		return err
	}
	return printJSON(raw)
}

// printJSON prints an answer indented, its fields in the API's order.
func printJSON(raw json.RawMessage) error {
	var b bytes.Buffer
	if err := json.Indent(&b, raw, "", "  "); err != nil {
		return err
	}
	b.WriteByte('\n')
	_, err := os.Stdout.Write(b.Bytes())
	return err
}

// printTable prints rows under header, aligned.
func printTable(header []string, rows [][]string) error {
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, strings.Join(header, "\t"))
	for _, r := range rows {
		cells := make([]string, len(r))
		for i, c := range r {
			cells[i] = strings.ReplaceAll(printable(c), "\t", " ")
		}
		fmt.Fprintln(w, strings.Join(cells, "\t"))
	}
	return w.Flush()
}

var tenantHeader = []string{"ID", "NAME", "TIER", "STATUS"}

// tenantCells is what the table shows of a tenant.
func tenantCells(t client.Tenant) []string { return []string{t.TenantID, t.Name, t.Tier, t.Status} }

// printTenant prints one tenant as output says: the API's JSON, or a table.
func printTenant(output string, t *client.Tenant) error {
	if output == "json" {
		return printJSON(t.RawJSON())
	}
	return printTable(tenantHeader, [][]string{tenantCells(*t)})
}

func tenantCreate(cl *cmdLine, args []string) error {
	name := cl.fs.String("name", "", "the tenant's name (required)")
	tier := cl.fs.String("tier", "", "starter (the default), professional or enterprise")
	conn := cl.operatorFlags()
	if _, err := cl.parse(args, 0, ""); err != nil {
		return err
	}
	if strings.TrimSpace(*name) == "" {
		return usagef("--name is required")
	}
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	c, err := conn.client(ctx)
	if err != nil {
		return err
	}
	t, err := c.CreateTenant(ctx, *name, *tier)
	if err != nil {
		return err
	}
	return printSecretOnce(t.RawJSON())
}

func tenantList(cl *cmdLine, args []string) error {
	return operatorList(cl, args, (*client.Operator).ListTenants, "tenants", tenantHeader, tenantCells)
}

// operatorList is an operator's list command: every page of a list (or the
// first --limit items), as a table or as JSON. A command with filters of its
// own defines their flags on cl.fs first and reads them in list.
func operatorList[T rawJSONer](cl *cmdLine, args []string, list func(*client.Operator, context.Context, *client.ListOptions) iter.Seq2[T, error],
	nouns string, header []string, cells func(T) []string) error {
	limit := cl.fs.Int("limit", 0, "list at most N "+nouns+" (default: all of them, following next_cursor)")
	output := cl.outputFlag("table")
	conn := cl.operatorFlags()
	if _, err := cl.parse(args, 0, ""); err != nil {
		return err
	}
	if err := checkOutput(*output); err != nil {
		return err
	}
	if *limit < 0 {
		return usagef("--limit is %d, want 1 or more (0: all)", *limit)
	}
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	c, err := conn.client(ctx)
	if err != nil {
		return err
	}
	items, err := listItems(list(c, ctx, pageOptions(*limit)), *limit)
	if err != nil {
		return err
	}
	return printList(items, *output, header, cells)
}

// rawJSONer is an SDK value that keeps the JSON the API sent.
type rawJSONer interface{ RawJSON() json.RawMessage }

// printList prints list items as the API's JSON, or as a table.
func printList[T rawJSONer](items []T, output string, header []string, cells func(T) []string) error {
	if output == "json" {
		raw := make([]json.RawMessage, len(items))
		for i, it := range items {
			raw[i] = it.RawJSON()
		}
		return printJSONList(raw)
	}
	rows := make([][]string, len(items))
	for i, it := range items {
		rows[i] = cells(it)
	}
	return printTable(header, rows)
}

func tenantGet(cl *cmdLine, args []string) error {
	output := cl.outputFlag("json")
	conn := cl.operatorFlags()
	pos, err := cl.parse(args, 1, "ID")
	if err != nil {
		return err
	}
	if err := checkOutput(*output); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	c, err := conn.client(ctx)
	if err != nil {
		return err
	}
	t, err := c.GetTenant(ctx, pos[0])
	if err != nil {
		return err
	}
	return printTenant(*output, t)
}

// patchTenant sends PATCH /v1/admin/tenants/{id} and prints the tenant.
func patchTenant(conn *operatorConn, output, id string, req client.UpdateTenantRequest) error {
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	c, err := conn.client(ctx)
	if err != nil {
		return err
	}
	t, err := c.UpdateTenant(ctx, id, req)
	if err != nil {
		return err
	}
	return printTenant(output, t)
}

func tenantSetTier(cl *cmdLine, args []string) error {
	output := cl.outputFlag("json")
	conn := cl.operatorFlags()
	pos, err := cl.parse(args, 2, "ID and TIER")
	if err != nil {
		return err
	}
	if err := checkOutput(*output); err != nil {
		return err
	}
	return patchTenant(conn, *output, pos[0], client.UpdateTenantRequest{Tier: &pos[1]})
}

// tenantSetStatus is tenant suspend (status "suspended") or resume ("active").
func tenantSetStatus(status string) func(*cmdLine, []string) error {
	return func(cl *cmdLine, args []string) error {
		output := cl.outputFlag("json")
		conn := cl.operatorFlags()
		pos, err := cl.parse(args, 1, "ID")
		if err != nil {
			return err
		}
		if err := checkOutput(*output); err != nil {
			return err
		}
		return patchTenant(conn, *output, pos[0], client.UpdateTenantRequest{Status: &status})
	}
}

// usdAmount is a USD amount as the API takes it: at most six decimals.
var usdAmount = regexp.MustCompile(`^[0-9]+(\.[0-9]{1,6})?$`)

func tenantSetQuota(cl *cmdLine, args []string) error {
	ints := []string{"max-requests-per-hour", "max-tokens-per-month", "max-concurrent-agents", "max-storage-mb"}
	vals := make(map[string]*int64, len(ints))
	for _, n := range ints {
		vals[n] = cl.fs.Int64(n, 0, "override the tier's "+strings.ReplaceAll(n, "-", "_"))
	}
	spend := cl.fs.String("max-spend-per-month", "", "override the tier's max_spend_per_month, in USD (at most 6 decimals)")
	output := cl.outputFlag("json")
	conn := cl.operatorFlags()
	pos, err := cl.parse(args, 1, "ID")
	if err != nil {
		return err
	}
	if err := checkOutput(*output); err != nil {
		return err
	}
	var (
		quota client.QuotaOverrides
		set   bool
		bad   error
	)
	// The fields of the flags given, by flag.
	fields := map[string]**int64{
		"max-requests-per-hour": &quota.MaxRequestsPerHour,
		"max-tokens-per-month":  &quota.MaxTokensPerMonth,
		"max-concurrent-agents": &quota.MaxConcurrentAgents,
		"max-storage-mb":        &quota.MaxStorageMB,
	}
	cl.fs.Visit(func(f *flag.Flag) {
		switch v, ok := vals[f.Name]; {
		case ok:
			if *v < 0 {
				bad = usagef("--%s is %d, want 0 or more", f.Name, *v)
			}
			*fields[f.Name], set = v, true
		case f.Name == "max-spend-per-month":
			if !usdAmount.MatchString(*spend) {
				bad = usagef("--max-spend-per-month is %q, want a USD amount such as 250 or 12.50", *spend)
			}
			n := json.Number(*spend)
			quota.MaxSpendPerMonth, set = &n, true
		}
	})
	if bad != nil {
		return bad
	}
	if !set {
		return usagef("no quota flag: give at least one of --%s or --max-spend-per-month", strings.Join(ints, ", --"))
	}
	return patchTenant(conn, *output, pos[0], client.UpdateTenantRequest{Quota: &quota})
}

var keyHeader = []string{"KEY_ID", "NAME", "PREFIX", "STATUS", "CREATED_AT"}

// keyCells is what the table shows of an API key; its creation time as the
// API wrote it.
func keyCells(k client.Key) []string {
	var at struct {
		CreatedAt string `json:"created_at"`
	}
	_ = json.Unmarshal(k.RawJSON(), &at)
	return []string{k.KeyID, k.Name, k.Prefix, k.Status, at.CreatedAt}
}

func keyCreate(cl *cmdLine, args []string) error {
	name := cl.fs.String("name", "", "the key's name (default \"default\")")
	conn := cl.tenantFlags()
	if _, err := cl.parse(args, 0, ""); err != nil {
		return err
	}
	c, err := conn.client()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	// No name: the key is named "default".
	k, err := c.CreateKey(ctx, *name)
	if err != nil {
		return err
	}
	return printSecretOnce(k.RawJSON())
}

func keyList(cl *cmdLine, args []string) error {
	output := cl.outputFlag("table")
	conn := cl.tenantFlags()
	if _, err := cl.parse(args, 0, ""); err != nil {
		return err
	}
	if err := checkOutput(*output); err != nil {
		return err
	}
	c, err := conn.client()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	items, err := listItems(c.ListKeys(ctx, pageOptions(0)), 0)
	if err != nil {
		return err
	}
	return printList(items, *output, keyHeader, keyCells)
}

func keyRevoke(cl *cmdLine, args []string) error {
	conn := cl.tenantFlags()
	pos, err := cl.parse(args, 1, "KEY_ID")
	if err != nil {
		return err
	}
	c, err := conn.client()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	k, err := c.RevokeKey(ctx, pos[0])
	if err != nil {
		return err
	}
	return printJSON(k.RawJSON())
}

// printSecretOnce prints a response that carries a new key's secret, and
// says it will not be shown again.
func printSecretOnce(raw []byte) error {
	if err := printJSON(raw); err != nil {
		return err
	}
	fmt.Fprintln(os.Stderr, "The api_key is shown only this once: keep it now.")
	return nil
}
