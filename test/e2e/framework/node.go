package framework

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
)

// Binaries of the real node: kubelet and crictl come from
// hack/build-tools.sh, the rest from Debian packages (containerd, runc,
// containernetworking-plugins, util-linux).
const (
	KubeletBinary = "kubelet"
	CrictlBinary  = "crictl"
)

// CNIBinDir is where Debian's containernetworking-plugins puts the plugins.
const CNIBinDir = "/usr/lib/cni"

// ErrNodeUnsupported is returned (wrapped) by StartNode when this machine
// cannot run the real node (not root, or a component missing), so that
// tests can skip with the reason.
var ErrNodeUnsupported = errors.New("real node unsupported here")

// NodeOptions configures StartNode. The zero value is usable.
type NodeOptions struct {
	// Name is the Node's name. It must differ from NodeName, whose pods the
	// tests' kubelet stand-ins run. Default: "iro-node".
	Name string
	// PodCIDR is the CNI bridge's subnet. Default 10.250.0.0/24.
	PodCIDR string
	// Bridge is the CNI bridge interface's name. Default "iro-cni0".
	Bridge string
}

// Node is a real kubelet + containerd + runc + CNI bridge, registered with
// the control plane. containerd and the kubelet share a mount namespace of
// their own in which HostsFile is bind-mounted over /etc/hosts, so the
// node resolves names as the test says without touching the machine's
// /etc/hosts, and the node's own directories are bind-mounted over
// /etc/containerd and /etc/docker; containerd reads registry configuration
// (hosts.toml, CAs) from /etc/containerd/certs.d there (ContainerdCertsDir
// outside).
type Node struct {
	Name string
	Dir  string
	// HostsFile is what the node's processes see as /etc/hosts.
	HostsFile string
	// ContainerdCertsDir is containerd's registry config_path, seen from
	// outside the node; inside, it is /etc/containerd/certs.d.
	ContainerdCertsDir string
	// DockerCertsDir is the node's /etc/docker/certs.d, seen from outside
	// (no Docker engine runs on the node).
	DockerCertsDir string
	// ContainerdSocket is the CRI endpoint (for crictl and ctr).
	ContainerdSocket string
	// CrictlConfig names the node's endpoints for crictl --config.
	CrictlConfig string
	// PodLogsDir holds the containers' logs (kubectl logs needs the API
	// server to reach the kubelet, which it cannot here).
	PodLogsDir string
	LogDir     string
	// Timings of the start-up steps, for the tests' reports.
	Timings []Timing

	cp         *ControlPlane
	opts       NodeOptions
	containerd *process
	kubelet    *process
	extra      []*process
	listeners  []net.Listener
	svcAddrs   []string
	mu         sync.Mutex
	stopOnce   sync.Once
	stopErr    error
}

// Timing is one measured step.
type Timing struct {
	Step     string
	Duration time.Duration
}

func (n *Node) timed(step string, start time.Time) {
	n.Timings = append(n.Timings, Timing{step, time.Since(start)})
}

// CheckNode reports (wrapping ErrNodeUnsupported) why this machine cannot
// run the real node, or nil.
func CheckNode(binDir string) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("%w: needs root", ErrNodeUnsupported)
	}
	var missing []string
	for _, b := range []string{KubeletBinary, CrictlBinary} {
		if fi, err := os.Stat(filepath.Join(binDir, b)); err != nil || fi.Mode().Perm()&0o111 == 0 {
			missing = append(missing, filepath.Join(binDir, b)+" (hack/build-tools.sh)")
		}
	}
	for _, b := range []string{"containerd", "containerd-shim-runc-v2", "ctr", "runc", "unshare", "nsenter", "mount", "ip"} {
		if _, err := exec.LookPath(b); err != nil {
			missing = append(missing, b)
		}
	}
	for _, p := range []string{"bridge", "host-local", "loopback"} {
		if _, err := os.Stat(filepath.Join(CNIBinDir, p)); err != nil {
			missing = append(missing, filepath.Join(CNIBinDir, p)+" (containernetworking-plugins)")
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: missing %s", ErrNodeUnsupported, strings.Join(missing, ", "))
	}
	return nil
}

