package tokenserver

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Claims are the JWT claims of a registry token, as the distribution
// registry reads them.
type Claims struct {
	Issuer     string `json:"iss"`
	Subject    string `json:"sub"`
	Audience   string `json:"aud"`
	Expiration int64  `json:"exp"`
	NotBefore  int64  `json:"nbf"`
	IssuedAt   int64  `json:"iat"`
	JWTID      string `json:"jti"`
	// Access lists the granted actions per resource.
	Access []ResourceActions `json:"access"`
}

// ResourceActions are the actions granted on one resource.
type ResourceActions struct {
	Type    string   `json:"type"`
	Class   string   `json:"class,omitempty"`
	Name    string   `json:"name"`
	Actions []string `json:"actions"`
}

// issuer signs tokens.
type issuer struct {
	key    *SigningKey
	signer jose.Signer
}

func newIssuer(k *SigningKey) (*issuer, error) {
	signer, err := jose.NewSigner(
		jose.SigningKey{Algorithm: k.Algorithm, Key: jose.JSONWebKey{Key: k.key, KeyID: k.KeyID}},
		(&jose.SignerOptions{}).WithType("JWT"),
	)
	if err != nil {
		return nil, fmt.Errorf("create token signer: %w", err)
	}
	return &issuer{key: k, signer: signer}, nil
}

// sign serializes and signs claims as a compact JWS.
func (is *issuer) sign(c *Claims) (string, error) {
	payload, err := json.Marshal(c)
	if err != nil {
		return "", err
	}
	jws, err := is.signer.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("sign token: %w", err)
	}
	return jws.CompactSerialize()
}

// newJWTID returns a random token ID.
func newJWTID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// tokenResponse is the token endpoint's answer; token and access_token carry
// the same JWT, for clients of either the Docker or the OAuth2 spelling.
type tokenResponse struct {
	Token       string `json:"token"`
	AccessToken string `json:"access_token"`
	ExpiresIn   int64  `json:"expires_in"`
	IssuedAt    string `json:"issued_at"`
}

func newClaims(iss, sub, aud string, now time.Time, ttl time.Duration, access []ResourceActions) *Claims {
	if access == nil {
		access = []ResourceActions{}
	}
	return &Claims{
		Issuer:     iss,
		Subject:    sub,
		Audience:   aud,
		IssuedAt:   now.Unix(),
		NotBefore:  now.Unix(),
		Expiration: now.Add(ttl).Unix(),
		JWTID:      newJWTID(),
		Access:     access,
	}
}
