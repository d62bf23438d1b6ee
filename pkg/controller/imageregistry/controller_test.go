package imageregistry

import (
	"context"
	"crypto/x509"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation/field"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	core "k8s.io/client-go/testing"
	"k8s.io/utils/ptr"

	"github.com/image-registry-operator/image-registry-operator/pkg/apis/registry/v1alpha1"
	"github.com/image-registry-operator/image-registry-operator/pkg/authconfig"
	"github.com/image-registry-operator/image-registry-operator/pkg/credentials"
	"github.com/image-registry-operator/image-registry-operator/pkg/objectcache"
	"github.com/image-registry-operator/image-registry-operator/pkg/pki"
)

func TestCreate(t *testing.T) {
	reg := newRegistry("team-a", "reg")
	f := newFixture(t, nil, reg)
	f.mustSync(reg)
	f.expectActions(createdActions("team-a", "reg")...)

	// Every owned object is controlled by the registry and labelled.
	owned := []metav1.Object{
		f.secret("team-a", "reg-tls"), f.secret("team-a", "reg-auth-token"), f.secret("team-a", "reg-http-secret"),
		f.configMap("team-a", "reg-auth-config"), f.configMap("team-a", "reg-registry-config"), f.statefulSet(reg),
	}
	for _, o := range owned {
		if !metav1.IsControlledBy(o, reg) {
			t.Errorf("%s is not controlled by the registry: %v", o.GetName(), o.GetOwnerReferences())
		}
		if o.GetLabels()[v1alpha1.LabelManagedBy] != v1alpha1.ManagedByValue {
			t.Errorf("%s lacks the managed-by label", o.GetName())
		}
	}
	ca := f.secret(testOperatorNS, CASecretName)
	if ca.Labels[v1alpha1.LabelManagedBy] != v1alpha1.ManagedByValue || len(ca.OwnerReferences) != 0 {
		t.Errorf("CA Secret must be labelled and unowned: %v %v", ca.Labels, ca.OwnerReferences)
	}

	got := f.registry("team-a", "reg")
	const host = "reg.team-a.registry.example.org"
	if got.Status.Hostname != host {
		t.Errorf("hostname %q, want %q", got.Status.Hostname, host)
	}
	f.expectReady(reg, metav1.ConditionFalse, ReasonRolloutInProgress)

	// status.ca verifies the serving certificate for every name clients use.
	tlsSecret := f.secret("team-a", "reg-tls")
	if tlsSecret.Type != corev1.SecretTypeTLS {
		t.Errorf("TLS Secret type %q", tlsSecret.Type)
	}
	kp, err := pki.ParseKeyPair(tlsSecret.Data["tls.crt"], tlsSecret.Data["tls.key"])
	if err != nil {
		t.Fatal(err)
	}
	names := []string{host, "reg.team-a.svc", "reg.team-a.svc.cluster.local", "reg-0.reg-headless.team-a.svc"}
	if err := pki.VerifyServing(kp.Cert, []byte(got.Status.CA), names, testStart); err != nil {
		t.Errorf("status.ca does not verify the serving certificate: %v", err)
	}
	// Only names under the registry's own namespace (security review):
	// the operator CA is trusted by every node.
	for _, foreign := range []string{"reg", "reg.team-a", "localhost"} {
		if err := pki.VerifyServing(kp.Cert, []byte(got.Status.CA), []string{foreign}, testStart); err == nil {
			t.Errorf("the serving certificate is valid for %s, a name the registry does not own", foreign)
		}
	}
	if string(tlsSecret.Data["ca.crt"]) != got.Status.CA || string(ca.Data["tls.crt"]) != got.Status.CA {
		t.Error("ca.crt of the TLS Secret, the CA Secret and status.ca differ")
	}
	tok, err := pki.ParseKeyPair(f.secret("team-a", "reg-auth-token").Data["tls.crt"], f.secret("team-a", "reg-auth-token").Data["tls.key"])
	if err != nil {
		t.Fatalf("token key pair: %v", err)
	}
	if tok.Cert.PublicKeyAlgorithm != x509.ECDSA {
		t.Errorf("token key is %v, want ECDSA", tok.Cert.PublicKeyAlgorithm)
	}
	if len(f.secret("team-a", "reg-http-secret").Data["secret"]) < 32 {
		t.Error("http secret too short")
	}

	sts := f.statefulSet(reg)
	if *sts.Spec.Replicas != 1 || sts.Spec.ServiceName != "reg-headless" {
		t.Errorf("replicas %d serviceName %q", *sts.Spec.Replicas, sts.Spec.ServiceName)
	}
	if sts.Spec.Template.Annotations[v1alpha1.AnnotationConfigHash] == "" {
		t.Error("pod template lacks the config hash")
	}
	pvc := sts.Spec.VolumeClaimTemplates[0]
	if pvc.Name != "data" || pvc.Spec.AccessModes[0] != corev1.ReadWriteOnce || !pvc.Spec.Resources.Requests.Storage().Equal(resource.MustParse("8Gi")) {
		t.Errorf("PVC template defaults wrong: %+v", pvc.Spec)
	}
	pod := sts.Spec.Template.Spec
	if *pod.SecurityContext.RunAsNonRoot != true || *pod.AutomountServiceAccountToken {
		t.Error("pod must run as non-root without an automounted token")
	}
	if len(pod.Containers) != 2 || len(pod.InitContainers) != 0 {
		t.Errorf("builtin token server: %d containers, %d init containers; want registry and auth only", len(pod.Containers), len(pod.InitContainers))
	}
	regC, authC := pod.Containers[0], pod.Containers[1]
	if regC.Name != "registry" || regC.Image != DefaultRegistryImage || regC.ReadinessProbe.HTTPGet.Scheme != corev1.URISchemeHTTPS || regC.ReadinessProbe.HTTPGet.Port.IntValue() != 5000 {
		t.Errorf("registry container: %+v", regC)
	}
	if authC.Name != "auth" || authC.Image != testAuthImage || strings.Join(authC.Command, " ") != "registry-auth --config /etc/registry-auth/auth_config.yml --service="+host+" --metrics-addr=:5003" {
		t.Errorf("auth container: %s %v", authC.Image, authC.Command)
	}
	// The auth probes check the auth server, never the registry (the old operator's mistake).
	if authC.LivenessProbe.HTTPGet.Port.IntValue() != 5001 || authC.LivenessProbe.HTTPGet.Path != "/healthz" {
		t.Errorf("auth liveness probe: %+v", authC.LivenessProbe.HTTPGet)
	}
	for _, m := range regC.VolumeMounts {
		if m.Name == "token" || m.Name == "kube-api-access" {
			t.Errorf("registry container mounts %s", m.Name)
		}
	}

	svc, _ := f.kubeClient.CoreV1().Services("team-a").Get(f.ctx, "reg", metav1.GetOptions{})
	if svc.Spec.Type != corev1.ServiceTypeLoadBalancer || svc.Annotations[AnnotationExternalDNSHostname] != host ||
		svc.Spec.Ports[0].Port != 443 || svc.Spec.Ports[0].TargetPort.IntValue() != 5000 || svc.Spec.Ports[1].Port != 5001 ||
		svc.Spec.ExternalTrafficPolicy != corev1.ServiceExternalTrafficPolicyLocal {
		t.Errorf("LoadBalancer Service: %+v %v", svc.Spec, svc.Annotations)
	}
	hl, _ := f.kubeClient.CoreV1().Services("team-a").Get(f.ctx, "reg-headless", metav1.GetOptions{})
	if hl.Spec.ClusterIP != corev1.ClusterIPNone {
		t.Errorf("headless Service clusterIP %q", hl.Spec.ClusterIP)
	}
	// The operator makes no Role: it binds the fixed token-server ClusterRole.
	if roles, _ := f.kubeClient.RbacV1().Roles("").List(f.ctx, metav1.ListOptions{}); len(roles.Items) != 0 {
		t.Errorf("the operator created Roles: %+v", roles.Items)
	}
	rb, _ := f.kubeClient.RbacV1().RoleBindings("team-a").Get(f.ctx, "reg-auth", metav1.GetOptions{})
	if rb.RoleRef != (rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: DefaultTokenServerClusterRole}) || rb.Subjects[0].Name != "reg-auth" || rb.Subjects[0].Namespace != "team-a" || pod.ServiceAccountName != "reg-auth" {
		t.Errorf("RoleBinding %+v / pod SA %q", rb, pod.ServiceAccountName)
	}
}

