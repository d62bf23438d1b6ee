// Package pki makes the key pairs the operator maintains: its own CA, the
// serving certificates that CA signs, and self-signed token signing
// certificates. Every key is ECDSA P-256: quick to generate on every
// renewal, accepted by Docker clients, and what registry v3 expects for ES256
// tokens.
//
// Functions take the current time as an argument so that callers with an
// injected clock (and their tests) decide what "now" is.
package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"time"
)

// backdate is subtracted from NotBefore so that a certificate is accepted by
// peers whose clocks run a little behind ours.
const backdate = 5 * time.Minute

// KeyPair is a certificate with its private key, both decoded and as PEM.
type KeyPair struct {
	Cert    *x509.Certificate
	Key     crypto.Signer
	CertPEM []byte
	KeyPEM  []byte
}

// CertOptions describes a certificate to issue.
type CertOptions struct {
	// CommonName of the subject.
	CommonName string
	// DNSNames and IPAddresses are the subject alternative names.
	DNSNames    []string
	IPAddresses []net.IP
	// Validity is the lifetime counted from Now.
	Validity time.Duration
	// Now is the issuing time.
	Now time.Time
}

// NewCA makes a self-signed CA that may sign leaf certificates only.
func NewCA(o CertOptions) (*KeyPair, error) {
	tmpl, err := template(o)
	if err != nil {
		return nil, err
	}
	tmpl.IsCA = true
	tmpl.BasicConstraintsValid = true
	tmpl.MaxPathLenZero = true
	tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature
	return issue(tmpl, nil)
}

// NewServingCert makes a TLS server certificate signed by ca.
func NewServingCert(ca *KeyPair, o CertOptions) (*KeyPair, error) {
	if ca == nil {
		return nil, errors.New("no CA to sign the serving certificate")
	}
	if len(o.DNSNames) == 0 && len(o.IPAddresses) == 0 {
		return nil, errors.New("a serving certificate needs at least one DNS name or IP address")
	}
	tmpl, err := template(o)
	if err != nil {
		return nil, err
	}
	tmpl.BasicConstraintsValid = true
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	// A leaf never outlives its issuer: clients would reject the chain anyway.
	if tmpl.NotAfter.After(ca.Cert.NotAfter) {
		tmpl.NotAfter = ca.Cert.NotAfter
	}
	return issue(tmpl, ca)
}

// NewSigningCert makes a self-signed certificate for signing tokens: the
// registry trusts it directly as its root certificate bundle.
func NewSigningCert(o CertOptions) (*KeyPair, error) {
	tmpl, err := template(o)
	if err != nil {
		return nil, err
	}
	tmpl.BasicConstraintsValid = true
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	return issue(tmpl, nil)
}

func template(o CertOptions) (*x509.Certificate, error) {
	if o.Validity <= 0 {
		return nil, errors.New("certificate validity must be positive")
	}
	if o.Now.IsZero() {
		return nil, errors.New("certificate issuing time is not set")
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("generate serial number: %w", err)
	}
	return &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: o.CommonName},
		DNSNames:     o.DNSNames,
		IPAddresses:  o.IPAddresses,
		NotBefore:    o.Now.Add(-backdate).UTC(),
		NotAfter:     o.Now.Add(o.Validity).UTC(),
	}, nil
}

func issue(tmpl *x509.Certificate, issuer *KeyPair) (*KeyPair, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate key: %w", err)
	}
	parent, signer := tmpl, crypto.Signer(key)
	if issuer != nil {
		parent, signer = issuer.Cert, issuer.Key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), signer)
	if err != nil {
		return nil, fmt.Errorf("sign certificate %q: %w", tmpl.Subject.CommonName, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parse issued certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encode key: %w", err)
	}
	return &KeyPair{
		Cert:    cert,
		Key:     key,
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
	}, nil
}

// ParseKeyPair decodes a PEM certificate (the first one of a chain) and its
// PEM private key (PKCS#8, PKCS#1 or SEC 1) and checks that they belong together.
func ParseKeyPair(certPEM, keyPEM []byte) (*KeyPair, error) {
	certs, err := ParseCertificates(certPEM)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(keyPEM)
	if block == nil {
		return nil, errors.New("no PEM private key found")
	}
	key, err := parseKey(block.Bytes)
	if err != nil {
		return nil, err
	}
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(certs[0].PublicKey) {
		return nil, errors.New("private key does not match the certificate")
	}
	return &KeyPair{Cert: certs[0], Key: key, CertPEM: certPEM, KeyPEM: keyPEM}, nil
}

func parseKey(der []byte) (crypto.Signer, error) {
	if k, err := x509.ParsePKCS8PrivateKey(der); err == nil {
		if s, ok := k.(crypto.Signer); ok {
			return s, nil
		}
		return nil, fmt.Errorf("unsupported private key type %T", k)
	}
	if k, err := x509.ParseECPrivateKey(der); err == nil {
		return k, nil
	}
	if k, err := x509.ParsePKCS1PrivateKey(der); err == nil {
		return k, nil
	}
	return nil, errors.New("unsupported or invalid private key encoding")
}

// ParseCertificates decodes every CERTIFICATE block of a PEM bundle; it
// fails when there is none.
func ParseCertificates(bundle []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for rest := bundle; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse certificate: %w", err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, errors.New("no PEM certificate found")
	}
	return certs, nil
}

// RenewalTime is when a certificate should be replaced: after two thirds of
// its lifetime, which leaves a third for retries and for pods to roll.
func RenewalTime(cert *x509.Certificate) time.Time {
	lifetime := cert.NotAfter.Sub(cert.NotBefore)
	return cert.NotBefore.Add(lifetime * 2 / 3)
}

// VerifyServing checks that a serving certificate chains to one of the
// roots in caBundle at time now and is valid for every one of dnsNames.
func VerifyServing(cert *x509.Certificate, caBundle []byte, dnsNames []string, now time.Time) error {
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caBundle) {
		return errors.New("CA bundle holds no certificate")
	}
	opts := x509.VerifyOptions{
		Roots:       roots,
		CurrentTime: now,
		KeyUsages:   []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if _, err := cert.Verify(opts); err != nil {
		return err
	}
	for _, n := range dnsNames {
		if err := cert.VerifyHostname(n); err != nil {
			return err
		}
	}
	return nil
}
