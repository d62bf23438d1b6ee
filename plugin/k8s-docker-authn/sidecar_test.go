package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/klog/v2"

	"github.com/image-registry-operator/image-registry-operator/pkg/authn"
	"github.com/image-registry-operator/image-registry-operator/pkg/extauth"
)

var (
	pushLabels = map[string][]string{"namespace": {"team"}, "name": {"app"}, "type": {"push"}}
	pullLabels = map[string][]string{"namespace": {"team"}, "name": {"app"}, "type": {"pull"}}
)

// shortDir is a temporary directory with a short path: Unix socket paths
// are limited to 108 bytes.
func shortDir(t *testing.T) string {
	dir, err := os.MkdirTemp("", "authn")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// sidecarProc runs `k8s-docker-authn --serve` in this process.
type sidecarProc struct {
	socket string
	cancel context.CancelFunc
	done   chan int
	stderr *lockedBuffer
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startSidecar starts the sidecar for namespace and, unless the namespace
// is not ns, waits until its account cache is synced.
func startSidecar(t *testing.T, kubeconfig, namespace string, extra ...string) *sidecarProc {
	t.Helper()
	return startSidecarAt(t, filepath.Join(shortDir(t), "authn.sock"), kubeconfig, namespace, extra...)
}

func startSidecarAt(t *testing.T, socket, kubeconfig, namespace string, extra ...string) *sidecarProc {
	t.Helper()
	s := &sidecarProc{socket: socket, done: make(chan int, 1), stderr: &lockedBuffer{}}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	args := append([]string{"--serve=" + s.socket, "--namespace=" + namespace, "--kubeconfig=" + kubeconfig}, extra...)
	go func() { s.done <- run(ctx, args, strings.NewReader(""), io.Discard, s.stderr) }()
	t.Cleanup(s.stop)
	if namespace != ns {
		waitFor(t, func() bool { _, err := os.Stat(s.socket); return err == nil })
		return s
	}
	waitFor(t, func() bool {
		resp, err := extauth.Ask(s.socket, extauth.Request{Namespace: ns, User: "probe", Password: "x"}, time.Second)
		return err == nil && resp.Status != extauth.Unavailable
	})
	return s
}

// stop ends the sidecar as SIGTERM does and waits for it.
func (s *sidecarProc) stop() {
	if s.cancel == nil {
		return
	}
	s.cancel()
	s.cancel = nil
	if code := <-s.done; code != 0 {
		panic(fmt.Sprintf("sidecar exited %d: %s", code, s.stderr.String()))
	}
}

// waitFor polls cond for up to 20 s: a bound on a wait, not a speed check.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached within 20s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// installExtAuth lays out the ext_auth volume as the init container does:
// the forwarder as k8s-docker-authn, the full binary beside it.
func installExtAuth(t *testing.T) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "k8s-docker-authn")
	if out, err := exec.Command(buildPlugin(t), "--install-to", dst).CombinedOutput(); err != nil {
		t.Fatalf("--install-to: %v\n%s", err, out)
	}
	return dst
}

type loginCase struct {
	name, user, pw string
	code           int
	labels         map[string][]string
}

var contract = []loginCase{
	{"valid push login", "team/app/3", "push-current", 0, pushLabels},
	{"valid push login, next password", "team/app/4", "push-next", 0, pushLabels},
	{"valid pull login", "team/app/1", "pull-current", 0, pullLabels},
	{"wrong password", "team/app/3", "wrong", 1, nil},
	{"password with a space", "team/app/3", "push current", 1, nil},
	// docker_auth writes "ci-bot correct horse" for both: ambiguous, denied
	// (before, it logged in as ci-bot with password "correct horse").
	{"password with a space that verifies", "ci-bot", "correct horse", 1, nil},
	{"docker_auth user with a space", "ci-bot correct", "horse", 1, nil},
	{"password over 72 bytes", "team/app/3", "push-current" + strings.Repeat("x", 61), 1, nil},
	{"rotation out of range", "team/app/9", "push-current", 1, nil},
	{"unknown user", "other/app/1", "push-current", 2, nil},
	{"anonymous", "", "", 2, nil},
}

