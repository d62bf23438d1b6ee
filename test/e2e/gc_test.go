//go:build e2e

package e2e

// TestGC: garbage collection of a registry the operator runs, on the real
// distribution registry and its real `registry garbage-collect`, with the
// collector pod run by the data plane from what the operator created.
//
//	go test -tags e2e -run TestGC -v ./test/e2e/

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/image-registry-operator/image-registry-operator/pkg/apis/registry/v1alpha1"
	"github.com/image-registry-operator/image-registry-operator/test/e2e/dataplane"
	"github.com/image-registry-operator/image-registry-operator/test/e2e/framework"
)

// gcTimeout bounds each wait of the GC scenarios (a guard, not an assertion:
// a run takes seconds).
const gcTimeout = 3 * time.Minute

// layerOf writes a tar layer with one file of n random bytes.
func layerOf(t *testing.T, dir, name string, n int) string {
	t.Helper()
	content := make([]byte, n)
	_, _ = rand.Read(content)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(n), ModTime: time.Unix(0, 0)}); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write(content); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(dir, name+".tar")
	if err := os.WriteFile(f, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

// collectorGate holds the collector pod in the data plane until released,
// so that the test acts while the registry is read-only without racing the
// collection; fail makes the next pod fail instead of running.
type collectorGate struct {
	held    chan *corev1.Pod
	mu      sync.Mutex
	release chan struct{} // nil: pods run at once
	fail    atomic.Bool
}

func newCollectorGate() *collectorGate {
	return &collectorGate{held: make(chan *corev1.Pod, 1)}
}

// arm makes the next collector pod wait until the returned channel closes.
func (g *collectorGate) arm() chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.release = make(chan struct{})
	return g.release
}

