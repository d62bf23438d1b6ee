package objectcache

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
	k8sfake "k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"

	"github.com/image-registry-operator/image-registry-operator/pkg/apis/registry/v1alpha1"
	"github.com/image-registry-operator/image-registry-operator/pkg/credentials"
	"github.com/image-registry-operator/image-registry-operator/pkg/generated/clientset/versioned/fake"
)

// A Secret or account as the controller writes it is cached compactly, and
// expands to exactly the trimmed typed object.
func TestCompactEntriesExpandToTrimmedObjects(t *testing.T) {
	for _, kind := range []credentials.Kind{credentials.KindPush, credentials.KindPull} {
		o := owner(kind, "team", "ci")
		secret, account := newSecret(t, o), newAccount(o)

		cached := transformed(t, secret)
		if _, ok := cached.(*compactSecret); !ok {
			t.Fatalf("%s: generated Secret cached as %T, want compact", kind, cached)
		}
		want := secret.DeepCopy()
		trimmedTyped(t, want)
		got, ok := expandSecret(cached)
		if !ok || !equality.Semantic.DeepEqual(got, want) {
			t.Errorf("%s: expanded Secret\n%+v\nwant\n%+v", kind, got, want)
		}

		cached = transformed(t, account)
		if _, ok := cached.(*compactAccount); !ok {
			t.Fatalf("%s: account cached as %T, want compact", kind, cached)
		}
		wantAccount := account.DeepCopy()
		trimmedTyped(t, wantAccount)
		gotAccount, ok := expandAccount(cached)
		if !ok || !equality.Semantic.DeepEqual(gotAccount, wantAccount) {
			t.Errorf("%s: expanded account\n%+v\nwant\n%+v", kind, gotAccount, wantAccount)
		}

		// Compacting is idempotent, should an informer ever transform a
		// cached item again.
		if again, _ := Transform(cached); again != cached {
			t.Errorf("%s: a compact entry was transformed again", kind)
		}
	}
}

// credentials.SecretMeta and AccountMeta are the one place that says what
// metadata the operator writes: NewSecret and NewAccount write it, and
// compact entries rebuild it on expansion. A label or annotation added
// there must therefore leave the generated objects compact and come back on
// expansion. This test fails if one is added elsewhere instead (say, to
// NewSecret alone): the object would then be cached typed, and the memory
// saving silently lost.
func TestCredentialsMetadataSurvivesCompaction(t *testing.T) {
	for _, kind := range []credentials.Kind{credentials.KindPush, credentials.KindPull} {
		for _, o := range []credentials.Owner{
			owner(kind, "team", "ci"),
			// Too long for a label value: AccountMeta hashes it.
			owner(kind, "team", strings.Repeat("n", 100)),
		} {
			for _, secretName := range []string{credentials.DefaultSecretName(kind, o.Name), "chosen-name"} {
				s, err := credentials.NewSecret(o, secretName, secretContent(o))
				if err != nil {
					t.Fatal(err)
				}
				cached := transformed(t, s)
				if _, ok := cached.(*compactSecret); !ok {
					t.Errorf("%s %s: the Secret NewSecret renders is cached as %T, want a compact entry; "+
						"is its metadata not exactly credentials.SecretMeta?", kind, secretName, cached)
					continue
				}
				want := s.DeepCopy()
				trimmedTyped(t, want)
				if got, _ := expandSecret(cached); !equality.Semantic.DeepEqual(got, want) {
					t.Errorf("%s %s: expanded Secret\n%+v\nwant\n%+v", kind, secretName, got.ObjectMeta, want.ObjectMeta)
				}
			}

			a := credentials.NewAccount(o, types.NamespacedName{Namespace: regNS, Name: "registry"}, 1, accountHashes)
			cached := transformed(t, a)
			if _, ok := cached.(*compactAccount); !ok {
				t.Errorf("%s %s: the account NewAccount renders is cached as %T, want a compact entry; "+
					"is its metadata not exactly credentials.AccountMeta?", kind, o.Name, cached)
				continue
			}
			want := a.DeepCopy()
			trimmedTyped(t, want)
			if got, _ := expandAccount(cached); !equality.Semantic.DeepEqual(got, want) {
				t.Errorf("%s %s: expanded account\n%+v\nwant\n%+v", kind, o.Name, got.ObjectMeta, want.ObjectMeta)
			}
		}
	}
}

