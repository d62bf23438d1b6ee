package imagesecret

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"sync"

	"golang.org/x/crypto/bcrypt"
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
// Secret's passwords with the published hashes, which costs as much as
// making the hash, so successful comparisons are remembered: per hash (a
// bcrypt hash, salted, verifies one password), a digest of hash and
// password. Keys and values are 128-bit SHA-256 prefixes without pointers,
// so an entry costs a few dozen bytes and nothing to the garbage collector;
// the passwords are 256-bit random, so the digests reveal nothing usable,
// and they never leave the process. Two generations bound the memory: when
// the current one holds maxVerified entries it becomes the old one and the
// previous old one (hashes rotated out long ago, mostly) is dropped; a hit
// in the old generation moves to the current one.
type verifier struct {
	mu       sync.Mutex
	cur, old map[[16]byte][16]byte
}

// maxVerified per generation is about three hashes for each of 20000
// objects.
const maxVerified = 60000

func newVerifier() *verifier { return &verifier{cur: map[[16]byte][16]byte{}} }

func verifierDigests(hash, password string) (key, value [16]byte) {
	h := sha256.Sum256([]byte(hash))
	v := sha256.Sum256([]byte(hash + "\x00" + password))
	copy(key[:], h[:16])
	copy(value[:], v[:16])
	return key, value
}

func (v *verifier) verify(hash, password string) bool {
	if hash == "" || password == "" {
		return false
	}
	key, value := verifierDigests(hash, password)
	if v.known(key, value) {
		return true
	}
	if bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)) != nil {
		return false
	}
	v.store(key, value)
	return true
}

func (v *verifier) known(key, value [16]byte) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	if got, ok := v.cur[key]; ok {
		return got == value
	}
	if got, ok := v.old[key]; ok && got == value {
		v.storeLocked(key, value)
		return true
	}
	return false
}

// remember records that password verifies against hash, which the caller
// knows because it just made hash from password: the sync that follows
// every write then finds the Secret's passwords verified without a bcrypt
// compare.
func (v *verifier) remember(hash, password string) {
	if hash == "" || password == "" {
		return
	}
	v.store(verifierDigests(hash, password))
}

func (v *verifier) store(key, value [16]byte) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.storeLocked(key, value)
}

func (v *verifier) storeLocked(key, value [16]byte) {
	if len(v.cur) >= maxVerified {
		v.old, v.cur = v.cur, make(map[[16]byte][16]byte, maxVerified/4)
	}
	v.cur[key] = value
}
