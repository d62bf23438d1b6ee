package framework

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
)

// Kubectl runs the pinned kubectl against the control plane as the admin user
// and returns its standard output. On failure the error includes standard
// error, which is where kubectl explains itself.
func (cp *ControlPlane) Kubectl(ctx context.Context, args ...string) ([]byte, error) {
	return cp.KubectlWithInput(ctx, nil, args...)
}

// KubectlWithInput is Kubectl with stdin, for `kubectl apply -f -`.
func (cp *ControlPlane) KubectlWithInput(ctx context.Context, stdin []byte, args ...string) ([]byte, error) {
	full := append([]string{"--kubeconfig=" + cp.Kubeconfig}, args...)
	cmd := exec.CommandContext(ctx, filepath.Join(cp.BinDir, KubectlBinary), full...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return stdout.Bytes(), fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.Bytes(), nil
}
