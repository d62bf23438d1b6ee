package tokenkey

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"os"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
)

// The public key of a token key pair that docker_auth 1.13.0
// (../shared/tools/docker_auth) signed a token with, and the kid it put in
// that token's header.
const (
	dockerAuthKeyFile = "testdata/docker_auth-1.13.0-token.pub.pem"
	dockerAuthKeyID   = "MFSH:EU3P:OZJK:ANSI:QV7L:ZBR4:2JC3:ENEA:33IU:4PQE:IZ3T:DXWG"
	// RFC 7638 thumbprint of the same key, computed outside Go from the
	// canonical JSON {"crv","kty","x","y"}.
	dockerAuthThumbprint = "PfnBl5BLpZSgWE183dg8WkGlxJZQlYoy7ItNKPuwxd4"
)

func loadPublicKey(t *testing.T, file string) crypto.PublicKey {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		t.Fatalf("%s: no PEM block", file)
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return pub
}

func TestKeyIDsOfDockerAuthKey(t *testing.T) {
	pub := loadPublicKey(t, dockerAuthKeyFile)
	legacy, err := LegacyKeyID(pub)
	if err != nil {
		t.Fatal(err)
	}
	if legacy != dockerAuthKeyID {
		t.Errorf("LegacyKeyID = %s, docker_auth 1.13.0 wrote %s", legacy, dockerAuthKeyID)
	}
	tp, err := Thumbprint(pub)
	if err != nil {
		t.Fatal(err)
	}
	if tp != dockerAuthThumbprint {
		t.Errorf("Thumbprint = %s, want %s", tp, dockerAuthThumbprint)
	}
}

// TestThumbprintRFC7638 checks the example of RFC 7638 section 3.1.
func TestThumbprintRFC7638(t *testing.T) {
	n, err := base64.RawURLEncoding.DecodeString("0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw")
	if err != nil {
		t.Fatal(err)
	}
	got, err := Thumbprint(&rsa.PublicKey{N: new(big.Int).SetBytes(n), E: 65537})
	if err != nil {
		t.Fatal(err)
	}
	if want := "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"; got != want {
		t.Errorf("thumbprint %s, want %s", got, want)
	}
}

func newECKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestKeySetListsEachKeyUnderBothIDs(t *testing.T) {
	a, b := newECKey(t), newECKey(t)
	data, err := KeySet(a.Public(), b.Public(), a.Public())
	if err != nil {
		t.Fatal(err)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(data, &set); err != nil {
		t.Fatal(err)
	}
	if len(set.Keys) != 4 {
		t.Fatalf("%d keys in the set, want 4 (two keys, two ids each, the duplicate dropped)", len(set.Keys))
	}
	for i, pub := range []crypto.PublicKey{a.Public(), b.Public()} {
		tp, _ := Thumbprint(pub)
		legacy, _ := LegacyKeyID(pub)
		for j, kid := range []string{tp, legacy} {
			k := set.Keys[2*i+j]
			if k.KeyID != kid {
				t.Errorf("key %d: kid %s, want %s", 2*i+j, k.KeyID, kid)
			}
			if !pub.(*ecdsa.PublicKey).Equal(k.Key) {
				t.Errorf("key %d (%s) is not the key it names", 2*i+j, kid)
			}
			if k.Algorithm != "ES256" || k.Use != "sig" || !k.IsPublic() {
				t.Errorf("key %d: alg %q use %q public %v", 2*i+j, k.Algorithm, k.Use, k.IsPublic())
			}
		}
	}
	if strings.Contains(string(data), `"d"`) {
		t.Errorf("the key set holds private key material:\n%s", data)
	}

	keys, err := ParseKeySet(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 || !a.PublicKey.Equal(keys[0]) || !b.PublicKey.Equal(keys[1]) {
		t.Errorf("ParseKeySet gave %d keys, want a and b in order", len(keys))
	}
}

func TestRSAKeys(t *testing.T) {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	data, err := KeySet(k.Public())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), `"RS256"`) {
		t.Errorf("RSA key set without RS256:\n%s", data)
	}
}

func TestRejectsUnsupportedKeys(t *testing.T) {
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for name, pub := range map[string]crypto.PublicKey{"P-384": p384.Public(), "nil": nil, "string": "key"} {
		if _, err := KeySet(pub); err == nil {
			t.Errorf("%s: KeySet accepted it", name)
		}
		if _, err := LegacyKeyID(pub); err == nil {
			t.Errorf("%s: LegacyKeyID accepted it", name)
		}
	}
	if _, err := ParseKeySet([]byte("{")); err == nil {
		t.Error("ParseKeySet accepted broken JSON")
	}
}