func checkLogin(t *testing.T, bin string, args []string, tc loginCase) {
	t.Helper()
	code, stdout, stderr := runAsDockerAuth(t, bin, args, tc.user, tc.pw)
	if code != tc.code {
		t.Fatalf("%s: exit %d, want %d; stderr: %s", tc.name, code, tc.code, stderr)
	}
	if tc.pw != "" && strings.Contains(stdout+stderr, tc.pw) {
		t.Errorf("%s: password in the output: %q %q", tc.name, stdout, stderr)
	}
	if tc.code != 0 {
		if stdout != "" {
			t.Errorf("%s: stdout on exit %d: %q", tc.name, code, stdout)
		}
		return
	}
	var resp struct {
		Labels map[string][]string `json:"labels"`
	}
	if err := json.Unmarshal([]byte(stdout), &resp); err != nil {
		t.Fatalf("%s: stdout %q: %v", tc.name, stdout, err)
	}
	if !reflect.DeepEqual(resp.Labels, tc.labels) {
		t.Errorf("%s: labels %v, want %v", tc.name, resp.Labels, tc.labels)
	}
}

// TestSidecarContract: docker_auth runs the installed forwarder, which
// relays the sidecar's answers; no login reaches the API server.
func TestSidecarContract(t *testing.T) {
	srv, _ := apiServer(t,
		acct("push-app", "team/app", 3, "push", hashOf(t, "push-current"), hashOf(t, "push-next")),
		acct("pull-app", "team/app", 1, "pull", hashOf(t, "pull-current"), hashOf(t, "pull-next")),
		staticAcct("ci-bot", hashOf(t, "correct horse")),
	)
	kc := kubeconfig(t, srv.URL)
	logs := captureKlog(t)
	sc := startSidecar(t, kc, ns, "--v=4")
	ext := installExtAuth(t)
	lists := srv.lists.Load()
	args := []string{"--namespace=" + ns, "--kubeconfig=" + kc, "--socket=" + sc.socket}
	for _, tc := range contract {
		checkLogin(t, ext, args, tc)
		// The full binary as the ext_auth command asks the sidecar too.
		checkLogin(t, buildPlugin(t), args, tc)
	}
	if n := srv.lists.Load(); n != lists {
		t.Errorf("%d list requests during the logins: the sidecar did not answer them all", n-lists)
	}
	sc.stop()
	klog.Flush()
	if !strings.Contains(logs.String(), `"login" user="team/app/3" result="allowed"`) {
		t.Errorf("no login in the sidecar's log at -v=4:\n%s", logs.String())
	}
	for _, tc := range contract {
		if tc.pw != "" && strings.Contains(logs.String()+sc.stderr.String(), tc.pw) {
			t.Errorf("the sidecar logged the password of %s", tc.name)
		}
	}
	if strings.Contains(logs.String(), "other/app/1") {
		t.Error("the sidecar logged a user name that names no account")
	}
}

// captureKlog sends klog's output to a buffer until the test ends, and
// then resets the verbosity a --v flag may have set.
func captureKlog(t *testing.T) *lockedBuffer {
	var buf lockedBuffer
	fs := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(fs)
	klog.LogToStderr(false)
	klog.SetOutput(&buf)
	t.Cleanup(func() {
		klog.Flush()
		_ = fs.Set("v", "0")
		klog.LogToStderr(true)
	})
	return &buf
}

