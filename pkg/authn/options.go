package authn

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// Defaults of the authenticator options.
const (
	DefaultCacheSize      = 1024
	DefaultCacheTTL       = 30 * time.Second
	DefaultRequestTimeout = 10 * time.Second
)

// serviceAccountNamespaceFile holds the pod's namespace in a pod.
const serviceAccountNamespaceFile = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"

// Options configure the authenticator. The same flags are read by the
// docker_auth ext_auth binary (k8s-docker-authn) from its command line and by
// the builtin token server (registry-auth) from the rendered config's
// ext_auth.args, so that both front ends run the authenticator alike.
type Options struct {
	// Namespace holds the ImageRegistryAccounts: the registry's namespace.
	Namespace string
	// Kubeconfig is a kubeconfig file; empty means in-cluster config.
	Kubeconfig string
	// CacheSize bounds the verified-password cache; 0 disables it.
	CacheSize int
	// CacheTTL bounds the life of a verified-password cache entry.
	CacheTTL time.Duration
	// RequestTimeout bounds API server requests: the ext_auth binary's list
	// and the token server's initial cache sync.
	RequestTimeout time.Duration
}

// NewOptions returns options with defaults.
func NewOptions() *Options {
	return &Options{
		CacheSize:      DefaultCacheSize,
		CacheTTL:       DefaultCacheTTL,
		RequestTimeout: DefaultRequestTimeout,
	}
}

// AddFlags registers the options' flags.
func (o *Options) AddFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.Namespace, "namespace", o.Namespace, "Namespace of the ImageRegistryAccounts (the registry's namespace). Default: the pod's namespace.")
	fs.StringVar(&o.Kubeconfig, "kubeconfig", o.Kubeconfig, "Kubeconfig file. Default: in-cluster configuration.")
	fs.IntVar(&o.CacheSize, "auth-cache-size", o.CacheSize, "Number of recently verified logins remembered, so that repeated token requests skip bcrypt. 0 disables the cache.")
	fs.DurationVar(&o.CacheTTL, "auth-cache-ttl", o.CacheTTL, "How long a verified login is remembered. Revocation does not wait for it: every login re-checks the account.")
	fs.DurationVar(&o.RequestTimeout, "api-timeout", o.RequestTimeout, "Timeout of API server requests.")
}

// ParseArgs parses authenticator flags from an argument list, as rendered in
// the auth config's ext_auth.args. Unknown flags and positional arguments
// are errors.
func ParseArgs(args []string) (*Options, error) {
	o := NewOptions()
	fs := flag.NewFlagSet("ext_auth.args", flag.ContinueOnError)
	fs.SetOutput(new(strings.Builder))
	o.AddFlags(fs)
	if err := fs.Parse(args); err != nil {
		return nil, fmt.Errorf("ext_auth.args: %w", err)
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("ext_auth.args: unexpected argument %q", fs.Arg(0))
	}
	return o, o.Complete()
}

// Complete fills in the namespace from the pod's service account when it is
// not set and validates the options.
func (o *Options) Complete() error {
	if o.Namespace == "" {
		if b, err := os.ReadFile(serviceAccountNamespaceFile); err == nil {
			o.Namespace = strings.TrimSpace(string(b))
		}
	}
	var errs []error
	if o.Namespace == "" {
		errs = append(errs, errors.New("--namespace is required outside a pod"))
	}
	if o.CacheSize < 0 {
		errs = append(errs, errors.New("--auth-cache-size must not be negative"))
	}
	if o.CacheTTL < 0 {
		errs = append(errs, errors.New("--auth-cache-ttl must not be negative"))
	}
	if o.RequestTimeout <= 0 {
		errs = append(errs, errors.New("--api-timeout must be positive"))
	}
	return errors.Join(errs...)
}

// RESTConfig is the API server client configuration: the kubeconfig file if
// set, else the in-cluster configuration.
func (o *Options) RESTConfig() (*rest.Config, error) {
	var (
		cfg *rest.Config
		err error
	)
	if o.Kubeconfig != "" {
		cfg, err = clientcmd.BuildConfigFromFlags("", o.Kubeconfig)
	} else {
		cfg, err = rest.InClusterConfig()
	}
	if err != nil {
		return nil, fmt.Errorf("API server client configuration: %w", err)
	}
	cfg.Timeout = o.RequestTimeout
	cfg.UserAgent = "image-registry-operator-authn"
	return cfg, nil
}
