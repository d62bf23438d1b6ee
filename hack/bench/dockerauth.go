package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/crypto/bcrypt"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/image-registry-operator/image-registry-operator/pkg/acl"
	registryv1alpha1 "github.com/image-registry-operator/image-registry-operator/pkg/apis/registry/v1alpha1"
	"github.com/image-registry-operator/image-registry-operator/pkg/authconfig"
	"github.com/image-registry-operator/image-registry-operator/pkg/extauth"
	"github.com/image-registry-operator/image-registry-operator/test/e2e/framework"
)

// dockerAuthConc is the concurrency of the docker_auth measurements, the
// same as the builtin token server's c=8 rows.
const dockerAuthConc = 8

// dockerAuthResult is one docker_auth (or bare process start) measurement.
type dockerAuthResult struct {
	metric, mode, note string
	conc, reqs         int
	p50, p99           time.Duration
	rps                float64
}

// daMode is one ext_auth command for docker_auth.
type daMode struct {
	name, note string
	command    string
	args       []string
	reqs       int
}

// dockerAuthBench measures token requests through the real docker_auth
// (--docker-auth-bin) at concurrency 8 with each ext_auth command: the
// trivial one (the floor: a process start), the installed forwarder asking
// the sidecar, the full binary asking the sidecar, the forwarder with no
// sidecar (its fallback), and the full binary on its own (the one-shot path
// every login took before the sidecar). One docker_auth per command runs
// throughout; the commands take turns in daRounds rounds, so that load from
// elsewhere on the machine falls on all of them alike, and every login is
// verified with the sidecar (and cached) right before each round. CPU per
// request is read from /proc: docker_auth's own, its waited-for children's
// (the ext_auth processes) and the sidecar's. It then times bare process
// starts at the same concurrency, without docker_auth, the same way.
func (b *bench) dockerAuthBench(ctx context.Context, ns string, logins []login, res *results) error {
	bin := b.cfg.dockerAuthBin
	if bin == "" {
		logf("docker_auth: not measured (set IRO_DOCKER_AUTH_BIN or --docker-auth-bin)")
		return nil
	}
	// A short path: the socket's path is limited to 108 bytes.
	dir, err := os.MkdirTemp("", "iro-da")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	certFile, keyFile, err := writeTokenKey(dir)
	if err != nil {
		return err
	}

	// ext_auth as the pod's init container installs it: the forwarder as
	// k8s-docker-authn, the full binary beside it as its fallback.
	full := filepath.Join(b.cfg.binDir, "k8s-docker-authn")
	extDir := filepath.Join(dir, "ext-auth")
	if err := os.Mkdir(extDir, 0o755); err != nil {
		return err
	}
	forwarder := filepath.Join(extDir, "k8s-docker-authn")
	if out, err := exec.CommandContext(ctx, full, "--install-to", forwarder).CombinedOutput(); err != nil {
		return fmt.Errorf("%s --install-to: %v: %s", full, err, out)
	}
	if _, err := os.Stat(filepath.Join(extDir, extauth.FullBinary)); err != nil {
		return fmt.Errorf("no %s beside %s (make build makes it): %w", extauth.ForwarderBinary, full, err)
	}
	floor, err := buildFloor(ctx, dir)
	if err != nil {
		return err
	}

	socket := filepath.Join(dir, "authn.sock")
	stopSidecar, sidecarPID, err := b.startSidecar(ctx, full, socket, ns, filepath.Join(b.cfg.outDir, "docker-auth-sidecar.log"))
	if err != nil {
		return err
	}
	defer stopSidecar()

	labels := fmt.Sprintf(`{"labels":{"namespace":[%q],"type":["pull"]}}`, ns)
	common := []string{"--namespace=" + ns, "--kubeconfig=" + b.cp.Kubeconfig}
	with := func(extra ...string) []string { return append(append([]string(nil), common...), extra...) }
	modes := []daMode{
		{"trivial ext_auth (floor: a Go process)", "a stdlib-only static Go program that reads its input, prints fixed labels and exits 0: what starting any Go process costs", floor, []string{labels}, 2000},
		{"forwarder + sidecar", "the installed k8s-docker-authn (the forwarder) asks the sidecar, which answers from its informer and verified cache", forwarder, with("--socket=" + socket), 2000},
		{"full binary + sidecar", "k8s-docker-authn itself as the command, asking the sidecar: pays its client-go package init on every login", full, with("--socket=" + socket), 1000},
		{"forwarder, sidecar down", "the forwarder finds no socket and execs the full binary, which lists the accounts and runs bcrypt", forwarder, with("--socket=" + filepath.Join(dir, "none.sock")), 300},
		{"one-shot (before)", "k8s-docker-authn without a sidecar: a list request and a bcrypt compare per login, as every login ran before", full, with("--socket="), 300},
	}
	// The cheapest process there is: a C program that does nothing (no
	// labels, so docker_auth issues a token without access; still 200).
	if t, err := exec.LookPath("true"); err == nil {
		modes = append([]daMode{{"true(1) (floor: any process)", "the system's true(1), dynamically linked C: exits 0 without reading its input or printing labels", t, nil, 2000}}, modes...)
	}
	client := &http.Client{Timeout: time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: 2 * dockerAuthConc}}
	defer client.CloseIdleConnections()
	runs := make([]*daRun, 0, len(modes))
	defer func() {
		for _, r := range runs {
			r.stop()
		}
	}()
	for i, m := range modes {
		r, err := b.startDockerAuth(ctx, bin, dir, i, m, certFile, keyFile, ns)
		if err != nil {
			return fmt.Errorf("docker_auth, %s: %w", m.name, err)
		}
		runs = append(runs, r)
	}
	// Every login through every docker_auth once: each mode answers, and
	// the sidecar has verified every login.
	for _, r := range runs {
		for _, l := range logins {
			if err := r.get(ctx, client, l); err != nil {
				return fmt.Errorf("docker_auth, %s: %w", r.name, err)
			}
		}
	}
	// Rounds interleave the modes, so that load from elsewhere on the
	// machine falls on all of them alike.
	for round := 0; round < daRounds; round++ {
		for _, r := range runs {
			// The verified cache's entries live 30 s from their bcrypt
			// compare: verify every login again before each round.
			if err := b.warmSidecar(ctx, socket, ns, logins); err != nil {
				return err
			}
			n := r.reqs / daRounds
			self0, children0 := cpuSplit(r.cmd.Process.Pid)
			sc0 := cpuSeconds(sidecarPID)
			lat, elapsed, err := hammer(ctx, dockerAuthConc, n, func(i int) error { return r.get(ctx, client, logins[(round*n+i)%len(logins)]) })
			if err != nil {
				return fmt.Errorf("docker_auth, %s: %w", r.name, err)
			}
			self1, children1 := cpuSplit(r.cmd.Process.Pid)
			r.add(lat, elapsed, self1-self0, children1-children0, cpuSeconds(sidecarPID)-sc0)
		}
	}
	for _, r := range runs {
		d := r.result("docker_auth token request", "docker_auth", r.daSelf, "ext_auth processes", r.daChildren, "sidecar", r.sidecar)
		res.dockerAuth = append(res.dockerAuth, d)
		logf("docker_auth %s c=%d: p50 %s p99 %s, %.0f/s", r.name, d.conc, d.p50, d.p99, d.rps)
	}

	// Bare process starts at the same concurrency: what docker_auth adds
	// on top is its own request handling and token signing.
	l := logins[0]
	input := l.user + " " + l.password
	var procs []*daRun
	for _, m := range []daMode{
		{"trivial ext_auth", "the floor program, no docker_auth", floor, []string{labels}, 2000},
		{"forwarder + sidecar", "the forwarder asking the sidecar, no docker_auth", forwarder, with("--socket=" + socket), 2000},
		{"full binary + sidecar", "k8s-docker-authn asking the sidecar, no docker_auth", full, with("--socket=" + socket), 1000},
	} {
		procs = append(procs, &daRun{daMode: m})
	}
	for round := 0; round < daRounds; round++ {
		for _, r := range procs {
			if err := b.warmSidecar(ctx, socket, ns, logins); err != nil {
				return err
			}
			var mu sync.Mutex
			var procCPU time.Duration
			sc0 := cpuSeconds(sidecarPID)
			lat, elapsed, err := hammer(ctx, dockerAuthConc, r.reqs/daRounds, func(int) error {
				cmd := exec.CommandContext(ctx, r.command, r.args...)
				cmd.Stdin = strings.NewReader(input)
				if out, err := cmd.Output(); err != nil {
					return fmt.Errorf("%s: %v: %s", r.name, err, out)
				}
				mu.Lock()
				procCPU += cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
				mu.Unlock()
				return nil
			})
			if err != nil {
				return err
			}
			r.add(lat, elapsed, 0, procCPU.Seconds(), cpuSeconds(sidecarPID)-sc0)
		}
	}
	for _, r := range procs {
		d := r.result("process start, no docker_auth", "the process", r.daChildren, "sidecar", r.sidecar)
		res.dockerAuth = append(res.dockerAuth, d)
		logf("process %s c=%d: p50 %s p99 %s, %.0f/s", r.name, d.conc, d.p50, d.p99, d.rps)
	}
	return nil
}

