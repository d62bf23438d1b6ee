package tokenserver

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/image-registry-operator/image-registry-operator/pkg/tokenkey"
)

// SigningKey is the token signing key with its JWS algorithm and key ID.
type SigningKey struct {
	key crypto.Signer
	// Algorithm is ES256 for ECDSA P-256 keys and RS256 for RSA keys.
	Algorithm jose.SignatureAlgorithm
	// KeyID is the JWT "kid": the JWK thumbprint (RFC 7638) of the public
	// key, under which the registry's JWKS lists it (pkg/tokenkey).
	KeyID string
}

// Public is the public key.
func (k *SigningKey) Public() crypto.PublicKey { return k.key.Public() }

// LoadSigningKey reads a PEM private key and the PEM certificate the
// registry trusts (its auth.token.rootcertbundle), and checks that they
// belong together: a mismatch would make the registry refuse every token.
func LoadSigningKey(certFile, keyFile string) (*SigningKey, error) {
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("read token signing key: %w", err)
	}
	k, err := ParseSigningKey(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("token signing key %s: %w", keyFile, err)
	}
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, fmt.Errorf("read token certificate: %w", err)
	}
	cert, err := firstCertificate(certPEM)
	if err != nil {
		return nil, fmt.Errorf("token certificate %s: %w", certFile, err)
	}
	if pub, ok := cert.PublicKey.(interface{ Equal(crypto.PublicKey) bool }); !ok || !pub.Equal(k.Public()) {
		return nil, fmt.Errorf("token certificate %s does not belong to the signing key %s", certFile, keyFile)
	}
	return k, nil
}

// ParseSigningKey parses a PEM private key: PKCS#8 ("PRIVATE KEY"), PKCS#1
// ("RSA PRIVATE KEY") or SEC 1 ("EC PRIVATE KEY"). ECDSA keys must be on
// P-256, RSA keys at least 2048 bits.
func ParseSigningKey(data []byte) (*SigningKey, error) {
	var block *pem.Block
	for {
		block, data = pem.Decode(data)
		if block == nil {
			return nil, errors.New("no PEM private key found")
		}
		if block.Type == "PRIVATE KEY" || block.Type == "RSA PRIVATE KEY" || block.Type == "EC PRIVATE KEY" {
			break
		}
	}
	var (
		key any
		err error
	)
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	}
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", block.Type, err)
	}
	return NewSigningKey(key)
}

// NewSigningKey wraps an *ecdsa.PrivateKey (P-256) or *rsa.PrivateKey.
func NewSigningKey(key any) (*SigningKey, error) {
	var alg jose.SignatureAlgorithm
	switch k := key.(type) {
	case *ecdsa.PrivateKey:
		if k.Curve != elliptic.P256() {
			return nil, fmt.Errorf("ECDSA key on %s: only P-256 (ES256) is supported", k.Curve.Params().Name)
		}
		alg = jose.ES256
	case *rsa.PrivateKey:
		if k.N.BitLen() < 2048 {
			return nil, fmt.Errorf("RSA key of %d bits: at least 2048 are required", k.N.BitLen())
		}
		alg = jose.RS256
	default:
		return nil, fmt.Errorf("unsupported key type %T: use ECDSA P-256 or RSA", key)
	}
	s := key.(crypto.Signer)
	kid, err := tokenkey.Thumbprint(s.Public())
	if err != nil {
		return nil, err
	}
	return &SigningKey{key: s, Algorithm: alg, KeyID: kid}, nil
}

func firstCertificate(data []byte) (*x509.Certificate, error) {
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return nil, errors.New("no PEM certificate found")
		}
		if block.Type == "CERTIFICATE" {
			return x509.ParseCertificate(block.Bytes)
		}
	}
}
