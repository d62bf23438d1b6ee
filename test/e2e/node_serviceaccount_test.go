//go:build e2e

package e2e

// Pods that name no pull Secret pull through their ServiceAccount (issue
// 16) on the real node: on a control plane that keeps the ServiceAccount
// admission plugin, the operator puts the pull Secret into the
// ServiceAccount's imagePullSecrets, the plugin copies it into each new
// Pod, and the kubelet pulls with it.

import (
	"context"
	"path/filepath"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/image-registry-operator/image-registry-operator/test/e2e/framework"
)

func TestRealNodePullsThroughServiceAccount(t *testing.T) {
	st := newStepTimer(t)
	cp := controlPlaneWithServiceAccountAdmission(t)
	u := newUserEnvOn(t, cp)
	ctx := context.Background()
	st.done("control plane with ServiceAccount admission, operator")

	u.applyExamples(t)
	u.startDataPlane(t, exampleRegistry)
	u.waitReady(t, readyTimeout, "imageregistry/"+exampleRegistry, "imagepushsecret/example")
	host := u.dp.Hostname()
	svc, err := cp.Client.CoreV1().Services(u.ns).Get(ctx, exampleRegistry, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	svc.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: u.dp.Addr}}
	if _, err := cp.Client.CoreV1().Services(u.ns).UpdateStatus(ctx, svc, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	st.done("registry data plane ready")

	node := startRealNode(t, u, st)
	agent := newAgentPods(t, u, node)
	agent.start(t, "node-agent-1")
	waitNodeFiles(t, node, agent, host, u.dp.Addr+" "+host, true)
	st.done("node agent Pod Running, node files written")

	pause, err := framework.BuildPause(ctx, u.dir)
	if err != nil {
		t.Fatal(err)
	}
	ref := u.image("app:v1")
	tarball := filepath.Join(u.dir, "app.tar")
	if err := framework.WriteBinaryImage(tarball, ref, pause, "app"); err != nil {
		t.Fatal(err)
	}
	if _, err := u.crane.Run(ctx, u.creds(t, u.ns, examplePushSecret), "push", tarball, ref); err != nil {
		t.Fatalf("push with the push Secret: %v", err)
	}

	// The user's story: the ImagePullSecret names the ServiceAccount; the
	// Deployment's Pods name no Secret.
	if _, err := cp.Client.CoreV1().ServiceAccounts(u.ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "app"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	u.kubectlNS(t, u.ns, `apiVersion: registry.mgoltzsche.github.com/v1alpha1
kind: ImagePullSecret
metadata: {name: app}
spec:
  registryRef: {name: registry}
  serviceAccounts: [app]
`, "apply", "-f", "-")
	u.waitReady(t, readyTimeout, "imagepullsecret/app")
	eventually(t, readyTimeout, "the ServiceAccount to carry the pull Secret", func(ctx context.Context) (bool, error) {
		sa, err := cp.Client.CoreV1().ServiceAccounts(u.ns).Get(ctx, "app", metav1.GetOptions{})
		return err == nil && hasSecretRef(sa.ImagePullSecrets, "app-image-pull-secret"), err
	})
	st.done("image pushed; ImagePullSecret names the ServiceAccount, which carries the Secret")

	dep := appDeployment(node.Name, "app", ref, "")
	dep.Spec.Template.Spec.ServiceAccountName = "app"
	if _, err := cp.Client.AppsV1().Deployments(u.ns).Create(ctx, dep, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitPodRunning(t, u, "app=app")
	pods, err := cp.Client.CoreV1().Pods(u.ns).List(ctx, metav1.ListOptions{LabelSelector: "app=app"})
	if err != nil || len(pods.Items) == 0 {
		t.Fatalf("pods: %v", err)
	}
	t.Logf("the Deployment's Pod got imagePullSecrets %v from its ServiceAccount", pods.Items[0].Spec.ImagePullSecrets)
	st.done("Deployment's Pod (no Secret of its own) Running, pulled with its ServiceAccount's Secret")

	// The default ServiceAccount does not carry it: a Pod of it is refused.
	if _, err := cp.Client.CoreV1().Pods(u.ns).Create(ctx, appPod(node.Name, "default-sa", ref, ""), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Logf("pod of the default ServiceAccount refused as expected: %s", tail(waitPullRefused(t, u, "default-sa"), 200))
	st.done("a Pod of a ServiceAccount without the Secret: ErrImagePull")
}

func hasSecretRef(refs []corev1.LocalObjectReference, name string) bool {
	for _, r := range refs {
		if r.Name == name {
			return true
		}
	}
	return false
}
