package nodeagent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"k8s.io/klog/v2"
)

const (
	// BlockBegin and BlockEnd enclose the agent's lines in the hosts file.
	BlockBegin = "# BEGIN image-registry-operator node-agent (managed, do not edit)"
	BlockEnd   = "# END image-registry-operator node-agent"

	// MarkerFile is in every certs.d directory the agent made; directories
	// without it are never touched.
	MarkerFile = ".image-registry-operator"

	// tmpPrefix starts the names of the agent's temporary files and
	// directories; leftovers of a crash are removed by the next sync.
	tmpPrefix = ".iro-tmp-"
)

// Apply converges the node's files to entries: first the CAs (so a name
// resolves only once its CA is trusted), then the hosts block, then the
// directories of registries that are gone.
func Apply(ctx context.Context, o Options, entries []Entry) error {
	var errs []error
	want := map[string]Entry{}
	for _, e := range entries {
		want[e.Host] = e
	}
	if o.ContainerdCertsDir != "" {
		errs = append(errs, syncCertsDir(ctx, o.ContainerdCertsDir, want, containerdFiles))
	}
	if o.DockerCertsDir != "" {
		errs = append(errs, syncCertsDir(ctx, o.DockerCertsDir, want, dockerFiles))
	}
	if o.HostsFile != "" {
		errs = append(errs, syncHostsFile(ctx, o.HostsFile, entries))
	}
	return errors.Join(errs...)
}

// containerdFiles are certs.d/<host>/ for containerd: hosts.toml naming the
// CA by a path relative to its directory, and the CA (also read on its own
// by runtimes that ignore hosts.toml).
func containerdFiles(e Entry) map[string][]byte {
	toml := fmt.Sprintf(`# Written by the image-registry-operator node agent for ImageRegistry %s; do not edit.
server = "https://%s"

[host."https://%s"]
  capabilities = ["pull", "resolve", "push"]
  ca = "ca.crt"
`, e.Registry, e.Host, e.Host)
	return map[string][]byte{"hosts.toml": []byte(toml), "ca.crt": e.CA}
}

// dockerFiles are /etc/docker/certs.d/<host>/ for the Docker engine.
func dockerFiles(e Entry) map[string][]byte {
	return map[string][]byte{"ca.crt": e.CA}
}

func marker(e Entry) []byte {
	return []byte(fmt.Sprintf("Made by the image-registry-operator node agent for ImageRegistry %s; removed with it.\n", e.Registry))
}

// syncCertsDir makes dir/<host>/ for each wanted host, updates the files of
// directories the agent made, and removes those of hosts no longer wanted.
// A directory someone else made for a wanted host is left alone (logged).
func syncCertsDir(ctx context.Context, dir string, want map[string]Entry, files func(Entry) map[string][]byte) error {
	logger := klog.FromContext(ctx)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	des, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	var errs []error
	have := map[string]bool{}
	for _, de := range des {
		name := de.Name()
		p := filepath.Join(dir, name)
		if strings.HasPrefix(name, tmpPrefix) {
			errs = append(errs, os.RemoveAll(p))
			continue
		}
		if !de.IsDir() {
			continue
		}
		if _, err := os.Lstat(filepath.Join(p, MarkerFile)); err != nil {
			if _, wanted := want[name]; wanted {
				logger.Info("Leaving a certs.d directory the agent did not make", "dir", p)
				have[name] = true
			}
			continue
		}
		if _, wanted := want[name]; !wanted {
			logger.Info("Removing the certs.d directory of a registry that is gone", "dir", p)
			errs = append(errs, removeDir(dir, p))
			continue
		}
		have[name] = true
		e := want[name]
		for f, data := range files(e) {
			errs = append(errs, writeIfChanged(filepath.Join(p, f), data, 0o644))
		}
		errs = append(errs, writeIfChanged(filepath.Join(p, MarkerFile), marker(e), 0o644))
	}
	for host, e := range want {
		if have[host] {
			continue
		}
		logger.Info("Adding a certs.d directory", "dir", filepath.Join(dir, host), "registry", e.Registry)
		errs = append(errs, createDir(dir, host, files(e), marker(e)))
	}
	return errors.Join(errs...)
}

// createDir fills a temporary directory and renames it to dir/name, so
// readers see no directory or a complete one.
func createDir(dir, name string, files map[string][]byte, mark []byte) error {
	tmp, err := os.MkdirTemp(dir, tmpPrefix)
	if err != nil {
		return err
	}
	files[MarkerFile] = mark
	for f, data := range files {
		if err := os.WriteFile(filepath.Join(tmp, f), data, 0o644); err != nil {
			os.RemoveAll(tmp)
			return err
		}
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		os.RemoveAll(tmp)
		return err
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		os.RemoveAll(tmp)
		return err
	}
	return syncDir(dir)
}

