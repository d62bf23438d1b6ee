package tokenserver

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"

	jose "github.com/go-jose/go-jose/v4"
)

// SigningKey is the token signing key with its JWS algorithm and key ID.
type SigningKey struct {
	key crypto.Signer
	// Algorithm is ES256 for ECDSA P-256 keys and RS256 for RSA keys.
	Algorithm jose.SignatureAlgorithm
	// KeyID is the JWT "kid": the JWK thumbprint (RFC 7638, SHA-256,
	// base64url) of the public key, as the distribution registry computes
	// it to find a key of its auth.token.rootcertbundle.
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
	if thumbprint(cert.PublicKey) != k.KeyID {
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
	return &SigningKey{key: s, Algorithm: alg, KeyID: thumbprint(s.Public())}, nil
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

// thumbprint is the JWK thumbprint of a public key (RFC 7638 with SHA-256),
// computed exactly as the distribution registry (v3) does when it indexes
// the keys of its rootcertbundle. For RSA keys and for nearly all EC keys
// this is the RFC 7638 value; the registry encodes EC coordinates without
// their leading zero bytes, where RFC 7638 pads them to the curve size, so
// for the ~1 in 128 P-256 keys with a short coordinate we follow the
// registry, the party that has to find the key. The member order is the
// lexicographic one RFC 7638 prescribes.
func thumbprint(pub crypto.PublicKey) string {
	var s string
	b64 := base64.RawURLEncoding.EncodeToString
	switch k := pub.(type) {
	case *rsa.PublicKey:
		s = fmt.Sprintf(`{"e":"%s","kty":"RSA","n":"%s"}`, b64(big.NewInt(int64(k.E)).Bytes()), b64(k.N.Bytes()))
	case *ecdsa.PublicKey:
		x, y := ecCoordinates(k)
		s = fmt.Sprintf(`{"crv":"%s","kty":"EC","x":"%s","y":"%s"}`, k.Curve.Params().Name, b64(x), b64(y))
	default:
		return ""
	}
	sum := sha256.Sum256([]byte(s))
	return b64(sum[:])
}

// ecCoordinates are the minimal big-endian bytes of the public point's
// coordinates.
func ecCoordinates(k *ecdsa.PublicKey) (x, y []byte) {
	// The uncompressed point is 0x04 || X || Y with fixed-size coordinates.
	raw, err := k.Bytes()
	if err != nil {
		return nil, nil
	}
	n := (len(raw) - 1) / 2
	return new(big.Int).SetBytes(raw[1 : 1+n]).Bytes(), new(big.Int).SetBytes(raw[1+n:]).Bytes()
}
