package imagesecret

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	kubeinformers "k8s.io/client-go/informers"
	k8sfake "k8s.io/client-go/kubernetes/fake"
	core "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	testingclock "k8s.io/utils/clock/testing"

	"github.com/image-registry-operator/image-registry-operator/pkg/apis/registry/v1alpha1"
	"github.com/image-registry-operator/image-registry-operator/pkg/controller/internal/fakeactions"
	"github.com/image-registry-operator/image-registry-operator/pkg/credentials"
	"github.com/image-registry-operator/image-registry-operator/pkg/generated/clientset/versioned/fake"
	informers "github.com/image-registry-operator/image-registry-operator/pkg/generated/informers/externalversions"
	"github.com/image-registry-operator/image-registry-operator/pkg/objectcache"
)

var (
	t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

	gvrPush     = v1alpha1.SchemeGroupVersion.WithResource("imagepushsecrets")
	gvrPull     = v1alpha1.SchemeGroupVersion.WithResource("imagepullsecrets")
	gvrRegistry = v1alpha1.SchemeGroupVersion.WithResource("imageregistries")
	gvrAccount  = v1alpha1.SchemeGroupVersion.WithResource("imageregistryaccounts")
	gvrSecret   = corev1.SchemeGroupVersion.WithResource("secrets")
)

const (
	regNS   = "infra"
	regName = "registry"
	regHost = "registry.infra.svc.cluster.local"
	regCA   = "-----BEGIN CERTIFICATE-----\nMIIfake\n-----END CERTIFICATE-----\n"
)

type fixture struct {
	t        *testing.T
	kind     credentials.Kind
	kube     *k8sfake.Clientset
	client   *fake.Clientset
	clock    *testingclock.FakeClock
	recorder *record.FakeRecorder
	c        *Controller

	kubeInformers kubeinformers.SharedInformerFactory
	informers     informers.SharedInformerFactory

	mu         sync.Mutex
	writes     int   // API writes so far (create, update, delete, patch)
	failAt     int   // the write with this number fails; 0: none
	rv         int64 // the last resourceVersion handed out
	violations []string
	secretPuts int      // Secret writes checked against invariant 1
	log        []string // actions of both clients in the order they happened
}

func registry(ns, name string, ready bool) *v1alpha1.ImageRegistry {
	r := &v1alpha1.ImageRegistry{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID("reg-" + name)},
		Status:     v1alpha1.ImageRegistryStatus{Hostname: name + "." + ns + ".svc.cluster.local", CA: regCA},
	}
	status := metav1.ConditionFalse
	if ready {
		status = metav1.ConditionTrue
	}
	r.Status.Conditions = []metav1.Condition{{Type: v1alpha1.ConditionReady, Status: status, Reason: "Test"}}
	return r
}

// newObject returns a push or pull object referring to infra/registry.
func newObject(kind credentials.Kind, ns, name string) runtime.Object {
	meta := metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID("uid-" + ns + "-" + name), Generation: 1}
	spec := v1alpha1.ImageSecretSpec{RegistryRef: &v1alpha1.RegistryRef{Name: regName, Namespace: regNS}}
	if kind == credentials.KindPull {
		return &v1alpha1.ImagePullSecret{ObjectMeta: meta, Spec: v1alpha1.ImagePullSecretSpec{ImageSecretSpec: spec}}
	}
	return &v1alpha1.ImagePushSecret{ObjectMeta: meta, Spec: spec}
}

