// Command zipdir packages files into a Lambda deployment zip: each file at
// the archive's root under its base name, executable, with a fixed timestamp
// so the same binary always gives the same zip. It replaces the zip program,
// which a machine with only Go installed does not have.
//
//	zipdir -o dist/health.zip dist/health/bootstrap
package main

import (
	"archive/zip"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

// epoch is the timestamp of every entry: the earliest a zip can record, so
// the archive depends on the file contents only.
var epoch = time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)

func main() {
	out := flag.String("o", "", "the zip file to write")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: zipdir -o out.zip file...")
		flag.PrintDefaults()
	}
	flag.Parse()
	if *out == "" || flag.NArg() == 0 {
		flag.Usage()
		os.Exit(2)
	}
	if err := write(*out, flag.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "zipdir:", err)
		os.Exit(1)
	}
}

// write writes the zip to a temporary file and renames it into place, so an
// interrupted build never leaves a truncated zip behind.
func write(path string, files []string) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".zipdir-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = os.Remove(tmp.Name())
		}
	}()
	if err := archive(tmp, files); err != nil {
		_ = tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// archive writes files to w as a zip, each at the root, mode 0755.
func archive(w io.Writer, files []string) error {
	zw := zip.NewWriter(w)
	seen := map[string]bool{}
	for _, f := range files {
		name := filepath.Base(f)
		if seen[name] {
			return fmt.Errorf("two files named %s", name)
		}
		seen[name] = true
		if err := add(zw, f, name); err != nil {
			return err
		}
	}
	return zw.Close()
}

func add(zw *zip.Writer, path, name string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if !st.Mode().IsRegular() {
		return errors.New(path + " is not a regular file")
	}
	h := &zip.FileHeader{Name: name, Method: zip.Deflate, Modified: epoch}
	// Lambda runs bootstrap directly: it must keep its exec bit.
	h.SetMode(0o755)
	w, err := zw.CreateHeader(h)
	if err != nil {
		return err
	}
	if _, err := io.Copy(w, f); err != nil {
		return fmt.Errorf("add %s: %w", path, err)
	}
	return nil
}
