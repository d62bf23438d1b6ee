//go:build e2e

package e2e

// The registry itself on the real node: the StatefulSet's pod runs under
// the real kubelet and containerd from the operator's pod template (the
// registry image built from the pinned distribution binary, the token
// server from the operator image), its PersistentVolumeClaim bound to a
// hostPath PersistentVolume, and the Services played by the node's
// forwarders (framework.Node.Forward, a userspace kube-proxy): the
// "kubernetes" ClusterIP for the token server's API access, and the
// registry's LoadBalancer address for clients. What this control plane
// lacks and the test does by hand: scheduling (binding pods to the node)
// and binding the claim (no PV controller).

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/image-registry-operator/image-registry-operator/test/e2e/framework"
)

const (
	registryImageName = "docker.io/library/registry"
	nodeTag           = "e2e"
)

// TestRealNodeRunsRegistry runs the registry's pod on the real node and a
// Deployment pulling from it, then replaces the registry pod and pulls
// again.
func TestRealNodeRunsRegistry(t *testing.T) {
	st := newStepTimer(t)
	u := newUserEnv(t, "--registry-image="+registryImageName+":"+nodeTag, "--auth-image="+agentImage+":"+nodeTag)
	node := startRealNode(t, u, st)
	ctx := context.Background()

	// Images: the registry from the pinned binary, the operator's from make images.
	registryTar := filepath.Join(u.dir, "registry.tar")
	if err := framework.WriteBinaryImage(registryTar, registryImageName+":"+nodeTag, filepath.Join(u.cp.BinDir, "registry"), "bin/registry"); err != nil {
		t.Fatal(err)
	}
	if err := node.ImportTarball(ctx, registryTar); err != nil {
		t.Fatal(err)
	}
	root, err := framework.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	if err := node.ImportOCILayout(ctx, filepath.Join(root, "_output", "images", "image-registry-operator"), agentImage, nodeTag); err != nil {
		t.Fatalf("importing the operator image (make images builds it): %v", err)
	}
	// The "kubernetes" Service, for the token server's in-cluster client.
	kubernetesSvc, err := u.cp.Client.CoreV1().Services("default").Get(ctx, "kubernetes", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	apiAddr := strings.TrimPrefix(u.cp.APIServerURL, "https://")
	if err := node.Forward(kubernetesSvc.Spec.ClusterIP, 443, func() (string, error) { return apiAddr, nil }); err != nil {
		t.Fatal(err)
	}
	st.done("registry and operator images imported; kubernetes Service forwarded")

	// Play scheduler and PV controller for the namespace.
	bctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = wait.PollUntilContextCancel(bctx, 250*time.Millisecond, true, func(ctx context.Context) (bool, error) {
			bindPods(ctx, u, node.Name)
			bindClaims(ctx, u, node)
			return false, nil
		})
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		// The volumes are cluster-scoped; their directories go with the node.
		pvs, err := u.cp.Client.CoreV1().PersistentVolumes().List(context.Background(), metav1.ListOptions{})
		if err != nil {
			return
		}
		for _, pv := range pvs.Items {
			if ref := pv.Spec.ClaimRef; ref != nil && ref.Namespace == u.ns && strings.HasPrefix(pv.Name, "pv-") {
				_ = u.cp.Client.CoreV1().PersistentVolumes().Delete(context.Background(), pv.Name, metav1.DeleteOptions{})
			}
		}
	})

	u.applyExamples(t)
	u.waitReady(t, readyTimeout, "imageregistry/"+exampleRegistry, "imagepushsecret/example", "imagepullsecret/example")
	st.done("registry pod Running on the real node, registry Ready")

	reg, err := u.registry.RegistryV1alpha1().ImageRegistries(u.ns).Get(ctx, exampleRegistry, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	host := reg.Status.Hostname
	lb := "127.0.99.1"
	podAddr := func(port int) func() (string, error) {
		return func() (string, error) {
			p, err := u.cp.Client.CoreV1().Pods(u.ns).Get(context.Background(), exampleRegistry+"-0", metav1.GetOptions{})
			if err != nil {
				return "", err
			}
			if p.Status.PodIP == "" {
				return "", fmt.Errorf("pod %s has no IP", p.Name)
			}
			return fmt.Sprintf("%s:%d", p.Status.PodIP, port), nil
		}
	}
	if err := node.Forward(lb, 443, podAddr(5000)); err != nil {
		t.Fatal(err)
	}
	if err := node.Forward(lb, 5001, podAddr(5001)); err != nil {
		t.Fatal(err)
	}
	svc, err := u.cp.Client.CoreV1().Services(u.ns).Get(ctx, exampleRegistry, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	svc.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: lb}}
	if _, err := u.cp.Client.CoreV1().Services(u.ns).UpdateStatus(ctx, svc, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	agent := newAgentPods(t, u, node)
	agent.start(t, "node-agent-1")
	waitNodeFiles(t, node, agent, host, lb+" "+host, true)
	st.done("Service forwarded, node agent Pod Running and node files written")

	// Push with crane on the node (its /etc/hosts, the Secret's CA).
	pause, err := framework.BuildPause(ctx, u.dir)
	if err != nil {
		t.Fatal(err)
	}
	ref := host + "/" + u.ns + "/app:v1"
	appTar := filepath.Join(u.dir, "app.tar")
	if err := framework.WriteBinaryImage(appTar, ref, pause, "app"); err != nil {
		t.Fatal(err)
	}
	push := u.secret(t, u.ns, examplePushSecret)
	cfgDir := filepath.Join(u.dir, "push-config")
	if err := os.MkdirAll(cfgDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cfgDir, "config.json"), push.Data["config.json"], 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cfgDir, "ca.crt"), push.Data["ca.crt"], 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := node.Exec(ctx, []string{"DOCKER_CONFIG=" + cfgDir, "SSL_CERT_FILE=" + filepath.Join(cfgDir, "ca.crt")},
		filepath.Join(u.cp.BinDir, "crane"), "push", appTar, ref); err != nil {
		t.Fatalf("crane push with the push Secret: %v\n%s", err, out)
	}
	st.done("app image pushed with the push Secret (crane on the node)")

	dep := appDeployment(node.Name, "app", ref, examplePullSecret)
	if _, err := u.cp.Client.AppsV1().Deployments(u.ns).Create(ctx, dep, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitPodRunning(t, u, "app=app")
	st.done("Deployment's Pod Running, pulled from the registry pod on the node")

	// The registry pod is deleted; the StatefulSet makes a new one, the
	// claim (and so the pushed image) stays.
	old, err := u.cp.Client.CoreV1().Pods(u.ns).Get(ctx, exampleRegistry+"-0", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := u.cp.Client.CoreV1().Pods(u.ns).Delete(ctx, old.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, readyTimeout, "a new registry pod Ready", func(ctx context.Context) (bool, error) {
		p, err := u.cp.Client.CoreV1().Pods(u.ns).Get(ctx, exampleRegistry+"-0", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		if p.UID == old.UID {
			return false, fmt.Errorf("old pod still there")
		}
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
				return true, nil
			}
		}
		return false, fmt.Errorf("new pod not ready: %s", p.Status.Phase)
	})
	if _, err := u.cp.Client.CoreV1().Pods(u.ns).Create(ctx, appPod(node.Name, "after-registry-restart", ref, examplePullSecret), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitPodRunning(t, u, "iro.test/pod=after-registry-restart")
	st.done("registry pod replaced on the node; a new Pod pulls the image pushed before")
	agent.check(t)
}

// bindPods binds the namespace's unscheduled pods to the node.
func bindPods(ctx context.Context, u *userEnv, node string) {
	pods, err := u.cp.Client.CoreV1().Pods(u.ns).List(ctx, metav1.ListOptions{FieldSelector: "spec.nodeName="})
	if err != nil {
		return
	}
	for _, p := range pods.Items {
		b := &corev1.Binding{ObjectMeta: metav1.ObjectMeta{Name: p.Name, Namespace: p.Namespace, UID: p.UID}, Target: corev1.ObjectReference{Kind: "Node", Name: node}}
		_ = u.cp.Client.CoreV1().Pods(u.ns).Bind(ctx, b, metav1.CreateOptions{})
	}
}

// bindClaims binds each pending claim of the namespace to a new hostPath
// volume in the node's directory, as a provisioner and the PV controller
// would.
func bindClaims(ctx context.Context, u *userEnv, node *framework.Node) {
	claims, err := u.cp.Client.CoreV1().PersistentVolumeClaims(u.ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return
	}
	for _, c := range claims.Items {
		if c.Status.Phase == corev1.ClaimBound {
			continue
		}
		name := "pv-" + string(c.UID)
		dir := filepath.Join(node.Dir, "volumes", name)
		if err := os.MkdirAll(dir, 0o777); err != nil {
			continue
		}
		_ = os.Chmod(dir, 0o777)
		pv := &corev1.PersistentVolume{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: corev1.PersistentVolumeSpec{
				Capacity:                      c.Spec.Resources.Requests,
				AccessModes:                   c.Spec.AccessModes,
				PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimDelete,
				PersistentVolumeSource:        corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: dir}},
				ClaimRef:                      &corev1.ObjectReference{Kind: "PersistentVolumeClaim", Namespace: c.Namespace, Name: c.Name, UID: c.UID},
			},
		}
		if c.Spec.StorageClassName != nil {
			pv.Spec.StorageClassName = *c.Spec.StorageClassName
		}
		if _, err := u.cp.Client.CoreV1().PersistentVolumes().Create(ctx, pv, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			continue
		}
		if pv, err := u.cp.Client.CoreV1().PersistentVolumes().Get(ctx, name, metav1.GetOptions{}); err == nil && pv.Status.Phase != corev1.VolumeBound {
			pv.Status.Phase = corev1.VolumeBound
			_, _ = u.cp.Client.CoreV1().PersistentVolumes().UpdateStatus(ctx, pv, metav1.UpdateOptions{})
		}
		cc := c.DeepCopy()
		if cc.Spec.VolumeName == "" {
			cc.Spec.VolumeName = name
			upd, err := u.cp.Client.CoreV1().PersistentVolumeClaims(u.ns).Update(ctx, cc, metav1.UpdateOptions{})
			if err != nil {
				continue
			}
			cc = upd
		}
		cc.Status.Phase = corev1.ClaimBound
		cc.Status.AccessModes = c.Spec.AccessModes
		cc.Status.Capacity = c.Spec.Resources.Requests
		_, _ = u.cp.Client.CoreV1().PersistentVolumeClaims(u.ns).UpdateStatus(ctx, cc, metav1.UpdateOptions{})
	}
}
