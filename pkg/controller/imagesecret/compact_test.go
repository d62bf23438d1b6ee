package imagesecret

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"

	"github.com/image-registry-operator/image-registry-operator/pkg/apis/registry/v1alpha1"
)

// trimmedTyped is what TrimForCache stored before compact entries: the
// typed object, trimmed in place.
func trimmedTyped(t *testing.T, obj metav1.Object) {
	t.Helper()
	if _, err := TrimForCache(obj); err != nil {
		t.Fatal(err)
	}
	obj.SetManagedFields(nil)
	// Listers hand out objects without apiVersion and kind.
	if o, ok := obj.(interface{ GetObjectKind() schema.ObjectKind }); ok {
		o.GetObjectKind().SetGroupVersionKind(schema.GroupVersionKind{})
	}
}

// A Secret or account as the controller writes it is cached compactly, and
// expands to exactly the trimmed typed object.
func TestCompactEntriesExpandToTrimmedObjects(t *testing.T) {
	for _, kind := range []Kind{KindPush, KindPull} {
		f := created(t, kind)
		secret, account := f.secret("team", "ci"), f.account("team", "ci")

		cached, err := TrimForCache(secret.DeepCopy())
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := cached.(*compactSecret); !ok {
			t.Fatalf("%s: generated Secret cached as %T, want compact", kind, cached)
		}
		want := secret.DeepCopy()
		trimmedTyped(t, want)
		got, ok := CachedSecret(cached)
		if !ok || !equality.Semantic.DeepEqual(got, want) {
			t.Errorf("%s: expanded Secret\n%+v\nwant\n%+v", kind, got, want)
		}

		cached, err = TrimForCache(account.DeepCopy())
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := cached.(*compactAccount); !ok {
			t.Fatalf("%s: account cached as %T, want compact", kind, cached)
		}
		wantAccount := account.DeepCopy()
		trimmedTyped(t, wantAccount)
		gotAccount, ok := CachedAccount(cached)
		if !ok || !equality.Semantic.DeepEqual(gotAccount, wantAccount) {
			t.Errorf("%s: expanded account\n%+v\nwant\n%+v", kind, gotAccount, wantAccount)
		}

		// Compacting is idempotent, should an informer ever transform a
		// cached item again.
		if again, _ := TrimForCache(cached); again != cached {
			t.Errorf("%s: a compact entry was transformed again", kind)
		}
	}
}

