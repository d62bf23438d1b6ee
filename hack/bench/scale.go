package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/bcrypt"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"

	"github.com/image-registry-operator/image-registry-operator/pkg/apis/registry/v1alpha1"
	"github.com/image-registry-operator/image-registry-operator/pkg/generated/clientset/versioned"
	informers "github.com/image-registry-operator/image-registry-operator/pkg/generated/informers/externalversions"
	"github.com/image-registry-operator/image-registry-operator/test/e2e/framework"
)

// writesPerCR are the API writes the credentials protocol needs for a new
// push or pull object (rotation.go): finalizer, status with the hashes,
// account, Secret, status Ready. Events are not counted.
const writesPerCR = 5

// writesPerRotation: status with the new hash, account, Secret.
const writesPerRotation = 3

// hashesPerCR: a new object needs a current and a next password.
const hashesPerCR = 2

// bench holds what all runs share.
type bench struct {
	cfg        config
	cp         *framework.ControlPlane
	fast       *rest.Config // high QPS client for the bench's own load
	kube       kubernetes.Interface
	reg        versioned.Interface
	hashTime   time.Duration
	writeAmort time.Duration
	writeP50   time.Duration
	// crWrite and secretWrite are amortized creates at concurrency 32.
	crWrite, secretWrite time.Duration
	// crStatusWrite is an amortized status update of an ImagePushSecret at
	// concurrency 32: what three of the protocol's five writes are.
	crStatusWrite time.Duration
}

func run(ctx context.Context, cfg config, root string) (*results, error) {
	res := &results{started: time.Now(), loadStart: loadAvg(), cores: cores(), cost: cfg.bcryptCost, label: cfg.label, operatorArgs: cfg.operatorArgs, rotationInterval: cfg.rotationInterval}
	logf("starting the control plane from %s (load %s)", cfg.binDir, res.loadStart)
	startCtx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	cp, err := framework.Start(startCtx, framework.Options{BinDir: cfg.binDir})
	cancel()
	if err != nil {
		return nil, fmt.Errorf("control plane: %w", err)
	}
	cp.OperatorBinary = cfg.operatorBin
	defer func() {
		logf("stopping the control plane")
		_ = cp.Stop()
	}()
	if _, err := cp.Kubectl(ctx, "apply", "--server-side", "-f", filepath.Join(root, "artifacts", "crds")); err != nil {
		return nil, err
	}
	if _, err := cp.Kubectl(ctx, "wait", "--for=condition=Established", "--timeout=60s", "crd", "--all"); err != nil {
		return nil, err
	}
	b := &bench{cfg: cfg, cp: cp}
	b.fast = rest.CopyConfig(cp.RestConfig)
	b.fast.QPS, b.fast.Burst = 10000, 10000
	b.fast.UserAgent = "bench"
	if b.kube, err = kubernetes.NewForConfig(b.fast); err != nil {
		return nil, err
	}
	if b.reg, err = versioned.NewForConfig(b.fast); err != nil {
		return nil, err
	}

	if cfg.dockerAuthOnly {
		err := b.dockerAuthOnly(ctx, res)
		res.loadEnd = loadAvg()
		res.finished = time.Now()
		return res, err
	}
	if err := b.measureFloor(ctx, res); err != nil {
		return res, fmt.Errorf("floor: %w", err)
	}
	if cfg.unrelated > 0 {
		if err := b.unrelatedSecrets(ctx, res); err != nil {
			return res, fmt.Errorf("unrelated secrets: %w", err)
		}
	}
	for i, n := range cfg.ns {
		sr, err := b.scaleRun(ctx, n, i == 0 && !cfg.skipToken, res)
		if sr != nil {
			res.scale = append(res.scale, *sr)
		}
		if err != nil {
			return res, fmt.Errorf("N=%d: %w", n, err)
		}
	}
	// The replays come after every operator run, so that no operator run
	// shares etcd and the watch caches with the replays' objects (which
	// stay, finalizers and all, as the operator runs' objects do).
	if cfg.replay {
		for i := range res.scale {
			s := &res.scale[i]
			if err := b.replay(ctx, s.n, s.replayTmpl, s); err != nil {
				return res, fmt.Errorf("N=%d: ideal client replay: %w", s.n, err)
			}
		}
	}
	res.loadEnd = loadAvg()
	res.finished = time.Now()
	return res, nil
}

