package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
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

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/config"
)

// The API client commands: `bulkhead tenant ...` and `bulkhead bill close`
// call the operator API, `bulkhead key ...` the tenant API. They only speak
// HTTP to a running platform, local or in AWS.

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
		fmt.Fprintf(os.Stderr, "bulkhead %s: %v\n", cl.name, err)
		return 1
	}
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
	cl.fs.StringVar(&o.token, "admin-token", "", "the operator token (default BULKHEAD_ADMIN_TOKEN, else <BULKHEAD_DATA_DIR or .bulkhead>/admin-token)")
	cl.fs.BoolVar(&o.sigv4, "sigv4", sigv4, "sign requests with AWS SigV4 for IAM-authorised operator routes, instead of the token; "+
		"credentials and region from the AWS SDK's default chain (BULKHEAD_SIGV4=1)")
	return o
}

// client returns a client of the operator API: SigV4-signed, or with the
// operator token.
func (o *operatorConn) client(ctx context.Context) (*apiClient, error) {
	if o.sigv4Env != nil {
		return nil, o.sigv4Env
	}
	base, err := baseURL(o.url)
	if err != nil {
		return nil, err
	}
	c := &apiClient{base: base}
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
		c.sign = sigV4(cfg.Credentials, cfg.Region)
		return c, nil
	}
	if c.bearer = o.token; c.bearer == "" {
		if c.bearer, err = adminTokenFromEnv(); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// tenantConn is how a command reaches the tenant API: with a tenant's key.
type tenantConn struct{ url, key string }

func (cl *cmdLine) tenantFlags() *tenantConn {
	t := &tenantConn{}
	cl.fs.StringVar(&t.url, "url", defaultURL(), "the platform's API base URL (BULKHEAD_URL, else http://BULKHEAD_ADDR)")
	cl.fs.StringVar(&t.key, "tenant-key", "", "an API key of the tenant (default BULKHEAD_TENANT_KEY)")
	return t
}

func (t *tenantConn) client() (*apiClient, error) {
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
	return &apiClient{base: base, bearer: key}, nil
}

func baseURL(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", usagef("--url is %q, want http(s)://host[:port][/stage]", s)
	}
	return strings.TrimRight(s, "/"), nil
}

// sigV4 signs requests as IAM-authorised API Gateway routes want them.
func sigV4(creds aws.CredentialsProvider, region string) func(context.Context, *http.Request, []byte) error {
	signer := v4.NewSigner()
	return func(ctx context.Context, req *http.Request, body []byte) error {
		c, err := creds.Retrieve(ctx)
		if err != nil {
			return fmt.Errorf("AWS credentials: %w", err)
		}
		sum := sha256.Sum256(body)
		return signer.SignHTTP(ctx, c, req, hex.EncodeToString(sum[:]), "execute-api", region, time.Now())
	}
}

// apiClient calls the platform's HTTP API.
type apiClient struct {
	base   string
	bearer string                                             // Authorization: Bearer, unless sign is set
	sign   func(context.Context, *http.Request, []byte) error // SigV4
}

// call sends one request with in (nil: no body) as its JSON body and returns
// the answer's body, or an *apiError when the status is not 2xx.
func (c *apiClient) call(ctx context.Context, method, path string, query url.Values, in any) (json.RawMessage, error) {
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return nil, err
		}
	}
	u := c.base + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "bulkhead-cli")
	if c.sign != nil {
		if err := c.sign(ctx, req, body); err != nil {
			return nil, err
		}
	} else if c.bearer != "" {
		req.Header.Set("Authorization", "Bearer "+c.bearer)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		if errors.Is(err, syscall.ECONNREFUSED) {
			return nil, fmt.Errorf("is the platform running at %s? %w", c.base, err)
		}
		return nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("%s %s: read the answer: %w", method, path, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, decodeAPIError(resp.StatusCode, out)
	}
	if !json.Valid(out) {
		return nil, fmt.Errorf("%s %s: HTTP %d with a body that is not JSON", method, path, resp.StatusCode)
	}
	return out, nil
}

