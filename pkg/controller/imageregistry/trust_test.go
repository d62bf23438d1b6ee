package imageregistry

import (
	"crypto"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/cache"
	"sigs.k8s.io/yaml"

	"github.com/image-registry-operator/image-registry-operator/pkg/apis/registry/v1alpha1"
	"github.com/image-registry-operator/image-registry-operator/pkg/pki"
	"github.com/image-registry-operator/image-registry-operator/pkg/tokenkey"
)

// markRolledOut plays the StatefulSet controller: every pod runs the
// current template.
func (f *fixture) markRolledOut(reg *v1alpha1.ImageRegistry) {
	f.t.Helper()
	s := f.statefulSet(reg)
	s.Status.ObservedGeneration = s.Generation
	s.Status.Replicas = *s.Spec.Replicas
	s.Status.ReadyReplicas = *s.Spec.Replicas
	s.Status.UpdatedReplicas = *s.Spec.Replicas
	rev := "rev-" + s.Spec.Template.Annotations[v1alpha1.AnnotationConfigHash][:10]
	s.Status.CurrentRevision, s.Status.UpdateRevision = rev, rev
	if _, err := f.kubeClient.AppsV1().StatefulSets(reg.Namespace).UpdateStatus(f.ctx, s, metav1.UpdateOptions{}); err != nil {
		f.t.Fatal(err)
	}
}

// bumpGenerations makes StatefulSet updates behave as in the API server:
// a changed spec increments metadata.generation, so that a status written
// for the previous spec no longer reads as rolled out.
func (f *fixture) bumpGenerations() {
	f.kubeClient.PrependReactor("update", "statefulsets", func(a k8stesting.Action) (bool, runtime.Object, error) {
		u, ok := a.(k8stesting.UpdateAction)
		if !ok || u.GetSubresource() != "" {
			return false, nil, nil
		}
		sts := u.GetObject().(*appsv1.StatefulSet)
		old, err := f.kubeClient.Tracker().Get(appsv1.SchemeGroupVersion.WithResource("statefulsets"), sts.Namespace, sts.Name)
		if err == nil && !equality.Semantic.DeepEqual(old.(*appsv1.StatefulSet).Spec, sts.Spec) {
			sts.Generation = old.(*appsv1.StatefulSet).Generation + 1
		}
		return false, nil, nil
	})
}

// trustedKeyIDs are the thumbprints of the keys in the registry's JWKS,
// after checking that each is listed under its legacy key id too.
func (f *fixture) trustedKeyIDs(reg *v1alpha1.ImageRegistry) []string {
	f.t.Helper()
	cm := f.configMap(reg.Namespace, registryConfigMapName(reg))
	jwks := cm.Data[jwksKey]
	keys, err := tokenkey.ParseKeySet([]byte(jwks))
	if err != nil {
		f.t.Fatalf("registry ConfigMap %s: %v", jwksKey, err)
	}
	var kids []string
	for _, k := range keys {
		tp, _ := tokenkey.Thumbprint(k)
		legacy, _ := tokenkey.LegacyKeyID(k)
		if !strings.Contains(jwks, `"kid": "`+legacy+`"`) || !strings.Contains(jwks, `"kid": "`+tp+`"`) {
			f.t.Errorf("key %s is not listed under both its thumbprint and its legacy id %s", tp, legacy)
		}
		kids = append(kids, tp)
	}
	return kids
}

func keyID(t *testing.T, certPEM, keyPEM []byte) string {
	t.Helper()
	kp, err := pki.ParseKeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	kid, err := tokenkey.Thumbprint(kp.Key.Public())
	if err != nil {
		t.Fatal(err)
	}
	return kid
}

func (f *fixture) signingKeyID(reg *v1alpha1.ImageRegistry) string {
	s := f.secret(reg.Namespace, tokenSecretName(reg))
	return keyID(f.t, s.Data[corev1.TLSCertKey], s.Data[corev1.TLSPrivateKeyKey])
}

func (f *fixture) retiredKeys(reg *v1alpha1.ImageRegistry) map[string]string {
	f.t.Helper()
	cm := f.configMap(reg.Namespace, registryConfigMapName(reg))
	m := map[string]string{}
	if err := json.Unmarshal([]byte(cm.Annotations[v1alpha1.AnnotationRetiredTokenKeys]), &m); err != nil {
		f.t.Fatalf("%s: %v", v1alpha1.AnnotationRetiredTokenKeys, err)
	}
	return m
}

