package main

import (
	"archive/tar"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/layout"
)

// binDir is where the real binaries are (make build); without them the
// test uses small stand-in files to check reproducibility only.
func binDir(t *testing.T) (dir string, real bool) {
	if d := os.Getenv("IMAGES_BIN_DIR"); d != "" {
		return d, true
	}
	dir = t.TempDir()
	for _, b := range binaries {
		if err := os.WriteFile(filepath.Join(dir, b), []byte("#!/bin/sh\necho "+b+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir, false
}

func TestBuildIsReproducible(t *testing.T) {
	bins, _ := binDir(t)
	mtime := time.Unix(0, 0).UTC()
	a, err := build(bins, filepath.Join(t.TempDir(), "a"), mtime)
	if err != nil {
		t.Fatal(err)
	}
	b, err := build(bins, filepath.Join(t.TempDir(), "b"), mtime)
	if err != nil {
		t.Fatal(err)
	}
	if a != b {
		t.Fatalf("two builds of the same inputs differ: %s != %s", a, b)
	}
	c, err := build(bins, filepath.Join(t.TempDir(), "c"), mtime.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if c == a {
		t.Fatal("a different timestamp gave the same digest: the input is not in the image")
	}
}

// TestImageRunsOperator unpacks the built image and runs its entrypoint.
func TestImageRunsOperator(t *testing.T) {
	bins, real := binDir(t)
	if !real {
		t.Skip("IMAGES_BIN_DIR not set: run through `make images-test` to check the real binaries")
	}
	out := filepath.Join(t.TempDir(), "img")
	digest, err := build(bins, out, time.Unix(0, 0).UTC())
	if err != nil {
		t.Fatal(err)
	}
	p, err := layout.FromPath(out)
	if err != nil {
		t.Fatal(err)
	}
	img, err := p.Image(digest)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Config.User != "65532:65532" {
		t.Errorf("user = %q, want the non-root 65532:65532", cfg.Config.User)
	}
	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("layers = %d, %v", len(layers), err)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	root := t.TempDir()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		target := filepath.Join(root, filepath.Clean(h.Name))
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, 0o755); err != nil {
				t.Fatal(err)
			}
		case tar.TypeReg:
			f, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY, os.FileMode(h.Mode))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.Copy(f, tr); err != nil {
				t.Fatal(err)
			}
			f.Close()
		}
	}
	entry := filepath.Join(root, cfg.Config.Entrypoint[0])
	outp, err := exec.Command(entry, "--help").CombinedOutput()
	if err != nil {
		t.Fatalf("%s --help: %v\n%s", cfg.Config.Entrypoint[0], err, outp)
	}
	if !strings.Contains(string(outp), "-rotation-interval") {
		t.Errorf("--help output does not look like the operator's:\n%s", outp)
	}
	for _, b := range binaries {
		if _, err := os.Stat(filepath.Join(root, "usr/local/bin", b)); err != nil {
			t.Errorf("image lacks %s: %v", b, err)
		}
	}
}
