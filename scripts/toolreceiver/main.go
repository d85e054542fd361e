// Command toolreceiver is a tenant's tool as small as it gets: an HTTP
// endpoint that Bulkhead calls with a signed POST, which verifies the
// signature before it believes a byte, and answers with JSON. It uses the
// standard library alone, so it reads as a recipe for any receiver:
//
//	TOOL_SIGNING_SECRET=whsec_... toolreceiver -addr 127.0.0.1:8787
//
// The header is "Bulkhead-Signature: t=<unix seconds>,v1=<hex>[,v1=<hex>]",
// each v1 an HMAC-SHA256 of "<t>.<raw body>" keyed with a whole whsec_
// secret (two while a secret is being rotated). A receiver accepts the call
// when any v1 matches its secret and t is within five minutes of its clock,
// and uses call_id to recognise a call it has already handled.
package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"io"
	"log"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

const tolerance = 5 * time.Minute

// verify checks a Bulkhead-Signature header against the raw body.
func verify(header string, body []byte, secret string, now time.Time) bool {
	var ts string
	var sigs []string
	for part := range strings.SplitSeq(header, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			sigs = append(sigs, v)
		}
	}
	t, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || len(sigs) == 0 {
		return false
	}
	if age := now.Sub(time.Unix(t, 0)); age > tolerance || age < -tolerance {
		return false // stale or from the future: a replay, or a clock far off
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(ts + "."))
	mac.Write(body)
	want := []byte(hex.EncodeToString(mac.Sum(nil)))
	for _, s := range sigs {
		if hmac.Equal([]byte(s), want) {
			return true
		}
	}
	return false
}

// call is what Bulkhead sends.
type call struct {
	Tool           string          `json:"tool"`
	Arguments      json.RawMessage `json:"arguments"`
	CallID         string          `json:"call_id"`
	ExecutionID    string          `json:"execution_id"`
	AgentID        string          `json:"agent_id"`
	ConversationID string          `json:"conversation_id"`
}

func handler(secret string, now func() time.Time) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") })
	mux.HandleFunc("POST /hook", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
		if err != nil || !verify(r.Header.Get("Bulkhead-Signature"), body, secret, now()) {
			http.Error(w, `{"error":"bad signature"}`, http.StatusUnauthorized)
			return
		}
		var c call
		if err := json.Unmarshal(body, &c); err != nil {
			http.Error(w, `{"error":"bad call"}`, http.StatusBadRequest)
			return
		}
		var args struct {
			Query string `json:"query"`
		}
		_ = json.Unmarshal(c.Arguments, &args)
		log.Printf("call %s of %s from execution %s: %q", c.CallID, c.Tool, c.ExecutionID, args.Query)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{"order": args.Query, "status": "shipped", "eta": "tomorrow"})
	})
	return mux
}

func main() {
	addr := flag.String("addr", "127.0.0.1:8787", "listen address")
	flag.Parse()
	secret := os.Getenv("TOOL_SIGNING_SECRET")
	if !strings.HasPrefix(secret, "whsec_") {
		log.Fatal("TOOL_SIGNING_SECRET must hold the tool's whsec_ signing secret")
	}
	srv := &http.Server{Addr: *addr, Handler: handler(secret, time.Now), ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second}
	log.Printf("tool receiver on http://%s/hook", *addr)
	log.Fatal(srv.ListenAndServe())
}
