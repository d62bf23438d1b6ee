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
			if !fullCoordinates(tc.key.Public()) {
				t.Skip("short EC coordinate: see TestThumbprintShortCoordinate")
			}
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

func fullCoordinates(pub crypto.PublicKey) bool {
	ec, ok := pub.(*ecdsa.PublicKey)
	if !ok {
		return true
	}
	x, y := ecCoordinates(ec)
	return len(x) == 32 && len(y) == 32
}

// TestThumbprintRFC7638 checks the example of RFC 7638 section 3.1.
func TestThumbprintRFC7638(t *testing.T) {
	n, err := base64.RawURLEncoding.DecodeString("0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw")
	if err != nil {
		t.Fatal(err)
	}
	pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: 65537}
	if got, want := thumbprint(pub), "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"; got != want {
		t.Errorf("thumbprint %s, want %s", got, want)
	}
}

// TestThumbprintShortCoordinate pins the registry-compatible encoding of an
// EC key whose X coordinate has a leading zero byte: the registry (v3.1)
// drops it, so the kid must too.
func TestThumbprintShortCoordinate(t *testing.T) {
	var key *ecdsa.PrivateKey
	for {
		key, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if x, _ := ecCoordinates(&key.PublicKey); len(x) < 32 {
			break
		}
	}
	x, y := ecCoordinates(&key.PublicKey)
	b64 := base64.RawURLEncoding.EncodeToString
	want := sha256b64(`{"crv":"P-256","kty":"EC","x":"` + b64(x) + `","y":"` + b64(y) + `"}`)
	if got := thumbprint(&key.PublicKey); got != want {
		t.Errorf("thumbprint %s, want %s", got, want)
	}
}
