package authn

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime"
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

	// DefaultCompareQueue logins may wait for a bcrypt compare slot, each
	// at most DefaultCompareWait; more are answered busy at once.
	DefaultCompareQueue = 64
	DefaultCompareWait  = time.Second
	// A user name may fail DefaultUserLimitBurst compares in a row, then one
	// more per DefaultUserLimitInterval (10 a minute).
	DefaultUserLimitBurst    = 10
	DefaultUserLimitInterval = 6 * time.Second
	// A client address may fail DefaultClientLimitBurst compares in a row,
	// then one more per DefaultClientLimitInterval.
	DefaultClientLimitBurst    = 30
	DefaultClientLimitInterval = time.Second
	// DefaultLimitEntries bounds each table of failed-login budgets.
	DefaultLimitEntries = 10000
)

// DefaultCompareConcurrency is the default bound of concurrent bcrypt
// compares: half the usable cores, at least one, so that a flood of wrong
// passwords leaves the other half to logins the verified cache serves
// (docs/performance.md, "Login floods").
func DefaultCompareConcurrency() int {
	return max(1, runtime.GOMAXPROCS(0)/2)
}

// serviceAccountNamespaceFile holds the pod's namespace in a pod.
const serviceAccountNamespaceFile = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"

// Options configure the authenticator. The same flags are read by the
// docker_auth ext_auth binary (k8s-docker-authn) from its command line and by
// the builtin token server (registry-auth) from the rendered config's
// ext_auth.args, so that both front ends run the authenticator alike.
type Options struct {
	// Namespace holds the ImageRegistryAccounts: the registry's namespace.
	Namespace string
	// Registry is the name of the ImageRegistry this authenticator guards.
	// An account whose spec.registries does not name it is refused like a
	// wrong password. Empty: every account of the namespace is accepted
	// (one trust domain per namespace, as before spec.registries).
	Registry string
	// Kubeconfig is a kubeconfig file; empty means in-cluster config.
	Kubeconfig string
	// CacheSize bounds the verified-password cache; 0 disables it.
	CacheSize int
	// CacheTTL bounds the life of a verified-password cache entry.
	CacheTTL time.Duration
	// RequestTimeout bounds API server requests: the ext_auth binary's list
	// and the token server's initial cache sync.
	RequestTimeout time.Duration

	// CompareConcurrency bounds concurrent bcrypt compares; 0 means
	// DefaultCompareConcurrency().
	CompareConcurrency int
	// CompareQueue bounds the logins waiting for a compare slot;
	// CompareWait how long each may wait. Others are answered ErrBusy.
	CompareQueue int
	CompareWait  time.Duration
	// UserLimitBurst and UserLimitInterval are the budget of failed
	// compares per user name: that many in a row, then one per interval.
	// A burst of 0 disables the limit.
	UserLimitBurst    int
	UserLimitInterval time.Duration
	// ClientLimitBurst and ClientLimitInterval are the same per client
	// address. Only the builtin token server knows the client's address;
	// docker_auth passes none to ext_auth.
	ClientLimitBurst    int
	ClientLimitInterval time.Duration
	// LimitEntries bounds each table of budgets (client addresses, user
	// names of accounts, other user names).
	LimitEntries int
}

// NewOptions returns options with defaults.
func NewOptions() *Options {
	return &Options{
		CacheSize:      DefaultCacheSize,
		CacheTTL:       DefaultCacheTTL,
		RequestTimeout: DefaultRequestTimeout,

		CompareQueue:        DefaultCompareQueue,
		CompareWait:         DefaultCompareWait,
		UserLimitBurst:      DefaultUserLimitBurst,
		UserLimitInterval:   DefaultUserLimitInterval,
		ClientLimitBurst:    DefaultClientLimitBurst,
		ClientLimitInterval: DefaultClientLimitInterval,
		LimitEntries:        DefaultLimitEntries,
	}
}

