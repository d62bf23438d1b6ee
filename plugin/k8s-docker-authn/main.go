// Command k8s-docker-authn is a docker_auth ext_auth authenticator that
// checks logins against ImageRegistryAccounts (pkg/authn).
//
// docker_auth runs its ext_auth command once per login with the configured
// ext_auth.args, writes "<user> <password>" to its standard input and reads
// the answer from its exit status:
//
//	0  allowed; stdout holds {"labels":{...}} with the account's labels
//	1  denied: the account exists, the password (or rotation) is wrong, or
//	   the account expired or is being deleted
//	2  no match: no account answers to this user name (docker_auth then
//	   tries its other authenticators)
//	3  error, e.g. the API server is unreachable within --api-timeout
//
// The binary has three roles:
//
//   - With --serve=<socket> it is the auth pod's ext_auth sidecar: it keeps
//     an informer of the namespace's accounts and the verified-login cache
//     (--auth-cache-size, --auth-cache-ttl), exactly as the builtin token
//     server does in-process, and answers logins on a Unix socket
//     (pkg/extauth) until SIGTERM.
//   - Run as the ext_auth command, it asks the sidecar at --socket first and
//     relays its answer; when no sidecar answers, it checks the login on its
//     own with one list request of the registry's namespace (get/list on
//     imageregistryaccounts there is all it needs) and exits. docker_auth
//     normally runs the small forwarder (plugin/k8s-docker-authn-forward)
//     instead, which starts faster and execs this binary as its fallback.
//   - With --install-to it copies itself, and the forwarder if it lies
//     beside it, into the volume docker_auth runs ext_auth from.
//
// Build it with CGO_ENABLED=0 so that it runs in the upstream docker_auth
// image.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"k8s.io/klog/v2"

	"github.com/image-registry-operator/image-registry-operator/pkg/authn"
	"github.com/image-registry-operator/image-registry-operator/pkg/extauth"
	"github.com/image-registry-operator/image-registry-operator/pkg/generated/clientset/versioned"
)

// Exit codes of docker_auth's ext_auth contract.
const (
	exitAllowed = int(extauth.Allowed)
	exitDenied  = int(extauth.Denied)
	exitNoMatch = int(extauth.NoMatch)
	exitError   = int(extauth.Error)
)

// maxInput bounds what is read from stdin: a user name, a space and a
// password, each bounded by pkg/authn.
const maxInput = extauth.MaxInput

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	opts := authn.NewOptions()
	opts.RequestTimeout = 5 * time.Second // docker_auth waits for us on every login
	fs := flag.NewFlagSet("k8s-docker-authn", flag.ContinueOnError)
	fs.SetOutput(stderr)
	opts.AddFlags(fs)
	installTo := fs.String("install-to", "", "Copy this binary to the given path and exit; if "+extauth.ForwarderBinary+" lies beside this binary, install that at the path instead and this binary beside it as "+extauth.FullBinary+" (the forwarder's fallback). The docker_auth pod's init container uses it to place the authenticator in a shared volume; the operator image has no shell or cp.")
	socket := fs.String("socket", extauth.DefaultSocket, "Unix socket of the ext_auth sidecar (k8s-docker-authn --serve) to ask before checking a login here; empty: never ask. A missing socket or a sidecar that does not answer within --api-timeout is not an error: the login is then checked here.")
	serveOn := fs.String("serve", "", "Run as the ext_auth sidecar: keep an informer of the namespace's accounts and a verified-login cache (--auth-cache-size, --auth-cache-ttl) and answer logins on this Unix socket until SIGTERM.")
	klogFlags := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(klogFlags)
	fs.Var(klogFlags.Lookup("v").Value, "v", "Log verbosity of --serve; 4 logs every login that names an account (user name and result, never a password).")
	healthAddr := fs.String("health-addr", "", "With --serve: serve /healthz (the process answers) and /readyz (the account cache is synced) over plain HTTP on this address.")
	if err := fs.Parse(args); err != nil {
		return exitError
	}
	if *installTo != "" {
		if err := install(*installTo); err != nil {
			fmt.Fprintln(stderr, "install:", err)
			return exitError
		}
		return exitAllowed
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "unexpected argument %q\n", fs.Arg(0))
		return exitError
	}
	if *healthAddr != "" && *serveOn == "" {
		fmt.Fprintln(stderr, "--health-addr needs --serve")
		return exitError
	}
	if err := opts.Complete(); err != nil {
		fmt.Fprintln(stderr, err)
		return exitError
	}
	if *serveOn != "" {
		if err := serve(ctx, opts, *serveOn, *healthAddr); err != nil {
			fmt.Fprintln(stderr, err)
			return exitError
		}
		return exitAllowed
	}
	return login(ctx, opts, *socket, stdin, stdout, stderr)
}

