package objectcache

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	kubeinformers "k8s.io/client-go/informers"
	k8sfake "k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/cache"

	"github.com/image-registry-operator/image-registry-operator/pkg/apis/registry/v1alpha1"
	"github.com/image-registry-operator/image-registry-operator/pkg/credentials"
	"github.com/image-registry-operator/image-registry-operator/pkg/generated/clientset/versioned/fake"
	informers "github.com/image-registry-operator/image-registry-operator/pkg/generated/informers/externalversions"
)

// ownWrites drives a view through the life of one of the caller's writes.
// The informers never run: the test fills their indexers itself, so the
// views' event handlers never tell the MutationCache that the informer has
// caught up, and what is read depends on the resourceVersion comparison in
// its GetByKey alone.
type ownWrites[T runtime.Object] struct {
	informer cache.SharedIndexInformer
	wrote    func(T)
	get      func() (T, error)
	list     func(namespace string) ([]T, error) // nil: the view cannot list
	expand   func(any) (T, bool)
	// at returns the object at resourceVersion rv, told apart from other
	// versions by mark (in reality the same version has the same content;
	// the marks show which copy a read returned).
	at func(rv, mark string) T
}

func (w ownWrites[T]) run(t *testing.T, namespace string) {
	t.Helper()
	indexer := w.informer.GetIndexer()
	// want is what a lister hands out for obj: its cached form, expanded.
	want := func(obj T) T {
		t.Helper()
		e, ok := w.expand(transformed(t, obj))
		if !ok {
			t.Fatalf("%T does not expand", obj)
		}
		return e
	}
	check := func(what string, obj T) {
		t.Helper()
		got, err := w.get()
		if err != nil || !equality.Semantic.DeepEqual(got, want(obj)) {
			t.Errorf("%s: Get returned\n%+v, %v\nwant\n%+v", what, got, err, want(obj))
		}
		if w.list == nil {
			return
		}
		l, err := w.list(namespace)
		if err != nil || len(l) != 1 || !equality.Semantic.DeepEqual(l[0], want(obj)) {
			t.Errorf("%s: List in the namespace returned %+v, %v; want\n%+v", what, l, err, want(obj))
		}
	}
	store := func(obj T) {
		t.Helper()
		if err := indexer.Update(transformed(t, obj)); err != nil {
			t.Fatal(err)
		}
	}

	// The informer holds the object; the caller updates it.
	created := w.at("10", "created")
	store(created)
	check("informer holds the object", created)
	// The informer holds an older version than the caller's update.
	updated := w.at("12", "updated")
	kept := updated.DeepCopyObject()
	w.wrote(updated)
	if !equality.Semantic.DeepEqual(updated, kept) {
		t.Error("Wrote changed the caller's object")
	}
	check("own update, informer older", updated)
	store(w.at("11", "someone else's update"))
	check("own update, informer still older", updated)
	if w.list != nil {
		if l, err := w.list(metav1.NamespaceAll); err != nil || len(l) != 1 || !equality.Semantic.DeepEqual(l[0], want(w.at("11", "someone else's update"))) {
			t.Errorf("List in every namespace reads the informer alone: %+v, %v", l, err)
		}
	}

	// The informer as new as the update: its copy wins.
	atUpdate := w.at("12", "the informer's copy of the update")
	store(atUpdate)
	check("informer at the update's version", atUpdate)

	// An older write recorded later never hides the informer's newer copy.
	w.wrote(w.at("11", "late"))
	check("own write older than the informer", atUpdate)

	// Another own update, and the informer then newer than it.
	again := w.at("13", "updated again")
	w.wrote(again)
	check("second own update, informer older", again)
	newer := w.at("14", "newer")
	store(newer)
	check("informer newer than the own write", newer)
}

