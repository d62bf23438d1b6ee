package dataplane

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// Client runs crane as a user of the registry would: with a docker config
// and CA taken from a generated Secret, TLS verified (never insecure), and
// the registry's hostname resolved through the Runner's hosts file, which
// is bind-mounted over /etc/hosts in crane's own mount namespace.
type Client struct {
	// Crane is the crane binary.
	Crane string
	// HostsFile replaces /etc/hosts for crane.
	HostsFile string
	// Dir is scratch space for credentials and layers.
	Dir string
	// Timeout bounds one crane run. Default 2 minutes.
	Timeout time.Duration
}

// Client returns a crane client for this data plane; dir is its scratch
// space (the caller removes it).
func (r *Runner) Client(dir string) *Client {
	return &Client{Crane: filepath.Join(r.opts.BinDir, "crane"), HostsFile: r.HostsFile(), Dir: dir}
}

// Credentials are a docker config directory and a CA bundle on disk.
type Credentials struct {
	// DockerConfigDir holds config.json (DOCKER_CONFIG).
	DockerConfigDir string
	// CAFile is the registry's CA (SSL_CERT_FILE).
	CAFile string
	// Username and Password as the Secret held them when saved, for
	// checks on logs and revocation.
	Username, Password string
}

// SaveCredentials writes the docker config of a generated push Secret
// (key config.json) or pull Secret (.dockerconfigjson, saved as
// config.json) and its ca.crt under a new directory in c.Dir.
func (c *Client) SaveCredentials(s *corev1.Secret) (*Credentials, error) {
	cfg, ok := s.Data["config.json"]
	if !ok {
		cfg, ok = s.Data[corev1.DockerConfigJsonKey]
	}
	if !ok {
		return nil, fmt.Errorf("Secret %s/%s has neither config.json nor %s", s.Namespace, s.Name, corev1.DockerConfigJsonKey)
	}
	ca, ok := s.Data["ca.crt"]
	if !ok || len(ca) == 0 {
		return nil, fmt.Errorf("Secret %s/%s has no ca.crt", s.Namespace, s.Name)
	}
	dir, err := os.MkdirTemp(c.Dir, "creds-"+s.Name+"-")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), cfg, 0o600); err != nil {
		return nil, err
	}
	caFile := filepath.Join(dir, "ca.crt")
	if err := os.WriteFile(caFile, ca, 0o644); err != nil {
		return nil, err
	}
	return &Credentials{DockerConfigDir: dir, CAFile: caFile, Username: string(s.Data["username"]), Password: string(s.Data["password"])}, nil
}

// Command returns the command that runs crane with creds (nil: anonymous).
func (c *Client) Command(ctx context.Context, creds *Credentials, args ...string) *exec.Cmd {
	argv := append([]string{"-m", "--propagation", "private", "--", "/bin/sh", "-c",
		`mount --bind "$0" /etc/hosts && exec "$@"`, c.HostsFile, c.Crane}, args...)
	cmd := exec.CommandContext(ctx, "unshare", argv...)
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + c.Dir}
	if creds != nil {
		env = append(env, "DOCKER_CONFIG="+creds.DockerConfigDir, "SSL_CERT_FILE="+creds.CAFile)
	} else {
		empty := filepath.Join(c.Dir, "anonymous")
		_ = os.MkdirAll(empty, 0o700)
		env = append(env, "DOCKER_CONFIG="+empty)
	}
	cmd.Env = env
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// CommandLine is Command as a shell line a user can paste.
func (c *Client) CommandLine(creds *Credentials, args ...string) string {
	return fmt.Sprintf("DOCKER_CONFIG=%s SSL_CERT_FILE=%s unshare -m --propagation private -- sh -c 'mount --bind %s /etc/hosts && exec \"$@\"' sh %s %s",
		creds.DockerConfigDir, creds.CAFile, c.HostsFile, c.Crane, strings.Join(args, " "))
}

// Run runs crane and returns its standard output; the error carries
// standard error, where crane explains a refusal.
func (c *Client) Run(ctx context.Context, creds *Credentials, args ...string) (string, error) {
	timeout := c.Timeout
	if timeout == 0 {
		timeout = 2 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := c.Command(ctx, creds, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), &CraneError{Args: args, Err: err, Stderr: strings.TrimSpace(stderr.String())}
	}
	return strings.TrimSpace(stdout.String()), nil
}

// CraneError is a failed crane run.
type CraneError struct {
	Args   []string
	Err    error
	Stderr string
}

func (e *CraneError) Error() string {
	return fmt.Sprintf("crane %s: %v: %s", strings.Join(e.Args, " "), e.Err, e.Stderr)
}

// Denied tells whether crane failed because the registry or token server
// refused the credentials or the access.
func (e *CraneError) Denied() bool { return deniedMessage(e.Stderr) }

// deniedMessage tells whether a client's error output is a refusal of
// the credentials or the access.
func deniedMessage(stderr string) bool {
	for _, s := range []string{"DENIED", "UNAUTHORIZED", "401 Unauthorized", "403 Forbidden", "unauthorized", "denied"} {
		if strings.Contains(stderr, s) {
			return true
		}
	}
	return false
}

// RandomLayer writes a tar layer with one file of random content, so that
// every pushed image is new.
func (c *Client) RandomLayer() (string, error) {
	var rnd [32]byte
	_, _ = rand.Read(rnd[:])
	content := []byte("random layer " + hex.EncodeToString(rnd[:]) + "\n")
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: "random.txt", Mode: 0o644, Size: int64(len(content)), ModTime: time.Unix(0, 0)}); err != nil {
		return "", err
	}
	if _, err := tw.Write(content); err != nil {
		return "", err
	}
	if err := tw.Close(); err != nil {
		return "", err
	}
	f, err := os.CreateTemp(c.Dir, "layer-*.tar")
	if err != nil {
		return "", err
	}
	defer f.Close()
	if _, err := f.Write(buf.Bytes()); err != nil {
		return "", err
	}
	return f.Name(), nil
}

// PushRandom pushes a one-layer image with random content to ref (crane
// append onto an empty base) and returns its digest as the registry
// reports it.
func (c *Client) PushRandom(ctx context.Context, creds *Credentials, ref string) (string, error) {
	layer, err := c.RandomLayer()
	if err != nil {
		return "", err
	}
	defer os.Remove(layer)
	if _, err := c.Run(ctx, creds, "append", "-f", layer, "-t", ref); err != nil {
		return "", err
	}
	return c.Run(ctx, creds, "digest", ref)
}

// Pull pulls ref with all its blobs into a tarball and returns its digest.
func (c *Client) Pull(ctx context.Context, creds *Credentials, ref string) (string, error) {
	out, err := os.MkdirTemp(c.Dir, "pull-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(out)
	if _, err := c.Run(ctx, creds, "pull", "--format=oci", ref, out); err != nil {
		return "", err
	}
	return c.Run(ctx, creds, "digest", ref)
}
