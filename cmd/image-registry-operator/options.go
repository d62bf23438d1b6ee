package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"golang.org/x/crypto/bcrypt"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/image-registry-operator/image-registry-operator/pkg/controller/imageregistry"
	"github.com/image-registry-operator/image-registry-operator/pkg/controller/imagesecret"
)

// options are the operator's settings: flags, with defaults from the
// environment where the deployment manifests set them.
type options struct {
	kubeconfig string
	master     string

	// namespace limits the operator to one namespace; empty watches all.
	namespace string
	// operatorNamespace holds the operator's own objects (the root CA Secret).
	operatorNamespace string
	// dnsZone makes registry hostnames: <name>.<namespace>.<dnsZone>.
	dnsZone string
	// defaultRegistry serves push and pull secrets without a registryRef.
	defaultRegistry types.NamespacedName
	// defaultRegistryNamespaces may use the default registry besides what
	// its spec.access allows.
	defaultRegistryNamespaces []string

	rotationInterval time.Duration
	gracePeriod      time.Duration
	bcryptCost       int

	authImage       string
	registryImage   string
	dockerAuthImage string
	// allowedImages restricts ImageRegistry.spec.images; empty allows any.
	allowedImages []string
	// tokenServerClusterRole is bound to each registry's token server.
	tokenServerClusterRole string

	workers   int
	kubeQPS   float64
	kubeBurst int

	healthAddr  string
	metricsAddr string
	profiling   bool

	leaderElect      bool
	leaderElectionID string
	leaseDuration    time.Duration
	renewDeadline    time.Duration
	retryPeriod      time.Duration
}

// splitList splits a comma-separated flag value; empty gives an empty,
// non-nil list.
func splitList(v string) []string {
	out := []string{}
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

func envOr(key, def string) string {
	if v, ok := os.LookupEnv(key); ok && v != "" {
		return v
	}
	return def
}

func (o *options) addFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.kubeconfig, "kubeconfig", os.Getenv("KUBECONFIG"), "Path to a kubeconfig. Empty: in-cluster configuration.")
	fs.StringVar(&o.master, "master", "", "The address of the Kubernetes API server. Overrides any value in kubeconfig.")
	fs.StringVar(&o.namespace, "namespace", os.Getenv("WATCH_NAMESPACE"), "Watch only this namespace (env WATCH_NAMESPACE). Empty: all namespaces.")
	fs.StringVar(&o.operatorNamespace, "operator-namespace", envOr("OPERATOR_NAMESPACE", envOr("POD_NAMESPACE", "image-registry-operator")), "Namespace of the operator's own objects, such as the root CA Secret (env OPERATOR_NAMESPACE).")
	fs.StringVar(&o.dnsZone, "dns-zone", envOr("OPERATOR_DNS_ZONE", imageregistry.DefaultDNSZone), "DNS zone of registry hostnames <name>.<namespace>.<zone> (env OPERATOR_DNS_ZONE).")
	fs.StringVar(&o.defaultRegistry.Name, "default-registry-name", os.Getenv("OPERATOR_DEFAULT_REGISTRY_NAME"), "ImageRegistry used by push and pull secrets without registryRef (env OPERATOR_DEFAULT_REGISTRY_NAME). Empty: none.")
	fs.StringVar(&o.defaultRegistry.Namespace, "default-registry-namespace", os.Getenv("OPERATOR_DEFAULT_REGISTRY_NAMESPACE"), "Namespace of the default ImageRegistry (env OPERATOR_DEFAULT_REGISTRY_NAMESPACE). Empty: the operator namespace.")
	fs.Func("allowed-images", `Comma-separated images that ImageRegistry spec.images may name; an entry ending in "*" allows every image starting with the rest (e.g. "registry.example.org/mirror/*"). Empty: any image.`, func(v string) error {
		o.allowedImages = splitList(v)
		return nil
	})
	fs.StringVar(&o.tokenServerClusterRole, "token-server-cluster-role", imageregistry.DefaultTokenServerClusterRole, "ClusterRole (get, list, watch imageregistryaccounts) bound to each registry's token server in its namespace.")
	o.defaultRegistryNamespaces = []string{"*"}
	fs.Func("default-registry-allowed-namespaces", `Comma-separated namespaces whose push and pull secrets may use the default registry, besides its own namespace and its spec.access.namespaces; "*" is every namespace, empty none. Default "*".`, func(v string) error {
		o.defaultRegistryNamespaces = splitList(v)
		return nil
	})
	fs.DurationVar(&o.rotationInterval, "rotation-interval", imagesecret.DefaultRotationInterval, "Default password rotation interval of push and pull secrets.")
	fs.DurationVar(&o.gracePeriod, "grace-period", imagesecret.DefaultGracePeriod, "How long a replaced password keeps working after it left the Secret.")
	fs.IntVar(&o.bcryptCost, "bcrypt-cost", imagesecret.DefaultBcryptCost, "bcrypt cost of password hashes. The passwords are 32 random bytes, which no cost makes easier or harder to guess from a hash; a higher cost only costs CPU (see README, Performance).")
	fs.StringVar(&o.authImage, "auth-image", envOr("OPERATOR_AUTH_IMAGE", "ghcr.io/image-registry-operator/image-registry-operator:latest"), "Image with registry-auth and k8s-docker-authn (env OPERATOR_AUTH_IMAGE).")
	fs.StringVar(&o.registryImage, "registry-image", envOr("OPERATOR_REGISTRY_IMAGE", imageregistry.DefaultRegistryImage), "Distribution registry image (env OPERATOR_REGISTRY_IMAGE).")
	fs.StringVar(&o.dockerAuthImage, "docker-auth-image", envOr("OPERATOR_DOCKER_AUTH_IMAGE", imageregistry.DefaultDockerAuthImage), "cesanta/docker_auth image for auth.server=docker_auth (env OPERATOR_DOCKER_AUTH_IMAGE).")
	fs.IntVar(&o.workers, "workers", 4, "Workers per controller.")
	// The API server's priority and fairness is what protects it; the
	// client-side limit only guards against a runaway loop. At 50 QPS a
	// burst of 1000 new push and pull secrets (about 9 requests each) took
	// minutes (docs/performance.md).
	fs.Float64Var(&o.kubeQPS, "kube-api-qps", 1000, "Client-side rate limit of API requests per second.")
	fs.IntVar(&o.kubeBurst, "kube-api-burst", 2000, "Burst of the client-side API rate limit.")
	fs.StringVar(&o.healthAddr, "health-addr", ":8081", "Address of /healthz and /readyz. Empty: off.")
	fs.StringVar(&o.metricsAddr, "metrics-addr", ":8080", "Address of the Prometheus /metrics endpoint. Empty: off.")
	fs.BoolVar(&o.profiling, "profiling", false, "Also serve Go's /debug/pprof/ profiles on --metrics-addr.")
	fs.BoolVar(&o.leaderElect, "leader-elect", false, "Hold a Lease in the operator namespace before acting, so that only one of several replicas works.")
	fs.StringVar(&o.leaderElectionID, "leader-election-id", "image-registry-operator", "Name of the leader election Lease.")
	fs.DurationVar(&o.leaseDuration, "leader-elect-lease-duration", 15*time.Second, "How long standbys wait before taking over a lease that was not renewed.")
	fs.DurationVar(&o.renewDeadline, "leader-elect-renew-deadline", 10*time.Second, "How long the leader retries renewing before it gives up leading.")
	fs.DurationVar(&o.retryPeriod, "leader-elect-retry-period", 2*time.Second, "How often candidates try to acquire or renew the lease.")
}

