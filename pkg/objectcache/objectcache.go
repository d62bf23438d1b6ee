// Package objectcache owns the operator's informer caches: one factory of
// filtered, transformed informers, and the views controllers read them
// through.
//
// The caches are the operator's memory: per push or pull object they hold
// the object, its Secret and its account. Transform trims them to what
// decisions read and stores generated Secrets and accounts as compact
// entries (compact.go); Secrets and Accounts hand controllers ordinary
// client-go listers that expand those entries, so a controller never sees
// one. Views also put the caller's own recent writes in front of the
// informer (lister.go), so that a sync right after a write decides from it.
//
// It imports the API, the generated clients and pkg/credentials (the shape
// of what it compacts).
package objectcache

import (
	"reflect"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	kubeinformers "k8s.io/client-go/informers"
	coreinformers "k8s.io/client-go/informers/core/v1"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/image-registry-operator/image-registry-operator/pkg/apis/registry/v1alpha1"
	clientset "github.com/image-registry-operator/image-registry-operator/pkg/generated/clientset/versioned"
	informers "github.com/image-registry-operator/image-registry-operator/pkg/generated/informers/externalversions"
	registryinformers "github.com/image-registry-operator/image-registry-operator/pkg/generated/informers/externalversions/registry/v1alpha1"
	listers "github.com/image-registry-operator/image-registry-operator/pkg/generated/listers/registry/v1alpha1"
)

// Factory holds the shared informer factories. Every informer runs
// Transform.
type Factory struct {
	// Kube and Registry serve every kind but Secrets and accounts, whose
	// caches hold compact entries: read those through Secrets and Accounts.
	Kube     kubeinformers.SharedInformerFactory
	Registry informers.SharedInformerFactory
	// Managed watches only objects the operator labelled (LabelManagedBy),
	// so that unrelated Secrets and pods cost nothing. Its Secrets are
	// read through Secrets.
	Managed kubeinformers.SharedInformerFactory

	mu          sync.Mutex
	secretView  *Secrets
	accountView *Accounts
}

// NewFactory returns informer factories for namespace ("" for all).
func NewFactory(kubeClient kubernetes.Interface, registryClient clientset.Interface, namespace string, resync time.Duration) *Factory {
	transform := cache.TransformFunc(Transform)
	return &Factory{
		Kube: kubeinformers.NewSharedInformerFactoryWithOptions(kubeClient, resync,
			kubeinformers.WithNamespace(namespace), kubeinformers.WithTransform(transform)),
		Managed: kubeinformers.NewSharedInformerFactoryWithOptions(kubeClient, resync,
			kubeinformers.WithNamespace(namespace),
			kubeinformers.WithTweakListOptions(ManagedOnly), kubeinformers.WithTransform(transform)),
		Registry: informers.NewSharedInformerFactoryWithOptions(registryClient, resync,
			informers.WithNamespace(namespace), informers.WithTransform(transform)),
	}
}

// ManagedOnly limits a list/watch to objects the operator made.
func ManagedOnly(opts *metav1.ListOptions) {
	opts.LabelSelector = labels.Set{v1alpha1.LabelManagedBy: v1alpha1.ManagedByValue}.String()
}

// Secrets returns the shared view of the operator's Secrets.
func (f *Factory) Secrets() (*Secrets, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.secretView == nil {
		s, err := NewSecrets(f.Managed.Core().V1().Secrets())
		if err != nil {
			return nil, err
		}
		f.secretView = s
	}
	return f.secretView, nil
}

// Accounts returns the shared view of the ImageRegistryAccounts.
func (f *Factory) Accounts() (*Accounts, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.accountView == nil {
		a, err := NewAccounts(f.Registry.Registry().V1alpha1().ImageRegistryAccounts())
		if err != nil {
			return nil, err
		}
		f.accountView = a
	}
	return f.accountView, nil
}

// Start starts every informer that was asked for.
func (f *Factory) Start(stop <-chan struct{}) {
	f.Kube.Start(stop)
	f.Managed.Start(stop)
	f.Registry.Start(stop)
}

