package main

import (
	"context"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/clock"

	"github.com/image-registry-operator/image-registry-operator/pkg/controller/imageregistry"
	"github.com/image-registry-operator/image-registry-operator/pkg/controller/imageregistryaccount"
	"github.com/image-registry-operator/image-registry-operator/pkg/controller/imagesecret"
	clientset "github.com/image-registry-operator/image-registry-operator/pkg/generated/clientset/versioned"
	"github.com/image-registry-operator/image-registry-operator/pkg/objectcache"
)

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
	// Every informer trims what it caches and the Secret and account caches
	// hold compact entries (objectcache); controllers read them through
	// its views.
	f := objectcache.NewFactory(c.kube, c.registry, o.namespace, resyncPeriod)
	secrets, accounts := f.Secrets(), f.Accounts()
	registries := f.Registry.Registry().V1alpha1().ImageRegistries()

	registryCtrl, err := imageregistry.NewController(ctx, c.kube, c.registry, c.dynamic,
		registries,
		f.Kube.Apps().V1().StatefulSets(),
		f.Kube.Core().V1().Services(),
		f.Kube.Core().V1().ConfigMaps(),
		secrets,
		f.Kube.Core().V1().ServiceAccounts(),
		f.Kube.Rbac().V1().RoleBindings(),
		// Registry and collector pods: only those the operator labelled.
		f.Managed.Core().V1().Pods(),
		// Volume claims: few, and a claim made from a volumeClaimTemplate
		// carries no managed-by label.
		f.Kube.Core().V1().PersistentVolumeClaims(),
		f.Kube.Policy().V1().PodDisruptionBudgets(),
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

	// Push and pull secrets: one controller each, on shared informers.
	inf := imagesecret.Informers{Secrets: secrets, Accounts: accounts, Registries: registries,
		ServiceAccounts: f.Kube.Core().V1().ServiceAccounts()}
	opts := imagesecret.Options{
		DefaultRegistry:           o.defaultRegistry,
		DefaultRegistryNamespaces: o.defaultRegistryNamespaces,
		DefaultRotationInterval:   o.rotationInterval,
		GracePeriod:               o.gracePeriod,
		BcryptCost:                o.bcryptCost,
		Clock:                     clock.RealClock{},
	}
	pushCtrl, err := imagesecret.NewPushController(ctx, c.kube, c.registry, inf, f.Registry.Registry().V1alpha1().ImagePushSecrets(), opts)
	if err != nil {
		return nil, nil, err
	}
	pullCtrl, err := imagesecret.NewPullController(ctx, c.kube, c.registry, inf, f.Registry.Registry().V1alpha1().ImagePullSecrets(), opts)
	if err != nil {
		return nil, nil, err
	}
	// Static accounts' status (login name, Ready); generated ones are skipped.
	accountCtrl, err := imageregistryaccount.NewController(ctx, c.kube, c.registry, accounts,
		imageregistryaccount.Options{Clock: clock.RealClock{}})
	if err != nil {
		return nil, nil, err
	}
	return map[string]runnable{
		"imageregistry":        registryCtrl,
		"imageregistryaccount": accountCtrl,
		"imagepushsecret":      pushCtrl,
		"imagepullsecret":      pullCtrl,
	}, []starter{f}, nil
}
