package imageregistry

import (
	"sort"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/image-registry-operator/image-registry-operator/pkg/apis/registry/v1alpha1"
)

func drain(c *Controller) []string {
	var keys []string
	for c.queue.Len() > 0 {
		k, _ := c.queue.Get()
		keys = append(keys, k.String())
		c.queue.Done(k)
		c.queue.Forget(k)
	}
	sort.Strings(keys)
	return keys
}

func TestEventHandlersEnqueueOwners(t *testing.T) {
	a, b := newRegistry("team-a", "a"), newRegistry("team-b", "b")
	a.Spec.Auth.ConfigMapName = "user-auth"
	f := newFixture(t, nil, a, b)
	c := f.controller()
	owned := &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{
		Namespace: "team-a", Name: "a", ResourceVersion: "2",
		OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(a, v1alpha1.SchemeGroupVersion.WithKind("ImageRegistry"))},
	}}
	stsHandler := c.ownedHandler(nil)

	stsHandler.OnAdd(owned, false)
	if got := drain(c); len(got) != 1 || got[0] != "team-a/a" {
		t.Fatalf("owned add enqueued %v", got)
	}
	// Tombstones are unwrapped.
	stsHandler.OnDelete(cache.DeletedFinalStateUnknown{Key: "team-a/a", Obj: owned})
	if got := drain(c); len(got) != 1 || got[0] != "team-a/a" {
		t.Fatalf("tombstone enqueued %v", got)
	}
	// Resyncs (same resourceVersion) are ignored.
	stsHandler.OnUpdate(owned, owned)
	if got := drain(c); len(got) != 0 {
		t.Fatalf("resync enqueued %v", got)
	}
	// Objects of other owners are ignored.
	other := owned.DeepCopy()
	other.OwnerReferences[0].Kind = "Deployment"
	other.OwnerReferences[0].APIVersion = "apps/v1"
	stsHandler.OnAdd(other, false)
	if got := drain(c); len(got) != 0 {
		t.Fatalf("foreign owner enqueued %v", got)
	}

	// The CA Secret enqueues every registry.
	c.ownedHandler(c.handleUnownedSecret).OnAdd(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: testOperatorNS, Name: CASecretName}}, false)
	if got := drain(c); len(got) != 2 {
		t.Fatalf("CA Secret enqueued %v", got)
	}
	// A cert-manager Secret enqueues its registry by label.
	c.ownedHandler(c.handleUnownedSecret).OnAdd(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "team-b", Name: "b-tls", Labels: map[string]string{v1alpha1.LabelRegistry: "b"}}}, false)
	if got := drain(c); len(got) != 1 || got[0] != "team-b/b" {
		t.Fatalf("cert-manager Secret enqueued %v", got)
	}
	// A user auth ConfigMap enqueues the registries that reference it.
	cmHandler := c.ownedHandler(c.handleUserConfigMap)
	cmHandler.OnAdd(&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "user-auth"}}, false)
	if got := drain(c); len(got) != 1 || got[0] != "team-a/a" {
		t.Fatalf("user ConfigMap enqueued %v", got)
	}
	cmHandler.OnAdd(&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "team-b", Name: "user-auth"}}, false)
	if got := drain(c); len(got) != 0 {
		t.Fatalf("unrelated ConfigMap enqueued %v", got)
	}
}

func TestDeletedRegistryIsIgnored(t *testing.T) {
	f := newFixture(t, nil)
	c := f.controller()
	if err := c.syncHandler(f.ctx, cache.NewObjectName("team-a", "gone")); err != nil {
		t.Fatal(err)
	}
	f.expectActions()
}

func TestOptionsValidation(t *testing.T) {
	for _, o := range []Options{{AuthImage: "x"}, {OperatorNamespace: "x"}} {
		if err := o.setDefaults(); err == nil {
			t.Errorf("%+v accepted", o)
		}
	}
	o := Options{OperatorNamespace: "ns", AuthImage: "img", DNSZone: "example.org."}
	if err := o.setDefaults(); err != nil {
		t.Fatal(err)
	}
	if o.DNSZone != "example.org" || o.RegistryImage != DefaultRegistryImage || o.DockerAuthImage != DefaultDockerAuthImage || o.Clock == nil {
		t.Errorf("defaults %+v", o)
	}
}
