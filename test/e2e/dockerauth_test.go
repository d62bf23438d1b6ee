//go:build e2e

package e2e

// docker_auth mode end to end (issue 14): an ImageRegistry with
// spec.auth.server: docker_auth, run by the data plane exactly as the
// operator wrote its pod (the init container installs our ext_auth
// authenticator, the real docker_auth 1.13.0 runs as the
// cesanta/docker_auth image's entrypoint and calls it for every login), with
// crane and skopeo as clients.
//
// docker_auth is not built here (the module proxy does not serve it): the
// tests run the binary IRO_DOCKER_AUTH_BIN names and skip without it.
//
//	IRO_DOCKER_AUTH_BIN=../shared/tools/docker_auth/auth_server go test -tags e2e -count=1 -v -run TestDockerAuth ./test/e2e/
//
// All checks share one registry and operator, to keep CI short; each step
// is a subtest and logs its duration.

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/yaml"

	"github.com/image-registry-operator/image-registry-operator/test/e2e/dataplane"
	"github.com/image-registry-operator/image-registry-operator/test/e2e/framework"
)

// dockerAuthBin returns docker_auth's auth_server from IRO_DOCKER_AUTH_BIN
// (a relative path is taken from the repository root) and exports it made
// absolute, for the data plane's default entrypoints; without it the test
// is skipped.
func dockerAuthBin(t *testing.T) string {
	t.Helper()
	bin := os.Getenv(dataplane.DockerAuthBinEnv)
	if bin == "" {
		t.Skipf("docker_auth scenarios need the real docker_auth 1.13.0 binary: set %s=../shared/tools/docker_auth/auth_server (relative to the repository root; .ci/run sets it)", dataplane.DockerAuthBinEnv)
	}
	if !filepath.IsAbs(bin) {
		root, err := framework.RepoRoot()
		if err != nil {
			t.Fatal(err)
		}
		bin = filepath.Join(root, bin)
	}
	fi, err := os.Stat(bin)
	if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
		t.Fatalf("%s=%s: not an executable file (%v)", dataplane.DockerAuthBinEnv, bin, err)
	}
	t.Setenv(dataplane.DockerAuthBinEnv, bin)
	return bin
}

