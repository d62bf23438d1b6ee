package dataplane

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	"github.com/image-registry-operator/image-registry-operator/pkg/generated/clientset/versioned"
	"github.com/image-registry-operator/image-registry-operator/test/e2e/framework"
)

// execLookPath is a seam for tests.
var execLookPath = exec.LookPath

// podIP is the address the pod's processes are reached at, inside the
// pod's own network namespace (podNetwork).
const podIP = "127.0.0.1"

// ConfigHashAnnotation is the pod template annotation whose change makes
// the StatefulSet controller replace the pod (and the runner restart the
// processes from the replacement's spec).
const ConfigHashAnnotation = "registry.mgoltzsche.github.com/config-hash"

// Options configures a Runner.
type Options struct {
	// RestConfig is an admin client configuration of the control plane.
	RestConfig *rest.Config
	// Namespace and Name of the ImageRegistry.
	Namespace, Name string
	// BinDir holds registry, registry-auth, crane, ...
	BinDir string
	// Dir receives volumes and logs. Default: a temporary directory, removed
	// by Stop.
	Dir string
	// Logf reports what the runner does (pod started, restarted, ...).
	// Default: discard.
	Logf func(format string, args ...any)
	// MaxStopGrace caps the pod's terminationGracePeriodSeconds when
	// stopping processes. Default 10s.
	MaxStopGrace time.Duration
	// Entrypoints maps an image repository without tag or digest (e.g.
	// "cesanta/docker_auth") to the host binary that plays the image's
	// entrypoint, for containers that set no command. Nil means
	// DefaultEntrypoints (cesanta/docker_auth from $IRO_DOCKER_AUTH_BIN).
	Entrypoints map[string]string
	// InitBackoff is the first wait before a pod whose init container
	// failed is tried again; it doubles with every failure up to
	// MaxInitBackoff. Default 1s and 30s (the kubelet's are 10s and 5m).
	InitBackoff, MaxInitBackoff time.Duration
	// HostServices are host:port addresses on the host's loopback that the
	// pods' processes may reach at the same address (an S3 server, say);
	// the API server is always among them. Each pod has a network
	// namespace of its own (see podNetwork).
	HostServices []string
	// BeforeOneShot, if set, is called before a one-shot pod (see
	// oneshot.go) starts, and may block: a test holds the garbage
	// collector's pod there to act while the registry is read-only. An
	// error fails the pod without running it (exit code 1, the error as
	// termination message).
	BeforeOneShot func(ctx context.Context, pod *corev1.Pod) error
}

// Runner plays kubelet and Service for one ImageRegistry. See the package
// documentation.
type Runner struct {
	opts      Options
	kube      kubernetes.Interface
	registry  versioned.Interface
	apiHost   string
	apiPort   string
	removeDir bool
	// Addr is the loopback address the Service's ports listen on.
	Addr string

	cancel context.CancelFunc
	done   chan struct{}

	mu sync.Mutex
	// pods are the running pods by UID.
	pods       map[types.UID]*runningPod
	hostname   string
	hostsFile  string
	forwarders []*forwarder
	// podForwards are the per-pod addresses of PodClient, by pod name.
	podForwards map[string]*podForward
	restarts    int
	lastErr     error
	problems    []string
	stopped     bool
	// initFailed is the back-off of pods whose init containers failed.
	initFailed map[types.UID]*initBackoff

	// endpoints are the Ready pods, sorted by name: what the Service's
	// forwarders balance over. Published after every pass, and at once
	// when a pod stops, without r.mu, so that forwarding never waits for a
	// pass that stops a pod.
	endpoints atomic.Pointer[[]*runningPod]
	// byName are all running pods by name, for PodClient.
	byName atomic.Pointer[map[string]*runningPod]
	next   atomic.Uint64
	// serviceStats are the Service forwarders' counts.
	serviceStats ServiceStats

	// oneShots are the registry's run-to-completion pods (oneshot.go).
	oneShots oneShots
}

// initBackoff delays the next start of a pod whose init container failed.
type initBackoff struct {
	uid      types.UID
	failures int
	wait     time.Duration
	retryAt  time.Time
}