func TestRegistryTrustsTheTokenKeyThroughItsJWKS(t *testing.T) {
	reg := newRegistry("team-a", "reg")
	f := newFixture(t, nil, reg)
	f.mustSync(reg)
	kid := f.signingKeyID(reg)
	if got := f.trustedKeyIDs(reg); !slices.Equal(got, []string{kid}) {
		t.Errorf("JWKS trusts %v, want only the signing key %s", got, kid)
	}
	var cfg map[string]any
	if err := yaml.Unmarshal([]byte(f.configMap("team-a", "reg-registry-config").Data[registryConfigKey]), &cfg); err != nil {
		t.Fatal(err)
	}
	token := cfg["auth"].(map[string]any)["token"].(map[string]any)
	if token["jwks"] != "/etc/distribution/jwks.json" || token["rootcertbundle"] != nil {
		t.Errorf("registry token config %v: want jwks and no rootcertbundle", token)
	}
	tmpl := f.statefulSet(reg).Spec.Template
	if tmpl.Annotations[v1alpha1.AnnotationTokenSigningKey] != kid || tmpl.Annotations[v1alpha1.AnnotationTrustedTokenKeys] != kid {
		t.Errorf("pod template annotations %v", tmpl.Annotations)
	}
	for _, v := range tmpl.Spec.Volumes {
		if v.ConfigMap != nil && v.ConfigMap.Name == "reg-registry-config" {
			if len(v.ConfigMap.Items) != 2 || v.ConfigMap.Items[1].Key != jwksKey {
				t.Errorf("registry-config volume items %+v: want config.yml and %s", v.ConfigMap.Items, jwksKey)
			}
		}
		if v.Secret != nil && v.Secret.SecretName == "reg-auth-token" {
			for _, it := range v.Secret.Items {
				if it.Key != corev1.TLSCertKey && it.Key != corev1.TLSPrivateKeyKey {
					t.Errorf("the token Secret's %s is mounted", it.Key)
				}
			}
		}
	}
}

// TestTokenKeyRenewal walks a scheduled renewal: the next key is trusted
// before anyone signs with it, signed with only once every pod trusts it,
// and the old key is trusted until every pod signs with the new one and
// its last tokens have expired.
func TestTokenKeyRenewal(t *testing.T) {
	reg := newRegistry("team-a", "reg")
	f := newFixture(t, nil, reg)
	f.bumpGenerations()
	f.mustSync(reg)
	f.markRolledOut(reg)
	f.mustSync(reg)
	f.mustSync(reg)
	f.expectActions() // steady: nothing to renew yet
	old := f.signingKeyID(reg)
	oldHash := f.statefulSet(reg).Spec.Template.Annotations[v1alpha1.AnnotationConfigHash]

	// Renewal time: a next key, published, not signed with.
	f.clock.Step(tokenCertValidity*2/3 + time.Hour)
	f.mustSync(reg)
	s := f.secret("team-a", "reg-auth-token")
	if len(s.Data[nextTokenKeyKey]) == 0 {
		t.Fatalf("no next key at the renewal time: Secret keys %v", keys(s.Data))
	}
	next := keyID(t, s.Data[nextTokenCertKey], s.Data[nextTokenKeyKey])
	if f.signingKeyID(reg) != old {
		t.Fatal("the signing key changed before the pods trusted the next one")
	}
	if got := f.trustedKeyIDs(reg); !slices.Equal(got, []string{old, next}) {
		t.Fatalf("JWKS trusts %v, want [signing %s, next %s]", got, old, next)
	}
	tmpl := f.statefulSet(reg).Spec.Template
	if tmpl.Annotations[v1alpha1.AnnotationConfigHash] == oldHash || !strings.Contains(tmpl.Annotations[v1alpha1.AnnotationTrustedTokenKeys], next) {
		t.Fatalf("pod template not rolled to trust the next key: %v", tmpl.Annotations)
	}

	// The rollout has not finished: still the old signing key.
	f.mustSync(reg)
	if f.signingKeyID(reg) != old {
		t.Fatal("the signing key changed while the rollout was under way")
	}

	// Every pod trusts the next key: it becomes the signing key, the old
	// one is retired but trusted while pods may still sign with it.
	f.markRolledOut(reg)
	f.mustSync(reg)
	s = f.secret("team-a", "reg-auth-token")
	if f.signingKeyID(reg) != next || s.Data[nextTokenKeyKey] != nil || s.Data[nextTokenCertKey] != nil {
		t.Fatalf("after the rollout: signing %s (want %s), Secret keys %v", f.signingKeyID(reg), next, keys(s.Data))
	}
	if got := f.trustedKeyIDs(reg); !slices.Equal(got, []string{next, old}) {
		t.Fatalf("JWKS trusts %v, want [%s, retired %s]", got, next, old)
	}
	if r := f.retiredKeys(reg); r[old] != "" {
		t.Fatalf("retired key given an end %q while pods may still sign with it", r[old])
	}
	f.mustSync(reg)
	if r := f.retiredKeys(reg); r[old] != "" {
		t.Fatalf("retired key given an end %q before the rollout", r[old])
	}

	// Every pod signs with the new key: the old one stays for a token's
	// lifetime (5m) plus leeway, then goes.
	f.markRolledOut(reg)
	f.mustSync(reg)
	want := f.clock.Now().Add(defaultTokenExpiration + tokenLeeway).UTC().Format(time.RFC3339)
	if r := f.retiredKeys(reg); r[old] != want {
		t.Fatalf("retired until %q, want %q", r[old], want)
	}
	if got := f.trustedKeyIDs(reg); !slices.Equal(got, []string{next, old}) {
		t.Fatalf("JWKS trusts %v before the retired key's end", got)
	}
	f.clock.Step(defaultTokenExpiration + tokenLeeway)
	f.mustSync(reg)
	if got := f.trustedKeyIDs(reg); !slices.Equal(got, []string{next}) {
		t.Fatalf("JWKS trusts %v after the retired key's end, want only %s", got, next)
	}
	if r := f.retiredKeys(reg); len(r) != 0 {
		t.Errorf("retired keys %v after the end", r)
	}
}