func newFixture(t *testing.T, kind credentials.Kind, objects ...runtime.Object) *fixture {
	t.Helper()
	var kubeObjects, registryObjects []runtime.Object
	for _, o := range objects {
		if _, ok := o.(*corev1.Secret); ok {
			kubeObjects = append(kubeObjects, o)
		} else {
			registryObjects = append(registryObjects, o)
		}
	}
	for i, o := range objects {
		m, err := meta.Accessor(o)
		if err != nil {
			t.Fatal(err)
		}
		m.SetResourceVersion(strconv.Itoa(i + 1))
	}
	f := &fixture{
		t:        t,
		rv:       int64(len(objects)),
		kind:     kind,
		kube:     k8sfake.NewClientset(kubeObjects...),
		client:   fake.NewClientset(registryObjects...),
		clock:    testingclock.NewFakeClock(t0),
		recorder: record.NewFakeRecorder(1000),
	}
	f.kubeInformers = kubeinformers.NewSharedInformerFactory(f.kube, 0)
	f.informers = informers.NewSharedInformerFactory(f.client, 0)
	inf, access := f.views()
	c, err := newController(context.Background(), f.kube, f.client, inf, access,
		Options{BcryptCost: bcrypt.MinCost, Clock: f.clock, DefaultRegistry: types.NamespacedName{Namespace: regNS, Name: regName}},
		f.recorder)
	if err != nil {
		t.Fatal(err)
	}
	c.randRead = rand.Reader
	f.c = c
	t.Cleanup(c.queue.ShutDown)

	f.kube.PrependReactor("*", "*", apiServerWrites(f.kube.Tracker(), f.nextRV))
	f.client.PrependReactor("*", "*", apiServerWrites(f.client.Tracker(), f.nextRV))

	// Invariant 1 is checked on every Secret write of every test: the
	// passwords written must verify against what the status and the account
	// publish at that moment.
	checkSecretWrite := func(action core.Action) (bool, runtime.Object, error) {
		var s *corev1.Secret
		switch a := action.(type) {
		case core.CreateAction:
			s = a.GetObject().(*corev1.Secret)
		case core.UpdateAction:
			s = a.GetObject().(*corev1.Secret)
		}
		if s != nil {
			f.mu.Lock()
			f.secretPuts++
			if msg := f.secretPublished(s); msg != "" {
				f.violations = append(f.violations, msg)
			}
			f.mu.Unlock()
		}
		return false, nil, nil
	}
	f.kube.PrependReactor("create", "secrets", checkSecretWrite)
	f.kube.PrependReactor("update", "secrets", checkSecretWrite)
	// Crash injection: the failAt-th write of either client fails.
	failer := func(action core.Action) (bool, runtime.Object, error) {
		switch action.GetVerb() {
		case "create", "update", "delete", "patch":
		default:
			return false, nil, nil
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		f.writes++
		if f.writes == f.failAt {
			return true, nil, errors.New("injected failure")
		}
		return false, nil, nil
	}
	f.kube.PrependReactor("*", "*", failer)
	f.client.PrependReactor("*", "*", failer)
	logger := func(a core.Action) (bool, runtime.Object, error) {
		if a.GetVerb() == "list" || a.GetVerb() == "watch" {
			return false, nil, nil
		}
		s := fakeactions.String(a)
		f.mu.Lock()
		f.log = append(f.log, s)
		f.mu.Unlock()
		return false, nil, nil
	}
	f.kube.PrependReactor("*", "*", logger)
	f.client.PrependReactor("*", "*", logger)
	t.Cleanup(func() {
		if len(f.violations) > 0 {
			t.Errorf("invariant 1 violated:\n%s", strings.Join(f.violations, "\n"))
		}
	})
	return f
}

// apiServerWrites makes a fake client's creates and updates behave like the API
// server's where the controller relies on it: every write gets a new
// resourceVersion, and an update carrying a resourceVersion other than the
// stored one fails with Conflict. (The trackers alone keep versions to
// themselves and accept any update.)
func apiServerWrites(tracker core.ObjectTracker, nextRV func() string) core.ReactionFunc {
	return func(action core.Action) (bool, runtime.Object, error) {
		gvr, ns := action.GetResource(), action.GetNamespace()
		if pa, ok := action.(core.PatchAction); ok {
			return mergePatch(tracker, nextRV, gvr, ns, pa)
		}
		// Create and update actions have the same method set: tell them
		// apart by verb.
		a, ok := action.(core.CreateAction)
		if !ok {
			return false, nil, nil
		}
		switch action.GetVerb() {
		case "create":
			obj := a.GetObject().DeepCopyObject()
			m, err := meta.Accessor(obj)
			if err != nil {
				return true, nil, err
			}
			m.SetResourceVersion(nextRV())
			if err := tracker.Create(gvr, obj, ns); err != nil {
				return true, nil, err
			}
			return true, obj.DeepCopyObject(), nil
		case "update":
			obj := a.GetObject().DeepCopyObject()
			m, err := meta.Accessor(obj)
			if err != nil {
				return true, nil, err
			}
			stored, err := tracker.Get(gvr, ns, m.GetName())
			if err != nil {
				return true, nil, err
			}
			sm, err := meta.Accessor(stored)
			if err != nil {
				return true, nil, err
			}
			if rv := m.GetResourceVersion(); rv != "" && rv != sm.GetResourceVersion() {
				return true, nil, apierrors.NewConflict(gvr.GroupResource(), m.GetName(),
					fmt.Errorf("resourceVersion %s, stored %s", rv, sm.GetResourceVersion()))
			}
			m.SetResourceVersion(nextRV())
			if err := tracker.Update(gvr, obj, ns); err != nil {
				return true, nil, err
			}
			return true, obj.DeepCopyObject(), nil
		}
		return false, nil, nil
	}
}

// mergePatch applies JSON merge patches as the API server does: a
// resourceVersion in the patch is a precondition.
func mergePatch(tracker core.ObjectTracker, nextRV func() string, gvr schema.GroupVersionResource, ns string, pa core.PatchAction) (bool, runtime.Object, error) {
	if pa.GetPatchType() != types.MergePatchType {
		return false, nil, nil
	}
	stored, err := tracker.Get(gvr, ns, pa.GetName())
	if err != nil {
		return true, nil, err
	}
	original, err := json.Marshal(stored)
	if err != nil {
		return true, nil, err
	}
	merged, err := jsonpatch.MergePatch(original, pa.GetPatch())
	if err != nil {
		return true, nil, apierrors.NewBadRequest(err.Error())
	}
	obj := reflect.New(reflect.TypeOf(stored).Elem()).Interface().(runtime.Object)
	if err := json.Unmarshal(merged, obj); err != nil {
		return true, nil, err
	}
	m, err := meta.Accessor(obj)
	if err != nil {
		return true, nil, err
	}
	sm, err := meta.Accessor(stored)
	if err != nil {
		return true, nil, err
	}
	if m.GetResourceVersion() != sm.GetResourceVersion() {
		return true, nil, apierrors.NewConflict(gvr.GroupResource(), m.GetName(),
			fmt.Errorf("resourceVersion %s, stored %s", m.GetResourceVersion(), sm.GetResourceVersion()))
	}
	m.SetResourceVersion(nextRV())
	if err := tracker.Update(gvr, obj, ns); err != nil {
		return true, nil, err
	}
	return true, obj.DeepCopyObject(), nil
}

func (f *fixture) nextRV() string {
	return strconv.FormatInt(atomic.AddInt64(&f.rv, 1), 10)
}

// edit stores obj as someone else's write would: with a new resourceVersion.
func (f *fixture) edit(tracker core.ObjectTracker, gvr schema.GroupVersionResource, obj runtime.Object, ns string) {
	f.t.Helper()
	m, err := meta.Accessor(obj)
	if err != nil {
		f.t.Fatal(err)
	}
	m.SetResourceVersion(f.nextRV())
	if err := tracker.Update(gvr, obj, ns); err != nil {
		f.t.Fatal(err)
	}
}

// secretPublished explains why a Secret about to be written carries a
// password not published in the status and the account ("" if it does not).
// It reads the trackers directly: reactors run under the clients' locks.
func (f *fixture) secretPublished(s *corev1.Secret) string {
	ref := metav1.GetControllerOf(s)
	if ref == nil {
		return fmt.Sprintf("Secret %s has no controller", s.Name)
	}
	cr, err := f.trackerObject(s.Namespace, ref.Name)
	if err != nil {
		return fmt.Sprintf("Secret %s written without its object: %v", s.Name, err)
	}
	acc, err := f.trackerAccount(cr)
	if err != nil {
		return fmt.Sprintf("Secret %s written before its account exists: %v", s.Name, err)
	}
	user := string(s.Data[credentials.KeyUsername])
	next, err := bumpRotation(user)
	if err != nil {
		return err.Error()
	}
	for _, c := range []struct{ user, password string }{{user, string(s.Data[credentials.KeyPassword])}, {next, string(s.Data[credentials.KeyNextPassword])}} {
		if !statusAccepts(cr.status, c.user, c.password) {
			return fmt.Sprintf("Secret %s: a password for %s is not published in the status", s.Name, c.user)
		}
		if !accountAccepts(acc, c.user, c.password) {
			return fmt.Sprintf("Secret %s: a password for %s is not published in the account", s.Name, c.user)
		}
	}
	return ""
}

func bumpRotation(user string) (string, error) {
	i := strings.LastIndex(user, "/")
	r, err := strconv.ParseInt(user[i+1:], 10, 64)
	if i < 0 || err != nil {
		return "", fmt.Errorf("bad username %q", user)
	}
	return fmt.Sprintf("%s/%d", user[:i], r+1), nil
}

// checkLogin is the authenticator's rule: a login <username>/<r> checks the
// hash at index len-1-(rotation+1-r).
func checkLogin(base string, rotation int64, hashes []string, user, password string) bool {
	i := strings.LastIndex(user, "/")
	if i < 0 || user[:i] != base {
		return false
	}
	r, err := strconv.ParseInt(user[i+1:], 10, 64)
	if err != nil {
		return false
	}
	idx := int64(len(hashes)) - 1 - (rotation + 1 - r)
	if idx < 0 || idx >= int64(len(hashes)) {
		return false
	}
	return bcryptMatches(hashes[idx], password)
}

// bcryptMatches memoizes comparisons: the tests compare the same pairs
// after every step, and -race makes bcrypt slow.
var (
	bcryptMu    sync.Mutex
	bcryptCache = map[[2]string]bool{}
)

func bcryptMatches(hash, password string) bool {
	k := [2]string{hash, password}
	bcryptMu.Lock()
	ok, found := bcryptCache[k]
	bcryptMu.Unlock()
	if found {
		return ok
	}
	ok = bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)) == nil
	bcryptMu.Lock()
	bcryptCache[k] = ok
	bcryptMu.Unlock()
	return ok
}

