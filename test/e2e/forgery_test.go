//go:build e2e

package e2e

// TestForgedTokensAreRefused: the real distribution registry, configured as
// the operator configures it (auth.token.jwks listing one registry's token
// key, no rootcertbundle), refuses tokens that another tenant signs with its
// own key, whether they carry an x5c chain to an issuer both tenants share,
// a kid, or an embedded JWK. The same registry configured as before the fix
// (rootcertbundle = the token Secret's tls.crt with the issuer's chain, as
// cert-manager writes it) accepts the x5c forgery: the test shows both, so
// that it fails if the fix is undone (security review, finding 1).
//
//	go test -tags e2e -run Forged -v ./test/e2e/

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/image-registry-operator/image-registry-operator/pkg/pki"
	"github.com/image-registry-operator/image-registry-operator/pkg/tokenkey"
)

// signToken signs registry token claims for authService/authIssuer with
// key; header holds extra JWS header fields (kid, x5c).
func signToken(t *testing.T, key crypto.Signer, header map[string]any, embedJWK bool) string {
	t.Helper()
	opts := &jose.SignerOptions{EmbedJWK: embedJWK}
	for k, v := range header {
		opts = opts.WithHeader(jose.HeaderKey(k), v)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, opts.WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	claims, _ := json.Marshal(map[string]any{
		"iss": authIssuer, "sub": "attacker", "aud": authService,
		"exp": now.Add(5 * time.Minute).Unix(), "nbf": now.Add(-time.Minute).Unix(), "iat": now.Unix(),
		"jti":    fmt.Sprint(now.UnixNano()),
		"access": []map[string]any{{"type": "repository", "name": "victim/app", "actions": []string{"pull", "push", "delete"}}},
	})
	jws, err := signer.Sign(claims)
	if err != nil {
		t.Fatal(err)
	}
	s, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestForgedTokensAreRefused(t *testing.T) {
	registryBin, _ := dataPlaneTools(t)
	dir := t.TempDir()
	caFile, certFile, keyFile, _, _ := testPKI(t, dir)

	// One issuer's intermediate signs both tenants' token keys.
	opts := pki.CertOptions{CommonName: "shared intermediate", Validity: 24 * time.Hour, Now: time.Now()}
	inter, err := pki.NewCA(opts)
	if err != nil {
		t.Fatal(err)
	}
	leaf := func(name string) *pki.KeyPair {
		o := opts
		o.CommonName, o.DNSNames = name+" token signing", []string{name}
		kp, err := pki.NewServingCert(inter, o)
		if err != nil {
			t.Fatal(err)
		}
		return kp
	}
	victim, attacker := leaf("victim"), leaf("attacker")
	b64 := base64.StdEncoding.EncodeToString
	victimKID, _ := tokenkey.Thumbprint(victim.Key.Public())
	attackerKID, _ := tokenkey.Thumbprint(attacker.Key.Public())
	tokens := []struct {
		name  string
		token string
		valid bool
	}{
		{"victim's own token", signToken(t, victim.Key, map[string]any{"kid": victimKID}, false), true},
		{"x5c chain to the shared intermediate", signToken(t, attacker.Key, map[string]any{"x5c": []string{b64(attacker.Cert.Raw), b64(inter.Cert.Raw)}}, false), false},
		{"attacker's kid", signToken(t, attacker.Key, map[string]any{"kid": attackerKID}, false), false},
		{"victim's kid, attacker's signature", signToken(t, attacker.Key, map[string]any{"kid": victimKID}, false), false},
		{"embedded JWK", signToken(t, attacker.Key.(*ecdsa.PrivateKey), nil, true), false},
	}

	jwks, err := tokenkey.KeySet(victim.Key.Public())
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{
		"jwks.json": jwks,
		// What the registry trusted before: the Secret's whole tls.crt.
		"bundle.crt": append(append([]byte{}, victim.CertPEM...), inter.CertPEM...),
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}

	pool := x509.NewCertPool()
	caPEM, _ := os.ReadFile(caFile)
	pool.AppendCertsFromPEM(caPEM)
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}

	for _, cfg := range []struct {
		name          string
		trust         string
		acceptsForged string // the one forgery this configuration accepts, if any
	}{
		{"operator config (jwks)", "jwks: " + filepath.Join(dir, "jwks.json"), ""},
		{"before the fix (rootcertbundle with chain)", "rootcertbundle: " + filepath.Join(dir, "bundle.crt"), "x5c chain to the shared intermediate"},
	} {
		t.Run(cfg.name, func(t *testing.T) {
			regDir := t.TempDir()
			port := freePort(t)
			cfgFile := writeRegistryConfig(t, regDir, port, "https://localhost:1/auth", certFile, keyFile, cfg.trust)
			startRegistry(t, t.Context(), registryBin, regDir, cfgFile, port, caFile)
			for _, tok := range tokens {
				req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("https://localhost:%d/v2/", port), nil)
				req.Header.Set("Authorization", "Bearer "+tok.token)
				resp, err := hc.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				accepted := resp.StatusCode == http.StatusOK
				want := tok.valid || tok.name == cfg.acceptsForged
				if accepted != want {
					t.Errorf("%s: status %d, want accepted=%v", tok.name, resp.StatusCode, want)
				} else {
					t.Logf("%s: status %d, as expected", tok.name, resp.StatusCode)
				}
			}
		})
	}
}