// Secrets and Accounts read the caller's own writes (Wrote) while the
// informer holds an older resourceVersion, and the informer's copy once it
// is as new or newer.
func TestListersReadOwnWrites(t *testing.T) {
	t.Run("Secrets", func(t *testing.T) {
		inf := kubeinformers.NewSharedInformerFactory(k8sfake.NewClientset(), 0).Core().V1().Secrets()
		secrets, err := NewSecrets(inf)
		if err != nil {
			t.Fatal(err)
		}
		base := newSecret(t, owner(credentials.KindPull, "team", "ci"))
		ownWrites[*corev1.Secret]{
			informer: inf.Informer(),
			wrote:    secrets.Wrote,
			get:      func() (*corev1.Secret, error) { return secrets.Lister().Secrets("team").Get(base.Name) },
			list: func(ns string) ([]*corev1.Secret, error) {
				if ns == metav1.NamespaceAll {
					return secrets.Lister().List(labels.Everything())
				}
				return secrets.Lister().Secrets(ns).List(labels.Everything())
			},
			expand: expandSecret,
			at:     func(rv, mark string) *corev1.Secret { return withVersion(base, rv, mark) },
		}.run(t, "team")
	})

	t.Run("Accounts", func(t *testing.T) {
		inf := informers.NewSharedInformerFactory(fake.NewSimpleClientset(), 0).Registry().V1alpha1().ImageRegistryAccounts() //nolint:staticcheck // see TestCompactListersAndHandlers
		accounts, err := NewAccounts(inf)
		if err != nil {
			t.Fatal(err)
		}
		base := newAccount(owner(credentials.KindPush, "team", "ci"))
		ownWrites[*v1alpha1.ImageRegistryAccount]{
			informer: inf.Informer(),
			wrote:    accounts.Wrote,
			get: func() (*v1alpha1.ImageRegistryAccount, error) {
				return accounts.Lister().ImageRegistryAccounts(regNS).Get(base.Name)
			},
			list: func(ns string) ([]*v1alpha1.ImageRegistryAccount, error) {
				if ns == metav1.NamespaceAll {
					return accounts.Lister().List(labels.Everything())
				}
				return accounts.Lister().ImageRegistryAccounts(ns).List(labels.Everything())
			},
			expand: expandAccount,
			at: func(rv, mark string) *v1alpha1.ImageRegistryAccount {
				return accountWithVersion(base, rv, mark)
			},
		}.run(t, regNS)
	})

	t.Run("Objects", func(t *testing.T) {
		inf := informers.NewSharedInformerFactory(fake.NewSimpleClientset(), 0).Registry().V1alpha1().ImagePullSecrets() //nolint:staticcheck // see TestCompactListersAndHandlers
		objects, err := NewObjects[*v1alpha1.ImagePullSecret](inf.Informer(), "imagepullsecrets")
		if err != nil {
			t.Fatal(err)
		}
		ownWrites[*v1alpha1.ImagePullSecret]{
			informer: inf.Informer(),
			wrote:    objects.Wrote,
			get:      func() (*v1alpha1.ImagePullSecret, error) { return objects.Get("team", "ci") },
			expand: func(obj any) (*v1alpha1.ImagePullSecret, bool) {
				o, ok := obj.(*v1alpha1.ImagePullSecret)
				return o, ok
			},
			at: func(rv, mark string) *v1alpha1.ImagePullSecret {
				return &v1alpha1.ImagePullSecret{
					ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "ci", UID: "uid-team-ci", ResourceVersion: rv},
					Status:     v1alpha1.ImageSecretStatus{SecretName: mark},
				}
			},
		}.run(t, "team")
	})
}

// A create the informer has not seen yet is read back (IncludeAdds) until
// the informer catches up: by Get as often as the controller asks, and by
// List in the namespace.
func TestListersReadOwnCreates(t *testing.T) {
	inf := kubeinformers.NewSharedInformerFactory(k8sfake.NewClientset(), 0).Core().V1().Secrets()
	secrets, err := NewSecrets(inf)
	if err != nil {
		t.Fatal(err)
	}
	created := newSecret(t, owner(credentials.KindPull, "team", "ci"))
	lister := secrets.Lister().Secrets("team")
	if _, err := lister.Get(created.Name); !apierrors.IsNotFound(err) {
		t.Fatalf("Get before the create: %v, want NotFound", err)
	}
	secrets.Wrote(created)
	want, _ := expandSecret(transformed(t, created))
	for i := range 3 {
		if got, err := lister.Get(created.Name); err != nil || !equality.Semantic.DeepEqual(got, want) {
			t.Errorf("Get %d after the create: %v, %v", i+1, got, err)
		}
		if l, err := lister.List(labels.Everything()); err != nil || len(l) != 1 || !equality.Semantic.DeepEqual(l[0], want) {
			t.Errorf("List %d after the create: %v, %v", i+1, l, err)
		}
	}
	// The informer catches up with a newer version.
	newer := withVersion(created, "11", "newer")
	if err := inf.Informer().GetIndexer().Add(transformed(t, newer)); err != nil {
		t.Fatal(err)
	}
	want, _ = expandSecret(transformed(t, newer))
	if got, err := lister.Get(created.Name); err != nil || !equality.Semantic.DeepEqual(got, want) {
		t.Errorf("Get after the informer caught up: %v, %v", got, err)
	}
}