func accountAccepts(a *v1alpha1.ImageRegistryAccount, user, password string) bool {
	if a == nil || a.Spec.Rotation == nil {
		return false
	}
	return checkLogin(a.Spec.Username, *a.Spec.Rotation, a.Spec.Passwords, user, password)
}

func statusAccepts(st *v1alpha1.ImageSecretStatus, user, password string) bool {
	i := strings.LastIndex(user, "/")
	if i < 0 {
		return false
	}
	return checkLogin(user[:i], st.Rotation, st.Passwords, user, password)
}

func (f *fixture) gvr() schema.GroupVersionResource {
	if f.kind == credentials.KindPull {
		return gvrPull
	}
	return gvrPush
}

func wrap(o runtime.Object) *imageSecret {
	switch t := o.(type) {
	case *v1alpha1.ImagePushSecret:
		return wrapPush(t.DeepCopy())
	case *v1alpha1.ImagePullSecret:
		return wrapPull(t.DeepCopy())
	}
	panic(fmt.Sprintf("unexpected %T", o))
}

func (f *fixture) trackerObject(ns, name string) (*imageSecret, error) {
	o, err := f.client.Tracker().Get(f.gvr(), ns, name)
	if err != nil {
		return nil, err
	}
	return wrap(o), nil
}

func (f *fixture) trackerAccount(cr *imageSecret) (*v1alpha1.ImageRegistryAccount, error) {
	o, err := f.client.Tracker().Get(gvrAccount, regNS, credentials.AccountName(f.kind, cr.meta.Namespace, cr.meta.Name))
	if err != nil {
		return nil, err
	}
	return o.(*v1alpha1.ImageRegistryAccount), nil
}