// measureFloor times one bcrypt hash at the operator's cost and API writes
// (ConfigMap creates) one at a time and at concurrency 32.
func (b *bench) measureFloor(ctx context.Context, res *results) error {
	// bcrypt: at least 5 hashes and 2 seconds, at most 200 hashes.
	var n int
	start := time.Now()
	for n < 200 && (n < 5 || time.Since(start) < 2*time.Second) {
		if _, err := bcrypt.GenerateFromPassword([]byte("0123456789012345678901234567890123456789abc"), b.cfg.bcryptCost); err != nil {
			return err
		}
		n++
	}
	b.hashTime = time.Since(start) / time.Duration(n)
	logf("bcrypt cost %d: %s per hash", b.cfg.bcryptCost, b.hashTime)

	ns := "bench-floor"
	if err := b.createNamespace(ctx, ns); err != nil {
		return err
	}
	cm := func(i int) *corev1.ConfigMap {
		return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("w-%d", i)}, Data: map[string]string{"k": "v"}}
	}
	var lat []time.Duration
	for i := 0; i < 100; i++ {
		t := time.Now()
		if _, err := b.kube.CoreV1().ConfigMaps(ns).Create(ctx, cm(i), metav1.CreateOptions{}); err != nil {
			return err
		}
		lat = append(lat, time.Since(t))
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.writeP50 = percentile(lat, 0.5)
	const m = 2000
	start = time.Now()
	if err := parallel(ctx, m, 32, func(i int) error {
		_, err := b.kube.CoreV1().ConfigMaps(ns).Create(ctx, cm(1000+i), metav1.CreateOptions{})
		return err
	}); err != nil {
		return err
	}
	b.writeAmort = time.Since(start) / m
	// Custom resources cost the API server more than ConfigMaps (JSON
	// decoding, schema pruning, CEL rules): time creates of the kinds the
	// protocol writes. ImageRegistryAccounts stand for the CR writes
	// (finalizer, two status updates, the account), Secrets for the Secret.
	const k = 1000
	start = time.Now()
	if err := parallel(ctx, k, 32, func(i int) error {
		a := &v1alpha1.ImageRegistryAccount{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("floor-%d", i)},
			Spec: v1alpha1.ImageRegistryAccountSpec{Username: fmt.Sprintf("floor/%d", i), Passwords: []string{"$2a$04$invalidinvalidinvalidinvalidinvalidinvalidinvalidinval"}}}
		_, err := b.reg.RegistryV1alpha1().ImageRegistryAccounts(ns).Create(ctx, a, metav1.CreateOptions{})
		return err
	}); err != nil {
		return err
	}
	b.crWrite = time.Since(start) / k
	start = time.Now()
	if err := parallel(ctx, k, 32, func(i int) error {
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("floor-%d", i)}, Data: map[string][]byte{"config.json": make([]byte, 2048)}}
		_, err := b.kube.CoreV1().Secrets(ns).Create(ctx, s, metav1.CreateOptions{})
		return err
	}); err != nil {
		return err
	}
	b.secretWrite = time.Since(start) / k
	// Three of the five writes of a new object update an existing custom
	// resource (finalizer, status twice), which costs the API server more
	// than a create: it decodes the stored object too, runs CEL transition
	// rules and merges managedFields. Time status updates of push objects
	// the size the operator writes; no operator runs yet.
	objs := make([]*v1alpha1.ImagePushSecret, k)
	if err := parallel(ctx, k, 32, func(i int) error {
		o, err := b.reg.RegistryV1alpha1().ImagePushSecrets(ns).Create(ctx,
			&v1alpha1.ImagePushSecret{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("floor-%d", i)}}, metav1.CreateOptions{})
		objs[i] = o
		return err
	}); err != nil {
		return err
	}
	hash := "$2a$04$invalidinvalidinvalidinvalidinvalidinvalidinvalidinval"
	start = time.Now()
	if err := parallel(ctx, k, 32, func(i int) error {
		o := objs[i]
		o.Status = v1alpha1.ImageSecretStatus{
			ObservedGeneration: o.Generation, Passwords: []string{hash, hash, hash}, Rotation: 1,
			RotationDate: &metav1.Time{Time: start}, Registry: "registry.bench-floor.svc.cluster.local",
			RegistryRef: &v1alpha1.RegistryRef{Namespace: ns, Name: "registry"}, SecretName: o.Name + "-image-push-secret",
			Conditions: []metav1.Condition{{Type: v1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: "Issued",
				Message: "Secret " + o.Name + "-image-push-secret holds valid credentials", LastTransitionTime: metav1.Time{Time: start}}},
		}
		_, err := b.reg.RegistryV1alpha1().ImagePushSecrets(ns).UpdateStatus(ctx, o, metav1.UpdateOptions{})
		return err
	}); err != nil {
		return err
	}
	b.crStatusWrite = time.Since(start) / k
	// The cluster-wide operator of the next phase must not find them.
	if err := b.reg.RegistryV1alpha1().ImagePushSecrets(ns).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{}); err != nil {
		return err
	}
	logf("API writes: p50 %s one at a time; amortized at concurrency 32: ConfigMap %s, custom resource %s, Secret %s, custom resource status update %s",
		b.writeP50, b.writeAmort, b.crWrite, b.secretWrite, b.crStatusWrite)
	res.hashTime, res.writeP50, res.writeAmort, res.crWrite, res.secretWrite, res.crStatusWrite = b.hashTime, b.writeP50, b.writeAmort, b.crWrite, b.secretWrite, b.crStatusWrite
	return nil
}

