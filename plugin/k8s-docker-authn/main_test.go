package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	registryv1alpha1 "github.com/image-registry-operator/image-registry-operator/pkg/apis/registry/v1alpha1"
	"github.com/image-registry-operator/image-registry-operator/pkg/extauth"
)

const ns = "registry"

var (
	buildOnce sync.Once
	buildDir  string
	buildErr  error
)

// buildPlugin builds the binary as it ships (statically, without cgo), and
// the forwarder beside it as in the operator image; once per test run.
func buildPlugin(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "k8s-docker-authn-test")
		if buildErr != nil {
			return
		}
		for pkg, name := range map[string]string{".": "k8s-docker-authn", "../k8s-docker-authn-forward": extauth.ForwarderBinary} {
			cmd := exec.Command("go", "build", "-o", filepath.Join(buildDir, name), pkg)
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
			if out, err := cmd.CombinedOutput(); err != nil {
				buildErr = fmt.Errorf("build %s: %v\n%s", pkg, err, out)
				return
			}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(buildDir, "k8s-docker-authn")
}

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

func hashOf(t *testing.T, pw string) string {
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

func acct(name, username string, rotation int64, typ string, hashes ...string) registryv1alpha1.ImageRegistryAccount {
	return registryv1alpha1.ImageRegistryAccount{
		TypeMeta:   metav1.TypeMeta{APIVersion: "registry.mgoltzsche.github.com/v1alpha1", Kind: "ImageRegistryAccount"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: registryv1alpha1.ImageRegistryAccountSpec{
			Username: username, Rotation: &rotation, Passwords: hashes,
			Labels: map[string][]string{"namespace": {"team"}, "name": {"app"}, "type": {typ}},
		},
	}
}

// staticAcct is a static account (no rotation) named and logging in as
// username.
func staticAcct(username string, hashes ...string) registryv1alpha1.ImageRegistryAccount {
	a := acct(username, username, 0, "static", hashes...)
	a.Spec.Rotation = nil
	return a
}

// fakeAPI serves the ImageRegistryAccounts of namespace ns as
// kube-apiserver does for list and watch requests, and counts them.
type fakeAPI struct {
	*httptest.Server
	requests atomic.Int32 // all requests
	lists    atomic.Int32 // list requests (not watches)
	events   chan string  // watch events to send, as JSON
}

// apiServer serves the list of ImageRegistryAccounts of namespace ns, as
// kube-apiserver does, and counts requests. A watch streams what is sent
// to its events channel; a watch-list request (sendInitialEvents) is
// refused, so that informers fall back to list and watch.
func apiServer(t *testing.T, items ...registryv1alpha1.ImageRegistryAccount) (*fakeAPI, *atomic.Int32) {
	f := &fakeAPI{events: make(chan string, 16)}
	list := registryv1alpha1.ImageRegistryAccountList{
		TypeMeta: metav1.TypeMeta{APIVersion: "registry.mgoltzsche.github.com/v1alpha1", Kind: "ImageRegistryAccountList"},
		ListMeta: metav1.ListMeta{ResourceVersion: "10"},
		Items:    items,
	}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.requests.Add(1)
		if r.Method != http.MethodGet || r.URL.Path != "/apis/registry.mgoltzsche.github.com/v1alpha1/namespaces/"+ns+"/imageregistryaccounts" {
			http.Error(w, "unexpected request "+r.Method+" "+r.URL.Path, http.StatusNotFound)
			return
		}
		q := r.URL.Query()
		if q.Get("watch") != "true" {
			f.lists.Add(1)
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(list)
			return
		}
		if q.Get("sendInitialEvents") == "true" {
			http.Error(w, `{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"BadRequest","code":400}`, http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		for {
			select {
			case <-r.Context().Done():
				return
			case ev := <-f.events:
				fmt.Fprintln(w, ev)
				w.(http.Flusher).Flush()
			}
		}
	}))
	t.Cleanup(f.Close)
	return f, &f.requests
}

func kubeconfig(t *testing.T, server string) string {
	f := filepath.Join(t.TempDir(), "kubeconfig")
	cfg := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: %q}}]
