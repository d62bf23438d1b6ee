//go:build e2e

package e2e

// The e2e tests share one real control plane (etcd, kube-apiserver,
// kube-controller-manager), started on first use; each test works in its own
// namespace with its own operator process limited to that namespace, so
// tests neither see nor disturb each other.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/image-registry-operator/image-registry-operator/pkg/generated/clientset/versioned"
	"github.com/image-registry-operator/image-registry-operator/test/e2e/framework"
)

var (
	cpOnce   sync.Once
	cpShared *framework.ControlPlane
	cpErr    error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if cpShared != nil {
		if err := cpShared.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stopping the control plane:", err)
		}
	}
	os.Exit(code)
}

// env is what a test gets: the control plane, clients, and its namespace.
type env struct {
	cp       *framework.ControlPlane
	registry versioned.Interface
	ns       string
	// operators counts operator processes started, to name their logs.
	operators int
}

// controlPlane starts the shared control plane and applies the CRDs, once.
func controlPlane(t *testing.T) *framework.ControlPlane {
	t.Helper()
	cpOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		cpShared, cpErr = framework.Start(ctx, framework.Options{KeepDir: os.Getenv("IRO_E2E_KEEP_DIR") != ""})
		if cpErr != nil {
			return
		}
		cpErr = installAPI(ctx, cpShared)
	})
	if cpErr != nil {
		t.Fatalf("control plane: %v", cpErr)
	}
	return cpShared
}

// installAPI applies what every control plane of the tests needs: the CRDs
// and the token server's ClusterRole.
func installAPI(ctx context.Context, cp *framework.ControlPlane) error {
	root, err := framework.RepoRoot()
	if err != nil {
		return err
	}
	if _, err := cp.Kubectl(ctx, "apply", "--server-side", "-f", filepath.Join(root, "artifacts", "crds")); err != nil {
		return err
	}
	// Every registry's token server is bound to it; the install variants
	// ship it with the operator.
	if _, err := cp.Kubectl(ctx, "apply", "--server-side", "-f", filepath.Join(root, "artifacts", "deploy", "operator", "token_server_cluster_role.yaml")); err != nil {
		return err
	}
	if _, err := cp.Kubectl(ctx, "wait", "--for=condition=Established", "--timeout=60s", "crd", "--all"); err != nil {
		return err
	}
	return nil
}

// newEnv makes a namespace for the test (deleted at its end).
func newEnv(t *testing.T) *env {
	t.Helper()
	return newEnvOn(t, controlPlane(t))
}

// newEnvOn makes a namespace for the test on cp.
func newEnvOn(t *testing.T, cp *framework.ControlPlane) *env {
	t.Helper()
	rc, err := versioned.NewForConfig(cp.RestConfig)
	if err != nil {
		t.Fatal(err)
	}
	name := strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name()))
	if len(name) > 50 {
		name = name[:50]
	}
	name = strings.Trim(name, "-") + "-" + fmt.Sprint(time.Now().UnixNano()%100000)
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if _, err := cp.Client.CoreV1().Namespaces().Create(context.Background(), ns, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cp.Client.CoreV1().Namespaces().Delete(context.Background(), name, metav1.DeleteOptions{})
	})
	return &env{cp: cp, registry: rc, ns: name}
}

// startOperator runs the operator for the test's namespace; it is stopped at
// the test's end and its log is shown if the test failed.
func (e *env) startOperator(t *testing.T, args ...string) *framework.Operator {
	t.Helper()
	full := append([]string{"--namespace=" + e.ns, "--operator-namespace=" + e.ns, "--bcrypt-cost=4", "--v=2"}, args...)
	e.operators++
	op, err := e.cp.StartOperator(fmt.Sprintf("%s-operator-%d", e.ns, e.operators), full...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = op.Stop()
		if t.Failed() {
			t.Logf("operator log tail:\n%s", op.Tail())
		}
	})
	return op
}

// startKubelet plays scheduler and kubelet for the namespace: pods are
// bound and reported Ready, so StatefulSets (and registries) become ready.
// It does not run containers; the data-plane tests do that.
func (e *env) startKubelet(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = wait.PollUntilContextCancel(ctx, 300*time.Millisecond, true, func(ctx context.Context) (bool, error) {
			_, _ = framework.MarkPodsReady(ctx, e.cp.Client, e.ns, labels.Everything())
			return false, nil
		})
	}()
	t.Cleanup(func() { cancel(); <-done })
}

// eventually polls cond every 200ms until it returns true or timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func(ctx context.Context) (bool, error)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var lastErr error
	err := wait.PollUntilContextCancel(ctx, 200*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		ok, err := cond(ctx)
		lastErr = err
		return ok, nil
	})
	if err != nil {
		t.Fatalf("timed out after %s waiting for %s (last error: %v)", timeout, what, lastErr)
	}
}
