// Package objectcache owns the operator's informer caches: one factory of
// filtered, transformed informers, and the views controllers read them
// through.
//
// The caches are the operator's memory: per push or pull object they hold
// the object, its Secret and its account. Transform trims them to what
// decisions read and stores generated Secrets and accounts as compact
// entries (compact.go); Secrets and Accounts hand controllers ordinary
// client-go listers that expand those entries, so a controller never sees
// one.
//
// It imports the API, the generated clients and pkg/credentials (the shape
// of what it compacts).
package objectcache

import (
	"reflect"
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

// Secrets returns the view of the operator's Secrets.
func (f *Factory) Secrets() *Secrets { return NewSecrets(f.Managed.Core().V1().Secrets()) }

// Accounts returns the view of the ImageRegistryAccounts.
func (f *Factory) Accounts() *Accounts {
	return NewAccounts(f.Registry.Registry().V1alpha1().ImageRegistryAccounts())
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
// entries.
type Secrets struct {
	informer cache.SharedIndexInformer
	view     *view[*corev1.Secret]
}

// NewSecrets wraps an informer that runs Transform.
func NewSecrets(inf coreinformers.SecretInformer) *Secrets {
	return &Secrets{informer: inf.Informer(), view: &view[*corev1.Secret]{inf.Informer(), corev1.Resource("secrets"), expandSecret}}
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

// Accounts is an ImageRegistryAccount informer read through a lister that
// expands compact entries.
type Accounts struct {
	informer cache.SharedIndexInformer
	view     *view[*v1alpha1.ImageRegistryAccount]
}

// NewAccounts wraps an informer that runs Transform.
func NewAccounts(inf registryinformers.ImageRegistryAccountInformer) *Accounts {
	return &Accounts{informer: inf.Informer(), view: &view[*v1alpha1.ImageRegistryAccount]{inf.Informer(), v1alpha1.Resource("imageregistryaccounts"), expandAccount}}
}

// Lister returns a lister of typed, trimmed accounts.
func (a *Accounts) Lister() listers.ImageRegistryAccountLister { return accountLister{a.view} }

// AddEventHandler adds a handler; it may receive compact entries.
func (a *Accounts) AddEventHandler(h cache.ResourceEventHandler) (cache.ResourceEventHandlerRegistration, error) {
	return a.informer.AddEventHandler(h)
}

// HasSynced tells whether the informer has synced.
func (a *Accounts) HasSynced() bool { return a.informer.HasSynced() }

// Objects is an informer of typed objects (push or pull objects) with a
// typed Get. Its informer is exposed for indexers and handlers: it holds
// typed objects only.
type Objects[T runtime.Object] struct {
	Informer cache.SharedIndexInformer
	view     *view[T]
}

// NewObjects wraps an informer of T's resource.
func NewObjects[T runtime.Object](inf cache.SharedIndexInformer, resource string) *Objects[T] {
	return &Objects[T]{Informer: inf, view: &view[T]{inf, v1alpha1.Resource(resource), func(obj any) (T, bool) {
		t, ok := obj.(T)
		return t, ok
	}}}
}

// Get returns the cached object; it is shared: copy before changing it.
func (o *Objects[T]) Get(namespace, name string) (T, error) { return o.view.get(namespace, name) }