// daRounds is how many rounds the modes take turns in.
const daRounds = 10

// daRun is one mode's docker_auth (none for bare process starts) and what
// its rounds measured.
type daRun struct {
	daMode
	cmd     *exec.Cmd
	logFile *os.File
	url     string

	lat                         []time.Duration
	elapsed                     time.Duration
	daSelf, daChildren, sidecar float64 // CPU seconds
}

func (r *daRun) add(lat []time.Duration, elapsed time.Duration, self, children, sidecar float64) {
	r.lat = append(r.lat, lat...)
	r.elapsed += elapsed
	r.daSelf += self
	r.daChildren += children
	r.sidecar += sidecar
}

// result summarizes the rounds; cpu names CPU seconds spent by whom.
func (r *daRun) result(metric string, cpu ...any) dockerAuthResult {
	sort.Slice(r.lat, func(i, j int) bool { return r.lat[i] < r.lat[j] })
	n := len(r.lat)
	var parts []string
	for i := 0; i+1 < len(cpu); i += 2 {
		parts = append(parts, fmt.Sprintf("%s %.2f ms", cpu[i], 1000*cpu[i+1].(float64)/float64(n)))
	}
	note := fmt.Sprintf("%s; CPU per request: %s", r.note, strings.Join(parts, ", "))
	return dockerAuthResult{metric: metric, mode: r.name, note: note, conc: dockerAuthConc, reqs: n,
		p50: percentile(r.lat, 0.5), p99: percentile(r.lat, 0.99), rps: float64(n) / r.elapsed.Seconds()}
}

