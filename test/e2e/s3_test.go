//go:build e2e

package e2e

// Registry replicas on real S3 storage (issue 18): SeaweedFS (`weed server
// -s3`, test/e2e/framework/s3.go) as the object store, an ImageRegistry with
// replicas: 2 and spec.storage.s3, both pods run by the data plane from the
// pod template, each in its own network namespace, and the Service's
// forwarder balancing over the Ready ones.
//
//	make build && hack/build-tools.sh weed && go test -tags e2e -count=1 -v -run 'TestS3Replicas' ./test/e2e/
//
// TestS3Throughput (not part of make test: IRO_S3_BENCH=1) prints the
// MB/s table of docs/performance.md.

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"maps"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	v1alpha1 "github.com/image-registry-operator/image-registry-operator/pkg/apis/registry/v1alpha1"
	"github.com/image-registry-operator/image-registry-operator/pkg/pki"
	"github.com/image-registry-operator/image-registry-operator/pkg/tokenkey"
	"github.com/image-registry-operator/image-registry-operator/test/e2e/dataplane"
	"github.com/image-registry-operator/image-registry-operator/test/e2e/framework"
)

const (
	s3Bucket      = "images"
	s3CredsSecret = "registry-s3"
)

// startS3 starts SeaweedFS for the test and creates the bucket.
func startS3(t *testing.T, dir string, tlsOpts ...*framework.S3TLS) *framework.S3Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	start := time.Now()
	opts := framework.S3Options{Dir: filepath.Join(dir, "s3")}
	if len(tlsOpts) > 0 {
		opts.TLS = tlsOpts[0]
	}
	s3, err := framework.StartS3(ctx, opts)
	if errors.Is(err, framework.ErrBinariesMissing) {
		t.Fatalf("%v: run hack/build-tools.sh weed (make tools)", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s3.CrashErr(); err != nil {
			t.Errorf("SeaweedFS: %v", err)
		}
		if t.Failed() {
			t.Logf("SeaweedFS log tail:\n%s", s3.Tail())
		}
		if err := s3.Stop(); err != nil {
			t.Errorf("stopping SeaweedFS: %v", err)
		}
	})
	if err := s3.CreateBucket(ctx, s3Bucket); err != nil {
		t.Fatal(err)
	}
	t.Logf("SeaweedFS S3 at %s ready in %s", s3.Endpoint, time.Since(start).Round(100*time.Millisecond))
	return s3
}

// s3CredentialsSecret is the credentials Secret of spec.storage.s3. It
// carries the labels that make the operator watch it (see
// v1alpha1.AnnotationS3CredentialsHash), so a change rolls the pods at
// once rather than at the next 5-minute re-read.
func s3CredentialsSecret(ns, registry string, keys framework.S3Keys) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: s3CredsSecret, Labels: map[string]string{
			v1alpha1.LabelManagedBy: v1alpha1.ManagedByValue,
			v1alpha1.LabelRegistry:  registry,
		}},
		Data: map[string][]byte{"accessKeyID": []byte(keys.AccessKey), "secretAccessKey": []byte(keys.SecretKey)},
	}
}

// s3Registry is the ImageRegistry of the scenarios: replicas on the S3
// server, TLS from the operator's CA, the builtin token server.
func s3Registry(name string, replicas int, s3 *framework.S3Server) string {
	return s3RegistryIn(name, replicas, s3, s3Bucket)
}

// s3RegistryIn is s3Registry with the bucket given.
func s3RegistryIn(name string, replicas int, s3 *framework.S3Server, bucket string) string {
	storage := ""
	if s3 != nil {
		storage = fmt.Sprintf(`
  storage:
    s3:
      endpoint: %s
      bucket: %s
      region: %s
      credentialsSecret: %s
      rootDirectory: /registries/%s`, s3.Endpoint, bucket, framework.S3Region, s3CredsSecret, name)
	} else {
		storage = `
  persistentVolumeClaim:
    accessModes: [ReadWriteOnce]
    resources:
      requests:
        storage: 2Gi`
	}
	return fmt.Sprintf(`apiVersion: registry.mgoltzsche.github.com/v1alpha1
kind: ImageRegistry
metadata:
  name: %s
spec:
  replicas: %d
  tls: {}%s
`, name, replicas, storage)
}

