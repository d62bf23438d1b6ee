package imagesecret

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	coreinformers "k8s.io/client-go/informers/core/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/image-registry-operator/image-registry-operator/pkg/apis/registry/v1alpha1"
	registryinformers "github.com/image-registry-operator/image-registry-operator/pkg/generated/informers/externalversions/registry/v1alpha1"
	listers "github.com/image-registry-operator/image-registry-operator/pkg/generated/listers/registry/v1alpha1"
)

// Generated listers assert that every cached item is the typed object and
// would panic on a compact entry. The informers below replace them with
// listers that expand compact entries; give them to every controller that
// shares an informer transformed by TrimForCache.

// CompactSecrets returns inf with a lister that expands compact entries.
func CompactSecrets(inf coreinformers.SecretInformer) coreinformers.SecretInformer {
	return secretInformer{inf}
}

// CompactAccounts returns inf with a lister that expands compact entries.
func CompactAccounts(inf registryinformers.ImageRegistryAccountInformer) registryinformers.ImageRegistryAccountInformer {
	return accountInformer{inf}
}

type secretInformer struct{ coreinformers.SecretInformer }

func (i secretInformer) Lister() corelisters.SecretLister {
	return secretLister{expanding[*corev1.Secret]{i.Informer().GetIndexer(), corev1.Resource("secret"), CachedSecret}}
}

type accountInformer struct {
	registryinformers.ImageRegistryAccountInformer
}

func (i accountInformer) Lister() listers.ImageRegistryAccountLister {
	return accountLister{expanding[*v1alpha1.ImageRegistryAccount]{i.Informer().GetIndexer(), v1alpha1.Resource("imageregistryaccount"), CachedAccount}}
}

// CachedSecret and CachedAccount return an item of a cache transformed by
// TrimForCache as the typed object, shared (typed items) or newly built
// (compact ones); callers treat both as read-only, as with any lister.
func CachedSecret(obj any) (*corev1.Secret, bool) {
	switch o := obj.(type) {
	case *corev1.Secret:
		return o, true
	case *compactSecret:
		return o.secret(), true
	}
	return nil, false
}

func CachedAccount(obj any) (*v1alpha1.ImageRegistryAccount, bool) {
	switch o := obj.(type) {
	case *v1alpha1.ImageRegistryAccount:
		return o, true
	case *compactAccount:
		a := o.account()
		return a, a != nil
	}
	return nil, false
}

// expanding reads an indexer of typed objects and compact entries.
type expanding[T metav1.Object] struct {
	indexer  cache.Indexer
	resource schema.GroupResource
	expand   func(any) (T, bool)
}

func (e expanding[T]) get(namespace, name string) (T, error) {
	var zero T
	obj, exists, err := e.indexer.GetByKey(namespace + "/" + name)
	if err != nil {
		return zero, err
	}
	if !exists {
		return zero, apierrors.NewNotFound(e.resource, name)
	}
	t, ok := e.expand(obj)
	if !ok {
		utilruntime.HandleError(fmt.Errorf("cached %s %s/%s is a %T", e.resource, namespace, name, obj))
		return zero, apierrors.NewNotFound(e.resource, name)
	}
	return t, nil
}

func (e expanding[T]) list(namespace string, sel labels.Selector) ([]T, error) {
	var objs []any
	if namespace == metav1.NamespaceAll {
		objs = e.indexer.List()
	} else if byNS, err := e.indexer.ByIndex(cache.NamespaceIndex, namespace); err == nil {
		objs = byNS
	} else {
		objs = e.indexer.List() // no namespace index: filtered below
	}
	var ret []T
	for _, obj := range objs {
		t, ok := e.expand(obj)
		if !ok || (namespace != metav1.NamespaceAll && t.GetNamespace() != namespace) {
			continue
		}
		if sel.Matches(labels.Set(t.GetLabels())) {
			ret = append(ret, t)
		}
	}
	return ret, nil
}

type secretLister struct{ e expanding[*corev1.Secret] }

func (l secretLister) List(sel labels.Selector) ([]*corev1.Secret, error) {
	return l.e.list(metav1.NamespaceAll, sel)
}

func (l secretLister) Secrets(namespace string) corelisters.SecretNamespaceLister {
	return secretNamespaceLister{l.e, namespace}
}

type secretNamespaceLister struct {
	e         expanding[*corev1.Secret]
	namespace string
}

func (l secretNamespaceLister) List(sel labels.Selector) ([]*corev1.Secret, error) {
	return l.e.list(l.namespace, sel)
}

func (l secretNamespaceLister) Get(name string) (*corev1.Secret, error) {
	return l.e.get(l.namespace, name)
}

type accountLister struct {
	e expanding[*v1alpha1.ImageRegistryAccount]
}

func (l accountLister) List(sel labels.Selector) ([]*v1alpha1.ImageRegistryAccount, error) {
	return l.e.list(metav1.NamespaceAll, sel)
}

func (l accountLister) ImageRegistryAccounts(namespace string) listers.ImageRegistryAccountNamespaceLister {
	return accountNamespaceLister{l.e, namespace}
}

type accountNamespaceLister struct {
	e         expanding[*v1alpha1.ImageRegistryAccount]
	namespace string
}

func (l accountNamespaceLister) List(sel labels.Selector) ([]*v1alpha1.ImageRegistryAccount, error) {
	return l.e.list(l.namespace, sel)
}

func (l accountNamespaceLister) Get(name string) (*v1alpha1.ImageRegistryAccount, error) {
	return l.e.get(l.namespace, name)
}