// dockerAuthRegistry is the example registry with auth.server docker_auth,
// admitting the secrets of namespace other (spec.access).
func dockerAuthRegistry(t *testing.T, other string) string {
	t.Helper()
	root, err := framework.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	example, err := os.ReadFile(filepath.Join(root, "artifacts", "examples", "registry.mgoltzsche.github.com_v1alpha1_imageregistry_cr.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var obj map[string]any
	if err := yaml.Unmarshal(example, &obj); err != nil {
		t.Fatal(err)
	}
	spec := obj["spec"].(map[string]any)
	spec["auth"] = map[string]any{"server": "docker_auth"}
	spec["access"] = map[string]any{"namespaces": []any{other}}
	out, err := yaml.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// TestDockerAuth runs the docker_auth scenarios on one registry, in order:
//
//   - push with the generated push Secret, pull with the pull Secret, with
//     crane and with skopeo;
//   - refusals: the pull Secret cannot push, the push secret of another
//     namespace (admitted by spec.access) gets nothing of this namespace's
//     repositories, anonymous and wrong passwords get nothing;
//   - password rotation under traffic, with no failed pull, and the
//     replaced password refused after the grace period;
//   - token-key renewal under traffic: the token Secret is deleted, the
//     operator makes a new key, the registry trusts the old and the new one
//     (jwks.json) and the pod is replaced; no pull is refused by auth;
//   - a user auth ConfigMap (spec.auth.configMapName) with a docker_auth
//     static user beside the generated accounts' ext_auth: both work;
//   - revocation within 10s of deleting the ImagePushSecret;
//   - no password in the operator's, docker_auth's or ext_auth's logs.
func TestDockerAuth(t *testing.T) {
	dockerAuthBin(t)
	u := newUserEnv(t, "--grace-period="+gracePeriod.String())
	u.kubectlNS(t, u.ns, dockerAuthRegistry(t, u.otherNamespaceName()), "apply", "-f", "-")
	u.applyExampleSecrets(t)
	u.startDataPlane(t, exampleRegistry)
	u.waitReady(t, readyTimeout, "imageregistry/"+exampleRegistry, "imagepushsecret/example", "imagepullsecret/example")
	sk, err := u.dp.Skopeo(filepath.Join(filepath.Dir(u.crane.Dir), "skopeo"))
	if err != nil {
		t.Fatal(err)
	}
	checkDockerAuthPod(t, u)
	ctx := context.Background()
	ref := u.image("app:v1")
	var digest string

	step(t, "push and pull", func(t *testing.T) {
		push := u.creds(t, u.ns, examplePushSecret)
		pull := u.creds(t, u.ns, examplePullSecret)
		digest = u.pushAndPull(t, push, pull, ref)

		dir, got, err := sk.Pull(ctx, pull, ref)
		if err != nil {
			t.Fatalf("skopeo pull with the pull Secret: %v", err)
		}
		if got != digest {
			t.Fatalf("skopeo pulled %s, crane pushed %s", got, digest)
		}
		skRef := u.image("app:by-skopeo")
		if err := sk.Push(ctx, push, dir, skRef); err != nil {
			t.Fatalf("skopeo push with the push Secret: %v", err)
		}
		if got, err := sk.Digest(ctx, pull, skRef); err != nil || got != digest {
			t.Fatalf("skopeo inspect with the pull Secret: %q, %v; want %s", got, err, digest)
		}
		if got, err := u.crane.Pull(ctx, pull, skRef); err != nil || got != digest {
			t.Fatalf("crane pull of what skopeo pushed: %q, %v; want %s", got, err, digest)
		}
		t.Logf("skopeo: pulled %s and pushed it as %s, digest kept", ref, skRef)
	})

	step(t, "refusals", func(t *testing.T) {
		push := u.creds(t, u.ns, examplePushSecret)
		pull := u.creds(t, u.ns, examplePullSecret)
		_, err := u.crane.PushRandom(ctx, pull, u.image("app:by-pull-secret"))
		denied(t, "crane push with the pull Secret", err)
		dir, _, err := sk.Pull(ctx, pull, ref)
		if err != nil {
			t.Fatalf("skopeo pull: %v", err)
		}
		refusedClient(t, "skopeo push with the pull Secret", sk.Push(ctx, pull, dir, u.image("app:by-pull-secret")))

		// A push secret of an admitted namespace (spec.access): it may push
		// to its own namespace's repositories, not to this one's.
		other := u.otherNamespace(t)
		if other != u.otherNamespaceName() {
			t.Fatalf("the other namespace is %s, the registry admits %s", other, u.otherNamespaceName())
		}
		u.kubectlNS(t, other, fmt.Sprintf(`apiVersion: registry.mgoltzsche.github.com/v1alpha1
kind: ImagePushSecret
metadata: {name: intruder, namespace: %s}
spec:
  registryRef: {name: %s, namespace: %s}
`, other, exampleRegistry, u.ns), "apply", "-f", "-")
		u.kubectlNS(t, other, "", "wait", "--for=condition=Ready", "--timeout=2m", "imagepushsecret/intruder")
		u.checkIntruder(t, other, ref)

		anonymous := &dataplane.Credentials{DockerConfigDir: t.TempDir(), CAFile: pull.CAFile}
		_, err = u.crane.Pull(ctx, anonymous, ref)
		denied(t, "crane anonymous pull", err)
		_, _, err = sk.Pull(ctx, anonymous, ref)
		refusedClient(t, "skopeo anonymous pull", err)
		_, err = u.crane.PushRandom(ctx, anonymous, u.image("app:anonymous"))
		denied(t, "crane anonymous push", err)

		wrong := u.loginCreds(t, push.Username, randomPassword(), push.CAFile)
		_, err = u.crane.Pull(ctx, wrong, ref)
		denied(t, "crane pull with the push account and a wrong password", err)
		_, err = u.crane.PushRandom(ctx, wrong, u.image("app:wrong-password"))
		denied(t, "crane push with the push account and a wrong password", err)
		_, _, err = sk.Pull(ctx, wrong, ref)
		refusedClient(t, "skopeo pull with a wrong password", err)
		// The next password is published as a hash only: a guess of the
		// current password with another rotation number is no login either.
		_, err = u.crane.Pull(ctx, u.loginCreds(t, otherRotation(t, pull.Username), pull.Password, pull.CAFile), ref)
		denied(t, "crane pull with the pull password under another rotation number", err)
	})

	step(t, "rotation under traffic", func(t *testing.T) {
		// The shortest interval the API allows, and two rotations: the
		// builtin mode's TestUserRotationUnderTraffic goes through more.
		const interval, rotations = 10 * time.Second, 2
		for _, kind := range []string{"imagepushsecret", "imagepullsecret"} {
			u.kubectl(t, "patch", kind, "example", "--type=merge", "-p", fmt.Sprintf(`{"spec":{"rotationInterval":%q}}`, interval))
		}
		u.rotateUnderTraffic(t, rotations, interval, ref, digest)
		// Back to the default interval, so that later steps hold still.
		for _, kind := range []string{"imagepushsecret", "imagepullsecret"} {
			u.kubectl(t, "patch", kind, "example", "--type=merge", "-p", `{"spec":{"rotationInterval":null}}`)
		}
	})

	step(t, "token key renewal under traffic", func(t *testing.T) {
		u.tokenKeyRenewal(t, ref, digest)
	})

	step(t, "user auth ConfigMap with a static user", func(t *testing.T) {
		u.staticUser(t, sk, ref, digest)
	})

	step(t, "revocation", func(t *testing.T) {
		const revocationBound = 10 * time.Second
		push := u.creds(t, u.ns, examplePushSecret)
		if _, err := u.crane.PushRandom(ctx, push, u.image("app:before-revocation")); err != nil {
			t.Fatalf("push: %v", err)
		}
		deleted := time.Now()
		u.kubectl(t, "delete", "imagepushsecret", "example", "--wait=false")
		u.expectRevoked(t, push, ref, deleted, "kubectl delete", revocationBound, "password of the deleted ImagePushSecret")
		if _, err := u.crane.Pull(ctx, u.creds(t, u.ns, examplePullSecret), ref); err != nil {
			t.Fatalf("pull with the pull Secret after revoking the push secret: %v", err)
		}
	})

	if p := u.dp.Problems(); len(p) > 0 {
		t.Errorf("data plane problems:\n%s", strings.Join(p, "\n"))
	}
	checkDockerAuthLogs(t, u)
}

// step runs one scenario as a subtest and logs its duration; a failed step
// ends the test, since the later ones build on its state.
func step(t *testing.T, name string, f func(t *testing.T)) {
	t.Helper()
	start := time.Now()
	ok := t.Run(name, f)
	t.Logf("step %q took %s", name, time.Since(start).Round(100*time.Millisecond))
	if !ok {
		t.FailNow()
	}
}

// checkDockerAuthPod checks that what runs is the operator's docker_auth
// pod: an init container and an auth container that runs the
// cesanta/docker_auth image's entrypoint.
func checkDockerAuthPod(t *testing.T, u *userEnv) {
	t.Helper()
	pod, err := u.cp.Client.CoreV1().Pods(u.ns).Get(context.Background(), exampleRegistry+"-0", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var auth *corev1.Container
	for i := range pod.Spec.Containers {
		if strings.HasPrefix(pod.Spec.Containers[i].Image, dataplane.DockerAuthImage+":") {
			auth = &pod.Spec.Containers[i]
		}
	}
	if auth == nil || len(auth.Command) != 0 || len(pod.Spec.InitContainers) == 0 {
		t.Fatalf("pod %s is not the docker_auth pod this test expects (a %s container without command, init containers): %+v", pod.Name, dataplane.DockerAuthImage, pod.Spec)
	}
	var inits []string
	for _, c := range pod.Status.InitContainerStatuses {
		if c.State.Terminated != nil {
			inits = append(inits, fmt.Sprintf("%s: %s", c.Name, c.State.Terminated.Reason))
		}
	}
	t.Logf("pod %s: init containers %v; %s runs %s %q", pod.Name, inits, auth.Name, auth.Image, auth.Args)
}

// refusedClient fails the test unless err is a client (crane or skopeo)
// being refused access.
func refusedClient(t *testing.T, what string, err error) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s succeeded, want it refused", what)
	}
	var d interface{ Denied() bool }
	if !errors.As(err, &d) || !d.Denied() {
		t.Fatalf("%s failed, but not as refused access: %v", what, err)
	}
	t.Logf("%s refused as expected", what)
}

func randomPassword() string {
	var b [24]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// otherRotation is a generated login <namespace>/<name>/<rotation> with
// another rotation number.
func otherRotation(t *testing.T, username string) string {
	t.Helper()
	i := strings.LastIndex(username, "/")
	if i < 0 {
		t.Fatalf("username %q is not <namespace>/<name>/<rotation>", username)
	}
	var r int64
	if _, err := fmt.Sscan(username[i+1:], &r); err != nil {
		t.Fatalf("username %q: %v", username, err)
	}
	return fmt.Sprintf("%s/%d", username[:i], r+1)
}

// loginCreds writes a docker config for the registry with user and
// password, and the CA.
func (u *userEnv) loginCreds(t *testing.T, user, password, caFile string) *dataplane.Credentials {
	t.Helper()
	dir, err := os.MkdirTemp(u.crane.Dir, "login-")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := json.Marshal(map[string]any{"auths": map[string]any{u.dp.Hostname(): map[string]string{
		"auth": base64.StdEncoding.EncodeToString([]byte(user + ":" + password)),
	}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	ca, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	c := &dataplane.Credentials{DockerConfigDir: dir, CAFile: filepath.Join(dir, "ca.crt"), Username: user, Password: password}
	if err := os.WriteFile(c.CAFile, ca, 0o644); err != nil {
		t.Fatal(err)
	}
	return c
}

// registryJWKSKeyIDs are the key ids in jwks.json of the registry's
// ConfigMap.
func (u *userEnv) registryJWKSKeyIDs(ctx context.Context) ([]string, error) {
	cm, err := u.cp.Client.CoreV1().ConfigMaps(u.ns).Get(ctx, exampleRegistry+"-registry-config", metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	raw, ok := cm.Data["jwks.json"]
	if !ok {
		return nil, fmt.Errorf("ConfigMap %s has no jwks.json", cm.Name)
	}
	var jwks struct {
		Keys []struct {
			Kid string `json:"kid"`
		} `json:"keys"`
	}
	if err := json.Unmarshal([]byte(raw), &jwks); err != nil {
		return nil, fmt.Errorf("jwks.json: %w", err)
	}
	var kids []string
	for _, k := range jwks.Keys {
		kids = append(kids, k.Kid)
	}
	return kids, nil
}

// waitPodReplaced waits until the data plane serves a pod other than old.
func (u *userEnv) waitPodReplaced(t *testing.T, old types.UID, timeout time.Duration) {
	t.Helper()
	eventually(t, timeout, "the registry pod to be replaced and ready", func(context.Context) (bool, error) {
		uid := u.dp.PodUID()
		if uid == old || uid == "" {
			return false, fmt.Errorf("pod %s still runs", old)
		}
		return u.dp.Ready(), fmt.Errorf("pod %s not ready", uid)
	})
}

// pullOutcomes counts what a pull loop saw: pulls, pulls refused by auth
// (never allowed), pulls that found the registry unavailable while its pod
// was replaced (retried), and other failures (never allowed).
type pullOutcomes struct {
	mu                                 sync.Mutex
	ok, refused, unavailable, failures int
	errs                               []string
	lastUnavailable                    string
}

// unavailable tells whether err is a connection that found no process:
// the data plane runs one pod, so while it is replaced connections are
// refused or closed at once (the Service's forwarder accepts, and resets
// when its target is gone).
func unavailable(err error) bool {
	for _, s := range []string{"connection refused", "connection reset by peer", ": EOF", "unexpected EOF", "broken pipe",
		"http2: client conn could not be established", "use of closed network connection"} {
		if strings.Contains(err.Error(), s) {
			return true
		}
	}
	return false
}

// refusedByAuth tells whether err is a refusal by the token server or the
// registry's token check.
func refusedByAuth(err error) bool {
	var d interface{ Denied() bool }
	return (errors.As(err, &d) && d.Denied()) || strings.Contains(err.Error(), "invalid token")
}

// tokenKeyRenewal deletes the registry's token Secret while a client pulls
// all along: the operator writes the Secret back with the old key and a new
// one, lists both in jwks.json, and switches to the new key once the
// replaced pod trusts it; no pull is refused by auth.
func (u *userEnv) tokenKeyRenewal(t *testing.T, ref, digest string) {
	ctx := context.Background()
	before, err := u.registryJWKSKeyIDs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(before) == 0 {
		t.Fatal("jwks.json lists no key")
	}
	t.Logf("jwks.json before: %v", before)
	pull := u.creds(t, u.ns, examplePullSecret)
	if kid := u.tokenKeyID(t, pull); !slices.Contains(before, kid) {
		t.Fatalf("docker_auth signs with key id %q, which jwks.json %v does not list", kid, before)
	}
	oldPod := u.dp.PodUID()

	var out pullOutcomes
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			s, err := u.cp.Client.CoreV1().Secrets(u.ns).Get(ctx, examplePullSecret, metav1.GetOptions{})
			if err != nil {
				continue
			}
			c, err := u.crane.SaveCredentials(s)
			if err != nil {
				continue
			}
			got, err := u.crane.Pull(ctx, c, ref)
			out.mu.Lock()
			switch {
			case err == nil && got == digest:
				out.ok++
			case err == nil:
				out.failures++
				out.errs = append(out.errs, fmt.Sprintf("%s digest %s, want %s", time.Now().Format("15:04:05.000"), got, digest))
			case refusedByAuth(err):
				out.refused++
				out.errs = append(out.errs, time.Now().Format("15:04:05.000 ")+"refused by auth: "+err.Error())
			case unavailable(err):
				out.unavailable++
				out.lastUnavailable = err.Error()
			default:
				out.failures++
				out.errs = append(out.errs, time.Now().Format("15:04:05.000 ")+err.Error())
			}
			out.mu.Unlock()
			if err != nil && unavailable(err) {
				time.Sleep(100 * time.Millisecond)
			}
		}
	}()
	halt := func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		<-done
	}
	defer halt()
	okSoFar := func() int {
		out.mu.Lock()
		defer out.mu.Unlock()
		return out.ok
	}
	// Some pulls with the old key first.
	eventually(t, time.Minute, "pulls before the renewal", func(context.Context) (bool, error) { return okSoFar() >= 2, nil })

	deleted := time.Now()
	u.deleteTokenSecret(t)
	okAtDeletion := okSoFar()
	var after []string
	eventually(t, time.Minute, "jwks.json to list the old and a new key", func(ctx context.Context) (bool, error) {
		kids, err := u.registryJWKSKeyIDs(ctx)
		if err != nil {
			return false, err
		}
		after = kids
		for _, k := range before {
			if !slices.Contains(kids, k) {
				return false, fmt.Errorf("old key %s is gone from %v", k, kids)
			}
		}
		return len(kids) > len(before), fmt.Errorf("keys %v", kids)
	})
	t.Logf("jwks.json after %s: %v", time.Since(deleted).Round(100*time.Millisecond), after)
	// The deleted key signs until the pod trusts the new one, which then
	// signs from the next pod on: two replacements.
	eventually(t, 3*time.Minute, "docker_auth to sign with a new key", func(context.Context) (bool, error) {
		kid, err := u.tokenKeyIDErr(pull)
		if err != nil {
			return false, err
		}
		return !slices.Contains(before, kid), fmt.Errorf("signs with %s", kid)
	})
	u.waitPodReplaced(t, oldPod, time.Minute)
	t.Logf("a new key signs %s after the deletion; %d pulls succeeded in between (crane retries a refused connection itself)",
		time.Since(deleted).Round(100*time.Millisecond), okSoFar()-okAtDeletion)
	// Pulls with tokens of the new key.
	n := okSoFar()
	eventually(t, time.Minute, "pulls after the renewal", func(context.Context) (bool, error) { return okSoFar() >= n+3, nil })
	halt()

	out.mu.Lock()
	defer out.mu.Unlock()
	t.Logf("%d pulls succeeded, %d found the registry unavailable while its pod was replaced (retried; last: %s), %d refused by auth, %d failed otherwise",
		out.ok, out.unavailable, tail(out.lastUnavailable, 200), out.refused, out.failures)
	if out.refused > 0 || out.failures > 0 {
		t.Fatalf("pulls failed during the token key renewal:\n%s", strings.Join(out.errs, "\n"))
	}
	kids, err := u.registryJWKSKeyIDs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range before {
		if !slices.Contains(kids, k) {
			t.Errorf("the old key %s left jwks.json within its token lifetime: %v", k, kids)
		}
	}
	kid := u.tokenKeyID(t, u.creds(t, u.ns, examplePullSecret))
	if slices.Contains(before, kid) || !slices.Contains(kids, kid) {
		t.Errorf("after the renewal docker_auth signs with key id %q; want a new key of jwks.json %v (old: %v)", kid, kids, before)
	}
	t.Logf("docker_auth now signs with the new key %s", kid)
}

// tokenKeyID asks the token server for a pull token as a registry client
// would (the realm, basic auth with creds, TLS verified with its CA) and
// returns the key id in the token's header. The token itself is never logged.
func (u *userEnv) tokenKeyID(t *testing.T, creds *dataplane.Credentials) string {
	t.Helper()
	kid, err := u.tokenKeyIDErr(creds)
	if err != nil {
		t.Fatal(err)
	}
	return kid
}

// tokenKeyIDErr is tokenKeyID that returns its error.
func (u *userEnv) tokenKeyIDErr(creds *dataplane.Credentials) (string, error) {
	ca, err := os.ReadFile(creds.CAFile)
	if err != nil {
		return "", err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return "", errors.New("no CA certificate in ca.crt")
	}
	host := u.dp.Hostname()
	var d net.Dialer
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: host},
		// The hostname resolves to the Service's address, as in the hosts file.
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			_, port, err := net.SplitHostPort(addr)
			if err != nil {
				return nil, err
			}
			return d.DialContext(ctx, network, net.JoinHostPort(u.dp.Addr, port))
		},
	}}
	defer client.CloseIdleConnections()
	q := url.Values{"service": {host}, "scope": {"repository:" + u.ns + "/app:pull"}}
	req, err := http.NewRequest(http.MethodGet, "https://"+net.JoinHostPort(host, "5001")+"/auth?"+q.Encode(), nil)
	if err != nil {
		return "", err
	}
	req.SetBasicAuth(creds.Username, creds.Password)
	resp, err := client.Do(req)
	if err != nil {
		return "", fmt.Errorf("token request: %w", err)
	}
	defer resp.Body.Close()
	var body struct {
		Token string `json:"token"`
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("token request: %s", resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return "", fmt.Errorf("token response: %w", err)
	}
	header, _, ok := strings.Cut(body.Token, ".")
	raw, err := base64.RawURLEncoding.DecodeString(header)
	if !ok || err != nil {
		return "", fmt.Errorf("the token is no JWT (%v)", err)
	}
	var h struct {
		Kid string `json:"kid"`
	}
	if err := json.Unmarshal(raw, &h); err != nil || h.Kid == "" {
		return "", fmt.Errorf("token header %s: no kid (%v)", raw, err)
	}
	return h.Kid, nil
}

// staticUser switches the registry to a user auth ConfigMap: the
// operator's rendered docker_auth configuration plus a docker_auth static
// user (users: with a bcrypt hash) and an ACL entry for it. The static user
// and the generated accounts (ext_auth) both work.
func (u *userEnv) staticUser(t *testing.T, sk *dataplane.Skopeo, ref, digest string) {
	ctx := context.Background()
	rendered, err := u.cp.Client.CoreV1().ConfigMaps(u.ns).Get(ctx, exampleRegistry+"-auth-config", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := yaml.Unmarshal([]byte(rendered.Data["auth_config.yml"]), &cfg); err != nil {
		t.Fatalf("rendered auth_config.yml: %v", err)
	}
	const staticName = "static-bot"
	password := randomPassword()
	u.pw.mu.Lock()
	u.pw.passwords[password] = "the static user " + staticName
	u.pw.mu.Unlock()
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	cfg["users"] = map[string]any{staticName: map[string]any{"password": string(hash)}}
	acl, _ := cfg["acl"].([]any)
	cfg["acl"] = append([]any{map[string]any{
		"match":   map[string]any{"account": staticName, "name": u.ns + "/static-*"},
		"actions": []any{"push", "pull"},
		"comment": "the static user may push and pull " + u.ns + "/static-*",
	}}, acl...)
	data, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "docker-auth-users"}, Data: map[string]string{"auth_config.yml": string(data)}}
	if _, err := u.cp.Client.CoreV1().ConfigMaps(u.ns).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	oldPod := u.dp.PodUID()
	u.kubectl(t, "patch", "imageregistry", exampleRegistry, "--type=merge", "-p", `{"spec":{"auth":{"configMapName":"docker-auth-users"}}}`)
	u.waitPodReplaced(t, oldPod, 2*time.Minute)
	u.waitReady(t, readyTimeout, "imageregistry/"+exampleRegistry)

	pull := u.creds(t, u.ns, examplePullSecret)
	static := u.loginCreds(t, staticName, password, pull.CAFile)
	staticRef := u.image("static-app:v1")
	staticDigest, err := u.crane.PushRandom(ctx, static, staticRef)
	if err != nil {
		t.Fatalf("push as the static user: %v", err)
	}
	if got, err := u.crane.Pull(ctx, static, staticRef); err != nil || got != staticDigest {
		t.Fatalf("pull as the static user: %q, %v; want %s", got, err, staticDigest)
	}
	if _, got, err := sk.Pull(ctx, static, staticRef); err != nil || got != staticDigest {
		t.Fatalf("skopeo pull as the static user: %q, %v; want %s", got, err, staticDigest)
	}
	t.Logf("static user %s pushed and pulled %s", staticName, staticRef)
	_, err = u.crane.Pull(ctx, static, ref)
	denied(t, "pull outside the static user's ACL entry", err)
	_, err = u.crane.Pull(ctx, u.loginCreds(t, staticName, randomPassword(), pull.CAFile), staticRef)
	denied(t, "pull as the static user with a wrong password", err)

	// The generated accounts, through ext_auth.
	push := u.creds(t, u.ns, examplePushSecret)
	newRef := u.image("app:after-user-config")
	pushed, err := u.crane.PushRandom(ctx, push, newRef)
	if err != nil {
		t.Fatalf("push with the push Secret under the user auth ConfigMap: %v", err)
	}
	if got, err := u.crane.Pull(ctx, pull, newRef); err != nil || got != pushed {
		t.Fatalf("pull with the pull Secret under the user auth ConfigMap: %q, %v; want %s", got, err, pushed)
	}
	if got, err := u.crane.Pull(ctx, pull, ref); err != nil || got != digest {
		t.Fatalf("pull of %s under the user auth ConfigMap: %q, %v; want %s", ref, got, err, digest)
	}
	if got, err := u.crane.Pull(ctx, pull, staticRef); err != nil || got != staticDigest {
		t.Fatalf("pull of the static user's %s with the pull Secret (its namespace): %q, %v; want %s", staticRef, got, err, staticDigest)
	}
	_, err = u.crane.PushRandom(ctx, pull, newRef)
	denied(t, "push with the pull Secret under the user auth ConfigMap", err)
}

// checkDockerAuthLogs checks that the log scan at the end of the test
// (userEnv.scanLogs) covers docker_auth's log, into which docker_auth also
// copies ext_auth's error output, and the init container's.
func checkDockerAuthLogs(t *testing.T, u *userEnv) {
	t.Helper()
	logs, _ := filepath.Glob(filepath.Join(u.dp.LogDir(), "*.log"))
	var auth, install bool
	for _, l := range logs {
		b, err := os.ReadFile(l)
		if err != nil {
			t.Fatal(err)
		}
		switch filepath.Base(l) {
		case exampleRegistry + "-0-auth.log":
			auth = strings.Contains(string(b), "docker_auth 1.13.0")
		case exampleRegistry + "-0-install-ext-auth.log":
			install = true
		}
	}
	if !auth || !install {
		t.Errorf("the data plane's logs %v lack docker_auth's (found: %t) or the init container's (found: %t)", logs, auth, install)
	}
}

// otherNamespaceName is the name otherNamespace gives the second namespace.
func (u *userEnv) otherNamespaceName() string { return u.ns + "-other" }
