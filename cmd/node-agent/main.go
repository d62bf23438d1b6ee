// Command node-agent keeps a node able to pull from every in-cluster
// ImageRegistry: it maps registry hostnames to their Services in a marked
// block of the node's hosts file and installs each registry's CA for
// containerd and Docker (pkg/nodeagent). It runs as a DaemonSet, one per
// node, and only reads the API.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubeinformers "k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/image-registry-operator/image-registry-operator/pkg/apis/registry/v1alpha1"
	clientset "github.com/image-registry-operator/image-registry-operator/pkg/generated/clientset/versioned"
	informers "github.com/image-registry-operator/image-registry-operator/pkg/generated/informers/externalversions"
	"github.com/image-registry-operator/image-registry-operator/pkg/metrics"
	"github.com/image-registry-operator/image-registry-operator/pkg/nodeagent"
)

func main() {
	klog.InitFlags(nil)
	var (
		o          nodeagent.Options
		kubeconfig string
		master     string
		namespace  string
		resync     time.Duration
	)
	flag.StringVar(&kubeconfig, "kubeconfig", "", "Path to a kubeconfig; in-cluster configuration when empty.")
	flag.StringVar(&master, "master", "", "API server address (overrides the kubeconfig's).")
	flag.StringVar(&namespace, "namespace", os.Getenv("WATCH_NAMESPACE"), "Watch registries of this namespace only (env WATCH_NAMESPACE); all when empty.")
	flag.StringVar(&o.HostsFile, "hosts-file", "/etc/hosts", "The node's hosts file; empty: do not write one.")
	flag.StringVar(&o.ContainerdCertsDir, "containerd-certs-dir", "/etc/containerd/certs.d", "containerd's registry config_path; empty: do not write it.")
	flag.StringVar(&o.DockerCertsDir, "docker-certs-dir", "", "Docker's certs.d (/etc/docker/certs.d); empty: do not write it.")
	flag.StringVar(&o.DNSZone, "dns-zone", envOr("OPERATOR_DNS_ZONE", "svc.cluster.local"), "Only registry hostnames in this zone are written (env OPERATOR_DNS_ZONE; the operator's --dns-zone); empty: any.")
	flag.DurationVar(&resync, "resync", 5*time.Minute, "How often the node's files are checked against the API even without changes (repairs hand edits).")
	flag.Parse()
	if flag.NArg() > 0 || resync <= 0 || (o.HostsFile == "" && o.ContainerdCertsDir == "" && o.DockerCertsDir == "") {
		fmt.Fprintln(os.Stderr, "usage: node-agent [flags]; at least one of --hosts-file, --containerd-certs-dir, --docker-certs-dir, and --resync > 0")
		os.Exit(2)
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, kubeconfig, master, namespace, resync, o); err != nil {
		klog.ErrorS(err, "Node agent failed")
		klog.FlushAndExit(klog.ExitFlushTimeout, 1)
	}
	klog.Flush()
}

func envOr(k, def string) string {
	if v, ok := os.LookupEnv(k); ok {
		return v
	}
	return def
}

func run(ctx context.Context, kubeconfig, master, namespace string, resync time.Duration, o nodeagent.Options) error {
	cfg, err := clientcmd.BuildConfigFromFlags(master, kubeconfig)
	if err != nil {
		return fmt.Errorf("load Kubernetes client configuration: %w", err)
	}
	cfg.UserAgent = "image-registry-operator-node-agent"
	kubeClient, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	registryClient, err := clientset.NewForConfig(cfg)
	if err != nil {
		return err
	}
	metrics.Register()
	regFactory := informers.NewSharedInformerFactoryWithOptions(registryClient, resync, informers.WithNamespace(namespace))
	// Only the Services the operator made (the registries' LoadBalancer
	// Services carry its managed-by label).
	kubeFactory := kubeinformers.NewSharedInformerFactoryWithOptions(kubeClient, resync,
		kubeinformers.WithNamespace(namespace),
		kubeinformers.WithTweakListOptions(func(lo *metav1.ListOptions) {
			lo.LabelSelector = v1alpha1.LabelManagedBy + "=" + v1alpha1.ManagedByValue
		}))
	agent, err := nodeagent.New(ctx, regFactory.Registry().V1alpha1().ImageRegistries(), kubeFactory.Core().V1().Services(), o, clock.RealClock{})
	if err != nil {
		return err
	}
	regFactory.Start(ctx.Done())
	kubeFactory.Start(ctx.Done())
	klog.InfoS("Starting node agent", "namespace", namespace, "hostsFile", o.HostsFile,
		"containerdCertsDir", o.ContainerdCertsDir, "dockerCertsDir", o.DockerCertsDir, "dnsZone", o.DNSZone)
	err = agent.Run(ctx)
	regFactory.Shutdown()
	kubeFactory.Shutdown()
	return err
}
