//go:build e2e

package e2e

// Helpers of the user scenarios (user_test.go): an operator, the examples
// applied with kubectl, the data plane (test/e2e/dataplane) playing the
// kubelet and Service for the registry, crane as the client, and a
// collector of every password the operator hands out, whose logs are
// scanned for them when the test ends.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"

	v1alpha1 "github.com/image-registry-operator/image-registry-operator/pkg/apis/registry/v1alpha1"
	"github.com/image-registry-operator/image-registry-operator/test/e2e/dataplane"
	"github.com/image-registry-operator/image-registry-operator/test/e2e/framework"
)

// userEnv is one user scenario's world.
//
// The operator watches all namespaces (no --namespace), so that a secret in a
// second namespace can name this namespace's registry. That is safe only
// because no e2e test runs in parallel (none calls t.Parallel): the data plane
// listens on the registry's fixed ports 5000/5001 anyway, so two scenarios
// could not run at once.
type userEnv struct {
	*env
	opArgs   []string
	op       *framework.Operator
	opRuns   int
	logFiles []string
	dp       *dataplane.Runner
	crane    *dataplane.Client
	pw       *passwordCollector
	start    time.Time
	dir      string
}

func newUserEnv(t *testing.T, opArgs ...string) *userEnv {
	t.Helper()
	return newUserEnvOn(t, nil, opArgs...)
}

// newUserEnvOn is newUserEnv on cp; nil means the shared control plane.
func newUserEnvOn(t *testing.T, cp *framework.ControlPlane, opArgs ...string) *userEnv {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("the data plane needs root (mount namespaces)")
	}
	// The first TempDir registers the removal of all of them; it must run
	// after the log scan below, so it comes first.
	dir := t.TempDir()
	if cp == nil {
		cp = controlPlane(t)
	}
	u := &userEnv{env: newEnvOn(t, cp), start: time.Now(), dir: dir}
	u.opArgs = append([]string{"--operator-namespace=" + u.ns, "--bcrypt-cost=4", "--v=2"}, opArgs...)
	u.pw = collectPasswords(t, u)
	u.startOperator(t)
	t.Cleanup(func() {
		if t.Failed() {
			return
		}
		u.scanLogs(t)
		t.Logf("scenario %s took %s", t.Name(), time.Since(u.start).Round(time.Second))
	})
	return u
}

// startOperator starts (or restarts) the operator watching all namespaces.
func (u *userEnv) startOperator(t *testing.T) {
	t.Helper()
	u.opRuns++
	name := fmt.Sprintf("%s-operator-%d", u.ns, u.opRuns)
	op, err := u.cp.StartOperator(name, u.opArgs...)
	if err != nil {
		t.Fatal(err)
	}
	u.op = op
	u.logFiles = append(u.logFiles, op.LogFile)
	t.Cleanup(func() {
		_ = op.Stop()
		if t.Failed() {
			t.Logf("operator %s log tail:\n%s", name, op.Tail())
		}
	})
}

func (u *userEnv) kubectl(t *testing.T, args ...string) string {
	t.Helper()
	return u.kubectlNS(t, u.ns, "", args...)
}

