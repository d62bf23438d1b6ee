package imageregistry

import (
	"context"
	"sort"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	kubeinformers "k8s.io/client-go/informers"
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

const (
	testOperatorNS = "operator-system"
	testAuthImage  = "example.org/image-registry-operator:v1"
)

var testStart = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// fixture holds the fake API. Each controller() call builds a controller
// whose informer caches are seeded from the fake clientsets' current
// content, the way they would be after a watch caught up; sync() then runs
// syncHandler directly, as in k8s.io/sample-controller.
type fixture struct {
	t          *testing.T
	ctx        context.Context
	kubeClient *k8sfake.Clientset
	client     *fake.Clientset
	dynamic    dynamic.Interface
	clock      *testingclock.FakeClock
	recorder   *record.FakeRecorder
}

func newFixture(t *testing.T, kubeObjects []runtime.Object, registries ...*v1alpha1.ImageRegistry) *fixture {
	t.Helper()
	_, ctx := ktesting.NewTestContext(t)
	ctx, cancel := context.WithCancel(ctx)
	t.Cleanup(cancel)
	regObjs := make([]runtime.Object, len(registries))
	for i, r := range registries {
		regObjs[i] = r
	}
	return &fixture{
		t:          t,
		ctx:        ctx,
		kubeClient: k8sfake.NewClientset(kubeObjects...),
		client:     fake.NewClientset(regObjs...),
		clock:      testingclock.NewFakeClock(testStart),
		recorder:   record.NewFakeRecorder(100),
	}
}

func (f *fixture) controller() *Controller {
	f.t.Helper()
	ctx := f.ctx
	kubeFactory := kubeinformers.NewSharedInformerFactory(f.kubeClient, 0)
	regFactory := informers.NewSharedInformerFactory(f.client, 0)
	secretInformer := kubeFactory.Core().V1().Secrets()
	secretView := objectcache.NewSecrets(secretInformer)
	c, err := NewController(ctx, f.kubeClient, f.client, f.dynamic,
		regFactory.Registry().V1alpha1().ImageRegistries(),
		kubeFactory.Apps().V1().StatefulSets(),
		kubeFactory.Core().V1().Services(),
		kubeFactory.Core().V1().ConfigMaps(),
		secretView,
		kubeFactory.Core().V1().ServiceAccounts(),
		kubeFactory.Rbac().V1().RoleBindings(),
		kubeFactory.Core().V1().Pods(),
		kubeFactory.Core().V1().PersistentVolumeClaims(),
		kubeFactory.Policy().V1().PodDisruptionBudgets(),
		Options{OperatorNamespace: testOperatorNS, DNSZone: "registry.example.org", AuthImage: testAuthImage, Clock: f.clock},
	)
	if err != nil {
		f.t.Fatal(err)
	}
	c.recorder = f.recorder
	f.t.Cleanup(c.queue.ShutDown)

	seed := func(inf cache.SharedIndexInformer, objs []runtime.Object) {
		for _, o := range objs {
			if err := inf.GetIndexer().Add(o); err != nil {
				f.t.Fatal(err)
			}
		}
	}
	regs, _ := f.client.RegistryV1alpha1().ImageRegistries("").List(ctx, metav1.ListOptions{})
	for i := range regs.Items {
		seed(regFactory.Registry().V1alpha1().ImageRegistries().Informer(), []runtime.Object{&regs.Items[i]})
	}
	k := f.kubeClient
	stss, _ := k.AppsV1().StatefulSets("").List(ctx, metav1.ListOptions{})
	for i := range stss.Items {
		seed(kubeFactory.Apps().V1().StatefulSets().Informer(), []runtime.Object{&stss.Items[i]})
	}
	svcs, _ := k.CoreV1().Services("").List(ctx, metav1.ListOptions{})
	for i := range svcs.Items {
		seed(kubeFactory.Core().V1().Services().Informer(), []runtime.Object{&svcs.Items[i]})
	}
	cms, _ := k.CoreV1().ConfigMaps("").List(ctx, metav1.ListOptions{})
	for i := range cms.Items {
		seed(kubeFactory.Core().V1().ConfigMaps().Informer(), []runtime.Object{&cms.Items[i]})
	}
	// The operator's Secret informer only sees managed Secrets, and keeps
	// those of push and pull objects as compact entries.
	secrets, _ := k.CoreV1().Secrets("").List(ctx, metav1.ListOptions{LabelSelector: v1alpha1.LabelManagedBy + "=" + v1alpha1.ManagedByValue})
	for i := range secrets.Items {
		cached, err := objectcache.Transform(&secrets.Items[i])
		if err != nil {
			f.t.Fatal(err)
		}
		seed(secretInformer.Informer(), []runtime.Object{cached.(runtime.Object)})
	}
	sas, _ := k.CoreV1().ServiceAccounts("").List(ctx, metav1.ListOptions{})
	for i := range sas.Items {
		seed(kubeFactory.Core().V1().ServiceAccounts().Informer(), []runtime.Object{&sas.Items[i]})
	}
	rbs, _ := k.RbacV1().RoleBindings("").List(ctx, metav1.ListOptions{})
	for i := range rbs.Items {
		seed(kubeFactory.Rbac().V1().RoleBindings().Informer(), []runtime.Object{&rbs.Items[i]})
	}
	pods, _ := k.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
	for i := range pods.Items {
		seed(kubeFactory.Core().V1().Pods().Informer(), []runtime.Object{&pods.Items[i]})
	}
	pvcs, _ := k.CoreV1().PersistentVolumeClaims("").List(ctx, metav1.ListOptions{})
	for i := range pvcs.Items {
		seed(kubeFactory.Core().V1().PersistentVolumeClaims().Informer(), []runtime.Object{&pvcs.Items[i]})
	}
	pdbs, _ := k.PolicyV1().PodDisruptionBudgets("").List(ctx, metav1.ListOptions{})
	for i := range pdbs.Items {
		seed(kubeFactory.Policy().V1().PodDisruptionBudgets().Informer(), []runtime.Object{&pdbs.Items[i]})
	}
	f.clearActions()
	return c
}

func (f *fixture) clearActions() {
	f.kubeClient.ClearActions()
	f.client.ClearActions()
	for {
		select {
		case <-f.recorder.Events:
		default:
			return
		}
	}
}

// sync builds a fresh controller from the current API content and syncs reg.
func (f *fixture) sync(reg *v1alpha1.ImageRegistry) (*Controller, error) {
	f.t.Helper()
	c := f.controller()
	return c, c.syncHandler(f.ctx, cache.MetaObjectToName(reg))
}

func (f *fixture) mustSync(reg *v1alpha1.ImageRegistry) *Controller {
	f.t.Helper()
	c, err := f.sync(reg)
	if err != nil {
		f.t.Fatalf("sync: %v", err)
	}
	return c
}

// actions are "verb resource[/subresource] namespace/name" for every write
// and every read that bypasses the cache; list/watch of informers and
// discovery reads are left out.
func (f *fixture) actions() []string {
	return fakeactions.Writes(f.kubeClient.Actions(), f.client.Actions())
}

func (f *fixture) expectActions(want ...string) {
	f.t.Helper()
	got := f.actions()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
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

func (f *fixture) expectWarning(reason string) {
	f.t.Helper()
	for _, e := range f.events() {
		if strings.HasPrefix(e, corev1.EventTypeWarning+" "+reason+" ") {
			return
		}
	}
	f.t.Fatalf("no Warning event with reason %s", reason)
}

func (f *fixture) registry(ns, name string) *v1alpha1.ImageRegistry {
	f.t.Helper()
	r, err := f.client.RegistryV1alpha1().ImageRegistries(ns).Get(f.ctx, name, metav1.GetOptions{})
	if err != nil {
		f.t.Fatal(err)
	}
	return r
}

func (f *fixture) readyCondition(reg *v1alpha1.ImageRegistry) metav1.Condition {
	f.t.Helper()
	r := f.registry(reg.Namespace, reg.Name)
	for _, c := range r.Status.Conditions {
		if c.Type == v1alpha1.ConditionReady {
			return c
		}
	}
	f.t.Fatalf("ImageRegistry %s has no Ready condition: %+v", reg.Name, r.Status)
	return metav1.Condition{}
}

func (f *fixture) expectReady(reg *v1alpha1.ImageRegistry, status metav1.ConditionStatus, reason string) {
	f.t.Helper()
	c := f.readyCondition(reg)
	if c.Status != status || c.Reason != reason {
		f.t.Fatalf("Ready = %s/%s (%s), want %s/%s", c.Status, c.Reason, c.Message, status, reason)
	}
	if c.ObservedGeneration != f.registry(reg.Namespace, reg.Name).Generation {
		f.t.Fatalf("condition observedGeneration %d is stale", c.ObservedGeneration)
	}
}

func (f *fixture) statefulSet(reg *v1alpha1.ImageRegistry) *appsv1.StatefulSet {
	f.t.Helper()
	s, err := f.kubeClient.AppsV1().StatefulSets(reg.Namespace).Get(f.ctx, reg.Name, metav1.GetOptions{})
	if err != nil {
		f.t.Fatal(err)
	}
	return s
}

func (f *fixture) secret(ns, name string) *corev1.Secret {
	f.t.Helper()
	s, err := f.kubeClient.CoreV1().Secrets(ns).Get(f.ctx, name, metav1.GetOptions{})
	if err != nil {
		f.t.Fatal(err)
	}
	return s
}

func (f *fixture) configMap(ns, name string) *corev1.ConfigMap {
	f.t.Helper()
	s, err := f.kubeClient.CoreV1().ConfigMaps(ns).Get(f.ctx, name, metav1.GetOptions{})
	if err != nil {
		f.t.Fatal(err)
	}
	return s
}

// markReady plays the StatefulSet controller: all replicas are ready.
func (f *fixture) markReady(reg *v1alpha1.ImageRegistry) {
	f.t.Helper()
	s := f.statefulSet(reg)
	s.Status.ObservedGeneration = s.Generation
	s.Status.Replicas = *s.Spec.Replicas
	s.Status.ReadyReplicas = *s.Spec.Replicas
	if _, err := f.kubeClient.AppsV1().StatefulSets(reg.Namespace).UpdateStatus(f.ctx, s, metav1.UpdateOptions{}); err != nil {
		f.t.Fatal(err)
	}
}

func newRegistry(ns, name string) *v1alpha1.ImageRegistry {
	return &v1alpha1.ImageRegistry{
		TypeMeta:   metav1.TypeMeta{APIVersion: v1alpha1.SchemeGroupVersion.String(), Kind: "ImageRegistry"},
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID("uid-" + name), Generation: 1},
	}
}

// createdActions are what a first sync of a default registry writes.
func createdActions(ns, name string) []string {
	return []string{
		"create secrets " + testOperatorNS + "/" + CASecretName,
		"create secrets " + ns + "/" + name + "-tls",
		"create secrets " + ns + "/" + name + "-auth-token",
		"create secrets " + ns + "/" + name + "-http-secret",
		"create configmaps " + ns + "/" + name + "-auth-config",
		"create configmaps " + ns + "/" + name + "-registry-config",
		"create serviceaccounts " + ns + "/" + name + "-auth",
		"create rolebindings " + ns + "/" + name + "-auth",
		"create services " + ns + "/" + name,
		"create services " + ns + "/" + name + "-headless",
		"create statefulsets " + ns + "/" + name,
		"create poddisruptionbudgets " + ns + "/" + name,
		"update imageregistries/status " + ns + "/" + name,
	}
}
