//go:build e2e

package e2e

// TestAuthDataPlane shows that the real distribution registry (v3) accepts
// the tokens of the builtin token server: the token server runs in-process
// from a docker_auth-format config file, authenticating against
// ImageRegistryAccounts served by a fake clientset; the registry and crane
// run as the binaries hack/build-tools.sh builds, over TLS verified with a
// test CA.
//
//	go test -tags e2e -run Auth -v ./test/e2e/

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/image-registry-operator/image-registry-operator/pkg/acl"
	registryv1alpha1 "github.com/image-registry-operator/image-registry-operator/pkg/apis/registry/v1alpha1"
	"github.com/image-registry-operator/image-registry-operator/pkg/authconfig"
	"github.com/image-registry-operator/image-registry-operator/pkg/authn"
	"github.com/image-registry-operator/image-registry-operator/pkg/generated/clientset/versioned/fake"
	informers "github.com/image-registry-operator/image-registry-operator/pkg/generated/informers/externalversions"
	"github.com/image-registry-operator/image-registry-operator/pkg/pki"
	"github.com/image-registry-operator/image-registry-operator/pkg/tokenkey"
	"github.com/image-registry-operator/image-registry-operator/pkg/tokenserver"
	"github.com/image-registry-operator/image-registry-operator/test/e2e/framework"
)

const (
	authNS      = "registry"
	authService = "myreg.registry.svc.cluster.local"
	authIssuer  = "registry-auth.registry"
)