type runningPod struct {
	uid        types.UID
	name       string
	dir        string
	configHash string
	// net is the pod's network namespace; nil in unit tests, where the
	// processes share the host's network.
	net *podNetwork
	// initContainers run to completion, in order, before containers start
	// (see runInit); restartable ones (sidecars) are also in containers.
	initContainers []*container
	// initDone is closed when the init containers are through, with
	// initErr set; cancelInit interrupts them.
	initDone   chan struct{}
	initErr    error
	cancelInit context.CancelFunc
	containers []*container
	started    bool // the containers were started
	ready      bool
	reported   string // what the pod status last said (statusKey)
}

func newRunningPod(uid types.UID, name, dir, configHash string) *runningPod {
	return &runningPod{uid: uid, name: name, dir: dir, configHash: configHash, initDone: make(chan struct{})}
}

// dial connects to addr in the pod's network.
func (p *runningPod) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	if p.net == nil {
		return hostDial(ctx, network, addr)
	}
	return p.net.dial(ctx, network, addr)
}

// initialized tells whether the init containers are through.
func (p *runningPod) initialized() bool {
	select {
	case <-p.initDone:
		return true
	default:
		return false
	}
}

// Start begins playing kubelet for the registry's pod in the background.
// Call WaitReady to wait for it, and Stop to end it.
func Start(ctx context.Context, opts Options) (*Runner, error) {
	if opts.RestConfig == nil || opts.Namespace == "" || opts.Name == "" || opts.BinDir == "" {
		return nil, errors.New("dataplane: RestConfig, Namespace, Name and BinDir are required")
	}
	if opts.Logf == nil {
		opts.Logf = func(string, ...any) {}
	}
	if opts.MaxStopGrace == 0 {
		opts.MaxStopGrace = 10 * time.Second
	}
	if opts.Entrypoints == nil {
		opts.Entrypoints = DefaultEntrypoints()
	}
	if opts.InitBackoff == 0 {
		opts.InitBackoff = time.Second
	}
	if opts.MaxInitBackoff == 0 {
		opts.MaxInitBackoff = 30 * time.Second
	}
	for _, tool := range []string{"unshare", "nsenter", "mount", "setpriv"} {
		if _, err := execLookPath(tool); err != nil {
			return nil, fmt.Errorf("dataplane: %s (util-linux) is required: %w", tool, err)
		}
	}
	if os.Geteuid() != 0 {
		return nil, errors.New("dataplane: must run as root (mount namespaces and bind mounts)")
	}
	kube, err := kubernetes.NewForConfig(opts.RestConfig)
	if err != nil {
		return nil, err
	}
	reg, err := versioned.NewForConfig(opts.RestConfig)
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(opts.RestConfig.Host)
	if err != nil {
		return nil, fmt.Errorf("dataplane: API server URL %q: %w", opts.RestConfig.Host, err)
	}
	host, port, err := net.SplitHostPort(u.Host)
	if err != nil {
		return nil, fmt.Errorf("dataplane: API server URL %q: %w", opts.RestConfig.Host, err)
	}
	r := &Runner{opts: opts, kube: kube, registry: reg, apiHost: host, apiPort: port, Addr: randomLoopback()}
	r.opts.HostServices = append([]string{net.JoinHostPort(host, port)}, opts.HostServices...)
	if r.opts.Dir == "" {
		if r.opts.Dir, err = os.MkdirTemp("", "iro-dataplane-"); err != nil {
			return nil, err
		}
		r.removeDir = true
	}
	if r.opts.Dir, err = filepath.Abs(r.opts.Dir); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(r.LogDir(), 0o755); err != nil {
		return nil, err
	}
	if err := framework.EnsureNode(ctx, kube); err != nil {
		return nil, fmt.Errorf("dataplane: registering node: %w", err)
	}
	loopCtx, cancel := context.WithCancel(context.Background())
	r.cancel, r.done = cancel, make(chan struct{})
	go r.loop(loopCtx)
	r.startOneShots(loopCtx)
	return r, nil
}

// LogDir holds one log per container (<pod>-<container>.log, appended
// across restarts).
func (r *Runner) LogDir() string { return filepath.Join(r.opts.Dir, "logs") }

// Hostname is the registry's hostname (status.hostname), once known.
func (r *Runner) Hostname() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.hostname
}

