package objectcache

import (
	"maps"
	"strings"
	"testing"
	"unsafe"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/image-registry-operator/image-registry-operator/pkg/apis/registry/v1alpha1"
)

// The transform keeps every value the controllers read, drops managedFields
// and makes repeated strings share memory.
func TestTransform(t *testing.T) {
	cr1, s1, a1 := sampleObjects(1)
	cr2, s2, _ := sampleObjects(2)
	want := s1.DeepCopy()
	objs := []interface{}{cr1.DeepCopy(), cr2.DeepCopy(), s1.DeepCopy(), s2.DeepCopy(), a1.DeepCopy()}
	for i, o := range objs {
		got, err := Transform(o)
		if err != nil {
			t.Fatal(err)
		}
		objs[i] = got
	}
	gcr1, gcr2 := objs[0].(*v1alpha1.ImagePullSecret), objs[1].(*v1alpha1.ImagePullSecret)
	gs1, ok1 := expandSecret(objs[2])
	gs2, ok2 := expandSecret(objs[3])
	if !ok1 || !ok2 {
		t.Fatalf("Secrets cached as %T, %T", objs[2], objs[3])
	}
	if gcr1.ManagedFields != nil {
		t.Error("managedFields kept")
	}
	// Generated Secrets and accounts become compact entries, which
	// expand to their content without managedFields.
	ga1, ok := expandAccount(objs[4])
	if !ok || ga1.ManagedFields != nil || ga1.Annotations[v1alpha1.AnnotationOwnerUID] != a1.Annotations[v1alpha1.AnnotationOwnerUID] {
		t.Errorf("account cached as %T: %+v", objs[4], ga1)
	}
	for i, o := range objs[2:] {
		if _, typed := o.(metav1.Object); typed {
			t.Errorf("generated object %d cached as the typed %T, want a compact entry", i+2, o)
		}
	}
	if gs1.Namespace != want.Namespace || !maps.Equal(gs1.Labels, want.Labels) || !maps.Equal(gs1.Annotations, want.Annotations) ||
		gs1.Type != want.Type || string(gs1.Data["password"]) != string(want.Data["password"]) {
		t.Errorf("Secret content changed: %+v", gs1.ObjectMeta)
	}
	if gcr1.Status.Conditions[0].Reason != cr1.Status.Conditions[0].Reason || gcr1.Status.Registry != cr1.Status.Registry {
		t.Error("status content changed")
	}
	same := func(what, a, b string) {
		t.Helper()
		if unsafe.StringData(a) != unsafe.StringData(b) {
			t.Errorf("%s not shared", what)
		}
	}
	same("namespace", gcr1.Namespace, gcr2.Namespace)
	same("namespace across kinds", gcr1.Namespace, gs1.Namespace)
	same("finalizer", gcr1.Finalizers[0], gcr2.Finalizers[0])
	same("condition reason", gcr1.Status.Conditions[0].Reason, gcr2.Status.Conditions[0].Reason)
	same("namespace of compact entries", gs1.Namespace, gs2.Namespace)
	// Other managed Secrets (the registry's) stay typed; their label keys
	// are shared.
	tls := func(name string) *corev1.Secret {
		return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "infra", Name: name,
			Labels: map[string]string{strings.Clone(v1alpha1.LabelManagedBy): strings.Clone(v1alpha1.ManagedByValue)}}}
	}
	t1, err1 := Transform(tls("a-tls"))
	t2, err2 := Transform(tls("b-tls"))
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	for k := range t1.(*corev1.Secret).Labels {
		for k2 := range t2.(*corev1.Secret).Labels {
			same("label key", k, k2)
		}
	}
	same("label value", t1.(*corev1.Secret).Labels[v1alpha1.LabelManagedBy], t2.(*corev1.Secret).Labels[v1alpha1.LabelManagedBy])
}

func TestInternerIsBounded(t *testing.T) {
	in := &interner{m: map[string]string{}}
	for i := range maxInterned + 10 {
		in.intern(string(rune('a'+i%26)) + string(rune(i)))
	}
	if len(in.m) > maxInterned {
		t.Errorf("%d entries, bound %d", len(in.m), maxInterned)
	}
	fresh := &interner{m: map[string]string{}}
	if fresh.intern(string(make([]byte, maxInternedLen+1))); len(fresh.m) != 0 {
		t.Error("a long string was interned")
	}
}