// Whatever an expansion could not reproduce keeps the typed form, so that
// an update starting from the cache keeps others' metadata.
func TestCompactEntriesKeepUnusualObjectsTyped(t *testing.T) {
	o := owner(credentials.KindPull, "team", "ci")
	now := metav1.Now()
	if _, ok := transformed(t, newSecret(t, o)).(*compactSecret); !ok {
		t.Fatal("the unedited Secret is not compacted; the cases below test nothing")
	}
	if _, ok := transformed(t, newAccount(o)).(*compactAccount); !ok {
		t.Fatal("the unedited account is not compacted; the cases below test nothing")
	}
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
		"no rotated-at":      func(s *corev1.Secret) { delete(s.Annotations, v1alpha1.AnnotationRotatedAt) },
		"generateName":       func(s *corev1.Secret) { s.GenerateName = "x-" },
		"deletion grace set": func(s *corev1.Secret) { s.DeletionGracePeriodSeconds = ptr.To[int64](30) },
	}
	for name, edit := range secretCases {
		s := newSecret(t, o)
		edit(s)
		cached := transformed(t, s)
		if _, typed := cached.(*corev1.Secret); !typed {
			t.Errorf("Secret with %s cached as %T, want the typed object", name, cached)
		}
	}
	accountCases := map[string]func(*v1alpha1.ImageRegistryAccount){
		"label of others":      func(a *v1alpha1.ImageRegistryAccount) { a.Labels["team"] = "a" },
		"annotation of others": func(a *v1alpha1.ImageRegistryAccount) { a.Annotations["note"] = "x" },
		"owner does not parse": func(a *v1alpha1.ImageRegistryAccount) { a.Annotations[v1alpha1.AnnotationOwner] = "nonsense" },
		"owner label mismatch": func(a *v1alpha1.ImageRegistryAccount) { a.Labels[v1alpha1.LabelOwnerName] = "other" },
		"finalizer":            func(a *v1alpha1.ImageRegistryAccount) { a.Finalizers = []string{"example.com/keep"} },
		"owner reference": func(a *v1alpha1.ImageRegistryAccount) {
			a.OwnerReferences = []metav1.OwnerReference{{Name: "x"}}
		},
		"being deleted":                func(a *v1alpha1.ImageRegistryAccount) { a.DeletionTimestamp = &now },
		"status":                       func(a *v1alpha1.ImageRegistryAccount) { a.Status.ObservedGeneration = 7 },
		"no owner-uid":                 func(a *v1alpha1.ImageRegistryAccount) { delete(a.Annotations, v1alpha1.AnnotationOwnerUID) },
		"type label of the other kind": func(a *v1alpha1.ImageRegistryAccount) { a.Labels[v1alpha1.LabelType] = string(credentials.KindPush) },
	}
	for name, edit := range accountCases {
		a := newAccount(o)
		edit(a)
		cached := transformed(t, a)
		if _, typed := cached.(*v1alpha1.ImageRegistryAccount); !typed {
			t.Errorf("account with %s cached as %T, want the typed object", name, cached)
		}
	}
}

