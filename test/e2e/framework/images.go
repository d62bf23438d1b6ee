package framework

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// PauseImage is the sandbox image the node's containerd uses. It cannot be
// downloaded here; StartNode builds it (BuildBinaryImage of the pause
// program in ./pause) and imports it.
const PauseImage = "registry.k8s.io/pause:3.10"

// BuildPause compiles the pause program (framework/pause) as a static
// binary into dir and returns its path. The Go build cache makes repeated
// builds take about a second.
func BuildPause(ctx context.Context, dir string) (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	out := filepath.Join(dir, "pause")
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", out, "./test/e2e/framework/pause")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOWORK=off")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building the pause binary: %v\n%s", err, b)
	}
	return out, nil
}

// WriteBinaryImage writes a one-layer image, in the `docker save` tar
// format that both `ctr images import` and `crane push` read, whose only
// file is binary at /<name> and whose entrypoint runs it. ref is the
// image's tag in the archive.
// name may have directories (bin/registry); they are added to the layer.
func WriteBinaryImage(path, ref, binary, name string) error {
	data, err := os.ReadFile(binary)
	if err != nil {
		return err
	}
	var layer bytes.Buffer
	tw := tar.NewWriter(&layer)
	// A fixed time keeps the digest stable across builds of one binary.
	mtime := time.Unix(0, 0)
	var dirs []string
	for d := filepath.Dir(name); d != "." && d != "/"; d = filepath.Dir(d) {
		dirs = append([]string{d}, dirs...)
	}
	for _, d := range dirs {
		if err := tw.WriteHeader(&tar.Header{Name: d + "/", Mode: 0o755, ModTime: mtime, Typeflag: tar.TypeDir}); err != nil {
			return err
		}
	}
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o755, Size: int64(len(data)), ModTime: mtime, Typeflag: tar.TypeReg}); err != nil {
		return err
	}
	if _, err := tw.Write(data); err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	layerSum := sha256.Sum256(layer.Bytes())
	layerID := hex.EncodeToString(layerSum[:])
	config, err := json.Marshal(map[string]any{
		"architecture": "amd64",
		"os":           "linux",
		"config":       map[string]any{"Entrypoint": []string{"/" + name}, "Env": []string{"PATH=/usr/local/bin:/usr/bin:/bin"}},
		"rootfs":       map[string]any{"type": "layers", "diff_ids": []string{"sha256:" + layerID}},
	})
	if err != nil {
		return err
	}
	configSum := sha256.Sum256(config)
	configName := hex.EncodeToString(configSum[:]) + ".json"
	manifest, err := json.Marshal([]map[string]any{{
		"Config": configName, "RepoTags": []string{ref}, "Layers": []string{layerID + "/layer.tar"},
	}})
	if err != nil {
		return err
	}

	f, err := os.Create(path)
	if err != nil {
		return err
	}
	out := tar.NewWriter(f)
	for _, e := range []struct {
		name string
		data []byte
	}{{layerID + "/layer.tar", layer.Bytes()}, {configName, config}, {"manifest.json", manifest}} {
		if err := out.WriteHeader(&tar.Header{Name: e.name, Mode: 0o644, Size: int64(len(e.data)), ModTime: mtime, Typeflag: tar.TypeReg}); err != nil {
			f.Close()
			return err
		}
		if _, err := out.Write(e.data); err != nil {
			f.Close()
			return err
		}
	}
	if err := out.Close(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// ImportTarball imports an image tarball (WriteBinaryImage's) into the
// node's containerd under the name in the tarball.
func (n *Node) ImportTarball(ctx context.Context, tarball string) error {
	if out, err := n.Ctr(ctx, "images", "import", tarball); err != nil {
		return fmt.Errorf("importing %s: %v\n%s", tarball, err, out)
	}
	return nil
}

// ImportOCILayout imports the image of an OCI layout directory (as make
// images writes it: an index of one manifest) into the node's containerd
// as name:tag, where name is a fully qualified repository
// (docker.io/library/image-registry-operator), so Pods that name the image
// run it without pulling.
func (n *Node) ImportOCILayout(ctx context.Context, layout, name, tag string) error {
	index, err := os.ReadFile(filepath.Join(layout, "index.json"))
	if err != nil {
		return err
	}
	var idx map[string]any
	if err := json.Unmarshal(index, &idx); err != nil {
		return err
	}
	ms, _ := idx["manifests"].([]any)
	if len(ms) != 1 {
		return fmt.Errorf("%s: %d manifests in index.json, want one", layout, len(ms))
	}
	m := ms[0].(map[string]any)
	m["annotations"] = map[string]string{
		"io.containerd.image.name":          name + ":" + tag,
		"org.opencontainers.image.ref.name": tag,
	}
	if index, err = json.Marshal(idx); err != nil {
		return err
	}

	tarball := filepath.Join(n.Dir, filepath.Base(layout)+".tar")
	f, err := os.Create(tarball)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(f)
	add := func(rel string, data []byte) error {
		if err := tw.WriteHeader(&tar.Header{Name: rel, Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	err = filepath.WalkDir(layout, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(layout, p)
		if err != nil || rel == "index.json" {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return add(filepath.ToSlash(rel), data)
	})
	if err == nil {
		err = add("index.json", index)
	}
	if cerr := tw.Close(); err == nil {
		err = cerr
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if out, err := n.Ctr(ctx, "images", "import", "--base-name", name, tarball); err != nil {
		return fmt.Errorf("importing %s: %v\n%s", layout, err, out)
	}
	out, err := n.Ctr(ctx, "images", "ls", "-q")
	if err != nil {
		return err
	}
	if !strings.Contains(string(out), name+":"+tag) {
		return fmt.Errorf("after importing %s, containerd has no %s:%s, only:\n%s", layout, name, tag, out)
	}
	return nil
}
