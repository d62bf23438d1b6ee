package framework

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"os"
	"slices"
	"testing"
)

func TestGeneratePKI(t *testing.T) {
	p, err := generatePKI(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(p.CACertPEM) {
		t.Fatal("CA PEM holds no certificate")
	}

	serving, err := tls.LoadX509KeyPair(p.ServingCertFile, p.ServingKeyFile)
	if err != nil {
		t.Fatalf("loading serving pair: %v", err)
	}
	for _, host := range []string{"127.0.0.1", "localhost", "kubernetes.default.svc"} {
		_, err := serving.Leaf.Verify(x509.VerifyOptions{
			DNSName:   host,
			Roots:     roots,
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		})
		if err != nil {
			t.Errorf("serving certificate not valid for %s: %v", host, err)
		}
	}

	admin, err := tls.X509KeyPair(p.AdminCertPEM, p.AdminKeyPEM)
	if err != nil {
		t.Fatalf("loading admin pair: %v", err)
	}
	if _, err := admin.Leaf.Verify(x509.VerifyOptions{
		Roots:     roots,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}); err != nil {
		t.Errorf("admin certificate not valid for client auth: %v", err)
	}
	if admin.Leaf.Subject.CommonName != AdminUser || !slices.Contains(admin.Leaf.Subject.Organization, AdminGroup) {
		t.Errorf("admin subject = %v, want CN=%s O=%s", admin.Leaf.Subject, AdminUser, AdminGroup)
	}

	for _, f := range []string{p.ServiceAccountKeyFile, p.ServiceAccountPubKeyFile} {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		block, _ := pem.Decode(data)
		if block == nil {
			t.Fatalf("%s holds no PEM block", f)
		}
		switch block.Type {
		case "PRIVATE KEY":
			_, err = x509.ParsePKCS8PrivateKey(block.Bytes)
		case "PUBLIC KEY":
			_, err = x509.ParsePKIXPublicKey(block.Bytes)
		default:
			t.Fatalf("%s: unexpected PEM type %q", f, block.Type)
		}
		if err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}