// Whatever an expansion could not reproduce keeps the typed form, so that
// an update starting from the cache keeps others' metadata.
func TestCompactEntriesKeepUnusualObjectsTyped(t *testing.T) {
	f := created(t, KindPull)
	now := metav1.Now()
	secretCases := map[string]func(*corev1.Secret){
		"label of others":      func(s *corev1.Secret) { s.Labels["team"] = "a" },
		"annotation of others": func(s *corev1.Secret) { s.Annotations["note"] = "x" },
		"second owner": func(s *corev1.Secret) {
			s.OwnerReferences = append(s.OwnerReferences, metav1.OwnerReference{APIVersion: "v1", Kind: "ConfigMap", Name: "c", UID: "u"})
		},
		"owner reference without blockOwnerDeletion": func(s *corev1.Secret) { s.OwnerReferences[0].BlockOwnerDeletion = nil },
		"finalizer":          func(s *corev1.Secret) { s.Finalizers = []string{"example.com/keep"} },
		"being deleted":      func(s *corev1.Secret) { s.DeletionTimestamp = &now },
		"immutable":          func(s *corev1.Secret) { s.Immutable = ptr.To(true) },
		"no rotated-at":      func(s *corev1.Secret) { delete(s.Annotations, AnnotationRotatedAt) },
		"generateName":       func(s *corev1.Secret) { s.GenerateName = "x-" },
		"deletion grace set": func(s *corev1.Secret) { s.DeletionGracePeriodSeconds = ptr.To[int64](30) },
	}
	for name, edit := range secretCases {
		s := f.secret("team", "ci").DeepCopy()
		edit(s)
		cached, err := TrimForCache(s.DeepCopy())
		if err != nil {
			t.Fatal(err)
		}
		if _, typed := cached.(*corev1.Secret); !typed {
			t.Errorf("Secret with %s cached as %T, want the typed object", name, cached)
		}
	}
	accountCases := map[string]func(*v1alpha1.ImageRegistryAccount){
		"label of others":              func(a *v1alpha1.ImageRegistryAccount) { a.Labels["team"] = "a" },
		"annotation of others":         func(a *v1alpha1.ImageRegistryAccount) { a.Annotations["note"] = "x" },
		"owner does not parse":         func(a *v1alpha1.ImageRegistryAccount) { a.Annotations[AnnotationOwner] = "nonsense" },
		"owner label mismatch":         func(a *v1alpha1.ImageRegistryAccount) { a.Labels[LabelOwnerName] = "other" },
		"finalizer":                    func(a *v1alpha1.ImageRegistryAccount) { a.Finalizers = []string{"example.com/keep"} },
		"owner reference":              func(a *v1alpha1.ImageRegistryAccount) { a.OwnerReferences = []metav1.OwnerReference{{Name: "x"}} },
		"being deleted":                func(a *v1alpha1.ImageRegistryAccount) { a.DeletionTimestamp = &now },
		"status":                       func(a *v1alpha1.ImageRegistryAccount) { a.Status.ObservedGeneration = 7 },
		"no owner-uid":                 func(a *v1alpha1.ImageRegistryAccount) { delete(a.Annotations, AnnotationOwnerUID) },
		"type label of the other kind": func(a *v1alpha1.ImageRegistryAccount) { a.Labels[LabelType] = string(KindPush) },
	}
	for name, edit := range accountCases {
		a := f.account("team", "ci").DeepCopy()
		edit(a)
		cached, err := TrimForCache(a.DeepCopy())
		if err != nil {
			t.Fatal(err)
		}
		if _, typed := cached.(*v1alpha1.ImageRegistryAccount); !typed {
			t.Errorf("account with %s cached as %T, want the typed object", name, cached)
		}
	}
}

