package objectcache

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/image-registry-operator/image-registry-operator/pkg/apis/registry/v1alpha1"
	listers "github.com/image-registry-operator/image-registry-operator/pkg/generated/listers/registry/v1alpha1"
)

// view reads an informer's items as T, expanding compact entries.
type view[T runtime.Object] struct {
	informer cache.SharedIndexInformer
	resource schema.GroupResource
	expand   func(any) (T, bool)
}

func (v *view[T]) get(namespace, name string) (T, error) {
	var zero T
	obj, exists, err := v.informer.GetIndexer().GetByKey(namespace + "/" + name)
	if err != nil {
		return zero, err
	}
	if !exists {
		return zero, apierrors.NewNotFound(v.resource, name)
	}
	t, ok := v.expand(obj)
	if !ok {
		utilruntime.HandleError(fmt.Errorf("cached %s %s/%s is a %T", v.resource, namespace, name, obj))
		return zero, apierrors.NewNotFound(v.resource, name)
	}
	return t, nil
}

// list lists a namespace or, with NamespaceAll, every namespace.
func (v *view[T]) list(namespace string, sel labels.Selector) ([]T, error) {
	var objs []any
	if namespace == metav1.NamespaceAll {
		objs = v.informer.GetIndexer().List()
	} else {
		var err error
		if objs, err = v.informer.GetIndexer().ByIndex(cache.NamespaceIndex, namespace); err != nil {
			return nil, err
		}
	}
	var ret []T
	for _, obj := range objs {
		t, ok := v.expand(obj)
		if !ok {
			continue
		}
		m, err := metaOf(t)
		if err != nil || (namespace != metav1.NamespaceAll && m.GetNamespace() != namespace) {
			continue
		}
		if sel.Matches(labels.Set(m.GetLabels())) {
			ret = append(ret, t)
		}
	}
	return ret, nil
}

func metaOf(obj runtime.Object) (metav1.Object, error) {
	if m, ok := obj.(metav1.Object); ok {
		return m, nil
	}
	return nil, fmt.Errorf("%T has no object metadata", obj)
}

// expandSecret and expandAccount turn a cached item into the typed object,
// shared (typed items) or newly built (compact ones); callers treat both as
// read-only, as with any lister.
func expandSecret(obj any) (*corev1.Secret, bool) {
	switch o := obj.(type) {
	case *corev1.Secret:
		return o, true
	case *compactSecret:
		return o.secret(), true
	}
	return nil, false
}

func expandAccount(obj any) (*v1alpha1.ImageRegistryAccount, bool) {
	switch o := obj.(type) {
	case *v1alpha1.ImageRegistryAccount:
		return o, true
	case *compactAccount:
		return o.account(), true
	}
	return nil, false
}

// Listers in the shape client-go generates, over a view.

type secretLister struct{ v *view[*corev1.Secret] }

func (l secretLister) List(sel labels.Selector) ([]*corev1.Secret, error) {
	return l.v.list(metav1.NamespaceAll, sel)
}

func (l secretLister) Secrets(namespace string) corelisters.SecretNamespaceLister {
	return secretNamespaceLister{l.v, namespace}
}

type secretNamespaceLister struct {
	v         *view[*corev1.Secret]
	namespace string
}

func (l secretNamespaceLister) List(sel labels.Selector) ([]*corev1.Secret, error) {
	return l.v.list(l.namespace, sel)
}

func (l secretNamespaceLister) Get(name string) (*corev1.Secret, error) {
	return l.v.get(l.namespace, name)
}

type accountLister struct {
	v *view[*v1alpha1.ImageRegistryAccount]
}

func (l accountLister) List(sel labels.Selector) ([]*v1alpha1.ImageRegistryAccount, error) {
	return l.v.list(metav1.NamespaceAll, sel)
}

func (l accountLister) ImageRegistryAccounts(namespace string) listers.ImageRegistryAccountNamespaceLister {
	return accountNamespaceLister{l.v, namespace}
}

type accountNamespaceLister struct {
	v         *view[*v1alpha1.ImageRegistryAccount]
	namespace string
}

func (l accountNamespaceLister) List(sel labels.Selector) ([]*v1alpha1.ImageRegistryAccount, error) {
	return l.v.list(l.namespace, sel)
}

func (l accountNamespaceLister) Get(name string) (*v1alpha1.ImageRegistryAccount, error) {
	return l.v.get(l.namespace, name)
}
