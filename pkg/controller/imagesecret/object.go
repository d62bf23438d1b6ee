package imagesecret

import (
	"context"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/tools/cache"

	"github.com/image-registry-operator/image-registry-operator/pkg/apis/registry/v1alpha1"
	"github.com/image-registry-operator/image-registry-operator/pkg/generated/clientset/versioned"
	listers "github.com/image-registry-operator/image-registry-operator/pkg/generated/listers/registry/v1alpha1"
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
}

func wrapPush(o *v1alpha1.ImagePushSecret) *imageSecret {
	return &imageSecret{obj: o, meta: &o.ObjectMeta, spec: &o.Spec, status: &o.Status}
}

func wrapPull(o *v1alpha1.ImagePullSecret) *imageSecret {
	return &imageSecret{obj: o, meta: &o.ObjectMeta, spec: &o.Spec, status: &o.Status}
}

// objectAccess hides which of the two kinds a controller serves. Every
// method returns a deep copy the caller owns.
type objectAccess interface {
	// get reads the informer cache.
	get(namespace, name string) (*imageSecret, error)
	// getLive reads the API server, for decisions that lead to writes.
	getLive(ctx context.Context, namespace, name string) (*imageSecret, error)
	update(ctx context.Context, o *imageSecret) (*imageSecret, error)
	updateStatus(ctx context.Context, o *imageSecret) (*imageSecret, error)
	informer() cache.SharedIndexInformer
	groupVersionKind() schema.GroupVersionKind
}

type pushAccess struct {
	client versioned.Interface
	lister listers.ImagePushSecretLister
	inf    cache.SharedIndexInformer
}

func (a *pushAccess) get(namespace, name string) (*imageSecret, error) {
	o, err := a.lister.ImagePushSecrets(namespace).Get(name)
	if err != nil {
		return nil, err
	}
	return wrapPush(o.DeepCopy()), nil
}

func (a *pushAccess) getLive(ctx context.Context, namespace, name string) (*imageSecret, error) {
	o, err := a.client.RegistryV1alpha1().ImagePushSecrets(namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	return wrapPush(o), nil
}

func (a *pushAccess) update(ctx context.Context, o *imageSecret) (*imageSecret, error) {
	r, err := a.client.RegistryV1alpha1().ImagePushSecrets(o.meta.Namespace).Update(ctx, o.obj.(*v1alpha1.ImagePushSecret), metav1.UpdateOptions{})
	if err != nil {
		return nil, err
	}
	return wrapPush(r), nil
}

func (a *pushAccess) updateStatus(ctx context.Context, o *imageSecret) (*imageSecret, error) {
	r, err := a.client.RegistryV1alpha1().ImagePushSecrets(o.meta.Namespace).UpdateStatus(ctx, o.obj.(*v1alpha1.ImagePushSecret), metav1.UpdateOptions{})
	if err != nil {
		return nil, err
	}
	return wrapPush(r), nil
}

func (a *pushAccess) informer() cache.SharedIndexInformer { return a.inf }

func (a *pushAccess) groupVersionKind() schema.GroupVersionKind {
	return v1alpha1.SchemeGroupVersion.WithKind(pushObjectKind)
}

type pullAccess struct {
	client versioned.Interface
	lister listers.ImagePullSecretLister
	inf    cache.SharedIndexInformer
}

func (a *pullAccess) get(namespace, name string) (*imageSecret, error) {
	o, err := a.lister.ImagePullSecrets(namespace).Get(name)
	if err != nil {
		return nil, err
	}
	return wrapPull(o.DeepCopy()), nil
}

func (a *pullAccess) getLive(ctx context.Context, namespace, name string) (*imageSecret, error) {
	o, err := a.client.RegistryV1alpha1().ImagePullSecrets(namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	return wrapPull(o), nil
}

func (a *pullAccess) update(ctx context.Context, o *imageSecret) (*imageSecret, error) {
	r, err := a.client.RegistryV1alpha1().ImagePullSecrets(o.meta.Namespace).Update(ctx, o.obj.(*v1alpha1.ImagePullSecret), metav1.UpdateOptions{})
	if err != nil {
		return nil, err
	}
	return wrapPull(r), nil
}

func (a *pullAccess) updateStatus(ctx context.Context, o *imageSecret) (*imageSecret, error) {
	r, err := a.client.RegistryV1alpha1().ImagePullSecrets(o.meta.Namespace).UpdateStatus(ctx, o.obj.(*v1alpha1.ImagePullSecret), metav1.UpdateOptions{})
	if err != nil {
		return nil, err
	}
	return wrapPull(r), nil
}

func (a *pullAccess) informer() cache.SharedIndexInformer { return a.inf }

func (a *pullAccess) groupVersionKind() schema.GroupVersionKind {
	return v1alpha1.SchemeGroupVersion.WithKind(pullObjectKind)
}