func TestSteadyStateIsNoOp(t *testing.T) {
	reg := newRegistry("team-a", "reg")
	f := newFixture(t, nil, reg)
	f.mustSync(reg)
	f.markReady(reg)

	f.mustSync(reg)
	f.expectActions("update imageregistries/status team-a/reg")
	f.expectReady(reg, metav1.ConditionTrue, ReasonReady)
	if got := f.registry("team-a", "reg").Status.ReadyReplicas; got != 1 {
		t.Errorf("readyReplicas %d", got)
	}

	f.mustSync(reg)
	f.expectActions()
	if ev := f.events(); len(ev) != 0 {
		t.Errorf("steady state recorded events: %v", ev)
	}
}

// The API server defaults fields and allocates others; none of that is drift.
func TestAPIDefaultsAreNotDrift(t *testing.T) {
	reg := newRegistry("team-a", "reg")
	f := newFixture(t, nil, reg)
	f.mustSync(reg)
	f.markReady(reg)
	f.mustSync(reg)

	sts := f.statefulSet(reg)
	sts.Spec.RevisionHistoryLimit = ptr.To[int32](10)
	sts.Spec.UpdateStrategy = appsv1.StatefulSetUpdateStrategy{Type: appsv1.RollingUpdateStatefulSetStrategyType}
	pod := &sts.Spec.Template.Spec
	pod.DNSPolicy, pod.RestartPolicy, pod.SchedulerName = corev1.DNSClusterFirst, corev1.RestartPolicyAlways, "default-scheduler"
	pod.DeprecatedServiceAccount = pod.ServiceAccountName
	pod.TerminationGracePeriodSeconds = ptr.To[int64](30)
	for i := range pod.Containers {
		pod.Containers[i].TerminationMessagePath = corev1.TerminationMessagePathDefault
	}
	sts.Spec.VolumeClaimTemplates[0].Spec.VolumeMode = ptr.To(corev1.PersistentVolumeFilesystem)
	sts.Spec.Template.Annotations["kubectl.kubernetes.io/restartedAt"] = "now"
	if _, err := f.kubeClient.AppsV1().StatefulSets("team-a").Update(f.ctx, sts, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	svc, _ := f.kubeClient.CoreV1().Services("team-a").Get(f.ctx, "reg", metav1.GetOptions{})
	svc.Spec.ClusterIP = "10.0.0.10"
	svc.Spec.Ports[0].NodePort, svc.Spec.Ports[1].NodePort = 30443, 30501
	svc.Spec.SessionAffinity = corev1.ServiceAffinityNone
	svc.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyCluster
	svc.Annotations["other"] = "kept"
	if _, err := f.kubeClient.CoreV1().Services("team-a").Update(f.ctx, svc, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}

	f.mustSync(reg)
	f.expectActions()
}

func TestDriftRepair(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(f *fixture)
		action string
		check  func(t *testing.T, f *fixture)
	}{
		{
			name: "StatefulSet replicas, image and probe",
			mutate: func(f *fixture) {
				s := f.statefulSet(newRegistry("team-a", "reg"))
				s.Spec.Replicas = ptr.To[int32](3)
				s.Spec.Template.Spec.Containers[0].Image = "evil/registry"
				s.Spec.Template.Spec.Containers[1].LivenessProbe.HTTPGet.Port = intstr.FromInt32(5000)
				s.Spec.Template.Spec.NodeSelector = map[string]string{"user": "choice"}
				update(f, f.kubeClient.AppsV1().StatefulSets("team-a").Update, s)
			},
			action: "update statefulsets team-a/reg",
			check: func(t *testing.T, f *fixture) {
				s := f.statefulSet(newRegistry("team-a", "reg"))
				p := s.Spec.Template.Spec
				if *s.Spec.Replicas != 1 || p.Containers[0].Image != DefaultRegistryImage || p.Containers[1].LivenessProbe.HTTPGet.Port.IntValue() != 5001 {
					t.Errorf("not repaired: %d %s %v", *s.Spec.Replicas, p.Containers[0].Image, p.Containers[1].LivenessProbe.HTTPGet.Port)
				}
				if p.NodeSelector["user"] != "choice" {
					t.Error("a field the controller does not own was overwritten")
				}
			},
		},
		{
			name: "StatefulSet config hash",
			mutate: func(f *fixture) {
				s := f.statefulSet(newRegistry("team-a", "reg"))
				s.Spec.Template.Annotations[v1alpha1.AnnotationConfigHash] = "stale"
				update(f, f.kubeClient.AppsV1().StatefulSets("team-a").Update, s)
			},
			action: "update statefulsets team-a/reg",
		},
		{
			name: "LoadBalancer Service",
			mutate: func(f *fixture) {
				s, _ := f.kubeClient.CoreV1().Services("team-a").Get(f.ctx, "reg", metav1.GetOptions{})
				s.Spec.Type = corev1.ServiceTypeNodePort
				s.Spec.Ports[0].Port = 8443
				s.Spec.Ports[0].NodePort = 31000
				delete(s.Annotations, AnnotationExternalDNSHostname)
				update(f, f.kubeClient.CoreV1().Services("team-a").Update, s)
			},
			action: "update services team-a/reg",
			check: func(t *testing.T, f *fixture) {
				s, _ := f.kubeClient.CoreV1().Services("team-a").Get(f.ctx, "reg", metav1.GetOptions{})
				if s.Spec.Type != corev1.ServiceTypeLoadBalancer || s.Spec.Ports[0].Port != 443 || s.Annotations[AnnotationExternalDNSHostname] == "" {
					t.Errorf("not repaired: %+v", s.Spec)
				}
				if s.Spec.Ports[0].NodePort != 31000 {
					t.Errorf("allocated nodePort not kept: %d", s.Spec.Ports[0].NodePort)
				}
			},
		},
		{
			name: "headless Service selector",
			mutate: func(f *fixture) {
				s, _ := f.kubeClient.CoreV1().Services("team-a").Get(f.ctx, "reg-headless", metav1.GetOptions{})
				s.Spec.Selector = map[string]string{"app": "other"}
				update(f, f.kubeClient.CoreV1().Services("team-a").Update, s)
			},
			action: "update services team-a/reg-headless",
		},
		{
			name: "auth ConfigMap",
			mutate: func(f *fixture) {
				cm := f.configMap("team-a", "reg-auth-config")
				cm.Data["auth_config.yml"] = "acl: [{match: {}, actions: ['*']}]"
				update(f, f.kubeClient.CoreV1().ConfigMaps("team-a").Update, cm)
			},
			action: "update configmaps team-a/reg-auth-config",
			check: func(t *testing.T, f *fixture) {
				if _, err := authconfig.Parse([]byte(f.configMap("team-a", "reg-auth-config").Data["auth_config.yml"])); err != nil {
					t.Errorf("repaired auth config does not parse: %v", err)
				}
			},
		},
		{
			name: "registry ConfigMap",
			mutate: func(f *fixture) {
				cm := f.configMap("team-a", "reg-registry-config")
				cm.Data["extra"] = "x"
				update(f, f.kubeClient.CoreV1().ConfigMaps("team-a").Update, cm)
			},
			action: "update configmaps team-a/reg-registry-config",
		},
		{
			name: "TLS Secret",
			mutate: func(f *fixture) {
				s := f.secret("team-a", "reg-tls")
				s.Data["tls.key"] = []byte("garbage")
				update(f, f.kubeClient.CoreV1().Secrets("team-a").Update, s)
			},
			// A new key pair rolls the pods.
			action: "update secrets team-a/reg-tls\nupdate statefulsets team-a/reg",
		},
		{
			name: "token Secret",
			mutate: func(f *fixture) {
				s := f.secret("team-a", "reg-auth-token")
				delete(s.Data, "tls.crt")
				update(f, f.kubeClient.CoreV1().Secrets("team-a").Update, s)
			},
			// A new key: the JWKS lists it, and the old one as retired.
			action: "update secrets team-a/reg-auth-token\nupdate configmaps team-a/reg-registry-config\nupdate statefulsets team-a/reg",
		},
		{
			name: "http Secret",
			mutate: func(f *fixture) {
				s := f.secret("team-a", "reg-http-secret")
				s.Data["secret"] = []byte("short")
				update(f, f.kubeClient.CoreV1().Secrets("team-a").Update, s)
			},
			action: "update secrets team-a/reg-http-secret\nupdate statefulsets team-a/reg",
		},
		{
			name: "ServiceAccount labels",
			mutate: func(f *fixture) {
				sa, _ := f.kubeClient.CoreV1().ServiceAccounts("team-a").Get(f.ctx, "reg-auth", metav1.GetOptions{})
				sa.Labels = nil
				update(f, f.kubeClient.CoreV1().ServiceAccounts("team-a").Update, sa)
			},
			action: "update serviceaccounts team-a/reg-auth",
		},
		{
			name: "RoleBinding subjects",
			mutate: func(f *fixture) {
				rb, _ := f.kubeClient.RbacV1().RoleBindings("team-a").Get(f.ctx, "reg-auth", metav1.GetOptions{})
				rb.Subjects = append(rb.Subjects, rbacv1.Subject{Kind: "User", Name: "mallory"})
				update(f, f.kubeClient.RbacV1().RoleBindings("team-a").Update, rb)
			},
			action: "update rolebindings team-a/reg-auth",
		},
		{
			name: "RoleBinding roleRef (immutable: recreated)",
			mutate: func(f *fixture) {
				rb, _ := f.kubeClient.RbacV1().RoleBindings("team-a").Get(f.ctx, "reg-auth", metav1.GetOptions{})
				rb.RoleRef.Name = "admin"
				update(f, f.kubeClient.RbacV1().RoleBindings("team-a").Update, rb)
			},
			action: "delete rolebindings team-a/reg-auth\ncreate rolebindings team-a/reg-auth",
		},
		{
			name: "deleted ConfigMap",
			mutate: func(f *fixture) {
				if err := f.kubeClient.CoreV1().ConfigMaps("team-a").Delete(f.ctx, "reg-registry-config", metav1.DeleteOptions{}); err != nil {
					t.Fatal(err)
				}
			},
			action: "create configmaps team-a/reg-registry-config",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			reg := newRegistry("team-a", "reg")
			f := newFixture(t, nil, reg)
			f.mustSync(reg)
			f.markReady(reg)
			f.mustSync(reg)
			tc.mutate(f)
			f.mustSync(reg)
			f.expectActions(strings.Split(tc.action, "\n")...)
			if tc.check != nil {
				tc.check(t, f)
			}
			// Repaired means steady again.
			f.mustSync(reg)
			f.expectActions()
		})
	}
}

