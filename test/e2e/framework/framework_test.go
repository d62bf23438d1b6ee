//go:build e2e

package framework

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"
)

// skipMissingBinsEnv lets a developer without the binaries run `go test
// -tags e2e ./...` and get skips instead of failures. CI leaves it unset so
// that a missing build step fails loudly.
const skipMissingBinsEnv = "IRO_SKIP_MISSING_BINS"

// controllerTimeout bounds waits for kube-controller-manager to act. Its
// informers need a few seconds to sync after start-up, more on a loaded
// 2-core runner.
const controllerTimeout = 90 * time.Second

// One control plane serves every test in the package: starting one costs
// 10-20 seconds, and the tests isolate themselves by namespace.
var (
	sharedControlPlane *ControlPlane
	startErr           error
)

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	start := time.Now()
	sharedControlPlane, startErr = Start(ctx, Options{KeepDir: os.Getenv("IRO_E2E_KEEP_DIR") == "1"})
	if startErr != nil {
		return m.Run()
	}
	fmt.Fprintf(os.Stderr, "control plane ready in %s (dir %s)\n", time.Since(start).Round(time.Millisecond), sharedControlPlane.Dir)

	code := m.Run()

	cp := sharedControlPlane
	if code != 0 {
		// The log files go away with the directory; show what the
		// components said while the tests failed.
		for _, p := range []*process{cp.etcd, cp.apiServer, cp.controllerManager} {
			fmt.Fprintf(os.Stderr, "--- last output of %s:\n%s\n", p.name, p.tail.Lines(tailLines))
		}
	}
	pids := map[string]int{}
	for _, p := range []*process{cp.etcd, cp.apiServer, cp.controllerManager} {
		pids[p.name] = p.cmd.Process.Pid
	}
	stopStart := time.Now()
	if err := cp.Stop(); err != nil {
		fmt.Fprintf(os.Stderr, "stopping control plane: %v\n", err)
		code = 1
	}
	fmt.Fprintf(os.Stderr, "control plane stopped in %s\n", time.Since(stopStart).Round(time.Millisecond))
	// Stop reaps its children, so signal 0 to a leftover pid can only
	// succeed if a process (or a reused pid) is still there.
	for name, pid := range pids {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			fmt.Fprintf(os.Stderr, "%s (pid %d) still exists after Stop: %v\n", name, pid, err)
			code = 1
		}
	}
	if _, err := os.Stat(cp.Dir); !cp.opts.KeepDir && !errors.Is(err, os.ErrNotExist) {
		fmt.Fprintf(os.Stderr, "%s still exists after Stop: %v\n", cp.Dir, err)
		code = 1
	}
	return code
}

// controlPlane returns the shared control plane, or skips or fails the test
// if it could not start.
func controlPlane(t *testing.T) *ControlPlane {
	t.Helper()
	if startErr != nil {
		if errors.Is(startErr, ErrBinariesMissing) && os.Getenv(skipMissingBinsEnv) == "1" {
			t.Skipf("%v (%s=1)", startErr, skipMissingBinsEnv)
		}
		t.Fatalf("starting control plane: %v", startErr)
	}
	return sharedControlPlane
}

// testNamespace creates a namespace for one test and deletes it afterwards;
// the namespace controller finishes the deletion in the background.
func testNamespace(ctx context.Context, t *testing.T, cp *ControlPlane) string {
	t.Helper()
	ns, err := cp.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "iro-e2e-"},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating namespace: %v", err)
	}
	t.Cleanup(func() {
		if err := cp.Client.CoreV1().Namespaces().Delete(context.Background(), ns.Name, metav1.DeleteOptions{}); err != nil {
			t.Errorf("deleting namespace %s: %v", ns.Name, err)
		}
	})
	return ns.Name
}

