package imageregistry

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	"github.com/image-registry-operator/image-registry-operator/pkg/apis/registry/v1alpha1"
)

func s3Registry() *v1alpha1.ImageRegistry {
	reg := newRegistry("team-a", "reg")
	reg.Spec.Replicas = ptr.To[int32](2)
	reg.Spec.Storage = &v1alpha1.StorageSpec{S3: &v1alpha1.S3StorageSpec{Endpoint: "http://s3.example.org:8333", Bucket: "images", Region: "us-east-1", CredentialsSecret: "s3-creds"}}
	return reg
}

func s3CredentialsSecret(accessKey, secretKey string) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "s3-creds"},
		Data:       map[string][]byte{"accessKeyID": []byte(accessKey), "secretAccessKey": []byte(secretKey)},
	}
}

func (f *fixture) updateSecret(s *corev1.Secret) {
	f.t.Helper()
	if _, err := f.kubeClient.CoreV1().Secrets(s.Namespace).Update(f.ctx, s, metav1.UpdateOptions{}); err != nil {
		f.t.Fatal(err)
	}
}

// Changing the S3 credentials rolls the pods through the pod template's
// hash annotation; anything else about the Secret does not.
func TestS3CredentialsChangeRollsPods(t *testing.T) {
	reg := s3Registry()
	f := newFixture(t, []runtime.Object{s3CredentialsSecret("AKID1", "secret-one-0123456789")}, reg)
	f.mustSync(reg)
	tmpl := f.statefulSet(reg).Spec.Template
	first := tmpl.Annotations[v1alpha1.AnnotationS3CredentialsHash]
	if len(first) != 64 {
		t.Fatalf("pod template annotation %s = %q, want a hex SHA-256", v1alpha1.AnnotationS3CredentialsHash, first)
	}
	for _, plain := range []string{"AKID1", "secret-one-0123456789"} {
		if strings.Contains(first, plain) {
			t.Fatalf("the annotation carries the credential %q", plain)
		}
	}
	configHash := tmpl.Annotations[v1alpha1.AnnotationConfigHash]

	// Steady state: the Secret is read (it is not in the operator's cache),
	// nothing is written.
	f.markReady(reg)
	f.mustSync(reg)
	f.clearActions()
	f.mustSync(reg)
	f.expectActions("get secrets team-a/s3-creds")

	// A label or annotation on the Secret changes nothing.
	s := f.secret("team-a", "s3-creds")
	s.Labels = map[string]string{"team": "storage"}
	f.updateSecret(s)
	f.clearActions()
	f.mustSync(reg)
	f.expectActions("get secrets team-a/s3-creds")

	// New secret key: the template changes, only in that annotation.
	s = f.secret("team-a", "s3-creds")
	s.Data["secretAccessKey"] = []byte("secret-two-0123456789")
	f.updateSecret(s)
	f.clearActions()
	f.mustSync(reg)
	f.expectActions("get secrets team-a/s3-creds", "update statefulsets team-a/reg")
	tmpl = f.statefulSet(reg).Spec.Template
	second := tmpl.Annotations[v1alpha1.AnnotationS3CredentialsHash]
	if second == first || len(second) != 64 {
		t.Fatalf("annotation %q after the key changed, was %q", second, first)
	}
	if tmpl.Annotations[v1alpha1.AnnotationConfigHash] != configHash {
		t.Error("the config hash changed with the S3 credentials")
	}

	// A new access key id alone rolls too.
	s = f.secret("team-a", "s3-creds")
	s.Data["accessKeyID"] = []byte("AKID2")
	f.updateSecret(s)
	f.mustSync(reg)
	if third := f.statefulSet(reg).Spec.Template.Annotations[v1alpha1.AnnotationS3CredentialsHash]; third == second || third == first {
		t.Errorf("annotation %q after the access key id changed", third)
	}
}

// The digest is keyed with the registry's http.secret: two registries with
// the same credentials show different digests, so a digest tells nothing
// that a guess could be checked against without that secret.
func TestS3CredentialsHashIsKeyed(t *testing.T) {
	a, b := s3Registry(), s3Registry()
	b.Name, b.UID = "other", "uid-other"
	f := newFixture(t, []runtime.Object{s3CredentialsSecret("AKID1", "secret-one-0123456789")}, a, b)
	f.mustSync(a)
	f.mustSync(b)
	ha := f.statefulSet(a).Spec.Template.Annotations[v1alpha1.AnnotationS3CredentialsHash]
	hb := f.statefulSet(b).Spec.Template.Annotations[v1alpha1.AnnotationS3CredentialsHash]
	if ha == "" || ha == hb {
		t.Errorf("digests %q and %q of the same credentials under two http secrets", ha, hb)
	}
}

