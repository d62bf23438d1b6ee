//go:build e2e

package e2e

// Issue 16: pull Secrets reach Pods through ServiceAccounts. This scenario
// runs on a control plane of its own whose API server keeps the
// ServiceAccount admission plugin (the shared one disables it, see
// framework/apiserver.go): that plugin copies a ServiceAccount's
// imagePullSecrets into each new Pod, which is what the feature relies on.
// No kubelet is needed: the Pods are only created and read back.

import (
	"context"
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/image-registry-operator/image-registry-operator/test/e2e/framework"
)

// controlPlaneWithServiceAccountAdmission starts a control plane for one
// test, stopped at its end.
func controlPlaneWithServiceAccountAdmission(t *testing.T) *framework.ControlPlane {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cp, err := framework.Start(ctx, framework.Options{
		KeepDir:                 os.Getenv("IRO_E2E_KEEP_DIR") != "",
		ServiceAccountAdmission: true,
	})
	if err != nil {
		t.Fatalf("control plane: %v", err)
	}
	t.Cleanup(func() { _ = cp.Stop() })
	if err := installAPI(ctx, cp); err != nil {
		t.Fatal(err)
	}
	return cp
}

func TestUserServiceAccountsCarryPullSecret(t *testing.T) {
	start := time.Now()
	cp := controlPlaneWithServiceAccountAdmission(t)
	u := newUserEnvOn(t, cp)
	ctx := context.Background()
	t.Logf("control plane with ServiceAccount admission: %s", time.Since(start).Round(time.Second))

	u.applyExamples(t)
	u.startDataPlane(t, exampleRegistry)
	u.waitReady(t, readyTimeout, "imageregistry/"+exampleRegistry, "imagepushsecret/example")
	ref := u.image("app:v1")
	digest, err := u.crane.PushRandom(ctx, u.creds(t, u.ns, examplePushSecret), ref)
	if err != nil {
		t.Fatal(err)
	}

	// The user's story: a ServiceAccount of their own and the namespace's
	// default one carry the pull Secret; a Pod that names neither Secret
	// nor registry credentials gets them.
	if _, err := cp.Client.CoreV1().ServiceAccounts(u.ns).Create(ctx, &corev1.ServiceAccount{
		ObjectMeta: metav1.ObjectMeta{Name: "builder"},
		// An entry someone else put there stays.
		ImagePullSecrets: []corev1.LocalObjectReference{{Name: "theirs"}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	u.kubectlNS(t, u.ns, `apiVersion: registry.mgoltzsche.github.com/v1alpha1
kind: ImagePullSecret
metadata: {name: app}
spec:
  registryRef: {name: registry}
  serviceAccounts: [default, builder]
`, "apply", "-f", "-")
	u.waitReady(t, readyTimeout, "imagepullsecret/app")
	eventually(t, time.Minute, "status.serviceAccounts to count both ServiceAccounts", func(ctx context.Context) (bool, error) {
		p, err := u.registry.RegistryV1alpha1().ImagePullSecrets(u.ns).Get(ctx, "app", metav1.GetOptions{})
		return err == nil && p.Status.ServiceAccounts == 2, err
	})
	t.Log("kubectl get imagepullsecret app:\n" + u.kubectl(t, "get", "imagepullsecret", "app"))

	const secret = "app-image-pull-secret"
	for _, sa := range []string{"default", "builder"} {
		pod := u.createPod(t, "pod-"+sa, sa)
		if !hasPullSecretRef(pod, secret) {
			t.Fatalf("Pod of ServiceAccount %s has imagePullSecrets %v, want %s", sa, pod.Spec.ImagePullSecrets, secret)
		}
	}
	b, err := cp.Client.CoreV1().ServiceAccounts(u.ns).Get(ctx, "builder", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(b.ImagePullSecrets, func(r corev1.LocalObjectReference) bool { return r.Name == "theirs" }) {
		t.Errorf("the foreign entry of builder is gone: %v", b.ImagePullSecrets)
	}

	// What such a Pod gets pulls the image and cannot push.
	pod, err := cp.Client.CoreV1().Pods(u.ns).Get(ctx, "pod-builder", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	creds := u.creds(t, u.ns, pod.Spec.ImagePullSecrets[slices.IndexFunc(pod.Spec.ImagePullSecrets, func(r corev1.LocalObjectReference) bool { return r.Name == secret })].Name)
	got, err := u.crane.Pull(ctx, creds, ref)
	if err != nil {
		t.Fatalf("pull with the Pod's Secret: %v", err)
	}
	if got != digest {
		t.Fatalf("pulled %s, pushed %s", got, digest)
	}
	_, err = u.crane.PushRandom(ctx, creds, u.image("app:by-pod-secret"))
	denied(t, "push with the Pod's pull Secret", err)

	// Deleting the ImagePullSecret takes the entries out: a Pod created
	// afterwards does not name the Secret, and the foreign entry stays.
	u.kubectl(t, "delete", "imagepullsecret", "app", "--wait=true", "--timeout=60s")
	eventually(t, time.Minute, "the operator's entries to leave the ServiceAccounts", func(ctx context.Context) (bool, error) {
		for _, name := range []string{"default", "builder"} {
			sa, err := cp.Client.CoreV1().ServiceAccounts(u.ns).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			if slices.ContainsFunc(sa.ImagePullSecrets, func(r corev1.LocalObjectReference) bool { return r.Name == secret }) {
				return false, nil
			}
		}
		return true, nil
	})
	if pod := u.createPod(t, "pod-after-delete", "builder"); hasPullSecretRef(pod, secret) || !hasPullSecretRef(pod, "theirs") {
		t.Errorf("Pod created after the deletion has imagePullSecrets %v, want only theirs", pod.Spec.ImagePullSecrets)
	}
}

// createPod creates a Pod that runs as serviceAccount and names no
// imagePullSecrets, and returns it as admitted.
func (u *userEnv) createPod(t *testing.T, name, serviceAccount string) *corev1.Pod {
	t.Helper()
	var pod *corev1.Pod
	// The default ServiceAccount appears when kube-controller-manager gets
	// to the namespace; admission refuses Pods until then.
	eventually(t, time.Minute, fmt.Sprintf("Pod %s to be admitted", name), func(ctx context.Context) (bool, error) {
		var err error
		pod, err = u.cp.Client.CoreV1().Pods(u.ns).Create(ctx, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: corev1.PodSpec{
				ServiceAccountName: serviceAccount,
				Containers:         []corev1.Container{{Name: "app", Image: u.image("app:v1")}},
			},
		}, metav1.CreateOptions{})
		if apierrors.IsForbidden(err) {
			return false, nil
		}
		return err == nil, err
	})
	return pod
}

func hasPullSecretRef(pod *corev1.Pod, name string) bool {
	return slices.ContainsFunc(pod.Spec.ImagePullSecrets, func(r corev1.LocalObjectReference) bool { return r.Name == name })
}