func update[T runtime.Object](f *fixture, fn func(ctx context.Context, obj T, opts metav1.UpdateOptions) (T, error), obj T) {
	f.t.Helper()
	if _, err := fn(f.ctx, obj, metav1.UpdateOptions{}); err != nil {
		f.t.Fatal(err)
	}
}

func userTLSSecret(t *testing.T, ns, name string, names ...string) (*corev1.Secret, *pki.KeyPair) {
	t.Helper()
	ca, err := pki.NewCA(pki.CertOptions{CommonName: "user CA", Validity: 365 * 24 * time.Hour, Now: testStart})
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := pki.NewServingCert(ca, pki.CertOptions{DNSNames: names, Validity: 30 * 24 * time.Hour, Now: testStart})
	if err != nil {
		t.Fatal(err)
	}
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Type:       corev1.SecretTypeTLS,
		Data:       map[string][]byte{"tls.crt": leaf.CertPEM, "tls.key": leaf.KeyPEM, "ca.crt": ca.CertPEM},
	}, ca
}

func TestUserTLSSecret(t *testing.T) {
	reg := newRegistry("team-a", "reg")
	reg.Spec.TLS = &v1alpha1.TLSSpec{SecretName: "my-cert"}
	user, ca := userTLSSecret(t, "team-a", "my-cert", "reg.team-a.registry.example.org")
	f := newFixture(t, []runtime.Object{user}, reg)
	c := f.mustSync(reg)

	got := f.actions()
	for _, a := range got {
		if strings.Contains(a, "secrets team-a/my-cert") && !strings.HasPrefix(a, "get ") {
			t.Errorf("the user's Secret was written: %s", a)
		}
		if strings.Contains(a, CASecretName) || strings.Contains(a, "secrets team-a/reg-tls") {
			t.Errorf("operator CA path taken with a user Secret: %s", a)
		}
	}
	if got[0] != "get secrets team-a/my-cert" {
		t.Errorf("user Secret not read from the API first: %v", got)
	}
	if s := f.registry("team-a", "reg").Status.CA; s != string(ca.CertPEM) {
		t.Error("status.ca is not the user Secret's ca.crt")
	}
	for _, v := range f.statefulSet(reg).Spec.Template.Spec.Volumes {
		if v.Name == "tls" && v.Secret.SecretName != "my-cert" {
			t.Errorf("tls volume mounts %q", v.Secret.SecretName)
		}
	}
	// The Secret is invisible to the informer, so it is re-read on a timer.
	f.clock.Step(5*time.Minute + time.Second)
	waitForQueue(t, c, 1)
}

