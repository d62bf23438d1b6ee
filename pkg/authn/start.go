package authn

import (
	"context"
	"fmt"

	"k8s.io/client-go/rest"

	"github.com/image-registry-operator/image-registry-operator/pkg/generated/clientset/versioned"
	informers "github.com/image-registry-operator/image-registry-operator/pkg/generated/informers/externalversions"
)

// Start makes an authenticator with its own informer of o.Namespace's
// accounts and starts the informer, without waiting for its cache to fill:
// HasSynced tells when it has. The informer stops with ctx and keeps
// retrying its list and watch until then. It needs get, list and watch on
// imageregistryaccounts in that namespace only.
//
// The ext_auth sidecar (k8s-docker-authn --serve) starts this way: until the
// cache is filled it answers "unavailable" and the ext_auth process checks
// the login on its own.
func Start(ctx context.Context, cfg *rest.Config, o *Options) (*Authenticator, error) {
	// The informer's watch must outlive the request timeout.
	watchCfg := rest.CopyConfig(cfg)
	watchCfg.Timeout = 0
	client, err := versioned.NewForConfig(watchCfg)
	if err != nil {
		return nil, fmt.Errorf("create client: %w", err)
	}
	factory := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithNamespace(o.Namespace))
	a, err := New(factory.Registry().V1alpha1().ImageRegistryAccounts(), o)
	if err != nil {
		return nil, err
	}
	factory.Start(ctx.Done())
	return a, nil
}