// A missing Secret or key is a Warning; the StatefulSet is still written
// (its pods wait for the Secret), and the registry is looked at again
// within UserSecretRecheckInterval.
func TestS3CredentialsMissing(t *testing.T) {
	reg := s3Registry()
	f := newFixture(t, nil, reg)
	c := f.mustSync(reg)
	f.expectWarning(EventReasonS3CredentialsNotFound)
	if _, ok := f.statefulSet(reg).Spec.Template.Annotations[v1alpha1.AnnotationS3CredentialsHash]; ok {
		t.Error("annotation set without a Secret")
	}
	if c.queue.Len() != 0 {
		t.Fatal("requeued at once")
	}
	f.clock.Step(c.opts.UserSecretRecheckInterval)
	waitForQueue(t, c, 1)

	incomplete := s3CredentialsSecret("AKID1", "")
	if _, err := f.kubeClient.CoreV1().Secrets("team-a").Create(f.ctx, incomplete, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	f.mustSync(reg)
	f.expectWarning(EventReasonInvalidS3Credentials)

	incomplete.Data["secretAccessKey"] = []byte("secret-one-0123456789")
	f.updateSecret(incomplete)
	f.mustSync(reg)
	if h := f.statefulSet(reg).Spec.Template.Annotations[v1alpha1.AnnotationS3CredentialsHash]; len(h) != 64 {
		t.Errorf("annotation %q once the Secret is complete", h)
	}
}

// A credentials Secret labelled for the registry (as cert-manager's are)
// reaches the operator's filtered informer, and its changes enqueue the
// registry at once.
func TestS3CredentialsLabelledSecretEnqueues(t *testing.T) {
	reg := s3Registry()
	f := newFixture(t, nil, reg)
	c := f.controller()
	s := s3CredentialsSecret("AKID1", "secret-one-0123456789")
	s.Labels = map[string]string{v1alpha1.LabelManagedBy: v1alpha1.ManagedByValue, v1alpha1.LabelRegistry: "reg"}
	c.ownedHandler(c.handleUnownedSecret).OnAdd(s, false)
	if got := drain(c); len(got) != 1 || got[0] != "team-a/reg" {
		t.Fatalf("labelled credentials Secret enqueued %v", got)
	}
}

// The settings replicas need are in every rendered config.
func TestReplicaSettingsRendered(t *testing.T) {
	for name, reg := range map[string]*v1alpha1.ImageRegistry{"s3": s3Registry(), "filesystem": newRegistry("team-a", "reg")} {
		data, err := renderRegistryConfig(reg, "reg.team-a.registry.example.org", tokenIssuer(reg), false)
		if err != nil {
			t.Fatal(err)
		}
		var cfg struct {
			HTTP struct {
				DrainTimeout string `json:"draintimeout"`
			} `json:"http"`
			Storage map[string]any `json:"storage"`
		}
		if err := yaml.Unmarshal(data, &cfg); err != nil {
			t.Fatal(err)
		}
		purge, _ := cfg.Storage["maintenance"].(map[string]any)["uploadpurging"].(map[string]any)
		if purge["enabled"] != true || purge["age"] != "168h" || purge["interval"] != "24h" || purge["dryrun"] != false {
			t.Errorf("%s: uploadpurging %v", name, purge)
		}
		if _, ok := cfg.Storage["cache"]; ok {
			t.Errorf("%s: a blob descriptor cache is rendered; replicas would serve blobs another one deleted", name)
		}
		if cfg.HTTP.DrainTimeout != "25s" {
			t.Errorf("%s: http.draintimeout %q", name, cfg.HTTP.DrainTimeout)
		}
		if name == "s3" {
			if r, _ := cfg.Storage["redirect"].(map[string]any); r["disable"] != true {
				t.Errorf("s3: storage.redirect %v, want disabled", cfg.Storage["redirect"])
			}
		}
	}
}