// object, secret and account read the current state (nil if absent).
func (f *fixture) object(ns, name string) *imageSecret {
	cr, err := f.trackerObject(ns, name)
	if err != nil {
		return nil
	}
	return cr
}

func (f *fixture) secret(ns, name string) *corev1.Secret {
	o, err := f.kube.Tracker().Get(gvrSecret, ns, credentials.DefaultSecretName(f.kind, name))
	if err != nil {
		return nil
	}
	return o.(*corev1.Secret)
}

func (f *fixture) account(ns, name string) *v1alpha1.ImageRegistryAccount {
	o, err := f.client.Tracker().Get(gvrAccount, regNS, credentials.AccountName(f.kind, ns, name))
	if err != nil {
		return nil
	}
	return o.(*v1alpha1.ImageRegistryAccount)
}

// syncCaches plays the informers: the indexers get the trackers' content,
// Secrets filtered by the managed-by label as the operator's informer is.
func (f *fixture) syncCaches() {
	f.t.Helper()
	ctx := context.Background()
	replace := func(inf cache.SharedIndexInformer, list runtime.Object, err error) {
		if err != nil {
			f.t.Fatal(err)
		}
		var items []interface{}
		switch l := list.(type) {
		case *corev1.SecretList:
			for i := range l.Items {
				if l.Items[i].Labels[v1alpha1.LabelManagedBy] == v1alpha1.ManagedByValue {
					items = append(items, &l.Items[i])
				}
			}
		case *v1alpha1.ImagePushSecretList:
			for i := range l.Items {
				items = append(items, &l.Items[i])
			}
		case *v1alpha1.ImagePullSecretList:
			for i := range l.Items {
				items = append(items, &l.Items[i])
			}
		case *v1alpha1.ImageRegistryList:
			for i := range l.Items {
				items = append(items, &l.Items[i])
			}
		case *v1alpha1.ImageRegistryAccountList:
			for i := range l.Items {
				items = append(items, &l.Items[i])
			}
		case *corev1.ServiceAccountList:
			for i := range l.Items {
				items = append(items, &l.Items[i])
			}
		}
		// Trimmed (and compacted) as the operator's informers store them.
		cached := make([]interface{}, len(items))
		for i := range items {
			var err error
			if cached[i], err = objectcache.Transform(items[i]); err != nil {
				f.t.Fatal(err)
			}
		}
		if err := inf.GetIndexer().Replace(cached, ""); err != nil {
			f.t.Fatal(err)
		}
	}
	v := f.informers.Registry().V1alpha1()
	r := f.client.RegistryV1alpha1()
	l, err := f.kube.CoreV1().Secrets("").List(ctx, metav1.ListOptions{})
	replace(f.kubeInformers.Core().V1().Secrets().Informer(), l, err)
	l2, err := r.ImagePushSecrets("").List(ctx, metav1.ListOptions{})
	replace(v.ImagePushSecrets().Informer(), l2, err)
	l3, err := r.ImagePullSecrets("").List(ctx, metav1.ListOptions{})
	replace(v.ImagePullSecrets().Informer(), l3, err)
	l4, err := r.ImageRegistries("").List(ctx, metav1.ListOptions{})
	replace(v.ImageRegistries().Informer(), l4, err)
	l5, err := r.ImageRegistryAccounts("").List(ctx, metav1.ListOptions{})
	replace(v.ImageRegistryAccounts().Informer(), l5, err)
	l6, err := f.kube.CoreV1().ServiceAccounts("").List(ctx, metav1.ListOptions{})
	replace(f.kubeInformers.Core().V1().ServiceAccounts().Informer(), l6, err)
}