// startReplicas is startDataPlane for a registry with replicas pods that
// reach hostServices (the S3 server) from their network namespaces.
func (u *userEnv) startReplicas(t *testing.T, registry string, replicas int, hostServices ...string) {
	t.Helper()
	u.startDataPlaneWith(t, registry, replicas, func(o *dataplane.Options) { o.HostServices = hostServices })
}

// podClient is a crane client that reaches only pod.
func (u *userEnv) podClient(t *testing.T, pod string) *dataplane.Client {
	t.Helper()
	dir := filepath.Join(filepath.Dir(u.crane.Dir), "client-"+pod)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	c, err := u.dp.PodClient(pod, dir)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestS3Replicas runs the replica scenarios on one registry with two pods
// on SeaweedFS, in order:
//
//   - push through one pod, pull the same digest through the other, both
//     ways;
//   - push (10 MB images) and pull (a 50 MB image) under traffic through
//     the Service while one pod is killed (SIGKILL of all its processes)
//     and comes back: failed operations and broken connections
//     are counted and reported, split into those in flight at the kill and
//     those started after it (none allowed: the dead pod is out of the
//     Service at once); no pushed blob is lost;
//   - token key renewal under traffic, scheduled (a certificate due for
//     renewal) and forced (the token Secret deleted): the pods roll, the
//     new key signs, and no pull fails (tokenKeyRenewalReplicas);
//   - the S3 credentials Secret switched to another key pair: the pods
//     roll, pulls keep working, the new pods use the new key;
//   - no password in any log.
func TestS3Replicas(t *testing.T) {
	u := newUserEnv(t, "--grace-period="+gracePeriod.String())
	s3 := startS3(t, u.dir)
	ctx := context.Background()
	if _, err := u.cp.Client.CoreV1().Secrets(u.ns).Create(ctx, s3CredentialsSecret(u.ns, exampleRegistry, s3.Keys[0]), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	u.kubectlNS(t, u.ns, s3Registry(exampleRegistry, 2, s3), "apply", "-f", "-")
	u.applyExampleSecrets(t)
	u.startReplicas(t, exampleRegistry, 2, s3.Addr)
	u.waitReady(t, readyTimeout, "imageregistry/"+exampleRegistry, "imagepushsecret/example", "imagepullsecret/example")
	pod0, pod1 := exampleRegistry+"-0", exampleRegistry+"-1"

	var ref, digest string
	step(t, "push through one pod, pull through the other", func(t *testing.T) {
		ref, digest = u.pushPullAcross(t, pod0, pod1)
	})

	step(t, "the registry writes under its rootDirectory", func(t *testing.T) {
		all, err := s3.List(ctx, s3Bucket, "")
		if err != nil {
			t.Fatal(err)
		}
		// SeaweedFS keeps multipart uploads in the bucket's .uploads.
		root := slices.DeleteFunc(all, func(n string) bool { return n == ".uploads" })
		under, err := s3.List(ctx, s3Bucket, "registries/"+exampleRegistry+"/docker/registry/v2")
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(root, []string{"registries"}) || !slices.Contains(under, "blobs") || !slices.Contains(under, "repositories") {
			t.Fatalf("bucket %s holds %v at its root and %v under /registries/%s/docker/registry/v2; want only registries/, and blobs and repositories under it", s3Bucket, root, under, exampleRegistry)
		}
		t.Logf("bucket %s: %v at the root, %v under the registry's rootDirectory", s3Bucket, root, under)
	})

	step(t, "push and pull under traffic while a pod is killed", func(t *testing.T) {
		u.killUnderTraffic(t, pod1, ref, digest)
	})

	step(t, "scheduled token key renewal under traffic", func(t *testing.T) {
		u.tokenKeyRenewalReplicas(t, ref, digest, u.ageTokenCertificate)
	})

	step(t, "token Secret deleted under traffic", func(t *testing.T) {
		u.tokenKeyRenewalReplicas(t, ref, digest, u.deleteTokenSecret)
	})

	step(t, "S3 credentials change rolls the pods", func(t *testing.T) {
		u.s3CredentialsRoll(t, s3, ref, digest)
	})

	if p := u.dp.Problems(); len(p) > 0 {
		t.Logf("data plane problems (restarts of killed containers are expected):\n%s", strings.Join(p, "\n"))
	}
}

// pushPullAcross pushes an image through each pod and pulls it through
// the other; it returns the last image and its digest.
func (u *userEnv) pushPullAcross(t *testing.T, pod0, pod1 string) (ref, digest string) {
	ctx := context.Background()
	push := u.creds(t, u.ns, examplePushSecret)
	pull := u.creds(t, u.ns, examplePullSecret)
	c0, c1 := u.podClient(t, pod0), u.podClient(t, pod1)
	for _, dir := range []struct {
		from, to string
		push     *dataplane.Client
		pull     *dataplane.Client
	}{{pod0, pod1, c0, c1}, {pod1, pod0, c1, c0}} {
		ref = u.image("app:" + dir.from)
		pushed, err := dir.push.PushRandom(ctx, push, ref)
		if err != nil {
			t.Fatalf("push through %s: %v", dir.from, err)
		}
		pulled, err := dir.pull.Pull(ctx, pull, ref)
		if err != nil {
			t.Fatalf("pull through %s of what %s took: %v", dir.to, dir.from, err)
		}
		if pulled != pushed {
			t.Fatalf("pulled %s through %s, pushed %s through %s", pulled, dir.to, pushed, dir.from)
		}
		t.Logf("pushed %s@%s through %s, pulled it through %s", ref, pushed, dir.from, dir.to)
		digest = pushed
	}
	return ref, digest
}

// TestReadWriteManyReplicas: two replicas on a ReadWriteMany volume share
// one claim (data-<name>-0, made by the operator), not a claim each from a
// volumeClaimTemplate, so what one pod takes the other serves; and a drain
// evicts them one at a time.
func TestReadWriteManyReplicas(t *testing.T) {
	u := newUserEnv(t)
	ctx := context.Background()
	u.kubectlNS(t, u.ns, fmt.Sprintf(`apiVersion: registry.mgoltzsche.github.com/v1alpha1
kind: ImageRegistry
metadata:
  name: %s
spec:
  replicas: 2
  tls: {}
  persistentVolumeClaim:
    accessModes: [ReadWriteMany]
    resources:
      requests:
        storage: 2Gi
`, exampleRegistry), "apply", "-f", "-")
	u.applyExampleSecrets(t)
	u.startReplicas(t, exampleRegistry, 2)
	u.waitReady(t, readyTimeout, "imageregistry/"+exampleRegistry, "imagepushsecret/example", "imagepullsecret/example")

	sts, err := u.cp.Client.AppsV1().StatefulSets(u.ns).Get(ctx, exampleRegistry, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(sts.Spec.VolumeClaimTemplates) != 0 {
		t.Errorf("StatefulSet has volume claim templates %v", sts.Spec.VolumeClaimTemplates)
	}
	claim, err := u.cp.Client.CoreV1().PersistentVolumeClaims(u.ns).Get(ctx, "data-"+exampleRegistry+"-0", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(claim.Spec.AccessModes, corev1.ReadWriteMany) {
		t.Errorf("claim %s access modes %v", claim.Name, claim.Spec.AccessModes)
	}
	for _, p := range u.dp.Pods() {
		pod, err := u.cp.Client.CoreV1().Pods(u.ns).Get(ctx, p.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		i := slices.IndexFunc(pod.Spec.Volumes, func(v corev1.Volume) bool { return v.Name == "data" })
		if i < 0 {
			t.Errorf("pod %s has no data volume", p.Name)
		} else if v := pod.Spec.Volumes[i]; v.PersistentVolumeClaim == nil || v.PersistentVolumeClaim.ClaimName != claim.Name {
			t.Errorf("pod %s mounts %s as its data volume, want claim %s", p.Name, describeVolume(v), claim.Name)
		}
	}
	pod0, pod1 := exampleRegistry+"-0", exampleRegistry+"-1"
	step(t, "push through one pod, pull through the other", func(t *testing.T) {
		u.pushPullAcross(t, pod0, pod1)
	})
	step(t, "evictions take one pod at a time", func(t *testing.T) {
		u.evictOneAtATime(t, pod0, pod1)
	})
}

// evictOneAtATime evicts pod1 and at once pod0, as a node drain would: the
// registry's PodDisruptionBudget (maxUnavailable 1, status from the real
// disruption controller) lets the first go and refuses the second with 429
// until the first is back and Ready.
func (u *userEnv) evictOneAtATime(t *testing.T, pod0, pod1 string) {
	ctx := context.Background()
	allowsOne := func(what string) {
		eventually(t, 2*time.Minute, what, func(ctx context.Context) (bool, error) {
			b, err := u.cp.Client.PolicyV1().PodDisruptionBudgets(u.ns).Get(ctx, exampleRegistry, metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			s := b.Status
			return s.ObservedGeneration == b.Generation && s.DisruptionsAllowed == 1 && s.CurrentHealthy == 2,
				fmt.Errorf("budget status: %d of %d pods healthy, %d disruptions allowed", s.CurrentHealthy, s.ExpectedPods, s.DisruptionsAllowed)
		})
	}
	evict := func(pod string) error {
		return u.cp.Client.PolicyV1().Evictions(u.ns).Evict(ctx, &policyv1.Eviction{ObjectMeta: metav1.ObjectMeta{Namespace: u.ns, Name: pod}})
	}
	allowsOne("the PodDisruptionBudget to allow one disruption")
	var old types.UID
	for _, p := range u.dp.Pods() {
		if p.Name == pod1 {
			old = p.UID
		}
	}
	if err := evict(pod1); err != nil {
		t.Fatalf("evicting %s: %v", pod1, err)
	}
	if err := evict(pod0); !apierrors.IsTooManyRequests(err) {
		t.Fatalf("evicting %s right after %s: %v, want 429 Too Many Requests from the budget", pod0, pod1, err)
	}
	t.Logf("evicted %s; the eviction of %s was refused while %s is away", pod1, pod0, pod1)
	eventually(t, 2*time.Minute, pod1+" back and Ready", func(context.Context) (bool, error) {
		for _, p := range u.dp.Pods() {
			if p.Name == pod1 && p.UID != old && p.Ready {
				return true, nil
			}
		}
		return false, fmt.Errorf("pods %v", u.dp.Pods())
	})
	allowsOne("the PodDisruptionBudget to allow one disruption again")
	if err := evict(pod0); err != nil {
		t.Fatalf("evicting %s once %s is back: %v", pod0, pod1, err)
	}
	t.Logf("with %s back, %s could be evicted", pod1, pod0)
}

// TestS3PrivateCA: an S3 endpoint serving HTTPS with a certificate a
// private CA signed. The registry trusts that CA through
// spec.storage.s3.caBundle (a ConfigMap), beside the system roots: pushes
// and pulls work, and the blobs land in the bucket.
func TestS3PrivateCA(t *testing.T) {
	u := newUserEnv(t)
	ctx := context.Background()
	now := time.Now()
	ca, err := pki.NewCA(pki.CertOptions{CommonName: "storage team CA", Validity: 24 * time.Hour, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	serving, err := pki.NewServingCert(ca, pki.CertOptions{CommonName: "s3", IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, Validity: 24 * time.Hour, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(u.dir, "s3-tls")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	if err := os.WriteFile(certFile, serving.CertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, serving.KeyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	s3 := startS3(t, u.dir, &framework.S3TLS{CertFile: certFile, KeyFile: keyFile, CA: ca.CertPEM})
	if !strings.HasPrefix(s3.Endpoint, "https://") {
		t.Fatalf("S3 endpoint %s, want https", s3.Endpoint)
	}
	if _, err := u.cp.Client.CoreV1().Secrets(u.ns).Create(ctx, s3CredentialsSecret(u.ns, exampleRegistry, s3.Keys[0]), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	bundle := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "storage-ca"}, Data: map[string]string{"bundle.pem": string(ca.CertPEM)}}
	if _, err := u.cp.Client.CoreV1().ConfigMaps(u.ns).Create(ctx, bundle, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	u.kubectlNS(t, u.ns, fmt.Sprintf(`apiVersion: registry.mgoltzsche.github.com/v1alpha1
kind: ImageRegistry
metadata:
  name: %s
spec:
  tls: {}
  storage:
    s3:
      endpoint: %s
      bucket: %s
      region: %s
      credentialsSecret: %s
      rootDirectory: /registries/%s
      caBundle:
        name: storage-ca
        key: bundle.pem
`, exampleRegistry, s3.Endpoint, s3Bucket, framework.S3Region, s3CredsSecret, exampleRegistry), "apply", "-f", "-")
	u.applyExampleSecrets(t)
	u.startReplicas(t, exampleRegistry, 1, s3.Addr)
	u.waitReady(t, readyTimeout, "imageregistry/"+exampleRegistry, "imagepushsecret/example", "imagepullsecret/example")

	ref := u.image("app:v1")
	pushed, err := u.crane.PushRandom(ctx, u.creds(t, u.ns, examplePushSecret), ref)
	if err != nil {
		t.Fatalf("push to the registry on S3 with a private CA: %v", err)
	}
	pulled, err := u.crane.Pull(ctx, u.creds(t, u.ns, examplePullSecret), ref)
	if err != nil || pulled != pushed {
		t.Fatalf("pull: %s, %v; pushed %s", pulled, err, pushed)
	}
	under, err := s3.List(ctx, s3Bucket, "registries/"+exampleRegistry+"/docker/registry/v2")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(under, "blobs") {
		t.Fatalf("bucket %s holds %v under the registry's root, want blobs", s3Bucket, under)
	}
	t.Logf("pushed and pulled %s@%s over HTTPS to S3 (private CA); the bucket holds %v under the registry's root", ref, pushed, under)
}

// describeVolume names a pod volume's source briefly.
func describeVolume(v corev1.Volume) string {
	if v.PersistentVolumeClaim != nil {
		return "claim " + v.PersistentVolumeClaim.ClaimName
	}
	return fmt.Sprintf("a volume that is no claim (%s)", v.Name)
}

// opLog counts crane operations under traffic.
type opLog struct {
	mu sync.Mutex
	// by kind ("push", "pull") and phase ("before", "in flight", "after")
	ok, failed map[string]int
	errs       []string
	pushed     map[string]string // ref -> digest of every successful push
}

func (l *opLog) add(kind, phase string, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	key := kind + " " + phase
	if err == nil {
		l.ok[key]++
		return
	}
	l.failed[key]++
	l.errs = append(l.errs, fmt.Sprintf("%s %s (%s): %s", time.Now().Format("15:04:05.000"), kind, phase, tail(err.Error(), 400)))
}

func (l *opLog) table() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var keys []string
	for k := range l.ok {
		keys = append(keys, k)
	}
	for k := range l.failed {
		if _, ok := l.ok[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var sb strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&sb, "  %-22s ok %4d  failed %3d\n", k, l.ok[k], l.failed[k])
	}
	return sb.String()
}

// Sizes of the images under traffic: large enough that the kill finds
// transfers under way.
const (
	trafficPullBytes = 50_000_000
	trafficPushBytes = 10_000_000
)

// pushLayer pushes an image of one random layer of size bytes to ref and
// returns its digest.
func (u *userEnv) pushLayer(ctx context.Context, t *testing.T, c *dataplane.Client, creds *dataplane.Credentials, ref string, size int64) (string, error) {
	dir, err := os.MkdirTemp(c.Dir, "layer-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	layer, _ := writeRandomLayer(t, dir, "layer.tar.gz", size)
	if _, err := c.Run(ctx, creds, "append", "-f", layer, "-t", ref); err != nil {
		return "", err
	}
	return c.Run(ctx, creds, "digest", ref)
}

// killUnderTraffic runs three pullers (of a 50 MB image) and a pusher (of
// 10 MB images) through the Service, kills every process of victim, waits
// for it to come back and serve, and checks that no operation started
// after the kill failed and that every pushed image is complete through
// both pods.
func (u *userEnv) killUnderTraffic(t *testing.T, victim, _, _ string) {
	ctx := context.Background()
	ref := u.image("big:v1")
	digest, err := u.pushLayer(ctx, t, u.crane, u.creds(t, u.ns, examplePushSecret), ref, trafficPullBytes)
	if err != nil {
		t.Fatal(err)
	}
	log := &opLog{ok: map[string]int{}, failed: map[string]int{}, pushed: map[string]string{}}
	var (
		phaseMu sync.Mutex
		phase   = "before"
		killed  time.Time
	)
	// An operation belongs to the phase it started in, except that one
	// started before the kill and ended after it was in flight.
	begin := func() (string, time.Time) {
		phaseMu.Lock()
		defer phaseMu.Unlock()
		return phase, time.Now()
	}
	classify := func(started string, at time.Time) string {
		phaseMu.Lock()
		defer phaseMu.Unlock()
		if started == "before" && !killed.IsZero() {
			return "in flight"
		}
		return started
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				p, at := begin()
				c, err := u.crane.SaveCredentials(u.secret(t, u.ns, examplePullSecret))
				if err != nil {
					log.add("pull", p, err)
					continue
				}
				got, err := u.crane.Pull(ctx, c, ref)
				if err == nil && got != digest {
					err = fmt.Errorf("puller %d: digest %s, want %s", i, got, digest)
				}
				log.add("pull", classify(p, at), err)
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for n := 0; ; n++ {
			select {
			case <-stop:
				return
			default:
			}
			p, at := begin()
			c, err := u.crane.SaveCredentials(u.secret(t, u.ns, examplePushSecret))
			if err != nil {
				log.add("push", p, err)
				continue
			}
			r := u.image(fmt.Sprintf("traffic:%d", n))
			d, err := u.pushLayer(ctx, t, u.crane, c, r, trafficPushBytes)
			log.add("push", classify(p, at), err)
			if err == nil {
				log.mu.Lock()
				log.pushed[r] = d
				log.mu.Unlock()
			}
		}
	}()
	halted := false
	halt := func() {
		if !halted {
			halted = true
			close(stop)
			wg.Wait()
		}
	}
	defer halt()
	okCount := func() int {
		log.mu.Lock()
		defer log.mu.Unlock()
		n := 0
		for _, v := range log.ok {
			n += v
		}
		return n
	}
	eventually(t, 2*time.Minute, "traffic before the kill", func(context.Context) (bool, error) { return okCount() >= 6, nil })

	svc := u.dp.ServiceStats()
	brokenBefore, noEPBefore, dialBefore := svc.Broken.Load(), svc.NoEndpoint.Load(), svc.DialFailed.Load()
	phaseMu.Lock()
	if err := u.dp.KillPod(victim); err != nil {
		phaseMu.Unlock()
		t.Fatal(err)
	}
	killed = time.Now()
	phase = "after the kill"
	phaseMu.Unlock()
	t.Logf("killed every process of %s", victim)
	eventually(t, 2*time.Minute, victim+" to come back", func(context.Context) (bool, error) {
		for _, p := range u.dp.Pods() {
			if p.Name == victim && p.Ready {
				return true, nil
			}
		}
		return false, fmt.Errorf("pods %v", u.dp.Pods())
	})
	phaseMu.Lock()
	back := time.Since(killed)
	phase = "after it came back"
	phaseMu.Unlock()
	t.Logf("%s ready again %s after the kill", victim, back.Round(100*time.Millisecond))
	n := okCount()
	eventually(t, 2*time.Minute, "traffic after the pod came back", func(context.Context) (bool, error) { return okCount() >= n+6, nil })
	halt()

	t.Logf("operations through the Service (kill of %s at %s):\n%s", victim, killed.Format("15:04:05.000"), log.table())
	t.Logf("Service connections: %s; since the kill: %d broken off, %d reset for want of a Ready pod, %d not accepted",
		svc, svc.Broken.Load()-brokenBefore, svc.NoEndpoint.Load()-noEPBefore, svc.DialFailed.Load()-dialBefore)
	if len(log.errs) > 0 {
		t.Logf("failures:\n%s", strings.Join(log.errs, "\n"))
	}
	for _, p := range []string{"before", "after the kill", "after it came back"} {
		if n := log.failed["pull "+p] + log.failed["push "+p]; n > 0 {
			t.Errorf("%d operations started %s failed (none may: only operations in flight at the kill may fail)", n, p)
		}
	}

	// No blob lost: every image a push reported is complete through both pods.
	pull := u.creds(t, u.ns, examplePullSecret)
	refs := make([]string, 0, len(log.pushed))
	for r := range log.pushed {
		refs = append(refs, r)
	}
	sort.Strings(refs)
	for _, pod := range []string{exampleRegistry + "-0", exampleRegistry + "-1"} {
		c := u.podClient(t, pod)
		for _, r := range refs {
			got, err := c.Pull(ctx, pull, r)
			if err != nil {
				t.Errorf("pushed %s (%s) is not complete through %s: %v", r, log.pushed[r], pod, err)
				continue
			}
			if got != log.pushed[r] {
				t.Errorf("%s through %s: digest %s, pushed %s", r, pod, got, log.pushed[r])
			}
		}
	}
	t.Logf("all %d images pushed under traffic pull complete through both pods", len(refs))
}

// s3CredentialsRoll switches the credentials Secret to the S3 server's
// other key pair under a pull loop: the pod template's hash annotation
// changes, both pods are replaced, the new ones use the new access key, and
// no pull fails.
func (u *userEnv) s3CredentialsRoll(t *testing.T, s3 *framework.S3Server, ref, digest string) {
	ctx := context.Background()
	sts, err := u.cp.Client.AppsV1().StatefulSets(u.ns).Get(ctx, exampleRegistry, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	before := sts.Spec.Template.Annotations[v1alpha1.AnnotationS3CredentialsHash]
	if before == "" {
		t.Fatalf("pod template has no %s annotation", v1alpha1.AnnotationS3CredentialsHash)
	}
	oldPods := map[string]bool{}
	for _, p := range u.dp.Pods() {
		oldPods[string(p.UID)] = true
	}
	loop := u.startPullLoop(t, examplePullSecret, ref, digest)
	defer loop.halt()
	time.Sleep(2 * time.Second)

	changed := time.Now()
	sec := u.secret(t, u.ns, s3CredsSecret)
	sec.Data["accessKeyID"] = []byte(s3.Keys[1].AccessKey)
	sec.Data["secretAccessKey"] = []byte(s3.Keys[1].SecretKey)
	if _, err := u.cp.Client.CoreV1().Secrets(u.ns).Update(ctx, sec, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Log("switched the S3 credentials Secret to the other key pair")
	eventually(t, 3*time.Minute, "both pods replaced and ready", func(context.Context) (bool, error) {
		pods := u.dp.Pods()
		if len(pods) != 2 {
			return false, fmt.Errorf("pods %v", pods)
		}
		for _, p := range pods {
			if oldPods[string(p.UID)] || !p.Ready {
				return false, fmt.Errorf("pods %v", pods)
			}
		}
		return true, nil
	})
	t.Logf("both pods replaced and ready %s after the change", time.Since(changed).Round(100*time.Millisecond))
	sts, err = u.cp.Client.AppsV1().StatefulSets(u.ns).Get(ctx, exampleRegistry, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if after := sts.Spec.Template.Annotations[v1alpha1.AnnotationS3CredentialsHash]; after == before || after == "" {
		t.Errorf("annotation %s did not change", v1alpha1.AnnotationS3CredentialsHash)
	}
	for _, p := range u.dp.Pods() {
		env, err := u.dp.ContainerEnv(p.Name, "registry")
		if err != nil {
			t.Fatal(err)
		}
		// Access key ids are not secret; the secret keys are never logged.
		if got := env["REGISTRY_STORAGE_S3_ACCESSKEY"]; got != s3.Keys[1].AccessKey {
			t.Errorf("pod %s runs with access key id %q, want the new %q", p.Name, got, s3.Keys[1].AccessKey)
		}
	}
	// A push with the new key, pulled through both pods.
	pushed, err := u.crane.PushRandom(ctx, u.creds(t, u.ns, examplePushSecret), u.image("after-roll:v1"))
	if err != nil {
		t.Fatalf("push after the credentials change: %v", err)
	}
	for _, pod := range []string{exampleRegistry + "-0", exampleRegistry + "-1"} {
		if got, err := u.podClient(t, pod).Pull(ctx, u.creds(t, u.ns, examplePullSecret), u.image("after-roll:v1")); err != nil || got != pushed {
			t.Errorf("pull through %s after the credentials change: %s, %v", pod, got, err)
		}
	}
	loop.halt()
	loop.check(t)
}

// tokenKeyRenewalReplicas renews the token key under a pull loop through
// the Service, which balances over both pods: renew starts the renewal
// (a certificate due for renewal, or the token Secret deleted), and the
// loop runs until the token servers sign with a new key and the
// StatefulSet has rolled out. A token may be signed by one pod and shown
// to the other, so every pod must trust a key before any pod signs with
// it: no pull may fail, and the old key stays trusted.
func (u *userEnv) tokenKeyRenewalReplicas(t *testing.T, ref, digest string, renew func(*testing.T)) {
	ctx := context.Background()
	oldKID := u.tokenKeyID(t, u.creds(t, u.ns, examplePullSecret))
	oldPods := map[string]bool{}
	for _, p := range u.dp.Pods() {
		oldPods[string(p.UID)] = true
	}
	loop := u.startPullLoop(t, examplePullSecret, ref, digest)
	time.Sleep(2 * time.Second)
	before := loop.pulls.Load()
	started := time.Now()
	renew(t)
	var newKID string
	eventually(t, 3*time.Minute, "a new key signs and every pod runs the final template", func(ctx context.Context) (bool, error) {
		kid, err := u.tokenKeyIDErr(u.creds(t, u.ns, examplePullSecret))
		if err != nil {
			return false, err
		}
		if kid == oldKID {
			return false, fmt.Errorf("the token server still signs with %s", kid)
		}
		newKID = kid
		sts, err := u.cp.Client.AppsV1().StatefulSets(u.ns).Get(ctx, exampleRegistry, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		if s := sts.Status; s.ObservedGeneration < sts.Generation || s.UpdatedReplicas != 2 || s.CurrentRevision != s.UpdateRevision {
			return false, fmt.Errorf("StatefulSet rolling out: %+v", s)
		}
		pods := u.dp.Pods()
		if len(pods) != 2 {
			return false, fmt.Errorf("pods %v", pods)
		}
		for _, p := range pods {
			if oldPods[string(p.UID)] || !p.Ready {
				return false, fmt.Errorf("pods %v", pods)
			}
		}
		return true, nil
	})
	renewed := time.Since(started)
	during := loop.pulls.Load() - before
	time.Sleep(3 * time.Second)
	loop.check(t) // any failed pull fails the test

	kids, err := u.registryJWKSKeyIDs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("signing key %s replaced by %s; pods rolled and ready %s after the renewal began; %d pulls before, %d during; jwks.json %v",
		oldKID, newKID, renewed.Round(100*time.Millisecond), before, during, kids)
	if during == 0 {
		t.Error("no pull ran during the renewal: the loop tested nothing")
	}
	if !slices.Contains(kids, oldKID) {
		t.Errorf("the old key %s left jwks.json within its token lifetime: %v", oldKID, kids)
	}
	if !slices.Contains(kids, newKID) {
		t.Errorf("the token server signs with %s, which jwks.json %v does not list", newKID, kids)
	}
}

// ageTokenCertificate replaces the token Secret's certificate with one
// for the same key that is past two thirds of its life: the operator's
// scheduled renewal, which otherwise comes after eight months, is due.
func (u *userEnv) ageTokenCertificate(t *testing.T) {
	ctx := context.Background()
	s, err := u.cp.Client.CoreV1().Secrets(u.ns).Get(ctx, exampleRegistry+"-auth-token", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	kp, err := pki.ParseKeyPair(s.Data[corev1.TLSCertKey], s.Data[corev1.TLSPrivateKeyKey])
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(now.UnixNano()),
		Subject:               kp.Cert.Subject,
		NotBefore:             now.Add(-300 * 24 * time.Hour),
		NotAfter:              now.Add(65 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, kp.Key.Public(), kp.Key)
	if err != nil {
		t.Fatal(err)
	}
	s.Data[corev1.TLSCertKey] = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if _, err := u.cp.Client.CoreV1().Secrets(u.ns).Update(ctx, s, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Logf("token certificate aged: valid %s to %s, due for renewal", tmpl.NotBefore.Format(time.DateOnly), tmpl.NotAfter.Format(time.DateOnly))
}

// deleteTokenSecret deletes the token Secret, as an admin asking for a
// new key would, and checks that the operator writes it back with the
// deleted key as signing key and a new next key: the renewal that follows
// publishes the new key before anyone signs with it.
func (u *userEnv) deleteTokenSecret(t *testing.T) {
	ctx := context.Background()
	name := exampleRegistry + "-auth-token"
	old, err := u.cp.Client.CoreV1().Secrets(u.ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	oldKID := secretKeyID(t, old.Data[corev1.TLSCertKey], old.Data[corev1.TLSPrivateKeyKey])
	if err := u.cp.Client.CoreV1().Secrets(u.ns).Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	var back *corev1.Secret
	eventually(t, time.Minute, "the token Secret written back", func(ctx context.Context) (bool, error) {
		back, err = u.cp.Client.CoreV1().Secrets(u.ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return back.UID != old.UID, nil
	})
	if kid := secretKeyID(t, back.Data[corev1.TLSCertKey], back.Data[corev1.TLSPrivateKeyKey]); kid != oldKID {
		t.Fatalf("the token Secret came back signing with %s, not the deleted key %s: pods not yet restarted would refuse its tokens", kid, oldKID)
	}
	if len(back.Data["next.crt"]) == 0 || len(back.Data["next.key"]) == 0 {
		t.Fatalf("the token Secret came back without a next key (keys %v)", slices.Sorted(maps.Keys(back.Data)))
	}
	t.Logf("token Secret deleted and written back with the deleted key %s and a next key %s",
		oldKID, secretKeyID(t, back.Data["next.crt"], back.Data["next.key"]))
}

// secretKeyID is the key id (RFC 7638 thumbprint) of a PEM key pair.
func secretKeyID(t *testing.T, certPEM, keyPEM []byte) string {
	t.Helper()
	kp, err := pki.ParseKeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	kid, err := tokenkey.Thumbprint(kp.Key.Public())
	if err != nil {
		t.Fatal(err)
	}
	return kid
}