func (g *collectorGate) before(ctx context.Context, pod *corev1.Pod) error {
	if g.fail.Load() {
		return errors.New("collector made to fail by the test")
	}
	g.mu.Lock()
	release := g.release
	g.mu.Unlock()
	if release == nil {
		return nil
	}
	select {
	case g.held <- pod:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-release:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// waitHeld waits for the collector pod to reach the gate.
func (g *collectorGate) waitHeld(t *testing.T) *corev1.Pod {
	t.Helper()
	select {
	case p := <-g.held:
		return p
	case <-time.After(gcTimeout):
		t.Fatalf("no collector pod reached the data plane within %s", gcTimeout)
		return nil
	}
}

func (u *userEnv) imageRegistry(t *testing.T, ctx context.Context) *v1alpha1.ImageRegistry {
	t.Helper()
	r, err := u.registry.RegistryV1alpha1().ImageRegistries(u.ns).Get(ctx, exampleRegistry, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// waitGCEnded waits until the run requested with value has ended and the
// registry is writable and Ready again, and returns that run.
func (u *userEnv) waitGCEnded(t *testing.T, value string) *v1alpha1.GarbageCollectionRun {
	t.Helper()
	var run *v1alpha1.GarbageCollectionRun
	eventually(t, gcTimeout, "the garbage collection to end and the registry to be writable", func(ctx context.Context) (bool, error) {
		r, err := u.registry.RegistryV1alpha1().ImageRegistries(u.ns).Get(ctx, exampleRegistry, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		gc := r.Status.GarbageCollection
		if gc == nil || gc.LastRequest != value || gc.Active != nil || gc.LastRun == nil || r.Status.ObservedGeneration != r.Generation {
			return false, fmt.Errorf("status.garbageCollection %+v", gc)
		}
		if !meta.IsStatusConditionFalse(r.Status.Conditions, v1alpha1.ConditionReadOnly) || !meta.IsStatusConditionTrue(r.Status.Conditions, v1alpha1.ConditionReady) {
			return false, fmt.Errorf("conditions %+v", r.Status.Conditions)
		}
		run = gc.LastRun
		return true, nil
	})
	return run
}

// requestGC asks for a run with the annotation, as a user would.
func (u *userEnv) requestGC(t *testing.T, value string) {
	t.Helper()
	u.kubectl(t, "annotate", "--overwrite", "imageregistry/"+exampleRegistry, v1alpha1.AnnotationGarbageCollect+"="+value)
}

// gcPullLoop pulls ref until stopped and counts the pulls that failed.
type gcPullLoop struct {
	stop           chan struct{}
	done           chan struct{}
	ok, failed     atomic.Int64
	mu             sync.Mutex
	firstFailure   string
	wrongDigest    atomic.Int64
	expectedDigest string
}

func (u *userEnv) startGCPullLoop(creds *dataplane.Credentials, ref, digest string) *gcPullLoop {
	l := &gcPullLoop{stop: make(chan struct{}), done: make(chan struct{}), expectedDigest: digest}
	go func() {
		defer close(l.done)
		for {
			select {
			case <-l.stop:
				return
			default:
			}
			got, err := u.crane.Pull(context.Background(), creds, ref)
			switch {
			case err != nil:
				l.failed.Add(1)
				l.mu.Lock()
				if l.firstFailure == "" {
					l.firstFailure = err.Error()
				}
				l.mu.Unlock()
			case got != l.expectedDigest:
				l.wrongDigest.Add(1)
			default:
				l.ok.Add(1)
			}
		}
	}()
	return l
}

func (l *gcPullLoop) end() {
	close(l.stop)
	<-l.done
}

// availabilityProbe asks the registry's Service for /v2/ every 50ms, as a
// client without retries would, and counts the answers that are not the
// registry's 401 challenge (connection refused or reset while a pod
// restarts).
type availabilityProbe struct {
	stop, done  chan struct{}
	ok, failed  atomic.Int64
	firstFailed atomic.Pointer[string]
}

func (u *userEnv) startAvailabilityProbe(t *testing.T, caFile string) *availabilityProbe {
	t.Helper()
	caPEM, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	addr := net.JoinHostPort(u.dp.Addr, "443")
	hc := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: pool, ServerName: u.dp.Hostname()},
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
	}}
	p := &availabilityProbe{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		for {
			select {
			case <-p.stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			resp, err := hc.Get("https://" + u.dp.Hostname() + "/v2/")
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusUnauthorized {
					p.ok.Add(1)
					continue
				}
				err = fmt.Errorf("status %d", resp.StatusCode)
			}
			p.failed.Add(1)
			msg := err.Error()
			p.firstFailed.CompareAndSwap(nil, &msg)
		}
	}()
	return p
}

func (p *availabilityProbe) end() string {
	close(p.stop)
	<-p.done
	first := ""
	if f := p.firstFailed.Load(); f != nil {
		first = *f
	}
	return fmt.Sprintf("%d answered, %d failed (first: %s)", p.ok.Load(), p.failed.Load(), first)
}

func TestGC(t *testing.T) {
	u := newUserEnv(t)
	u.applyExamples(t)
	gate := newCollectorGate()
	u.startDataPlaneWith(t, exampleRegistry, 0, func(o *dataplane.Options) { o.BeforeOneShot = gate.before })
	var last time.Time
	eventually(t, readyTimeout, "the registry to be Ready", func(ctx context.Context) (bool, error) {
		r, err := u.registry.RegistryV1alpha1().ImageRegistries(u.ns).Get(ctx, exampleRegistry, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		ok := meta.IsStatusConditionTrue(r.Status.Conditions, v1alpha1.ConditionReady)
		if !ok && time.Since(last) > 20*time.Second {
			last = time.Now()
			sts, err := u.cp.Client.AppsV1().StatefulSets(u.ns).Get(ctx, exampleRegistry, metav1.GetOptions{})
			t.Logf("registry not Ready yet: %+v; StatefulSet status %+v (%v)", r.Status.Conditions, sts.Status, err)
		}
		return ok, nil
	})
	u.waitReady(t, readyTimeout, "imageregistry/"+exampleRegistry, "imagepushsecret/example", "imagepullsecret/example")
	// A schedule far away: the run below is the annotation's.
	u.kubectl(t, "patch", "imageregistry/"+exampleRegistry, "--type=merge", "-p", `{"spec":{"garbageCollection":{"schedule":"0 3 1 1 *","timeout":"10m"}}}`)
	ctx := context.Background()
	push := u.creds(t, u.ns, examplePushSecret)
	pull := u.creds(t, u.ns, examplePullSecret)

	// a and b share a layer; c shares none. a is deleted by digest.
	dir := t.TempDir()
	shared := layerOf(t, dir, "shared", 256<<10)
	refs := map[string]string{"a": u.image("gc-a:v1"), "b": u.image("gc-b:v1"), "c": u.image("gc-c:v1")}
	layers := map[string][]string{
		"a": {shared, layerOf(t, dir, "only-a", 1<<20)},
		"b": {shared, layerOf(t, dir, "only-b", 64<<10)},
		"c": {layerOf(t, dir, "only-c", 64<<10)},
	}
	digests := map[string]string{}
	for _, name := range []string{"a", "b", "c"} {
		args := []string{"append", "-t", refs[name]}
		for _, l := range layers[name] {
			args = append(args, "-f", l)
		}
		if _, err := u.crane.Run(ctx, push, args...); err != nil {
			t.Fatalf("push %s: %v", name, err)
		}
		d, err := u.crane.Run(ctx, push, "digest", refs[name])
		if err != nil {
			t.Fatal(err)
		}
		digests[name] = d
	}
	aByDigest := strings.TrimSuffix(refs["a"], ":v1") + "@" + digests["a"]

	step(t, "a pull account may not delete", func(t *testing.T) {
		_, err := u.crane.Run(ctx, pull, "delete", aByDigest)
		denied(t, "delete with the pull Secret", err)
	})
	step(t, "the push account deletes a by digest", func(t *testing.T) {
		if _, err := u.crane.Run(ctx, push, "delete", aByDigest); err != nil {
			t.Fatalf("delete with the push Secret: %v", err)
		}
		if _, err := u.crane.Run(ctx, pull, "manifest", aByDigest); err == nil {
			t.Fatal("the deleted manifest is still served")
		}
	})

	var run *v1alpha1.GarbageCollectionRun
	step(t, "collect while pushes are refused", func(t *testing.T) {
		release := gate.arm()
		loop := u.startGCPullLoop(pull, refs["b"], digests["b"])
		probe := u.startAvailabilityProbe(t, pull.CAFile)
		u.requestGC(t, "run-1")
		pod := gate.waitHeld(t)
		t.Logf("collector pod %s on node %q, registry read-only", pod.Name, pod.Spec.NodeName)
		if pod.Spec.NodeName != framework.NodeName {
			t.Errorf("collector pod's node %q, want the registry pod's %q (ReadWriteOnce volume)", pod.Spec.NodeName, framework.NodeName)
		}
		r := u.imageRegistry(t, ctx)
		if !meta.IsStatusConditionTrue(r.Status.Conditions, v1alpha1.ConditionReadOnly) || r.Status.GarbageCollection.Active == nil {
			t.Errorf("while the collector runs: conditions %+v, status.garbageCollection %+v", r.Status.Conditions, r.Status.GarbageCollection)
		}
		// Pulls work, pushes get the registry's read-only answer (405).
		if got, err := u.crane.Pull(ctx, pull, refs["c"]); err != nil || got != digests["c"] {
			t.Errorf("pull while read-only: %s, %v", got, err)
		}
		_, err := u.crane.PushRandom(ctx, push, u.image("gc-d:v1"))
		if err == nil || !strings.Contains(err.Error(), "405") {
			t.Errorf("push while read-only: %v, want the registry's 405 Method Not Allowed", err)
		} else {
			t.Logf("push while read-only refused: %s", tail(err.Error(), 300))
		}
		if _, err := u.crane.Run(ctx, push, "delete", refs["c"]); err == nil || !strings.Contains(err.Error(), "405") {
			t.Errorf("delete while read-only: %v, want 405", err)
		}
		close(release)
		run = u.waitGCEnded(t, "run-1")
		loop.end()
		t.Logf("GET /v2/ every 50ms (no retries) from the request until writable again: %s", probe.end())
		t.Logf("pulls of b from the request until writable again: %d succeeded, %d failed (first: %s), %d with a wrong digest",
			loop.ok.Load(), loop.failed.Load(), loop.firstFailure, loop.wrongDigest.Load())
		if loop.wrongDigest.Load() > 0 {
			t.Errorf("%d pulls of b returned another digest", loop.wrongDigest.Load())
		}
	})
	step(t, "the run freed a's blobs and kept the rest", func(t *testing.T) {
		t.Logf("last run: result %s, %s, bytes freed %v, %s .. %s", run.Result, run.Message, ptrString(run.BytesFreed), run.StartTime, run.CompletionTime)
		if run.Result != v1alpha1.GarbageCollectionSucceeded || run.Trigger != "Request" {
			t.Fatalf("last run %+v", run)
		}
		if run.BytesFreed == nil || *run.BytesFreed < 1<<20 {
			t.Errorf("bytes freed %s, want at least a's own 1 MiB layer", ptrString(run.BytesFreed))
		}
		for _, name := range []string{"b", "c"} {
			got, err := u.crane.Pull(ctx, pull, refs[name])
			if err != nil || got != digests[name] {
				t.Errorf("pull %s after the collection: %s, %v; want %s", name, got, err, digests[name])
			}
			if _, err := u.crane.Run(ctx, pull, "validate", "--remote", refs[name]); err != nil {
				t.Errorf("validate %s: %v", name, err)
			}
		}
		if _, err := u.crane.Run(ctx, pull, "manifest", aByDigest); err == nil {
			t.Error("a is still served")
		}
	})
	step(t, "the refused push succeeds after the run", func(t *testing.T) {
		if _, err := u.crane.PushRandom(ctx, push, u.image("gc-d:v1")); err != nil {
			t.Fatalf("push after the collection: %v", err)
		}
	})
	step(t, "a failed run leaves the registry writable", func(t *testing.T) {
		gate.fail.Store(true)
		u.requestGC(t, "run-2")
		failed := u.waitGCEnded(t, "run-2")
		t.Logf("failed run: %s", failed.Message)
		if failed.Result != v1alpha1.GarbageCollectionFailed || !strings.Contains(failed.Message, "made to fail") {
			t.Fatalf("last run %+v", failed)
		}
		r := u.imageRegistry(t, ctx)
		if c := meta.FindStatusCondition(r.Status.Conditions, v1alpha1.ConditionGarbageCollected); c == nil || c.Status != metav1.ConditionFalse || c.Reason != "Failed" {
			t.Errorf("GarbageCollected condition %+v", c)
		}
		events, err := u.cp.Client.CoreV1().Events(u.ns).List(ctx, metav1.ListOptions{FieldSelector: "reason=GarbageCollectionFailed"})
		if err != nil || len(events.Items) == 0 {
			t.Errorf("no GarbageCollectionFailed event (%v)", err)
		}
		if _, err := u.crane.PushRandom(ctx, push, u.image("gc-e:v1")); err != nil {
			t.Fatalf("push after the failed run: %v", err)
		}
		pods, err := u.cp.Client.CoreV1().Pods(u.ns).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/component=garbage-collector"})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range pods.Items {
			if p.DeletionTimestamp == nil {
				t.Logf("collector pod %s still exists (phase %s); the operator deletes it once the status holds its result", p.Name, p.Status.Phase)
			}
		}
	})
	step(t, "an interrupted run leaves the registry writable", func(t *testing.T) {
		gate.fail.Store(false)
		defer close(gate.arm())
		u.requestGC(t, "run-3")
		pod := gate.waitHeld(t)
		// As a node drain or a user would: the collector pod goes mid-run.
		if err := u.cp.Client.CoreV1().Pods(u.ns).Delete(ctx, pod.Name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		interrupted := u.waitGCEnded(t, "run-3")
		t.Logf("interrupted run: %s", interrupted.Message)
		if interrupted.Result != v1alpha1.GarbageCollectionFailed || !strings.Contains(interrupted.Message, "disappeared") {
			t.Fatalf("last run %+v", interrupted)
		}
		if _, err := u.crane.PushRandom(ctx, push, u.image("gc-f:v1")); err != nil {
			t.Fatalf("push after the interrupted run: %v", err)
		}
		for _, name := range []string{"b", "c"} {
			if got, err := u.crane.Pull(ctx, pull, refs[name]); err != nil || got != digests[name] {
				t.Errorf("pull %s after the interrupted run: %s, %v", name, got, err)
			}
		}
	})
	step(t, "the API server refuses a bad timeout and upstream URL", func(t *testing.T) {
		for _, patch := range []string{
			`{"spec":{"garbageCollection":{"timeout":"30s"}}}`,
			`{"spec":{"proxy":{"remoteURL":"ftp://mirror.example.org"}}}`,
		} {
			out, err := u.cp.Kubectl(ctx, "-n", u.ns, "patch", "imageregistry/"+exampleRegistry, "--type=merge", "--dry-run=server", "-p", patch)
			if err == nil {
				t.Errorf("patch %s accepted: %s", patch, out)
			} else {
				t.Logf("patch %s refused: %s", patch, tail(strings.TrimSpace(err.Error()), 300))
			}
		}
	})
	if p := u.dp.Problems(); len(p) > 0 {
		t.Errorf("data plane problems: %v", p)
	}
}

func ptrString(p *int64) string {
	if p == nil {
		return "<unset>"
	}
	return fmt.Sprint(*p)
}