func TestUserTLSSecretMissing(t *testing.T) {
	reg := newRegistry("team-a", "reg")
	reg.Spec.TLS = &v1alpha1.TLSSpec{SecretName: "missing"}
	other := newRegistry("team-b", "other")
	f := newFixture(t, nil, reg, other)

	_, err := f.sync(reg)
	if err == nil {
		t.Fatal("sync succeeded; want an error so the registry is retried with back-off")
	}
	f.expectActions("get secrets team-a/missing", "update imageregistries/status team-a/reg")
	f.expectReady(reg, metav1.ConditionFalse, ReasonTLSSecretNotFound)
	f.expectWarning(ReasonTLSSecretNotFound)
	if st := f.registry("team-a", "reg").Status; st.Hostname != "reg.team-a.registry.example.org" {
		t.Errorf("hostname not reported on failure: %+v", st)
	}

	// Other registries are unaffected.
	f.mustSync(other)
	f.expectActions(createdActions("team-b", "other")...)

	// The user creates the Secret: the registry recovers.
	user, _ := userTLSSecret(t, "team-a", "missing", "reg.team-a.registry.example.org")
	if _, err := f.kubeClient.CoreV1().Secrets("team-a").Create(f.ctx, user, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	f.mustSync(reg)
	f.expectReady(reg, metav1.ConditionFalse, ReasonRolloutInProgress)
}

func TestInvalidUserTLSSecret(t *testing.T) {
	reg := newRegistry("team-a", "reg")
	reg.Spec.TLS = &v1alpha1.TLSSpec{SecretName: "bad"}
	bad := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "bad"}, Data: map[string][]byte{"tls.crt": []byte("x")}}
	f := newFixture(t, []runtime.Object{bad}, reg)
	if _, err := f.sync(reg); err == nil {
		t.Fatal("want error")
	}
	f.expectReady(reg, metav1.ConditionFalse, ReasonInvalidTLSSecret)
	f.expectWarning(ReasonInvalidTLSSecret)
}

