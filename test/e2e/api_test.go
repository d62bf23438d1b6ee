//go:build e2e

package e2e

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/serializer"

	v1alpha1 "github.com/image-registry-operator/image-registry-operator/pkg/apis/registry/v1alpha1"
	"github.com/image-registry-operator/image-registry-operator/pkg/generated/clientset/versioned/scheme"
	"github.com/image-registry-operator/image-registry-operator/test/e2e/framework"
)

// TestExamplesCreateAndReadBack creates every example through the generated
// clientset on the real API server (with its defaulting and validation) and
// reads it back; kubectl then lists the kinds.
func TestExamplesCreateAndReadBack(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	root, err := framework.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(root, "artifacts", "examples", "*.yaml"))
	if len(files) < 4 {
		t.Fatalf("found %d examples, want one per kind", len(files))
	}
	decoder := serializer.NewCodecFactory(scheme.Scheme, serializer.EnableStrict).UniversalDeserializer()
	c := e.registry.RegistryV1alpha1()
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		obj, _, err := decoder.Decode(data, nil, nil)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		switch o := obj.(type) {
		case *v1alpha1.ImageRegistry:
			if _, err := c.ImageRegistries(e.ns).Create(ctx, o, metav1.CreateOptions{FieldValidation: "Strict"}); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			got, err := c.ImageRegistries(e.ns).Get(ctx, o.Name, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if *got.Spec.Replicas != *o.Spec.Replicas || !reflect.DeepEqual(got.Spec.PersistentVolumeClaim, o.Spec.PersistentVolumeClaim) {
				t.Errorf("%s: read back %+v, want %+v", f, got.Spec, o.Spec)
			}
			// The API server applies the schema's defaults.
			if got.Spec.Auth.Server != v1alpha1.AuthServerBuiltin {
				t.Errorf("auth.server = %q, want the default %q", got.Spec.Auth.Server, v1alpha1.AuthServerBuiltin)
			}
		case *v1alpha1.ImagePushSecret:
			if _, err := c.ImagePushSecrets(e.ns).Create(ctx, o, metav1.CreateOptions{FieldValidation: "Strict"}); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			got, err := c.ImagePushSecrets(e.ns).Get(ctx, o.Name, metav1.GetOptions{})
			if err != nil || !reflect.DeepEqual(got.Spec, o.Spec) {
				t.Errorf("%s: read back %+v (%v), want %+v", f, got.Spec, err, o.Spec)
			}
		case *v1alpha1.ImagePullSecret:
			if _, err := c.ImagePullSecrets(e.ns).Create(ctx, o, metav1.CreateOptions{FieldValidation: "Strict"}); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			got, err := c.ImagePullSecrets(e.ns).Get(ctx, o.Name, metav1.GetOptions{})
			if err != nil || !reflect.DeepEqual(got.Spec, o.Spec) {
				t.Errorf("%s: read back %+v (%v), want %+v", f, got.Spec, err, o.Spec)
			}
		case *v1alpha1.ImageRegistryAccount:
			if _, err := c.ImageRegistryAccounts(e.ns).Create(ctx, o, metav1.CreateOptions{FieldValidation: "Strict"}); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			got, err := c.ImageRegistryAccounts(e.ns).Get(ctx, o.Name, metav1.GetOptions{})
			if err != nil || !reflect.DeepEqual(got.Spec.Passwords, o.Spec.Passwords) || !reflect.DeepEqual(got.Spec.Labels, o.Spec.Labels) {
				t.Errorf("%s: read back %+v (%v), want %+v", f, got.Spec, err, o.Spec)
			}
		default:
			t.Fatalf("%s: unexpected %T", f, obj)
		}
	}
	out, err := e.cp.Kubectl(ctx, "get", "imageregistries,imagepushsecrets,imagepullsecrets,imageregistryaccounts", "-n", e.ns, "-o", "name")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"imageregistry.registry.mgoltzsche.github.com/registry",
		"imagepushsecret.registry.mgoltzsche.github.com/example",
		"imagepullsecret.registry.mgoltzsche.github.com/example",
		"imageregistryaccount.registry.mgoltzsche.github.com/ci-bot",
	} {
		if !strings.Contains(string(out), want+"\n") {
			t.Errorf("kubectl get lacks %s:\n%s", want, out)
		}
	}
	// Every name a user types for one kind finds exactly it, and the
	// category lists all four (issue: "kubectl get imageregistry NAME"
	// failed while the category was named like the kind).
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"imageregistry", "registry"}, "imageregistry.registry.mgoltzsche.github.com/registry\n"},
		{[]string{"imageregistries", "registry"}, "imageregistry.registry.mgoltzsche.github.com/registry\n"},
		{[]string{"imgreg", "registry"}, "imageregistry.registry.mgoltzsche.github.com/registry\n"},
		{[]string{"ireg", "registry"}, "imageregistry.registry.mgoltzsche.github.com/registry\n"},
		{[]string{"imagepushsecret", "example"}, "imagepushsecret.registry.mgoltzsche.github.com/example\n"},
		{[]string{"imgpush", "example"}, "imagepushsecret.registry.mgoltzsche.github.com/example\n"},
		{[]string{"ipush", "example"}, "imagepushsecret.registry.mgoltzsche.github.com/example\n"},
		{[]string{"imagepullsecret", "example"}, "imagepullsecret.registry.mgoltzsche.github.com/example\n"},
		{[]string{"imgpull", "example"}, "imagepullsecret.registry.mgoltzsche.github.com/example\n"},
		{[]string{"ipull", "example"}, "imagepullsecret.registry.mgoltzsche.github.com/example\n"},
		{[]string{"imageregistryaccount", "ci-bot"}, "imageregistryaccount.registry.mgoltzsche.github.com/ci-bot\n"},
		{[]string{"imgacc", "ci-bot"}, "imageregistryaccount.registry.mgoltzsche.github.com/ci-bot\n"},
		{[]string{"iracc", "ci-bot"}, "imageregistryaccount.registry.mgoltzsche.github.com/ci-bot\n"},
	} {
		out, err := e.cp.Kubectl(ctx, append(append([]string{"get"}, tc.args...), "-n", e.ns, "-o", "name")...)
		if err != nil || string(out) != tc.want {
			t.Errorf("kubectl get %v: %q (%v), want %q", tc.args, out, err, tc.want)
		}
	}
	out, err = e.cp.Kubectl(ctx, "get", "image-registry-operator", "-n", e.ns, "-o", "name")
	if err != nil {
		t.Fatalf("kubectl get image-registry-operator: %v", err)
	}
	if n := strings.Count(string(out), "\n"); n != 4 {
		t.Errorf("kubectl get image-registry-operator (the category) listed %d objects, want the 4 examples:\n%s", n, out)
	}
	// The account table shows when it expires as a date, not "<invalid>".
	if _, err := e.cp.Kubectl(ctx, "patch", "imageregistryaccount", "ci-bot", "-n", e.ns, "--type=merge", "-p", `{"spec":{"expiresAt":"2099-01-02T03:04:05Z"}}`); err != nil {
		t.Fatal(err)
	}
	out, err = e.cp.Kubectl(ctx, "get", "imageregistryaccount", "ci-bot", "-n", e.ns)
	if err != nil || !strings.Contains(string(out), "2099-01-02T03:04:05Z") || strings.Contains(string(out), "<invalid>") {
		t.Errorf("account table: %v\n%s", err, out)
	}
	// Old manifests apply unchanged under kubectl's strict field validation.
	old := `apiVersion: registry.mgoltzsche.github.com/v1alpha1
kind: ImageRegistry
metadata: {name: old}
spec:
  replicas: 1
  auth: {configMapName: docker-auth-configmap, issuerRef: {name: registry-selfsigned-issuer, kind: Issuer}}
  tls: {}
  persistentVolumeClaim: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 8Gi}}}
`
	if _, err := e.cp.KubectlWithInput(ctx, []byte(old), "apply", "--validate=strict", "-n", e.ns, "-f", "-"); err != nil {
		t.Errorf("an old system's manifest was refused: %v", err)
	}
}