// removeDir renames p away first, so readers see it whole or not at all.
func removeDir(dir, p string) error {
	tmp := filepath.Join(dir, tmpPrefix+"rm-"+filepath.Base(p))
	if err := os.Rename(p, tmp); err != nil {
		return err
	}
	return os.RemoveAll(tmp)
}

func writeIfChanged(path string, data []byte, perm fs.FileMode) error {
	cur, err := os.ReadFile(path)
	if err == nil && bytes.Equal(cur, data) {
		return nil
	}
	return writeFile(path, data, perm)
}

// writeFile replaces path atomically: a temporary file in the same
// directory, synced, renamed over it. A path that is a mount point (a hosts
// file bind-mounted into a container or mount namespace) cannot be renamed
// over (EBUSY), and a read-only directory takes no temporary file: then the
// file is rewritten in place, the new content first and the truncation
// last, so a reader never sees it empty.
func writeFile(path string, data []byte, perm fs.FileMode) error {
	if fi, err := os.Stat(path); err == nil {
		perm = fi.Mode().Perm()
	}
	err := writeAtomic(path, data, perm)
	if err == nil || !(errors.Is(err, syscall.EBUSY) || errors.Is(err, syscall.EXDEV) || errors.Is(err, syscall.EROFS) || errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EPERM)) {
		return err
	}
	f, ierr := os.OpenFile(path, os.O_WRONLY, 0)
	if ierr != nil {
		return errors.Join(err, ierr)
	}
	if _, ierr = f.WriteAt(data, 0); ierr == nil {
		ierr = f.Truncate(int64(len(data)))
	}
	if ierr == nil {
		ierr = f.Sync()
	}
	return errors.Join(ierr, f.Close())
}

func writeAtomic(path string, data []byte, perm fs.FileMode) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, tmpPrefix)
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(perm)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) {
		return err
	}
	return nil
}

// syncHostsFile puts the entries that have an IP into the agent's block of
// the hosts file, in place of the old block (or appended), and removes the
// block when there are none. Lines outside the block are kept byte for
// byte.
func syncHostsFile(ctx context.Context, path string, entries []Entry) error {
	cur, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	next := RenderHosts(cur, entries)
	if bytes.Equal(cur, next) {
		return nil
	}
	klog.FromContext(ctx).Info("Updating the hosts file", "path", path, "entries", countIPs(entries))
	return writeFile(path, next, 0o644)
}

func countIPs(entries []Entry) int {
	n := 0
	for _, e := range entries {
		if e.IP != "" {
			n++
		}
	}
	return n
}

// RenderHosts returns cur with the agent's block replaced by one for
// entries. A block whose end marker is missing (a hand edit) ends at the
// first line that is not an "IP hostname" entry.
func RenderHosts(cur []byte, entries []Entry) []byte {
	var block bytes.Buffer
	if countIPs(entries) > 0 {
		block.WriteString(BlockBegin + "\n")
		for _, e := range entries {
			if e.IP != "" {
				fmt.Fprintf(&block, "%s %s\n", e.IP, e.Host)
			}
		}
		block.WriteString(BlockEnd + "\n")
	}

	lines := splitLines(cur)
	var out bytes.Buffer
	placed := false
	for i := 0; i < len(lines); i++ {
		if strings.TrimRight(lines[i], "\r\n") != BlockBegin {
			out.WriteString(lines[i])
			continue
		}
		// Skip the old block.
		j := i + 1
		for ; j < len(lines); j++ {
			l := strings.TrimRight(lines[j], "\r\n")
			if l == BlockEnd {
				break
			}
			if !isEntry(l) {
				j--
				break
			}
		}
		i = j
		if !placed {
			out.Write(block.Bytes())
			placed = true
		}
	}
	if !placed && block.Len() > 0 {
		if out.Len() > 0 && !bytes.HasSuffix(out.Bytes(), []byte("\n")) {
			out.WriteString("\n")
		}
		out.Write(block.Bytes())
	}
	return out.Bytes()
}

func isEntry(l string) bool {
	f := strings.Fields(l)
	return len(f) == 2 && net.ParseIP(f[0]) != nil
}

// splitLines splits b after each newline, keeping them.
func splitLines(b []byte) []string {
	var out []string
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			out = append(out, string(b))
			break
		}
		out = append(out, string(b[:i+1]))
		b = b[i+1:]
	}
	return out
}
