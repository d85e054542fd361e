package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"time"
)

// proxyServer is a counting reverse proxy listening on loopback.
type proxyServer struct {
	srv *http.Server
	url string
}

func serveProxy(h http.Handler) (*proxyServer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen for a proxy: %w", err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return &proxyServer{srv: srv, url: "http://" + ln.Addr().String()}, nil
}

func (p *proxyServer) close(ctx context.Context) error { return p.srv.Shutdown(ctx) }

// transport is the proxies' connection pool to the embedded servers: the
// platform sends the context window's S3 reads at once.
func transport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns, t.MaxIdleConnsPerHost = 128, 64
	return t
}

func reverseProxy(target *url.URL, modify func(*http.Response) error, failed func(*http.Request, error)) *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Rewrite:        func(pr *httputil.ProxyRequest) { pr.SetURL(target) },
		Transport:      transport(),
		ModifyResponse: modify,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			failed(r, err)
			w.WriteHeader(http.StatusBadGateway)
		},
	}
}

// readBody reads a whole body and puts an unread copy back.
func readBody(rc *io.ReadCloser) ([]byte, error) {
	if *rc == nil || *rc == http.NoBody {
		return nil, nil
	}
	b, err := io.ReadAll(*rc)
	_ = (*rc).Close()
	*rc = io.NopCloser(bytes.NewReader(b))
	return b, err
}

// --- S3 ----------------------------------------------------------------------

// s3Proxy counts S3 requests by method and kind (PUT, GET, HEAD, LIST,
// DELETE, POST) and the bytes of their bodies.
type s3Proxy struct {
	rec *recorder
	rp  *httputil.ReverseProxy
}

type s3CallKey struct{}

type s3Call struct {
	op      string
	bytesIn int
}

func newS3Proxy(rec *recorder, backend string) (*s3Proxy, error) {
	target, err := url.Parse(backend)
	if err != nil {
		return nil, err
	}
	p := &s3Proxy{rec: rec}
	p.rp = reverseProxy(target, p.modify, func(r *http.Request, err error) {
		c := r.Context().Value(s3CallKey{}).(*s3Call)
		rec.add("S3."+c.op, opStat{Requests: 1, BytesIn: float64(c.bytesIn)}, false, false)
		rec.warn("S3 %s %s: %v", r.Method, r.URL.Path, err)
	})
	return p, nil
}

func (p *s3Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(&r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	c := &s3Call{op: s3Op(r.Method, r.URL.Path), bytesIn: len(body)}
	p.rp.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), s3CallKey{}, c)))
}

// modify counts a response before it is passed on, so a request is
// counted before the platform sees its answer.
func (p *s3Proxy) modify(resp *http.Response) error {
	c := resp.Request.Context().Value(s3CallKey{}).(*s3Call)
	body, err := readBody(&resp.Body)
	if err != nil {
		return err
	}
	p.rec.add("S3."+c.op, opStat{Requests: 1, BytesIn: float64(c.bytesIn), BytesOut: float64(len(body))}, false, false)
	return nil
}

// s3Op names a path-style S3 request the way S3 prices it: an object's
// GET, PUT, HEAD, DELETE or POST, and a bucket's GET as a LIST.
func s3Op(method, path string) string {
	_, key, _ := strings.Cut(strings.TrimPrefix(path, "/"), "/")
	if key == "" && method == http.MethodGet {
		return "LIST"
	}
	return method
}

// s3PutTier reports whether S3 prices op at the PUT rate (PUT, COPY, POST,
// LIST); DELETE is free and everything else is at the GET rate.
func s3PutTier(op string) bool {
	switch op {
	case "S3.PUT", "S3.POST", "S3.LIST":
		return true
	}
	return false
}

// --- DynamoDB ----------------------------------------------------------------

// dynamoProxy counts DynamoDB requests by operation (the X-Amz-Target) and
// the read and write units DynamoDB would bill for them. For a write it
// reads each item before and after with its own GetItem straight to the
// backend, uncounted; writes pass one at a time, so no other write comes
// between those reads.
type dynamoProxy struct {
	rec     *recorder
	backend string
	rp      *httputil.ReverseProxy
	own     *http.Client
	writes  sync.Mutex

	keysMu sync.Mutex
	keys   map[string][]string // table -> key attribute names
}

type dynamoCallKey struct{}

// dynamoCall is one request on its way through the proxy.
type dynamoCall struct {
	op      string
	body    []byte
	actions []writeAction // a write's items
}