// floor is the bcrypt part and the API part for 2N new objects. The API
// part prices each write at the measured cost of its kind: three updates of
// the object (finalizer, two status writes), the account create, the Secret
// create. createsOnly prices all custom-resource writes as creates, the
// cheaper proxy earlier runs used.
func (b *bench) floor(n int) (bcryptFloor, apiFloor, createsOnly time.Duration) {
	crs := 2 * n
	bcryptFloor = time.Duration(float64(crs*hashesPerCR) * float64(b.hashTime) / float64(cores()))
	apiFloor = time.Duration(crs) * ((writesPerCR-2)*b.crStatusWrite + b.crWrite + b.secretWrite)
	createsOnly = time.Duration(crs) * ((writesPerCR-1)*b.crWrite + b.secretWrite)
	return
}

// rotationFloor: one hash, a status update, an account update (priced as a
// create) and a Secret write per object.
func (b *bench) rotationFloor(n int) time.Duration {
	crs := 2 * n
	return time.Duration(float64(crs)*float64(b.hashTime)/float64(cores())) + time.Duration(crs)*(b.crStatusWrite+b.crWrite+b.secretWrite)
}

func (b *bench) createNamespace(ctx context.Context, ns string) error {
	_, err := b.kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	return err
}

// parallel runs f(0..n-1) on workers goroutines and returns the first error.
func parallel(ctx context.Context, n, workers int, f func(i int) error) error {
	var next atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				if err := f(i); err != nil {
					once.Do(func() { firstErr = err })
					return
				}
			}
		}()
	}
	wg.Wait()
	if firstErr == nil {
		firstErr = ctx.Err()
	}
	return firstErr
}

// unrelatedSecrets runs a cluster-wide operator, creates many Secrets it did
// not make in another namespace, and measures what they cost it.
func (b *bench) unrelatedSecrets(ctx context.Context, res *results) error {
	port, err := framework.FreePort()
	if err != nil {
		return err
	}
	op, err := startOperator(ctx, b.cp, filepath.Join(b.cfg.outDir, "logs", "operator-unrelated.log"), port,
		append([]string{"--operator-namespace=bench-floor"}, b.cfg.operatorArgs...))
	if err != nil {
		return err
	}
	defer op.stop()
	time.Sleep(5 * time.Second)
	m0, err := scrape(ctx, op.metricsURL)
	if err != nil {
		return err
	}
	rss0, _ := memKiB(op.pid())
	ns := "bench-unrelated"
	if err := b.createNamespace(ctx, ns); err != nil {
		return err
	}
	n := b.cfg.unrelated
	logf("creating %d unrelated Secrets in %s", n, ns)
	payload := make([]byte, 1024)
	if err := parallel(ctx, n, 32, func(i int) error {
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("unrelated-%d", i)}, Data: map[string][]byte{"data": payload}}
		_, err := b.kube.CoreV1().Secrets(ns).Create(ctx, s, metav1.CreateOptions{})
		return err
	}); err != nil {
		return err
	}
	time.Sleep(10 * time.Second)
	m1, err := scrape(ctx, op.metricsURL)
	if err != nil {
		return err
	}
	rss1, _ := memKiB(op.pid())
	res.unrelated = unrelatedResult{
		n:         n,
		rssDelta:  rss1 - rss0,
		heapDelta: (m1["go_memstats_heap_inuse_bytes"] - m0["go_memstats_heap_inuse_bytes"]) / 1024,
	}
	res.unrelated.requests, _ = formatVerbs(requestsByVerb(m0, m1))
	logf("unrelated Secrets: RSS %+.0f KiB, heap in use %+.0f KiB, %0.f API requests", res.unrelated.rssDelta, res.unrelated.heapDelta, res.unrelated.requests)
	// They cost the control plane (etcd, watch caches) memory and CPU for the
	// rest of the run; remove them.
	_ = b.kube.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{})
	return nil
}

