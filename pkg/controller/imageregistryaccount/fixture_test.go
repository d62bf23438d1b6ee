package imageregistryaccount

import (
	"context"
	"sort"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	k8sfake "k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2/ktesting"
	testingclock "k8s.io/utils/clock/testing"

	"github.com/image-registry-operator/image-registry-operator/pkg/apis/registry/v1alpha1"
	"github.com/image-registry-operator/image-registry-operator/pkg/controller/internal/fakeactions"
	"github.com/image-registry-operator/image-registry-operator/pkg/generated/clientset/versioned/fake"
	informers "github.com/image-registry-operator/image-registry-operator/pkg/generated/informers/externalversions"
	"github.com/image-registry-operator/image-registry-operator/pkg/objectcache"
)

var testStart = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// testHash is a bcrypt hash (cost 4) of a password the tests never use.
var testHash = func() string {
	h, err := bcrypt.GenerateFromPassword([]byte("unused"), bcrypt.MinCost)
	if err != nil {
		panic(err)
	}
	return string(h)
}()

// fixture holds the fake API. Each controller() call builds a controller
// whose account cache is seeded from the fake clientset's current content,
// transformed as the operator's informer stores it; sync() then runs
// syncHandler directly, as in k8s.io/sample-controller.
type fixture struct {
	t          *testing.T
	ctx        context.Context
	kubeClient *k8sfake.Clientset
	client     *fake.Clientset
	clock      *testingclock.FakeClock
	recorder   *record.FakeRecorder
}

func newFixture(t *testing.T, accounts ...*v1alpha1.ImageRegistryAccount) *fixture {
	t.Helper()
	_, ctx := ktesting.NewTestContext(t)
	ctx, cancel := context.WithCancel(ctx)
	t.Cleanup(cancel)
	objs := make([]runtime.Object, len(accounts))
	for i, a := range accounts {
		objs[i] = a
	}
	return &fixture{
		t:          t,
		ctx:        ctx,
		kubeClient: k8sfake.NewClientset(),
		client:     fake.NewClientset(objs...),
		clock:      testingclock.NewFakeClock(testStart),
		recorder:   record.NewFakeRecorder(100),
	}
}

func (f *fixture) controller() *Controller {
	f.t.Helper()
	factory := informers.NewSharedInformerFactory(f.client, 0)
	inf := factory.Registry().V1alpha1().ImageRegistryAccounts()
	accounts := objectcache.NewAccounts(inf)
	c, err := NewController(f.ctx, f.kubeClient, f.client, accounts, Options{Clock: f.clock})
	if err != nil {
		f.t.Fatal(err)
	}
	c.recorder = f.recorder
	f.t.Cleanup(c.queue.ShutDown)
	l, err := f.client.RegistryV1alpha1().ImageRegistryAccounts("").List(f.ctx, metav1.ListOptions{})
	if err != nil {
		f.t.Fatal(err)
	}
	for i := range l.Items {
		cached, err := objectcache.Transform(&l.Items[i])
		if err != nil {
			f.t.Fatal(err)
		}
		if err := inf.Informer().GetIndexer().Add(cached); err != nil {
			f.t.Fatal(err)
		}
	}
	f.clearActions()
	return c
}

func (f *fixture) clearActions() {
	f.kubeClient.ClearActions()
	f.client.ClearActions()
	f.events()
}

// sync builds a fresh controller from the current API content and syncs a.
func (f *fixture) sync(a *v1alpha1.ImageRegistryAccount) *Controller {
	f.t.Helper()
	c := f.controller()
	if err := c.syncHandler(f.ctx, cache.MetaObjectToName(a)); err != nil {
		f.t.Fatalf("sync: %v", err)
	}
	return c
}

// actions are "verb resource[/subresource] namespace/name" of every call
// but the informers' list and watch.
func (f *fixture) actions() []string {
	return fakeactions.Writes(f.kubeClient.Actions(), f.client.Actions())
}

func (f *fixture) expectActions(want ...string) {
	f.t.Helper()
	if got := f.actions(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		f.t.Fatalf("actions differ\n got:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
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
			sort.Strings(out)
			return out
		}
	}
}

func (f *fixture) account(ns, name string) *v1alpha1.ImageRegistryAccount {
	f.t.Helper()
	a, err := f.client.RegistryV1alpha1().ImageRegistryAccounts(ns).Get(f.ctx, name, metav1.GetOptions{})
	if err != nil {
		f.t.Fatal(err)
	}
	return a
}

// expectStatus checks the stored status: login name, observed generation
// and the Ready condition's status and reason.
func (f *fixture) expectStatus(a *v1alpha1.ImageRegistryAccount, login string, status metav1.ConditionStatus, reason string) *metav1.Condition {
	f.t.Helper()
	got := f.account(a.Namespace, a.Name)
	if got.Status.LoginName != login {
		f.t.Errorf("status.loginName = %q, want %q", got.Status.LoginName, login)
	}
	if got.Status.ObservedGeneration != got.Generation {
		f.t.Errorf("status.observedGeneration = %d, want %d", got.Status.ObservedGeneration, got.Generation)
	}
	c := readyCondition(got.Status)
	if c == nil {
		f.t.Fatalf("no Ready condition: %+v", got.Status)
	}
	if c.Status != status || c.Reason != reason || c.ObservedGeneration != got.Generation {
		f.t.Errorf("Ready = %s/%s (generation %d, %q), want %s/%s", c.Status, c.Reason, c.ObservedGeneration, c.Message, status, reason)
	}
	return c
}

func staticAccount(name string, mutate ...func(*v1alpha1.ImageRegistryAccount)) *v1alpha1.ImageRegistryAccount {
	a := &v1alpha1.ImageRegistryAccount{
		ObjectMeta: metav1.ObjectMeta{Namespace: "registry", Name: name, Generation: 1, UID: "uid-static"},
		Spec: v1alpha1.ImageRegistryAccountSpec{
			Passwords: []string{testHash},
			Labels:    map[string][]string{"namespace": {"ci"}},
		},
	}
	for _, m := range mutate {
		m(a)
	}
	return a
}

func expiresAt(t time.Time) func(*v1alpha1.ImageRegistryAccount) {
	return func(a *v1alpha1.ImageRegistryAccount) {
		at := metav1.NewTime(t)
		a.Spec.ExpiresAt = &at
	}
}

func warning(reason string) string { return corev1.EventTypeWarning + " " + reason + " " }
