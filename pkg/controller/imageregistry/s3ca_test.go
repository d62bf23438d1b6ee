package imageregistry

import (
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/image-registry-operator/image-registry-operator/pkg/apis/registry/v1alpha1"
	"github.com/image-registry-operator/image-registry-operator/pkg/pki"
)

func testCAPEM(t *testing.T, name string) string {
	t.Helper()
	ca, err := pki.NewCA(pki.CertOptions{CommonName: name, Validity: 24 * time.Hour, Now: testStart})
	if err != nil {
		t.Fatal(err)
	}
	return string(ca.CertPEM)
}

// checkS3CA checks that a pod spec's container trusts the CA bundle of
// ConfigMap cm (key) beside the system roots.
func checkS3CA(t *testing.T, what string, spec corev1.PodSpec, container, cm, key string) {
	t.Helper()
	i := slices.IndexFunc(spec.Volumes, func(v corev1.Volume) bool { return v.Name == s3CAVolume })
	if i < 0 {
		t.Fatalf("%s: no %s volume", what, s3CAVolume)
	}
	src := spec.Volumes[i].ConfigMap
	if src == nil || src.Name != cm || len(src.Items) != 1 || src.Items[0].Key != key || src.Items[0].Path != s3CAFile {
		t.Errorf("%s: volume %s = %+v, want key %s of ConfigMap %s as %s", what, s3CAVolume, spec.Volumes[i].VolumeSource, key, cm, s3CAFile)
	}
	j := slices.IndexFunc(spec.Containers, func(c corev1.Container) bool { return c.Name == container })
	if j < 0 {
		t.Fatalf("%s: no container %s", what, container)
	}
	c := spec.Containers[j]
	if !slices.ContainsFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool {
		return m.Name == s3CAVolume && m.MountPath == s3CADir && m.ReadOnly
	}) {
		t.Errorf("%s: container %s mounts %v, want %s read-only at %s", what, container, c.VolumeMounts, s3CAVolume, s3CADir)
	}
	if !slices.ContainsFunc(c.Env, func(e corev1.EnvVar) bool {
		return e.Name == "SSL_CERT_DIR" && e.Value == systemCertDir+":"+s3CADir
	}) {
		t.Errorf("%s: container %s has no SSL_CERT_DIR listing %s and %s", what, container, systemCertDir, s3CADir)
	}
}

// An S3 endpoint with a certificate from a private CA: the registry and
// the garbage collector trust the CA bundle beside the system roots, a
// change of the bundle rolls the pods, and a missing or empty bundle is
// Ready=False.
func TestS3CABundle(t *testing.T) {
	reg := s3Registry()
	reg.Spec.Storage.S3.CABundle = &v1alpha1.ConfigMapKeyRef{Name: "s3-ca"}
	bundle := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "s3-ca"}, Data: map[string]string{"ca.crt": testCAPEM(t, "storage CA")}}
	f := newFixture(t, []runtime.Object{s3CredentialsSecret("AKID1", "secret-one-0123456789"), bundle}, reg)
	f.mustSync(reg)
	sts := f.statefulSet(reg)
	checkS3CA(t, "registry pod", sts.Spec.Template.Spec, "registry", "s3-ca", "ca.crt")
	c := f.controller()
	checkS3CA(t, "collector pod", c.collectorPod(reg, "").Spec, collectorContainerName, "s3-ca", "ca.crt")
	hash := sts.Spec.Template.Annotations[v1alpha1.AnnotationConfigHash]

	// Another CA: the pods roll.
	bundle.Data["ca.crt"] = testCAPEM(t, "storage CA 2")
	if _, err := f.kubeClient.CoreV1().ConfigMaps("team-a").Update(f.ctx, bundle, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	f.mustSync(reg)
	if f.statefulSet(reg).Spec.Template.Annotations[v1alpha1.AnnotationConfigHash] == hash {
		t.Error("a new CA bundle did not change the pod template's config hash")
	}

	// A bundle without a certificate, then none at all.
	bundle.Data["ca.crt"] = "not a certificate"
	if _, err := f.kubeClient.CoreV1().ConfigMaps("team-a").Update(f.ctx, bundle, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.sync(reg); err == nil {
		t.Fatal("want error")
	}
	f.expectReady(reg, metav1.ConditionFalse, ReasonInvalidS3CABundle)
	if err := f.kubeClient.CoreV1().ConfigMaps("team-a").Delete(f.ctx, "s3-ca", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.sync(reg); err == nil {
		t.Fatal("want error")
	}
	f.expectReady(reg, metav1.ConditionFalse, ReasonS3CABundleNotFound)
	f.expectWarning(ReasonS3CABundleNotFound)

	// The ConfigMap's events reach the registry.
	c = f.controller()
	c.handleUserConfigMap(bundle)
	if got := drain(c); len(got) != 1 || got[0] != "team-a/reg" {
		t.Errorf("a change of the CA bundle enqueued %v", got)
	}
}

// Without caBundle nothing about the system roots changes.
func TestS3WithoutCABundleKeepsSystemRoots(t *testing.T) {
	reg := s3Registry()
	f := newFixture(t, []runtime.Object{s3CredentialsSecret("AKID1", "secret-one-0123456789")}, reg)
	f.mustSync(reg)
	spec := f.statefulSet(reg).Spec.Template.Spec
	for _, c := range spec.Containers {
		if slices.ContainsFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == "SSL_CERT_DIR" }) {
			t.Errorf("container %s sets SSL_CERT_DIR without a CA bundle", c.Name)
		}
	}
	if slices.ContainsFunc(spec.Volumes, func(v corev1.Volume) bool { return v.Name == s3CAVolume }) {
		t.Error("a CA volume without a CA bundle")
	}
}