// login answers one ext_auth call: from the sidecar if one answers at
// socket, else on its own. The --auth-cache-* flags change nothing here: a
// process that answers one login has nothing to cache.
func login(ctx context.Context, opts *authn.Options, socket string, stdin io.Reader, stdout, stderr io.Writer) int {
	user, password, err := extauth.ReadInput(stdin)
	if err != nil {
		fmt.Fprintln(stderr, err)
		if extauth.Denies(err) {
			return exitDenied
		}
		return exitError
	}
	if _, ok := authn.ParseLogin(user); !ok {
		return exitNoMatch
	}
	if socket != "" {
		resp, err := extauth.Ask(socket, extauth.Request{Namespace: opts.Namespace, User: user, Password: password}, opts.RequestTimeout)
		if err == nil {
			if code, ok := extauth.Relay(resp, stdout, stderr); ok {
				return code
			}
		}
	}
	return oneShot(ctx, opts, user, password, stdout, stderr)
}

// oneShot checks a login against the accounts it lists from the API server.
func oneShot(ctx context.Context, opts *authn.Options, user, password string, stdout, stderr io.Writer) int {
	restCfg, err := opts.RESTConfig()
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitError
	}
	client, err := versioned.NewForConfig(restCfg)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitError
	}
	ctx, cancel := context.WithTimeout(ctx, opts.RequestTimeout)
	defer cancel()
	res, labels, err := authn.NewDirect(client, opts.Namespace, opts.Registry).Verify(ctx, user, password)
	if err != nil {
		fmt.Fprintf(stderr, "authenticate %q: %v\n", user, err)
		return exitError
	}
	switch res {
	case authn.Allowed:
		out, err := labelsOutput(labels)
		if err == nil {
			_, err = stdout.Write(out)
		}
		if err != nil {
			fmt.Fprintln(stderr, err)
			return exitError
		}
		return exitAllowed
	case authn.Denied:
		return exitDenied
	default:
		return exitNoMatch
	}
}

// labelsOutput is the standard output of an allowed login.
func labelsOutput(labels map[string][]string) ([]byte, error) {
	if labels == nil {
		labels = map[string][]string{}
	}
	b, err := json.Marshal(struct {
		Labels map[string][]string `json:"labels"`
	}{labels})
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// readCredentials reads "<user> <password>" (extauth.ReadInput).
func readCredentials(r io.Reader) (user, password string, err error) {
	return extauth.ReadInput(r)
}

// install copies the running executable to dst, executable by all. If the
// forwarder lies beside it (as in the operator image), the forwarder goes
// to dst and this binary beside dst as extauth.FullBinary, its fallback;
// the fallback is written first, so that a forwarder never lacks it.
func install(dst string) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	fwd := filepath.Join(filepath.Dir(self), extauth.ForwarderBinary)
	if _, err := os.Stat(fwd); err == nil {
		if err := copyExecutable(self, filepath.Join(filepath.Dir(dst), extauth.FullBinary)); err != nil {
			return err
		}
		return copyExecutable(fwd, dst)
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return copyExecutable(self, dst)
}

func copyExecutable(src, dst string) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	tmp := dst + ".tmp"
	if err := os.WriteFile(tmp, data, 0o755); err != nil {
		return err
	}
	return os.Rename(tmp, dst)
}
