//go:build e2e

package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	v1alpha1 "github.com/image-registry-operator/image-registry-operator/pkg/apis/registry/v1alpha1"
	"github.com/image-registry-operator/image-registry-operator/test/e2e/framework"
)

// serviceAccountKubeconfig writes a kubeconfig that authenticates as the
// ServiceAccount with a token from the TokenRequest API, as a pod would.
func serviceAccountKubeconfig(t *testing.T, e *env, namespace, name string) (string, *rest.Config) {
	t.Helper()
	tr, err := e.cp.Client.CoreV1().ServiceAccounts(namespace).CreateToken(context.Background(), name,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptrTo(int64(3600))}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["c"] = &clientcmdapi.Cluster{Server: e.cp.RestConfig.Host, CertificateAuthorityData: e.cp.RestConfig.CAData}
	cfg.AuthInfos["sa"] = &clientcmdapi.AuthInfo{Token: tr.Status.Token}
	cfg.Contexts["c"] = &clientcmdapi.Context{Cluster: "c", AuthInfo: "sa"}
	cfg.CurrentContext = "c"
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	rc, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		t.Fatal(err)
	}
	return path, rc
}

func ptrTo[T any](v T) *T { return &v }

// applyNamespacedInstall applies the namespaced install variant into the
// test's namespace (it installs into "registry": a kustomization on top
// renders it here, as a user would) and returns kubectl's output.
func (e *env) applyNamespacedInstall(t *testing.T) []byte {
	t.Helper()
	root, err := framework.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	overlay := t.TempDir()
	rel, err := filepath.Rel(overlay, filepath.Join(root, "artifacts", "deploy", "namespaced"))
	if err != nil {
		t.Fatal(err)
	}
	kustomization := "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamespace: " + e.ns + "\nresources:\n- " + rel + "\n"
	if err := os.WriteFile(filepath.Join(overlay, "kustomization.yaml"), []byte(kustomization), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := e.cp.Kubectl(context.Background(), "apply", "-k", overlay)
	if err != nil {
		t.Fatalf("kubectl apply -k: %v\n%s", err, out)
	}
	return out
}

// TestDeployNamespacedWithOwnRBAC applies the namespaced install variant
// with kubectl -k, runs the operator with its ServiceAccount's token, and
// completes the credentials scenario with those rights only; a request
// outside them is refused.
func TestDeployNamespacedWithOwnRBAC(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	out := e.applyNamespacedInstall(t)
	for _, want := range []string{"serviceaccount/image-registry-operator", "clusterrole.rbac.authorization.k8s.io/image-registry-operator", "clusterrole.rbac.authorization.k8s.io/image-registry-operator-token-server", "rolebinding.rbac.authorization.k8s.io/image-registry-operator", "deployment.apps/image-registry-operator"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("kubectl apply -k did not create %s:\n%s", want, out)
		}
	}

	kubeconfig, saConfig := serviceAccountKubeconfig(t, e, e.ns, "image-registry-operator")
	e.startOperator(t, "--kubeconfig="+kubeconfig)
	e.startKubelet(t)
	reg := createRegistry(t, e, "registry")
	reg = waitRegistryReady(t, e, reg.Name)
	c := e.registry.RegistryV1alpha1()
	if _, err := c.ImagePushSecrets(e.ns).Create(ctx, &v1alpha1.ImagePushSecret{
		ObjectMeta: metav1.ObjectMeta{Name: "app"},
		Spec:       v1alpha1.ImageSecretSpec{RegistryRef: &v1alpha1.RegistryRef{Name: reg.Name}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "push secret Ready with the operator's own rights", func(ctx context.Context) (bool, error) {
		ps, err := c.ImagePushSecrets(e.ns).Get(ctx, "app", metav1.GetOptions{})
		return err == nil && meta.IsStatusConditionTrue(ps.Status.Conditions, v1alpha1.ConditionReady), err
	})
	secret, err := e.cp.Client.CoreV1().Secrets(e.ns).Get(ctx, "app-image-push-secret", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(secret.Data["config.json"]) == 0 {
		t.Error("push Secret has no config.json")
	}

	// Outside its namespace the ServiceAccount has no rights.
	sa, err := kubernetes.NewForConfig(saConfig)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sa.CoreV1().Secrets("kube-system").List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("listing Secrets in kube-system with the operator's token: %v, want Forbidden", err)
	}
	if _, err := sa.CoreV1().Nodes().List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("listing Nodes with the operator's token: %v, want Forbidden", err)
	}
	// Pods only where it is bound (the garbage collector's, and the
	// registry's pods' config hash).
	if _, err := sa.CoreV1().Pods("kube-system").List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("listing Pods in kube-system with the operator's token: %v, want Forbidden", err)
	}
}