// HostsFile is an /etc/hosts that maps the registry's hostname to Addr.
func (r *Runner) HostsFile() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.hostsFile
}

// Restarts counts container processes that exited on their own and were
// restarted.
func (r *Runner) Restarts() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.restarts
}

// Problems lists what went wrong in the background (crashes, failed
// starts), for a test to report or fail on.
func (r *Runner) Problems() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.problems...)
}

// PodUID is the UID of the first running pod by name (the only one of a
// registry with one replica), or "".
func (r *Runner) PodUID() types.UID {
	r.mu.Lock()
	defer r.mu.Unlock()
	if ps := r.sortedPodsLocked(); len(ps) > 0 {
		return ps[0].uid
	}
	return ""
}

// PodState is what the runner knows of one running pod.
type PodState struct {
	Name  string
	UID   types.UID
	Ready bool
}

// Pods lists the running pods by name.
func (r *Runner) Pods() []PodState {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []PodState
	for _, p := range r.sortedPodsLocked() {
		out = append(out, PodState{Name: p.name, UID: p.uid, Ready: p.ready})
	}
	return out
}

func (r *Runner) sortedPodsLocked() []*runningPod {
	ps := make([]*runningPod, 0, len(r.pods))
	for _, p := range r.pods {
		ps = append(ps, p)
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i].name < ps[j].name })
	return ps
}

// Ready tells whether at least one pod runs, every running pod passes its
// readiness probes, and the Service's hostname is known.
func (r *Runner) Ready() bool {
	return r.readyPods(1)
}

// readyPods tells whether at least n pods run, all of them ready, and the
// Service's hostname is known.
func (r *Runner) readyPods(n int) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.pods) < n || r.hostsFile == "" || r.forwarders == nil {
		return false
	}
	for _, p := range r.pods {
		if !p.ready {
			return false
		}
	}
	return true
}

// WaitReady waits until Ready, and reports the last problem on timeout.
func (r *Runner) WaitReady(ctx context.Context) error {
	return r.WaitReadyPods(ctx, 1)
}

// WaitReadyPods waits until at least n pods run and all are ready, and
// reports the last problem on timeout.
func (r *Runner) WaitReadyPods(ctx context.Context, n int) error {
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		if r.readyPods(n) {
			return nil
		}
		select {
		case <-ctx.Done():
			r.mu.Lock()
			defer r.mu.Unlock()
			return fmt.Errorf("dataplane: registry %s/%s not ready: %w (last problem: %v)", r.opts.Namespace, r.opts.Name, ctx.Err(), r.lastErr)
		case <-t.C:
		}
	}
}

// Stop stops the processes and forwarders and removes a temporary Dir. The
// pod object is left as it is: the control plane goes on without a kubelet.
func (r *Runner) Stop() error {
	r.mu.Lock()
	if r.stopped {
		r.mu.Unlock()
		return nil
	}
	r.stopped = true
	r.mu.Unlock()
	r.cancel()
	<-r.done
	r.waitOneShots()
	r.mu.Lock()
	defer r.mu.Unlock()
	var err error
	for _, p := range r.sortedPodsLocked() {
		err = errors.Join(err, r.stopPodLocked(p))
	}
	closeForwarders(r.forwarders)
	r.forwarders = nil
	for _, pf := range r.podForwards {
		closeForwarders(pf.forwarders)
	}
	r.podForwards = nil
	if r.removeDir {
		err = errors.Join(err, os.RemoveAll(r.opts.Dir))
	}
	return err
}

func (r *Runner) problem(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	r.problems = append(r.problems, time.Now().Format("15:04:05.000")+" "+msg)
	r.opts.Logf("dataplane: %s", msg)
}

