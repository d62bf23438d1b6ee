package framework

import (
	"fmt"
	"io"
	"net"
	"os/exec"
	"sync"
)

// Service addresses outside 127.0.0.0/8 go on the loopback interface (this
// kernel has no dummy interfaces), so that pods reach them through the CNI
// bridge's gateway; Stop removes them.

// Forward plays kube-proxy for one Service port: it listens on ip:port and
// copies each connection to the address target returns at that moment (a
// pod IP that changes when the pod is replaced). An ip outside 127.0.0.0/8
// is added to the loopback interface first (removed by Stop). Forwarders
// end with the node.
func (n *Node) Forward(ip string, port int, target func() (string, error)) error {
	parsed := net.ParseIP(ip)
	if parsed == nil {
		return fmt.Errorf("forward: %q is not an IP address", ip)
	}
	if !parsed.IsLoopback() {
		if out, err := exec.Command("ip", "addr", "add", ip+"/32", "dev", "lo").CombinedOutput(); err != nil {
			return fmt.Errorf("ip addr add %s dev lo: %v: %s", ip, err, out)
		}
		n.mu.Lock()
		n.svcAddrs = append(n.svcAddrs, ip)
		n.mu.Unlock()
	}
	l, err := net.Listen("tcp", net.JoinHostPort(ip, fmt.Sprint(port)))
	if err != nil {
		return err
	}
	n.mu.Lock()
	n.listeners = append(n.listeners, l)
	n.mu.Unlock()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				to, err := target()
				if err != nil {
					return
				}
				u, err := net.Dial("tcp", to)
				if err != nil {
					return
				}
				defer u.Close()
				var wg sync.WaitGroup
				wg.Add(2)
				go func() { defer wg.Done(); _, _ = io.Copy(u, c); closeWrite(u) }()
				go func() { defer wg.Done(); _, _ = io.Copy(c, u); closeWrite(c) }()
				wg.Wait()
			}()
		}
	}()
	return nil
}

func closeWrite(c net.Conn) {
	if t, ok := c.(*net.TCPConn); ok {
		_ = t.CloseWrite()
	}
}

// stopForwarders closes the listeners and removes their addresses.
func (n *Node) stopForwarders() {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, l := range n.listeners {
		_ = l.Close()
	}
	n.listeners = nil
	for _, ip := range n.svcAddrs {
		_ = exec.Command("ip", "addr", "del", ip+"/32", "dev", "lo").Run()
	}
	n.svcAddrs = nil
}