// WaitForCacheSync waits for every started informer.
func (f *Factory) WaitForCacheSync(stop <-chan struct{}) map[reflect.Type]bool {
	synced := map[reflect.Type]bool{}
	for _, m := range []map[reflect.Type]bool{f.Kube.WaitForCacheSync(stop), f.Managed.WaitForCacheSync(stop), f.Registry.WaitForCacheSync(stop)} {
		for t, ok := range m {
			synced[t] = ok
		}
	}
	return synced
}

// Shutdown stops the informers and waits for them.
func (f *Factory) Shutdown() {
	f.Kube.Shutdown()
	f.Managed.Shutdown()
	f.Registry.Shutdown()
}

// Secrets is a Secret informer read through a lister that expands compact
// entries and sees the owner's recent writes.
type Secrets struct {
	informer cache.SharedIndexInformer
	view     *view[*corev1.Secret]
}

// NewSecrets wraps an informer that runs Transform.
func NewSecrets(inf coreinformers.SecretInformer) (*Secrets, error) {
	v, err := newView(inf.Informer(), corev1.Resource("secrets"), expandSecret)
	if err != nil {
		return nil, err
	}
	return &Secrets{informer: inf.Informer(), view: v}, nil
}

// Lister returns a lister of typed, trimmed Secrets.
func (s *Secrets) Lister() corelisters.SecretLister { return secretLister{s.view} }

// AddEventHandler adds a handler; it may receive compact entries, whose
// metadata meta.Accessor reads.
func (s *Secrets) AddEventHandler(h cache.ResourceEventHandler) (cache.ResourceEventHandlerRegistration, error) {
	return s.informer.AddEventHandler(h)
}

// HasSynced tells whether the informer has synced.
func (s *Secrets) HasSynced() bool { return s.informer.HasSynced() }

// Wrote records a Secret the caller just wrote (the API server's answer).
func (s *Secrets) Wrote(obj *corev1.Secret) { s.view.wrote(obj) }

// Accounts is an ImageRegistryAccount informer read through a lister that
// expands compact entries and sees the owner's recent writes.
type Accounts struct {
	informer cache.SharedIndexInformer
	view     *view[*v1alpha1.ImageRegistryAccount]
}

// NewAccounts wraps an informer that runs Transform.
func NewAccounts(inf registryinformers.ImageRegistryAccountInformer) (*Accounts, error) {
	v, err := newView(inf.Informer(), v1alpha1.Resource("imageregistryaccounts"), expandAccount)
	if err != nil {
		return nil, err
	}
	return &Accounts{informer: inf.Informer(), view: v}, nil
}

// Lister returns a lister of typed, trimmed accounts.
func (a *Accounts) Lister() listers.ImageRegistryAccountLister { return accountLister{a.view} }

// AddEventHandler adds a handler; it may receive compact entries.
func (a *Accounts) AddEventHandler(h cache.ResourceEventHandler) (cache.ResourceEventHandlerRegistration, error) {
	return a.informer.AddEventHandler(h)
}

// HasSynced tells whether the informer has synced.
func (a *Accounts) HasSynced() bool { return a.informer.HasSynced() }

// Wrote records an account the caller just wrote.
func (a *Accounts) Wrote(obj *v1alpha1.ImageRegistryAccount) { a.view.wrote(obj) }

// Objects is an informer of typed objects (push or pull objects) with the
// owner's recent writes in front. Its informer is exposed for indexers and
// handlers: it holds typed objects only.
type Objects[T runtime.Object] struct {
	Informer cache.SharedIndexInformer
	view     *view[T]
}

// NewObjects wraps an informer of T's resource.
func NewObjects[T runtime.Object](inf cache.SharedIndexInformer, resource string) (*Objects[T], error) {
	v, err := newView(inf, v1alpha1.Resource(resource), func(obj any) (T, bool) {
		t, ok := obj.(T)
		return t, ok
	})
	if err != nil {
		return nil, err
	}
	return &Objects[T]{Informer: inf, view: v}, nil
}

// Get returns the newer of the cached object and the caller's last write;
// it is shared: copy before changing it.
func (o *Objects[T]) Get(namespace, name string) (T, error) { return o.view.get(namespace, name) }

// Wrote records an object the caller just wrote.
func (o *Objects[T]) Wrote(obj T) { o.view.wrote(obj) }
