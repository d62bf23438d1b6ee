package dataplane

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

func TestImageRepository(t *testing.T) {
	for image, want := range map[string]string{
		"cesanta/docker_auth:1.13":                       "cesanta/docker_auth",
		"cesanta/docker_auth":                            "cesanta/docker_auth",
		"docker.io/cesanta/docker_auth:1.13":             "cesanta/docker_auth",
		"index.docker.io/cesanta/docker_auth:1.13":       "cesanta/docker_auth",
		"cesanta/docker_auth@sha256:0123abcd":            "cesanta/docker_auth",
		"cesanta/docker_auth:1.13@sha256:0123abcd":       "cesanta/docker_auth",
		"docker.io/library/registry:3":                   "registry",
		"registry.example.org:5000/team/docker_auth:1.0": "registry.example.org:5000/team/docker_auth",
		"registry.example.org:5000/team/docker_auth":     "registry.example.org:5000/team/docker_auth",
	} {
		if got := imageRepository(image); got != want {
			t.Errorf("imageRepository(%q) = %q, want %q", image, got, want)
		}
	}
}

func TestDefaultEntrypoints(t *testing.T) {
	t.Setenv(DockerAuthBinEnv, "")
	if got := DefaultEntrypoints(); len(got) != 0 {
		t.Errorf("without %s: %v, want none", DockerAuthBinEnv, got)
	}
	t.Setenv(DockerAuthBinEnv, "tools/auth_server")
	wd, _ := os.Getwd()
	want := filepath.Join(wd, "tools", "auth_server")
	if got := DefaultEntrypoints()[DockerAuthImage]; got != want {
		t.Errorf("with a relative %s: %q, want %q", DockerAuthBinEnv, got, want)
	}
}

// dockerAuthPod is the shape of the operator's docker_auth pod: an init
// container with a command, a container without one.
func dockerAuthPod() *corev1.Pod {
	return &corev1.Pod{Spec: corev1.PodSpec{
		SecurityContext: &corev1.PodSecurityContext{RunAsUser: ptr.To[int64](65532), RunAsGroup: ptr.To[int64](65532), FSGroup: ptr.To[int64](65532)},
		InitContainers: []corev1.Container{{
			Name: "install-ext-auth", Image: "example.org/operator:v1",
			Command:      []string{"/usr/local/bin/k8s-docker-authn", "--install-to", "/ext-auth/k8s-docker-authn"},
			VolumeMounts: []corev1.VolumeMount{{Name: "ext-auth", MountPath: "/ext-auth"}},
		}},
		Containers: []corev1.Container{{
			Name: "auth", Image: "cesanta/docker_auth:1.13",
			Args:            []string{"--logtostderr", "/etc/registry-auth/auth_config.yml"},
			VolumeMounts:    []corev1.VolumeMount{{Name: "ext-auth", MountPath: "/ext-auth", ReadOnly: true}},
			SecurityContext: &corev1.SecurityContext{ReadOnlyRootFilesystem: ptr.To(true), AllowPrivilegeEscalation: ptr.To(false)},
		}},
	}}
}