// writeAction is one item a write touches.
type writeAction struct {
	kind   string // Put, Update, Delete, ConditionCheck
	table  string
	key    map[string]json.RawMessage
	before int
	exists bool
}

var writeOps = map[string]bool{"PutItem": true, "UpdateItem": true, "DeleteItem": true, "BatchWriteItem": true, "TransactWriteItems": true}

func newDynamoProxy(rec *recorder, backend string) (*dynamoProxy, error) {
	target, err := url.Parse(backend)
	if err != nil {
		return nil, err
	}
	p := &dynamoProxy{rec: rec, backend: backend, own: &http.Client{Transport: transport(), Timeout: 30 * time.Second}, keys: map[string][]string{}}
	p.rp = reverseProxy(target, p.modify, func(r *http.Request, err error) {
		c := r.Context().Value(dynamoCallKey{}).(*dynamoCall)
		rec.add("DynamoDB."+c.op, opStat{Requests: 1}, false, false)
		rec.warn("DynamoDB %s: %v", c.op, err)
	})
	return p, nil
}

func (p *dynamoProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	target := r.Header.Get("X-Amz-Target")
	c := &dynamoCall{op: target[strings.LastIndexByte(target, '.')+1:]}
	var err error
	if c.body, err = readBody(&r.Body); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if writeOps[c.op] {
		p.writes.Lock()
		defer p.writes.Unlock()
		if c.actions, err = p.actionsOf(c.op, c.body); err != nil {
			p.rec.warn("DynamoDB %s: cannot tell its items: %v", c.op, err)
		}
		for i := range c.actions {
			a := &c.actions[i]
			if a.before, a.exists, err = p.itemSize(a.table, a.key); err != nil {
				p.rec.warn("DynamoDB %s: read the item before: %v", c.op, err)
			}
		}
	}
	p.rp.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), dynamoCallKey{}, c)))
}

// modify prices a response before it is passed on.
func (p *dynamoProxy) modify(resp *http.Response) error {
	c := resp.Request.Context().Value(dynamoCallKey{}).(*dynamoCall)
	body, err := readBody(&resp.Body)
	if err != nil {
		return err
	}
	if enc := resp.Header.Get("Content-Encoding"); enc != "" && enc != "identity" {
		p.rec.warn("DynamoDB %s: a %s response cannot be priced", c.op, enc)
	}
	s := opStat{Requests: 1}
	var errType string
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Type string `json:"__type"`
		}
		_ = json.Unmarshal(body, &e)
		errType = e.Type[strings.LastIndexByte(e.Type, '#')+1:]
	}
	if writeOps[c.op] {
		p.priceWrite(c, errType, &s)
	} else if errType == "" {
		p.priceRead(c, body, &s)
	}
	if errType != "" && errType != "ConditionalCheckFailedException" && errType != "TransactionCanceledException" {
		p.rec.warn("DynamoDB %s failed: %s", c.op, errType)
	}
	p.rec.add("DynamoDB."+c.op, s, breakerCheck(c.op, c.body), touchesPlatformLists(c.body))
	return nil
}

// priceWrite prices a write from its items' sizes before and after. A
// transaction's items cost twice (DynamoDB prepares and commits each); a
// ConditionCheck in it costs two strongly consistent reads of its item. A
// failed condition still costs: a single write is charged for the item as
// it stands (at least one unit), as DynamoDB documents; for a cancelled
// transaction, which DynamoDB's documentation does not price, each item is
// counted once at its current size (the prepare phase only), a stated
// assumption.
func (p *dynamoProxy) priceWrite(c *dynamoCall, errType string, s *opStat) {
	if errType != "" && errType != "ConditionalCheckFailedException" && errType != "TransactionCanceledException" {
		return // refused before it touched an item
	}
	factor := 1.0
	if c.op == "TransactWriteItems" && errType == "" {
		factor = 2
	}
	for _, a := range c.actions {
		if a.kind == "ConditionCheck" {
			s.ReadUnits += factor * readUnits(a.before, true)
			continue
		}
		after := 0
		if errType == "" && a.kind != "Delete" {
			var err error
			if after, _, err = p.itemSize(a.table, a.key); err != nil {
				p.rec.warn("DynamoDB %s: read the item after: %v", c.op, err)
			}
		}
		s.WriteUnits += factor * writeUnits(a.before, after)
		if errType == "" {
			s.ItemsWritten++
			s.ItemBytesWritten += float64(max(a.before, after))
		}
	}
}