// StartNode starts containerd and a kubelet registered as opts.Name, imports
// the locally built pause image, and returns once the Node is Ready. Stop
// removes every pod it ran, stops both and removes its files.
func (cp *ControlPlane) StartNode(ctx context.Context, opts NodeOptions) (*Node, error) {
	if opts.Name == "" {
		opts.Name = "iro-node"
	}
	if opts.Name == NodeName {
		return nil, fmt.Errorf("the real node must not be named %q: the kubelet stand-ins bind their pods there", NodeName)
	}
	if opts.PodCIDR == "" {
		opts.PodCIDR = "10.250.0.0/24"
	}
	if opts.Bridge == "" {
		opts.Bridge = "iro-cni0"
	}
	if err := CheckNode(cp.BinDir); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(cp.Dir, "node-"+opts.Name+"-")
	if err != nil {
		return nil, err
	}
	n := &Node{
		Name: opts.Name, Dir: dir, cp: cp, opts: opts,
		HostsFile:          filepath.Join(dir, "etc", "hosts"),
		ContainerdCertsDir: filepath.Join(dir, "etc", "containerd", "certs.d"),
		DockerCertsDir:     filepath.Join(dir, "etc", "docker", "certs.d"),
		ContainerdSocket:   filepath.Join(dir, "containerd", "containerd.sock"),
		CrictlConfig:       filepath.Join(dir, "crictl.yaml"),
		PodLogsDir:         filepath.Join(dir, "pod-logs"),
		LogDir:             filepath.Join(dir, "logs"),
	}
	if err := n.start(ctx); err != nil {
		if serr := n.Stop(); serr != nil {
			err = errors.Join(err, fmt.Errorf("cleaning up: %w", serr))
		}
		return nil, err
	}
	return n, nil
}

