package imagesecret

import (
	"context"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/tools/cache"

	"github.com/image-registry-operator/image-registry-operator/pkg/apis/registry/v1alpha1"
	"github.com/image-registry-operator/image-registry-operator/pkg/credentials"
	"github.com/image-registry-operator/image-registry-operator/pkg/objectcache"
)

// imageSecret is a private deep copy of an ImagePushSecret or ImagePullSecret.
// The two kinds share spec and status types, so one sync serves both through
// these pointers into the typed object; obj is what clients and the event
// recorder need.
type imageSecret struct {
	obj    runtime.Object
	meta   *metav1.ObjectMeta
	spec   *v1alpha1.ImageSecretSpec
	status *v1alpha1.ImageSecretStatus
	// serviceAccounts is an ImagePullSecret's spec.serviceAccounts.
	serviceAccounts []string
}

func wrapPush(o *v1alpha1.ImagePushSecret) *imageSecret {
	return &imageSecret{obj: o, meta: &o.ObjectMeta, spec: &o.Spec, status: &o.Status}
}

func wrapPull(o *v1alpha1.ImagePullSecret) *imageSecret {
	return &imageSecret{obj: o, meta: &o.ObjectMeta, spec: &o.Spec.ImageSecretSpec, status: &o.Status, serviceAccounts: o.Spec.ServiceAccounts}
}

// objectAccess hides which of the two kinds a controller serves. Every
// method returns a deep copy the caller owns.
type objectAccess interface {
	// get reads the informer cache.
	get(namespace, name string) (*imageSecret, error)
	// getLive reads the API server.
	getLive(ctx context.Context, namespace, name string) (*imageSecret, error)
	update(ctx context.Context, o *imageSecret) (*imageSecret, error)
	updateStatus(ctx context.Context, o *imageSecret) (*imageSecret, error)
	informer() cache.SharedIndexInformer
	groupVersionKind() schema.GroupVersionKind
}

// typedClient is what the generated clients of both kinds offer.
type typedClient[T any] interface {
	Get(ctx context.Context, name string, opts metav1.GetOptions) (T, error)
	Update(ctx context.Context, obj T, opts metav1.UpdateOptions) (T, error)
	UpdateStatus(ctx context.Context, obj T, opts metav1.UpdateOptions) (T, error)
}

// access is the objectAccess of one kind, T its typed object.
type access[T runtime.Object] struct {
	kind    credentials.Kind
	client  func(namespace string) typedClient[T]
	objects *objectcache.Objects[T]
	wrap    func(T) *imageSecret
}

func (a *access[T]) get(namespace, name string) (*imageSecret, error) {
	o, err := a.objects.Get(namespace, name)
	if err != nil {
		return nil, err
	}
	return a.wrap(o.DeepCopyObject().(T)), nil
}

func (a *access[T]) getLive(ctx context.Context, namespace, name string) (*imageSecret, error) {
	o, err := a.client(namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	return a.wrap(o), nil
}

func (a *access[T]) update(ctx context.Context, o *imageSecret) (*imageSecret, error) {
	r, err := a.client(o.meta.Namespace).Update(ctx, o.obj.(T), metav1.UpdateOptions{})
	if err != nil {
		return nil, err
	}
	return a.wrap(r), nil
}

func (a *access[T]) updateStatus(ctx context.Context, o *imageSecret) (*imageSecret, error) {
	r, err := a.client(o.meta.Namespace).UpdateStatus(ctx, o.obj.(T), metav1.UpdateOptions{})
	if err != nil {
		return nil, err
	}
	return a.wrap(r), nil
}

func (a *access[T]) informer() cache.SharedIndexInformer { return a.objects.Informer }

func (a *access[T]) groupVersionKind() schema.GroupVersionKind {
	return v1alpha1.SchemeGroupVersion.WithKind(a.kind.ObjectKind())
}
