package dataplane

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// imageEnv is what the container images set in their environment and a
// kubelet would pass on; it is not configuration of the operator's. The
// distribution image sets OTEL_TRACES_EXPORTER=none (registry v3 otherwise
// tries to export traces to an OTLP collector on localhost).
var imageEnv = map[string][]string{
	"registry": {"OTEL_TRACES_EXPORTER=none"},
	// The garbage collector's script (registry image) finds the registry
	// binary on its PATH, as in the image's /bin; here the bin dir.
	"collector": {"OTEL_TRACES_EXPORTER=none", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:" + binMount},
}

// container is one running container process.
type container struct {
	name    string
	spec    corev1.Container
	argv    []string
	env     []string
	logPath string
	// sidecar is a restartable init container (restartPolicy Always).
	sidecar bool
	// dial reaches the pod's network, for probes; nil: the host's.
	dial dialFunc

	cmd  *exec.Cmd
	done chan struct{}
	err  error // set before done closes

	ready     bool
	lastProbe time.Time
}

// mount is one bind mount of a materialized volume in the container's
// mount namespace.
type mount struct {
	src, target string
	readOnly    bool
}

// binMount is where a container's mount namespace sees the bin dir.
const binMount = "/run/iro-dataplane-bin"

// entrypointMount is the directory where a container's mount namespace
// sees the host binary that plays its image's entrypoint (see
// Options.Entrypoints), under the binary's own name.
const entrypointMount = "/run/iro-dataplane-entrypoint"

// DockerAuthImage is the repository of the image the operator runs in
// docker_auth mode, and DockerAuthBinEnv the variable that names the host
// binary playing its entrypoint (/docker_auth/auth_server) by default.
const (
	DockerAuthImage  = "cesanta/docker_auth"
	DockerAuthBinEnv = "IRO_DOCKER_AUTH_BIN"
)

// DefaultEntrypoints maps cesanta/docker_auth to $IRO_DOCKER_AUTH_BIN (made
// absolute) when it is set; it is empty otherwise.
func DefaultEntrypoints() map[string]string {
	m := map[string]string{}
	if bin := os.Getenv(DockerAuthBinEnv); bin != "" {
		if abs, err := filepath.Abs(bin); err == nil {
			bin = abs
		}
		m[DockerAuthImage] = bin
	}
	return m
}

// imageRepository is an image reference without tag or digest, and without
// Docker Hub's implicit host and library/ prefix: "cesanta/docker_auth" for
// docker.io/cesanta/docker_auth:1.13 as for cesanta/docker_auth@sha256:...
func imageRepository(image string) string {
	repo, _, _ := strings.Cut(image, "@")
	if i := strings.LastIndex(repo, ":"); i > strings.LastIndex(repo, "/") {
		repo = repo[:i]
	}
	for _, prefix := range []string{"docker.io/", "index.docker.io/", "registry-1.docker.io/"} {
		if strings.HasPrefix(repo, prefix) {
			repo = strings.TrimPrefix(strings.TrimPrefix(repo, prefix), "library/")
			break
		}
	}
	return repo
}

// program is the executable that runs a container: the host binary to bind
// into its mount namespace, the directory to bind it at, and the path it
// has there.
type program struct {
	hostPath string // a binary, or the bin dir
	mountAt  string
	path     string
	args     []string // the rest of the command line
}

// resolveProgram finds what runs c: with a command, the binary of the same
// basename in binDir (as the image would have it on its PATH or at that
// path); without one, the host binary that entrypoints maps the image's
// repository to, followed by the args (the image's CMD is replaced by
// them, as in Kubernetes).
func resolveProgram(binDir string, entrypoints map[string]string, c *corev1.Container) (*program, error) {
	if len(c.Command) == 0 {
		repo := imageRepository(c.Image)
		bin, ok := entrypoints[repo]
		if !ok || bin == "" {
			hint := ""
			if repo == DockerAuthImage {
				hint = fmt.Sprintf("; set %s to docker_auth's auth_server binary", DockerAuthBinEnv)
			}
			return nil, fmt.Errorf("container %s has no command and the data plane knows no binary for the entrypoint of image %q (Options.Entrypoints maps %q to none%s)", c.Name, c.Image, repo, hint)
		}
		fi, err := os.Stat(bin)
		if err != nil {
			return nil, fmt.Errorf("container %s: entrypoint of image %q: %w", c.Name, c.Image, err)
		}
		if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
			return nil, fmt.Errorf("container %s: entrypoint of image %q: %s is not an executable file", c.Name, c.Image, bin)
		}
		return &program{hostPath: bin, mountAt: path.Join(entrypointMount, filepath.Base(bin)), path: path.Join(entrypointMount, filepath.Base(bin)), args: c.Args}, nil
	}
	bin := filepath.Join(binDir, path.Base(c.Command[0]))
	if _, err := os.Stat(bin); err != nil && path.Base(c.Command[0]) == "sh" {
		// A shell script (the garbage collector's): images have a shell,
		// the bin dir does not; the host's runs it, with the bin dir
		// mounted as usual for the binaries it calls.
		return &program{hostPath: binDir, mountAt: binMount, path: "/bin/sh", args: append(append([]string{}, c.Command[1:]...), c.Args...)}, nil
	}
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("container %s: command %q: %w (binaries are mapped to %s by basename)", c.Name, c.Command[0], err, binDir)
	}
	args := append(append([]string{}, c.Command[1:]...), c.Args...)
	return &program{hostPath: binDir, mountAt: binMount, path: path.Join(binMount, path.Base(bin)), args: args}, nil
}