// startDockerAuth runs docker_auth with the mode's ext_auth command on a
// free port and waits until it listens.
func (b *bench) startDockerAuth(ctx context.Context, bin, dir string, i int, m daMode, certFile, keyFile, ns string) (*daRun, error) {
	port, err := framework.FreePort()
	if err != nil {
		return nil, err
	}
	cfg := authconfig.Config{
		Server:  authconfig.ServerConfig{Addr: fmt.Sprintf("127.0.0.1:%d", port)},
		Token:   authconfig.TokenConfig{Issuer: "bench", Expiration: 300, Certificate: certFile, Key: keyFile},
		ExtAuth: &authconfig.ExtAuthConfig{Command: m.command, Args: m.args},
		ACL:     acl.Default(),
	}
	data, err := cfg.Marshal()
	if err != nil {
		return nil, err
	}
	cfgFile := filepath.Join(dir, fmt.Sprintf("auth_config-%d.yml", i))
	if err := os.WriteFile(cfgFile, data, 0o600); err != nil {
		return nil, err
	}
	logFile, err := os.Create(filepath.Join(b.cfg.outDir, fmt.Sprintf("docker-auth-%d.log", i)))
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, bin, "-logtostderr", cfgFile)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, err
	}
	r := &daRun{daMode: m, cmd: cmd, logFile: logFile,
		url: fmt.Sprintf("http://127.0.0.1:%d/auth?", port) + url.Values{"service": {"registry"}, "scope": {"repository:" + ns + "/app:pull"}}.Encode()}
	if err := waitListening(ctx, fmt.Sprintf("127.0.0.1:%d", port), 30*time.Second); err != nil {
		r.stop()
		return nil, fmt.Errorf("docker_auth did not listen (log: %s): %w", logFile.Name(), err)
	}
	return r, nil
}

// get asks docker_auth for a token.
func (r *daRun) get(ctx context.Context, client *http.Client, l login) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.url, nil)
	if err != nil {
		return err
	}
	req.SetBasicAuth(l.user, l.password)
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "token") {
		return fmt.Errorf("token request for %s: %s %s", l.user, resp.Status, strings.TrimSpace(string(body)))
	}
	return nil
}

func (r *daRun) stop() {
	if r.cmd == nil {
		return
	}
	_ = r.cmd.Process.Kill()
	_ = r.cmd.Wait()
	r.logFile.Close()
	r.cmd = nil
}

