package dataplane

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"
)

// podNetwork is a pod's own network namespace, as a CNI plugin would give
// it, so that several pods of one StatefulSet can listen on the same fixed
// ports (5000, 5001, ...) on one machine. It holds only a loopback
// interface: the processes listen on it as they would on the pod's
// addresses, and the runner reaches them by opening its sockets inside the
// namespace (dial), as kube-proxy's rules reach a pod IP. The reverse
// direction, a pod reaching services on the host's loopback (the API
// server, an S3 server), goes through listeners the runner opens inside the
// namespace on the same address and port, forwarding to the host's.
//
// The namespace lives as long as the runner keeps its file open; the
// container processes enter it with nsenter through /proc/<runner pid>/fd/N.
type podNetwork struct {
	ns *os.File
	// path names the namespace for nsenter.
	path string

	mu        sync.Mutex
	listeners []net.Listener
	conns     map[net.Conn]struct{}
	wg        sync.WaitGroup
	closed    bool
}

// inNetNS runs f on a locked OS thread that has entered the network
// namespace ns, and moves the thread back before unlocking it. If it cannot
// move back, the thread is left locked, and the runtime destroys it when the
// goroutine ends.
func inNetNS(ns *os.File, f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		self, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer self.Close()
		if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("setns: %w", err)
			return
		}
		ferr := f()
		if err := unix.Setns(int(self.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- errors.Join(ferr, fmt.Errorf("setns back: %w", err))
			return // thread stays locked and dies with this goroutine
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// newPodNetwork makes a network namespace with its loopback up, and
// forwards each of hostServices (host:port on the host's loopback) from the
// same address inside it.
func newPodNetwork(hostServices []string) (*podNetwork, error) {
	var ns *os.File
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// The thread goes back to the host's namespace before it is
		// unlocked. It must not end with the goroutine (what the runtime
		// does to a thread left locked): processes started with
		// Pdeathsig, such as the containers and SeaweedFS, receive their
		// signal when the thread that forked them ends.
		self, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer self.Close()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("unshare network namespace: %w", err)
			return
		}
		f, err := os.Open("/proc/thread-self/ns/net")
		if err == nil {
			if err = loopbackUp(); err != nil {
				f.Close()
			}
		}
		if serr := unix.Setns(int(self.Fd()), unix.CLONE_NEWNET); serr != nil {
			if f != nil && err == nil {
				f.Close()
			}
			errc <- errors.Join(err, fmt.Errorf("setns back: %w", serr))
			return // the thread stays locked and ends with this goroutine
		}
		runtime.UnlockOSThread()
		if err != nil {
			errc <- err
			return
		}
		ns = f
		errc <- nil
	}()
	if err := <-errc; err != nil {
		return nil, err
	}
	n := &podNetwork{ns: ns, path: fmt.Sprintf("/proc/%d/fd/%d", os.Getpid(), ns.Fd()), conns: map[net.Conn]struct{}{}}
	for _, addr := range hostServices {
		if err := n.forwardFromHost(addr); err != nil {
			n.close()
			return nil, err
		}
	}
	return n, nil
}

// loopbackUp sets lo up in the calling thread's network namespace.
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("get lo flags: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("set lo up: %w", err)
	}
	return nil
}

// dial connects to addr inside the pod's namespace.
func (n *podNetwork) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var conn net.Conn
	err := inNetNS(n.ns, func() error {
		var d net.Dialer
		c, err := d.DialContext(ctx, network, addr)
		conn = c
		return err
	})
	return conn, err
}

// forwardFromHost listens on addr inside the namespace and copies each
// connection to addr on the host.
func (n *podNetwork) forwardFromHost(addr string) error {
	var l net.Listener
	if err := inNetNS(n.ns, func() error {
		var err error
		l, err = net.Listen("tcp", addr)
		return err
	}); err != nil {
		return fmt.Errorf("pod network: forwarding %s into the pod: %w", addr, err)
	}
	n.mu.Lock()
	n.listeners = append(n.listeners, l)
	n.mu.Unlock()
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			n.wg.Add(1)
			go func() {
				defer n.wg.Done()
				up, err := net.Dial("tcp", addr)
				if err != nil {
					c.Close()
					return
				}
				n.splice(c, up)
			}()
		}
	}()
	return nil
}

// splice copies between a and b until both directions end, and closes
// both; close ends it early.
func (n *podNetwork) splice(a, b net.Conn) {
	if !n.track(a, b) {
		a.Close()
		b.Close()
		return
	}
	defer n.untrack(a, b)
	pipe(a, b)
}

func (n *podNetwork) track(cs ...net.Conn) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return false
	}
	for _, c := range cs {
		n.conns[c] = struct{}{}
	}
	return true
}

func (n *podNetwork) untrack(cs ...net.Conn) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, c := range cs {
		delete(n.conns, c)
		c.Close()
	}
}

// close stops the forwarders and releases the namespace (it goes away
// once no process is left in it).
func (n *podNetwork) close() {
	n.mu.Lock()
	n.closed = true
	for _, l := range n.listeners {
		l.Close()
	}
	for c := range n.conns {
		c.Close()
	}
	n.mu.Unlock()
	n.wg.Wait()
	n.ns.Close()
}

// pipe copies both ways between a and b, half-closing as each direction
// ends, and returns when both have, with the error that ended the copy
// from b to a (nil for an orderly end).
func pipe(a, b net.Conn) (fromB error) {
	done := make(chan struct{}, 2)
	cp := func(dst, src net.Conn, errp *error) {
		_, err := io.Copy(dst, src)
		if errp != nil {
			*errp = err
		}
		if tc, ok := dst.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
		done <- struct{}{}
	}
	go cp(a, b, &fromB)
	go cp(b, a, nil)
	<-done
	<-done
	return fromB
}

func hostPort(host string, port int) string {
	return net.JoinHostPort(host, strconv.Itoa(port))
}