func (n *Node) start(ctx context.Context) error {
	for _, d := range []string{n.ContainerdCertsDir, n.DockerCertsDir, n.PodLogsDir, n.LogDir, n.path("kubelet"), n.path("cni", "net.d"), n.path("cni", "ipam"), n.path("containerd", "root"), n.path("containerd", "state")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	hosts := "127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n"
	if err := os.WriteFile(n.HostsFile, []byte(hosts), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(n.path("containerd", "config.toml"), []byte(n.containerdConfig()), 0o644); err != nil {
		return err
	}
	crictlConfig := fmt.Sprintf("runtime-endpoint: unix://%s\nimage-endpoint: unix://%s\ntimeout: 20\n", n.ContainerdSocket, n.ContainerdSocket)
	if err := os.WriteFile(n.CrictlConfig, []byte(crictlConfig), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(n.path("cni", "net.d", "10-iro-bridge.conflist"), []byte(n.cniConfig()), 0o644); err != nil {
		return err
	}

	// containerd in a new mount namespace (its mounts slaves of the
	// machine's, so nothing done inside leaks out): the kubelet root dir is
	// made a shared mount inside, as the kubelet wants for volume
	// propagation, and the node's hosts file covers /etc/hosts.
	start := time.Now()
	root := n.path("kubelet")
	// The node's /etc/containerd and /etc/docker are its own too, so that
	// hostPath volumes of those paths (the node agent's DaemonSet) reach the
	// node's directories, not the machine's. The mount points must exist.
	for _, d := range []string{"/etc/containerd", "/etc/docker"} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	script := fmt.Sprintf("set -e; mount --bind %[1]s %[1]s; mount --make-rshared %[1]s; mount --bind %[2]s /etc/hosts; "+
		"mount --bind %[4]s /etc/containerd; mount --bind %[5]s /etc/docker; exec containerd --config %[3]s",
		shellQuote(root), shellQuote(n.HostsFile), shellQuote(n.path("containerd", "config.toml")),
		shellQuote(n.path("etc", "containerd")), shellQuote(n.path("etc", "docker")))
	var err error
	if n.containerd, err = n.startProcess("containerd", "unshare", "-m", "--propagation", "slave", "sh", "-c", script); err != nil {
		return err
	}
	if err := n.waitFor(ctx, n.containerd, "containerd to answer CRI", func(ctx context.Context) error {
		_, err := n.Crictl(ctx, "version")
		return err
	}); err != nil {
		return err
	}
	n.timed("containerd up", start)

	start = time.Now()
	pause, err := BuildPause(ctx, n.Dir)
	if err != nil {
		return err
	}
	tarball := n.path("pause.tar")
	if err := WriteBinaryImage(tarball, PauseImage, pause, "pause"); err != nil {
		return err
	}
	if out, err := n.Ctr(ctx, "images", "import", tarball); err != nil {
		return fmt.Errorf("importing the pause image: %v\n%s", err, out)
	}
	n.timed("pause image built and imported", start)

	start = time.Now()
	ports, err := freePorts(2)
	if err != nil {
		return err
	}
	if err := os.WriteFile(n.path("kubelet-config.yaml"), []byte(n.kubeletConfig(ports[0], ports[1])), 0o644); err != nil {
		return err
	}
	args := []string{"-t", strconv.Itoa(n.containerd.cmd.Process.Pid), "-m", "--",
		filepath.Join(n.cp.BinDir, KubeletBinary),
		"--config=" + n.path("kubelet-config.yaml"),
		"--kubeconfig=" + n.cp.Kubeconfig,
		"--root-dir=" + root,
		"--cert-dir=" + n.path("kubelet-pki"),
		"--hostname-override=" + n.Name,
		"--node-ip=127.0.0.1",
		"--node-labels=iro.test/real-node=true",
		"--v=1",
	}
	if n.kubelet, err = n.startProcess("kubelet", "nsenter", args...); err != nil {
		return err
	}
	if err := n.waitFor(ctx, n.kubelet, "the Node to be Ready", func(ctx context.Context) error {
		node, err := n.cp.Client.CoreV1().Nodes().Get(ctx, n.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		for _, c := range node.Status.Conditions {
			if c.Type == corev1.NodeReady {
				if c.Status == corev1.ConditionTrue {
					return nil
				}
				return fmt.Errorf("Ready=%s: %s", c.Status, c.Message)
			}
		}
		return errors.New("no Ready condition yet")
	}); err != nil {
		return err
	}
	n.timed("kubelet up, Node Ready", start)
	return nil
}

func (n *Node) path(elem ...string) string { return filepath.Join(append([]string{n.Dir}, elem...)...) }

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

func (n *Node) startProcess(name, binary string, args ...string) (*process, error) {
	log, closeLog, err := logDestination(name, nil, filepath.Join(n.LogDir, name+".log"))
	if err != nil {
		return nil, err
	}
	return startProcess(name, binary, args, log, closeLog)
}

// waitFor polls check until it passes, p exits or the start timeout passes.
func (n *Node) waitFor(ctx context.Context, p *process, what string, check func(context.Context) error) error {
	timeout := n.cp.opts.StartTimeout
	if timeout == 0 {
		timeout = defaultStartTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	err := wait.PollUntilContextCancel(ctx, 250*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		if err := p.crashErr(); err != nil {
			return false, err
		}
		last = check(ctx)
		return last == nil, nil
	})
	if err != nil {
		return fmt.Errorf("waiting for %s: %w (last: %v); %s log:\n%s", what, err, last, p.name, p.tail.Lines(tailLines))
	}
	return nil
}

// Crictl runs crictl against the node's containerd.
func (n *Node) Crictl(ctx context.Context, args ...string) ([]byte, error) {
	full := append([]string{"--config", n.CrictlConfig}, args...)
	return exec.CommandContext(ctx, filepath.Join(n.cp.BinDir, CrictlBinary), full...).CombinedOutput()
}

// Ctr runs containerd's ctr in the CRI's namespace k8s.io.
func (n *Node) Ctr(ctx context.Context, args ...string) ([]byte, error) {
	full := append([]string{"--address", n.ContainerdSocket, "--namespace", "k8s.io"}, args...)
	return exec.CommandContext(ctx, "ctr", full...).CombinedOutput()
}

// Exec runs binary with args in the node's mount namespace (so it resolves
// names with the node's /etc/hosts) with env added, and returns its output.
func (n *Node) Exec(ctx context.Context, env []string, binary string, args ...string) ([]byte, error) {
	full := append([]string{"-t", strconv.Itoa(n.containerd.cmd.Process.Pid), "-m", "--", binary}, args...)
	cmd := exec.CommandContext(ctx, "nsenter", full...)
	cmd.Env = append(os.Environ(), env...)
	return cmd.CombinedOutput()
}

// NodeProcess is a process the test runs on the node, in its mount
// namespace (so it sees the node's /etc/hosts), e.g. the node agent.
type NodeProcess struct {
	p       *process
	LogFile string
}

// Start runs binary with args in the node's mount namespace until Stop (or
// the node stops). Its output goes to LogDir/<name>.log.
func (n *Node) Start(name, binary string, args ...string) (*NodeProcess, error) {
	full := append([]string{"-t", strconv.Itoa(n.containerd.cmd.Process.Pid), "-m", "--", binary}, args...)
	p, err := n.startProcess(name, "nsenter", full...)
	if err != nil {
		return nil, err
	}
	n.mu.Lock()
	n.extra = append(n.extra, p)
	n.mu.Unlock()
	return &NodeProcess{p: p, LogFile: filepath.Join(n.LogDir, name+".log")}, nil
}

// Stop stops the process; an error if it had exited on its own.
func (p *NodeProcess) Stop() error {
	if err := p.p.crashErr(); err != nil {
		return err
	}
	_, err := p.p.stop(defaultStopTimeout)
	return err
}

// Err is non-nil once the process exited on its own.
func (p *NodeProcess) Err() error { return p.p.crashErr() }

// Tail is the end of the process's output.
func (p *NodeProcess) Tail() string { return p.p.tail.Lines(tailLines) }

// Stop removes every pod sandbox from containerd (which stops their
// containers and shims), stops the kubelet and containerd, deletes the Node
// object and the CNI bridge, and removes the node's directory. It returns
// an error if a component had crashed.
func (n *Node) Stop() error {
	return n.StopKeepingDir(nil)
}

// StopKeepingDir is Stop, with beforeRemove run after every process ended
// and before the node's directory is removed (to save its logs).
func (n *Node) StopKeepingDir(beforeRemove func()) error {
	n.stopOnce.Do(func() {
		var errs []error
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		n.mu.Lock()
		extra := n.extra
		n.mu.Unlock()
		for _, p := range extra {
			_, _ = p.stop(defaultStopTimeout)
		}
		// Pods bound to the node would stay Terminating forever once no
		// kubelet confirms their end (and hold up their namespace's
		// deletion): force-delete them first.
		if n.cp.Client != nil {
			zero := int64(0)
			if pods, err := n.cp.Client.CoreV1().Pods("").List(ctx, metav1.ListOptions{FieldSelector: "spec.nodeName=" + n.Name}); err == nil {
				for _, p := range pods.Items {
					_ = n.cp.Client.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: &zero})
				}
			}
		}
		if n.kubelet != nil {
			errs = append(errs, n.kubelet.crashErr())
			_, err := n.kubelet.stop(defaultStopTimeout)
			errs = append(errs, err)
		}
		if n.containerd != nil && !n.containerd.exited() {
			// A shim that ends while its container is being killed answers
			// "ttrpc: closed" (seen once in CI); the sandbox is gone or
			// removable a moment later, so try again before reporting it.
			var rmErr error
			for attempt := 0; attempt < 3; attempt++ {
				out, err := n.Crictl(ctx, "rmp", "--all", "--force")
				if err == nil {
					rmErr = nil
					break
				}
				rmErr = fmt.Errorf("removing the node's pods: %v: %s", err, out)
				time.Sleep(time.Second)
			}
			errs = append(errs, rmErr)
		}
		if n.containerd != nil {
			errs = append(errs, n.containerd.crashErr())
			_, err := n.containerd.stop(defaultStopTimeout)
			errs = append(errs, err)
		}
		n.stopForwarders()
		// Shims outlive containerd by design; end those of this node only.
		errs = append(errs, killShims(n.ContainerdSocket))
		_ = exec.Command("ip", "link", "delete", n.opts.Bridge).Run()
		if n.cp.Client != nil {
			_ = n.cp.Client.CoreV1().Nodes().Delete(ctx, n.Name, metav1.DeleteOptions{})
		}
		if beforeRemove != nil {
			beforeRemove()
		}
		if !n.cp.opts.KeepDir {
			if err := os.RemoveAll(n.Dir); err != nil {
				errs = append(errs, fmt.Errorf("removing %s: %w", n.Dir, err))
			}
		}
		n.stopErr = errors.Join(errs...)
	})
	return n.stopErr
}

// killShims SIGKILLs the containerd shims whose command line names socket
// (a shim is started with -address <containerd socket>).
func killShims(socket string) error {
	procs, err := os.ReadDir("/proc")
	if err != nil {
		return err
	}
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", p.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(string(cmdline), "\x00")
		if len(args) > 0 && strings.HasPrefix(filepath.Base(args[0]), "containerd-shim") && strings.Contains(string(cmdline), socket) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	return nil
}

func (n *Node) containerdConfig() string {
	return fmt.Sprintf(`# The e2e framework's real node (test/e2e/framework/node.go).
version = 2
# The opt plugin would create /opt/containerd on the machine.
disabled_plugins = ["io.containerd.internal.v1.opt"]
root = %[1]q
state = %[2]q

[grpc]
  address = %[3]q

[ttrpc]
  address = %[4]q

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %[5]q
  # root lacks CAP_SYS_RESOURCE here: runc cannot set a negative
  # oom_score_adj, so the CRI must not ask for one.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = %[6]q
    conf_dir = %[7]q
  [plugins."io.containerd.grpc.v1.cri".registry]
    # The node's own directory, bind-mounted there in its mount namespace.
    config_path = "/etc/containerd/certs.d"
`, n.path("containerd", "root"), n.path("containerd", "state"), n.ContainerdSocket, n.ContainerdSocket+".ttrpc",
		PauseImage, CNIBinDir, n.path("cni", "net.d"))
}

// cniConfig is a bridge with host-local addresses and no masquerading: pods
// reach each other and the host (their default route is the bridge, so they
// reach the addresses of Forward), nothing beyond.
func (n *Node) cniConfig() string {
	return fmt.Sprintf(`{
  "cniVersion": "0.4.0",
  "name": "iro-e2e",
  "plugins": [
    {
      "type": "bridge",
      "bridge": %q,
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{"subnet": %q}]],
        "routes": [{"dst": "0.0.0.0/0"}],
        "dataDir": %q
      }
    }
  ]
}
`, n.opts.Bridge, n.opts.PodCIDR, n.path("cni", "ipam"))
}

// kubeletConfig holds the settings this machine needs (cgroup v1, no
// CAP_SYS_RESOURCE, no swap rules) and keeps every port on loopback.
func (n *Node) kubeletConfig(port, healthzPort int) string {
	return fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: 127.0.0.1
port: %d
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: %d
containerRuntimeEndpoint: unix://%s
imageServiceEndpoint: unix://%s
podLogsDir: %s
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: false
cgroupsPerQOS: true
enforceNodeAllocatable: []
evictionHard: {}
localStorageCapacityIsolation: false
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
serializeImagePulls: false
registerWithTaints:
- key: iro.test/real-node
  effect: NoSchedule
authentication:
  anonymous:
    enabled: false
  webhook:
    enabled: false
  x509:
    clientCAFile: %s
authorization:
  mode: AlwaysAllow
`, port, healthzPort, n.ContainerdSocket, n.ContainerdSocket, n.PodLogsDir, filepath.Join(n.cp.Dir, "pki", "ca.crt"))
}
