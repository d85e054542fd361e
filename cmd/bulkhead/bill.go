package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// billClose asks a running platform's operator API to close a month:
// bulkhead bill close --month YYYY-MM.
func billClose(args []string) error {
	fs := flag.NewFlagSet("bill close", flag.ContinueOnError)
	month := fs.String("month", "", "the month to close, YYYY-MM (required)")
	url := fs.String("url", defaultURL(), "the platform's API base URL (BULKHEAD_URL)")
	token := fs.String("admin-token", "", "the operator token (default BULKHEAD_ADMIN_TOKEN, or the one in the data dir)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *month == "" {
		return errors.New("--month is required (YYYY-MM)")
	}
	if *token == "" {
		t, err := adminTokenFromEnv()
		if err != nil {
			return err
		}
		*token = t
	}
	body, _ := json.Marshal(map[string]string{"month": *month})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "POST", strings.TrimRight(*url, "/")+"/v1/admin/billing/close", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+*token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("is the platform running at %s? %w", *url, err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	fmt.Println(string(out))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("close %s: HTTP %d", *month, resp.StatusCode)
	}
	var rep struct {
		Failed []string `json:"failed"`
	}
	if json.Unmarshal(out, &rep) == nil && len(rep.Failed) > 0 {
		return fmt.Errorf("close %s: %d tenants not closed; run it again", *month, len(rep.Failed))
	}
	return nil
}

func defaultURL() string {
	if u := os.Getenv("BULKHEAD_URL"); u != "" {
		return u
	}
	addr := os.Getenv("BULKHEAD_ADDR")
	if addr == "" {
		addr = "127.0.0.1:8080"
	}
	return "http://" + addr
}

func adminTokenFromEnv() (string, error) {
	if t := os.Getenv("BULKHEAD_ADMIN_TOKEN"); t != "" {
		return t, nil
	}
	dir := os.Getenv("BULKHEAD_DATA_DIR")
	if dir == "" {
		dir = ".bulkhead"
	}
	b, err := os.ReadFile(filepath.Join(dir, "admin-token"))
	if err != nil {
		return "", fmt.Errorf("no operator token: set BULKHEAD_ADMIN_TOKEN or --admin-token (%w)", err)
	}
	return strings.TrimSpace(string(b)), nil
}
