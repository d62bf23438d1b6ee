package objectcache

import (
	"sync"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	registryv1alpha1 "github.com/image-registry-operator/image-registry-operator/pkg/apis/registry/v1alpha1"
)

// Transform is the informer transform of every cache. Per push or pull
// object the operator caches three objects (it, its Secret, its account),
// so their size is the operator's memory per object:
//   - metadata.managedFields go: no controller reads them, and they are
//     often the largest part of an object;
//   - generated Secrets and accounts are trimmed to what the push/pull
//     controllers compare and, as a rule, kept as compact entries rather
//     than typed objects (trim, compact.go; read them through Secrets and
//     Accounts);
//   - strings that thousands of objects repeat (namespaces, label and
//     annotation keys, owner kinds, condition reasons) share one copy.
func Transform(obj interface{}) (interface{}, error) {
	if m, err := meta.Accessor(obj); err == nil {
		if m.GetManagedFields() != nil {
			m.SetManagedFields(nil)
		}
		m.SetNamespace(shared.intern(m.GetNamespace()))
		internLabels(m.GetLabels())
		internKeys(m.GetAnnotations())
		if f := m.GetFinalizers(); f != nil {
			for i := range f {
				f[i] = shared.intern(f[i])
			}
		}
		if refs := m.GetOwnerReferences(); refs != nil {
			for i := range refs {
				refs[i].APIVersion = shared.intern(refs[i].APIVersion)
				refs[i].Kind = shared.intern(refs[i].Kind)
			}
		}
	}
	obj = trim(obj)
	switch o := obj.(type) {
	case *corev1.Secret:
		o.Type = corev1.SecretType(shared.intern(string(o.Type)))
		for k, v := range o.Data {
			o.Data[shared.intern(k)] = v
		}
	case *registryv1alpha1.ImagePushSecret:
		internImageSecretStatus(&o.Status)
	case *registryv1alpha1.ImagePullSecret:
		internImageSecretStatus(&o.Status)
	}
	return obj, nil
}

// internKeys shares the keys of a label or annotation map. Assigning to an
// existing string key stores the new key: the map then holds the shared copy.
func internKeys(m map[string]string) {
	for k, v := range m {
		m[shared.intern(k)] = v
	}
}

// internLabels also shares the values of labels whose values repeat across
// objects; others (owner names) are unique and stay as they are.
func internLabels(m map[string]string) {
	for k, v := range m {
		switch k {
		case registryv1alpha1.LabelManagedBy, registryv1alpha1.LabelType, registryv1alpha1.LabelOwnerNamespace:
			v = shared.intern(v)
		}
		m[shared.intern(k)] = v
	}
}

func internImageSecretStatus(st *registryv1alpha1.ImageSecretStatus) {
	st.Registry = shared.intern(st.Registry)
	if r := st.RegistryRef; r != nil {
		r.Namespace, r.Name = shared.intern(r.Namespace), shared.intern(r.Name)
	}
	for i := range st.Conditions {
		c := &st.Conditions[i]
		c.Type, c.Reason = shared.intern(c.Type), shared.intern(c.Reason)
		c.Status = metav1.ConditionStatus(shared.intern(string(c.Status)))
	}
}

// interner hands out one copy of each string it has seen. It is bounded:
// past maxEntries (or for long strings) it returns its argument, so
// unbounded values (names, UIDs) can cost it no more than the bound.
type interner struct {
	mu sync.Mutex
	m  map[string]string
}

const (
	maxInterned    = 16384
	maxInternedLen = 128
)

var shared = &interner{m: map[string]string{}}

func (in *interner) intern(s string) string {
	if s == "" || len(s) > maxInternedLen {
		return s
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	if c, ok := in.m[s]; ok {
		return c
	}
	if len(in.m) < maxInterned {
		in.m[s] = s
	}
	return s
}