func (r *Runner) loop(ctx context.Context) {
	defer close(r.done)
	var lastLogged string
	for {
		err := r.sync(ctx)
		r.mu.Lock()
		r.lastErr = err
		r.mu.Unlock()
		if err != nil && ctx.Err() == nil && err.Error() != lastLogged {
			r.opts.Logf("dataplane: %v", err)
			lastLogged = err.Error()
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// sync is one kubelet pass over every pod of the StatefulSet.
func (r *Runner) sync(ctx context.Context) error {
	if err := r.syncHostname(ctx); err != nil {
		return err
	}
	sts, err := r.kube.AppsV1().StatefulSets(r.opts.Namespace).Get(ctx, r.opts.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		r.mu.Lock()
		defer r.mu.Unlock()
		errs := []error{fmt.Errorf("StatefulSet %s/%s not found", r.opts.Namespace, r.opts.Name)}
		for _, p := range r.sortedPodsLocked() {
			errs = append(errs, r.stopPodLocked(p))
		}
		return errors.Join(errs...)
	}
	if err != nil {
		return err
	}
	sel, err := metav1.LabelSelectorAsSelector(sts.Spec.Selector)
	if err != nil {
		return err
	}
	pods, err := r.kube.CoreV1().Pods(r.opts.Namespace).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
	if err != nil {
		return err
	}
	sort.Slice(pods.Items, func(i, j int) bool { return pods.Items[i].Name < pods.Items[j].Name })

	var live []*corev1.Pod
	for i := range pods.Items {
		p := &pods.Items[i]
		if p.DeletionTimestamp != nil {
			if err := r.terminate(ctx, p); err != nil {
				return err
			}
			continue
		}
		if !metav1.IsControlledBy(p, sts) {
			continue
		}
		live = append(live, p)
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	defer r.publishEndpointsLocked()
	liveUIDs := map[types.UID]bool{}
	for _, p := range live {
		liveUIDs[p.UID] = true
	}
	for _, rp := range r.sortedPodsLocked() {
		if !liveUIDs[rp.uid] {
			r.opts.Logf("dataplane: pod %s (%s) is gone; stopping its processes", rp.name, rp.uid)
			if err := r.stopPodLocked(rp); err != nil {
				return err
			}
		}
	}
	if len(live) == 0 {
		return fmt.Errorf("no pod of StatefulSet %s/%s yet", r.opts.Namespace, r.opts.Name)
	}
	var errs []error
	for _, p := range live {
		// One pod's trouble does not hold up the others.
		errs = append(errs, r.syncPodLocked(ctx, sts, p))
	}
	if r.forwarders == nil {
		svc, err := r.kube.CoreV1().Services(r.opts.Namespace).Get(ctx, r.opts.Name, metav1.GetOptions{})
		if err != nil {
			return errors.Join(append(errs, fmt.Errorf("Service %s: %w", r.opts.Name, err))...)
		}
		fws, err := startServiceForwarders(r.Addr, svc, live[0], r.pickEndpoint, &r.serviceStats)
		if err != nil {
			return errors.Join(append(errs, err)...)
		}
		r.forwarders = fws
	}
	return errors.Join(errs...)
}

// syncPodLocked is one kubelet pass over one live pod: bind it, start it,
// check its containers and report its status.
func (r *Runner) syncPodLocked(ctx context.Context, sts *appsv1.StatefulSet, live *corev1.Pod) error {
	if want := sts.Spec.Template.Annotations[ConfigHashAnnotation]; want != live.Annotations[ConfigHashAnnotation] {
		// The StatefulSet controller will replace the pod; keep serving
		// the old one until it does, as a rolling update would.
		r.opts.Logf("dataplane: pod %s has config hash %.12s, the template %.12s: waiting for the StatefulSet controller to replace it", live.Name, live.Annotations[ConfigHashAnnotation], want)
	}
	if live.Spec.NodeName == "" {
		binding := &corev1.Binding{
			ObjectMeta: metav1.ObjectMeta{Name: live.Name, Namespace: live.Namespace, UID: live.UID},
			Target:     corev1.ObjectReference{Kind: "Node", Name: framework.NodeName},
		}
		if err := r.kube.CoreV1().Pods(live.Namespace).Bind(ctx, binding, metav1.CreateOptions{}); err != nil && !apierrors.IsConflict(err) {
			return fmt.Errorf("bind pod %s: %w", live.Name, err)
		}
	}
	rp := r.pods[live.UID]
	if rp == nil {
		if err := r.startPodLocked(ctx, live); err != nil {
			return err
		}
		rp = r.pods[live.UID]
	}
	r.checkContainersLocked(ctx, rp)
	return r.reportStatusLocked(ctx, rp, live)
}

// publishEndpointsLocked publishes the Ready pods for the Service.
func (r *Runner) publishEndpointsLocked() {
	var ready []*runningPod
	byName := map[string]*runningPod{}
	for _, p := range r.sortedPodsLocked() {
		byName[p.name] = p
		if p.ready {
			ready = append(ready, p)
		}
	}
	r.endpoints.Store(&ready)
	r.byName.Store(&byName)
}

// pickEndpoint is the Service's choice of a Ready pod for a new
// connection: round robin, as kube-proxy's IPVS mode does (its iptables
// mode picks at random). Nil when no pod is ready.
func (r *Runner) pickEndpoint() *runningPod {
	eps := r.endpoints.Load()
	if eps == nil || len(*eps) == 0 {
		return nil
	}
	return (*eps)[r.next.Add(1)%uint64(len(*eps))]
}

func (r *Runner) syncHostname(ctx context.Context) error {
	r.mu.Lock()
	known := r.hostname != ""
	r.mu.Unlock()
	if known {
		return nil
	}
	reg, err := r.registry.RegistryV1alpha1().ImageRegistries(r.opts.Namespace).Get(ctx, r.opts.Name, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("ImageRegistry %s/%s: %w", r.opts.Namespace, r.opts.Name, err)
	}
	host := reg.Status.Hostname
	if host == "" {
		return fmt.Errorf("ImageRegistry %s/%s has no status.hostname yet", r.opts.Namespace, r.opts.Name)
	}
	base, err := os.ReadFile("/etc/hosts")
	if err != nil {
		return err
	}
	hosts := filepath.Join(r.opts.Dir, "hosts")
	content := strings.TrimRight(string(base), "\n") + "\n" + r.Addr + " " + host + "\n"
	if err := os.WriteFile(hosts, []byte(content), 0o644); err != nil {
		return err
	}
	r.mu.Lock()
	r.hostname, r.hostsFile = host, hosts
	r.mu.Unlock()
	return nil
}

// terminate does the kubelet's part of a pod deletion: stop its processes,
// then remove the object (grace period 0, as the kubelet confirms).
func (r *Runner) terminate(ctx context.Context, p *corev1.Pod) error {
	r.mu.Lock()
	if rp := r.pods[p.UID]; rp != nil {
		r.opts.Logf("dataplane: pod %s is being deleted; stopping its processes", p.Name)
		if err := r.stopPodLocked(rp); err != nil {
			r.publishEndpointsLocked()
			r.mu.Unlock()
			return err
		}
		r.publishEndpointsLocked()
	}
	r.mu.Unlock()
	err := r.kube.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{
		GracePeriodSeconds: ptr.To[int64](0),
		Preconditions:      &metav1.Preconditions{UID: &p.UID},
	})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return fmt.Errorf("delete pod %s: %w", p.Name, err)
	}
	return nil
}

// startPodLocked materializes the pod's volumes and starts its init
// containers in the background (runInit); checkContainersLocked starts the
// containers once they are through. A pod whose init containers failed is
// started again only after its back-off.
func (r *Runner) startPodLocked(ctx context.Context, pod *corev1.Pod) error {
	if b := r.initFailed[pod.UID]; b != nil && time.Now().Before(b.retryAt) {
		return fmt.Errorf("pod %s: init containers failed %d times; next attempt after a back-off of %s", pod.Name, b.failures, b.wait)
	}
	podDir := filepath.Join(r.opts.Dir, "pods", string(pod.UID))
	volumes, err := r.materializeVolumes(ctx, pod, podDir, filepath.Join(r.opts.Dir, "pvc"))
	if err != nil {
		return err
	}
	rp := newRunningPod(pod.UID, pod.Name, podDir, pod.Annotations[ConfigHashAnnotation])
	if rp.net, err = newPodNetwork(r.opts.HostServices); err != nil {
		_ = os.RemoveAll(podDir)
		return fmt.Errorf("pod %s: %w", pod.Name, err)
	}
	fail := func(err error) error {
		rp.net.close()
		_ = os.RemoveAll(podDir)
		return err
	}
	var sidecars []*container
	for i := range pod.Spec.InitContainers {
		c, err := r.newContainer(ctx, pod, rp, &pod.Spec.InitContainers[i], volumes)
		if err != nil {
			return fail(err)
		}
		if c.sidecar {
			sidecars = append(sidecars, c)
		}
		rp.initContainers = append(rp.initContainers, c)
	}
	rp.containers = sidecars
	for i := range pod.Spec.Containers {
		c, err := r.newContainer(ctx, pod, rp, &pod.Spec.Containers[i], volumes)
		if err != nil {
			return fail(err)
		}
		rp.containers = append(rp.containers, c)
	}
	r.launchLocked(rp)
	return nil
}

// launchLocked adds rp to the running pods and starts its init containers
// in the background.
func (r *Runner) launchLocked(rp *runningPod) {
	initCtx, cancel := context.WithCancel(context.Background())
	rp.cancelInit = cancel
	if r.pods == nil {
		r.pods = map[types.UID]*runningPod{}
	}
	r.pods[rp.uid] = rp
	if len(rp.initContainers) == 0 {
		close(rp.initDone)
		return
	}
	r.opts.Logf("dataplane: pod %s (%s): running %d init container(s)", rp.name, rp.uid, len(rp.initContainers))
	go func() {
		defer close(rp.initDone)
		rp.initErr = runInit(initCtx, rp.initContainers, r.opts.MaxStopGrace)
	}()
}

// newContainer prepares one (init) container of pod: its command line,
// run in the pod's network namespace, and environment.
func (r *Runner) newContainer(ctx context.Context, pod *corev1.Pod, rp *runningPod, c *corev1.Container, volumes map[string]string) (*container, error) {
	argv, err := buildArgv(r.opts.BinDir, r.opts.Dir, r.opts.Entrypoints, pod, c, volumes)
	if err != nil {
		return nil, err
	}
	if rp.net != nil {
		argv = append([]string{"nsenter", "--net=" + rp.net.path, "--"}, argv...)
	}
	env, err := r.resolveEnv(ctx, pod, c)
	if err != nil {
		return nil, err
	}
	// What the kubelet adds, with the Service address of the API
	// server replaced by where it listens here.
	base := []string{
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"HOSTNAME=" + pod.Name,
		"HOME=/",
		"KUBERNETES_SERVICE_HOST=" + r.apiHost,
		"KUBERNETES_SERVICE_PORT=" + r.apiPort,
		"KUBERNETES_SERVICE_PORT_HTTPS=" + r.apiPort,
	}
	base = append(base, imageEnv[c.Name]...)
	return &container{
		name: c.Name, spec: *c.DeepCopy(), argv: argv, env: append(base, env...), dial: rp.dial,
		logPath: filepath.Join(r.LogDir(), pod.Name+"-"+c.Name+".log"),
		sidecar: c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways,
	}, nil
}

// checkInitLocked acts on the end of the pod's init containers: it starts
// the containers when they succeeded, and stops the pod and sets its
// back-off when one failed. It tells whether the containers run.
func (r *Runner) checkInitLocked(rp *runningPod) bool {
	if !rp.initialized() {
		return false
	}
	if rp.started {
		return true
	}
	if rp.initErr == nil {
		delete(r.initFailed, rp.uid)
		rp.started = true
		for _, c := range rp.containers {
			if c.sidecar {
				continue // started by runInit
			}
			if err := c.start(); err != nil {
				r.problem("pod %s: %v", rp.name, err)
				_ = r.stopPodLocked(rp)
				return false
			}
		}
		r.opts.Logf("dataplane: started pod %s (%s), config hash %.12s", rp.name, rp.uid, rp.configHash)
		return true
	}
	b := r.initFailed[rp.uid]
	if b == nil {
		b = &initBackoff{uid: rp.uid}
		if r.initFailed == nil {
			r.initFailed = map[types.UID]*initBackoff{}
		}
		r.initFailed[rp.uid] = b
	}
	b.failures++
	b.wait = r.opts.InitBackoff << min(b.failures-1, 20)
	if b.wait > r.opts.MaxInitBackoff || b.wait <= 0 {
		b.wait = r.opts.MaxInitBackoff
	}
	b.retryAt = time.Now().Add(b.wait)
	r.problem("pod %s does not start: %v; trying again in %s", rp.name, rp.initErr, b.wait)
	if err := r.stopPodLocked(rp); err != nil {
		r.problem("pod %s: %v", rp.name, err)
	}
	return false
}

// runInit runs the init containers in order, each to completion, as the
// kubelet does; it stops at the first that fails. A restartable init
// container (restartPolicy Always: a sidecar) is only started, and counts
// as started once its startup probe passes; it then runs beside the
// containers.
func runInit(ctx context.Context, inits []*container, grace time.Duration) error {
	for _, c := range inits {
		if err := c.start(); err != nil {
			return err
		}
		if c.sidecar {
			if err := waitStarted(ctx, c); err != nil {
				return fmt.Errorf("sidecar %s: %w (see %s)", c.name, err, c.logPath)
			}
			continue
		}
		select {
		case <-c.done:
		case <-ctx.Done():
			_ = c.stop(grace)
			return fmt.Errorf("init container %s: %w", c.name, ctx.Err())
		}
		if c.err != nil {
			return fmt.Errorf("init container %s failed: %v (see %s)", c.name, c.err, c.logPath)
		}
	}
	return nil
}

// waitStarted waits for a sidecar's startup probe, if it has one.
func waitStarted(ctx context.Context, c *container) error {
	p := c.spec.StartupProbe
	for {
		if c.exited() {
			return fmt.Errorf("exited before it started: %v", c.err)
		}
		if p == nil || runProbe(ctx, c.dial, &c.spec, p) == nil {
			return nil
		}
		period := time.Duration(p.PeriodSeconds) * time.Second
		if period <= 0 {
			period = time.Second
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(min(period, time.Second)):
		}
	}
}

// stopPodLocked takes rp out of the Service's endpoints, stops its
// processes and removes it from the running pods.
func (r *Runner) stopPodLocked(rp *runningPod) error {
	if rp == nil || r.pods[rp.uid] != rp {
		return nil
	}
	rp.ready = false
	r.publishEndpointsLocked()
	var errs []error
	rp.cancelInit()
	<-rp.initDone
	// The containers first, then the sidecars, in reverse order, as the
	// kubelet does.
	for i := len(rp.containers) - 1; i >= 0; i-- {
		errs = append(errs, rp.containers[i].stop(r.opts.MaxStopGrace))
	}
	for _, c := range rp.initContainers {
		errs = append(errs, c.stop(r.opts.MaxStopGrace))
	}
	if rp.net != nil {
		rp.net.close()
	}
	errs = append(errs, os.RemoveAll(rp.dir))
	delete(r.pods, rp.uid)
	return errors.Join(errs...)
}

// KillPod kills every process of the running pod name at once with
// SIGKILL, as a crashed node or an OOM kill would, after taking it out of
// the Service's endpoints (as the endpoints controller does once the pod is
// not ready). The runner then restarts its containers (restartPolicy
// Always) and puts it back once its readiness probes pass. Connections
// the pod served break.
func (r *Runner) KillPod(name string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rp := range r.pods {
		if rp.name != name {
			continue
		}
		if !rp.started {
			return fmt.Errorf("pod %s has not started its containers", name)
		}
		rp.ready = false
		r.publishEndpointsLocked()
		for _, c := range rp.containers {
			c.ready = false
			c.kill()
		}
		r.opts.Logf("dataplane: killed the processes of pod %s", name)
		return nil
	}
	return fmt.Errorf("no running pod %s", name)
}

// checkContainersLocked restarts exited processes (restartPolicy Always)
// and runs readiness probes, each at most once a second.
func (r *Runner) checkContainersLocked(ctx context.Context, rp *runningPod) {
	if rp == nil || r.pods[rp.uid] != rp {
		return
	}
	if !r.checkInitLocked(rp) {
		rp.ready = false
		return
	}
	ready := true
	for _, c := range rp.containers {
		if c.exited() {
			r.restarts++
			r.problem("container %s of pod %s exited (%v); restarting it (see %s)", c.name, rp.name, c.err, c.logPath)
			if err := c.start(); err != nil {
				r.problem("%v", err)
			}
			ready = false
			continue
		}
		if time.Since(c.lastProbe) >= time.Second || !c.ready {
			err := runProbe(ctx, c.dial, &c.spec, c.spec.ReadinessProbe)
			c.lastProbe = time.Now()
			if c.ready && err != nil {
				r.opts.Logf("dataplane: container %s of pod %s readiness probe failed: %v", c.name, rp.name, err)
			}
			c.ready = err == nil
		}
		ready = ready && c.ready
	}
	rp.ready = ready
}

// statusKey is what reportStatusLocked last wrote: initialized and ready.
func (p *runningPod) statusKey() string {
	return fmt.Sprintf("initialized=%t ready=%t", p.started, p.ready)
}

// reportStatusLocked writes the pod status when readiness or
// initialization changed.
func (r *Runner) reportStatusLocked(ctx context.Context, rp *runningPod, pod *corev1.Pod) error {
	if rp == nil || r.pods[rp.uid] != rp || rp.reported == rp.statusKey() {
		return nil
	}
	now := metav1.Now()
	cond := corev1.ConditionFalse
	if rp.ready {
		cond = corev1.ConditionTrue
	}
	initialized := corev1.ConditionFalse
	if rp.started {
		initialized = corev1.ConditionTrue
	}
	p, err := r.kube.CoreV1().Pods(pod.Namespace).Get(ctx, pod.Name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	if p.UID != rp.uid {
		return nil
	}
	p.Status.Phase = corev1.PodRunning
	if !rp.started {
		p.Status.Phase = corev1.PodPending
	}
	if p.Status.StartTime == nil {
		p.Status.StartTime = &now
	}
	p.Status.HostIP, p.Status.PodIP = podIP, podIP
	p.Status.PodIPs = []corev1.PodIP{{IP: podIP}}
	p.Status.Conditions = []corev1.PodCondition{
		{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: now},
		{Type: corev1.PodInitialized, Status: initialized, LastTransitionTime: now},
		{Type: corev1.ContainersReady, Status: cond, LastTransitionTime: now},
		{Type: corev1.PodReady, Status: cond, LastTransitionTime: now},
	}
	p.Status.InitContainerStatuses = nil
	for _, c := range rp.initContainers {
		st := corev1.ContainerStatus{Name: c.name, Image: c.spec.Image}
		switch {
		case c.sidecar && rp.started:
			st.Ready, st.Started = c.ready, ptr.To(true)
			st.State.Running = &corev1.ContainerStateRunning{StartedAt: now}
		case rp.started:
			st.State.Terminated = &corev1.ContainerStateTerminated{ExitCode: 0, Reason: "Completed", FinishedAt: now}
		default:
			st.State.Waiting = &corev1.ContainerStateWaiting{Reason: "PodInitializing"}
		}
		p.Status.InitContainerStatuses = append(p.Status.InitContainerStatuses, st)
	}
	p.Status.ContainerStatuses = nil
	for _, c := range rp.containers {
		if c.sidecar {
			continue
		}
		st := corev1.ContainerStatus{Name: c.name, Image: c.spec.Image, Ready: c.ready, Started: ptr.To(rp.started)}
		if rp.started {
			st.State.Running = &corev1.ContainerStateRunning{StartedAt: now}
		} else {
			st.State.Waiting = &corev1.ContainerStateWaiting{Reason: "PodInitializing"}
		}
		p.Status.ContainerStatuses = append(p.Status.ContainerStatuses, st)
	}
	if _, err := r.kube.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("report pod %s status: %w", pod.Name, err)
	}
	rp.reported = rp.statusKey()
	r.opts.Logf("dataplane: pod %s Initialized=%s Ready=%s", pod.Name, initialized, cond)
	return nil
}

// ContainerEnv is the environment the runner gave container name of the running
// pod (values from Secrets included: never log it whole).
func (r *Runner) ContainerEnv(pod, name string) (map[string]string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range r.pods {
		if p.name != pod {
			continue
		}
		for _, c := range append(append([]*container{}, p.initContainers...), p.containers...) {
			if c.name != name {
				continue
			}
			env := map[string]string{}
			for _, kv := range c.env {
				k, v, _ := strings.Cut(kv, "=")
				env[k] = v
			}
			return env, nil
		}
		return nil, fmt.Errorf("pod %s has no container %s", pod, name)
	}
	return nil, fmt.Errorf("no running pod %s", pod)
}

// ServiceStats are the counts of the Service's forwarders since Start.
func (r *Runner) ServiceStats() *ServiceStats { return &r.serviceStats }
