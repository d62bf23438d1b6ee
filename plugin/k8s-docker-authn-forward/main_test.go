package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/image-registry-operator/image-registry-operator/pkg/extauth"
	"github.com/image-registry-operator/image-registry-operator/pkg/extauth/sidecar"
)

// sidecar serves h on a fresh socket until the test ends.
func startSidecar(t *testing.T, h sidecar.Handler) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "fwd")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "authn.sock")
	l, err := sidecar.Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- (&sidecar.Server{Handler: h}).Serve(ctx, l) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return path
}

// recordingFallback stands in for exec'ing the full authenticator.
type recordingFallback struct {
	called bool
	args   []string
	input  []byte
	err    error
}

func (r *recordingFallback) run(args []string, input []byte) error {
	r.called, r.args, r.input = true, args, input
	if r.err != nil {
		return r.err
	}
	return errors.New("exec'd") // a real exec does not return
}

func TestForwarder(t *testing.T) {
	labels := `{"labels":{"type":["push"]}}` + "\n"
	var (
		mu   sync.Mutex
		seen = map[string]extauth.Request{}
	)
	socket := startSidecar(t, func(_ context.Context, req extauth.Request) extauth.Response {
		mu.Lock()
		seen[req.User] = req
		mu.Unlock()
		switch req.User {
		case "allowed":
			return extauth.Response{Status: extauth.Allowed, Body: []byte(labels)}
		case "denied":
			return extauth.Response{Status: extauth.Denied}
		case "nomatch":
			return extauth.Response{Status: extauth.NoMatch}
		case "error":
			return extauth.Response{Status: extauth.Error, Body: []byte("cannot check")}
		default:
			return extauth.Response{Status: extauth.Unavailable, Body: []byte("not synced")}
		}
	})
	missing := filepath.Join(t.TempDir(), "missing.sock")
	for _, tc := range []struct {
		name     string
		args     []string
		input    string
		code     int
		stdout   string
		fallback bool
	}{
		{"allowed", []string{"--namespace=team", "--socket=" + socket}, "allowed pw", 0, labels, false},
		// "allowed pass word": user "allowed", password "pass word", or
		// user "allowed pass", password "word"? Denied, sidecar or not.
		{"ambiguous input", []string{"--namespace=team", "--socket=" + socket}, "allowed pass word", 1, "", false},
		{"ambiguous input, no sidecar", []string{"--namespace=team", "--socket=" + missing}, "allowed pass word", 1, "", false},
		{"password over 72 bytes", []string{"--namespace=team", "--socket=" + socket}, "allowed " + strings.Repeat("x", 73), 1, "", false},
		{"denied", []string{"--namespace=team", "--socket=" + socket}, "denied pw", 1, "", false},
		{"no match", []string{"--namespace=team", "--socket=" + socket}, "nomatch pw", 2, "", false},
		{"error", []string{"--namespace=team", "--socket=" + socket}, "error pw", 3, "", false},
		{"all flags of the full binary", []string{"-namespace", "team", "--kubeconfig=/k", "--api-timeout=2s", "--auth-cache-size=5", "--auth-cache-ttl=1m", "--v=2",
			"--auth-compare-concurrency=2", "--auth-compare-queue=8", "--auth-compare-wait=2s", "--auth-user-limit-burst=5", "--auth-user-limit-interval=1m",
			"--auth-client-limit-burst=0", "--auth-client-limit-interval=0s", "--auth-limit-entries=100", "--socket", socket}, "allowed pw\n", 0, labels, false},
		{"bad limit flag", []string{"--namespace=team", "--socket=" + socket, "--auth-compare-wait=0s"}, "allowed pw", 3, "", true},
		{"bad limit interval", []string{"--namespace=team", "--socket=" + socket, "--auth-user-limit-interval=0s"}, "allowed pw", 3, "", true},
		{"unavailable", []string{"--namespace=team", "--socket=" + socket}, "later pw", 3, "", true},
		{"no sidecar", []string{"--namespace=team", "--socket=" + missing}, "allowed pw", 3, "", true},
		{"socket disabled", []string{"--namespace=team", "--socket="}, "allowed pw", 3, "", true},
		{"unknown flag", []string{"--namespace=team", "--socket=" + socket, "--bogus"}, "allowed pw", 3, "", true},
		{"positional argument", []string{"--namespace=team", "--socket=" + socket, "extra"}, "allowed pw", 3, "", true},
		{"bad timeout", []string{"--namespace=team", "--socket=" + socket, "--api-timeout=0s"}, "allowed pw", 3, "", true},
		{"negative cache size", []string{"--namespace=team", "--socket=" + socket, "--auth-cache-size=-1"}, "allowed pw", 3, "", true},
		{"malformed input", []string{"--namespace=team", "--socket=" + socket}, "nospace", 3, "", false},
		{"oversized input", []string{"--namespace=team", "--socket=" + socket}, "allowed " + strings.Repeat("x", extauth.MaxInput), 3, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			fb := &recordingFallback{}
			code := run(tc.args, strings.NewReader(tc.input), &stdout, &stderr, fb.run)
			if code != tc.code || stdout.String() != tc.stdout || fb.called != tc.fallback {
				t.Fatalf("exit %d stdout %q fallback %v; want %d %q %v; stderr %s", code, stdout.String(), fb.called, tc.code, tc.stdout, tc.fallback, stderr.String())
			}
			if fb.called {
				// The full binary gets the same arguments and input, and
				// does not ask the sidecar again.
				if want := append(append([]string(nil), tc.args...), "--socket="); !reflect.DeepEqual(fb.args, want) {
					t.Errorf("fallback args %q, want %q", fb.args, want)
				}
				if string(fb.input) != tc.input {
					t.Errorf("fallback input %q, want %q", fb.input, tc.input)
				}
			}
			if strings.Contains(stderr.String(), "pass word") || strings.Contains(stderr.String(), "xxxx") {
				t.Errorf("stderr shows the password: %s", stderr.String())
			}
		})
	}
	mu.Lock()
	if got := seen["allowed"]; got.Namespace != "team" || got.Password != "pw" {
		t.Errorf("the sidecar saw %#v", got)
	}
	mu.Unlock()

	var stderr bytes.Buffer
	fb := &recordingFallback{err: errors.New("no such file")}
	if code := run([]string{"--namespace=team", "--socket=" + missing}, strings.NewReader("u pw"), &bytes.Buffer{}, &stderr, fb.run); code != 3 || !strings.Contains(stderr.String(), "no such file") {
		t.Errorf("failed fallback: exit %d, stderr %q", code, stderr.String())
	}
}

func TestParseArgsTimeout(t *testing.T) {
	cfg, ok := parseArgs([]string{"--namespace=team"})
	if !ok || cfg.timeout != defaultTimeout || cfg.socket != extauth.DefaultSocket || cfg.namespace != "team" {
		t.Errorf("defaults: %+v %v", cfg, ok)
	}
	cfg, ok = parseArgs([]string{"--namespace=team", "--api-timeout=250ms"})
	if !ok || cfg.timeout != 250*time.Millisecond {
		t.Errorf("--api-timeout: %+v %v", cfg, ok)
	}
}
