package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// billClose asks a running platform's operator API to close a month:
// bulkhead bill close --month YYYY-MM. It prints the API's answer as it came.
func billClose(cl *cmdLine, args []string) error {
	month := cl.fs.String("month", "", "the month to close, YYYY-MM (required)")
	conn := cl.operatorFlags()
	if _, err := cl.parse(args, 0, ""); err != nil {
		return err
	}
	if *month == "" {
		return usagef("--month is required (YYYY-MM)")
	}
	// Closing a month visits every tenant.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	c, err := conn.client(ctx)
	if err != nil {
		return err
	}
	rep, err := c.CloseMonth(ctx, *month)
	if err != nil {
		return err
	}
	fmt.Println(string(rep.RawJSON()))
	if len(rep.Failed) > 0 {
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
