package imagesecret

import (
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/image-registry-operator/image-registry-operator/pkg/apis/registry/v1alpha1"
)

func TestTrimForCacheSecret(t *testing.T) {
	f := created(t, KindPull)
	full := f.secret("team", "ci")
	trimmed := full.DeepCopy()
	if _, err := TrimForCache(trimmed); err != nil {
		t.Fatal(err)
	}
	if len(trimmed.Data) != 3 || string(trimmed.Data[KeyPassword]) != string(full.Data[KeyPassword]) ||
		string(trimmed.Data[KeyNextPassword]) != string(full.Data[KeyNextPassword]) {
		t.Fatalf("trimmed data keys %v: want the two passwords and the digest", len(trimmed.Data))
	}
	if !secretUpToDate(trimmed, full) {
		t.Error("a trimmed Secret must compare equal to its full content")
	}
	edited := full.DeepCopy()
	edited.Data[KeyCA] = []byte("another CA")
	if secretUpToDate(trimmed, edited) {
		t.Error("a trimmed Secret compared equal to different content")
	}
	delete(edited.Data, KeyCA)
	if secretUpToDate(trimmed, edited) {
		t.Error("a trimmed Secret compared equal to content with a key less")
	}
	again := trimmed.DeepCopy()
	if _, err := TrimForCache(again); err != nil || string(again.Data[cacheDigestKey]) != string(trimmed.Data[cacheDigestKey]) {
		t.Error("trimming twice changed the digest")
	}
	// An update never carries the digest.
	if m := mergeSecret(trimmed, full); m.Data[cacheDigestKey] != nil || len(m.Data) != len(full.Data) {
		t.Error("merged Secret carries the cache digest or lost data")
	}
	if len(validation.IsConfigMapKey(cacheDigestKey)) == 0 {
		t.Error("the digest key must be invalid in a Secret, so that a leak is refused")
	}

	foreign := &corev1.Secret{Data: map[string][]byte{"tls.crt": []byte("x")}}
	if _, err := TrimForCache(foreign); err != nil || len(foreign.Data) != 1 {
		t.Error("a Secret not controlled by a push or pull object must pass unchanged")
	}
}

func TestTrimForCacheAccount(t *testing.T) {
	f := created(t, KindPush)
	cr := f.object("team", "ci")
	full := f.account("team", "ci")
	trimmed := full.DeepCopy()
	if _, err := TrimForCache(trimmed); err != nil {
		t.Fatal(err)
	}
	if trimmed.Spec.Passwords != nil || trimmed.Annotations[cacheDigestKey] == "" {
		t.Fatalf("account not trimmed: %+v", trimmed.Spec)
	}
	desired := f.c.desiredAccount(cr, regNS)
	if !accountUpToDate(trimmed, desired) {
		t.Error("a trimmed account must compare equal to its desired state")
	}
	desired.Spec.Passwords = desired.Spec.Passwords[:1]
	if accountUpToDate(trimmed, desired) {
		t.Error("a trimmed account compared equal to other passwords")
	}
	merged := mergeAccount(trimmed, desired)
	if _, ok := merged.Annotations[cacheDigestKey]; ok || len(merged.Spec.Passwords) != 1 {
		t.Error("an account update must carry the desired spec and no digest")
	}
	if len(validation.IsQualifiedName(cacheDigestKey)) == 0 {
		t.Error("the digest key must be an invalid annotation key, so that a leak is refused")
	}
	// nil and empty lists and maps are the same to the API.
	a, b := desired.Spec.DeepCopy(), desired.Spec.DeepCopy()
	a.Labels, b.Labels = nil, map[string][]string{}
	if accountSpecDigest(a) != accountSpecDigest(b) {
		t.Error("nil and empty labels digest differently")
	}
}

// accountSpecDigest lists the spec's fields by hand; a new field must be
// added there, or drift in it would go unnoticed in trimmed caches.
func TestAccountSpecDigestCoversEveryField(t *testing.T) {
	if n := reflect.TypeFor[v1alpha1.ImageRegistryAccountSpec]().NumField(); n != 5 {
		t.Errorf("ImageRegistryAccountSpec has %d fields; accountSpecDigest digests 5: update it and this test", n)
	}
}