func executable(t *testing.T, p string) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestBuildArgvEntrypoint(t *testing.T) {
	dir := t.TempDir()
	binDir := filepath.Join(dir, "bin")
	executable(t, filepath.Join(binDir, "k8s-docker-authn"))
	authServer := executable(t, filepath.Join(dir, "tools", "auth_server"))
	pod := dockerAuthPod()
	volumes := map[string]string{"ext-auth": filepath.Join(dir, "ext-auth")}
	entrypoints := map[string]string{DockerAuthImage: authServer}

	argv, err := buildArgv(binDir, dir, entrypoints, pod, &pod.Spec.Containers[0], volumes)
	if err != nil {
		t.Fatal(err)
	}
	// ... "sh", program, args...
	i := slices.Index(argv, "sh")
	if i < 0 {
		t.Fatalf("no program in %q", argv)
	}
	wantTail := []string{"/run/iro-dataplane-entrypoint/auth_server", "--logtostderr", "/etc/registry-auth/auth_config.yml"}
	if got := argv[i+1:]; !slices.Equal(got, wantTail) {
		t.Errorf("program and args %q, want %q", got, wantTail)
	}
	script := argv[i-1]
	for _, want := range []string{
		"mount --bind '" + authServer + "' '/run/iro-dataplane-entrypoint/auth_server'\n",
		"mount -o remount,bind,ro '/run/iro-dataplane-entrypoint/auth_server'\n",
		"mount --bind '" + volumes["ext-auth"] + "' '/ext-auth'\nmount -o remount,bind,ro '/ext-auth'\n",
		"mount -o remount,bind,ro /\n",
		"exec setpriv --reuid=65532 --regid=65532 --groups=65532 --no-new-privs -- \"$@\"\n",
	} {
		if !strings.Contains(script, want) {
			t.Errorf("script lacks %q:\n%s", want, script)
		}
	}
	if strings.Contains(script, binDir) {
		t.Errorf("an entrypoint container needs no bin dir:\n%s", script)
	}

	// The init container runs from the bin dir, as containers with a command do.
	argv, err = buildArgv(binDir, dir, entrypoints, pod, &pod.Spec.InitContainers[0], volumes)
	if err != nil {
		t.Fatal(err)
	}
	i = slices.Index(argv, "sh")
	wantTail = []string{"/run/iro-dataplane-bin/k8s-docker-authn", "--install-to", "/ext-auth/k8s-docker-authn"}
	if got := argv[i+1:]; !slices.Equal(got, wantTail) {
		t.Errorf("init container: program and args %q, want %q", got, wantTail)
	}
	if script := argv[i-1]; !strings.Contains(script, "mount --bind '"+volumes["ext-auth"]+"' '/ext-auth'\n") || strings.Contains(script, "remount,bind,ro '/ext-auth'") {
		t.Errorf("init container: want /ext-auth bound writable:\n%s", script)
	}
}

func TestBuildArgvEntrypointErrors(t *testing.T) {
	dir := t.TempDir()
	pod := dockerAuthPod()
	c := &pod.Spec.Containers[0]
	volumes := map[string]string{"ext-auth": dir}
	for name, tc := range map[string]struct {
		entrypoints map[string]string
		want        string
	}{
		"unmapped":       {nil, "set " + DockerAuthBinEnv},
		"missing binary": {map[string]string{DockerAuthImage: filepath.Join(dir, "nope")}, "no such file"},
		"not executable": {map[string]string{DockerAuthImage: dir}, "not an executable file"},
	} {
		_, err := buildArgv(dir, dir, tc.entrypoints, pod, c, volumes)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", name, err, tc.want)
		}
	}
}

// testContainer runs a shell line as a container process (no mount
// namespace: runInit does not care how a container runs).
func testContainer(t *testing.T, name, script string) *container {
	return &container{name: name, argv: []string{"/bin/sh", "-c", script}, logPath: filepath.Join(t.TempDir(), name+".log")}
}

func TestRunInitInOrder(t *testing.T) {
	marks := filepath.Join(t.TempDir(), "marks")
	first := testContainer(t, "first", "sleep 0.2; echo first >>"+marks)
	second := testContainer(t, "second", "echo second >>"+marks)
	if err := runInit(context.Background(), []*container{first, second}, time.Second); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(marks)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(b); got != "first\nsecond\n" {
		t.Errorf("init containers ran as %q, want first to complete before second starts", got)
	}
}

func TestRunInitStopsAtFailure(t *testing.T) {
	marks := filepath.Join(t.TempDir(), "marks")
	failing := testContainer(t, "failing", "echo failing >>"+marks+"; exit 3")
	next := testContainer(t, "next", "echo next >>"+marks)
	err := runInit(context.Background(), []*container{failing, next}, time.Second)
	if err == nil || !strings.Contains(err.Error(), "init container failing failed") || !strings.Contains(err.Error(), "exit status 3") {
		t.Fatalf("error %v, want init container failing failed with exit status 3", err)
	}
	if b, _ := os.ReadFile(marks); string(b) != "failing\n" {
		t.Errorf("ran %q, want only the failing init container", b)
	}
}

func TestRunInitCancel(t *testing.T) {
	hang := testContainer(t, "hang", "exec sleep 60")
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := runInit(ctx, []*container{hang}, time.Second)
	if err == nil || !strings.Contains(err.Error(), "deadline exceeded") {
		t.Fatalf("error %v, want the context's", err)
	}
	if !hang.exited() {
		t.Error("the init container still runs after the cancel")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("cancel took %s", d)
	}
}