// priceRead prices a successful read from the items it returned.
func (p *dynamoProxy) priceRead(c *dynamoCall, body []byte, s *opStat) {
	switch c.op {
	case "GetItem":
		var in struct {
			ConsistentRead       bool
			ProjectionExpression string
			AttributesToGet      []string
		}
		var out struct{ Item item }
		_ = json.Unmarshal(c.body, &in)
		_ = json.Unmarshal(body, &out)
		p.projected(c.op, in.ProjectionExpression != "" || len(in.AttributesToGet) > 0)
		s.ReadUnits += readUnits(itemSize(out.Item), in.ConsistentRead)
	case "BatchGetItem":
		// Each key is a GetItem of its own: a missing item costs the minimum.
		var in struct {
			RequestItems map[string]struct {
				Keys                 []json.RawMessage
				ConsistentRead       bool
				ProjectionExpression string
				AttributesToGet      []string
			}
		}
		var out struct {
			Responses       map[string][]item
			UnprocessedKeys map[string]struct{ Keys []json.RawMessage }
		}
		_ = json.Unmarshal(c.body, &in)
		_ = json.Unmarshal(body, &out)
		for table, req := range in.RequestItems {
			p.projected(c.op, req.ProjectionExpression != "" || len(req.AttributesToGet) > 0)
			got := out.Responses[table]
			for _, it := range got {
				s.ReadUnits += readUnits(itemSize(it), req.ConsistentRead)
			}
			missing := len(req.Keys) - len(out.UnprocessedKeys[table].Keys) - len(got)
			s.ReadUnits += float64(missing) * readUnits(0, req.ConsistentRead)
		}
	case "Query", "Scan":
		// The items read, together, rounded up to 4 KB once.
		var in struct {
			ConsistentRead       bool
			ProjectionExpression string
			FilterExpression     string
		}
		var out struct{ Items []item }
		_ = json.Unmarshal(c.body, &in)
		_ = json.Unmarshal(body, &out)
		p.projected(c.op, in.ProjectionExpression != "" || in.FilterExpression != "")
		size := 0
		for _, it := range out.Items {
			size += itemSize(it)
		}
		s.ReadUnits += readUnits(size, in.ConsistentRead)
	case "TransactGetItems":
		var out struct{ Responses []struct{ Item item } }
		_ = json.Unmarshal(body, &out)
		for _, r := range out.Responses {
			s.ReadUnits += 2 * readUnits(itemSize(r.Item), true)
		}
	}
}

// projected warns of a read DynamoDB bills on whole items but that returns
// fewer attributes (a projection) or fewer items (a filter) than it read:
// its units would be counted short. The platform's execution path has none.
func (p *dynamoProxy) projected(op string, yes bool) {
	if yes {
		p.rec.warn("DynamoDB %s with a projection or filter: its read units are counted short", op)
	}
}

// actionsOf lists the items a write request touches.
func (p *dynamoProxy) actionsOf(op string, body []byte) ([]writeAction, error) {
	type put struct {
		TableName string
		Item      map[string]json.RawMessage
	}
	type keyed struct {
		TableName string
		Key       map[string]json.RawMessage
	}
	var acts []writeAction
	putAction := func(pt put) error {
		k, err := p.keyOf(pt.TableName, pt.Item)
		acts = append(acts, writeAction{kind: "Put", table: pt.TableName, key: k})
		return err
	}
	switch op {
	case "PutItem":
		var in put
		if err := json.Unmarshal(body, &in); err != nil {
			return nil, err
		}
		return acts, putAction(in)
	case "UpdateItem", "DeleteItem":
		var in keyed
		if err := json.Unmarshal(body, &in); err != nil {
			return nil, err
		}
		return []writeAction{{kind: strings.TrimSuffix(op, "Item"), table: in.TableName, key: in.Key}}, nil
	case "TransactWriteItems":
		var in struct {
			TransactItems []struct {
				Put                            *put
				Update, Delete, ConditionCheck *keyed
			}
		}
		if err := json.Unmarshal(body, &in); err != nil {
			return nil, err
		}
		for _, t := range in.TransactItems {
			switch {
			case t.Put != nil:
				if err := putAction(*t.Put); err != nil {
					return nil, err
				}
			case t.Update != nil:
				acts = append(acts, writeAction{kind: "Update", table: t.Update.TableName, key: t.Update.Key})
			case t.Delete != nil:
				acts = append(acts, writeAction{kind: "Delete", table: t.Delete.TableName, key: t.Delete.Key})
			case t.ConditionCheck != nil:
				acts = append(acts, writeAction{kind: "ConditionCheck", table: t.ConditionCheck.TableName, key: t.ConditionCheck.Key})
			}
		}
		return acts, nil
	case "BatchWriteItem":
		var in struct {
			RequestItems map[string][]struct {
				PutRequest    *struct{ Item map[string]json.RawMessage }
				DeleteRequest *struct{ Key map[string]json.RawMessage }
			}
		}
		if err := json.Unmarshal(body, &in); err != nil {
			return nil, err
		}
		for table, reqs := range in.RequestItems {
			for _, r := range reqs {
				switch {
				case r.PutRequest != nil:
					if err := putAction(put{TableName: table, Item: r.PutRequest.Item}); err != nil {
						return nil, err
					}
				case r.DeleteRequest != nil:
					acts = append(acts, writeAction{kind: "Delete", table: table, key: r.DeleteRequest.Key})
				}
			}
		}
		return acts, nil
	}
	return nil, nil
}