// The listers read typed and compact entries alike, and event handlers
// find the object behind a compact entry (through meta.Accessor, as the
// controllers' handlers do), on adds and on deletes.
func TestCompactListersAndHandlers(t *testing.T) {
	o := owner(credentials.KindPull, "team", "ci")
	secret, account := newSecret(t, o), newAccount(o)
	// A Secret labelled by someone else stays typed.
	other := newSecret(t, owner(credentials.KindPull, "team", "cd"))
	other.UID, other.Labels["team"] = "uid-other", "a"
	// Not the operator's: the Secret informer does not see it.
	foreign := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "foreign"}}
	kube := k8sfake.NewClientset(secret, other, foreign)
	// Not NewClientset: its field manager has no models of this API's types
	// (see the imagesecret fixture).
	client := fake.NewSimpleClientset(account) //nolint:staticcheck
	// The fake clients' watches do not resume from a resourceVersion: a
	// change made before a watch starts is lost. Note when both started.
	watching := make(chan struct{}, 2)
	for _, c := range []interface {
		PrependWatchReactor(string, k8stesting.WatchReactionFunc)
		Tracker() k8stesting.ObjectTracker
	}{kube, client} {
		c := c
		c.PrependWatchReactor("*", func(action k8stesting.Action) (bool, watch.Interface, error) {
			w, err := c.Tracker().Watch(action.GetResource(), action.GetNamespace())
			if err != nil {
				return false, nil, err
			}
			watching <- struct{}{}
			return true, w, nil
		})
	}
	f := NewFactory(kube, client, metav1.NamespaceAll, 0)
	secrets, accounts := f.Secrets(), f.Accounts()
	added, deleted := make(chan any, 10), make(chan any, 10)
	handler := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { added <- obj },
		DeleteFunc: func(obj any) { deleted <- obj },
	}
	if _, err := secrets.AddEventHandler(handler); err != nil {
		t.Fatal(err)
	}
	if _, err := accounts.AddEventHandler(handler); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	t.Cleanup(func() {
		cancel()
		f.Shutdown()
	})
	f.Start(ctx.Done())
	for typ, ok := range f.WaitForCacheSync(ctx.Done()) {
		if !ok {
			t.Fatalf("%v did not sync", typ)
		}
	}
	if !secrets.HasSynced() || !accounts.HasSynced() {
		t.Fatal("views not synced")
	}
	items := append(secrets.informer.GetIndexer().List(), accounts.informer.GetIndexer().List()...)
	if len(items) != 3 {
		t.Fatalf("cached %d items, want the two Secrets and the account", len(items))
	}
	for _, obj := range items {
		switch c := obj.(type) {
		case *compactSecret, *compactAccount:
		case *corev1.Secret:
			if c.Name != other.Name {
				t.Errorf("the generated Secret is cached typed")
			}
		default:
			t.Errorf("the cache holds %T", obj)
		}
	}

	s, err := secrets.Lister().Secrets("team").Get(secret.Name)
	if err != nil || s.Name != secret.Name || string(s.Data[credentials.KeyPassword]) != string(secret.Data[credentials.KeyPassword]) {
		t.Errorf("Get: %v, %v", s, err)
	}
	if s, err := secrets.Lister().Secrets("team").Get(other.Name); err != nil || s.Labels["team"] != "a" {
		t.Errorf("Get of the typed Secret: %v, %v", s, err)
	}
	if _, err := secrets.Lister().Secrets("team").Get("absent"); !apierrors.IsNotFound(err) {
		t.Errorf("Get of an absent Secret: %v, want NotFound", err)
	}
	if _, err := secrets.Lister().Secrets("team").Get(foreign.Name); !apierrors.IsNotFound(err) {
		t.Errorf("Get of a Secret not labelled managed-by: %v, want NotFound", err)
	}
	managed := labels.SelectorFromSet(labels.Set{v1alpha1.LabelManagedBy: v1alpha1.ManagedByValue})
	if l, err := secrets.Lister().Secrets("team").List(managed); err != nil || len(l) != 2 {
		t.Errorf("List in the namespace: %d, %v", len(l), err)
	}
	if l, err := secrets.Lister().Secrets("team").List(labels.SelectorFromSet(labels.Set{"team": "a"})); err != nil || len(l) != 1 || l[0].Name != other.Name {
		t.Errorf("List by a label of others: %v, %v", l, err)
	}
	if l, err := secrets.Lister().List(managed); err != nil || len(l) != 2 {
		t.Errorf("List in every namespace: %d, %v", len(l), err)
	}
	if l, err := secrets.Lister().Secrets("other").List(labels.Everything()); err != nil || len(l) != 0 {
		t.Errorf("List in another namespace: %d, %v", len(l), err)
	}
	pullAccounts := labels.SelectorFromSet(labels.Set{v1alpha1.LabelManagedBy: v1alpha1.ManagedByValue, v1alpha1.LabelType: string(credentials.KindPull)})
	if l, err := accounts.Lister().List(pullAccounts); err != nil || len(l) != 1 ||
		l[0].Annotations[v1alpha1.AnnotationOwner] != credentials.OwnerKey(credentials.KindPull, "team", "ci") {
		t.Errorf("account List: %v, %v", l, err)
	}
	if l, err := accounts.Lister().List(labels.SelectorFromSet(labels.Set{v1alpha1.LabelType: string(credentials.KindPush)})); err != nil || len(l) != 0 {
		t.Errorf("account List of the other kind: %d, %v", len(l), err)
	}
	if l, err := accounts.Lister().ImageRegistryAccounts(regNS).List(labels.Everything()); err != nil || len(l) != 1 {
		t.Errorf("account List in the registry's namespace: %d, %v", len(l), err)
	}
	if _, err := accounts.Lister().ImageRegistryAccounts(regNS).Get(account.Name); err != nil {
		t.Errorf("account Get: %v", err)
	}

	// What a handler reads of an item: the owner, and the item's key.
	ownerOf := func(obj any) (types.NamespacedName, string) {
		t.Helper()
		key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj)
		if err != nil {
			t.Errorf("key of %T: %v", obj, err)
		}
		if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = d.Obj
		}
		m, err := meta.Accessor(obj)
		if err != nil {
			t.Errorf("meta.Accessor(%T): %v", obj, err)
			return types.NamespacedName{}, key
		}
		if ref := metav1.GetControllerOf(m); ref != nil {
			return types.NamespacedName{Namespace: m.GetNamespace(), Name: ref.Name}, key
		}
		_, ns, name, _ := credentials.ParseOwnerKey(m.GetAnnotations()[v1alpha1.AnnotationOwner])
		return types.NamespacedName{Namespace: ns, Name: name}, key
	}
	want := map[string]types.NamespacedName{
		"team/" + secret.Name:      {Namespace: "team", Name: "ci"},
		"team/" + other.Name:       {Namespace: "team", Name: "cd"},
		regNS + "/" + account.Name: {Namespace: "team", Name: "ci"},
	}
	check := func(what string, obj any) {
		t.Helper()
		got, key := ownerOf(obj)
		if w, ok := want[key]; !ok || got != w {
			t.Errorf("%s %T with key %q: owner %v, want %v", what, obj, key, got, w)
		}
	}
	receive := func(ch chan any) any {
		t.Helper()
		select {
		case obj := <-ch:
			return obj
		case <-time.After(wait.ForeverTestTimeout):
			t.Fatal("no event")
			return nil
		}
	}
	for range 3 {
		obj := receive(added)
		check("added", obj)
		key, err := cache.MetaNamespaceKeyFunc(obj)
		if err != nil {
			t.Fatal(err)
		}
		check("tombstone of", cache.DeletedFinalStateUnknown{Key: key, Obj: obj})
	}

	for range 2 {
		select {
		case <-watching:
		case <-time.After(wait.ForeverTestTimeout):
			t.Fatal("the informers' watches did not start")
		}
	}
	if err := kube.CoreV1().Secrets("team").Delete(ctx, secret.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := client.RegistryV1alpha1().ImageRegistryAccounts(regNS).Delete(ctx, account.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		obj := receive(deleted)
		switch obj.(type) {
		case *compactSecret, *compactAccount:
		default:
			t.Errorf("deleted item is a %T, want the compact entry", obj)
		}
		check("deleted", obj)
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
// entry keeps the name and reproduces the hash.
func TestCompactAccountWithHashedOwnerLabel(t *testing.T) {
	long := strings.Repeat("n", 100)
	a := newAccount(owner(credentials.KindPull, "team", long))
	if a.Labels[v1alpha1.LabelOwnerName] == long || a.Labels[v1alpha1.LabelOwnerName] != credentials.LabelValue(long) {
		t.Fatalf("owner label %q: want the hash of the name", a.Labels[v1alpha1.LabelOwnerName])
	}
	cached := transformed(t, a)
	c, ok := cached.(*compactAccount)
	if !ok {
		t.Fatalf("cached as %T, want a compact entry", cached)
	}
	if c.owner.Name != long {
		t.Errorf("the entry holds owner %q, want the name itself", c.owner.Name)
	}
	want := a.DeepCopy()
	trimmedTyped(t, want)
	if got, _ := expandAccount(cached); !equality.Semantic.DeepEqual(got, want) {
		t.Errorf("expanded account\n%+v\nwant\n%+v", got, want)
	}
}
