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
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	registryv1alpha1 "github.com/image-registry-operator/image-registry-operator/pkg/apis/registry/v1alpha1"
)

const ns = "registry"

// buildPlugin builds the binary as it ships: statically, without cgo.
func buildPlugin(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "k8s-docker-authn")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return bin
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

// apiServer serves the list of ImageRegistryAccounts of namespace ns, as
// kube-apiserver does, and counts requests.
func apiServer(t *testing.T, items ...registryv1alpha1.ImageRegistryAccount) (*httptest.Server, *atomic.Int32) {
	var n atomic.Int32
	list := registryv1alpha1.ImageRegistryAccountList{
		TypeMeta: metav1.TypeMeta{APIVersion: "registry.mgoltzsche.github.com/v1alpha1", Kind: "ImageRegistryAccountList"},
		Items:    items,
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		if r.Method != http.MethodGet || r.URL.Path != "/apis/registry.mgoltzsche.github.com/v1alpha1/namespaces/"+ns+"/imageregistryaccounts" {
			http.Error(w, "unexpected request "+r.Method+" "+r.URL.Path, http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(list)
	}))
	t.Cleanup(srv.Close)
	return srv, &n
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
	)
	args := []string{"--namespace=" + ns, "--kubeconfig=" + kubeconfig(t, srv.URL)}

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
	code, _, stderr := runAsDockerAuth(t, bin, []string{"--namespace=" + ns, "--kubeconfig=" + kubeconfig(t, "http://"+addr)}, "team/app/1", "pw")
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
	code, _, stderr = runAsDockerAuth(t, bin, []string{"--namespace=" + ns, "--api-timeout=1s", "--kubeconfig=" + kubeconfig(t, hang.URL)}, "team/app/1", "pw")
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
	code, _, _ = runAsDockerAuth(t, bin, []string{"--namespace=" + ns, "--kubeconfig=" + kubeconfig(t, forbidden.URL)}, "team/app/1", "pw")
	if code != 3 {
		t.Errorf("forbidden: exit %d, want 3", code)
	}
}

func TestReadCredentials(t *testing.T) {
	for _, tc := range []struct{ in, user, pw string }{
		{"u p", "u", "p"},
		{"u p w\n", "u", "p w"},
		{"u ", "u", ""},
		{" ", "", ""},
	} {
		u, p, err := readCredentials(strings.NewReader(tc.in))
		if err != nil || u != tc.user || p != tc.pw {
			t.Errorf("%q: %q %q %v", tc.in, u, p, err)
		}
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
// binary copies itself into the shared volume, and the copy works.
func TestInstallTo(t *testing.T) {
	bin := buildPlugin(t)
	dst := filepath.Join(t.TempDir(), "k8s-docker-authn")
	if out, err := exec.Command(bin, "--install-to", dst).CombinedOutput(); err != nil {
		t.Fatalf("--install-to: %v\n%s", err, out)
	}
	fi, err := os.Stat(dst)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm()&0o111 == 0 {
		t.Errorf("installed copy mode %v is not executable", fi.Mode())
	}
	// The copy is the authenticator: it reads a login and asks the API
	// server (unreachable here, so: exit 3, error).
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kubeconfig, []byte("apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: 'https://127.0.0.1:1'}}]\ncontexts: [{name: c, context: {cluster: c}}]\ncurrent-context: c\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(dst, "--namespace="+ns, "--kubeconfig="+kubeconfig)
	cmd.Stdin = strings.NewReader("someone secret\n")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err = cmd.Run()
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) || exitErr.ExitCode() != exitError || !strings.Contains(stderr.String(), "list ImageRegistryAccounts") {
		t.Errorf("installed copy answered %v (%s), want exit %d after asking the API server", err, stderr.String(), exitError)
	}
}