// watcher follows the bench's push and pull objects.
type watcher struct {
	mu        sync.Mutex
	ready     map[types.UID]bool
	readyN    atomic.Int64
	rotatedAt map[types.UID]time.Time // first time seen with rotateRequest == want
	want      string
	rotatedN  atomic.Int64
	// swept is the status the manual sweep's rotation wrote (first seen
	// with rotateRequest == want): its rotation number and rotationDate.
	swept map[types.UID]sweptStatus
	// last is the latest status.rotation seen per object, when it was first
	// seen, and the number of hashes then.
	last map[types.UID]lastStatus
	// The scheduled wave: per object the rotation the sweep left (nil until
	// the wave starts) and the first time a higher one was seen.
	waveBase map[types.UID]int64
	waveAt   map[types.UID]time.Time
	waveN    atomic.Int64
	stop     context.CancelFunc
}

type sweptStatus struct {
	rotation     int64
	rotationDate time.Time
	// due is the status' nextRotationDate: when the operator will rotate
	// the object again.
	due time.Time
}

type lastStatus struct {
	rotation int64
	seen     time.Time
	hashes   int
}

func (b *bench) watch(ctx context.Context, ns string) (*watcher, error) {
	w := &watcher{ready: map[types.UID]bool{}, rotatedAt: map[types.UID]time.Time{}, swept: map[types.UID]sweptStatus{},
		last: map[types.UID]lastStatus{}, waveAt: map[types.UID]time.Time{}}
	ctx, w.stop = context.WithCancel(ctx)
	client, err := versioned.NewForConfig(b.cp.RestConfig)
	if err != nil {
		return nil, err
	}
	f := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithNamespace(ns))
	handle := func(obj any) {
		var uid types.UID
		var st *v1alpha1.ImageSecretStatus
		switch o := obj.(type) {
		case *v1alpha1.ImagePushSecret:
			uid, st = o.UID, &o.Status
		case *v1alpha1.ImagePullSecret:
			uid, st = o.UID, &o.Status
		default:
			return
		}
		now := time.Now()
		ready := meta.IsStatusConditionTrue(st.Conditions, v1alpha1.ConditionReady)
		w.mu.Lock()
		defer w.mu.Unlock()
		if ready && !w.ready[uid] {
			w.ready[uid] = true
			w.readyN.Add(1)
		}
		if w.want != "" && st.RotateRequest == w.want {
			if _, seen := w.rotatedAt[uid]; !seen {
				w.rotatedAt[uid] = now
				w.rotatedN.Add(1)
				var date, due time.Time
				if st.RotationDate != nil {
					date = st.RotationDate.Time
				}
				if st.NextRotationDate != nil {
					due = st.NextRotationDate.Time
				}
				w.swept[uid] = sweptStatus{rotation: st.Rotation, rotationDate: date, due: due}
			}
		}
		l, seen := w.last[uid]
		if !seen || st.Rotation > l.rotation {
			l = lastStatus{rotation: st.Rotation, seen: now}
		}
		l.hashes = len(st.Passwords)
		w.last[uid] = l
		if base, ok := w.waveBase[uid]; ok && st.Rotation > base {
			if _, seen := w.waveAt[uid]; !seen {
				w.waveAt[uid] = now
				w.waveN.Add(1)
			}
		}
	}
	h := cache.ResourceEventHandlerFuncs{AddFunc: handle, UpdateFunc: func(_, o any) { handle(o) }}
	if _, err := f.Registry().V1alpha1().ImagePushSecrets().Informer().AddEventHandler(h); err != nil {
		return nil, err
	}
	if _, err := f.Registry().V1alpha1().ImagePullSecrets().Informer().AddEventHandler(h); err != nil {
		return nil, err
	}
	f.Start(ctx.Done())
	f.WaitForCacheSync(ctx.Done())
	return w, nil
}

