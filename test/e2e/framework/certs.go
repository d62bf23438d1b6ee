package framework

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

const (
	// AdminUser and AdminGroup are the identity of the generated client
	// certificate. system:masters bypasses RBAC, as the kubeadm admin does.
	AdminUser  = "iro-e2e-admin"
	AdminGroup = "system:masters"

	// certValidity is generous because hack/localcluster may keep a control
	// plane for days; certBackdate tolerates small clock differences.
	certValidity = 365 * 24 * time.Hour
	certBackdate = time.Hour
)

// pki holds the paths of the generated key material and the PEM bytes the
// kubeconfig embeds.
type pki struct {
	CACertFile string

	ServingCertFile string
	ServingKeyFile  string

	AdminCertPEM []byte
	AdminKeyPEM  []byte
	CACertPEM    []byte

	// ServiceAccountKeyFile is an RSA private key: kube-apiserver signs
	// tokens with it and verifies them with its public half, and
	// kube-controller-manager signs legacy token Secrets with it.
	ServiceAccountKeyFile    string
	ServiceAccountPubKeyFile string
}

// generatePKI writes a self-signed CA, a serving certificate for the
// loopback kube-apiserver (also reused by kube-controller-manager), an admin
// client certificate and a service-account key pair into dir.
//
// ECDSA P-256 keeps generation fast; the service-account key is RSA because
// that is what every Kubernetes token consumer supports.
func generatePKI(dir string) (*pki, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating %s: %w", dir, err)
	}
	now := time.Now()

	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating CA key: %w", err)
	}
	caTemplate := &x509.Certificate{
		Subject:               pkix.Name{CommonName: "iro-e2e-ca"},
		NotBefore:             now.Add(-certBackdate),
		NotAfter:              now.Add(certValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caCert, caCertPEM, err := signCertificate(caTemplate, caTemplate, caKey.Public(), caKey)
	if err != nil {
		return nil, fmt.Errorf("self-signing CA: %w", err)
	}

	servingKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating serving key: %w", err)
	}
	servingTemplate := &x509.Certificate{
		Subject:     pkix.Name{CommonName: "kube-apiserver"},
		NotBefore:   now.Add(-certBackdate),
		NotAfter:    now.Add(certValidity),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		// The in-cluster names and the first service IP cost nothing and keep
		// clients that resolve "kubernetes.default.svc" happy.
		DNSNames: []string{
			"localhost", "kubernetes", "kubernetes.default",
			"kubernetes.default.svc", "kubernetes.default.svc.cluster.local",
		},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback, net.IPv4(10, 0, 0, 1)},
	}
	_, servingCertPEM, err := signCertificate(servingTemplate, caCert, servingKey.Public(), caKey)
	if err != nil {
		return nil, fmt.Errorf("signing serving certificate: %w", err)
	}

	adminKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating admin key: %w", err)
	}
	adminTemplate := &x509.Certificate{
		Subject:     pkix.Name{CommonName: AdminUser, Organization: []string{AdminGroup}},
		NotBefore:   now.Add(-certBackdate),
		NotAfter:    now.Add(certValidity),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	_, adminCertPEM, err := signCertificate(adminTemplate, caCert, adminKey.Public(), caKey)
	if err != nil {
		return nil, fmt.Errorf("signing admin certificate: %w", err)
	}

	saKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("generating service-account key: %w", err)
	}
	saPubDER, err := x509.MarshalPKIXPublicKey(saKey.Public())
	if err != nil {
		return nil, fmt.Errorf("encoding service-account public key: %w", err)
	}

	caKeyPEM, err := privateKeyPEM(caKey)
	if err != nil {
		return nil, err
	}
	servingKeyPEM, err := privateKeyPEM(servingKey)
	if err != nil {
		return nil, err
	}
	adminKeyPEM, err := privateKeyPEM(adminKey)
	if err != nil {
		return nil, err
	}
	saKeyPEM, err := privateKeyPEM(saKey)
	if err != nil {
		return nil, err
	}

	p := &pki{
		CACertFile:               filepath.Join(dir, "ca.crt"),
		ServingCertFile:          filepath.Join(dir, "serving.crt"),
		ServingKeyFile:           filepath.Join(dir, "serving.key"),
		ServiceAccountKeyFile:    filepath.Join(dir, "sa.key"),
		ServiceAccountPubKeyFile: filepath.Join(dir, "sa.pub"),
		AdminCertPEM:             adminCertPEM,
		AdminKeyPEM:              adminKeyPEM,
		CACertPEM:                caCertPEM,
	}
	// The CA key is kept so that a developer can sign more client
	// certificates for a running hack/localcluster.
	files := []struct {
		path string
		data []byte
	}{
		{p.CACertFile, caCertPEM},
		{filepath.Join(dir, "ca.key"), caKeyPEM},
		{p.ServingCertFile, servingCertPEM},
		{p.ServingKeyFile, servingKeyPEM},
		{filepath.Join(dir, "admin.crt"), adminCertPEM},
		{filepath.Join(dir, "admin.key"), adminKeyPEM},
		{p.ServiceAccountKeyFile, saKeyPEM},
		{p.ServiceAccountPubKeyFile, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: saPubDER})},
	}
	for _, f := range files {
		if err := os.WriteFile(f.path, f.data, 0o600); err != nil {
			return nil, fmt.Errorf("writing %s: %w", f.path, err)
		}
	}
	return p, nil
}

// signCertificate signs template with the issuer's key and returns the parsed
// certificate (needed as the parent of later certificates) and its PEM.
func signCertificate(template, parent *x509.Certificate, pub crypto.PublicKey, signer crypto.Signer) (*x509.Certificate, []byte, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, nil, fmt.Errorf("generating serial number: %w", err)
	}
	template.SerialNumber = serial
	der, err := x509.CreateCertificate(rand.Reader, template, parent, pub, signer)
	if err != nil {
		return nil, nil, fmt.Errorf("creating certificate %q: %w", template.Subject.CommonName, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, fmt.Errorf("parsing certificate %q: %w", template.Subject.CommonName, err)
	}
	return cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), nil
}

// privateKeyPEM encodes a key as PKCS#8, which every consumer here (Go's TLS
// stack, kube-apiserver, kube-controller-manager) reads for RSA and ECDSA.
func privateKeyPEM(key crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encoding private key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}