// TestAPIServerRejectsInvalid checks that the CEL rules and schema reach the
// real API server with their messages.
func TestAPIServerRejectsInvalid(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	c := e.registry.RegistryV1alpha1()

	both := &v1alpha1.ImageRegistry{
		ObjectMeta: metav1.ObjectMeta{Name: "both"},
		Spec: v1alpha1.ImageRegistrySpec{TLS: &v1alpha1.TLSSpec{
			SecretName: "mine", IssuerRef: &v1alpha1.IssuerRef{Name: "letsencrypt"},
		}},
	}
	_, err := c.ImageRegistries(e.ns).Create(ctx, both, metav1.CreateOptions{})
	if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "tls.secretName and tls.issuerRef are mutually exclusive") {
		t.Errorf("tls.secretName + tls.issuerRef: got %v, want Invalid with the CEL message", err)
	}

	// A dotted name would put another registry's hostname in this one's
	// serving certificate (security review).
	dotted := &v1alpha1.ImageRegistry{ObjectMeta: metav1.ObjectMeta{Name: "registry.image-registry-operator.svc.cluster.local"}}
	_, err = c.ImageRegistries(e.ns).Create(ctx, dotted, metav1.CreateOptions{})
	if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "DNS-1035 label") {
		t.Errorf("dotted registry name: got %v, want Invalid with the CEL message", err)
	}

	three := int32(3)
	scaled := &v1alpha1.ImageRegistry{
		ObjectMeta: metav1.ObjectMeta{Name: "scaled"},
		Spec:       v1alpha1.ImageRegistrySpec{Replicas: &three},
	}
	_, err = c.ImageRegistries(e.ns).Create(ctx, scaled, metav1.CreateOptions{})
	if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "shared blob storage") {
		t.Errorf("3 replicas on ReadWriteOnce: got %v, want Invalid about shared storage", err)
	}

	short := &v1alpha1.ImagePushSecret{
		ObjectMeta: metav1.ObjectMeta{Name: "short"},
		Spec:       v1alpha1.ImageSecretSpec{RotationInterval: &metav1.Duration{Duration: time.Second}},
	}
	_, err = c.ImagePushSecrets(e.ns).Create(ctx, short, metav1.CreateOptions{})
	if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "at least 10s") {
		t.Errorf("1s rotation interval: got %v, want Invalid", err)
	}

	ps := &v1alpha1.ImagePushSecret{
		ObjectMeta: metav1.ObjectMeta{Name: "immutable"},
		Spec:       v1alpha1.ImageSecretSpec{RegistryRef: &v1alpha1.RegistryRef{Name: "registry"}},
	}
	created, err := c.ImagePushSecrets(e.ns).Create(ctx, ps, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	created.Spec.RegistryRef.Name = "another"
	_, err = c.ImagePushSecrets(e.ns).Update(ctx, created, metav1.UpdateOptions{})
	if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "registryRef is immutable") {
		t.Errorf("changing registryRef: got %v, want Invalid", err)
	}
}