// views wraps the fixture's informers as the operator does.
func (f *fixture) views() (Informers, objectAccess) {
	f.t.Helper()
	v := f.informers.Registry().V1alpha1()
	var objects objectAccess = newPushAccess(f.client, v.ImagePushSecrets())
	if f.kind == credentials.KindPull {
		objects = newPullAccess(f.client, v.ImagePullSecrets())
	}
	inf := Informers{
		Secrets:    objectcache.NewSecrets(f.kubeInformers.Core().V1().Secrets()),
		Accounts:   objectcache.NewAccounts(v.ImageRegistryAccounts()),
		Registries: v.ImageRegistries(),
	}
	if f.kind == credentials.KindPull {
		inf.ServiceAccounts = f.kubeInformers.Core().V1().ServiceAccounts()
	}
	return inf, objects
}

// sync runs one sync of ns/name on fresh caches and returns its error; the
// actions it took are then in actions(). Like the API server, it deletes an
// object being deleted once its last finalizer is gone.
func (f *fixture) sync(ns, name string) error {
	f.t.Helper()
	f.syncCaches()
	f.clearActions()
	err := f.c.syncHandler(context.Background(), cache.NewObjectName(ns, name))
	if cr := f.object(ns, name); cr != nil && cr.meta.DeletionTimestamp != nil && len(cr.meta.Finalizers) == 0 {
		if err := f.client.Tracker().Delete(f.gvr(), ns, name); err != nil {
			f.t.Fatal(err)
		}
	}
	return err
}