func TestNamespaceConfigMapAndKubectl(t *testing.T) {
	cp := controlPlane(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ns := testNamespace(ctx, t, cp)

	want := map[string]string{"greeting": "hello"}
	_, err := cp.Client.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "settings"},
		Data:       want,
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating ConfigMap: %v", err)
	}
	got, err := cp.Client.CoreV1().ConfigMaps(ns).Get(ctx, "settings", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("getting ConfigMap: %v", err)
	}
	if got.Data["greeting"] != want["greeting"] {
		t.Errorf("ConfigMap data = %v, want %v", got.Data, want)
	}

	out, err := cp.Kubectl(ctx, "get", "namespaces", "-o", "name")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), "namespace/"+ns+"\n") {
		t.Errorf("kubectl get namespaces does not list %s:\n%s", ns, out)
	}
	out, err = cp.Kubectl(ctx, "--namespace", ns, "get", "configmap", "settings", "-o", "jsonpath={.data.greeting}")
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != "hello" {
		t.Errorf("kubectl jsonpath = %q, want %q", out, "hello")
	}
}

func TestAdminIdentity(t *testing.T) {
	cp := controlPlane(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := cp.Kubectl(ctx, "auth", "whoami", "-o", "jsonpath={.status.userInfo.username} {.status.userInfo.groups}")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(out), AdminUser+" ") || !strings.Contains(string(out), AdminGroup) {
		t.Errorf("kubectl auth whoami = %q, want user %s in group %s", out, AdminUser, AdminGroup)
	}
}

func TestGarbageCollectorDeletesDependents(t *testing.T) {
	cp := controlPlane(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*controllerTimeout)
	defer cancel()
	ns := testNamespace(ctx, t, cp)
	configMaps := cp.Client.CoreV1().ConfigMaps(ns)

	owner, err := configMaps.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "owner"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating owner: %v", err)
	}
	_, err = configMaps.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{
		Name: "dependent",
		OwnerReferences: []metav1.OwnerReference{{
			APIVersion: "v1",
			Kind:       "ConfigMap",
			Name:       owner.Name,
			UID:        owner.UID,
		}},
	}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating dependent: %v", err)
	}

	// Background propagation deletes the owner at once and leaves the
	// dependent to the garbage collector: only a running kcm removes it.
	err = configMaps.Delete(ctx, owner.Name, metav1.DeleteOptions{
		PropagationPolicy: ptr.To(metav1.DeletePropagationBackground),
	})
	if err != nil {
		t.Fatalf("deleting owner: %v", err)
	}
	err = wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, controllerTimeout, true, func(ctx context.Context) (bool, error) {
		_, err := configMaps.Get(ctx, "dependent", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		return false, err
	})
	if err != nil {
		t.Fatalf("dependent ConfigMap not garbage-collected: %v", err)
	}
}

func TestStatefulSetControllerCreatesPods(t *testing.T) {
	cp := controlPlane(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*controllerTimeout)
	defer cancel()
	ns := testNamespace(ctx, t, cp)

	labels := map[string]string{"app": "web"}
	sts, err := cp.Client.AppsV1().StatefulSets(ns).Create(ctx, &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: appsv1.StatefulSetSpec{
			Replicas:    ptr.To[int32](1),
			ServiceName: "web",
			Selector:    &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					// Never pulled: there is no kubelet.
					Containers: []corev1.Container{{Name: "web", Image: "registry.invalid/web:none"}},
				},
			},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating StatefulSet: %v", err)
	}

	var pod *corev1.Pod
	err = wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, controllerTimeout, true, func(ctx context.Context) (bool, error) {
		p, err := cp.Client.CoreV1().Pods(ns).Get(ctx, "web-0", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		pod = p
		return true, nil
	})
	if err != nil {
		t.Fatalf("StatefulSet controller did not create pod web-0: %v", err)
	}
	if !metav1.IsControlledBy(pod, sts) {
		t.Errorf("pod web-0 owner references = %v, want the StatefulSet as controller", pod.OwnerReferences)
	}
	if pod.Status.Phase != corev1.PodPending {
		t.Errorf("pod phase = %q, want %q (no kubelet runs it)", pod.Status.Phase, corev1.PodPending)
	}
}