func TestRunInitSidecar(t *testing.T) {
	marks := filepath.Join(t.TempDir(), "marks")
	sidecar := testContainer(t, "sidecar", "echo sidecar >>"+marks+"; exec sleep 60")
	sidecar.sidecar = true
	after := testContainer(t, "after", "echo after >>"+marks)
	t.Cleanup(func() { _ = sidecar.stop(time.Second) })
	if err := runInit(context.Background(), []*container{sidecar, after}, time.Second); err != nil {
		t.Fatal(err)
	}
	if sidecar.exited() {
		t.Error("the sidecar stopped; it should run beside the containers")
	}
	if !after.exited() || after.err != nil {
		t.Errorf("the init container after the sidecar did not complete: %v", after.err)
	}

	dead := testContainer(t, "dead", "exit 1")
	dead.sidecar = true
	// Nothing listens on port 1: the probe fails until the process is gone.
	dead.spec.StartupProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(1)}}, PeriodSeconds: 1}
	if err := runInit(context.Background(), []*container{dead}, time.Second); err == nil || !strings.Contains(err.Error(), "exited before it started") {
		t.Errorf("a sidecar that exits before its startup probe passes: error %v", err)
	}
}

// podWith is a running pod of test containers whose directory is a temp dir.
func podWith(t *testing.T, uid string, inits, containers []*container) *runningPod {
	rp := newRunningPod(types.UID(uid), "registry-0", t.TempDir(), "")
	rp.initContainers, rp.containers = inits, containers
	return rp
}

// checkUntil runs kubelet passes (checkContainersLocked) until cond holds.
func checkUntil(t *testing.T, r *Runner, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; problems: %q", what, r.problems)
		}
		r.mu.Lock()
		for _, p := range r.sortedPodsLocked() {
			r.checkContainersLocked(context.Background(), p)
		}
		r.mu.Unlock()
		time.Sleep(20 * time.Millisecond)
	}
}

func TestInitFailureBackoff(t *testing.T) {
	r := &Runner{opts: Options{Logf: t.Logf, MaxStopGrace: time.Second, InitBackoff: 50 * time.Millisecond, MaxInitBackoff: 80 * time.Millisecond}}
	marks := filepath.Join(t.TempDir(), "marks")
	main := func() *container { return testContainer(t, "main", "echo main >>"+marks+"; exec sleep 60") }
	t.Cleanup(func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		for _, p := range r.sortedPodsLocked() {
			_ = r.stopPodLocked(p)
		}
	})

	for attempt, wantWait := range []time.Duration{50 * time.Millisecond, 80 * time.Millisecond} {
		r.mu.Lock()
		r.launchLocked(podWith(t, "uid-1", []*container{testContainer(t, "install", "exit 1")}, []*container{main()}))
		r.mu.Unlock()
		checkUntil(t, r, "the failed pod to stop", func() bool { r.mu.Lock(); defer r.mu.Unlock(); return len(r.pods) == 0 })
		if len(r.problems) != attempt+1 || !strings.Contains(r.problems[attempt], "init container install failed: exit status 1") {
			t.Fatalf("problems %q, want %d reporting the failed init container", r.problems, attempt+1)
		}
		if b := r.initFailed["uid-1"]; b == nil || b.failures != attempt+1 || b.wait != wantWait {
			t.Fatalf("back-off %+v after %d failures, want a wait of %s", b, attempt+1, wantWait)
		}
		// The same pod is not started again before the back-off ends.
		r.mu.Lock()
		err := r.startPodLocked(context.Background(), &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "registry-0", UID: "uid-1"}})
		r.mu.Unlock()
		if err == nil || !strings.Contains(err.Error(), "back-off") {
			t.Fatalf("start during the back-off: %v", err)
		}
		time.Sleep(wantWait)
	}
	if _, err := os.Stat(marks); err == nil {
		t.Fatal("a container started although the init container failed")
	}

	// Init containers that succeed: the containers start, the back-off is gone.
	r.mu.Lock()
	r.launchLocked(podWith(t, "uid-1", []*container{testContainer(t, "install", "exit 0")}, []*container{main()}))
	r.mu.Unlock()
	checkUntil(t, r, "the container to start", func() bool { _, err := os.Stat(marks); return err == nil })
	r.mu.Lock()
	defer r.mu.Unlock()
	if p := r.pods["uid-1"]; len(r.initFailed) != 0 || p == nil || !p.started {
		t.Errorf("after a successful init: back-off %+v, pod %+v", r.initFailed, p)
	}
}
