// Command k8s-docker-authn-forward is the ext_auth command that docker_auth
// runs for every login in the auth pod (installed there as
// /ext-auth/k8s-docker-authn). It reads "<user> <password>", asks the ext_auth
// sidecar (k8s-docker-authn --serve) over its Unix socket and relays the
// answer as its exit status and standard output (pkg/extauth).
//
// When the sidecar gives no answer (no socket, nobody listening, not synced,
// another protocol version, no reply within --api-timeout), or when the
// arguments hold anything this program does not fully understand, it execs
// the full authenticator installed beside it (k8s-docker-authn-full) with
// the same arguments and the same input, which checks the login on its own.
// Either way docker_auth gets the same answer; only the time differs.
//
// It imports the standard library only, and not package net: docker_auth
// starts it once per token request, so its start-up is the price of every
// login. A binary that links client-go spends milliseconds in package
// initialization alone.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/image-registry-operator/image-registry-operator/pkg/extauth"
)

// serviceAccountNamespaceFile holds the pod's namespace in a pod; the full
// authenticator reads the same file when --namespace is not given.
const serviceAccountNamespaceFile = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"

// defaultTimeout is the full authenticator's --api-timeout default.
const defaultTimeout = 5 * time.Second

// fallbackFunc replaces this process by the full authenticator, run with
// args and given input as its standard input. It returns only on failure.
type fallbackFunc func(args []string, input []byte) error

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr, execFull))
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer, fallback fallbackFunc) int {
	input, err := io.ReadAll(io.LimitReader(stdin, extauth.MaxInput+1))
	if err != nil {
		fmt.Fprintln(stderr, "read credentials:", err)
		return int(extauth.Error)
	}
	user, password, err := extauth.ParseInput(input)
	if err != nil {
		fmt.Fprintln(stderr, err)
		if extauth.Denies(err) {
			return int(extauth.Denied)
		}
		return int(extauth.Error)
	}
	if cfg, ok := parseArgs(args); ok && cfg.socket != "" {
		req := extauth.Request{Namespace: cfg.namespace, User: user, Password: password}
		if resp, err := extauth.Ask(cfg.socket, req, cfg.timeout); err == nil {
			if code, ok := extauth.Relay(resp, stdout, stderr); ok {
				return code
			}
		}
	}
	// The full authenticator must not ask the sidecar again.
	full := append(append([]string(nil), args...), "--socket=")
	if err := fallback(full, input); err != nil {
		fmt.Fprintln(stderr, "no ext_auth sidecar answered, and the fallback failed:", err)
	}
	return int(extauth.Error)
}

type config struct {
	namespace string
	socket    string
	timeout   time.Duration
}

// parseArgs reads the full authenticator's ext_auth flags. ok is false when
// the arguments are not all valid flags of it: the full authenticator then
// runs and reports them.
func parseArgs(args []string) (cfg config, ok bool) {
	fs := flag.NewFlagSet("k8s-docker-authn", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&cfg.namespace, "namespace", "", "")
	fs.StringVar(&cfg.socket, "socket", extauth.DefaultSocket, "")
	fs.DurationVar(&cfg.timeout, "api-timeout", defaultTimeout, "")
	// Flags of the one-shot path that the sidecar path does not need:
	// the sidecar runs with its own --registry (the pod spec's).
	fs.String("kubeconfig", "", "")
	fs.String("registry", "", "")
	cacheSize := fs.Int("auth-cache-size", 0, "")
	cacheTTL := fs.Duration("auth-cache-ttl", 0, "")
	fs.Int("v", 0, "")
	// The sidecar's flood limits: they mean nothing to one login, but an
	// ext_auth.args that sets them must not send every login to the
	// fallback. Values the full binary would refuse do. (The bursts'
	// defaults are positive there: an interval of 0 needs a burst of 0.)
	concurrency := fs.Int("auth-compare-concurrency", 0, "")
	queue := fs.Int("auth-compare-queue", 0, "")
	wait := fs.Duration("auth-compare-wait", time.Second, "")
	userBurst := fs.Int("auth-user-limit-burst", 1, "")
	userInterval := fs.Duration("auth-user-limit-interval", time.Second, "")
	clientBurst := fs.Int("auth-client-limit-burst", 1, "")
	clientInterval := fs.Duration("auth-client-limit-interval", time.Second, "")
	limitEntries := fs.Int("auth-limit-entries", 1, "")
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 {
		return config{}, false
	}
	if cfg.timeout <= 0 || *cacheSize < 0 || *cacheTTL < 0 {
		return config{}, false
	}
	if *concurrency < 0 || *queue < 0 || *wait <= 0 || *userBurst < 0 || *clientBurst < 0 || *limitEntries <= 0 ||
		(*userBurst > 0 && *userInterval <= 0) || (*clientBurst > 0 && *clientInterval <= 0) {
		return config{}, false
	}
	if cfg.namespace == "" {
		b, err := os.ReadFile(serviceAccountNamespaceFile)
		if err != nil {
			return config{}, false
		}
		cfg.namespace = strings.TrimSpace(string(b))
	}
	return cfg, cfg.namespace != ""
}

// fullPath is the full authenticator beside this executable.
func fullPath() (string, error) {
	self, err := os.Executable()
	if err != nil {
		return "", err
	}
	return filepath.Join(filepath.Dir(self), extauth.FullBinary), nil
}