func TestCertManagerMissing(t *testing.T) {
	for _, tc := range []struct {
		name    string
		dynamic bool
	}{{"no dynamic client", false}, {"CRD not served", true}} {
		t.Run(tc.name, func(t *testing.T) {
			reg := newRegistry("team-a", "reg")
			reg.Spec.TLS = &v1alpha1.TLSSpec{IssuerRef: &v1alpha1.IssuerRef{Name: "letsencrypt", Kind: "ClusterIssuer"}}
			f := newFixture(t, nil, reg)
			if tc.dynamic {
				f.dynamic = dynamicfake.NewSimpleDynamicClient(runtime.NewScheme())
			}
			if _, err := f.sync(reg); err == nil {
				t.Fatal("want an error to retry with back-off")
			}
			f.expectActions("update imageregistries/status team-a/reg")
			f.expectReady(reg, metav1.ConditionFalse, ReasonCertManagerMissing)
			f.expectWarning(ReasonCertManagerMissing)
		})
	}
}

func TestCertManagerIssuesCertificate(t *testing.T) {
	reg := newRegistry("team-a", "reg")
	reg.Spec.TLS = &v1alpha1.TLSSpec{IssuerRef: &v1alpha1.IssuerRef{Name: "letsencrypt", Kind: "ClusterIssuer"}}
	f := newFixture(t, nil, reg)
	f.kubeClient.Resources = []*metav1.APIResourceList{{
		GroupVersion: "cert-manager.io/v1",
		APIResources: []metav1.APIResource{{Name: "certificates", Kind: "Certificate", Namespaced: true}},
	}}
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), map[schema.GroupVersionResource]string{certificateGVR: "CertificateList"})
	f.dynamic = dyn

	// cert-manager has not issued yet: pending, no back-off, no StatefulSet.
	f.mustSync(reg)
	f.expectReady(reg, metav1.ConditionFalse, ReasonCertificatePending)
	cert, err := dyn.Resource(certificateGVR).Namespace("team-a").Get(f.ctx, "reg-tls", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("Certificate not created: %v", err)
	}
	if !metav1.IsControlledBy(cert, reg) {
		t.Error("Certificate not controlled by the registry")
	}
	spec := cert.Object["spec"].(map[string]any)
	if spec["secretName"] != "reg-tls" || spec["issuerRef"].(map[string]any)["kind"] != "ClusterIssuer" {
		t.Errorf("Certificate spec %v", spec)
	}
	labels := spec["secretTemplate"].(map[string]any)["labels"].(map[string]any)
	if labels[v1alpha1.LabelManagedBy] != v1alpha1.ManagedByValue || labels[v1alpha1.LabelRegistry] != "reg" {
		t.Errorf("secretTemplate labels %v: the Secret would be invisible", labels)
	}
	if _, err := f.kubeClient.AppsV1().StatefulSets("team-a").Get(f.ctx, "reg", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Error("StatefulSet created before the certificate exists")
	}

	// cert-manager writes the Secret.
	user, ca := userTLSSecret(t, "team-a", "reg-tls", "reg.team-a.registry.example.org")
	user.Labels = map[string]string{v1alpha1.LabelManagedBy: v1alpha1.ManagedByValue, v1alpha1.LabelRegistry: "reg"}
	if _, err := f.kubeClient.CoreV1().Secrets("team-a").Create(f.ctx, user, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	f.mustSync(reg)
	f.expectReady(reg, metav1.ConditionFalse, ReasonRolloutInProgress)
	if f.registry("team-a", "reg").Status.CA != string(ca.CertPEM) {
		t.Error("status.ca is not the issued Secret's ca.crt")
	}
	// Steady: the Certificate is not rewritten.
	f.markReady(reg)
	f.mustSync(reg)
	f.clearActions()
	dyn.ClearActions()
	f.mustSync(reg)
	f.expectActions()
	for _, a := range dyn.Actions() {
		if a.GetVerb() != "get" {
			t.Errorf("steady state wrote the Certificate: %v", a)
		}
	}
}

func TestCertificateRenewal(t *testing.T) {
	reg := newRegistry("team-a", "reg")
	f := newFixture(t, nil, reg)
	c := f.mustSync(reg)
	f.markReady(reg)
	old := f.secret("team-a", "reg-tls").Data["tls.crt"]
	oldHash := f.statefulSet(reg).Spec.Template.Annotations[v1alpha1.AnnotationConfigHash]
	kp, _ := pki.ParseKeyPair(old, f.secret("team-a", "reg-tls").Data["tls.key"])
	renewAt := pki.RenewalTime(kp.Cert)
	if !renewAt.Before(kp.Cert.NotAfter.Add(-24 * time.Hour)) {
		t.Fatalf("renewal %v is not well before expiry %v", renewAt, kp.Cert.NotAfter)
	}

	// The renewal timer has not fired a second early.
	f.clock.SetTime(renewAt.Add(-time.Second))
	time.Sleep(50 * time.Millisecond)
	if n := c.queue.Len(); n != 0 {
		t.Fatalf("registry requeued %d before its renewal time", n)
	}
	f.clock.SetTime(renewAt.Add(time.Second))
	waitForQueue(t, c, 1)

	f.mustSync(reg)
	f.expectActions("update secrets team-a/reg-tls", "update statefulsets team-a/reg", "update imageregistries/status team-a/reg")
	newSecret := f.secret("team-a", "reg-tls")
	if string(newSecret.Data["tls.crt"]) == string(old) {
		t.Fatal("certificate not renewed")
	}
	renewed, err := pki.ParseKeyPair(newSecret.Data["tls.crt"], newSecret.Data["tls.key"])
	if err != nil {
		t.Fatal(err)
	}
	if err := pki.VerifyServing(renewed.Cert, []byte(f.registry("team-a", "reg").Status.CA), []string{"reg.team-a.registry.example.org"}, f.clock.Now()); err != nil {
		t.Errorf("renewed certificate does not verify: %v", err)
	}
	if f.statefulSet(reg).Spec.Template.Annotations[v1alpha1.AnnotationConfigHash] == oldHash {
		t.Error("renewal did not roll the pods")
	}
	// The CA and the token key did not change.
	if string(f.secret("team-a", "reg-tls").Data["ca.crt"]) != string(f.secret(testOperatorNS, CASecretName).Data["tls.crt"]) {
		t.Error("CA changed")
	}
}

