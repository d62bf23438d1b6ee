package dataplane

import (
	"bufio"
	"context"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// serveLine answers every connection on l with line.
func serveLine(l net.Listener, line string) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		_, _ = io.WriteString(c, line+"\n")
		c.Close()
	}
}

// Two pod networks: each has its own listener on the same port, the
// runner's dial reaches each one's own, a process entered with nsenter
// sees its pod's port, and both reach a service on the host's loopback at
// its host address.
func TestPodNetworks(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("network namespaces need root")
	}
	if _, err := exec.LookPath("nsenter"); err != nil {
		t.Skip("nsenter (util-linux) is missing")
	}
	host, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close()
	go serveLine(host, "host")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	hostAddr := host.Addr().(*net.TCPAddr)
	for _, name := range []string{"a", "b"} {
		n, err := newPodNetwork([]string{hostAddr.String()})
		if err != nil {
			t.Fatal(err)
		}
		defer n.close()
		var l net.Listener
		if err := inNetNS(n.ns, func() error {
			l, err = net.Listen("tcp", "127.0.0.1:5000")
			return err
		}); err != nil {
			t.Fatalf("pod network %s: listen on its port 5000: %v", name, err)
		}
		defer l.Close()
		go serveLine(l, name)

		c, err := n.dial(ctx, "tcp", "127.0.0.1:5000")
		if err != nil {
			t.Fatal(err)
		}
		got, _ := bufio.NewReader(c).ReadString('\n')
		c.Close()
		if strings.TrimSpace(got) != name {
			t.Errorf("pod network %s: dial reached %q", name, got)
		}

		script := `exec 3<>/dev/tcp/127.0.0.1/5000; read -r a <&3; exec 4<>/dev/tcp/127.0.0.1/` + itoa(hostAddr.Port) + `; read -r b <&4; echo "$a $b"`
		out, err := exec.CommandContext(ctx, "nsenter", "--net="+n.path, "--", "bash", "-c", script).CombinedOutput()
		if err != nil {
			t.Fatalf("pod network %s: process in it: %v: %s", name, err, out)
		}
		if got := strings.TrimSpace(string(out)); got != name+" host" {
			t.Errorf("pod network %s: a process in it saw %q, want its pod's port and the host service", name, got)
		}
	}
}

// The Service balances over the Ready pods only, round robin, and a killed
// pod leaves the set at once.
func TestServiceEndpoints(t *testing.T) {
	r := &Runner{opts: Options{Logf: t.Logf, MaxStopGrace: time.Second}}
	t.Cleanup(func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		for _, p := range r.sortedPodsLocked() {
			_ = r.stopPodLocked(p)
		}
	})
	r.mu.Lock()
	for _, name := range []string{"registry-0", "registry-1"} {
		rp := podWith(t, "uid-"+name, nil, []*container{testContainer(t, "main", "exec sleep 60")})
		rp.name = name
		r.launchLocked(rp)
	}
	r.mu.Unlock()
	checkUntil(t, r, "both pods ready", func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.publishEndpointsLocked()
		eps := r.endpoints.Load()
		return eps != nil && len(*eps) == 2
	})
	seen := map[string]int{}
	for range 10 {
		seen[r.pickEndpoint().name]++
	}
	if seen["registry-0"] != 5 || seen["registry-1"] != 5 {
		t.Errorf("10 connections went %v, want 5 to each pod", seen)
	}
	if err := r.KillPod("registry-1"); err != nil {
		t.Fatal(err)
	}
	for range 4 {
		if p := r.pickEndpoint(); p == nil || p.name != "registry-0" {
			t.Fatalf("after the kill a connection went to %v", p)
		}
	}
	// The killed pod's container is restarted and the pod comes back.
	checkUntil(t, r, "the killed pod back", func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.publishEndpointsLocked()
		return len(*r.endpoints.Load()) == 2
	})
	if r.Restarts() != 1 {
		t.Errorf("%d restarts, want 1", r.Restarts())
	}
}
