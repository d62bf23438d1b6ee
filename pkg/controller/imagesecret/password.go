package imagesecret

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"

	"golang.org/x/crypto/bcrypt"
	"k8s.io/utils/lru"
)

// passwordBytes of randomness make a 43 character base64url password, well
// under bcrypt's 72 byte limit.
const passwordBytes = 32

// newPassword returns a fresh password from r (crypto/rand outside tests).
func newPassword(r io.Reader) (string, error) {
	b := make([]byte, passwordBytes)
	if _, err := io.ReadFull(r, b); err != nil {
		return "", fmt.Errorf("reading random bytes for a password: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

func hashPassword(password string, cost int) (string, error) {
	h, err := bcrypt.GenerateFromPassword([]byte(password), cost)
	if err != nil {
		// bcrypt's errors never contain the password.
		return "", fmt.Errorf("hashing a password: %w", err)
	}
	return string(h), nil
}

// verifier checks a password against a bcrypt hash. Every sync compares the
// Secret's passwords with the published hashes, which at cost 10 takes tens
// of milliseconds each, so successful comparisons are remembered. The cache
// key is a SHA-256 of hash and password: the passwords are 256-bit random, so
// the digest reveals nothing usable, and it never leaves the process.
type verifier struct {
	ok *lru.Cache
}

func newVerifier() *verifier { return &verifier{ok: lru.New(8192)} }

func (v *verifier) verify(hash, password string) bool {
	if hash == "" || password == "" {
		return false
	}
	key := sha256.Sum256([]byte(hash + "\x00" + password))
	if _, ok := v.ok.Get(key); ok {
		return true
	}
	if bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)) != nil {
		return false
	}
	v.ok.Add(key, struct{}{})
	return true
}

// remember records that password verifies against hash, which the caller
// knows because it just made hash from password: the sync that follows
// every write then finds the Secret's passwords verified without a bcrypt
// compare, which costs as much as the hash itself.
func (v *verifier) remember(hash, password string) {
	if hash == "" || password == "" {
		return
	}
	v.ok.Add(sha256.Sum256([]byte(hash+"\x00"+password)), struct{}{})
}