// The listers read typed and compact entries alike, and the event handlers
// find the object behind a compact entry.
func TestCompactListersAndHandlers(t *testing.T) {
	f := created(t, KindPull)
	f.syncCaches()
	secrets := CompactSecrets(f.kubeInformers.Core().V1().Secrets())
	accounts := CompactAccounts(f.informers.Registry().V1alpha1().ImageRegistryAccounts())
	items := append(secrets.Informer().GetIndexer().List(), accounts.Informer().GetIndexer().List()...)
	if len(items) != 2 {
		t.Fatalf("cached %d items, want the Secret and the account", len(items))
	}
	for _, obj := range items {
		switch obj.(type) {
		case *compactSecret, *compactAccount:
		default:
			t.Errorf("the fixture's cache holds %T, want compact entries", obj)
		}
	}

	secretName := "ci-image-pull-secret"
	s, err := secrets.Lister().Secrets("team").Get(secretName)
	if err != nil || s.Name != secretName || string(s.Data[KeyPassword]) != string(f.secret("team", "ci").Data[KeyPassword]) {
		t.Errorf("Get: %v, %v", s, err)
	}
	if _, err := secrets.Lister().Secrets("team").Get("absent"); !apierrors.IsNotFound(err) {
		t.Errorf("Get of an absent Secret: %v, want NotFound", err)
	}
	managed := labels.SelectorFromSet(labels.Set{v1alpha1.LabelManagedBy: v1alpha1.ManagedByValue})
	if l, err := secrets.Lister().Secrets("team").List(managed); err != nil || len(l) != 1 {
		t.Errorf("List in the namespace: %d, %v", len(l), err)
	}
	if l, err := secrets.Lister().Secrets("other").List(labels.Everything()); err != nil || len(l) != 0 {
		t.Errorf("List in another namespace: %d, %v", len(l), err)
	}
	sel, err := f.c.managedAccountSelector()
	if err != nil {
		t.Fatal(err)
	}
	if l, err := accounts.Lister().List(sel); err != nil || len(l) != 1 || l[0].Annotations[AnnotationOwner] != OwnerKey(KindPull, "team", "ci") {
		t.Errorf("account List: %v, %v", l, err)
	}
	if l, err := accounts.Lister().List(labels.SelectorFromSet(labels.Set{LabelType: string(KindPush)})); err != nil || len(l) != 0 {
		t.Errorf("account List of the other kind: %d, %v", len(l), err)
	}
	if _, err := accounts.Lister().ImageRegistryAccounts(regNS).Get(AccountName(KindPull, "team", "ci")); err != nil {
		t.Errorf("account Get: %v", err)
	}

	for _, obj := range items {
		for _, ev := range []interface{}{obj, cache.DeletedFinalStateUnknown{Key: "k", Obj: obj}} {
			for f.c.queue.Len() > 0 {
				k, _ := f.c.queue.Get()
				f.c.queue.Done(k)
			}
			if _, ok := obj.(*compactSecret); ok {
				f.c.handleSecret(ev)
			} else {
				f.c.handleAccount(ev)
			}
			if f.c.queue.Len() != 1 {
				t.Errorf("handler for %T enqueued %d items, want the owner", ev, f.c.queue.Len())
				continue
			}
			k, _ := f.c.queue.Get()
			f.c.queue.Done(k)
			if k != cache.NewObjectName("team", "ci") {
				t.Errorf("handler for %T enqueued %v", ev, k)
			}
		}
	}
	for _, obj := range items {
		if key, err := cache.MetaNamespaceKeyFunc(obj); err != nil || key == "" {
			t.Errorf("key of %T: %q, %v", obj, key, err)
		}
	}
}

func TestCompactUID(t *testing.T) {
	for _, u := range []types.UID{
		"0b7f3c2e-1d4a-4f6b-9c8d-00000000002a", // as the API server makes them
		"0B7F3C2E-1D4A-4F6B-9C8D-00000000002A", // kept as it is: it would not format back
		"00000000-0000-0000-0000-000000000000",
		"uid-team-ci",
		"0b7f3c2e-1d4a-4f6b-9c8d-00000000002x",
		"",
	} {
		c := newCompactUID(u)
		if got := c.uid(); got != u {
			t.Errorf("%q came back as %q", u, got)
		}
		if packed := c.uuid != [16]byte{}; packed != (u == "0b7f3c2e-1d4a-4f6b-9c8d-00000000002a") {
			t.Errorf("%q: packed into 16 bytes = %v", u, packed)
		}
	}
}

// Owner names too long for a label value are labelled with a hash; the
// entry reproduces the hash.
func TestCompactAccountWithHashedOwnerLabel(t *testing.T) {
	f := created(t, KindPull)
	a := f.account("team", "ci").DeepCopy()
	long := strings.Repeat("n", 100)
	a.Annotations[AnnotationOwner] = OwnerKey(KindPull, "team", long)
	a.Labels[LabelOwnerName] = labelValue(long)
	if a.Labels[LabelOwnerName] == long {
		t.Fatal("the test name is a valid label value")
	}
	cached, err := TrimForCache(a.DeepCopy())
	if err != nil {
		t.Fatal(err)
	}
	c, ok := cached.(*compactAccount)
	if !ok || c.plainLabels {
		t.Fatalf("cached as %T (plain labels %v), want a compact entry with hashed labels", cached, ok && c.plainLabels)
	}
	want := a.DeepCopy()
	trimmedTyped(t, want)
	if got, _ := CachedAccount(cached); !equality.Semantic.DeepEqual(got, want) {
		t.Errorf("expanded account\n%+v\nwant\n%+v", got, want)
	}
}
