package imagesecret

import (
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/image-registry-operator/image-registry-operator/pkg/apis/registry/v1alpha1"
	"github.com/image-registry-operator/image-registry-operator/pkg/credentials"
)

var gvrServiceAccount = corev1.SchemeGroupVersion.WithResource("serviceaccounts")

const pullSecret = "ci-image-pull-secret"

// serviceAccount returns a ServiceAccount of team with these imagePullSecrets.
func serviceAccount(name string, pullSecrets ...string) *corev1.ServiceAccount {
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: name, ResourceVersion: "1"}}
	for _, s := range pullSecrets {
		sa.ImagePullSecrets = append(sa.ImagePullSecrets, corev1.LocalObjectReference{Name: s})
	}
	return sa
}

func (f *fixture) addServiceAccount(sa *corev1.ServiceAccount) {
	f.t.Helper()
	sa.ResourceVersion = f.nextRV()
	if err := f.kube.Tracker().Add(sa); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) serviceAccount(name string) *corev1.ServiceAccount {
	f.t.Helper()
	o, err := f.kube.Tracker().Get(gvrServiceAccount, "team", name)
	if err != nil {
		f.t.Fatal(err)
	}
	return o.(*corev1.ServiceAccount)
}

// pullSecrets lists a ServiceAccount's imagePullSecrets and the operator's record.
func (f *fixture) pullSecrets(name string) ([]string, string) {
	f.t.Helper()
	sa := f.serviceAccount(name)
	var names []string
	for _, r := range sa.ImagePullSecrets {
		names = append(names, r.Name)
	}
	return names, sa.Annotations[v1alpha1.AnnotationAddedImagePullSecrets]
}

func (f *fixture) selectServiceAccounts(names ...string) {
	f.t.Helper()
	f.updateObject("team", "ci", func(cr *imageSecret) {
		cr.obj.(*v1alpha1.ImagePullSecret).Spec.ServiceAccounts = names
	})
}

// convergeCI syncs the object until a sync writes nothing.
func (f *fixture) convergeCI() {
	f.t.Helper()
	for range 5 {
		f.mustSync("team", "ci")
		if len(f.writeActions()) == 0 {
			return
		}
	}
	f.t.Fatalf("no fixed point: still writing %q", f.writeActions())
}

func TestServiceAccountsGetAndLoseTheSecret(t *testing.T) {
	f := created(t, credentials.KindPull)
	f.addServiceAccount(serviceAccount("default", "foreign"))
	f.addServiceAccount(serviceAccount("builder"))
	f.selectServiceAccounts("default")
	f.convergeCI()

	if got, rec := f.pullSecrets("default"); !slices.Equal(got, []string{"foreign", pullSecret}) || rec != pullSecret {
		t.Errorf("default: imagePullSecrets %q, record %q; want foreign and ours, ours recorded", got, rec)
	}
	if got, rec := f.pullSecrets("builder"); len(got) != 0 || rec != "" {
		t.Errorf("builder (not selected): imagePullSecrets %q, record %q", got, rec)
	}
	if n := f.object("team", "ci").status.ServiceAccounts; n != 1 {
		t.Errorf("status.serviceAccounts %d, want 1", n)
	}

	// The name leaves the list: only our entry goes.
	f.selectServiceAccounts()
	f.convergeCI()
	if got, rec := f.pullSecrets("default"); !slices.Equal(got, []string{"foreign"}) || rec != "" {
		t.Errorf("after deselecting: imagePullSecrets %q, record %q; want only foreign", got, rec)
	}
	if n := f.object("team", "ci").status.ServiceAccounts; n != 0 {
		t.Errorf("status.serviceAccounts %d, want 0", n)
	}
}

// Renaming the Secret (spec.secretName) moves the entry: the old name's
// entry, which no ImagePullSecret names any more, goes in the same patch
// that adds the new one; another object's entry stays.
func TestServiceAccountEntryFollowsSecretRename(t *testing.T) {
	f := created(t, credentials.KindPull)
	f.addServiceAccount(serviceAccount("default", "foreign"))
	f.selectServiceAccounts("default")
	f.convergeCI()
	if got, rec := f.pullSecrets("default"); !slices.Equal(got, []string{"foreign", pullSecret}) || rec != pullSecret {
		t.Fatalf("before the rename: imagePullSecrets %q, record %q", got, rec)
	}
	// Another ImagePullSecret's recorded entry, as its own sync would leave it.
	other := f.serviceAccount("default").DeepCopy()
	other.ImagePullSecrets = append(other.ImagePullSecrets, corev1.LocalObjectReference{Name: "other-image-pull-secret"})
	other.Annotations[v1alpha1.AnnotationAddedImagePullSecrets] += ",other-image-pull-secret"
	f.edit(f.kube.Tracker(), gvrServiceAccount, other, "team")
	otherObj := newObject(credentials.KindPull, "team", "other")
	otherObj.(*v1alpha1.ImagePullSecret).ResourceVersion = f.nextRV()
	if err := f.client.Tracker().Add(otherObj); err != nil {
		t.Fatal(err)
	}

	f.updateObject("team", "ci", func(cr *imageSecret) {
		cr.obj.(*v1alpha1.ImagePullSecret).Spec.SecretName = "ci-renamed"
	})
	f.convergeCI()
	got, rec := f.pullSecrets("default")
	if !slices.Equal(got, []string{"foreign", "other-image-pull-secret", "ci-renamed"}) || rec != "other-image-pull-secret,ci-renamed" {
		t.Errorf("after the rename: imagePullSecrets %q, record %q; want foreign, the other object's and the new name", got, rec)
	}
}

