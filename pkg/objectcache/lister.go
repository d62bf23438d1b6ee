package objectcache

import (
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	"github.com/image-registry-operator/image-registry-operator/pkg/apis/registry/v1alpha1"
	listers "github.com/image-registry-operator/image-registry-operator/pkg/generated/listers/registry/v1alpha1"
)

// Own writes. A controller that decides from its cache right after writing
// could otherwise read its own write's previous state (the watch event is on
// the way) and, where another object's watch was quicker, write that
// previous state back with preconditions that still hold. What it wrote is
// therefore kept for a while in a client-go MutationCache in front of the
// informer: reads return the newer of the two (resourceVersions of one
// resource compare as integers, KEP-5504), and an entry goes as soon as the
// informer has caught up with it or after recentTTL. Nothing is decided from
// it that is not an API object: after a restart the informers start from a
// consistent list.
const (
	recentTTL  = time.Minute
	recentSize = 4096
)

// view reads an informer's items as T, expanding compact entries, with the
// owner's recent writes in front.
type view[T runtime.Object] struct {
	informer cache.SharedIndexInformer
	recent   cache.MutationCache
	resource schema.GroupResource
	expand   func(any) (T, bool)
}

func newView[T runtime.Object](inf cache.SharedIndexInformer, resource schema.GroupResource, expand func(any) (T, bool)) (*view[T], error) {
	v := &view[T]{
		informer: inf,
		resource: resource,
		expand:   expand,
		recent: cache.NewIntegerResourceVersionMutationCacheWithOptions(klog.Background(), inf.GetIndexer(), cache.MutationCacheOptions{
			Indexer: inf.GetIndexer(), TTL: recentTTL, IncludeAdds: true, MaxCacheSize: recentSize,
		}),
	}
	forget := func(obj any) {
		if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = t.Obj
		}
		if o, ok := obj.(runtime.Object); ok {
			v.recent.OnDelete(o)
		}
	}
	_, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			if o, ok := obj.(runtime.Object); ok {
				v.recent.OnAddOrUpdate(o)
			}
		},
		UpdateFunc: func(_, obj any) {
			if o, ok := obj.(runtime.Object); ok {
				v.recent.OnAddOrUpdate(o)
			}
		},
		DeleteFunc: forget,
	})
	return v, err
}

// wrote records a copy of an object the owner just wrote (the API server's
// answer), transformed like informer items.
func (v *view[T]) wrote(obj T) {
	t, err := Transform(obj.DeepCopyObject())
	if err != nil {
		return
	}
	v.recent.Mutation(t)
}

func (v *view[T]) get(namespace, name string) (T, error) {
	var zero T
	key := namespace + "/" + name
	obj, exists, err := v.recent.GetByKey(key)
	if err != nil {
		return zero, err
	}
	if !exists {
		return zero, apierrors.NewNotFound(v.resource, name)
	}
	if _, informed, _ := v.informer.GetIndexer().GetByKey(key); !informed {
		// An own create the informer has not seen yet: MutationCache
		// (client-go 0.37) compares it with itself on the way out and
		// drops it, so it is put back for the next read.
		v.recent.Mutation(obj)
	}
	t, ok := v.expand(obj)
	if !ok {
		utilruntime.HandleError(fmt.Errorf("cached %s %s/%s is a %T", v.resource, namespace, name, obj))
		return zero, apierrors.NewNotFound(v.resource, name)
	}
	return t, nil
}

// list lists a namespace (with recent writes) or every namespace (the
// informer alone).
func (v *view[T]) list(namespace string, sel labels.Selector) ([]T, error) {
	var objs []any
	if namespace == metav1.NamespaceAll {
		objs = v.informer.GetIndexer().List()
	} else {
		var err error
		if objs, err = v.recent.ByIndex(cache.NamespaceIndex, namespace); err != nil {
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
