//go:build e2e

package e2e

// The product end to end, as its users use it (issue 7): kubectl apply of
// artifacts/examples/, the real distribution registry and our token server
// run from the exact pod template, ConfigMaps and Secrets the operator
// generated (test/e2e/dataplane), and crane pushing and pulling with the
// generated Secrets over TLS verified with the operator's CA.
//
// The scenarios share the registry's fixed ports (5000, 5001) and an
// operator that watches all namespaces, so they must not run in parallel
// (none does). Each logs its duration ("scenario ... took") and ends with a
// scan of the operator's, token server's and registry's logs for every
// password the operator issued during it.
//
//	make build && go test -tags e2e -count=1 -v -run 'TestUser' ./test/e2e/

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/image-registry-operator/image-registry-operator/pkg/apis/registry/v1alpha1"
	"github.com/image-registry-operator/image-registry-operator/test/e2e/dataplane"
	"github.com/image-registry-operator/image-registry-operator/test/e2e/framework"
)

const (
	exampleRegistry   = "registry"
	examplePushSecret = "example-image-push-secret"
	examplePullSecret = "example-image-pull-secret"
	readyTimeout      = 3 * time.Minute
)

// TestUserPushPull: apply the examples, wait for Ready, push with the push
// Secret, pull with the pull Secret, compare digests; the pull credentials
// cannot push; a push secret of another namespace cannot push here.
func TestUserPushPull(t *testing.T) {
	u := newUserEnv(t)
	u.applyExamples(t)
	u.startDataPlane(t, exampleRegistry)
	u.waitReady(t, readyTimeout, "imageregistry/"+exampleRegistry, "imagepushsecret/example", "imagepullsecret/example")
	ctx := context.Background()

	push := u.creds(t, u.ns, examplePushSecret)
	pull := u.creds(t, u.ns, examplePullSecret)
	ref := u.image("app:v1")
	u.pushAndPull(t, push, pull, ref)

	_, err := u.crane.PushRandom(ctx, pull, u.image("app:by-pull-secret"))
	denied(t, "push with the pull Secret", err)

	// A push secret of another namespace, for this registry (registryRef
	// with a namespace): refused until the registry admits that namespace
	// (spec.access); then it may push to its own namespace's repositories,
	// not to this one's (default ACL).
	other := u.otherNamespace(t)
	u.kubectlNS(t, other, fmt.Sprintf(`apiVersion: registry.mgoltzsche.github.com/v1alpha1
kind: ImagePushSecret
metadata: {name: intruder, namespace: %s}
spec:
  registryRef: {name: %s, namespace: %s}
`, other, exampleRegistry, u.ns), "apply", "-f", "-")
	eventually(t, 2*time.Minute, "ImagePushSecret intruder to be Ready=False NamespaceNotAllowed", func(ctx context.Context) (bool, error) {
		s, err := u.registry.RegistryV1alpha1().ImagePushSecrets(other).Get(ctx, "intruder", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		c := meta.FindStatusCondition(s.Status.Conditions, "Ready")
		if c == nil {
			return false, fmt.Errorf("no Ready condition")
		}
		return c.Status == metav1.ConditionFalse && c.Reason == "NamespaceNotAllowed", fmt.Errorf("Ready=%s %s", c.Status, c.Reason)
	})
	if _, err := u.registry.RegistryV1alpha1().ImageRegistryAccounts(u.ns).Get(ctx, "push."+other+".intruder", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("account of a secret whose namespace the registry does not admit: %v", err)
	}
	u.kubectl(t, "patch", "imageregistry", exampleRegistry, "--type=merge", "-p", fmt.Sprintf(`{"spec":{"access":{"namespaces":[%q]}}}`, other))
	u.kubectlNS(t, other, "", "wait", "--for=condition=Ready", "--timeout=2m", "imagepushsecret/intruder")
	u.checkIntruder(t, other, ref)
	// Anonymous, with TLS still verified: no docker config, the CA only.
	anonymous := &dataplane.Credentials{DockerConfigDir: t.TempDir(), CAFile: pull.CAFile}
	_, err = u.crane.Pull(ctx, anonymous, ref)
	denied(t, "anonymous pull", err)
}

// pushAndPull pushes a random image to ref with crane and the push
// credentials, pulls it with the pull credentials, compares the digests and
// returns the digest.
func (u *userEnv) pushAndPull(t *testing.T, push, pull *dataplane.Credentials, ref string) string {
	t.Helper()
	ctx := context.Background()
	pushed, err := u.crane.PushRandom(ctx, push, ref)
	if err != nil {
		t.Fatalf("crane push with the push Secret: %v", err)
	}
	pulled, err := u.crane.Pull(ctx, pull, ref)
	if err != nil {
		t.Fatalf("crane pull with the pull Secret: %v", err)
	}
	if pulled != pushed {
		t.Fatalf("crane pulled digest %s, pushed %s", pulled, pushed)
	}
	t.Logf("crane: pushed and pulled %s@%s", ref, pushed)
	return pushed
}

// checkIntruder: the push secret "intruder" of namespace other, admitted
// to this registry, gets nothing of this namespace's repositories (the
// default ACL) and may push to its own namespace's.
func (u *userEnv) checkIntruder(t *testing.T, other, ref string) {
	t.Helper()
	ctx := context.Background()
	intruder := u.creds(t, other, "intruder-image-push-secret")
	_, err := u.crane.PushRandom(ctx, intruder, u.image("app:by-other-namespace"))
	denied(t, "push to "+u.ns+"/* with a push secret of "+other, err)
	_, err = u.crane.Pull(ctx, intruder, ref)
	denied(t, "pull of "+u.ns+"/* with a push secret of "+other, err)
	if _, err := u.crane.PushRandom(ctx, intruder, u.dp.Hostname()+"/"+other+"/app:v1"); err != nil {
		t.Fatalf("push to its own namespace with the push secret of %s: %v", other, err)
	}
}

// otherNamespace makes a second namespace, deleted at the test's end.
func (u *userEnv) otherNamespace(t *testing.T) string {
	t.Helper()
	name := u.ns + "-other"
	u.kubectlNS(t, "default", "", "create", "namespace", name)
	t.Cleanup(func() {
		_, _ = u.cp.Kubectl(context.Background(), "delete", "namespace", name, "--wait=false")
	})
	return name
}

// pullLoop pulls ref continuously, re-reading the pull Secret before each
// pull as a client that mounts it would, and counts failures.
type pullLoop struct {
	failures atomic.Int64
	pulls    atomic.Int64
	mu       sync.Mutex
	errs     []string
	stop     chan struct{}
	done     chan struct{}
}

func (u *userEnv) startPullLoop(t *testing.T, secret, ref, want string) *pullLoop {
	l := &pullLoop{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(l.done)
		for {
			select {
			case <-l.stop:
				return
			default:
			}
			s, err := u.cp.Client.CoreV1().Secrets(u.ns).Get(context.Background(), secret, metav1.GetOptions{})
			if err != nil {
				l.fail("read Secret: %v", err)
				continue
			}
			c, err := u.crane.SaveCredentials(s)
			if err != nil {
				l.fail("%v", err)
				continue
			}
			got, err := u.crane.Pull(context.Background(), c, ref)
			l.pulls.Add(1)
			if err != nil {
				l.fail("pull as %s: %v", c.Username, err)
			} else if got != want {
				l.fail("pull as %s: digest %s, want %s", c.Username, got, want)
			}
		}
	}()
	t.Cleanup(l.halt)
	return l
}

func (l *pullLoop) fail(format string, args ...any) {
	l.failures.Add(1)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.errs = append(l.errs, time.Now().Format("15:04:05.000 ")+fmt.Sprintf(format, args...))
}

func (l *pullLoop) halt() {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	<-l.done
}

// check stops the loop and fails the test on any failure.
func (l *pullLoop) check(t *testing.T) {
	t.Helper()
	l.halt()
	l.mu.Lock()
	defer l.mu.Unlock()
	if n := l.failures.Load(); n > 0 {
		t.Fatalf("%d of %d pulls failed with the Secret's current content:\n%s", n, l.pulls.Load(), strings.Join(l.errs, "\n"))
	}
	t.Logf("%d pulls, none failed", l.pulls.Load())
}

func (u *userEnv) pullSecretStatus(t *testing.T, name string) *v1alpha1.ImagePullSecret {
	t.Helper()
	s, err := u.registry.RegistryV1alpha1().ImagePullSecrets(u.ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// setupRotation applies the examples with a 15s rotation interval, starts
// the data plane, pushes an image and returns its reference and digest.
func (u *userEnv) setupRotation(t *testing.T) (ref, digest string) {
	t.Helper()
	u.applyExamples(t)
	for _, kind := range []string{"imagepushsecret", "imagepullsecret"} {
		u.kubectl(t, "patch", kind, "example", "--type=merge", "-p", `{"spec":{"rotationInterval":"15s"}}`)
	}
	u.startDataPlane(t, exampleRegistry)
	u.waitReady(t, readyTimeout, "imageregistry/"+exampleRegistry, "imagepushsecret/example", "imagepullsecret/example")
	ref = u.image("app:v1")
	digest, err := u.crane.PushRandom(context.Background(), u.creds(t, u.ns, examplePushSecret), ref)
	if err != nil {
		t.Fatalf("push: %v", err)
	}
	return ref, digest
}

const (
	rotationInterval = 15 * time.Second
	gracePeriod      = 5 * time.Second
)

// TestUserRotationUnderTraffic: a client pulls continuously through 4
// rotations of 15s, re-reading the Secret each time, with no failure; a
// replaced password stops working at most the grace period after it left
// the Secret (plus the operator's reaction and the watch latency).
func TestUserRotationUnderTraffic(t *testing.T) {
	u := newUserEnv(t, "--grace-period="+gracePeriod.String())
	ref, digest := u.setupRotation(t)

	u.rotateUnderTraffic(t, 4, rotationInterval, ref, digest)
}

// rotateUnderTraffic pulls ref continuously, re-reading the pull Secret
// each time, through the given number of rotations at interval, with no
// failed pull; then the last replaced password must stop working within
// the grace period after it left the Secret (plus the operator's reaction
// and the watch latency).
func (u *userEnv) rotateUnderTraffic(t *testing.T, rotations int, interval time.Duration, ref, digest string) {
	t.Helper()
	// Rotations are counted where clients see them: in the Secret. The
	// status' rotation number moves first (hashes are published before a
	// password reaches the Secret).
	loop := u.startPullLoop(t, examplePullSecret, ref, digest)
	var replaced *replacedPassword
	timeout := time.Duration(rotations)*interval + time.Minute
	deadline := time.Now().Add(timeout)
	cur := u.creds(t, u.ns, examplePullSecret)
	for seen := 0; seen < rotations; {
		if time.Now().After(deadline) {
			t.Fatalf("saw %d of %d rotations of the Secret within %s", seen, rotations, timeout)
		}
		s := u.secret(t, u.ns, examplePullSecret)
		if string(s.Data["password"]) != cur.Password {
			replaced = &replacedPassword{creds: cur, leftAt: time.Now()}
			cur = u.creds(t, u.ns, examplePullSecret)
			seen++
			t.Logf("rotation %d: %s replaced %s", seen, cur.Username, replaced.creds.Username)
		}
		time.Sleep(100 * time.Millisecond)
	}
	loop.check(t)
	// Checked at once, so that the time measured is the password's life.
	u.expectRevoked(t, replaced.creds, ref, replaced.leftAt, "it left the Secret", gracePeriod+10*time.Second, "replaced password")
}

type replacedPassword struct {
	creds  *dataplane.Credentials
	leftAt time.Time
}

// expectRevoked polls a pull with creds until the registry refuses it, and
// fails if that takes longer than bound after since (the moment event
// names).
func (u *userEnv) expectRevoked(t *testing.T, creds *dataplane.Credentials, ref string, since time.Time, event string, bound time.Duration, what string) {
	t.Helper()
	for {
		_, err := u.crane.Pull(context.Background(), creds, ref)
		if isDenied(err) {
			t.Logf("%s (%s) refused %s after %s (bound %s)", what, creds.Username, time.Since(since).Round(100*time.Millisecond), event, bound)
			return
		}
		if err != nil {
			t.Fatalf("%s: pull failed, but not as refused: %v", what, err)
		}
		if time.Since(since) > bound {
			t.Fatalf("%s (%s) still works %s after %s (bound %s)", what, creds.Username, time.Since(since).Round(100*time.Millisecond), event, bound)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// TestUserRevocation: deleting the ImagePushSecret revokes its password
// within revocationBound, and its account and Secret are removed.
//
// The bound: pkg/authn resolves the account from its informer cache before
// every login and keys its verified-password cache by the account's hash,
// so the cache (TTL 30s by default) never extends a credential's life;
// revocation waits only for the operator's finalizer to delete the
// ImageRegistryAccount and for the token server's watch to see it. We allow
// 10s for that on a loaded 2-core runner.
func TestUserRevocation(t *testing.T) {
	const revocationBound = 10 * time.Second
	u := newUserEnv(t)
	u.applyExamples(t)
	u.startDataPlane(t, exampleRegistry)
	u.waitReady(t, readyTimeout, "imageregistry/"+exampleRegistry, "imagepushsecret/example")
	ctx := context.Background()
	push := u.creds(t, u.ns, examplePushSecret)
	ref := u.image("app:v1")
	if _, err := u.crane.PushRandom(ctx, push, ref); err != nil {
		t.Fatalf("push: %v", err)
	}
	deleted := time.Now()
	u.kubectl(t, "delete", "imagepushsecret", "example", "--wait=false")
	u.expectRevoked(t, push, ref, deleted, "kubectl delete", revocationBound, "password of the deleted ImagePushSecret")
	eventually(t, time.Minute, "account and Secret of the deleted ImagePushSecret to go", func(ctx context.Context) (bool, error) {
		_, err := u.registry.RegistryV1alpha1().ImageRegistryAccounts(u.ns).Get(ctx, "push."+u.ns+".example", metav1.GetOptions{})
		if !apierrors.IsNotFound(err) {
			return false, fmt.Errorf("account: %v", err)
		}
		_, err = u.cp.Client.CoreV1().Secrets(u.ns).Get(ctx, examplePushSecret, metav1.GetOptions{})
		if !apierrors.IsNotFound(err) {
			return false, fmt.Errorf("secret: %v", err)
		}
		return true, nil
	})
	// The pull secret is untouched.
	if _, err := u.crane.Pull(ctx, u.creds(t, u.ns, examplePullSecret), ref); err != nil {
		t.Fatalf("pull with the pull Secret after revoking the push secret: %v", err)
	}
}

// TestUserOperatorRestart: the operator is killed (SIGKILL) between two
// rotations and at a random moment around one, and restarted; a client
// pulling all along with the Secret's current content never fails, and
// afterwards every account belongs to an existing secret and holds exactly
// its published hashes.
func TestUserOperatorRestart(t *testing.T) {
	u := newUserEnv(t, "--grace-period="+gracePeriod.String())
	ref, digest := u.setupRotation(t)
	start := u.pullSecretStatus(t, "example").Status.Rotation
	loop := u.startPullLoop(t, examplePullSecret, ref, digest)

	waitRotation := func(after int64) *v1alpha1.ImagePullSecret {
		t.Helper()
		var s *v1alpha1.ImagePullSecret
		eventually(t, 2*rotationInterval+30*time.Second, fmt.Sprintf("rotation %d", after+1), func(ctx context.Context) (bool, error) {
			s = u.pullSecretStatus(t, "example")
			return s.Status.Rotation > after, nil
		})
		return s
	}

	// Between rotations: a third of an interval after one.
	s := waitRotation(start)
	time.Sleep(rotationInterval / 3)
	if err := u.op.Kill(); err != nil {
		t.Fatal(err)
	}
	t.Logf("killed the operator between rotations (rotation %d)", s.Status.Rotation)
	time.Sleep(3 * time.Second)
	u.startOperator(t)

	// Around a rotation: a random moment from 1s before to 2s after it is due.
	s = waitRotation(s.Status.Rotation)
	due := s.Status.RotationDate.Add(rotationInterval)
	at := due.Add(time.Duration(rand.Int64N(int64(3*time.Second))) - time.Second)
	time.Sleep(time.Until(at))
	if err := u.op.Kill(); err != nil {
		t.Fatal(err)
	}
	t.Logf("killed the operator %s from when rotation %d was due", time.Since(due).Round(time.Millisecond), s.Status.Rotation+1)
	time.Sleep(time.Second)
	u.startOperator(t)

	waitRotation(s.Status.Rotation + 1)
	loop.check(t)

	// No orphan account, no stale hash.
	eventually(t, 30*time.Second, "accounts to match their secrets", func(ctx context.Context) (bool, error) {
		accs, err := u.registry.RegistryV1alpha1().ImageRegistryAccounts(u.ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		push, err := u.registry.RegistryV1alpha1().ImagePushSecrets(u.ns).Get(ctx, "example", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		pull, err := u.registry.RegistryV1alpha1().ImagePullSecrets(u.ns).Get(ctx, "example", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		want := map[string][]string{
			"push." + u.ns + ".example": push.Status.Passwords,
			"pull." + u.ns + ".example": pull.Status.Passwords,
			"ci-bot":                    nil, // the static example account
		}
		if len(accs.Items) != len(want) {
			var names []string
			for _, a := range accs.Items {
				names = append(names, a.Name)
			}
			return false, fmt.Errorf("accounts %v, want %d", names, len(want))
		}
		for _, a := range accs.Items {
			hashes, ok := want[a.Name]
			if !ok {
				return false, fmt.Errorf("orphan account %s", a.Name)
			}
			if hashes != nil && strings.Join(a.Spec.Passwords, ",") != strings.Join(hashes, ",") {
				return false, fmt.Errorf("account %s holds %d hashes that differ from its secret's status (%d)", a.Name, len(a.Spec.Passwords), len(hashes))
			}
		}
		return true, nil
	})
	if exited, err := u.op.Exited(); exited {
		t.Fatalf("operator: %v", err)
	}
}

// TestUserBadInput: an ImagePushSecret that names a missing registry is
// Ready=False RegistryNotFound; creating the registry later makes it Ready,
// and its Secret works, with no other action.
func TestUserBadInput(t *testing.T) {
	u := newUserEnv(t)
	u.kubectlNS(t, u.ns, `apiVersion: registry.mgoltzsche.github.com/v1alpha1
kind: ImagePushSecret
metadata: {name: early}
spec:
  registryRef: {name: late}
`, "apply", "-f", "-")
	eventually(t, time.Minute, "ImagePushSecret early to be Ready=False RegistryNotFound", func(ctx context.Context) (bool, error) {
		s, err := u.registry.RegistryV1alpha1().ImagePushSecrets(u.ns).Get(ctx, "early", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		c := meta.FindStatusCondition(s.Status.Conditions, "Ready")
		if c == nil {
			return false, fmt.Errorf("no Ready condition")
		}
		return c.Status == metav1.ConditionFalse && c.Reason == "RegistryNotFound", fmt.Errorf("Ready=%s %s", c.Status, c.Reason)
	})
	t.Log(strings.TrimSpace(u.kubectl(t, "get", "imagepushsecret", "early")))

	// The example registry, named as the secret expects.
	root, err := framework.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	example, err := os.ReadFile(filepath.Join(root, "artifacts", "examples", "registry.mgoltzsche.github.com_v1alpha1_imageregistry_cr.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	manifest := strings.Replace(string(example), "name: "+exampleRegistry, "name: late", 1)
	created := time.Now()
	u.kubectlNS(t, u.ns, manifest, "apply", "-f", "-")
	u.startDataPlane(t, "late")
	u.waitReady(t, readyTimeout, "imageregistry/late", "imagepushsecret/early")
	t.Logf("ImagePushSecret early Ready %s after its registry was created", time.Since(created).Round(100*time.Millisecond))
	if _, err := u.crane.PushRandom(context.Background(), u.creds(t, u.ns, "early-image-push-secret"), u.image("app:v1")); err != nil {
		t.Fatalf("push with the secret of the late registry: %v", err)
	}
}
