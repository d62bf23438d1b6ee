package imageregistry

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/image-registry-operator/image-registry-operator/pkg/apis/registry/v1alpha1"
)

// The upstream credentials of a pull-through cache reach the registry
// through its environment, which it reads at start: changing them rolls
// the pods, as S3 credentials do (TestS3CredentialsChangeRollsPods).
func TestProxyCredentialsChangeRollsPods(t *testing.T) {
	reg := newRegistry("team-a", "reg")
	reg.Spec.Proxy = &v1alpha1.ProxySpec{RemoteURL: "https://registry-1.docker.io", CredentialsSecret: "hub"}
	f := newFixture(t, nil, reg)

	// No Secret yet: a Warning, no annotation, the rest is written.
	f.mustSync(reg)
	f.expectWarning(EventReasonProxyCredentialsNotFound)
	if _, ok := f.statefulSet(reg).Spec.Template.Annotations[v1alpha1.AnnotationProxyCredentialsHash]; ok {
		t.Fatal("annotation set without a Secret")
	}

	hub := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "hub"},
		Data:       map[string][]byte{"username": []byte("mirror-bot")},
	}
	if _, err := f.kubeClient.CoreV1().Secrets("team-a").Create(f.ctx, hub, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	f.mustSync(reg)
	f.expectWarning(EventReasonInvalidProxyCredentials)

	hub.Data["password"] = []byte("first-password-0123")
	f.updateSecret(hub)
	f.mustSync(reg)
	tmpl := f.statefulSet(reg).Spec.Template
	first := tmpl.Annotations[v1alpha1.AnnotationProxyCredentialsHash]
	if len(first) != 64 || strings.Contains(first, "mirror-bot") {
		t.Fatalf("annotation %s = %q, want a hex HMAC", v1alpha1.AnnotationProxyCredentialsHash, first)
	}
	if _, ok := tmpl.Annotations[v1alpha1.AnnotationS3CredentialsHash]; ok {
		t.Error("an S3 annotation on a registry without S3")
	}
	configHash := tmpl.Annotations[v1alpha1.AnnotationConfigHash]

	hub.Data["password"] = []byte("second-password-0123")
	f.updateSecret(hub)
	f.clearActions()
	f.mustSync(reg)
	f.expectActions("get secrets team-a/hub", "update statefulsets team-a/reg")
	tmpl = f.statefulSet(reg).Spec.Template
	if second := tmpl.Annotations[v1alpha1.AnnotationProxyCredentialsHash]; second == first || len(second) != 64 {
		t.Errorf("annotation %q after the password changed (was %q)", second, first)
	}
	if tmpl.Annotations[v1alpha1.AnnotationConfigHash] != configHash {
		t.Error("the config hash changed with the upstream password")
	}
}