// listAll follows next_cursor through a list route and returns its items,
// at most limit of them (0: all).
func (c *apiClient) listAll(ctx context.Context, path string, limit int) ([]json.RawMessage, error) {
	var (
		items  []json.RawMessage
		cursor string
	)
	for limit == 0 || len(items) < limit {
		size := 100
		if limit > 0 {
			size = min(size, limit-len(items))
		}
		q := url.Values{"limit": {strconv.Itoa(size)}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		raw, err := c.call(ctx, "GET", path, q, nil)
		if err != nil {
			return nil, err
		}
		var page struct {
			Data       []json.RawMessage `json:"data"`
			HasMore    bool              `json:"has_more"`
			NextCursor *string           `json:"next_cursor"`
		}
		if err := json.Unmarshal(raw, &page); err != nil {
			return nil, fmt.Errorf("decode a page of %s: %w", path, err)
		}
		items = append(items, page.Data...)
		if !page.HasMore || page.NextCursor == nil || *page.NextCursor == "" {
			break
		}
		if *page.NextCursor == cursor {
			// Asking again would loop for ever.
			return nil, fmt.Errorf("%s answered the cursor %q with itself", path, cursor)
		}
		cursor = *page.NextCursor
	}
	if limit > 0 && len(items) > limit {
		items = items[:limit]
	}
	return items, nil
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

// tenantRow is what the table shows of a tenant.
type tenantRow struct {
	ID     string `json:"tenant_id"`
	Name   string `json:"name"`
	Tier   string `json:"tier"`
	Status string `json:"status"`
}

var tenantHeader = []string{"ID", "NAME", "TIER", "STATUS"}

func (t tenantRow) cells() []string { return []string{t.ID, t.Name, t.Tier, t.Status} }

// printTenant prints one tenant as output says.
func printTenant(output string, raw json.RawMessage) error {
	if output == "json" {
		return printJSON(raw)
	}
	var t tenantRow
	if err := json.Unmarshal(raw, &t); err != nil {
		return fmt.Errorf("decode the tenant: %w", err)
	}
	return printTable(tenantHeader, [][]string{t.cells()})
}

func tenantPath(id string) string { return "/v1/admin/tenants/" + url.PathEscape(id) }

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
	body := map[string]string{"name": *name}
	if *tier != "" {
		body["tier"] = *tier
	}
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	c, err := conn.client(ctx)
	if err != nil {
		return err
	}
	raw, err := c.call(ctx, "POST", "/v1/admin/tenants", nil, body)
	if err != nil {
		return err
	}
	return printSecretOnce(raw)
}

func tenantList(cl *cmdLine, args []string) error {
	return operatorList[tenantRow](cl, args, "/v1/admin/tenants", "tenant", tenantHeader)
}

// row is a list item that prints as table cells.
type row[T any] interface {
	*T
	cells() []string
}

// operatorList is an operator's list command: every page of path (or the
// first --limit items), as a table of R or as JSON.
func operatorList[R any, P row[R]](cl *cmdLine, args []string, path, noun string, header []string) error {
	limit := cl.fs.Int("limit", 0, "list at most N "+noun+"s (default: all of them, following next_cursor)")
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
	items, err := c.listAll(ctx, path, *limit)
	if err != nil {
		return err
	}
	return printList[R, P](items, *output, noun, header)
}

// printList prints list items as JSON, or decoded as R in a table.
func printList[R any, P row[R]](items []json.RawMessage, output, noun string, header []string) error {
	if output == "json" {
		return printJSONList(items)
	}
	rows := make([][]string, len(items))
	for i, it := range items {
		var r R
		if err := json.Unmarshal(it, &r); err != nil {
			return fmt.Errorf("decode a %s: %w", noun, err)
		}
		rows[i] = P(&r).cells()
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
	raw, err := c.call(ctx, "GET", tenantPath(pos[0]), nil, nil)
	if err != nil {
		return err
	}
	return printTenant(*output, raw)
}

// patchTenant sends PATCH /v1/admin/tenants/{id} and prints the tenant.
func patchTenant(conn *operatorConn, output, id string, body any) error {
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	c, err := conn.client(ctx)
	if err != nil {
		return err
	}
	raw, err := c.call(ctx, "PATCH", tenantPath(id), nil, body)
	if err != nil {
		return err
	}
	return printTenant(output, raw)
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
	return patchTenant(conn, *output, pos[0], map[string]string{"tier": pos[1]})
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
		return patchTenant(conn, *output, pos[0], map[string]string{"status": status})
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
	quota := map[string]any{}
	var bad error
	cl.fs.Visit(func(f *flag.Flag) {
		field := strings.ReplaceAll(f.Name, "-", "_")
		switch v, ok := vals[f.Name]; {
		case ok:
			if *v < 0 {
				bad = usagef("--%s is %d, want 0 or more", f.Name, *v)
			}
			quota[field] = *v
		case f.Name == "max-spend-per-month":
			if !usdAmount.MatchString(*spend) {
				bad = usagef("--max-spend-per-month is %q, want a USD amount such as 250 or 12.50", *spend)
			}
			quota[field] = json.Number(*spend)
		}
	})
	if bad != nil {
		return bad
	}
	if len(quota) == 0 {
		return usagef("no quota flag: give at least one of --%s or --max-spend-per-month", strings.Join(ints, ", --"))
	}
	return patchTenant(conn, *output, pos[0], map[string]any{"quota": quota})
}

// keyRow is what the table shows of an API key.
type keyRow struct {
	ID        string `json:"key_id"`
	Name      string `json:"name"`
	Prefix    string `json:"prefix"`
	Status    string `json:"status"`
	CreatedAt string `json:"created_at"`
}

func (k keyRow) cells() []string { return []string{k.ID, k.Name, k.Prefix, k.Status, k.CreatedAt} }

func keyCreate(cl *cmdLine, args []string) error {
	name := cl.fs.String("name", "", "the key's name (default \"default\")")
	conn := cl.tenantFlags()
	if _, err := cl.parse(args, 0, ""); err != nil {
		return err
	}
	var body any // no body: the key is named "default"
	if *name != "" {
		body = map[string]string{"name": *name}
	}
	c, err := conn.client()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	raw, err := c.call(ctx, "POST", "/v1/keys", nil, body)
	if err != nil {
		return err
	}
	return printSecretOnce(raw)
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
	items, err := c.listAll(ctx, "/v1/keys", 0)
	if err != nil {
		return err
	}
	return printList[keyRow](items, *output, "key", []string{"KEY_ID", "NAME", "PREFIX", "STATUS", "CREATED_AT"})
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
	raw, err := c.call(ctx, "DELETE", "/v1/keys/"+url.PathEscape(pos[0]), nil, nil)
	if err != nil {
		return err
	}
	return printJSON(raw)
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
