//go:build e2e

package e2e

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/image-registry-operator/image-registry-operator/pkg/apis/registry/v1alpha1"
)

// ownedObject names one object an ImageRegistry must own.
type ownedObject struct {
	kind string
	name string
	get  func(ctx context.Context, e *env, name string) (metav1.Object, error)
}

func registryOwnedObjects(name string) []ownedObject {
	return []ownedObject{
		{"StatefulSet", name, func(ctx context.Context, e *env, n string) (metav1.Object, error) {
			return e.cp.Client.AppsV1().StatefulSets(e.ns).Get(ctx, n, metav1.GetOptions{})
		}},
		{"PodDisruptionBudget", name, func(ctx context.Context, e *env, n string) (metav1.Object, error) {
			return e.cp.Client.PolicyV1().PodDisruptionBudgets(e.ns).Get(ctx, n, metav1.GetOptions{})
		}},
		{"Service", name, func(ctx context.Context, e *env, n string) (metav1.Object, error) {
			return e.cp.Client.CoreV1().Services(e.ns).Get(ctx, n, metav1.GetOptions{})
		}},
		{"Service", name + "-headless", func(ctx context.Context, e *env, n string) (metav1.Object, error) {
			return e.cp.Client.CoreV1().Services(e.ns).Get(ctx, n, metav1.GetOptions{})
		}},
		{"ConfigMap", name + "-registry-config", func(ctx context.Context, e *env, n string) (metav1.Object, error) {
			return e.cp.Client.CoreV1().ConfigMaps(e.ns).Get(ctx, n, metav1.GetOptions{})
		}},
		{"ConfigMap", name + "-auth-config", func(ctx context.Context, e *env, n string) (metav1.Object, error) {
			return e.cp.Client.CoreV1().ConfigMaps(e.ns).Get(ctx, n, metav1.GetOptions{})
		}},
		{"Secret", name + "-tls", func(ctx context.Context, e *env, n string) (metav1.Object, error) {
			return e.cp.Client.CoreV1().Secrets(e.ns).Get(ctx, n, metav1.GetOptions{})
		}},
		{"Secret", name + "-auth-token", func(ctx context.Context, e *env, n string) (metav1.Object, error) {
			return e.cp.Client.CoreV1().Secrets(e.ns).Get(ctx, n, metav1.GetOptions{})
		}},
		{"Secret", name + "-http-secret", func(ctx context.Context, e *env, n string) (metav1.Object, error) {
			return e.cp.Client.CoreV1().Secrets(e.ns).Get(ctx, n, metav1.GetOptions{})
		}},
		{"ServiceAccount", name + "-auth", func(ctx context.Context, e *env, n string) (metav1.Object, error) {
			return e.cp.Client.CoreV1().ServiceAccounts(e.ns).Get(ctx, n, metav1.GetOptions{})
		}},
		{"RoleBinding", name + "-auth", func(ctx context.Context, e *env, n string) (metav1.Object, error) {
			return e.cp.Client.RbacV1().RoleBindings(e.ns).Get(ctx, n, metav1.GetOptions{})
		}},
	}
}

