//go:build e2e

package e2e

// TestProxy: an ImageRegistry with spec.proxy is a pull-through cache of a
// second, real distribution registry with its own (htpasswd) auth, which
// plays the upstream.
//
//	go test -tags e2e -run TestProxy -v ./test/e2e/

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/image-registry-operator/image-registry-operator/pkg/apis/registry/v1alpha1"
	"github.com/image-registry-operator/image-registry-operator/test/e2e/dataplane"
)

// upstream is a distribution registry on the host's loopback, plain HTTP
// with basic auth (htpasswd), logging every request.
type upstream struct {
	addr    string
	logFile string
	cmd     *exec.Cmd
}

func startUpstream(t *testing.T, bin, dir, user, password string) *upstream {
	t.Helper()
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	htpasswd := filepath.Join(dir, "htpasswd")
	if err := os.WriteFile(htpasswd, []byte(user+":"+string(hash)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	u := &upstream{addr: fmt.Sprintf("127.0.0.1:%d", freePort(t)), logFile: filepath.Join(dir, "upstream.log")}
	cfg := fmt.Sprintf(`version: 0.1
log:
  level: info
storage:
  filesystem:
    rootdirectory: %s
http:
  addr: %s
auth:
  htpasswd:
    realm: upstream
    path: %s
`, filepath.Join(dir, "data"), u.addr, htpasswd)
	cfgFile := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	u.start(t, bin, cfgFile)
	return u
}

func (u *upstream) start(t *testing.T, bin, cfgFile string) {
	t.Helper()
	logf, err := os.OpenFile(u.logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", cfgFile)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), "OTEL_TRACES_EXPORTER=none", "OTEL_SDK_DISABLED=true")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	u.cmd = cmd
	t.Cleanup(func() { u.stop(); logf.Close() })
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + u.addr + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("upstream /v2/ without credentials: %d, want 401", resp.StatusCode)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("upstream not up: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (u *upstream) stop() {
	if u.cmd == nil || u.cmd.Process == nil {
		return
	}
	_ = u.cmd.Process.Kill()
	_ = u.cmd.Wait()
	u.cmd = nil
}

// requests counts the upstream's access log lines for method and a path
// matching re, answered with status.
func (u *upstream) requests(t *testing.T, method, pathRE string, status int) int {
	t.Helper()
	b, err := os.ReadFile(u.logFile)
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`"` + method + ` ` + pathRE + ` HTTP/1\.1" ` + fmt.Sprint(status) + ` `)
	return len(re.FindAllIndex(b, -1))
}

func TestProxy(t *testing.T) {
	registryBin, craneBin := dataPlaneTools(t)
	const upUser, upPassword = "mirror", "upstream-password-1"
	dir := t.TempDir()
	up := startUpstream(t, registryBin, dir, upUser, upPassword)
	upCrane := craneRunner{bin: craneBin, registry: up.addr}
	upRef := up.addr + "/library/app:v1"
	if out, err := upCrane.run(t, upUser, upPassword, "append", "--insecure", "-f", layerOf(t, dir, "app", 512<<10), "-f", layerOf(t, dir, "app2", 4<<10), "-t", upRef); err != nil {
		t.Fatalf("push to the upstream: %v\n%s", err, out)
	}
	out, err := upCrane.run(t, upUser, upPassword, "digest", "--insecure", upRef)
	if err != nil {
		t.Fatalf("upstream digest: %v\n%s", err, out)
	}
	want := strings.TrimSpace(lastLine(out))
	t.Logf("upstream %s: %s@%s", up.addr, upRef, want)

	u := newUserEnv(t)
	const name = "cache"
	u.kubectlNS(t, u.ns, fmt.Sprintf(`apiVersion: v1
kind: Secret
metadata:
  name: upstream-login
stringData:
  username: %s
  password: %s
---
apiVersion: registry.mgoltzsche.github.com/v1alpha1
kind: ImageRegistry
metadata:
  name: %s
spec:
  proxy:
    remoteURL: http://%s
    credentialsSecret: upstream-login
---
apiVersion: registry.mgoltzsche.github.com/v1alpha1
kind: ImagePullSecret
metadata:
  name: cache
spec:
  registryRef:
    name: %s
---
apiVersion: registry.mgoltzsche.github.com/v1alpha1
kind: ImagePushSecret
metadata:
  name: cache
spec:
  registryRef:
    name: %s
`, upUser, upPassword, name, up.addr, name, name), "apply", "-f", "-")
	// The upstream password must not show in any log either.
	u.pw.add(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: u.ns, Name: "upstream-login"}, Data: map[string][]byte{"password": []byte(upPassword)}})
	u.startDataPlaneWith(t, name, 0, func(o *dataplane.Options) { o.HostServices = append(o.HostServices, up.addr) })
	u.waitReady(t, readyTimeout, "imageregistry/"+name, "imagepullsecret/cache", "imagepushsecret/cache")
	ctx := context.Background()
	pull := u.creds(t, u.ns, "cache-image-pull-secret")
	ref := u.dp.Hostname() + "/library/app:v1"
	byDigest := u.dp.Hostname() + "/library/app@" + want

	blobGets := func() int { return up.requests(t, "GET", `/v2/library/app/blobs/sha256:[0-9a-f]+`, 200) }
	manifestReqs := func() int {
		return up.requests(t, "GET", `/v2/library/app/manifests/[^ ]+`, 200) + up.requests(t, "HEAD", `/v2/library/app/manifests/[^ ]+`, 200)
	}
	step(t, "a pull through the cache returns the upstream's digest", func(t *testing.T) {
		got, err := u.crane.Pull(ctx, pull, ref)
		if err != nil || got != want {
			t.Fatalf("pull through the cache: %s, %v; want %s", got, err, want)
		}
	})
	firstBlobs, firstManifests := blobGets(), manifestReqs()
	step(t, "repeated pulls fetch no blob from the upstream again", func(t *testing.T) {
		for i := 0; i < 3; i++ {
			for _, r := range []string{ref, byDigest} {
				if got, err := u.crane.Pull(ctx, pull, r); err != nil || got != want {
					t.Fatalf("pull %d of %s: %s, %v", i, r, got, err)
				}
			}
		}
		t.Logf("upstream requests: blob GETs %d after the first pull, %d after 6 more pulls; manifest GET/HEADs %d, then %d",
			firstBlobs, blobGets(), firstManifests, manifestReqs())
		if firstBlobs == 0 || blobGets() != firstBlobs {
			t.Errorf("blob GETs at the upstream: %d after the first pull, %d after the repeated ones; want the same, > 0", firstBlobs, blobGets())
		}
	})
	step(t, "anonymous clients and pushes are refused", func(t *testing.T) {
		// No login, but the registry's CA: refused by the token auth.
		empty := t.TempDir()
		_, err := u.crane.Pull(ctx, &dataplane.Credentials{DockerConfigDir: empty, CAFile: pull.CAFile}, ref)
		denied(t, "anonymous pull through the cache", err)
		_, err = u.crane.PushRandom(ctx, u.creds(t, u.ns, "cache-image-push-secret"), u.dp.Hostname()+"/"+u.ns+"/pushed:v1")
		if err == nil {
			t.Fatal("a push into the pull-through cache succeeded")
		}
		t.Logf("push refused: %s", tail(err.Error(), 300))
	})
	step(t, "pulls work from the cache while the upstream is down", func(t *testing.T) {
		up.stop()
		for _, r := range []string{ref, byDigest} {
			if got, err := u.crane.Pull(ctx, pull, r); err != nil || got != want {
				t.Fatalf("pull of %s with the upstream stopped: %s, %v", r, got, err)
			}
		}
	})
	r, err := u.registry.RegistryV1alpha1().ImageRegistries(u.ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil || !meta.IsStatusConditionTrue(r.Status.Conditions, v1alpha1.ConditionReady) {
		t.Errorf("registry: %v %+v", err, r.Status.Conditions)
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
