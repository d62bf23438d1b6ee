//go:build e2e

package e2e

// The Docker engine on the real node: a real dockerd (Debian's docker.io)
// in the node's mount namespace, so it resolves the registry through the
// node's /etc/hosts and trusts it through /etc/docker/certs.d, both written
// by the node agent's Pod; the real docker CLI pushes with the push
// Secret's config.json and pulls with the pull Secret's .dockerconfigjson.

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/image-registry-operator/image-registry-operator/test/e2e/framework"
)

// dockerCLI prefers Debian's docker client, which matches its dockerd.
func dockerCLI() (string, error) {
	if _, err := os.Stat("/usr/bin/docker"); err == nil {
		return "/usr/bin/docker", nil
	}
	return exec.LookPath("docker")
}

type dockerEngine struct {
	cli    string
	socket string
}

// startDocker runs dockerd on the node, on the node's containerd, with no
// networking of its own; false if this machine has no Docker engine.
func startDocker(t *testing.T, node *framework.Node) (*dockerEngine, bool) {
	t.Helper()
	dockerd, err := exec.LookPath("dockerd")
	if err != nil {
		return nil, false
	}
	cli, err := dockerCLI()
	if err != nil {
		return nil, false
	}
	dir := filepath.Join(node.Dir, "docker")
	for _, d := range []string{filepath.Join(dir, "root"), filepath.Join(dir, "exec")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	d := &dockerEngine{cli: cli, socket: filepath.Join(dir, "docker.sock")}
	p, err := node.Start("dockerd", dockerd, "--iptables=false", "--ip6tables=false", "--bridge=none",
		"--storage-driver=vfs", "-H", "unix://"+d.socket, "--data-root", filepath.Join(dir, "root"),
		"--exec-root", filepath.Join(dir, "exec"), "--pidfile", filepath.Join(dir, "dockerd.pid"),
		"--containerd", node.ContainerdSocket)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Minute, "dockerd to answer", func(ctx context.Context) (bool, error) {
		if err := p.Err(); err != nil {
			t.Fatalf("dockerd: %v", err)
		}
		_, err := d.run(ctx, "", "version")
		return err == nil, err
	})
	return d, true
}

// run runs the docker CLI with the config directory configDir ("" for
// none: an empty one).
func (d *dockerEngine) run(ctx context.Context, configDir string, args ...string) (string, error) {
	if configDir == "" {
		var err error
		if configDir, err = os.MkdirTemp("", "docker-config-"); err != nil {
			return "", err
		}
		defer os.RemoveAll(configDir)
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, d.cli, append([]string{"--config", configDir, "-H", "unix://" + d.socket}, args...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if err != nil {
		return out.String(), fmt.Errorf("docker %s: %v: %s", strings.Join(args, " "), err, out.String())
	}
	return out.String(), nil
}

// dockerConfig writes a generated Secret's docker config (key) as
// config.json in a new directory under u.dir.
func dockerConfig(t *testing.T, u *userEnv, secret, key string) string {
	t.Helper()
	s := u.secret(t, u.ns, secret)
	data := s.Data[key]
	if len(data) == 0 {
		t.Fatalf("secret %s has no %s", secret, key)
	}
	dir, err := os.MkdirTemp(u.dir, "docker-config-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), data, 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

// dockerPushAndPull pushes the app image with the real docker CLI and the
// push Secret, pulls it back with the pull Secret, and checks that the pull
// Secret cannot push and no Secret cannot pull. It returns the reference
// pushed.
func dockerPushAndPull(t *testing.T, u *userEnv, d *dockerEngine, appTar string) string {
	t.Helper()
	ctx := context.Background()
	ref := u.image("app:docker")
	out, err := d.run(ctx, "", "load", "-i", appTar)
	if err != nil {
		t.Fatal(err)
	}
	loaded := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(out), "Loaded image:"))
	if _, err := d.run(ctx, "", "tag", loaded, ref); err != nil {
		t.Fatal(err)
	}
	push := dockerConfig(t, u, examplePushSecret, "config.json")
	pull := dockerConfig(t, u, examplePullSecret, ".dockerconfigjson")
	if _, err := d.run(ctx, push, "push", ref); err != nil {
		t.Fatalf("docker push with the push Secret: %v", err)
	}
	if _, err := d.run(ctx, "", "rmi", ref, loaded); err != nil {
		t.Fatal(err)
	}
	if _, err := d.run(ctx, "", "pull", ref); err == nil {
		t.Fatal("docker pull without credentials succeeded")
	} else if !strings.Contains(err.Error(), "denied") {
		t.Fatalf("docker pull without credentials failed, but not as refused access: %v", err)
	} else {
		t.Logf("docker pull without credentials refused as expected: %s", tail(err.Error(), 200))
	}
	if _, err := d.run(ctx, pull, "pull", ref); err != nil {
		t.Fatalf("docker pull with the pull Secret: %v", err)
	}
	digest, err := d.run(ctx, "", "inspect", "--format", "{{index .RepoDigests 0}}", ref)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("docker pulled %s", strings.TrimSpace(digest))
	if _, err := d.run(ctx, "", "tag", ref, ref+"-again"); err != nil {
		t.Fatal(err)
	}
	if _, err := d.run(ctx, pull, "push", ref+"-again"); err == nil {
		t.Fatal("docker push with the pull Secret succeeded")
	} else if !strings.Contains(err.Error(), "denied") {
		t.Fatalf("docker push with the pull Secret failed, but not as refused access: %v", err)
	} else {
		t.Logf("docker push with the pull Secret refused as expected: %s", tail(err.Error(), 200))
	}
	return ref
}