func waitForQueue(t *testing.T, c *Controller, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for c.queue.Len() < n {
		if time.Now().After(deadline) {
			t.Fatalf("queue length %d, want %d", c.queue.Len(), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestConfigChangeRollsPods(t *testing.T) {
	reg := newRegistry("team-a", "reg")
	f := newFixture(t, nil, reg)
	f.mustSync(reg)
	f.markReady(reg)
	f.mustSync(reg)
	before := f.statefulSet(reg)

	r := f.registry("team-a", "reg")
	r.Spec.Auth.TokenExpiration = &metav1.Duration{Duration: time.Hour}
	r.Generation = 2
	if _, err := f.client.RegistryV1alpha1().ImageRegistries("team-a").Update(f.ctx, r, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	f.mustSync(r)
	f.expectActions("update configmaps team-a/reg-auth-config", "update statefulsets team-a/reg", "update imageregistries/status team-a/reg")
	after := f.statefulSet(reg)
	if before.Spec.Template.Annotations[v1alpha1.AnnotationConfigHash] == after.Spec.Template.Annotations[v1alpha1.AnnotationConfigHash] {
		t.Fatal("config hash unchanged")
	}
	// Only the hash changed in the template.
	b, a := before.Spec.Template.DeepCopy(), after.Spec.Template.DeepCopy()
	delete(b.Annotations, v1alpha1.AnnotationConfigHash)
	delete(a.Annotations, v1alpha1.AnnotationConfigHash)
	if !equality.Semantic.DeepEqual(b, a) {
		t.Error("the pod template changed beyond the hash")
	}
	cfg, err := authconfig.Parse([]byte(f.configMap("team-a", "reg-auth-config").Data["auth_config.yml"]))
	if err != nil || cfg.Token.Expiration != 3600 {
		t.Errorf("expiration not rendered: %v %v", cfg, err)
	}
	if g := f.registry("team-a", "reg").Status.ObservedGeneration; g != 2 {
		t.Errorf("observedGeneration %d", g)
	}
}

func TestUserAuthConfigMap(t *testing.T) {
	valid := `server: {addr: ":5001", certificate: /etc/registry-tls/tls.crt, key: /etc/registry-tls/tls.key}
token: {issuer: my-issuer, expiration: 600, certificate: /etc/registry-token/tls.crt, key: /etc/registry-token/tls.key}
ext_auth: {command: /ext-auth/k8s-docker-authn}
acl:
- match: {labels: {type: push}}
  actions: [push, pull]
`
	withLDAP := valid + "ldap_auth: {addr: \"ldap.example.org:636\", tls: always}\n"
	tests := []struct {
		name   string
		server v1alpha1.AuthServer
		data   map[string]string
		reason string
	}{
		{"valid", "", map[string]string{"auth_config.yml": valid}, ""},
		// docker_auth's own authenticators are why a user picks it.
		{"docker_auth with ldap_auth", v1alpha1.AuthServerDockerAuth, map[string]string{"auth_config.yml": withLDAP}, ""},
		{"builtin with ldap_auth", "", map[string]string{"auth_config.yml": withLDAP}, ReasonInvalidAuthConfig},
		{"docker_auth with unknown match key", v1alpha1.AuthServerDockerAuth, map[string]string{"auth_config.yml": strings.Replace(withLDAP, "labels: {type: push}", "origin: cr", 1)}, ReasonInvalidAuthConfig},
		{"unknown match key", "", map[string]string{"auth_config.yml": strings.Replace(valid, "labels: {type: push}", "origin: cr", 1)}, ReasonInvalidAuthConfig},
		{"missing key", "", map[string]string{"other.yml": valid}, ReasonInvalidAuthConfig},
		{"token key elsewhere", "", map[string]string{"auth_config.yml": strings.Replace(valid, "/etc/registry-token/tls.crt", "/certs/token.crt", 1)}, ReasonInvalidAuthConfig},
		{"not found", "", nil, ReasonAuthConfigNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			reg := newRegistry("team-a", "reg")
			reg.Spec.Auth.ConfigMapName = "my-auth"
			if tc.server != "" {
				reg.Spec.Auth.Server = tc.server
			}
			var objs []runtime.Object
			if tc.data != nil {
				objs = append(objs, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "my-auth"}, Data: tc.data})
			}
			f := newFixture(t, objs, reg)
			_, err := f.sync(reg)
			if tc.reason != "" {
				if err == nil {
					t.Fatal("want error")
				}
				f.expectReady(reg, metav1.ConditionFalse, tc.reason)
				f.expectWarning(tc.reason)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, a := range f.actions() {
				if strings.Contains(a, "configmaps team-a/my-auth") || strings.Contains(a, "reg-auth-config") {
					t.Errorf("user auth ConfigMap path wrote %s", a)
				}
			}
			for _, v := range f.statefulSet(reg).Spec.Template.Spec.Volumes {
				if v.Name == "auth-config" && v.ConfigMap.Name != "my-auth" {
					t.Errorf("auth config volume mounts %q", v.ConfigMap.Name)
				}
			}
			if !strings.Contains(f.configMap("team-a", "reg-registry-config").Data["config.yml"], "issuer: my-issuer") {
				t.Error("registry does not expect the user config's issuer")
			}
		})
	}
}

func TestInvalidACL(t *testing.T) {
	reg := newRegistry("team-a", "reg")
	reg.Spec.Auth.ACL = []v1alpha1.ACLEntry{{Match: v1alpha1.ACLMatch{Account: "ci"}, Actions: nil}}
	f := newFixture(t, nil, reg)
	if _, err := f.sync(reg); err == nil {
		t.Fatal("want error")
	}
	f.expectReady(reg, metav1.ConditionFalse, ReasonInvalidAuthConfig)
	f.expectWarning(ReasonInvalidAuthConfig)
}

func TestRejectedPVCSpec(t *testing.T) {
	reg := newRegistry("team-a", "reg")
	reg.Spec.PersistentVolumeClaim.StorageClassName = ptr.To("Not_A_Valid_Name")
	f := newFixture(t, nil, reg)
	f.kubeClient.PrependReactor("create", "statefulsets", func(core.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewInvalid(schema.GroupKind{Group: "apps", Kind: "StatefulSet"}, "reg",
			field.ErrorList{field.Invalid(field.NewPath("spec", "volumeClaimTemplates").Index(0).Child("spec", "storageClassName"), "Not_A_Valid_Name", "invalid")})
	})
	if _, err := f.sync(reg); err == nil {
		t.Fatal("want error")
	}
	f.expectReady(reg, metav1.ConditionFalse, ReasonInvalidSpec)
	f.expectWarning(ReasonInvalidSpec)
}

func TestForeignObjectIsNotTakenOver(t *testing.T) {
	reg := newRegistry("team-a", "reg")
	foreign := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "reg"}}
	f := newFixture(t, []runtime.Object{foreign}, reg)
	if _, err := f.sync(reg); err == nil {
		t.Fatal("want error")
	}
	f.expectReady(reg, metav1.ConditionFalse, ReasonResourceConflict)
	f.expectWarning(ReasonResourceConflict)
	svc, _ := f.kubeClient.CoreV1().Services("team-a").Get(f.ctx, "reg", metav1.GetOptions{})
	if len(svc.OwnerReferences) != 0 || svc.Spec.Type != "" {
		t.Error("foreign Service modified")
	}
}

// The Secret cache is shared with the push/pull controllers, which keep
// their Secrets there as compact entries. One that holds the name of the
// registry's TLS Secret is read as the foreign Secret it is, not a panic.
func TestCompactSecretIsReadAsForeign(t *testing.T) {
	reg := newRegistry("team-a", "reg")
	pull := &metav1.ObjectMeta{Namespace: "team-a", Name: "app", UID: "0b7f3c2e-1d4a-4f6b-9c8d-00000000002a"}
	generated := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: "team-a", Name: "reg-tls",
			Labels:      map[string]string{v1alpha1.LabelManagedBy: v1alpha1.ManagedByValue},
			Annotations: map[string]string{v1alpha1.AnnotationRotatedAt: "2026-11-29T00:00:00Z"},
			OwnerReferences: []metav1.OwnerReference{
				*metav1.NewControllerRef(pull, v1alpha1.SchemeGroupVersion.WithKind("ImagePullSecret")),
			},
		},
		Type: corev1.SecretTypeDockerConfigJson,
		Data: map[string][]byte{credentials.KeyPassword: []byte("p")},
	}
	if cached, _ := objectcache.Transform(generated.DeepCopy()); cached == nil {
		t.Fatal("not cached")
	} else if _, typed := cached.(*corev1.Secret); typed {
		t.Fatal("the test Secret is cached as a typed object, want a compact entry")
	}
	f := newFixture(t, []runtime.Object{generated}, reg)
	if _, err := f.sync(reg); err == nil {
		t.Fatal("want error")
	}
	f.expectReady(reg, metav1.ConditionFalse, ReasonResourceConflict)
	s, _ := f.kubeClient.CoreV1().Secrets("team-a").Get(f.ctx, "reg-tls", metav1.GetOptions{})
	if metav1.GetControllerOf(s).Kind != "ImagePullSecret" || string(s.Data[credentials.KeyPassword]) != "p" {
		t.Error("the push/pull controller's Secret was modified")
	}
}

