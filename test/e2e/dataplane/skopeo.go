package dataplane

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// Skopeo runs skopeo (containers/image, a client this project did not
// write) against the data plane as a user would: the docker config of a
// generated Secret as its --authfile, the registry's CA in a --cert-dir
// style directory, TLS verified, and the registry's hostname resolved
// through the Runner's hosts file, bind-mounted over /etc/hosts in its own
// mount namespace (as Client does for crane).
type Skopeo struct {
	// Bin is the skopeo binary.
	Bin string
	// HostsFile replaces /etc/hosts for skopeo.
	HostsFile string
	// Dir is scratch space (HOME, certificate directories, images).
	Dir string
	// Timeout bounds one skopeo run. Default 2 minutes.
	Timeout time.Duration
}

// Skopeo returns a skopeo client for this data plane, with skopeo from
// PATH; dir is its scratch space (the caller removes it).
func (r *Runner) Skopeo(dir string) (*Skopeo, error) {
	bin, err := exec.LookPath("skopeo")
	if err != nil {
		return nil, fmt.Errorf("skopeo is required (Debian: apt-get install skopeo): %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	return &Skopeo{Bin: bin, HostsFile: r.HostsFile(), Dir: dir}, nil
}

// certDir is a --cert-dir for creds: a directory with the CA as ca.crt
// (skopeo reads *.crt there as CAs and *.cert/*.key as client keys).
func (s *Skopeo) certDir(creds *Credentials) (string, error) {
	dir := filepath.Join(filepath.Dir(creds.CAFile), "skopeo-certs")
	ca, err := os.ReadFile(creds.CAFile)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	return dir, os.WriteFile(filepath.Join(dir, "ca.crt"), ca, 0o644)
}

// authArgs are the flags that give skopeo creds for a registry reference
// (prefix "" for inspect, "src-" or "dest-" for copy). A nil or empty
// docker config means anonymous (--no-creds), with the CA still verified.
func (s *Skopeo) authArgs(creds *Credentials, prefix string) ([]string, error) {
	dir, err := s.certDir(creds)
	if err != nil {
		return nil, err
	}
	args := []string{"--" + prefix + "cert-dir=" + dir, "--" + prefix + "tls-verify=true"}
	authFile := filepath.Join(creds.DockerConfigDir, "config.json")
	if _, err := os.Stat(authFile); err != nil {
		return append(args, "--"+prefix+"no-creds"), nil
	}
	return append(args, "--"+prefix+"authfile="+authFile), nil
}

// Run runs skopeo with args and returns its standard output; the error
// carries standard error.
func (s *Skopeo) Run(ctx context.Context, args ...string) (string, error) {
	timeout := s.Timeout
	if timeout == 0 {
		timeout = 2 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	home := filepath.Join(s.Dir, "home")
	if err := os.MkdirAll(home, 0o700); err != nil {
		return "", err
	}
	argv := append([]string{"-m", "--propagation", "private", "--", "/bin/sh", "-c",
		`mount --bind "$0" /etc/hosts && exec "$@"`, s.HostsFile, s.Bin}, args...)
	cmd := exec.CommandContext(ctx, "unshare", argv...)
	// No credentials but the ones passed: a private HOME and runtime dir.
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "XDG_RUNTIME_DIR=" + home}
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), &ClientError{Client: "skopeo", Args: args, Err: err, Stderr: strings.TrimSpace(stderr.String())}
	}
	return strings.TrimSpace(stdout.String()), nil
}

// Digest is the manifest digest of ref as the registry serves it.
func (s *Skopeo) Digest(ctx context.Context, creds *Credentials, ref string) (string, error) {
	auth, err := s.authArgs(creds, "")
	if err != nil {
		return "", err
	}
	return s.Run(ctx, append(append([]string{"inspect", "--format={{.Digest}}"}, auth...), "docker://"+ref)...)
}

// Pull copies ref with all its blobs into a new directory under Dir
// (skopeo's dir: transport, which keeps the manifest as the registry
// served it) and returns the directory and the manifest's digest.
func (s *Skopeo) Pull(ctx context.Context, creds *Credentials, ref string) (dir, digest string, err error) {
	auth, err := s.authArgs(creds, "src-")
	if err != nil {
		return "", "", err
	}
	if dir, err = os.MkdirTemp(s.Dir, "image-"); err != nil {
		return "", "", err
	}
	args := append(append([]string{"copy", "--quiet"}, auth...), "docker://"+ref, "dir:"+dir)
	if _, err := s.Run(ctx, args...); err != nil {
		return "", "", err
	}
	manifest, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		return "", "", err
	}
	return dir, fmt.Sprintf("sha256:%x", sha256.Sum256(manifest)), nil
}

// Push copies an image directory (see Pull) to ref unchanged
// (--preserve-digests).
func (s *Skopeo) Push(ctx context.Context, creds *Credentials, dir, ref string) error {
	auth, err := s.authArgs(creds, "dest-")
	if err != nil {
		return err
	}
	args := append(append([]string{"copy", "--quiet", "--preserve-digests"}, auth...), "dir:"+dir, "docker://"+ref)
	_, err = s.Run(ctx, args...)
	return err
}

// ClientError is a failed run of a registry client other than crane.
type ClientError struct {
	Client string
	Args   []string
	Err    error
	Stderr string
}

func (e *ClientError) Error() string {
	return fmt.Sprintf("%s %s: %v: %s", e.Client, strings.Join(e.Args, " "), e.Err, e.Stderr)
}

// Denied tells whether the client failed because the registry or token
// server refused the credentials or the access.
func (e *ClientError) Denied() bool { return deniedMessage(e.Stderr) }
