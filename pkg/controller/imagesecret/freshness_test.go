package imagesecret

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/image-registry-operator/image-registry-operator/pkg/apis/registry/v1alpha1"
)

func TestLastWritesNeedComparableVersions(t *testing.T) {
	l := newLastWrites()
	key := cacheName("team", "ci")
	l.set(key, "uid-1", "100", "98", "99")
	if r, ok := l.get(key); !ok || r != (writeRecord{uidHash("uid-1"), 100, 98, 99}) {
		t.Fatalf("record %+v %v", r, ok)
	}
	l.set(key, "uid-1", "101", "opaque", "99")
	if _, ok := l.get(key); ok {
		t.Error("a version that cannot be compared must leave no record")
	}
}

func TestClassify(t *testing.T) {
	mk := func(cr, secret, account string) *world {
		w := &world{cr: wrapPush(&v1alpha1.ImagePushSecret{ObjectMeta: metav1.ObjectMeta{UID: "uid-1", ResourceVersion: cr}})}
		if secret != "" {
			w.secret = &corev1.Secret{ObjectMeta: metav1.ObjectMeta{ResourceVersion: secret}}
		}
		if account != "" {
			w.account = &v1alpha1.ImageRegistryAccount{ObjectMeta: metav1.ObjectMeta{ResourceVersion: account}}
		}
		return w
	}
	rec := writeRecord{uid: uidHash("uid-1"), cr: 100, secret: 98, account: 99}
	for _, tc := range []struct {
		name string
		w    *world
		want freshness
	}{
		{"exactly the record", mk("100", "98", "99"), cacheCurrent},
		{"object edited since", mk("105", "98", "99"), cacheCurrent},
		{"Secret edited since", mk("100", "120", "99"), cacheCurrent},
		{"longer version is newer", mk("1000", "98", "99"), cacheCurrent},
		{"object behind", mk("97", "98", "99"), cacheBehind},
		{"Secret behind", mk("100", "9", "99"), cacheBehind},
		{"Secret gone", mk("100", "", "99"), cacheUnknown},
		{"account gone", mk("100", "98", ""), cacheUnknown},
		{"gone wins over behind", mk("97", "", "99"), cacheUnknown},
		{"unparsable version", mk("abc", "98", "99"), cacheUnknown},
		{"leading zero", mk("0100", "98", "99"), cacheUnknown},
	} {
		if got := rec.classify(tc.w); got != tc.want {
			t.Errorf("%s: got %d, want %d", tc.name, got, tc.want)
		}
	}
	other := mk("100", "98", "99")
	other.cr.meta.UID = "uid-2"
	if got := rec.classify(other); got != cacheUnknown {
		t.Errorf("a record of another incarnation of the object: got %d, want unknown", got)
	}
}

// A write that fails because the cache missed someone else's change falls
// back to live reads in the same sync and completes the rotation.
func TestConflictFallsBackToLiveReads(t *testing.T) {
	f := created(t, KindPush)
	f.clock.Step(25 * time.Hour)
	f.syncCaches()
	// Someone labels the object; the watch has not delivered it yet.
	f.updateObject("team", "ci", func(cr *imageSecret) { cr.meta.Labels = map[string]string{"team": "a"} })
	f.clearActions()
	if err := f.c.syncHandler(t.Context(), cacheName("team", "ci")); err != nil {
		t.Fatal(err)
	}
	f.expectActions(
		"update imagepushsecrets/status team/ci", // Conflict
		"get imagepushsecrets team/ci", "get secrets team/ci-image-push-secret", "get imageregistryaccounts infra/push.team.ci",
		"update imagepushsecrets/status team/ci",
		"update imageregistryaccounts infra/push.team.ci",
		"update secrets team/ci-image-push-secret",
	)
	cr := f.object("team", "ci")
	if cr.status.Rotation != 1 || cr.meta.Labels["team"] != "a" {
		t.Errorf("rotation %d, labels %v", cr.status.Rotation, cr.meta.Labels)
	}
	f.assertSecretWorks("team", "ci")
}

// A Secret that the label-filtered cache cannot see makes the first create
// fail; the live reads find it.
func TestUnlabelledSecretFoundByLiveRead(t *testing.T) {
	f := newFixture(t, KindPush, registry(regNS, regName, true), newObject(KindPush, "team", "ci"), &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "ci-image-push-secret"},
	})
	if err := f.sync("team", "ci"); err == nil {
		t.Fatal("a foreign Secret must not be taken over")
	}
	if a := f.actions(); index(a, "get secrets team/ci-image-push-secret") < 0 {
		t.Errorf("no live read after the failed create: %q", a)
	}
	if c := meta.FindStatusCondition(f.object("team", "ci").status.Conditions, v1alpha1.ConditionReady); c == nil || c.Reason != SecretConflict {
		t.Errorf("Ready %+v, want reason %s", c, SecretConflict)
	}
	if s := f.secret("team", "ci"); len(s.Data) != 0 || len(s.OwnerReferences) != 0 {
		t.Error("the foreign Secret was changed")
	}
}

// A rotation decided from a cache that still shows a Secret the user just
// deleted: the publish succeeds, the Secret write finds nothing. The reset
// that follows keeps the deleted Secret's password for the grace period,
// as a reset of a deleted Secret always does.
func TestRotationWhileSecretDeletedKeepsGrace(t *testing.T) {
	f := created(t, KindPush)
	old := f.secret("team", "ci")
	f.clock.Step(25 * time.Hour)
	f.syncCaches()
	if err := f.kube.Tracker().Delete(gvrSecret, "team", old.Name); err != nil {
		t.Fatal(err)
	}
	f.clearActions()
	if err := f.c.syncHandler(t.Context(), cacheName("team", "ci")); err != nil {
		t.Fatal(err)
	}
	if !accountAccepts(f.account("team", "ci"), string(old.Data[KeyUsername]), string(old.Data[KeyPassword])) {
		t.Errorf("the deleted Secret's password lost its grace period; actions %q", f.actions())
	}
	f.assertSecretWorks("team", "ci")
	f.clock.Step(DefaultGracePeriod)
	f.mustSync("team", "ci")
	if accountAccepts(f.account("team", "ci"), string(old.Data[KeyUsername]), string(old.Data[KeyPassword])) {
		t.Error("the deleted Secret's password outlived its grace period")
	}
}

// An object deleted and created again under the same name is not judged by
// the record of its predecessor: here the new one names an older Secret,
// which the record would call "behind" forever.
func TestRecreatedObjectIgnoresOldRecord(t *testing.T) {
	foreign := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "older",
		Labels: map[string]string{v1alpha1.LabelManagedBy: v1alpha1.ManagedByValue}}}
	f := newFixture(t, KindPush, foreign, registry(regNS, regName, true), newObject(KindPush, "team", "ci"))
	f.mustSync("team", "ci")
	if err := f.client.Tracker().Delete(gvrPush, "team", "ci"); err != nil {
		t.Fatal(err)
	}
	again := newObject(KindPush, "team", "ci").(*v1alpha1.ImagePushSecret)
	again.UID = "second-incarnation"
	again.Spec.SecretName = "older"
	again.ResourceVersion = f.nextRV()
	if err := f.client.Tracker().Add(again); err != nil {
		t.Fatal(err)
	}
	err := f.sync("team", "ci")
	if err == nil {
		t.Fatal("want SecretConflict for a Secret the object does not control")
	}
	if c := meta.FindStatusCondition(f.object("team", "ci").status.Conditions, v1alpha1.ConditionReady); c == nil || c.Reason != SecretConflict {
		t.Errorf("Ready %+v, want reason %s", c, SecretConflict)
	}
}