// complete fills defaults that depend on other flags.
func (o *options) complete() {
	if o.defaultRegistry.Name != "" && o.defaultRegistry.Namespace == "" {
		o.defaultRegistry.Namespace = o.operatorNamespace
	}
	o.dnsZone = imageregistry.NormalizeDNSZone(o.dnsZone)
}

// validate reports every bad flag at once, so a user fixes them in one go.
func (o *options) validate() error {
	var errs []error
	for _, ns := range []struct{ flag, value string }{
		{"namespace", o.namespace},
		{"operator-namespace", o.operatorNamespace},
		{"default-registry-namespace", o.defaultRegistry.Namespace},
	} {
		if ns.value == "" {
			continue
		}
		if msgs := validation.IsDNS1123Label(ns.value); len(msgs) > 0 {
			errs = append(errs, fmt.Errorf("--%s=%q: %s", ns.flag, ns.value, strings.Join(msgs, "; ")))
		}
	}
	for _, ns := range o.defaultRegistryNamespaces {
		if msgs := validation.IsDNS1123Label(ns); ns != "*" && len(msgs) > 0 {
			errs = append(errs, fmt.Errorf("--default-registry-allowed-namespaces: %q: %s", ns, strings.Join(msgs, "; ")))
		}
	}
	if o.operatorNamespace == "" {
		errs = append(errs, errors.New("--operator-namespace must not be empty"))
	}
	if o.defaultRegistry.Name != "" {
		if msgs := validation.IsDNS1123Subdomain(o.defaultRegistry.Name); len(msgs) > 0 {
			errs = append(errs, fmt.Errorf("--default-registry-name=%q: %s", o.defaultRegistry.Name, strings.Join(msgs, "; ")))
		}
	}
	if msgs := validation.IsDNS1123Subdomain(o.dnsZone); o.dnsZone == "" || len(msgs) > 0 {
		errs = append(errs, fmt.Errorf("--dns-zone=%q: not a DNS name: %s", o.dnsZone, strings.Join(msgs, "; ")))
	}
	if o.rotationInterval < 10*time.Second {
		errs = append(errs, fmt.Errorf("--rotation-interval=%s: must be at least 10s", o.rotationInterval))
	}
	if o.gracePeriod <= 0 {
		errs = append(errs, fmt.Errorf("--grace-period=%s: must be positive (clients that read the Secret just before a rotation need it)", o.gracePeriod))
	}
	if o.bcryptCost < bcrypt.MinCost || o.bcryptCost > bcrypt.MaxCost {
		errs = append(errs, fmt.Errorf("--bcrypt-cost=%d: must be within %d..%d", o.bcryptCost, bcrypt.MinCost, bcrypt.MaxCost))
	}
	if o.workers < 1 {
		errs = append(errs, fmt.Errorf("--workers=%d: must be at least 1", o.workers))
	}
	if o.kubeQPS <= 0 || o.kubeBurst < 1 {
		errs = append(errs, fmt.Errorf("--kube-api-qps and --kube-api-burst must be positive"))
	}
	for _, img := range []struct{ flag, value string }{{"auth-image", o.authImage}, {"registry-image", o.registryImage}, {"docker-auth-image", o.dockerAuthImage}} {
		if img.value == "" {
			errs = append(errs, fmt.Errorf("--%s must not be empty", img.flag))
		}
	}
	if o.leaderElect && !(o.leaseDuration > o.renewDeadline && o.renewDeadline > o.retryPeriod && o.retryPeriod > 0) {
		errs = append(errs, fmt.Errorf("leader election needs lease duration > renew deadline > retry period > 0"))
	}
	return errors.Join(errs...)
}