// TestDeletedTokenSecret: an admin who deletes the token Secret gets a new
// key the way a scheduled renewal brings one: the deleted key comes back as
// the signing key, the new one is published at once and signed with once
// every pod trusts it. Pods that have not restarted yet never meet a
// token signed with a key they do not trust.
func TestDeletedTokenSecret(t *testing.T) {
	reg := newRegistry("team-a", "reg")
	f := newFixture(t, nil, reg)
	f.bumpGenerations()
	f.mustSync(reg)
	f.markRolledOut(reg)
	// The running operator has synced the registry since.
	seen := f.mustSync(reg).tokenSecrets
	old := f.signingKeyID(reg)
	if err := f.kubeClient.CoreV1().Secrets("team-a").Delete(f.ctx, "reg-auth-token", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}

	// The same process, its cache without the Secret; lagging is a second
	// view of that cache, used after the write-back.
	c := f.controller()
	c.tokenSecrets = seen
	lagging := f.controller()
	lagging.tokenSecrets = seen
	if err := c.syncHandler(f.ctx, cache.MetaObjectToName(reg)); err != nil {
		t.Fatal(err)
	}
	s := f.secret("team-a", "reg-auth-token")
	if f.signingKeyID(reg) != old || len(s.Data[nextTokenKeyKey]) == 0 {
		t.Fatalf("written back with signing key %s (want the deleted %s) and keys %v (want a next key)", f.signingKeyID(reg), old, keys(s.Data))
	}
	next := keyID(t, s.Data[nextTokenCertKey], s.Data[nextTokenKeyKey])
	if got := f.trustedKeyIDs(reg); !slices.Equal(got, []string{old, next}) {
		t.Fatalf("JWKS trusts %v, want [signing %s, next %s]", got, old, next)
	}
	if tmpl := f.statefulSet(reg).Spec.Template; tmpl.Annotations[v1alpha1.AnnotationTokenSigningKey] != old || !strings.Contains(tmpl.Annotations[v1alpha1.AnnotationTrustedTokenKeys], next) {
		t.Fatalf("pod template annotations %v: want signing %s, trusting %s", tmpl.Annotations, old, next)
	}

	// A sync whose cache does not hold the written-back Secret yet asks
	// the API, finds it, and takes it as it is.
	f.clearActions()
	if err := lagging.syncHandler(f.ctx, cache.MetaObjectToName(reg)); err != nil {
		t.Fatal(err)
	}
	for _, a := range f.actions() {
		if strings.HasPrefix(a, "create secrets") || strings.HasPrefix(a, "update secrets") {
			t.Errorf("a sync with the Secret missing from its cache wrote it: %v", f.actions())
		}
	}
	if keyID(t, f.secret("team-a", "reg-auth-token").Data[nextTokenCertKey], f.secret("team-a", "reg-auth-token").Data[nextTokenKeyKey]) != next {
		t.Error("the next key changed")
	}

	// Every pod trusts the new key: it signs, the deleted one is retired.
	f.markRolledOut(reg)
	f.mustSync(reg)
	if f.signingKeyID(reg) != next {
		t.Fatalf("after the rollout the signing key is %s, want %s", f.signingKeyID(reg), next)
	}
	if got := f.trustedKeyIDs(reg); !slices.Equal(got, []string{next, old}) {
		t.Fatalf("JWKS trusts %v, want [%s, retired %s]", got, next, old)
	}
	if tmpl := f.statefulSet(reg).Spec.Template; tmpl.Annotations[v1alpha1.AnnotationTokenSigningKey] != next {
		t.Errorf("pod template signs with %s, want %s", tmpl.Annotations[v1alpha1.AnnotationTokenSigningKey], next)
	}
}