// TestDeployClusterWideApplies applies the cluster-wide variant with
// kubectl apply -k against the real API server (its pods stay Pending: no
// kubelet), and the CoreDNS overlay on top of it as a server-side dry run.
func TestDeployClusterWideApplies(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	root, err := framework.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Not the CRDs: the other tests share them.
		_, _ = e.cp.Kubectl(ctx, "delete", "--wait=false", "namespace/image-registry-operator", "clusterrolebinding/image-registry-operator")
	})
	out, err := e.cp.Kubectl(ctx, "apply", "-k", filepath.Join(root, "artifacts", "deploy", "cluster-wide"))
	if err != nil {
		t.Fatalf("cluster-wide: %v\n%s", err, out)
	}
	for _, want := range []string{"namespace/image-registry-operator", "clusterrolebinding.rbac.authorization.k8s.io/image-registry-operator", "deployment.apps/image-registry-operator", "role.rbac.authorization.k8s.io/image-registry-operator-leader-election"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("kubectl apply -k did not create %s:\n%s", want, out)
		}
	}
	// The operator's rights as the API server evaluates them.
	sa := "system:serviceaccount:image-registry-operator:image-registry-operator"
	for _, check := range []struct {
		args []string
		want string
	}{
		{[]string{"create", "imageregistryaccounts.registry.mgoltzsche.github.com", "-n", "team-a"}, "yes"},
		{[]string{"update", "imagepushsecrets.registry.mgoltzsche.github.com/status", "-n", "team-a"}, "yes"},
		{[]string{"create", "leases.coordination.k8s.io", "-n", "image-registry-operator"}, "yes"},
		{[]string{"create", "leases.coordination.k8s.io", "-n", "team-a"}, "no"},
		{[]string{"delete", "nodes"}, "no"},
		// The garbage collector's pod; creating StatefulSets already runs pods.
		{[]string{"create", "pods", "-n", "team-a"}, "yes"},
		{[]string{"patch", "pods", "-n", "team-a"}, "no"},
		{[]string{"escalate", "clusterroles"}, "no"},
		// The smallest set that works (docs/security.md): no Roles, no
		// cluster-wide bindings, and the one ClusterRole it may bind.
		{[]string{"create", "roles", "-n", "team-a"}, "no"},
		{[]string{"create", "clusterrolebindings"}, "no"},
		{[]string{"create", "clusterroles"}, "no"},
		{[]string{"bind", "clusterroles/image-registry-operator-token-server"}, "yes"},
		{[]string{"bind", "clusterroles/cluster-admin"}, "no"},
		{[]string{"bind", "clusterroles/admin"}, "no"},
		{[]string{"delete", "statefulsets", "-n", "team-a"}, "no"},
		{[]string{"patch", "secrets", "-n", "team-a"}, "no"},
		{[]string{"update", "imageregistries.registry.mgoltzsche.github.com", "-n", "team-a"}, "no"},
		{[]string{"create", "pods", "--subresource=exec", "-n", "team-a"}, "no"},
	} {
		out, _ := e.cp.Kubectl(ctx, append([]string{"auth", "can-i", "--as=" + sa}, check.args...)...)
		if got := strings.TrimSpace(string(out)); got != check.want {
			t.Errorf("can the operator %v? %q, want %q", check.args, got, check.want)
		}
	}
	out, err = e.cp.Kubectl(ctx, "apply", "--dry-run=server", "-k", filepath.Join(root, "artifacts", "deploy", "coredns-k8s-external"))
	if err != nil {
		t.Errorf("coredns-k8s-external: %v\n%s", err, out)
	}
}

// TestLeaderElection runs two operators for one namespace: only the Lease
// holder acts; killing it makes the other take over within the lease
// duration.
func TestLeaderElection(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	le := []string{"--leader-elect", "--leader-elect-lease-duration=6s", "--leader-elect-renew-deadline=4s", "--leader-elect-retry-period=1s"}
	first := e.startOperator(t, le...)
	var holder string
	eventually(t, 30*time.Second, "a leader", func(ctx context.Context) (bool, error) {
		l, err := e.cp.Client.CoordinationV1().Leases(e.ns).Get(ctx, "image-registry-operator", metav1.GetOptions{})
		if err != nil || l.Spec.HolderIdentity == nil {
			return false, nil
		}
		holder = *l.Spec.HolderIdentity
		return true, nil
	})
	second := e.startOperator(t, le...)
	e.startKubelet(t)

	// Work gets done, by the first operator only.
	reg := createRegistry(t, e, "registry")
	waitRegistryReady(t, e, reg.Name)
	time.Sleep(2 * time.Second)
	if !logContains(t, first.LogFile, "Starting controllers") {
		t.Fatalf("the leader did not start its controllers:\n%s", first.Tail())
	}
	if logContains(t, second.LogFile, "Starting controllers") {
		t.Fatal("the standby started its controllers while the leader held the lease")
	}

	// A crash of the leader: the standby takes over within the lease duration
	// (6s) plus a retry period, and serves new objects.
	killed := time.Now()
	if err := first.Kill(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "the standby to take the lease", func(ctx context.Context) (bool, error) {
		l, err := e.cp.Client.CoordinationV1().Leases(e.ns).Get(ctx, "image-registry-operator", metav1.GetOptions{})
		return err == nil && l.Spec.HolderIdentity != nil && *l.Spec.HolderIdentity != holder, err
	})
	t.Logf("standby took over %s after the leader was killed", time.Since(killed).Round(100*time.Millisecond))
	if _, err := e.registry.RegistryV1alpha1().ImagePullSecrets(e.ns).Create(ctx, &v1alpha1.ImagePullSecret{
		ObjectMeta: metav1.ObjectMeta{Name: "after-failover"},
		Spec:       v1alpha1.ImagePullSecretSpec{ImageSecretSpec: v1alpha1.ImageSecretSpec{RegistryRef: &v1alpha1.RegistryRef{Name: reg.Name}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "the new leader to serve a new pull secret", func(ctx context.Context) (bool, error) {
		_, err := e.cp.Client.CoreV1().Secrets(e.ns).Get(ctx, "after-failover-image-pull-secret", metav1.GetOptions{})
		return err == nil, nil
	})
}

func logContains(t *testing.T, file, s string) bool {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Contains(string(data), s)
}