// keyOf picks an item's primary key, by the table's key schema.
func (p *dynamoProxy) keyOf(table string, it map[string]json.RawMessage) (map[string]json.RawMessage, error) {
	names, err := p.keyNames(table)
	if err != nil {
		return nil, err
	}
	k := map[string]json.RawMessage{}
	for _, n := range names {
		k[n] = it[n]
	}
	return k, nil
}

func (p *dynamoProxy) keyNames(table string) ([]string, error) {
	p.keysMu.Lock()
	defer p.keysMu.Unlock()
	if names, ok := p.keys[table]; ok {
		return names, nil
	}
	var out struct {
		Table struct {
			KeySchema []struct{ AttributeName string }
		}
	}
	if err := p.call("DescribeTable", map[string]any{"TableName": table}, &out); err != nil {
		return nil, err
	}
	var names []string
	for _, k := range out.Table.KeySchema {
		names = append(names, k.AttributeName)
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("table %s has no key schema", table)
	}
	p.keys[table] = names
	return names, nil
}

// itemSize reads an item, strongly consistent and uncounted, and returns
// its size (0 when it does not exist).
func (p *dynamoProxy) itemSize(table string, key map[string]json.RawMessage) (int, bool, error) {
	if key == nil {
		return 0, false, errors.New("no key")
	}
	var out struct{ Item item }
	if err := p.call("GetItem", map[string]any{"TableName": table, "Key": key, "ConsistentRead": true}, &out); err != nil {
		return 0, false, err
	}
	return itemSize(out.Item), out.Item != nil, nil
}

// call sends the proxy's own request straight to the backend. The embedded
// server accepts any credentials, so the request is not signed.
func (p *dynamoProxy) call(op string, in, out any) error {
	b, err := json.Marshal(in)
	if err != nil {
		return err
	}
	req, err := http.NewRequest(http.MethodPost, p.backend, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("X-Amz-Target", "DynamoDB_20120810."+op)
	req.Header.Set("Content-Type", "application/x-amz-json-1.0")
	resp, err := p.own.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %d %s", op, resp.StatusCode, body)
	}
	return json.Unmarshal(body, out)
}

// breakerCheck reports whether a request belongs to a circuit-breaker check,
// which a process makes at most every few seconds per tenant, not per
// execution: the Query of the counter item and its checkpoints (sort keys
// beginning with LIVE), and the PutItem of a checkpoint (LIVE#BRK#...).
func breakerCheck(op string, body []byte) bool {
	var in struct {
		ExpressionAttributeValues map[string]struct{ S *string }
		Item                      map[string]struct{ S *string }
	}
	if json.Unmarshal(body, &in) != nil {
		return false
	}
	switch op {
	case "Query":
		v, ok := in.ExpressionAttributeValues[":live"]
		return ok && v.S != nil && *v.S == "LIVE"
	case "PutItem":
		sk, ok := in.Item["SK"]
		return ok && sk.S != nil && strings.HasPrefix(*sk.S, "LIVE#BRK#")
	}
	return false
}

// touchesPlatformLists reports whether a request reads or writes the
// operator's tenant list or a month's invoice list: the lease-reclaim pass
// and the monthly close start there, executions never do.
func touchesPlatformLists(body []byte) bool {
	return bytes.Contains(body, []byte(`{"S":"TENANTS"}`)) || bytes.Contains(body, []byte(`{"S":"INVOICES#`))
}
