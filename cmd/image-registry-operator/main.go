// Command image-registry-operator runs the controllers of the
// registry.mgoltzsche.github.com API: ImageRegistry, ImagePushSecret and
// ImagePullSecret (which maintain ImageRegistryAccounts).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"reflect"
	"syscall"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/klog/v2"

	clientset "github.com/image-registry-operator/image-registry-operator/pkg/generated/clientset/versioned"
	"github.com/image-registry-operator/image-registry-operator/pkg/metrics"
)

// resyncPeriod is only a safety net: rotation runs on workqueue timers.
const resyncPeriod = 10 * time.Hour

func main() {
	klog.InitFlags(nil)
	o := &options{}
	o.addFlags(flag.CommandLine)
	flag.Parse()
	o.complete()
	if err := o.validate(); err != nil {
		fmt.Fprintf(os.Stderr, "invalid flags:\n%v\n", err)
		os.Exit(2)
	}

	klog.InfoS("Garbage collector target", "gcPercent", applyGCPercent())

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		klog.ErrorS(err, "Operator failed")
		klog.FlushAndExit(klog.ExitFlushTimeout, 1)
	}
	klog.Flush()
}

func restConfig(o *options) (*rest.Config, error) {
	cfg, err := clientcmd.BuildConfigFromFlags(o.master, o.kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("load Kubernetes client configuration: %w", err)
	}
	cfg.QPS = float32(o.kubeQPS)
	cfg.Burst = o.kubeBurst
	cfg.UserAgent = "image-registry-operator"
	return cfg, nil
}

// run starts the informers and controllers and blocks until ctx ends.
func run(ctx context.Context, o *options) error {
	cfg, err := restConfig(o)
	if err != nil {
		return err
	}
	// Built-in kinds (Secrets, events, StatefulSets, ...) travel as protobuf,
	// which the API server encodes and decodes with a fraction of the CPU
	// JSON costs; custom resources and the dynamic client speak JSON only.
	kubeCfg := rest.CopyConfig(cfg)
	kubeCfg.ContentType = runtime.ContentTypeProtobuf
	kubeCfg.AcceptContentTypes = runtime.ContentTypeProtobuf + "," + runtime.ContentTypeJSON
	kubeClient, err := kubernetes.NewForConfig(kubeCfg)
	if err != nil {
		return fmt.Errorf("build Kubernetes client: %w", err)
	}
	registryClient, err := clientset.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("build registry client: %w", err)
	}
	dynamicClient, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("build dynamic client: %w", err)
	}
	c := clients{kube: kubeClient, registry: registryClient, dynamic: dynamicClient}
	// Fail fast with a clear message when the API server or the CRDs are missing.
	if _, err := registryClient.Discovery().ServerResourcesForGroupVersion("registry.mgoltzsche.github.com/v1alpha1"); err != nil {
		return fmt.Errorf("the registry.mgoltzsche.github.com/v1alpha1 API is not served (are the CRDs from artifacts/crds applied?): %w", err)
	}

	metrics.Register()
	p := &probes{leader: leaderelection.NewLeaderHealthzAdaptor(o.renewDeadline)}
	if err := startServers(ctx, o, p); err != nil {
		return err
	}
	if !o.leaderElect {
		return runControllers(ctx, o, c, p)
	}
	// Standbys are ready: they serve nothing but wait for the lease.
	p.ready.Store(true)
	// A leader whose controllers fail gives the lease up (cancel releases
	// it) and exits with the error, rather than holding it idle.
	leCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	runErr := make(chan error, 1)
	err = runAsLeader(leCtx, o, kubeClient, p, func(ctx context.Context) {
		p.ready.Store(false)
		if err := runControllers(ctx, o, c, p); err != nil {
			runErr <- err
			cancel()
		}
	})
	select {
	case e := <-runErr:
		return errors.Join(err, e)
	default:
		return err
	}
}

// runControllers starts the informers and controllers and blocks until ctx
// ends or a controller fails.
func runControllers(ctx context.Context, o *options, c clients, p *probes) error {
	logger := klog.FromContext(ctx)
	ctrls, factories, err := newControllers(ctx, o, c)
	if err != nil {
		return err
	}
	for _, f := range factories {
		f.Start(ctx.Done())
	}
	for _, f := range factories {
		for typ, ok := range f.WaitForCacheSync(ctx.Done()) {
			if !ok {
				return fmt.Errorf("informer cache of %v did not sync", typ)
			}
		}
	}
	p.ready.Store(true)
	logger.Info("Starting controllers", "namespace", o.namespace, "dnsZone", o.dnsZone, "controllers", len(ctrls))

	errCh := make(chan error, len(ctrls))
	for name, c := range ctrls {
		go func() {
			if err := c.Run(ctx, o.workers); err != nil {
				errCh <- fmt.Errorf("%s controller: %w", name, err)
			}
		}()
	}
	select {
	case <-ctx.Done():
	case err := <-errCh:
		return err
	}
	for _, f := range factories {
		f.Shutdown()
	}
	logger.Info("Stopped")
	return nil
}

// runnable is what each controller package's Controller offers.
type runnable interface {
	Run(ctx context.Context, workers int) error
}

// starter is an informer factory.
type starter interface {
	Start(stopCh <-chan struct{})
	WaitForCacheSync(stopCh <-chan struct{}) map[reflect.Type]bool
	Shutdown()
}
