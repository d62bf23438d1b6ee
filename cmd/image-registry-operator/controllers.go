package main

import (
	"context"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/clock"

	registryv1alpha1 "github.com/image-registry-operator/image-registry-operator/pkg/apis/registry/v1alpha1"
	"github.com/image-registry-operator/image-registry-operator/pkg/controller/imageregistry"
	"github.com/image-registry-operator/image-registry-operator/pkg/controller/imagesecret"
	clientset "github.com/image-registry-operator/image-registry-operator/pkg/generated/clientset/versioned"
)

// managedOnly limits a list/watch to objects the operator made.
func managedOnly(opts *metav1.ListOptions) {
	opts.LabelSelector = labels.Set{registryv1alpha1.LabelManagedBy: registryv1alpha1.ManagedByValue}.String()
}

// clients are the API clients the controllers share.
type clients struct {
	kube     kubernetes.Interface
	registry clientset.Interface
	// dynamic reaches cert-manager's Certificates without importing cert-manager.
	dynamic dynamic.Interface
}

// newControllers builds every controller on shared informer factories. It
// must run before the factories start: controllers add indexers.
func newControllers(ctx context.Context, o *options, c clients) (map[string]runnable, []starter, error) {
	f := newInformerFactories(o, c.kube, c.registry)
	registries := f.registry.Registry().V1alpha1().ImageRegistries()
	// The Secret and account caches hold compact entries
	// (imagesecret.TrimForCache); both controllers read them through
	// imagesecret.CompactSecrets and CompactAccounts.
	secrets := f.secrets.Core().V1().Secrets()

	registryCtrl, err := imageregistry.NewController(ctx, c.kube, c.registry, c.dynamic,
		registries,
		f.kube.Apps().V1().StatefulSets(),
		f.kube.Core().V1().Services(),
		f.kube.Core().V1().ConfigMaps(),
		secrets,
		f.kube.Core().V1().ServiceAccounts(),
		f.kube.Rbac().V1().RoleBindings(),
		// Registry and collector pods: only those the operator labelled.
		f.secrets.Core().V1().Pods(),
		imageregistry.Options{
			OperatorNamespace:      o.operatorNamespace,
			DNSZone:                o.dnsZone,
			AuthImage:              o.authImage,
			RegistryImage:          o.registryImage,
			DockerAuthImage:        o.dockerAuthImage,
			TokenServerClusterRole: o.tokenServerClusterRole,
			AllowedImages:          o.allowedImages,
			Clock:                  clock.RealClock{},
		})
	if err != nil {
		return nil, nil, err
	}
	ctrls := map[string]runnable{"imageregistry": registryCtrl}

	// Push and pull secrets: one controller each, on shared informers.
	accounts := f.registry.Registry().V1alpha1().ImageRegistryAccounts()
	for _, kind := range []imagesecret.Kind{imagesecret.KindPush, imagesecret.KindPull} {
		ctrl, err := imagesecret.NewController(ctx, c.kube, c.registry,
			secrets, registries, accounts,
			f.registry.Registry().V1alpha1().ImagePushSecrets(),
			f.registry.Registry().V1alpha1().ImagePullSecrets(),
			imagesecret.Options{
				Kind:                      kind,
				DefaultRegistry:           o.defaultRegistry,
				DefaultRegistryNamespaces: o.defaultRegistryNamespaces,
				DefaultRotationInterval:   o.rotationInterval,
				GracePeriod:               o.gracePeriod,
				BcryptCost:                o.bcryptCost,
				Clock:                     clock.RealClock{},
			})
		if err != nil {
			return nil, nil, err
		}
		ctrls["image"+string(kind)+"secret"] = ctrl
	}
	return ctrls, []starter{f.kube, f.secrets, f.registry}, nil
}
