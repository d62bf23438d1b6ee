package tokenserver

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// writeKeyPair writes a PEM key (in the given block type) and a self-signed
// certificate for it, returning the file names.
func writeKeyPair(t testing.TB, key crypto.Signer, blockType string) (certFile, keyFile string) {
	t.Helper()
	var der []byte
	var err error
	switch blockType {
	case "PRIVATE KEY":
		der, err = x509.MarshalPKCS8PrivateKey(key)
	case "RSA PRIVATE KEY":
		der = x509.MarshalPKCS1PrivateKey(key.(*rsa.PrivateKey))
	case "EC PRIVATE KEY":
		der, err = x509.MarshalECPrivateKey(key.(*ecdsa.PrivateKey))
	}
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "token signer"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	certDER, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: blockType, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: certDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

func TestLoadSigningKey(t *testing.T) {
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	for _, tc := range []struct {
		name      string
		key       crypto.Signer
		blockType string
		alg       jose.SignatureAlgorithm
	}{
		{"EC SEC1", ec, "EC PRIVATE KEY", jose.ES256},
		{"EC PKCS8", ec, "PRIVATE KEY", jose.ES256},
		{"RSA PKCS1", rsaKey, "RSA PRIVATE KEY", jose.RS256},
		{"RSA PKCS8", rsaKey, "PRIVATE KEY", jose.RS256},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k, err := LoadSigningKey(writeKeyPair(t, tc.key, tc.blockType))
			if err != nil {
				t.Fatal(err)
			}
			if k.Algorithm != tc.alg {
				t.Errorf("algorithm %s, want %s", k.Algorithm, tc.alg)
			}
			want, _ := (&jose.JSONWebKey{Key: tc.key.Public()}).Thumbprint(crypto.SHA256)
			if k.KeyID != base64.RawURLEncoding.EncodeToString(want) {
				t.Errorf("kid %s, want the RFC 7638 thumbprint %s", k.KeyID, base64.RawURLEncoding.EncodeToString(want))
			}
		})
	}

	t.Run("certificate of another key", func(t *testing.T) {
		other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		certFile, _ := writeKeyPair(t, other, "EC PRIVATE KEY")
		_, keyFile := writeKeyPair(t, ec, "EC PRIVATE KEY")
		if _, err := LoadSigningKey(certFile, keyFile); err == nil || !strings.Contains(err.Error(), "does not belong") {
			t.Errorf("mismatch not detected: %v", err)
		}
	})
	t.Run("P-384 refused", func(t *testing.T) {
		p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		if _, err := LoadSigningKey(writeKeyPair(t, p384, "EC PRIVATE KEY")); err == nil || !strings.Contains(err.Error(), "P-256") {
			t.Errorf("P-384 key: %v", err)
		}
	})
	t.Run("short RSA refused", func(t *testing.T) {
		small, _ := rsa.GenerateKey(rand.Reader, 1024)
		if _, err := NewSigningKey(small); err == nil {
			t.Error("1024-bit RSA key accepted")
		}
	})
	t.Run("no key", func(t *testing.T) {
		if _, err := ParseSigningKey([]byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")); err == nil {
			t.Error("accepted a file without a key")
		}
	})
}
