// Package tokenkey names token signing keys the way the token servers do
// and writes the JSON Web Key Set (JWKS) that the distribution registry
// trusts (its auth.token.jwks).
//
// The registry looks a token's "kid" header up in that set and nowhere
// else: the operator renders no auth.token.rootcertbundle, so a token that
// carries a certificate chain (x5c) instead of a known kid is refused, and
// only the keys the operator put in the set are trusted.
//
// The two token servers name a key differently:
//   - the builtin token server (pkg/tokenserver) uses the RFC 7638 JWK
//     thumbprint (SHA-256, base64url);
//   - docker_auth 1.13 uses the legacy libtrust key id: base32 of the first
//     240 bits of SHA-256 over the DER SubjectPublicKeyInfo, in 12 groups
//     of 4 characters joined by ':'.
//
// KeySet lists every key under both names, so the same set serves both.
package tokenkey

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base32"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	jose "github.com/go-jose/go-jose/v4"
)

// Thumbprint is the RFC 7638 JWK thumbprint (SHA-256, base64url without
// padding) of a public key: the kid of the builtin token server.
func Thumbprint(pub crypto.PublicKey) (string, error) {
	if err := checkType(pub); err != nil {
		return "", err
	}
	sum, err := (&jose.JSONWebKey{Key: pub}).Thumbprint(crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("JWK thumbprint: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(sum), nil
}

// LegacyKeyID is the libtrust key id of a public key: the kid of
// docker_auth 1.13.
func LegacyKeyID(pub crypto.PublicKey) (string, error) {
	if err := checkType(pub); err != nil {
		return "", err
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("encode public key: %w", err)
	}
	sum := sha256.Sum256(der)
	// 240 bits are 30 bytes: 48 base32 characters, no padding.
	s := base32.StdEncoding.EncodeToString(sum[:30])
	groups := make([]string, 0, len(s)/4)
	for i := 0; i < len(s); i += 4 {
		groups = append(groups, s[i:i+4])
	}
	return strings.Join(groups, ":"), nil
}

// KeySet renders the JWKS that trusts keys: each one under its thumbprint
// and under its legacy key id, in the order given, without duplicates.
func KeySet(keys ...crypto.PublicKey) ([]byte, error) {
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{}}
	seen := map[string]bool{}
	for _, k := range keys {
		alg, err := algorithm(k)
		if err != nil {
			return nil, err
		}
		tp, err := Thumbprint(k)
		if err != nil {
			return nil, err
		}
		if seen[tp] {
			continue
		}
		seen[tp] = true
		legacy, err := LegacyKeyID(k)
		if err != nil {
			return nil, err
		}
		for _, kid := range []string{tp, legacy} {
			set.Keys = append(set.Keys, jose.JSONWebKey{Key: k, KeyID: kid, Algorithm: alg, Use: "sig"})
		}
	}
	return json.MarshalIndent(set, "", "  ")
}

// ParseKeySet returns the distinct public keys of a JWKS, in order, each
// once however many ids it is listed under.
func ParseKeySet(data []byte) ([]crypto.PublicKey, error) {
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(data, &set); err != nil {
		return nil, fmt.Errorf("parse JWKS: %w", err)
	}
	var keys []crypto.PublicKey
	seen := map[string]bool{}
	for _, k := range set.Keys {
		pub := k.Public().Key
		tp, err := Thumbprint(pub)
		if err != nil {
			return nil, fmt.Errorf("JWKS key %q: %w", k.KeyID, err)
		}
		if !seen[tp] {
			seen[tp] = true
			keys = append(keys, pub)
		}
	}
	return keys, nil
}

func checkType(pub crypto.PublicKey) error {
	_, err := algorithm(pub)
	return err
}

// algorithm is the JWS algorithm the token servers sign with for a key.
func algorithm(pub crypto.PublicKey) (string, error) {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return "", fmt.Errorf("ECDSA key on %s: only P-256 (ES256) is supported", k.Curve.Params().Name)
		}
		return string(jose.ES256), nil
	case *rsa.PublicKey:
		return string(jose.RS256), nil
	case nil:
		return "", errors.New("no public key")
	default:
		return "", fmt.Errorf("unsupported public key type %T: use ECDSA P-256 or RSA", pub)
	}
}