// buildArgv returns the command line that runs the container: unshare
// makes a private mount namespace, a shell binds the program and the
// volumes at their mountPaths (and makes the root file system read-only if
// the container asks for that), and setpriv drops to the pod's user before
// exec.
func buildArgv(binDir, workDir string, entrypoints map[string]string, pod *corev1.Pod, c *corev1.Container, volumes map[string]string) ([]string, error) {
	prog, err := resolveProgram(binDir, entrypoints, c)
	if err != nil {
		return nil, err
	}
	var mounts []mount
	for _, vm := range c.VolumeMounts {
		src, ok := volumes[vm.Name]
		if !ok {
			return nil, fmt.Errorf("container %s mounts volume %q, which the pod does not define", c.Name, vm.Name)
		}
		if vm.SubPath != "" {
			src = filepath.Join(src, vm.SubPath)
		}
		mounts = append(mounts, mount{src: src, target: vm.MountPath, readOnly: vm.ReadOnly})
	}
	// Parents before children; a target that covers the work dir (such as
	// /tmp) last, so that it does not hide the sources still to be bound.
	sort.SliceStable(mounts, func(i, j int) bool {
		ci, cj := covers(mounts[i].target, workDir), covers(mounts[j].target, workDir)
		if ci != cj {
			return cj
		}
		return strings.Count(mounts[i].target, "/") < strings.Count(mounts[j].target, "/")
	})
	var sb strings.Builder
	sb.WriteString("set -e\n")
	// The program is bound at a fixed place first: the bin dir itself may
	// lie under a path a volume covers (a clone under /tmp, with an emptyDir
	// at /tmp), as an image's /usr/local/bin never would. A single binary
	// (an image's entrypoint) is bound as a file.
	if prog.mountAt == binMount {
		fmt.Fprintf(&sb, "mkdir -p %s\n", shellQuote(binMount))
	} else {
		fmt.Fprintf(&sb, "mkdir -p %s\n", shellQuote(path.Dir(prog.mountAt)))
		fmt.Fprintf(&sb, ": >>%s\n", shellQuote(prog.mountAt))
	}
	fmt.Fprintf(&sb, "mount --bind %s %s\n", shellQuote(prog.hostPath), shellQuote(prog.mountAt))
	fmt.Fprintf(&sb, "mount -o remount,bind,ro %s\n", shellQuote(prog.mountAt))
	for _, m := range mounts {
		fmt.Fprintf(&sb, "mkdir -p %s\n", shellQuote(m.target))
	}
	for _, m := range mounts {
		fmt.Fprintf(&sb, "mount --bind %s %s\n", shellQuote(m.src), shellQuote(m.target))
		if m.readOnly {
			fmt.Fprintf(&sb, "mount -o remount,bind,ro %s\n", shellQuote(m.target))
		}
	}
	sc := c.SecurityContext
	if sc != nil && sc.ReadOnlyRootFilesystem != nil && *sc.ReadOnlyRootFilesystem {
		sb.WriteString("mount -o remount,bind,ro /\n")
	}
	sb.WriteString("cd /\n")
	exec := []string{"exec"}
	if u, g, groups, ok := podUser(pod, c); ok {
		exec = append(exec, "setpriv", fmt.Sprintf("--reuid=%d", u), fmt.Sprintf("--regid=%d", g))
		if len(groups) > 0 {
			exec = append(exec, "--groups="+strings.Join(groups, ","))
		} else {
			exec = append(exec, "--clear-groups")
		}
		if sc != nil && sc.AllowPrivilegeEscalation != nil && !*sc.AllowPrivilegeEscalation {
			exec = append(exec, "--no-new-privs")
		}
		exec = append(exec, "--")
	}
	sb.WriteString(strings.Join(exec, " ") + ` "$@"` + "\n")
	argv := []string{"unshare", "-m", "--propagation", "private", "--", "/bin/sh", "-c", sb.String(), "sh", prog.path}
	argv = append(argv, prog.args...)
	return argv, nil
}