// A registry made again under the same name never gets the key of the one
// it replaces, though the operator still remembers that one.
func TestTokenSecretMemoryIsPerRegistryUID(t *testing.T) {
	reg := newRegistry("team-a", "reg")
	f := newFixture(t, nil, reg)
	seen := f.mustSync(reg).tokenSecrets
	old := f.signingKeyID(reg)

	// Deleted with everything it owned, and made again.
	again := newRegistry("team-a", "reg")
	again.UID = "uid-reg-again"
	f2 := newFixture(t, nil, again)
	c := f2.controller()
	c.tokenSecrets = seen
	if err := c.syncHandler(f2.ctx, cache.MetaObjectToName(again)); err != nil {
		t.Fatal(err)
	}
	if got := f2.signingKeyID(again); got == old || len(f2.secret("team-a", "reg-auth-token").Data[nextTokenKeyKey]) != 0 {
		t.Fatalf("the new registry signs with %s, its predecessor's key %s, or has a next key", got, old)
	}
}

// TestDeletedTokenSecretUnseen: a token Secret deleted while no operator
// watched (or just before it restarted) is gone with its key: a new key
// signs at once, and the old one stays trusted until its tokens expire.
func TestDeletedTokenSecretUnseen(t *testing.T) {
	reg := newRegistry("team-a", "reg")
	f := newFixture(t, nil, reg)
	f.bumpGenerations()
	f.mustSync(reg)
	f.markRolledOut(reg)
	old := f.signingKeyID(reg)
	if err := f.kubeClient.CoreV1().Secrets("team-a").Delete(f.ctx, "reg-auth-token", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	f.mustSync(reg)
	cur := f.signingKeyID(reg)
	if cur == old {
		t.Fatal("no new key")
	}
	if got := f.trustedKeyIDs(reg); !slices.Equal(got, []string{cur, old}) {
		t.Fatalf("JWKS trusts %v, want [%s, retired %s]", got, cur, old)
	}
	if tmpl := f.statefulSet(reg).Spec.Template; tmpl.Annotations[v1alpha1.AnnotationTokenSigningKey] != cur {
		t.Errorf("pod template signs with %s, want %s", tmpl.Annotations[v1alpha1.AnnotationTokenSigningKey], cur)
	}
}

// TestTokenKeyChainIsNotTrusted: a token key Secret whose tls.crt carries
// the issuer's chain (as cert-manager writes it) makes the registry trust
// the leaf's key only, never the issuer: a token with an x5c chain to a
// shared intermediate would otherwise pass.
func TestTokenKeyChainIsNotTrusted(t *testing.T) {
	ca, err := pki.NewCA(pki.CertOptions{CommonName: "shared intermediate", Validity: time.Hour * 24, Now: testStart})
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := pki.NewServingCert(ca, pki.CertOptions{CommonName: "token", DNSNames: []string{"token"}, Validity: time.Hour * 24, Now: testStart})
	if err != nil {
		t.Fatal(err)
	}
	user := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "my-token-key"},
		Type:       corev1.SecretTypeTLS,
		Data: map[string][]byte{
			corev1.TLSCertKey:       append(append([]byte{}, leaf.CertPEM...), ca.CertPEM...),
			corev1.TLSPrivateKeyKey: leaf.KeyPEM,
			caCertKey:               ca.CertPEM,
		},
	}
	reg := newRegistry("team-a", "reg")
	reg.Spec.Auth.CA = &v1alpha1.AuthCASpec{SecretName: "my-token-key"}
	f := newFixture(t, []runtime.Object{user}, reg)
	f.mustSync(reg)
	leafKID, _ := tokenkey.Thumbprint(leaf.Key.Public())
	caKID, _ := tokenkey.Thumbprint(ca.Key.Public())
	got := f.trustedKeyIDs(reg)
	if !slices.Equal(got, []string{leafKID}) {
		t.Errorf("JWKS trusts %v, want only the leaf key %s (issuer key %s)", got, leafKID, caKID)
	}
	if strings.Contains(f.configMap("team-a", "reg-registry-config").Data[registryConfigKey], "rootcertbundle") {
		t.Error("the registry config names a rootcertbundle")
	}
}