// TestSidecarRevocation: a login the sidecar has verified (and cached)
// fails as soon as the informer sees the account change or go.
func TestSidecarRevocation(t *testing.T) {
	push := acct("push-app", "team/app", 3, "push", hashOf(t, "push-current"), hashOf(t, "push-next"))
	srv, _ := apiServer(t, push)
	kc := kubeconfig(t, srv.URL)
	sc := startSidecar(t, kc, ns)
	ext := installExtAuth(t)
	args := []string{"--namespace=" + ns, "--kubeconfig=" + kc, "--socket=" + sc.socket}
	checkLogin(t, ext, args, contract[0])

	ask := func() extauth.Status {
		resp, err := extauth.Ask(sc.socket, extauth.Request{Namespace: ns, User: "team/app/3", Password: "push-current"}, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		return resp.Status
	}
	event := func(typ string, obj any) {
		b, err := json.Marshal(map[string]any{"type": typ, "object": obj})
		if err != nil {
			t.Fatal(err)
		}
		srv.events <- string(b)
	}
	// Rotated: the current password's hash is gone.
	rotated := push.DeepCopy()
	rotated.ResourceVersion = "11"
	rotated.Spec.Passwords = []string{hashOf(t, "push-newer"), hashOf(t, "push-newest")}
	event("MODIFIED", rotated)
	waitFor(t, func() bool { return ask() == extauth.Denied })
	checkLogin(t, ext, args, loginCase{"after rotation", "team/app/3", "push-current", 1, nil})

	deleted := rotated.DeepCopy()
	deleted.ResourceVersion = "12"
	event("DELETED", deleted)
	waitFor(t, func() bool { return ask() == extauth.NoMatch })
	checkLogin(t, ext, args, loginCase{"after deletion", "team/app/3", "push-current", 2, nil})
}

// TestSidecarDownFallsBack: whatever state the sidecar is in, the answers
// stay the same; without it each login lists the accounts once.
func TestSidecarDownFallsBack(t *testing.T) {
	srv, _ := apiServer(t,
		acct("push-app", "team/app", 3, "push", hashOf(t, "push-current"), hashOf(t, "push-next")),
		acct("pull-app", "team/app", 1, "pull", hashOf(t, "pull-current"), hashOf(t, "pull-next")),
	)
	kc := kubeconfig(t, srv.URL)
	ext := installExtAuth(t)
	dir := shortDir(t)
	socket := filepath.Join(dir, "authn.sock")
	args := []string{"--namespace=" + ns, "--kubeconfig=" + kc, "--socket=" + socket}

	checkAll := func(state string, wantLists bool) {
		t.Helper()
		for _, tc := range contract[:4] {
			before := srv.lists.Load()
			tc.name = state + ": " + tc.name
			checkLogin(t, ext, args, tc)
			if listed := srv.lists.Load() != before; listed != wantLists {
				t.Errorf("%s: listed the accounts: %v, want %v", tc.name, listed, wantLists)
			}
		}
	}
	checkAll("no socket", true)

	sc := startSidecarAt(t, socket, kc, ns)
	checkAll("sidecar up", false)
	sc.stop()
	checkAll("sidecar stopped", true)

	// A socket file nobody listens on, as a killed sidecar leaves.
	l, err := net.Listen("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()
	checkAll("stale socket", true)
	os.Remove(socket)

	// A sidecar of another namespace answers "unavailable".
	other := startSidecarAt(t, socket, kc, "other")
	checkAll("sidecar of another namespace", true)
	other.stop()
}

func TestForwarderInput(t *testing.T) {
	srv, _ := apiServer(t)
	kc := kubeconfig(t, srv.URL)
	ext := installExtAuth(t)
	args := []string{"--namespace=" + ns, "--kubeconfig=" + kc, "--socket=" + filepath.Join(shortDir(t), "none.sock")}
	for _, tc := range []struct{ name, in string }{
		{"no separator", "team/app/3"},
		{"oversized", "team/app/3 " + strings.Repeat("s", maxInput)},
	} {
		cmd := exec.Command(ext, args...)
		cmd.Stdin = strings.NewReader(tc.in)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != exitError || stdout.Len() != 0 {
			t.Errorf("%s: %v, stdout %q; want exit 3", tc.name, err, stdout.String())
		}
		if strings.Contains(stderr.String(), "sss") {
			t.Errorf("%s: stderr shows the input", tc.name)
		}
	}
	if srv.requests.Load() != 0 {
		t.Error("malformed input reached the API server")
	}

	// Flags the forwarder does not know go to the full binary, which
	// reports them.
	code, _, stderr := runAsDockerAuth(t, ext, append(args, "--bogus"), "team/app/3", "pw")
	if code != exitError || !strings.Contains(stderr, "bogus") {
		t.Errorf("unknown flag: exit %d, stderr %q", code, stderr)
	}

	// A forwarder without its fallback and without a sidecar: an error.
	lone := filepath.Join(t.TempDir(), "k8s-docker-authn")
	if err := copyExecutable(ext, lone); err != nil {
		t.Fatal(err)
	}
	code, _, stderr = runAsDockerAuth(t, lone, args, "team/app/3", "pw")
	if code != exitError || !strings.Contains(stderr, "fallback failed") {
		t.Errorf("no fallback: exit %d, stderr %q", code, stderr)
	}
}

// TestForwarderLinksStdlibOnly: the forwarder's start-up is the price of
// every login. Linking client-go adds milliseconds of package init; even
// package net (and its network poller) adds a tenth of one.
func TestForwarderLinksStdlibOnly(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}+{{end}}{{.ImportPath}}", "../k8s-docker-authn-forward").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	const mod = "+github.com/image-registry-operator/image-registry-operator/"
	for _, p := range strings.Fields(string(out)) {
		switch {
		case p == "net":
			t.Error("the forwarder links package net")
		case strings.HasPrefix(p, "+") && p != mod+"pkg/extauth" && p != mod+"plugin/k8s-docker-authn-forward":
			t.Errorf("the forwarder links %s", p[1:])
		}
	}
}

func TestLimitsMatchAuthn(t *testing.T) {
	if extauth.MaxUsernameLength != authn.MaxUsernameLength || extauth.MaxPasswordLength != authn.MaxPasswordLength {
		t.Errorf("extauth limits %d/%d, authn %d/%d", extauth.MaxUsernameLength, extauth.MaxPasswordLength, authn.MaxUsernameLength, authn.MaxPasswordLength)
	}
	if extauth.MaxBcryptPasswordLength != authn.MaxBcryptPasswordLength {
		t.Errorf("extauth refuses passwords over %d bytes, authn over %d", extauth.MaxBcryptPasswordLength, authn.MaxBcryptPasswordLength)
	}
}

func TestSidecarHealth(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	srv, _ := apiServer(t)
	startSidecar(t, kubeconfig(t, srv.URL), ns, "--health-addr="+addr)
	for _, path := range []string{"/healthz", "/readyz"} {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s: %d", path, resp.StatusCode)
		}
	}
	// Not synced (the API server refuses): alive, not ready.
	forbidden := func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, `{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"Forbidden","code":403}`, http.StatusForbidden)
	}
	api := httpServer(t, forbidden)
	l, err = net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr = l.Addr().String()
	l.Close()
	startSidecar(t, kubeconfig(t, api), "unsynced", "--health-addr="+addr)
	waitFor(t, func() bool {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	resp, err := http.Get("http://" + addr + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("/readyz without a synced cache: %d", resp.StatusCode)
	}
}

func httpServer(t *testing.T, h http.HandlerFunc) string {
	s := &http.Server{Handler: h}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(l)
	t.Cleanup(func() { s.Close() })
	return "http://" + l.Addr().String()
}

func TestServeFlags(t *testing.T) {
	var out bytes.Buffer
	if code := run(t.Context(), []string{"--namespace=" + ns, "--health-addr=:0"}, strings.NewReader("u p"), &out, &out); code != exitError || !strings.Contains(out.String(), "--health-addr needs --serve") {
		t.Errorf("--health-addr without --serve: exit %d %q", code, out.String())
	}
}
