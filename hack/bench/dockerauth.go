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
	"strings"
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
// every login took before the sidecar). Every login has been verified (and
// cached by the sidecar) right before each measurement. It then times bare
// process starts at the same concurrency, without docker_auth.
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
	stopSidecar, err := b.startSidecar(ctx, full, socket, ns, filepath.Join(b.cfg.outDir, "docker-auth-sidecar.log"))
	if err != nil {
		return err
	}
	defer stopSidecar()

	labels := fmt.Sprintf(`{"labels":{"namespace":[%q],"type":["pull"]}}`, ns)
	common := []string{"--namespace=" + ns, "--kubeconfig=" + b.cp.Kubeconfig}
	with := func(extra ...string) []string { return append(append([]string(nil), common...), extra...) }
	modes := []daMode{
		{"trivial ext_auth (floor)", "a stdlib-only Go program that reads its input, prints fixed labels and exits 0: what starting any process costs", floor, []string{labels}, 2000},
		{"forwarder + sidecar", "the installed k8s-docker-authn (the forwarder) asks the sidecar, which answers from its informer and verified cache", forwarder, with("--socket=" + socket), 2000},
		{"full binary + sidecar", "k8s-docker-authn itself as the command, asking the sidecar: pays its client-go package init on every login", full, with("--socket=" + socket), 1000},
		{"forwarder, sidecar down", "the forwarder finds no socket and execs the full binary, which lists the accounts and runs bcrypt", forwarder, with("--socket=" + filepath.Join(dir, "none.sock")), 300},
		{"one-shot (before)", "k8s-docker-authn without a sidecar: a list request and a bcrypt compare per login, as every login ran before", full, with("--socket="), 300},
	}
	client := &http.Client{Timeout: time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: 2 * dockerAuthConc}}
	defer client.CloseIdleConnections()
	for i, m := range modes {
		r, err := b.measureDockerAuth(ctx, client, bin, dir, i, m, certFile, keyFile, ns, logins)
		if err != nil {
			return fmt.Errorf("docker_auth, %s: %w", m.name, err)
		}
		res.dockerAuth = append(res.dockerAuth, r)
		logf("docker_auth %s c=%d: p50 %s p99 %s, %.0f/s", m.name, r.conc, r.p50, r.p99, r.rps)
	}

	// Bare process starts at the same concurrency: what docker_auth adds
	// on top is its own request handling and token signing.
	l := logins[0]
	input := l.user + " " + l.password
	for _, p := range []daMode{
		{"trivial ext_auth", "the floor program, no docker_auth", floor, []string{labels}, 2000},
		{"forwarder + sidecar", "the forwarder asking the sidecar, no docker_auth", forwarder, with("--socket=" + socket), 2000},
		{"full binary + sidecar", "k8s-docker-authn asking the sidecar, no docker_auth", full, with("--socket=" + socket), 1000},
	} {
		if err := b.warmSidecar(ctx, socket, ns, logins); err != nil {
			return err
		}
		lat, elapsed, err := hammer(ctx, dockerAuthConc, p.reqs, func(int) error {
			cmd := exec.CommandContext(ctx, p.command, p.args...)
			cmd.Stdin = strings.NewReader(input)
			if out, err := cmd.Output(); err != nil {
				return fmt.Errorf("%s: %v: %s", p.name, err, out)
			}
			return nil
		})
		if err != nil {
			return err
		}
		r := dockerAuthResult{metric: "process start, no docker_auth", mode: p.name, note: p.note, conc: dockerAuthConc, reqs: p.reqs,
			p50: percentile(lat, 0.5), p99: percentile(lat, 0.99), rps: float64(p.reqs) / elapsed.Seconds()}
		res.dockerAuth = append(res.dockerAuth, r)
		logf("process %s c=%d: p50 %s p99 %s, %.0f/s", p.name, r.conc, r.p50, r.p99, r.rps)
	}
	return nil
}

// measureDockerAuth runs docker_auth with one ext_auth command and hammers
// its token endpoint.
func (b *bench) measureDockerAuth(ctx context.Context, client *http.Client, bin, dir string, i int, m daMode, certFile, keyFile, ns string, logins []login) (dockerAuthResult, error) {
	port, err := framework.FreePort()
	if err != nil {
		return dockerAuthResult{}, err
	}
	rules := acl.Default()
	cfg := authconfig.Config{
		Server:  authconfig.ServerConfig{Addr: fmt.Sprintf("127.0.0.1:%d", port)},
		Token:   authconfig.TokenConfig{Issuer: "bench", Expiration: 300, Certificate: certFile, Key: keyFile},
		ExtAuth: &authconfig.ExtAuthConfig{Command: m.command, Args: m.args},
		ACL:     rules,
	}
	data, err := cfg.Marshal()
	if err != nil {
		return dockerAuthResult{}, err
	}
	cfgFile := filepath.Join(dir, fmt.Sprintf("auth_config-%d.yml", i))
	if err := os.WriteFile(cfgFile, data, 0o600); err != nil {
		return dockerAuthResult{}, err
	}
	logFile, err := os.Create(filepath.Join(b.cfg.outDir, fmt.Sprintf("docker-auth-%d.log", i)))
	if err != nil {
		return dockerAuthResult{}, err
	}
	defer logFile.Close()
	cmd := exec.CommandContext(ctx, bin, "-logtostderr", cfgFile)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		return dockerAuthResult{}, err
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}()
	if err := waitListening(ctx, fmt.Sprintf("127.0.0.1:%d", port), 30*time.Second); err != nil {
		return dockerAuthResult{}, fmt.Errorf("docker_auth did not listen (log: %s): %w", logFile.Name(), err)
	}
	base := fmt.Sprintf("http://127.0.0.1:%d/auth?", port)
	q := url.Values{"service": {"registry"}, "scope": {"repository:" + ns + "/app:pull"}}.Encode()
	get := func(l login) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+q, nil)
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
	// Every login verified once (the sidecar caches it), and again right
	// before measuring: the verified cache's entries live 30 s.
	for _, l := range logins {
		if err := get(l); err != nil {
			return dockerAuthResult{}, err
		}
	}
	lat, elapsed, err := hammer(ctx, dockerAuthConc, m.reqs, func(i int) error { return get(logins[i%len(logins)]) })
	if err != nil {
		return dockerAuthResult{}, err
	}
	return dockerAuthResult{metric: "docker_auth token request", mode: m.name, note: m.note, conc: dockerAuthConc, reqs: m.reqs,
		p50: percentile(lat, 0.5), p99: percentile(lat, 0.99), rps: float64(m.reqs) / elapsed.Seconds()}, nil
}

// startSidecar runs `k8s-docker-authn --serve` for ns and waits until its
// account cache is synced. stop ends it as the kubelet does (SIGTERM).
func (b *bench) startSidecar(ctx context.Context, full, socket, ns, logPath string) (stop func(), err error) {
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(full, "--serve="+socket, "--namespace="+ns, "--kubeconfig="+b.cp.Kubeconfig)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, err
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
			return stop, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			stop()
			return nil, fmt.Errorf("the sidecar did not answer within 60s (log: %s): %v", logPath, err)
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
	cmd := exec.CommandContext(ctx, goBin, "build", "-trimpath", "-o", out, "./hack/bench/extauthfloor")
	cmd.Dir = root
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