func covers(target, p string) bool {
	target = strings.TrimSuffix(target, "/")
	return p == target || strings.HasPrefix(p, target+"/")
}

func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// podUser is the uid, gid and supplementary groups the kubelet would run c
// with; ok is false when the pod asks for none (run as root, as an image
// without USER would).
func podUser(pod *corev1.Pod, c *corev1.Container) (uid, gid int64, groups []string, ok bool) {
	var u, g *int64
	if psc := pod.Spec.SecurityContext; psc != nil {
		u, g = psc.RunAsUser, psc.RunAsGroup
		if psc.FSGroup != nil {
			groups = append(groups, fmt.Sprint(*psc.FSGroup))
		}
		for _, sg := range psc.SupplementalGroups {
			groups = append(groups, fmt.Sprint(sg))
		}
	}
	if csc := c.SecurityContext; csc != nil {
		if csc.RunAsUser != nil {
			u = csc.RunAsUser
		}
		if csc.RunAsGroup != nil {
			g = csc.RunAsGroup
		}
	}
	if u == nil {
		return 0, 0, nil, false
	}
	gid = *u
	if g != nil {
		gid = *g
	}
	return *u, gid, groups, true
}

func (c *container) start() error {
	logf, err := os.OpenFile(c.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	fmt.Fprintf(logf, "=== %s: starting container %s\n", time.Now().Format(time.RFC3339Nano), c.name)
	cmd := exec.Command(c.argv[0], c.argv[1:]...)
	cmd.Env = c.env
	cmd.Stdout, cmd.Stderr = logf, logf
	// Own process group, so that stop reaches everything; killed with the
	// test binary, so that nothing outlives a crashed test.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start container %s: %w", c.name, err)
	}
	c.cmd, c.done, c.err = cmd, make(chan struct{}), nil
	c.ready = false
	go func() {
		err := cmd.Wait()
		logf.Close()
		c.err = err
		close(c.done)
	}()
	return nil
}

func (c *container) exited() bool {
	if c.done == nil {
		return true
	}
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// kill sends SIGKILL to the process group at once and waits (up to 10s)
// until the process is reaped, so that the next pass sees it exited.
func (c *container) kill() {
	if c.exited() {
		return
	}
	_ = syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
	}
}

// stop sends SIGTERM to the process group and SIGKILL after grace.
func (c *container) stop(grace time.Duration) error {
	if c.exited() {
		return nil
	}
	pgid := -c.cmd.Process.Pid
	_ = syscall.Kill(pgid, syscall.SIGTERM)
	select {
	case <-c.done:
		return nil
	case <-time.After(grace):
	}
	if err := syscall.Kill(pgid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return err
	}
	select {
	case <-c.done:
		return nil
	case <-time.After(10 * time.Second):
		return fmt.Errorf("container %s (pid %d) not reaped after SIGKILL", c.name, c.cmd.Process.Pid)
	}
}
