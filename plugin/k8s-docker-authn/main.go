// Command k8s-docker-authn is a docker_auth ext_auth authenticator that
// checks logins against ImageRegistryAccounts (pkg/authn).
//
// docker_auth runs it once per login with the configured ext_auth.args,
// writes "<user> <password>" to its standard input and reads the answer from
// its exit status:
//
//	0  allowed; stdout holds {"labels":{...}} with the account's labels
//	1  denied: the account exists, the password (or rotation) is wrong, or
//	   the account expired or is being deleted
//	2  no match: no account answers to this user name (docker_auth then
//	   tries its other authenticators)
//	3  error, e.g. the API server is unreachable within --api-timeout
//
// It reads the accounts with one list request of the registry's namespace
// (get/list on imageregistryaccounts there is all it needs) and keeps no
// cache: the process ends after one login. Build it with CGO_ENABLED=0 so
// that it runs in the upstream docker_auth image.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/image-registry-operator/image-registry-operator/pkg/authn"
	"github.com/image-registry-operator/image-registry-operator/pkg/generated/clientset/versioned"
)

// Exit codes of docker_auth's ext_auth contract.
const (
	exitAllowed = 0
	exitDenied  = 1
	exitNoMatch = 2
	exitError   = 3
)

// maxInput bounds what is read from stdin: a user name, a space and a
// password, each bounded by pkg/authn.
const maxInput = authn.MaxUsernameLength + 1 + authn.MaxPasswordLength + 2

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	opts := authn.NewOptions()
	opts.RequestTimeout = 5 * time.Second // docker_auth waits for us on every login
	fs := flag.NewFlagSet("k8s-docker-authn", flag.ContinueOnError)
	fs.SetOutput(stderr)
	opts.AddFlags(fs)
	installTo := fs.String("install-to", "", "Copy this binary to the given path and exit. The docker_auth pod's init container uses it to place the authenticator in a shared volume; the operator image has no shell or cp.")
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
	if err := opts.Complete(); err != nil {
		fmt.Fprintln(stderr, err)
		return exitError
	}

	user, password, err := readCredentials(stdin)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitError
	}
	if _, ok := authn.ParseLogin(user); !ok {
		return exitNoMatch
	}

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
	res, labels, err := authn.NewDirect(client, opts.Namespace).Verify(ctx, user, password)
	if err != nil {
		fmt.Fprintf(stderr, "authenticate %q: %v\n", user, err)
		return exitError
	}
	switch res {
	case authn.Allowed:
		if labels == nil {
			labels = map[string][]string{}
		}
		if err := json.NewEncoder(stdout).Encode(struct {
			Labels map[string][]string `json:"labels"`
		}{labels}); err != nil {
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

// readCredentials reads "<user> <password>": the user name ends at the first
// space, the password is the rest (it may hold spaces). A trailing newline,
// as a shell's echo adds, is dropped; docker_auth sends none.
func readCredentials(r io.Reader) (user, password string, err error) {
	b, err := io.ReadAll(io.LimitReader(bufio.NewReader(r), maxInput+1))
	if err != nil {
		return "", "", fmt.Errorf("read credentials: %w", err)
	}
	if len(b) > maxInput {
		return "", "", fmt.Errorf("credentials longer than %d bytes", maxInput)
	}
	s := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	user, password, ok := strings.Cut(s, " ")
	if !ok {
		return "", "", fmt.Errorf("credentials are not \"<user> <password>\"")
	}
	return user, password, nil
}

// install copies the running executable to dst, executable by all.
func install(dst string) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	data, err := os.ReadFile(self)
	if err != nil {
		return err
	}
	tmp := dst + ".tmp"
	if err := os.WriteFile(tmp, data, 0o755); err != nil {
		return err
	}
	return os.Rename(tmp, dst)
}