func TestDockerAuthServer(t *testing.T) {
	reg := newRegistry("team-a", "reg")
	reg.Spec.Auth.Server = v1alpha1.AuthServerDockerAuth
	reg.Spec.Images = &v1alpha1.ImagesSpec{DockerAuth: "mirror/docker_auth:1.13"}
	f := newFixture(t, nil, reg)
	f.mustSync(reg)
	pod := f.statefulSet(reg).Spec.Template.Spec
	auth := pod.Containers[1]
	if auth.Image != "mirror/docker_auth:1.13" || len(auth.Command) != 0 || strings.Join(auth.Args, " ") != "--logtostderr /etc/registry-auth/auth_config.yml" {
		t.Errorf("docker_auth container: %s %v %v", auth.Image, auth.Command, auth.Args)
	}
	if auth.ReadinessProbe.TCPSocket == nil || auth.ReadinessProbe.TCPSocket.Port.IntValue() != 5001 || auth.LivenessProbe.TCPSocket == nil {
		t.Errorf("docker_auth probes must be tcpSocket on 5001: %+v", auth.ReadinessProbe)
	}
	if len(pod.InitContainers) != 1 || pod.InitContainers[0].Image != testAuthImage ||
		strings.Join(pod.InitContainers[0].Command, " ") != "/usr/local/bin/k8s-docker-authn --install-to /ext-auth/k8s-docker-authn" {
		t.Errorf("init container: %+v", pod.InitContainers)
	}
	// The ext_auth sidecar: the operator's auth image, the socket shared
	// with docker_auth (read-only there), the ServiceAccount token in both
	// (docker_auth's ext_auth processes fall back to the API server).
	if len(pod.Containers) != 3 {
		t.Fatalf("containers: %d, want registry, auth and authn", len(pod.Containers))
	}
	sc := pod.Containers[2]
	if sc.Name != "authn" || sc.Image != testAuthImage ||
		strings.Join(sc.Command, " ") != "/usr/local/bin/k8s-docker-authn --serve=/run/ext-auth/authn.sock --namespace=team-a --registry=reg --health-addr=:5002" {
		t.Errorf("sidecar: %s %s %v", sc.Name, sc.Image, sc.Command)
	}
	if sc.ReadinessProbe.HTTPGet == nil || sc.ReadinessProbe.HTTPGet.Path != "/readyz" || sc.ReadinessProbe.HTTPGet.Port.IntValue() != 5002 ||
		sc.LivenessProbe.HTTPGet == nil || sc.LivenessProbe.HTTPGet.Path != "/healthz" || sc.SecurityContext == nil || !*sc.SecurityContext.ReadOnlyRootFilesystem {
		t.Errorf("sidecar probes or security context: %+v %+v %+v", sc.ReadinessProbe, sc.LivenessProbe, sc.SecurityContext)
	}
	mounts := func(c corev1.Container) map[string]corev1.VolumeMount {
		m := map[string]corev1.VolumeMount{}
		for _, vm := range c.VolumeMounts {
			m[vm.Name] = vm
		}
		return m
	}
	want := corev1.VolumeMount{Name: "ext-auth-socket", MountPath: "/run/ext-auth"}
	if got := mounts(sc); !equality.Semantic.DeepEqual(got["ext-auth-socket"], want) || got["kube-api-access"].MountPath != "/var/run/secrets/kubernetes.io/serviceaccount" || len(got) != 2 {
		t.Errorf("sidecar mounts: %+v", sc.VolumeMounts)
	}
	want.ReadOnly = true
	if got := mounts(auth); !equality.Semantic.DeepEqual(got["ext-auth-socket"], want) || got["kube-api-access"].Name == "" {
		t.Errorf("docker_auth mounts: %+v", auth.VolumeMounts)
	}
	for _, c := range []corev1.Container{pod.Containers[0], pod.InitContainers[0]} {
		if _, ok := mounts(c)["ext-auth-socket"]; ok {
			t.Errorf("%s mounts the ext_auth socket", c.Name)
		}
	}
	found := false
	for _, v := range pod.Volumes {
		found = found || (v.Name == "ext-auth-socket" && v.EmptyDir != nil)
	}
	if !found {
		t.Errorf("no ext-auth-socket emptyDir in %+v", pod.Volumes)
	}
	cfg, err := authconfig.Parse([]byte(f.configMap("team-a", "reg-auth-config").Data["auth_config.yml"]))
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.IsOurExtAuth() || cfg.ExtAuth.Command != "/ext-auth/k8s-docker-authn" {
		t.Errorf("ext_auth %+v", cfg.ExtAuth)
	}
}

