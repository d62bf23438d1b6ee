// Command registry-auth is the builtin token server of image-registry-operator.
//
// It reads the docker_auth-format auth config that the registry controller
// renders (pkg/authconfig) and serves the Docker registry token protocol on
// server.addr: GET /auth issues JWTs signed with token.key, GET /healthz and
// GET /readyz report health. Supported config subset:
//
//	server:   addr, certificate, key (TLS when both are set)
//	token:    issuer, expiration (seconds), certificate, key (PEM; ECDSA
//	          P-256 or RSA; the certificate must hold the key's public key)
//	ext_auth: command must be k8s-docker-authn (our authenticator, which
//	          runs in-process here); args are its flags (--namespace, ...)
//	acl:      docker_auth ACL entries (see pkg/acl)
//
// Anything else is rejected at start-up: unknown keys by the strict config
// loader, a missing or foreign ext_auth command here, since this server has
// no other authenticator.
//
// Login floods (docs/security.md, "Logins"): the authenticator's compare
// gate and failed-login budgets come from ext_auth.args (--auth-compare-*,
// --auth-user-limit-*, --auth-client-limit-*, --auth-limit-entries); the
// command line sets what only an HTTP server has: --trusted-proxies (whose
// X-Forwarded-For names the client; default none) and --refusal-delay /
// --refusal-delay-max (a 429 is held up to 1s, at most 256 at once).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"k8s.io/klog/v2"

	"github.com/image-registry-operator/image-registry-operator/pkg/authconfig"
	"github.com/image-registry-operator/image-registry-operator/pkg/authn"
	"github.com/image-registry-operator/image-registry-operator/pkg/tokenserver"
)

func main() {
	klog.InitFlags(nil)
	var f flags
	flag.StringVar(&f.configFile, "config", "", "Auth config file in docker_auth format (required).")
	flag.DurationVar(&f.shutdownTimeout, "shutdown-timeout", 10*time.Second, "How long to let in-flight requests finish on SIGTERM.")
	flag.Func("service", "A service (registry hostname) tokens are issued for; repeat for several. Requests for any other are refused. Default: any.", func(v string) error {
		f.services = append(f.services, v)
		return nil
	})
	flag.StringVar(&f.metricsAddr, "metrics-addr", ":5003", "Plain-HTTP address of /metrics, apart from the token port that clients reach. Empty: no metrics.")
	flag.DurationVar(&f.refusalDelay, "refusal-delay", tokenserver.DefaultRefusalDelay, "Hold the answer (429) to a login refused over a failed-login limit this long, at most its Retry-After, so that a client that does not wait as told gets one answer per this interval on each connection. 0: answer at once.")
	flag.IntVar(&f.maxDelayed, "refusal-delay-max", tokenserver.DefaultMaxDelayed, "Answers held by --refusal-delay at once; beyond it they are answered at once.")
	flag.Func("trusted-proxies", "Comma-separated addresses or CIDRs of proxies in front of the token server whose X-Forwarded-For header names the client (for the failed-login limit per client and the ACL's ip). Default: none; the header is ignored and the client is the connection's peer.", func(v string) error {
		p, err := parsePrefixes(v)
		f.trustedProxies = append(f.trustedProxies, p...)
		return err
	})
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "unexpected argument %q\n", flag.Arg(0))
		os.Exit(2)
	}
	if f.refusalDelay < 0 || f.maxDelayed < 0 {
		fmt.Fprintln(os.Stderr, "--refusal-delay and --refusal-delay-max must not be negative")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := run(ctx, f); err != nil {
		klog.ErrorS(err, "registry-auth failed")
		klog.Flush()
		os.Exit(1)
	}
	klog.Flush()
}

// flags are the command line.
type flags struct {
	configFile      string
	shutdownTimeout time.Duration
	services        []string
	metricsAddr     string
	trustedProxies  []netip.Prefix
	refusalDelay    time.Duration
	maxDelayed      int
}

