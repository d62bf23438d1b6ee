package dataplane

import (
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"

	corev1 "k8s.io/api/core/v1"
)

// forwarder accepts on one Service port and copies each connection to the
// target port on 127.0.0.1, as kube-proxy would to the pod.
type forwarder struct {
	l      net.Listener
	target string
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
// targetPort on 127.0.0.1. A port equal to its target port is served by the
// process's own wildcard listener and gets no forwarder (see the package
// doc).
func startServiceForwarders(addr string, svc *corev1.Service, pod *corev1.Pod) ([]*forwarder, error) {
	var fws []*forwarder
	for _, sp := range svc.Spec.Ports {
		target, err := serviceTargetPort(sp, pod)
		if err != nil {
			closeForwarders(fws)
			return nil, err
		}
		if target == int(sp.Port) {
			continue
		}
		l, err := net.Listen("tcp", net.JoinHostPort(addr, strconv.Itoa(int(sp.Port))))
		if err != nil {
			closeForwarders(fws)
			return nil, fmt.Errorf("Service %s port %d: %w", svc.Name, sp.Port, err)
		}
		f := &forwarder{l: l, target: net.JoinHostPort(podIP, strconv.Itoa(target)), conns: map[net.Conn]struct{}{}}
		f.wg.Add(1)
		go f.serve()
		fws = append(fws, f)
	}
	return fws, nil
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
			up, err := net.Dial("tcp", f.target)
			if err != nil {
				// Like a Service without ready endpoints: the client sees a reset.
				c.Close()
				return
			}
			if !f.track(up) {
				up.Close()
				c.Close()
				return
			}
			defer f.untrack(up)
			done := make(chan struct{}, 2)
			cp := func(dst, src net.Conn) {
				_, _ = io.Copy(dst, src)
				if tc, ok := dst.(*net.TCPConn); ok {
					_ = tc.CloseWrite()
				}
				done <- struct{}{}
			}
			go cp(up, c)
			go cp(c, up)
			<-done
			<-done
		}()
	}
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