func waitCount(ctx context.Context, c *atomic.Int64, want int64, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return wait.PollUntilContextCancel(ctx, 50*time.Millisecond, true, func(context.Context) (bool, error) {
		return c.Load() >= want, nil
	})
}

// scaleRun creates N push and N pull objects against one Ready registry
// with its own namespaced operator, then sweeps a rotation over all of them
// and follows the scheduled rotations that fall due one interval later.
// It keeps what the ideal-client replay needs (replay.go), which run starts
// once every N has been measured.
func (b *bench) scaleRun(ctx context.Context, n int, tokenBench bool, res *results) (*scaleResult, error) {
	ns := fmt.Sprintf("bench-%d", n)
	sr := &scaleResult{n: n, load: loadAvg()}
	logf("N=%d: namespace %s (load %s)", n, ns, sr.load)
	if err := b.createNamespace(ctx, ns); err != nil {
		return nil, err
	}
	port, err := framework.FreePort()
	if err != nil {
		return nil, err
	}
	op, err := startOperator(ctx, b.cp, filepath.Join(b.cfg.outDir, "logs", fmt.Sprintf("operator-%d.log", n)), port,
		append([]string{"--namespace=" + ns, "--operator-namespace=" + ns}, b.cfg.operatorArgs...))
	if err != nil {
		return nil, err
	}
	defer op.stop()

	// The registry, made Ready by a kubelet stand-in.
	reg := &v1alpha1.ImageRegistry{ObjectMeta: metav1.ObjectMeta{Name: "registry"}, Spec: v1alpha1.ImageRegistrySpec{TLS: &v1alpha1.TLSSpec{}}}
	if _, err := b.reg.RegistryV1alpha1().ImageRegistries(ns).Create(ctx, reg, metav1.CreateOptions{}); err != nil {
		return nil, err
	}
	kctx, stopKubelet := context.WithCancel(ctx)
	go func() {
		_ = wait.PollUntilContextCancel(kctx, 300*time.Millisecond, true, func(ctx context.Context) (bool, error) {
			_, _ = framework.MarkPodsReady(ctx, b.cp.Client, ns, labels.Everything())
			return false, nil
		})
	}()
	rctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	err = wait.PollUntilContextCancel(rctx, 300*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		r, err := b.reg.RegistryV1alpha1().ImageRegistries(ns).Get(ctx, "registry", metav1.GetOptions{})
		return err == nil && meta.IsStatusConditionTrue(r.Status.Conditions, v1alpha1.ConditionReady), nil
	})
	cancel()
	stopKubelet()
	if err != nil {
		return nil, errors.New("registry did not become Ready within 3m")
	}

	w, err := b.watch(ctx, ns)
	if err != nil {
		return nil, err
	}
	defer w.stop()
	time.Sleep(3 * time.Second) // let the registry's own writes settle
	m0, err := scrape(ctx, op.metricsURL)
	if err != nil {
		return nil, err
	}
	cpu0 := cpuSeconds(op.pid())
	cp0 := childrenCPU(op.pid())
	self0 := cpuSeconds(os.Getpid())
	rss0, _ := memKiB(op.pid())
	heap0 := m0["go_memstats_heap_inuse_bytes"]
	live0, err := op.liveHeap(ctx)
	if err != nil {
		return nil, err
	}

	// N push + N pull at once.
	sampler := sampleCPU(op.pid(), time.Second)
	start := time.Now()
	if err := parallel(ctx, 2*n, 32, func(i int) error {
		name := fmt.Sprintf("app-%d", i/2)
		spec := b.objectSpec()
		var err error
		if i%2 == 0 {
			_, err = b.reg.RegistryV1alpha1().ImagePushSecrets(ns).Create(ctx, &v1alpha1.ImagePushSecret{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: spec}, metav1.CreateOptions{})
		} else {
			_, err = b.reg.RegistryV1alpha1().ImagePullSecrets(ns).Create(ctx, &v1alpha1.ImagePullSecret{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: v1alpha1.ImagePullSecretSpec{ImageSecretSpec: spec}}, metav1.CreateOptions{})
		}
		return err
	}); err != nil {
		sampler.finish()
		return nil, fmt.Errorf("creating objects: %w", err)
	}
	sr.createTime = time.Since(start)
	logf("N=%d: created %d objects in %s", n, 2*n, sr.createTime.Round(time.Millisecond))
	if err := waitCount(ctx, &w.readyN, int64(2*n), b.cfg.readyTimeout); err != nil {
		sampler.finish()
		return sr, fmt.Errorf("only %d of %d Ready after %s", w.readyN.Load(), 2*n, b.cfg.readyTimeout)
	}
	sr.readyTime = time.Since(start)
	sr.peakCPU = sampler.finish()
	sr.cpu = cpuSeconds(op.pid()) - cpu0
	sr.cpCPU = childrenCPU(op.pid()) - cp0
	sr.benchCPU = cpuSeconds(os.Getpid()) - self0
	m1, err := scrape(ctx, op.metricsURL)
	if err != nil {
		return sr, err
	}
	sr.requests, sr.requestsByVerb = formatVerbs(requestsByVerb(m0, m1))
	sr.bcryptFloor, sr.apiFloor, sr.createsOnlyFloor = b.floor(n)
	logf("N=%d: all %d Ready after %s (floor %s), CPU %.1fs, %0.f requests (%s)", n, 2*n, sr.readyTime.Round(time.Millisecond),
		(sr.bcryptFloor + sr.apiFloor).Round(time.Millisecond), sr.cpu, sr.requests, sr.requestsByVerb)

	// Memory once the burst is over (requeue timers armed, caches full).
	time.Sleep(10 * time.Second)
	m2, err := scrape(ctx, op.metricsURL)
	if err != nil {
		return sr, err
	}
	var rss1 float64
	rss1, sr.hwm = memKiB(op.pid())
	sr.rssPerCR = (rss1 - rss0) / float64(2*n)
	sr.heapPerCR = (m2["go_memstats_heap_inuse_bytes"] - heap0) / 1024 / float64(2*n)
	sr.rss = rss1
	live1, err := op.liveHeap(ctx)
	if err != nil {
		return sr, err
	}
	sr.livePerCR = (live1 - live0) / 1024 / float64(2*n)
	logf("N=%d: RSS %.0f KiB (%+.2f KiB per CR), heap in use %+.2f KiB per CR, live heap %+.2f KiB per CR, peak RSS %.0f KiB", n, rss1, sr.rssPerCR, sr.heapPerCR, sr.livePerCR, sr.hwm)

	sr.objectBytes = b.objectSizes(ctx, ns)
	// What the operator wrote for app-0, before any rotation changes it.
	if b.cfg.replay {
		if sr.replayTmpl, err = b.replayTemplates(ctx, ns); err != nil {
			return sr, fmt.Errorf("replay templates: %w", err)
		}
	}

	if tokenBench {
		if err := b.tokenBench(ctx, ns, res); err != nil {
			return sr, fmt.Errorf("token bench: %w", err)
		}
	}
	if !b.cfg.skipSweep {
		if err := b.sweep(ctx, ns, n, op, w, sr); err != nil {
			return sr, fmt.Errorf("rotation sweep: %w", err)
		}
		if !b.cfg.skipWave {
			if err := b.wave(ctx, n, op, w, sr); err != nil {
				return sr, fmt.Errorf("scheduled rotation wave: %w", err)
			}
		}
	}
	return sr, nil
}