func TestS3Storage(t *testing.T) {
	reg := newRegistry("team-a", "reg")
	reg.Spec.Replicas = ptr.To[int32](2)
	reg.Spec.Storage = &v1alpha1.StorageSpec{S3: &v1alpha1.S3StorageSpec{Endpoint: "https://minio.example.org", Bucket: "b", Region: "r", CredentialsSecret: "s3-creds"}}
	f := newFixture(t, nil, reg)
	f.mustSync(reg)
	sts := f.statefulSet(reg)
	if len(sts.Spec.VolumeClaimTemplates) != 0 || *sts.Spec.Replicas != 2 {
		t.Errorf("S3 registry has PVCs %v / replicas %d", sts.Spec.VolumeClaimTemplates, *sts.Spec.Replicas)
	}
	env := map[string]string{}
	for _, e := range sts.Spec.Template.Spec.Containers[0].Env {
		env[e.Name] = e.ValueFrom.SecretKeyRef.Name + "/" + e.ValueFrom.SecretKeyRef.Key
	}
	if env["REGISTRY_STORAGE_S3_ACCESSKEY"] != "s3-creds/accessKeyID" || env["REGISTRY_STORAGE_S3_SECRETKEY"] != "s3-creds/secretAccessKey" || env["REGISTRY_HTTP_SECRET"] != "reg-http-secret/secret" {
		t.Errorf("env %v", env)
	}
	if cfg := f.configMap("team-a", "reg-registry-config").Data["config.yml"]; strings.Contains(cfg, "accesskey") || strings.Contains(cfg, "filesystem") {
		t.Errorf("registry config:\n%s", cfg)
	}
}

func TestCAReplacedReissuesServingCert(t *testing.T) {
	reg := newRegistry("team-a", "reg")
	f := newFixture(t, nil, reg)
	f.mustSync(reg)
	if err := f.kubeClient.CoreV1().Secrets(testOperatorNS).Delete(f.ctx, CASecretName, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	f.mustSync(reg)
	f.expectActions("create secrets "+testOperatorNS+"/"+CASecretName, "update secrets team-a/reg-tls", "update statefulsets team-a/reg", "update imageregistries/status team-a/reg")
	kp, _ := pki.ParseKeyPair(f.secret("team-a", "reg-tls").Data["tls.crt"], f.secret("team-a", "reg-tls").Data["tls.key"])
	if err := pki.VerifyServing(kp.Cert, []byte(f.registry("team-a", "reg").Status.CA), []string{"reg.team-a.svc"}, testStart); err != nil {
		t.Errorf("reissued certificate does not verify with the new CA in status: %v", err)
	}
}