// dataPlaneTools returns the registry and crane binaries, building them with
// hack/build-tools.sh when they are missing.
func dataPlaneTools(t *testing.T) (registry, crane string) {
	root, err := framework.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	binDir, err := framework.DefaultBinDir()
	if err != nil {
		t.Fatal(err)
	}
	registry = filepath.Join(binDir, "registry")
	crane = filepath.Join(binDir, "crane")
	if fileExists(registry) && fileExists(crane) {
		return registry, crane
	}
	script := filepath.Join(root, "hack", "build-tools.sh")
	if !fileExists(script) {
		t.Fatalf("%s and %s are missing and there is no %s to build them", registry, crane, script)
	}
	t.Logf("building registry and crane with %s", script)
	cmd := exec.Command(script, "registry", "crane")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build tools: %v\n%s", err, out)
	}
	return registry, crane
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func writePEM(t *testing.T, file, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// testPKI writes a CA, a serving certificate for localhost signed by it, and
// a self-signed token signing certificate. The signing key is chosen with a
// short X coordinate (a leading zero byte), the case where a thumbprint
// computed without padding (as the registry does for a rootcertbundle)
// differs from RFC 7638's, so that this test also pins that the kid the
// token server signs with is the one the JWKS (pkg/tokenkey) lists.
func testPKI(t *testing.T, dir string) (caFile, certFile, keyFile, signCertFile, signKeyFile string) {
	t.Helper()
	// The CA and serving certificate come from pkg/pki, as the operator's do.
	opts := pki.CertOptions{CommonName: "test CA", Validity: 24 * time.Hour, Now: time.Now()}
	ca, err := pki.NewCA(opts)
	if err != nil {
		t.Fatal(err)
	}
	opts.CommonName, opts.DNSNames, opts.IPAddresses = "localhost", []string{"localhost"}, []net.IP{net.ParseIP("127.0.0.1")}
	srv, err := pki.NewServingCert(ca, opts)
	if err != nil {
		t.Fatal(err)
	}
	caFile, certFile, keyFile = filepath.Join(dir, "ca.crt"), filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	for file, data := range map[string][]byte{caFile: ca.CertPEM, certFile: srv.CertPEM, keyFile: srv.KeyPEM} {
		if err := os.WriteFile(file, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}

	// The signing key is chosen by hand (see above), so its certificate is too.
	var signKey *ecdsa.PrivateKey
	for {
		signKey, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		raw, _ := signKey.PublicKey.Bytes()
		if raw[1] == 0 { // X starts with a zero byte
			break
		}
	}
	signTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(3), Subject: pkix.Name{CommonName: "token signer"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature,
	}
	signDER, err := x509.CreateCertificate(rand.Reader, signTmpl, signTmpl, signKey.Public(), signKey)
	if err != nil {
		t.Fatal(err)
	}
	signCertFile, signKeyFile = filepath.Join(dir, "token.crt"), filepath.Join(dir, "token.key")
	writePEM(t, signCertFile, "CERTIFICATE", signDER)
	signKeyDER, _ := x509.MarshalPKCS8PrivateKey(signKey)
	writePEM(t, signKeyFile, "PRIVATE KEY", signKeyDER)
	return
}

// writeRegistryConfig writes a distribution registry config in the shape
// the registry controller renders, on 127.0.0.1:port with TLS, trusting
// tokens as trust says ("jwks: FILE", or the old "rootcertbundle: FILE").
func writeRegistryConfig(t *testing.T, dir string, port int, realm, certFile, keyFile, trust string) string {
	t.Helper()
	cfg := fmt.Sprintf(`version: 0.1
log:
  level: info
storage:
  filesystem:
    rootdirectory: %s
http:
  addr: 127.0.0.1:%d
  secret: e2e-test-secret
  tls:
    certificate: %s
    key: %s
auth:
  token:
    realm: %s
    service: %s
    issuer: %s
    %s
`, filepath.Join(dir, "storage"), port, certFile, keyFile, realm, authService, authIssuer, trust)
	file := filepath.Join(dir, "registry.yml")
	if err := os.WriteFile(file, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return file
}

// jwksFile writes the JWKS that trusts the token key pair's key, as the
// registry controller renders it.
func jwksFile(t *testing.T, dir, certFile, keyFile string) string {
	t.Helper()
	k, err := tokenserver.LoadSigningKey(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	jwks, err := tokenkey.KeySet(k.Public())
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "jwks.json")
	if err := os.WriteFile(file, jwks, 0o600); err != nil {
		t.Fatal(err)
	}
	return file
}

func freePort(t *testing.T) int {
	port, err := framework.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return port
}

func rotatingAccount(t *testing.T, name, username string, rotation int64, typ, namespace, password string) *registryv1alpha1.ImageRegistryAccount {
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := bcrypt.GenerateFromPassword([]byte("next-"+password), bcrypt.MinCost)
	return &registryv1alpha1.ImageRegistryAccount{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: authNS},
		Spec: registryv1alpha1.ImageRegistryAccountSpec{
			Username:  username,
			Rotation:  &rotation,
			Passwords: []string{string(h), string(other)}, // [current, next]
			Labels:    map[string][]string{"namespace": {namespace}, "name": {"app"}, "type": {typ}},
		},
	}
}

// startTokenServer loads the rendered-style config and serves it over TLS on
// localhost:port.
func startTokenServer(t *testing.T, ctx context.Context, configFile string, accounts ...*registryv1alpha1.ImageRegistryAccount) {
	t.Helper()
	cfg, err := authconfig.Load(configFile)
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.IsOurExtAuth() {
		t.Fatal("config does not name our ext_auth")
	}
	opts, err := authn.ParseArgs(cfg.ExtAuth.Args)
	if err != nil {
		t.Fatal(err)
	}
	client := fake.NewSimpleClientset()
	for _, a := range accounts {
		if _, err := client.RegistryV1alpha1().ImageRegistryAccounts(authNS).Create(ctx, a, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	factory := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithNamespace(opts.Namespace))
	a, err := authn.New(factory.Registry().V1alpha1().ImageRegistryAccounts(), opts)
	if err != nil {
		t.Fatal(err)
	}
	factory.Start(ctx.Done())
	t.Cleanup(factory.Shutdown)
	if !cache.WaitForCacheSync(ctx.Done(), a.HasSynced) {
		t.Fatal("account cache not synced")
	}
	srv, err := tokenserver.NewFromConfig(cfg, a, a.HasSynced)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", cfg.Server.Addr)
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = hs.ServeTLS(l, cfg.Server.Certificate, cfg.Server.Key) }()
	t.Cleanup(func() { _ = hs.Close() })
}

func startRegistry(t *testing.T, ctx context.Context, bin, dir, configFile string, port int, caFile string) {
	t.Helper()
	logFile, err := os.Create(filepath.Join(dir, "registry.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, bin, "serve", configFile)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Env = append(os.Environ(), "OTEL_TRACES_EXPORTER=none", "OTEL_SDK_DISABLED=true")
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
		logFile.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logFile.Name())
			t.Logf("registry log:\n%s", tail(string(b), 4000))
		}
	})

	pool := x509.NewCertPool()
	caPEM, _ := os.ReadFile(caFile)
	pool.AppendCertsFromPEM(caPEM)
	hc := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := hc.Get(fmt.Sprintf("https://localhost:%d/v2/", port))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(resp.Header.Get("WWW-Authenticate"), "Bearer") {
				t.Fatalf("registry /v2/: %d %q, want a 401 Bearer challenge", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("registry not up: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// layerTar is a one-file layer.
func layerTar(t *testing.T, dir string) string {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	content := []byte("hello from the auth data plane test\n")
	_ = tw.WriteHeader(&tar.Header{Name: "hello.txt", Mode: 0o644, Size: int64(len(content)), ModTime: time.Unix(0, 0)})
	_, _ = tw.Write(content)
	_ = tw.Close()
	f := filepath.Join(dir, "layer.tar")
	if err := os.WriteFile(f, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

type craneRunner struct {
	bin, caFile, registry string
}

// run runs crane with a docker config.json holding user's credentials.
func (c craneRunner) run(t *testing.T, user, password string, args ...string) (string, error) {
	t.Helper()
	cfgDir := t.TempDir()
	if user != "" {
		auth := base64.StdEncoding.EncodeToString([]byte(user + ":" + password))
		b, _ := json.Marshal(map[string]any{"auths": map[string]any{c.registry: map[string]string{"auth": auth}}})
		if err := os.WriteFile(filepath.Join(cfgDir, "config.json"), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.bin, args...)
	cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+cfgDir, "SSL_CERT_FILE="+c.caFile, "HOME="+cfgDir)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestAuthDataPlane(t *testing.T) {
	registryBin, craneBin := dataPlaneTools(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir := t.TempDir()
	caFile, certFile, keyFile, signCert, signKey := testPKI(t, dir)
	authPort, regPort := freePort(t), freePort(t)

	// The auth config, in the shape the registry controller renders.
	authCfg := &authconfig.Config{
		Server:  authconfig.ServerConfig{Addr: fmt.Sprintf("127.0.0.1:%d", authPort), Certificate: certFile, Key: keyFile},
		Token:   authconfig.TokenConfig{Issuer: authIssuer, Expiration: 300, Certificate: signCert, Key: signKey},
		ExtAuth: &authconfig.ExtAuthConfig{Command: "/ext-auth/" + authconfig.ExtAuthCommand, Args: []string{"--namespace=" + authNS}},
		ACL:     acl.Default(),
	}
	b, err := authCfg.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	authCfgFile := filepath.Join(dir, "auth_config.yml")
	if err := os.WriteFile(authCfgFile, b, 0o600); err != nil {
		t.Fatal(err)
	}
	startTokenServer(t, ctx, authCfgFile,
		rotatingAccount(t, "team-app-push", "team/app", 2, "push", "team", "push-password"),
		rotatingAccount(t, "team-app-pull", "team/app", 5, "pull", "team", "pull-password"),
		rotatingAccount(t, "other-app-push", "other/app", 1, "push", "other", "other-password"),
	)

	regCfgFile := writeRegistryConfig(t, dir, regPort, fmt.Sprintf("https://localhost:%d/auth", authPort), certFile, keyFile, "jwks: "+jwksFile(t, dir, signCert, signKey))
	startRegistry(t, ctx, registryBin, dir, regCfgFile, regPort, caFile)

	host := fmt.Sprintf("localhost:%d", regPort)
	crane := craneRunner{bin: craneBin, caFile: caFile, registry: host}
	layer := layerTar(t, dir)
	image := host + "/team/web:v1"

	mustSucceed := func(what, out string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v\n%s", what, err, out)
		}
	}
	mustFail := func(what, out string, err error, anyOf ...string) {
		t.Helper()
		if err == nil {
			t.Fatalf("%s succeeded:\n%s", what, out)
		}
		for _, s := range anyOf {
			if strings.Contains(out, s) {
				t.Logf("%s refused as expected: %s", what, tail(strings.TrimSpace(out), 300))
				return
			}
		}
		t.Fatalf("%s failed, but not with any of %q:\n%s", what, anyOf, out)
	}
	denied := []string{"DENIED", "UNAUTHORIZED", "401", "403"}

	// Push account: push and pull its own namespace.
	out, err := crane.run(t, "team/app/2", "push-password", "append", "-f", layer, "-t", image)
	mustSucceed("push account push", out, err)
	digest, err := crane.run(t, "team/app/2", "push-password", "digest", image)
	mustSucceed("push account digest", digest, err)
	out, err = crane.run(t, "team/app/2", "push-password", "pull", image, filepath.Join(dir, "push-pulled.tar"))
	mustSucceed("push account pull", out, err)

	// Pull account (same username, other rotation): pull, but no push.
	out, err = crane.run(t, "team/app/5", "pull-password", "pull", image, filepath.Join(dir, "pull-pulled.tar"))
	mustSucceed("pull account pull", out, err)
	out, err = crane.run(t, "team/app/5", "pull-password", "append", "-f", layer, "-t", host+"/team/web:by-pull-account")
	mustFail("pull account push", out, err, denied...)

	// Wrong password and wrong rotation: refused by the token server.
	out, err = crane.run(t, "team/app/2", "wrong-password", "pull", image, filepath.Join(dir, "x.tar"))
	mustFail("wrong password pull", out, err, "401", "UNAUTHORIZED", "invalid credentials")
	out, err = crane.run(t, "team/app/3", "push-password", "pull", image, filepath.Join(dir, "x.tar"))
	mustFail("wrong rotation pull", out, err, "401", "UNAUTHORIZED", "invalid credentials")

	// Another namespace's push account: nothing in team/*, its own namespace works.
	out, err = crane.run(t, "other/app/1", "other-password", "pull", image, filepath.Join(dir, "x.tar"))
	mustFail("other namespace pull", out, err, denied...)
	out, err = crane.run(t, "other/app/1", "other-password", "append", "-f", layer, "-t", host+"/team/web:by-other")
	mustFail("other namespace push", out, err, denied...)
	out, err = crane.run(t, "other/app/1", "other-password", "append", "-f", layer, "-t", host+"/other/web:v1")
	mustSucceed("other namespace push to its own namespace", out, err)

	// Anonymous: nothing.
	out, err = crane.run(t, "", "", "pull", image, filepath.Join(dir, "x.tar"))
	mustFail("anonymous pull", out, err, denied...)
}
