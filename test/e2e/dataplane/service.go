package dataplane

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// forwarder accepts on one Service port and copies each connection to the
// target port of a pod that pick chooses, in that pod's network namespace,
// as kube-proxy would to a pod IP.
type forwarder struct {
	l      net.Listener
	port   int
	pick   func() *runningPod
	stats  *ServiceStats
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
}

// randomLoopback picks a per-run address in 127.0.0.0/8 that is not
// 127.0.0.1, so that the Service's port 443 never clashes with anything on
// the usual loopback address.
func randomLoopback() string {
	var b [3]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("127.%d.%d.%d", 1+b[0]%250, b[1], 1+b[2]%250)
}

// startServiceForwarders forwards each port of svc on addr to its
// targetPort (resolved from pod's spec) on a pod pick chooses.
func startServiceForwarders(addr string, svc *corev1.Service, pod *corev1.Pod, pick func() *runningPod, stats *ServiceStats) ([]*forwarder, error) {
	var fws []*forwarder
	for _, sp := range svc.Spec.Ports {
		target, err := serviceTargetPort(sp, pod)
		if err != nil {
			closeForwarders(fws)
			return nil, err
		}
		f, err := startForwarder(net.JoinHostPort(addr, strconv.Itoa(int(sp.Port))), target, pick, stats)
		if err != nil {
			closeForwarders(fws)
			return nil, fmt.Errorf("Service %s port %d: %w", svc.Name, sp.Port, err)
		}
		fws = append(fws, f)
	}
	return fws, nil
}

func startForwarder(listen string, target int, pick func() *runningPod, stats *ServiceStats) (*forwarder, error) {
	l, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, err
	}
	if stats == nil {
		stats = &ServiceStats{}
	}
	f := &forwarder{l: l, port: target, pick: pick, stats: stats, conns: map[net.Conn]struct{}{}}
	f.wg.Add(1)
	go f.serve()
	return f, nil
}

func serviceTargetPort(sp corev1.ServicePort, pod *corev1.Pod) (int, error) {
	if sp.TargetPort.IntValue() != 0 {
		return sp.TargetPort.IntValue(), nil
	}
	if sp.TargetPort.StrVal == "" {
		return int(sp.Port), nil
	}
	for i := range pod.Spec.Containers {
		if p, err := resolvePort(&pod.Spec.Containers[i], sp.TargetPort); err == nil {
			return p, nil
		}
	}
	return 0, fmt.Errorf("Service port %q: no container port named %q", sp.Name, sp.TargetPort.StrVal)
}

func (f *forwarder) serve() {
	defer f.wg.Done()
	for {
		c, err := f.l.Accept()
		if err != nil {
			return
		}
		if !f.track(c) {
			c.Close()
			return
		}
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			defer f.untrack(c)
			f.stats.Connections.Add(1)
			pod := f.pick()
			if pod == nil {
				// Like a Service without ready endpoints: the client sees a reset.
				f.stats.NoEndpoint.Add(1)
				return
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			up, err := pod.dial(ctx, "tcp", hostPort(podIP, f.port))
			cancel()
			if err != nil {
				f.stats.DialFailed.Add(1)
				return
			}
			if !f.track(up) {
				up.Close()
				return
			}
			defer f.untrack(up)
			if err := pipe(c, up); err != nil && !f.isClosed() {
				f.stats.Broken.Add(1)
			}
		}()
	}
}

func (f *forwarder) isClosed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.closed
}

// ServiceStats counts what the Service's forwarders saw, over all ports:
// connections accepted, those reset because no pod was Ready, those whose
// pod did not accept them, and those broken off (an error rather than an
// orderly close on the way from the pod to the client: the pod's process
// died, or the client went away mid-response). A process that dies may
// also close its connections in order (FIN: the kernel does so when
// nothing is left unread), which only the client can tell from the end
// of a response: Broken is a lower bound. Each connection carries one or
// more HTTP requests.
type ServiceStats struct {
	Connections, NoEndpoint, DialFailed, Broken atomic.Int64
}

func (s *ServiceStats) String() string {
	return fmt.Sprintf("%d connections: %d reset for want of a Ready pod, %d not accepted by the pod, %d broken off by the pod",
		s.Connections.Load(), s.NoEndpoint.Load(), s.DialFailed.Load(), s.Broken.Load())
}

func (f *forwarder) track(c net.Conn) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return false
	}
	f.conns[c] = struct{}{}
	return true
}

func (f *forwarder) untrack(c net.Conn) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.conns, c)
	c.Close()
}

func (f *forwarder) close() {
	f.mu.Lock()
	f.closed = true
	for c := range f.conns {
		c.Close()
	}
	f.mu.Unlock()
	f.l.Close()
	f.wg.Wait()
}

func closeForwarders(fws []*forwarder) {
	for _, f := range fws {
		f.close()
	}
}

// podForward is what kubectl port-forward would give for one pod: the
// Service's ports on an address of its own, all to that pod, ready or not,
// and a hosts file that resolves the registry's hostname to it.
type podForward struct {
	addr       string
	hostsFile  string
	forwarders []*forwarder
}

// PodClient is a crane client that reaches only the pod name (its
// registry and token server, under the registry's hostname, with TLS
// verified as through the Service): to push through one replica and pull
// through another. It follows the pod across restarts of its processes;
// a replacement pod of the same name is reached as well.
func (r *Runner) PodClient(name, dir string) (*Client, error) {
	pf, err := r.podForward(context.Background(), name)
	if err != nil {
		return nil, err
	}
	return &Client{Crane: filepath.Join(r.opts.BinDir, "crane"), HostsFile: pf.hostsFile, Dir: dir}, nil
}

func (r *Runner) podForward(ctx context.Context, name string) (*podForward, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if pf := r.podForwards[name]; pf != nil {
		return pf, nil
	}
	if r.hostname == "" {
		return nil, errors.New("dataplane: the registry's hostname is not known yet")
	}
	var live *runningPod
	for _, p := range r.pods {
		if p.name == name {
			live = p
		}
	}
	if live == nil {
		return nil, fmt.Errorf("dataplane: no running pod %s", name)
	}
	pod, err := r.kube.CoreV1().Pods(r.opts.Namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	svc, err := r.kube.CoreV1().Services(r.opts.Namespace).Get(ctx, r.opts.Name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	addr := randomLoopback()
	pick := func() *runningPod {
		if m := r.byName.Load(); m != nil {
			return (*m)[name]
		}
		return nil
	}
	fws, err := startServiceForwarders(addr, svc, pod, pick, nil)
	if err != nil {
		return nil, err
	}
	base, err := os.ReadFile("/etc/hosts")
	if err != nil {
		closeForwarders(fws)
		return nil, err
	}
	hosts := filepath.Join(r.opts.Dir, "hosts-"+name)
	content := strings.TrimRight(string(base), "\n") + "\n" + addr + " " + r.hostname + "\n"
	if err := os.WriteFile(hosts, []byte(content), 0o644); err != nil {
		closeForwarders(fws)
		return nil, err
	}
	pf := &podForward{addr: addr, hostsFile: hosts, forwarders: fws}
	if r.podForwards == nil {
		r.podForwards = map[string]*podForward{}
	}
	r.podForwards[name] = pf
	return pf, nil
}
