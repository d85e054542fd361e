package main

import (
	"archive/zip"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"
)

func mustWriteFile(tb testing.TB, path, content string) {
	tb.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		tb.Fatal(err)
	}
}

func TestWriteBootstrapAtRootExecutable(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "health", "bootstrap")
	mustWriteFile(t, bin, "\x7fELF fake binary")
	out := filepath.Join(dir, "health.zip")
	if err := write(out, []string{bin}); err != nil {
		t.Fatalf("write: %v", err)
	}
	zr, err := zip.OpenReader(out)
	if err != nil {
		t.Fatalf("open zip: %v", err)
	}
	defer zr.Close()
	if len(zr.File) != 1 {
		t.Fatalf("zip has %d entries, want 1", len(zr.File))
	}
	f := zr.File[0]
	if f.Name != "bootstrap" {
		t.Errorf("entry name = %q, want %q (at the root)", f.Name, "bootstrap")
	}
	if got := f.Mode().Perm(); got != 0o755 {
		t.Errorf("entry mode = %v, want 0755 (Lambda executes bootstrap)", got)
	}
	rc, err := f.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	got, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != "\x7fELF fake binary" {
		t.Errorf("entry content = %q, want the file's", got)
	}
	leftovers, _ := filepath.Glob(filepath.Join(dir, ".zipdir-*"))
	if len(leftovers) != 0 {
		t.Errorf("temporary files left behind: %v", leftovers)
	}
}

func TestArchiveIsReproducible(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "bootstrap")
	mustWriteFile(t, bin, "same bytes")
	var a, b bytes.Buffer
	if err := archive(&a, []string{bin}); err != nil {
		t.Fatal(err)
	}
	// A newer modification time must not change the archive.
	mustWriteFile(t, bin, "same bytes")
	if err := archive(&b, []string{bin}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Error("two archives of the same file differ")
	}
}

func TestArchiveRefusesDuplicateNames(t *testing.T) {
	dir := t.TempDir()
	mustWriteFile(t, filepath.Join(dir, "a", "bootstrap"), "a")
	mustWriteFile(t, filepath.Join(dir, "b", "bootstrap"), "b")
	err := archive(io.Discard, []string{filepath.Join(dir, "a", "bootstrap"), filepath.Join(dir, "b", "bootstrap")})
	if err == nil {
		t.Fatal("archive of two files named bootstrap succeeded, want an error")
	}
}