// kubectlNS runs kubectl in namespace ns, with stdin unless it is empty.
func (u *userEnv) kubectlNS(t *testing.T, ns, stdin string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var in []byte
	if stdin != "" {
		in = []byte(stdin)
	}
	out, err := u.cp.KubectlWithInput(ctx, in, append([]string{"-n", ns}, args...)...)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// applyExamples is step 1 of the README: kubectl apply -f artifacts/examples/.
func (u *userEnv) applyExamples(t *testing.T) {
	t.Helper()
	root, err := framework.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	t.Log(strings.TrimSpace(u.kubectl(t, "apply", "-f", filepath.Join(root, "artifacts", "examples"))))
}

// applyExampleSecrets applies the example ImagePushSecret and
// ImagePullSecret (of registry "registry"), without the example registry.
func (u *userEnv) applyExampleSecrets(t *testing.T) {
	t.Helper()
	root, err := framework.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	for _, kind := range []string{"imagepushsecret", "imagepullsecret"} {
		u.kubectl(t, "apply", "-f", filepath.Join(root, "artifacts", "examples", "registry.mgoltzsche.github.com_v1alpha1_"+kind+"_cr.yaml"))
	}
}

// startDataPlane plays kubelet and Service for the registry and waits for
// it to serve.
func (u *userEnv) startDataPlane(t *testing.T, registry string) {
	t.Helper()
	u.startDataPlaneWith(t, registry, 0, nil)
}

// startDataPlaneWith is startDataPlane with options the test changes in
// mutate (may be nil); with replicas > 0 it waits for that many Ready pods.
func (u *userEnv) startDataPlaneWith(t *testing.T, registry string, replicas int, mutate func(*dataplane.Options)) {
	t.Helper()
	binDir, err := framework.DefaultBinDir()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dir, err := os.MkdirTemp(u.dir, "registry-"+registry+"-")
	if err != nil {
		t.Fatal(err)
	}
	opts := dataplane.Options{
		RestConfig: u.cp.RestConfig, Namespace: u.ns, Name: registry, BinDir: binDir,
		Dir: filepath.Join(dir, "dataplane"), Logf: t.Logf,
	}
	if mutate != nil {
		mutate(&opts)
	}
	dp, err := dataplane.Start(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	u.dp = dp
	t.Cleanup(func() {
		logs, _ := filepath.Glob(filepath.Join(dp.LogDir(), "*.log"))
		if t.Failed() {
			for _, l := range logs {
				b, _ := os.ReadFile(l)
				t.Logf("%s:\n%s", filepath.Base(l), tail(string(b), 3000))
			}
		}
		if err := dp.Stop(); err != nil {
			t.Errorf("stopping the data plane: %v", err)
		}
	})
	if replicas > 0 {
		err = dp.WaitReadyPods(ctx, replicas)
	} else {
		err = dp.WaitReady(ctx)
	}
	if err != nil {
		t.Fatal(err)
	}
	logs, _ := filepath.Glob(filepath.Join(dp.LogDir(), "*.log"))
	u.logFiles = append(u.logFiles, logs...)
	scratch := filepath.Join(dir, "client")
	if err := os.MkdirAll(scratch, 0o700); err != nil {
		t.Fatal(err)
	}
	u.crane = dp.Client(scratch)
	t.Logf("data plane of %s/%s ready: pods %v, Service %s -> %s", u.ns, registry, dp.Pods(), dp.Hostname(), dp.Addr)
}

// waitReady waits for the Ready condition of objects ("kind/name") with
// kubectl, as a user would.
func (u *userEnv) waitReady(t *testing.T, timeout time.Duration, objects ...string) {
	t.Helper()
	u.kubectl(t, append([]string{"wait", "--for=condition=Ready", fmt.Sprintf("--timeout=%s", timeout)}, objects...)...)
}

func (u *userEnv) secret(t *testing.T, ns, name string) *corev1.Secret {
	t.Helper()
	s, err := u.cp.Client.CoreV1().Secrets(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// creds saves the current content of a generated Secret for crane.
func (u *userEnv) creds(t *testing.T, ns, name string) *dataplane.Credentials {
	t.Helper()
	c, err := u.crane.SaveCredentials(u.secret(t, ns, name))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (u *userEnv) image(repo string) string {
	return u.dp.Hostname() + "/" + u.ns + "/" + repo
}

// denied fails the test unless err is crane being refused access.
func denied(t *testing.T, what string, err error) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s succeeded, want it refused", what)
	}
	var ce *dataplane.CraneError
	if !errors.As(err, &ce) || !ce.Denied() {
		t.Fatalf("%s failed, but not as refused access: %v", what, err)
	}
	t.Logf("%s refused as expected: %s", what, tail(ce.Stderr, 200))
}

func isDenied(err error) bool {
	var ce *dataplane.CraneError
	return errors.As(err, &ce) && ce.Denied()
}

// passwordCollector records every password and next password that appears
// in a generated Secret of the operator, from a watch, so that none is
// missed between two reads of a test.
type passwordCollector struct {
	mu        sync.Mutex
	passwords map[string]string // password -> where seen
}

func collectPasswords(t *testing.T, u *userEnv) *passwordCollector {
	pc := &passwordCollector{passwords: map[string]string{}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			w, err := u.cp.Client.CoreV1().Secrets("").Watch(ctx, metav1.ListOptions{LabelSelector: v1alpha1.LabelManagedBy + "=" + v1alpha1.ManagedByValue})
			if err != nil {
				time.Sleep(200 * time.Millisecond)
				continue
			}
			for ev := range w.ResultChan() {
				if ev.Type != watch.Added && ev.Type != watch.Modified {
					continue
				}
				if s, ok := ev.Object.(*corev1.Secret); ok {
					pc.add(s)
				}
			}
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return pc
}

func (pc *passwordCollector) add(s *corev1.Secret) {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	for _, k := range []string{"password", "nextpassword"} {
		if p := string(s.Data[k]); p != "" {
			if _, ok := pc.passwords[p]; !ok {
				pc.passwords[p] = fmt.Sprintf("%s/%s %s", s.Namespace, s.Name, k)
			}
		}
	}
}

func (pc *passwordCollector) count() int {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	return len(pc.passwords)
}

// scanLogs fails the test if any issued password appears in the operator's,
// the token server's or the registry's log.
func (u *userEnv) scanLogs(t *testing.T) {
	t.Helper()
	if u.dp != nil {
		logs, _ := filepath.Glob(filepath.Join(u.dp.LogDir(), "*.log"))
		u.logFiles = append(u.logFiles, logs...)
	}
	seen := map[string]bool{}
	u.pw.mu.Lock()
	defer u.pw.mu.Unlock()
	if len(u.pw.passwords) == 0 {
		t.Errorf("log scan: no password was collected; the collector is broken")
	}
	var bytesScanned int
	for _, f := range u.logFiles {
		if seen[f] {
			continue
		}
		seen[f] = true
		b, err := os.ReadFile(f)
		if err != nil {
			// A data-plane dir removed already is a bug of this helper.
			t.Errorf("log scan: %v", err)
			continue
		}
		bytesScanned += len(b)
		for p, where := range u.pw.passwords {
			if strings.Contains(string(b), p) {
				t.Errorf("log %s contains the password of %s", f, where)
			}
		}
	}
	t.Logf("log scan: %d passwords, %d logs (%d bytes): none found", len(u.pw.passwords), len(seen), bytesScanned)
}