func (f *fixture) mustSync(ns, name string) {
	f.t.Helper()
	if err := f.sync(ns, name); err != nil {
		f.t.Fatalf("sync %s/%s: %v", ns, name, err)
	}
}

// actions lists what happened since clearActions as "verb
// resource[/subresource] namespace/name" (actionString), across both
// clients in the order they happened. List and watch are left out, as in the
// imageregistry fixture: the controller reads collections only through its
// informers.
func (f *fixture) actions() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.log...)
}

func (f *fixture) clearActions() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.log = nil
}

// writeActions are actions() without reads.
func (f *fixture) writeActions() []string {
	var out []string
	for _, a := range f.actions() {
		if !strings.HasPrefix(a, "get ") {
			out = append(out, a)
		}
	}
	return out
}

func (f *fixture) expectActions(want ...string) {
	f.t.Helper()
	got := f.actions()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		f.t.Errorf("actions:\n got  %q\n want %q", got, want)
	}
}

// events drains the recorded events.
func (f *fixture) events() []string {
	var out []string
	for {
		select {
		case e := <-f.recorder.Events:
			out = append(out, e)
		default:
			return out
		}
	}
}

func (f *fixture) expectEvents(want ...string) {
	f.t.Helper()
	got := f.events()
	if len(got) != len(want) {
		f.t.Errorf("events: got %q, want prefixes %q", got, want)
		return
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			f.t.Errorf("event %d: got %q, want prefix %q", i, got[i], want[i])
		}
	}
}

// updateObject changes the object in the API.
func (f *fixture) updateObject(ns, name string, mutate func(*imageSecret)) {
	f.t.Helper()
	cr := f.object(ns, name)
	mutate(cr)
	f.edit(f.client.Tracker(), f.gvr(), cr.obj, ns)
}

// assertSecretWorks checks that the Secret's current password and next
// password log in against both the status and the account.
func (f *fixture) assertSecretWorks(ns, name string) {
	f.t.Helper()
	s, cr, acc := f.secret(ns, name), f.object(ns, name), f.account(ns, name)
	if s == nil || cr == nil {
		f.t.Fatalf("Secret or object missing")
	}
	user := string(s.Data[credentials.KeyUsername])
	next, err := bumpRotation(user)
	if err != nil {
		f.t.Fatal(err)
	}
	if !statusAccepts(cr.status, user, string(s.Data[credentials.KeyPassword])) || !accountAccepts(acc, user, string(s.Data[credentials.KeyPassword])) {
		f.t.Errorf("the Secret's password for %s does not log in (status %v, account %v)", user,
			statusAccepts(cr.status, user, string(s.Data[credentials.KeyPassword])), accountAccepts(acc, user, string(s.Data[credentials.KeyPassword])))
	}
	if !statusAccepts(cr.status, next, string(s.Data[credentials.KeyNextPassword])) || !accountAccepts(acc, next, string(s.Data[credentials.KeyNextPassword])) {
		f.t.Errorf("the Secret's next password for %s does not log in", next)
	}
}

// created sets up an object whose credentials were issued.
func created(t *testing.T, kind credentials.Kind) *fixture {
	t.Helper()
	f := newFixture(t, kind, registry(regNS, regName, true), newObject(kind, "team", "ci"))
	f.mustSync("team", "ci")
	f.events()
	return f
}

func cacheName(ns, name string) cache.ObjectName { return cache.NewObjectName(ns, name) }