func createRegistry(t *testing.T, e *env, name string) *v1alpha1.ImageRegistry {
	t.Helper()
	reg := &v1alpha1.ImageRegistry{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       v1alpha1.ImageRegistrySpec{TLS: &v1alpha1.TLSSpec{}},
	}
	reg, err := e.registry.RegistryV1alpha1().ImageRegistries(e.ns).Create(context.Background(), reg, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return reg
}

func waitRegistryReady(t *testing.T, e *env, name string) *v1alpha1.ImageRegistry {
	t.Helper()
	var reg *v1alpha1.ImageRegistry
	eventually(t, 90*time.Second, "ImageRegistry "+name+" Ready", func(ctx context.Context) (bool, error) {
		var err error
		reg, err = e.registry.RegistryV1alpha1().ImageRegistries(e.ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return meta.IsStatusConditionTrue(reg.Status.Conditions, v1alpha1.ConditionReady) && reg.Status.ObservedGeneration == reg.Generation, nil
	})
	return reg
}

// TestRegistryObjectsAndGarbageCollection: the operator creates what an
// ImageRegistry needs, owned by it; the real StatefulSet controller makes
// the pod; deleting the ImageRegistry lets the real garbage collector remove
// everything it owned.
func TestRegistryObjectsAndGarbageCollection(t *testing.T) {
	e := newEnv(t)
	e.startOperator(t)
	ctx := context.Background()
	reg := createRegistry(t, e, "registry")

	owned := registryOwnedObjects(reg.Name)
	for _, o := range owned {
		eventually(t, 60*time.Second, o.kind+" "+o.name, func(ctx context.Context) (bool, error) {
			obj, err := o.get(ctx, e, o.name)
			if err != nil {
				return false, err
			}
			ref := metav1.GetControllerOf(obj)
			if ref == nil || ref.UID != reg.UID || ref.Kind != "ImageRegistry" {
				t.Fatalf("%s %s: controller reference %+v, want the ImageRegistry %s", o.kind, o.name, ref, reg.UID)
			}
			return true, nil
		})
	}

	// The real StatefulSet controller creates the pod (Pending: no kubelet).
	eventually(t, 60*time.Second, "registry pod", func(ctx context.Context) (bool, error) {
		_, err := e.cp.Client.CoreV1().Pods(e.ns).Get(ctx, reg.Name+"-0", metav1.GetOptions{})
		return err == nil, err
	})

	// Not ready without ready pods, with a reason.
	got, err := e.registry.RegistryV1alpha1().ImageRegistries(e.ns).Get(ctx, reg.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Status.Hostname != "registry."+e.ns+".svc.cluster.local" {
		t.Errorf("status.hostname = %q", got.Status.Hostname)
	}
	if c := meta.FindStatusCondition(got.Status.Conditions, v1alpha1.ConditionReady); c == nil || c.Status != metav1.ConditionFalse || c.Reason == "" {
		t.Errorf("Ready condition without ready pods = %+v, want False with a reason", c)
	}

	// With the pod reported ready, the registry becomes Ready, and its CA
	// verifies the serving certificate for the hostname.
	e.startKubelet(t)
	got = waitRegistryReady(t, e, reg.Name)
	tlsSecret, err := e.cp.Client.CoreV1().Secrets(e.ns).Get(ctx, reg.Name+"-tls", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	verifyServingCert(t, got.Status.CA, tlsSecret.Data[corev1.TLSCertKey], got.Status.Hostname)

	sts, err := e.cp.Client.AppsV1().StatefulSets(e.ns).Get(ctx, reg.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	checkPodTemplate(t, sts)

	// Delete with background propagation: kube-controller-manager's garbage
	// collector must remove every owned object.
	policy := metav1.DeletePropagationBackground
	if err := e.registry.RegistryV1alpha1().ImageRegistries(e.ns).Delete(ctx, reg.Name, metav1.DeleteOptions{PropagationPolicy: &policy}); err != nil {
		t.Fatal(err)
	}
	for _, o := range owned {
		eventually(t, 90*time.Second, o.kind+" "+o.name+" garbage-collected", func(ctx context.Context) (bool, error) {
			_, err := o.get(ctx, e, o.name)
			if apierrors.IsNotFound(err) {
				return true, nil
			}
			return false, err
		})
	}
}

func verifyServingCert(t *testing.T, caPEM string, certPEM []byte, hostname string) {
	t.Helper()
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM([]byte(caPEM)) {
		t.Fatalf("status.ca holds no certificate")
	}
	block, _ := pem.Decode(certPEM)
	if block == nil {
		t.Fatal("TLS Secret holds no PEM certificate")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, DNSName: hostname}); err != nil {
		t.Errorf("serving certificate does not verify for %s with status.ca: %v", hostname, err)
	}
}

// checkPodTemplate checks what the API server accepted for the pod: two
// containers, probes, non-root, and the config hash annotation.
func checkPodTemplate(t *testing.T, sts *appsv1.StatefulSet) {
	t.Helper()
	spec := sts.Spec.Template.Spec
	names := map[string]corev1.Container{}
	for _, c := range spec.Containers {
		names[c.Name] = c
	}
	for _, n := range []string{"registry", "auth"} {
		c, ok := names[n]
		if !ok {
			t.Errorf("pod template lacks container %s", n)
			continue
		}
		if c.ReadinessProbe == nil || c.LivenessProbe == nil {
			t.Errorf("container %s lacks probes", n)
		}
		if c.SecurityContext == nil || c.SecurityContext.ReadOnlyRootFilesystem == nil || !*c.SecurityContext.ReadOnlyRootFilesystem {
			t.Errorf("container %s: root filesystem not read-only", n)
		}
	}
	if spec.SecurityContext == nil || spec.SecurityContext.RunAsNonRoot == nil || !*spec.SecurityContext.RunAsNonRoot {
		t.Error("pod does not run as non-root")
	}
	if sts.Spec.Template.Annotations["registry.mgoltzsche.github.com/config-hash"] == "" {
		t.Error("pod template lacks the config hash annotation")
	}
}