// AddFlags registers the options' flags.
func (o *Options) AddFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.Namespace, "namespace", o.Namespace, "Namespace of the ImageRegistryAccounts (the registry's namespace). Default: the pod's namespace.")
	fs.StringVar(&o.Registry, "registry", o.Registry, "Name of the ImageRegistry this authenticator guards: accounts whose spec.registries do not name it are refused like a wrong password. Empty: accept every account of the namespace.")
	fs.StringVar(&o.Kubeconfig, "kubeconfig", o.Kubeconfig, "Kubeconfig file. Default: in-cluster configuration.")
	fs.IntVar(&o.CacheSize, "auth-cache-size", o.CacheSize, "Number of recently verified logins remembered, so that repeated token requests skip bcrypt. 0 disables the cache.")
	fs.DurationVar(&o.CacheTTL, "auth-cache-ttl", o.CacheTTL, "How long a verified login is remembered. Revocation does not wait for it: every login re-checks the account.")
	fs.DurationVar(&o.RequestTimeout, "api-timeout", o.RequestTimeout, "Timeout of API server requests.")
	fs.IntVar(&o.CompareConcurrency, "auth-compare-concurrency", o.CompareConcurrency, "Bcrypt compares run at once. 0: half the usable cores, at least 1.")
	fs.IntVar(&o.CompareQueue, "auth-compare-queue", o.CompareQueue, "Logins that may wait for a bcrypt compare while all run; more are answered busy at once (token server: 503 with Retry-After; ext_auth: exit 3). Logins the verified cache serves never wait.")
	fs.DurationVar(&o.CompareWait, "auth-compare-wait", o.CompareWait, "How long a login may wait for a bcrypt compare before it is answered busy.")
	fs.IntVar(&o.UserLimitBurst, "auth-user-limit-burst", o.UserLimitBurst, "Failed bcrypt compares a user name may have in a row before its logins are refused (429 with Retry-After; ext_auth: exit 3) without a compare; a login that verifies gives its compares back. 0: no limit per user name.")
	fs.DurationVar(&o.UserLimitInterval, "auth-user-limit-interval", o.UserLimitInterval, "A user name over its limit gets one more compare per this interval.")
	fs.IntVar(&o.ClientLimitBurst, "auth-client-limit-burst", o.ClientLimitBurst, "Failed bcrypt compares a client address (an IPv6 /64) may have in a row before its logins are refused without a compare. Only the builtin token server knows the client's address; ext_auth accepts the flag and ignores it. 0: no limit per client.")
	fs.DurationVar(&o.ClientLimitInterval, "auth-client-limit-interval", o.ClientLimitInterval, "A client address over its limit gets one more compare per this interval.")
	fs.IntVar(&o.LimitEntries, "auth-limit-entries", o.LimitEntries, "Client addresses and user names whose failed logins are remembered, each; the least recently seen beyond that are forgotten.")
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
	if o.CompareConcurrency < 0 {
		errs = append(errs, errors.New("--auth-compare-concurrency must not be negative"))
	}
	if o.CompareQueue < 0 {
		errs = append(errs, errors.New("--auth-compare-queue must not be negative"))
	}
	if o.CompareWait <= 0 {
		errs = append(errs, errors.New("--auth-compare-wait must be positive"))
	}
	if o.UserLimitBurst < 0 || o.ClientLimitBurst < 0 {
		errs = append(errs, errors.New("--auth-user-limit-burst and --auth-client-limit-burst must not be negative"))
	}
	if (o.UserLimitBurst > 0 && o.UserLimitInterval <= 0) || (o.ClientLimitBurst > 0 && o.ClientLimitInterval <= 0) {
		errs = append(errs, errors.New("--auth-user-limit-interval and --auth-client-limit-interval must be positive"))
	}
	if o.LimitEntries <= 0 {
		errs = append(errs, errors.New("--auth-limit-entries must be positive"))
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
