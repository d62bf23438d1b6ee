package pki

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"strings"
	"testing"
	"time"
)

var now = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func TestServingCertVerifiesWithCA(t *testing.T) {
	ca, err := NewCA(CertOptions{CommonName: "test CA", Validity: 10 * 365 * 24 * time.Hour, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	if !ca.Cert.IsCA || !ca.Cert.MaxPathLenZero {
		t.Fatalf("CA certificate is not a leaf-only CA: IsCA=%v MaxPathLenZero=%v", ca.Cert.IsCA, ca.Cert.MaxPathLenZero)
	}
	names := []string{"reg.ns.example.org", "reg.ns.svc"}
	leaf, err := NewServingCert(ca, CertOptions{CommonName: names[0], DNSNames: names, Validity: 90 * 24 * time.Hour, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifyServing(leaf.Cert, ca.CertPEM, names, now); err != nil {
		t.Fatalf("serving certificate does not verify with its CA: %v", err)
	}
	if err := VerifyServing(leaf.Cert, ca.CertPEM, []string{"other.example.org"}, now); err == nil {
		t.Fatal("certificate verified for a name it does not hold")
	}
	if err := VerifyServing(leaf.Cert, ca.CertPEM, names, now.Add(91*24*time.Hour)); err == nil {
		t.Fatal("certificate verified after its expiry")
	}
	other, _ := NewCA(CertOptions{CommonName: "other CA", Validity: time.Hour, Now: now})
	if err := VerifyServing(leaf.Cert, other.CertPEM, names, now); err == nil {
		t.Fatal("certificate verified with a foreign CA")
	}

	// A real TLS handshake with the PEM output, trusting only the CA.
	pair, err := tls.X509KeyPair(leaf.CertPEM, leaf.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	srv, cli := net.Pipe()
	defer srv.Close()
	defer cli.Close()
	go func() {
		s := tls.Server(srv, &tls.Config{Certificates: []tls.Certificate{pair}})
		_ = s.Handshake()
	}()
	c := tls.Client(cli, &tls.Config{RootCAs: pool, ServerName: names[1], Time: func() time.Time { return now }})
	if err := c.Handshake(); err != nil {
		t.Fatalf("TLS handshake with CA trust failed: %v", err)
	}
}

func TestServingCertNeverOutlivesCA(t *testing.T) {
	ca, _ := NewCA(CertOptions{CommonName: "short CA", Validity: 24 * time.Hour, Now: now})
	leaf, err := NewServingCert(ca, CertOptions{DNSNames: []string{"a"}, Validity: 90 * 24 * time.Hour, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	if leaf.Cert.NotAfter.After(ca.Cert.NotAfter) {
		t.Fatalf("leaf expires %v after CA %v", leaf.Cert.NotAfter, ca.Cert.NotAfter)
	}
}

func TestParseKeyPair(t *testing.T) {
	a, _ := NewSigningCert(CertOptions{CommonName: "a", Validity: time.Hour, Now: now})
	b, _ := NewSigningCert(CertOptions{CommonName: "b", Validity: time.Hour, Now: now})
	got, err := ParseKeyPair(a.CertPEM, a.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	if got.Cert.Subject.CommonName != "a" {
		t.Fatalf("parsed CN %q", got.Cert.Subject.CommonName)
	}
	if _, err := ParseKeyPair(a.CertPEM, b.KeyPEM); err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Fatalf("mismatched key accepted: %v", err)
	}
	if _, err := ParseKeyPair([]byte("garbage"), a.KeyPEM); err == nil {
		t.Fatal("garbage certificate accepted")
	}
	if _, err := ParseKeyPair(a.CertPEM, []byte("garbage")); err == nil {
		t.Fatal("garbage key accepted")
	}
}

func TestSigningCertIsNotCA(t *testing.T) {
	s, err := NewSigningCert(CertOptions{CommonName: "token", Validity: time.Hour, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	if s.Cert.IsCA {
		t.Fatal("token signing certificate must not be a CA")
	}
	if s.Cert.PublicKeyAlgorithm != x509.ECDSA {
		t.Fatalf("want ECDSA, got %v", s.Cert.PublicKeyAlgorithm)
	}
}

func TestRenewalTime(t *testing.T) {
	c, _ := NewSigningCert(CertOptions{Validity: 90 * time.Hour, Now: now})
	got := RenewalTime(c.Cert)
	lifetime := c.Cert.NotAfter.Sub(c.Cert.NotBefore)
	want := c.Cert.NotBefore.Add(lifetime * 2 / 3)
	if !got.Equal(want) {
		t.Fatalf("renewal at %v, want %v", got, want)
	}
	if !got.After(now) || !got.Before(c.Cert.NotAfter) {
		t.Fatalf("renewal %v not within the lifetime", got)
	}
}

func TestInvalidOptions(t *testing.T) {
	if _, err := NewCA(CertOptions{Validity: 0, Now: now}); err == nil {
		t.Fatal("zero validity accepted")
	}
	if _, err := NewCA(CertOptions{Validity: time.Hour}); err == nil {
		t.Fatal("zero time accepted")
	}
	ca, _ := NewCA(CertOptions{Validity: time.Hour, Now: now})
	if _, err := NewServingCert(ca, CertOptions{Validity: time.Hour, Now: now}); err == nil {
		t.Fatal("serving certificate without names accepted")
	}
	if _, err := NewServingCert(nil, CertOptions{DNSNames: []string{"a"}, Validity: time.Hour, Now: now}); err == nil {
		t.Fatal("serving certificate without CA accepted")
	}
}