// parsePrefixes parses comma-separated addresses (one host each) and
// CIDRs.
func parsePrefixes(v string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range strings.Split(v, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if a, err := netip.ParseAddr(s); err == nil {
			a = a.Unmap()
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("%q is neither an address nor a CIDR", s)
		}
		if p.Addr().Is4In6() {
			return nil, fmt.Errorf("%q: write IPv4 networks as IPv4", s)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// Setup is the loaded config with the authenticator options it names.
type setup struct {
	cfg  *authconfig.Config
	opts *authn.Options
}

// load reads and checks the config file: everything the builtin server
// cannot honour is an error here, before anything listens.
func load(file string) (*setup, error) {
	if file == "" {
		return nil, errors.New("--config is required")
	}
	cfg, err := authconfig.Load(file)
	if err != nil {
		return nil, err
	}
	if cfg.ExtAuth == nil {
		return nil, fmt.Errorf("%s: ext_auth is missing: the builtin token server authenticates with %s only; use spec.auth.server: docker_auth for other authenticators", file, authconfig.ExtAuthCommand)
	}
	if !cfg.IsOurExtAuth() {
		return nil, fmt.Errorf("%s: ext_auth.command %q is not %s: the builtin token server cannot run other authenticators; use spec.auth.server: docker_auth", file, cfg.ExtAuth.Command, authconfig.ExtAuthCommand)
	}
	opts, err := authn.ParseArgs(cfg.ExtAuth.Args)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return &setup{cfg: cfg, opts: opts}, nil
}

func run(ctx context.Context, f flags) error {
	st, err := load(f.configFile)
	if err != nil {
		return err
	}
	restCfg, err := st.opts.RESTConfig()
	if err != nil {
		return err
	}
	a, err := authn.NewForConfig(ctx, restCfg, st.opts)
	if err != nil {
		return err
	}
	srv, err := tokenserver.NewFromConfig(st.cfg, a, a.HasSynced, f.services...)
	if err != nil {
		return err
	}
	srv.SetTrustedProxies(f.trustedProxies)
	srv.SetRefusalDelay(f.refusalDelay, f.maxDelayed)
	concurrency := st.opts.CompareConcurrency
	if concurrency == 0 {
		concurrency = authn.DefaultCompareConcurrency()
	}
	klog.InfoS("login limits",
		"compareConcurrency", concurrency, "compareQueue", st.opts.CompareQueue, "compareWait", st.opts.CompareWait,
		"userLimit", fmt.Sprintf("%d, then 1/%s", st.opts.UserLimitBurst, st.opts.UserLimitInterval),
		"clientLimit", fmt.Sprintf("%d, then 1/%s", st.opts.ClientLimitBurst, st.opts.ClientLimitInterval),
		"trustedProxies", f.trustedProxies, "refusalDelay", f.refusalDelay, "refusalDelayMax", f.maxDelayed)
	if f.metricsAddr != "" {
		ms := &http.Server{Addr: f.metricsAddr, Handler: tokenserver.MetricsHandler(), ReadHeaderTimeout: 10 * time.Second}
		go func() {
			if err := ms.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
				klog.ErrorS(err, "metrics server failed", "addr", f.metricsAddr)
			}
		}()
		defer ms.Close()
	}
	return serve(ctx, st.cfg.Server, srv, f.shutdownTimeout)
}

// serve runs the HTTP(S) server until ctx ends, then shuts it down
// gracefully: no new connections, in-flight requests may finish.
func serve(ctx context.Context, sc authconfig.ServerConfig, h http.Handler, shutdownTimeout time.Duration) error {
	hs := &http.Server{
		Addr:              sc.Addr,
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
	}
	errc := make(chan error, 1)
	go func() {
		tlsOn := sc.Certificate != ""
		klog.InfoS("serving", "addr", sc.Addr, "tls", tlsOn)
		if tlsOn {
			errc <- hs.ListenAndServeTLS(sc.Certificate, sc.Key)
		} else {
			errc <- hs.ListenAndServe()
		}
	}()
	select {
	case err := <-errc:
		return fmt.Errorf("serve on %s: %w", sc.Addr, err)
	case <-ctx.Done():
	}
	klog.InfoS("shutting down", "timeout", shutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