// objectSpec is the spec of every push and pull object the bench creates.
func (b *bench) objectSpec() v1alpha1.ImageSecretSpec {
	spec := v1alpha1.ImageSecretSpec{RegistryRef: &v1alpha1.RegistryRef{Name: "registry"}}
	if b.cfg.rotationInterval > 0 { // else the operator's --rotation-interval
		spec.RotationInterval = &metav1.Duration{Duration: b.cfg.rotationInterval}
	}
	return spec
}

// sweep asks every object for a rotation at once (the rotate annotation)
// and follows how the rotations spread in time.
func (b *bench) sweep(ctx context.Context, ns string, n int, op *operatorProc, w *watcher, sr *scaleResult) error {
	want := fmt.Sprintf("sweep-%d", time.Now().Unix())
	w.mu.Lock()
	w.want = want
	w.mu.Unlock()
	m0, err := scrape(ctx, op.metricsURL)
	if err != nil {
		return err
	}
	cpu0 := cpuSeconds(op.pid())
	sampler := sampleCPU(op.pid(), time.Second)
	patch := []byte(fmt.Sprintf(`{"metadata":{"annotations":{%q:%q}}}`, v1alpha1.AnnotationRotate, want))
	due := make([]time.Time, 2*n)
	uids := make([]types.UID, 2*n)
	start := time.Now()
	if err := parallel(ctx, 2*n, 32, func(i int) error {
		name := fmt.Sprintf("app-%d", i/2)
		due[i] = time.Now()
		var err error
		if i%2 == 0 {
			var o *v1alpha1.ImagePushSecret
			o, err = b.reg.RegistryV1alpha1().ImagePushSecrets(ns).Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{})
			if err == nil {
				uids[i] = o.UID
			}
		} else {
			var o *v1alpha1.ImagePullSecret
			o, err = b.reg.RegistryV1alpha1().ImagePullSecrets(ns).Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{})
			if err == nil {
				uids[i] = o.UID
			}
		}
		return err
	}); err != nil {
		sampler.finish()
		return err
	}
	patched := time.Since(start)
	if err := waitCount(ctx, &w.rotatedN, int64(2*n), b.cfg.readyTimeout); err != nil {
		sampler.finish()
		return fmt.Errorf("only %d of %d rotated after %s", w.rotatedN.Load(), 2*n, b.cfg.readyTimeout)
	}
	sr.sweepTime = time.Since(start)
	sr.sweepPeakCPU = sampler.finish()
	sr.sweepCPU = cpuSeconds(op.pid()) - cpu0
	m1, err := scrape(ctx, op.metricsURL)
	if err != nil {
		return err
	}
	w.mu.Lock()
	var lags []time.Duration
	var first time.Time
	for i, uid := range uids {
		t := w.rotatedAt[uid]
		if first.IsZero() || t.Before(first) {
			first = t
		}
		lags = append(lags, t.Sub(due[i]))
	}
	w.mu.Unlock()
	sort.Slice(lags, func(i, j int) bool { return lags[i] < lags[j] })
	sr.sweepLagP50, sr.sweepLagP99, sr.sweepLagMax = percentile(lags, 0.5), percentile(lags, 0.99), lags[len(lags)-1]
	sr.sweepSpread = sr.sweepTime - first.Sub(start)
	sr.sweepFloor = b.rotationFloor(n)
	sr.queueWaitBound, _ = maxQueueWait(m0, m1, "imagepushsecrets", "imagepullsecrets")
	sr.sweepRequests, _ = formatVerbs(requestsByVerb(m0, m1))
	logf("N=%d: rotation sweep: annotations in %s, all rotated after %s (floor %s), lag p50 %s p99 %s max %s, peak CPU %.2f cores, queue wait %s",
		n, patched.Round(time.Millisecond), sr.sweepTime.Round(time.Millisecond), sr.sweepFloor.Round(time.Millisecond),
		sr.sweepLagP50.Round(time.Millisecond), sr.sweepLagP99.Round(time.Millisecond), sr.sweepLagMax.Round(time.Millisecond), sr.sweepPeakCPU, queueBound(sr.queueWaitBound))
	return nil
}

// objectSizes is the JSON size of one push object, its Secret and its
// account without managedFields: what the operator's caches hold per object.
func (b *bench) objectSizes(ctx context.Context, ns string) string {
	size := func(o any) int {
		if m, ok := o.(metav1.Object); ok {
			m.SetManagedFields(nil)
		}
		j, _ := json.Marshal(o)
		return len(j)
	}
	var parts []string
	if o, err := b.reg.RegistryV1alpha1().ImagePushSecrets(ns).Get(ctx, "app-0", metav1.GetOptions{}); err == nil {
		parts = append(parts, fmt.Sprintf("object %d B", size(o)))
	}
	if o, err := b.kube.CoreV1().Secrets(ns).Get(ctx, "app-0-image-push-secret", metav1.GetOptions{}); err == nil {
		parts = append(parts, fmt.Sprintf("Secret %d B", size(o)))
	}
	if l, err := b.reg.RegistryV1alpha1().ImageRegistryAccounts(ns).List(ctx, metav1.ListOptions{Limit: 1}); err == nil && len(l.Items) > 0 {
		parts = append(parts, fmt.Sprintf("account %d B", size(&l.Items[0])))
	}
	return strings.Join(parts, ", ")
}