func TestDecideTokenTrustBoundsRetiredKeys(t *testing.T) {
	var previous []crypto.PublicKey
	for range maxRetiredTokenKeys + 2 {
		kp, err := pki.NewSigningCert(pki.CertOptions{CommonName: "k", Validity: time.Hour, Now: testStart})
		if err != nil {
			t.Fatal(err)
		}
		previous = append(previous, kp.Key.Public())
	}
	jwks, err := tokenkey.KeySet(previous...)
	if err != nil {
		t.Fatal(err)
	}
	signing, err := pki.NewSigningCert(pki.CertOptions{CommonName: "k", Validity: time.Hour, Now: testStart})
	if err != nil {
		t.Fatal(err)
	}
	st := &syncState{now: testStart, token: &keyMaterial{certPEM: signing.CertPEM, keyPEM: signing.KeyPEM}}
	cur := &corev1.ConfigMap{Data: map[string]string{jwksKey: string(jwks)}}
	trust, err := decideTokenTrust(st, cur, nil, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if len(trust.trustedKIDs) != 1+maxRetiredTokenKeys {
		t.Errorf("%d keys trusted, want the signing key and %d retired ones", len(trust.trustedKIDs), maxRetiredTokenKeys)
	}
}

func keys(m map[string][]byte) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// TestDottedNameGetsNoCertificate: a registry named like another
// registry's hostname (which the CRD's CEL rule refuses) gets no key
// material at all, and says why.
func TestDottedNameGetsNoCertificate(t *testing.T) {
	reg := newRegistry("team-a", "registry.image-registry-operator.svc.cluster.local")
	f := newFixture(t, nil, reg)
	if _, err := f.sync(reg); err != nil {
		t.Fatalf("sync: %v", err)
	}
	for _, a := range f.actions() {
		if !strings.HasPrefix(a, "update imageregistries/status") {
			t.Errorf("wrote %s for a registry with an invalid name", a)
		}
	}
	f.expectReady(reg, metav1.ConditionFalse, ReasonInvalidName)
	f.expectWarning(ReasonInvalidName)
}

// TestACLCrossingNamespacesWarns: a custom ACL that grants pushes to every
// account regardless of its namespace is served, with a Warning.
func TestACLCrossingNamespacesWarns(t *testing.T) {
	reg := newRegistry("team-a", "reg")
	reg.Spec.Auth.ACL = []v1alpha1.ACLEntry{
		{Match: v1alpha1.ACLMatch{Labels: map[string]string{"type": "push"}, Name: "${labels:namespace}/*"}, Actions: []string{"push", "pull"}},
		{Match: v1alpha1.ACLMatch{Account: "ci"}, Actions: []string{"*"}},
		{Match: v1alpha1.ACLMatch{Labels: map[string]string{"type": "push"}, Name: "shared/*"}, Actions: []string{"push"}},
		{Match: v1alpha1.ACLMatch{}, Actions: []string{}},
	}
	f := newFixture(t, nil, reg)
	f.mustSync(reg)
	var warned []string
	for _, e := range f.events() {
		if strings.Contains(e, EventReasonACLCrossesNamespaces) {
			warned = append(warned, e)
		}
	}
	if len(warned) != 1 || !strings.HasPrefix(warned[0], "Warning") || !strings.Contains(warned[0], "[2]") {
		t.Errorf("events %v: want one Warning naming entry 2", warned)
	}

	reg = newRegistry("team-a", "ok")
	reg.Spec.Auth.ACL = reg.Spec.Auth.ACL[:0]
	reg.Spec.Auth.ACL = append(reg.Spec.Auth.ACL, v1alpha1.ACLEntry{Match: v1alpha1.ACLMatch{Name: "${labels:namespace}/*"}, Actions: []string{"pull"}})
	f = newFixture(t, nil, reg)
	f.mustSync(reg)
	for _, e := range f.events() {
		if strings.Contains(e, EventReasonACLCrossesNamespaces) {
			t.Errorf("warned about an ACL that keeps the namespace: %s", e)
		}
	}
}
