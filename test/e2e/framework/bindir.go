package framework

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

const (
	// modulePath identifies the repository's root go.mod. Nested tool modules
	// under hack/tools have go.mod files too, so the name is what tells them
	// apart when walking up.
	modulePath = "github.com/image-registry-operator/image-registry-operator"

	// BinDirEnv overrides where the control-plane binaries are looked up.
	BinDirEnv = "IRO_BIN_DIR"
)

// Names of the binaries that hack/build-tools.sh installs.
const (
	EtcdBinary              = "etcd"
	APIServerBinary         = "kube-apiserver"
	ControllerManagerBinary = "kube-controller-manager"
	KubectlBinary           = "kubectl"
)

// ErrBinariesMissing is returned (wrapped) by Start when a required binary is
// not in the binary directory, so that callers can tell "not built yet" from a
// control plane that failed to come up.
var ErrBinariesMissing = errors.New("control-plane binaries missing")

// DefaultBinDir returns $IRO_BIN_DIR if set, otherwise <repo root>/_output/bin.
func DefaultBinDir() (string, error) {
	if dir := os.Getenv(BinDirEnv); dir != "" {
		return dir, nil
	}
	root, err := RepoRoot()
	if err != nil {
		return "", fmt.Errorf("locating binaries (set %s to override): %w", BinDirEnv, err)
	}
	return filepath.Join(root, "_output", "bin"), nil
}

// RepoRoot walks up from the working directory to the go.mod that declares
// this repository's module.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("getting working directory: %w", err)
	}
	for {
		if isRepoRoot(dir) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod declaring module %s above the working directory", modulePath)
		}
		dir = parent
	}
}

func isRepoRoot(dir string) bool {
	f, err := os.Open(filepath.Join(dir, "go.mod"))
	if err != nil {
		return false
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) == 2 && fields[0] == "module" {
			return strings.Trim(fields[1], `"`) == modulePath
		}
	}
	return false
}

// checkBinaries returns an error wrapping ErrBinariesMissing that lists every
// missing or non-executable binary, so a single run tells the whole story.
func checkBinaries(binDir string, names ...string) error {
	var missing []string
	for _, name := range names {
		fi, err := os.Stat(filepath.Join(binDir, name))
		if err != nil || fi.IsDir() || fi.Mode().Perm()&0o111 == 0 {
			missing = append(missing, name)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	return fmt.Errorf("%w in %s: %s (run hack/build-tools.sh)", ErrBinariesMissing, binDir, strings.Join(missing, ", "))
}