func TestServiceAccountEntryAddedByHandIsKept(t *testing.T) {
	f := created(t, credentials.KindPull)
	f.addServiceAccount(serviceAccount("default", pullSecret))
	f.addServiceAccount(serviceAccount("builder"))
	f.selectServiceAccounts("*")
	f.convergeCI()
	if got, rec := f.pullSecrets("default"); !slices.Equal(got, []string{pullSecret}) || rec != "" {
		t.Errorf("default: imagePullSecrets %q, record %q; the hand-added entry must stay unrecorded", got, rec)
	}
	if got, rec := f.pullSecrets("builder"); !slices.Equal(got, []string{pullSecret}) || rec != pullSecret {
		t.Errorf("builder: imagePullSecrets %q, record %q", got, rec)
	}
	if n := f.object("team", "ci").status.ServiceAccounts; n != 2 {
		t.Errorf("status.serviceAccounts %d, want 2", n)
	}

	// Deleting the object removes what the operator added, nothing else.
	f.updateObject("team", "ci", func(cr *imageSecret) { cr.meta.DeletionTimestamp = &metav1.Time{Time: f.clock.Now()} })
	f.mustSync("team", "ci")
	if f.object("team", "ci") != nil {
		t.Fatal("object not finalized")
	}
	if got, _ := f.pullSecrets("default"); !slices.Equal(got, []string{pullSecret}) {
		t.Errorf("default after deletion: %q; the hand-added entry must stay", got)
	}
	if got, rec := f.pullSecrets("builder"); len(got) != 0 || rec != "" {
		t.Errorf("builder after deletion: imagePullSecrets %q, record %q", got, rec)
	}
}

func TestServiceAccountsCreatedLater(t *testing.T) {
	f := created(t, credentials.KindPull)
	// Neither exists yet: not an error.
	f.selectServiceAccounts("builder")
	f.convergeCI()
	f.addServiceAccount(serviceAccount("builder"))
	f.addServiceAccount(serviceAccount("other"))
	f.convergeCI()
	if got, _ := f.pullSecrets("builder"); !slices.Equal(got, []string{pullSecret}) {
		t.Errorf("builder created later: %q", got)
	}
	if got, _ := f.pullSecrets("other"); len(got) != 0 {
		t.Errorf("other (not selected): %q", got)
	}

	// "*" reaches ServiceAccounts created after it.
	f.selectServiceAccounts("*")
	f.convergeCI()
	f.addServiceAccount(serviceAccount("late"))
	f.convergeCI()
	for _, name := range []string{"builder", "other", "late"} {
		if got, _ := f.pullSecrets(name); !slices.Equal(got, []string{pullSecret}) {
			t.Errorf("%s with \"*\": %q", name, got)
		}
	}
}

// The patch carries the ServiceAccount's resourceVersion: a concurrent
// change fails it instead of being overwritten, and the next sync adds the
// entry next to the other change.
func TestServiceAccountPatchIsConditional(t *testing.T) {
	f := created(t, credentials.KindPull)
	f.addServiceAccount(serviceAccount("default"))
	f.selectServiceAccounts("default")
	f.syncCaches()
	// Someone adds an entry after the caches were read.
	sa := f.serviceAccount("default").DeepCopy()
	sa.ImagePullSecrets = append(sa.ImagePullSecrets, corev1.LocalObjectReference{Name: "theirs"})
	f.edit(f.kube.Tracker(), gvrServiceAccount, sa, "team")
	f.clearActions()
	if err := f.c.syncHandler(t.Context(), cacheName("team", "ci")); err == nil {
		t.Fatalf("a patch over a changed ServiceAccount succeeded: %q", f.actions())
	}
	f.convergeCI()
	if got, _ := f.pullSecrets("default"); !slices.Equal(got, []string{"theirs", pullSecret}) {
		t.Errorf("imagePullSecrets %q, want theirs and ours", got)
	}
}

// A push controller has no ServiceAccounts to serve.
func TestPushObjectsTouchNoServiceAccount(t *testing.T) {
	f := created(t, credentials.KindPush)
	f.addServiceAccount(serviceAccount("default"))
	f.mustSync("team", "ci")
	if got, rec := f.pullSecrets("default"); len(got) != 0 || rec != "" {
		t.Errorf("push object changed a ServiceAccount: %q, %q", got, rec)
	}
}

// A ServiceAccount event (a tombstone too) enqueues the namespace's
// ImagePullSecrets that select ServiceAccounts, and no other.
func TestServiceAccountEventsEnqueueSelectingObjects(t *testing.T) {
	selecting := newObject(credentials.KindPull, "team", "ci").(*v1alpha1.ImagePullSecret)
	selecting.Spec.ServiceAccounts = []string{"default"}
	f := newFixture(t, credentials.KindPull, registry(regNS, regName, true), selecting,
		newObject(credentials.KindPull, "team", "plain"), newObject(credentials.KindPull, "other", "ci"))
	f.syncCaches()
	for _, obj := range []any{serviceAccount("builder"), cache.DeletedFinalStateUnknown{Key: "team/builder", Obj: serviceAccount("builder")}} {
		f.c.handleServiceAccount(obj)
		if n := f.c.queue.Len(); n != 1 {
			t.Fatalf("%T: %d keys queued, want team/ci only", obj, n)
		}
		k, _ := f.c.queue.Get()
		if k.String() != "team/ci" {
			t.Errorf("%T: queued %v, want team/ci", obj, k)
		}
		f.c.queue.Done(k)
	}
}