users: [{name: u, user: {token: test}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
`, server)
	if err := os.WriteFile(f, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// runAsDockerAuth runs the binary as docker_auth's ext_auth does: the
// configured args, "<user> <password>" on stdin without a newline, the exit
// status and stdout read back.
func runAsDockerAuth(t *testing.T, bin string, args []string, user, password string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Stdin = strings.NewReader(user + " " + password)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.Env = []string{"HOME=" + t.TempDir()} // no ambient kubeconfig
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, stdout.String(), stderr.String()
	case errors.As(err, &ee):
		return ee.ExitCode(), stdout.String(), stderr.String()
	default:
		t.Fatalf("run: %v", err)
		return -1, "", ""
	}
}

func TestExtAuthContract(t *testing.T) {
	bin := buildPlugin(t)
	// push: rotation 3, [current, next]; pull shares the username, rotation 1.
	srv, requests := apiServer(t,
		acct("push-app", "team/app", 3, "push", hashOf(t, "push-current"), hashOf(t, "push-next")),
		acct("pull-app", "team/app", 1, "pull", hashOf(t, "pull-current"), hashOf(t, "pull-next")),
		staticAcct("ci-bot", hashOf(t, "correct horse"), hashOf(t, strings.Repeat("y", 72))),
	)
	// No sidecar listens at --socket: every login is checked by the process.
	args := []string{"--namespace=" + ns, "--kubeconfig=" + kubeconfig(t, srv.URL), "--socket=" + filepath.Join(t.TempDir(), "none.sock")}

	for _, tc := range []struct {
		name, user, pw string
		code           int
		labels         map[string][]string
	}{
		{"valid push login", "team/app/3", "push-current", 0, map[string][]string{"namespace": {"team"}, "name": {"app"}, "type": {"push"}}},
		{"valid push login, next password", "team/app/4", "push-next", 0, map[string][]string{"namespace": {"team"}, "name": {"app"}, "type": {"push"}}},
		{"valid pull login", "team/app/1", "pull-current", 0, map[string][]string{"namespace": {"team"}, "name": {"app"}, "type": {"pull"}}},
		{"wrong password", "team/app/3", "wrong", 1, nil},
		{"password with a space", "team/app/3", "push current", 1, nil},
		// docker_auth writes "ci-bot correct horse" for both: ambiguous.
		{"password with a space that verifies", "ci-bot", "correct horse", 1, nil},
		{"docker_auth user with a space", "ci-bot correct", "horse", 1, nil},
		{"password of 72 bytes", "ci-bot", strings.Repeat("y", 72), 0, map[string][]string{"namespace": {"team"}, "name": {"app"}, "type": {"static"}}},
		{"password over 72 bytes whose first 72 verify", "ci-bot", strings.Repeat("y", 73), 1, nil},
		{"rotation out of range", "team/app/9", "push-current", 1, nil},
		{"unknown user", "other/app/1", "push-current", 2, nil},
		{"anonymous", "", "", 2, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runAsDockerAuth(t, bin, args, tc.user, tc.pw)
			if code != tc.code {
				t.Fatalf("exit %d, want %d; stderr: %s", code, tc.code, stderr)
			}
			if strings.Contains(stdout+stderr, tc.pw) && tc.pw != "" {
				t.Errorf("password in the output: %q %q", stdout, stderr)
			}
			if tc.code != 0 {
				if stdout != "" {
					t.Errorf("stdout on exit %d: %q", code, stdout)
				}
				return
			}
			var resp struct {
				Labels map[string][]string `json:"labels"`
			}
			if err := json.Unmarshal([]byte(stdout), &resp); err != nil {
				t.Fatalf("stdout %q: %v", stdout, err)
			}
			if !reflect.DeepEqual(resp.Labels, tc.labels) {
				t.Errorf("labels %v, want %v", resp.Labels, tc.labels)
			}
		})
	}
	if requests.Load() == 0 {
		t.Error("the API server was never asked")
	}
}

func TestExtAuthAPIServerUnreachable(t *testing.T) {
	bin := buildPlugin(t)

	// Nothing listens on the port.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	code, _, stderr := runAsDockerAuth(t, bin, []string{"--namespace=" + ns, "--socket=", "--kubeconfig=" + kubeconfig(t, "http://"+addr)}, "team/app/1", "pw")
	if code != 3 {
		t.Errorf("connection refused: exit %d, want 3; stderr: %s", code, stderr)
	}

	// The API server hangs: the timeout bounds the wait.
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(30 * time.Second):
		}
	}))
	defer hang.Close()
	start := time.Now()
	code, _, stderr = runAsDockerAuth(t, bin, []string{"--namespace=" + ns, "--socket=", "--api-timeout=1s", "--kubeconfig=" + kubeconfig(t, hang.URL)}, "team/app/1", "pw")
	if code != 3 {
		t.Errorf("hanging API server: exit %d, want 3; stderr: %s", code, stderr)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("took %s despite --api-timeout=1s", d)
	}

	// API errors (here: forbidden) are errors too, not denials.
	forbidden := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, `{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"Forbidden","code":403}`, http.StatusForbidden)
	}))
	defer forbidden.Close()
	code, _, _ = runAsDockerAuth(t, bin, []string{"--namespace=" + ns, "--socket=", "--kubeconfig=" + kubeconfig(t, forbidden.URL)}, "team/app/1", "pw")
	if code != 3 {
		t.Errorf("forbidden: exit %d, want 3", code)
	}
}

func TestReadCredentials(t *testing.T) {
	for _, tc := range []struct{ in, user, pw string }{
		{"u p", "u", "p"},
		{"u p\n", "u", "p"},
		{"u ", "u", ""},
		{" ", "", ""},
	} {
		u, p, err := readCredentials(strings.NewReader(tc.in))
		if err != nil || u != tc.user || p != tc.pw {
			t.Errorf("%q: %q %q %v", tc.in, u, p, err)
		}
	}
	if _, _, err := readCredentials(strings.NewReader("u p w")); !errors.Is(err, extauth.ErrAmbiguous) {
		t.Errorf("two spaces: %v, want ErrAmbiguous", err)
	}
	if _, _, err := readCredentials(strings.NewReader("nospace")); err == nil {
		t.Error("accepted input without a separator")
	}
	if _, _, err := readCredentials(strings.NewReader("u " + strings.Repeat("x", maxInput))); err == nil {
		t.Error("accepted oversized input")
	}
}

func TestBadFlags(t *testing.T) {
	var out bytes.Buffer
	if code := run(t.Context(), []string{"--bogus"}, strings.NewReader("u p"), &out, &out); code != exitError {
		t.Errorf("unknown flag: exit %d", code)
	}
}

// TestInstallTo is what the docker_auth pod's init container runs: the
// binary copies the forwarder that lies beside it (as in the operator
// image) into the shared volume, and itself beside it as the forwarder's
// fallback; the copies work together.
func TestInstallTo(t *testing.T) {
	bin := buildPlugin(t)
	dir := t.TempDir()
	dst := filepath.Join(dir, "k8s-docker-authn")
	if out, err := exec.Command(bin, "--install-to", dst).CombinedOutput(); err != nil {
		t.Fatalf("--install-to: %v\n%s", err, out)
	}
	for file, from := range map[string]string{dst: filepath.Join(filepath.Dir(bin), extauth.ForwarderBinary), filepath.Join(dir, extauth.FullBinary): bin} {
		assertCopy(t, file, from)
	}
	// The copy is the authenticator: it reads a login and, with no
	// sidecar, asks the API server (unreachable here, so: exit 3, error).
	assertAsksAPIServer(t, dst)

	// Without the forwarder beside it, the binary installs itself.
	alone := filepath.Join(t.TempDir(), "k8s-docker-authn")
	if err := copyExecutable(bin, alone); err != nil {
		t.Fatal(err)
	}
	dst2 := filepath.Join(t.TempDir(), "k8s-docker-authn")
	if out, err := exec.Command(alone, "--install-to", dst2).CombinedOutput(); err != nil {
		t.Fatalf("--install-to: %v\n%s", err, out)
	}
	assertCopy(t, dst2, bin)
	if _, err := os.Stat(filepath.Join(filepath.Dir(dst2), extauth.FullBinary)); !os.IsNotExist(err) {
		t.Errorf("installed a fallback without a forwarder: %v", err)
	}
	assertAsksAPIServer(t, dst2)
}

func assertCopy(t *testing.T, file, from string) {
	t.Helper()
	got, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s is not a copy of %s", file, from)
	}
	fi, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm()&0o111 == 0 {
		t.Errorf("installed copy %s mode %v is not executable", file, fi.Mode())
	}
}

func assertAsksAPIServer(t *testing.T, bin string) {
	t.Helper()
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kubeconfig, []byte("apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: 'https://127.0.0.1:1'}}]\ncontexts: [{name: c, context: {cluster: c}}]\ncurrent-context: c\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--namespace="+ns, "--kubeconfig="+kubeconfig, "--socket="+filepath.Join(t.TempDir(), "none.sock"))
	cmd.Stdin = strings.NewReader("someone secret\n")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) || exitErr.ExitCode() != exitError || !strings.Contains(stderr.String(), "list ImageRegistryAccounts") {
		t.Errorf("installed copy answered %v (%s), want exit %d after asking the API server", err, stderr.String(), exitError)
	}
}