// cpuSplit is the CPU time of pid itself and of its waited-for children
// (utime+stime, cutime+cstime), in seconds.
func cpuSplit(pid int) (self, children float64) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 15 {
		return 0, 0
	}
	var v [4]float64
	for i := range v {
		v[i], _ = strconv.ParseFloat(f[11+i], 64)
	}
	return (v[0] + v[1]) / clockTicks, (v[2] + v[3]) / clockTicks
}

// startSidecar runs `k8s-docker-authn --serve` for ns and waits until its
// account cache is synced. stop ends it as the kubelet does (SIGTERM).
func (b *bench) startSidecar(ctx context.Context, full, socket, ns, logPath string) (stop func(), pid int, err error) {
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, 0, err
	}
	cmd := exec.Command(full, "--serve="+socket, "--namespace="+ns, "--kubeconfig="+b.cp.Kubeconfig)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, 0, err
	}
	stop = func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		logFile.Close()
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := extauth.Ask(socket, extauth.Request{Namespace: ns, User: "bench-probe", Password: "-"}, time.Second)
		if err == nil && resp.Status != extauth.Unavailable {
			return stop, cmd.Process.Pid, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			stop()
			return nil, 0, fmt.Errorf("the sidecar did not answer within 60s (log: %s): %v", logPath, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// warmSidecar verifies every login with the sidecar, so that its cache
// holds them for the next measurement.
func (b *bench) warmSidecar(ctx context.Context, socket, ns string, logins []login) error {
	for _, l := range logins {
		resp, err := extauth.Ask(socket, extauth.Request{Namespace: ns, User: l.user, Password: l.password}, 10*time.Second)
		if err != nil {
			return err
		}
		if resp.Status != extauth.Allowed {
			return fmt.Errorf("sidecar: login %s: %s", l.user, resp.Status)
		}
	}
	return ctx.Err()
}

// buildFloor builds hack/bench/extauthfloor into dir.
func buildFloor(ctx context.Context, dir string) (string, error) {
	root, err := framework.RepoRoot()
	if err != nil {
		return "", err
	}
	goBin := os.Getenv("GO")
	if goBin == "" {
		goBin = "go"
	}
	out := filepath.Join(dir, "extauthfloor")
	cmd := exec.CommandContext(ctx, goBin, "build", "-trimpath", "-o", out, "./extauthfloor")
	cmd.Dir = filepath.Join(root, "hack", "bench") // its own module
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build the floor program: %v: %s", err, b)
	}
	return out, nil
}

// writeTokenKey writes a fresh ECDSA P-256 token signing key pair.
func writeTokenKey(dir string) (certFile, keyFile string, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "bench token signer"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return "", "", err
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return "", "", err
	}
	certFile, keyFile = filepath.Join(dir, "token.crt"), filepath.Join(dir, "token.key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		return "", "", err
	}
	return certFile, keyFile, os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}), 0o600)
}

func waitListening(ctx context.Context, addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// dockerAuthOnly is --docker-auth-only: the docker_auth measurements alone,
// over accounts made by the bench (as the operator makes them) instead of
// a scale run's.
func (b *bench) dockerAuthOnly(ctx context.Context, res *results) error {
	const ns, n = "docker-auth-bench", 16
	if _, err := b.kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		return err
	}
	var logins []login
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("app-%d", i)
		cur, next := randomPassword(), randomPassword()
		var hashes []string
		for _, p := range []string{cur, next} {
			h, err := bcrypt.GenerateFromPassword([]byte(p), b.cfg.bcryptCost)
			if err != nil {
				return err
			}
			hashes = append(hashes, string(h))
		}
		rotation := int64(1)
		acc := &registryv1alpha1.ImageRegistryAccount{
			ObjectMeta: metav1.ObjectMeta{Name: "pull." + ns + "." + name},
			Spec: registryv1alpha1.ImageRegistryAccountSpec{
				Username: ns + "/" + name, Rotation: &rotation, Passwords: hashes,
				Labels: map[string][]string{"namespace": {ns}, "name": {name}, "type": {"pull"}},
			},
		}
		if _, err := b.reg.RegistryV1alpha1().ImageRegistryAccounts(ns).Create(ctx, acc, metav1.CreateOptions{}); err != nil {
			return err
		}
		logins = append(logins, login{user: ns + "/" + name + "/1", password: cur})
	}
	if b.cfg.dockerAuthBin == "" {
		return errors.New("--docker-auth-only needs --docker-auth-bin or IRO_DOCKER_AUTH_BIN")
	}
	return b.dockerAuthBench(ctx, ns, logins, res)
}

func randomPassword() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return fmt.Sprintf("%x", b)
}
