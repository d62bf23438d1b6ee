package authn

import (
	"container/list"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"sync"
	"time"

	"k8s.io/utils/clock"
)

// verifiedCache remembers that a password verified against a bcrypt hash, so
// that a client asking for a token per blob does not pay a bcrypt compare
// each time.
//
// It is keyed by the bcrypt hash itself and a keyed SHA-256 (HMAC with a
// per-process random key) of the password, never the password. Because the
// hash is part of the key, an entry only counts while the account still
// holds that hash for the login's rotation: every login first resolves the
// account from the informer cache, so a deleted or expired account, a hash
// dropped from spec.passwords or a rotation that moved out of range fails
// at once, cache or not. The cache therefore never extends a credential's
// life; revocation is bounded by the informer's watch latency alone. Entries
// of hashes that leave an account are also purged eagerly, and every entry
// lives at most the TTL, so a process holds few password-derived values.
type verifiedCache struct {
	size  int
	ttl   time.Duration
	clock clock.PassiveClock
	key   [32]byte // HMAC key for password digests

	mu  sync.Mutex
	lru *list.List // of *cacheEntry, most recent first
	m   map[cacheKey]*list.Element
}

type cacheKey struct {
	hash   string
	digest [sha256.Size]byte
}

type cacheEntry struct {
	key     cacheKey
	expires time.Time
}

func newVerifiedCache(size int, ttl time.Duration, clk clock.PassiveClock) *verifiedCache {
	c := &verifiedCache{size: size, ttl: ttl, clock: clk, lru: list.New(), m: map[cacheKey]*list.Element{}}
	if _, err := rand.Read(c.key[:]); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return c
}

func (c *verifiedCache) enabled() bool { return c != nil && c.size > 0 && c.ttl > 0 }

// digest is the keyed digest of a password.
func (c *verifiedCache) digest(password string) [sha256.Size]byte {
	var d [sha256.Size]byte
	m := hmac.New(sha256.New, c.key[:])
	m.Write([]byte(password))
	copy(d[:], m.Sum(nil))
	return d
}

// has tells whether the password with this digest verified against hash
// within the TTL.
func (c *verifiedCache) has(hash string, digest [sha256.Size]byte) bool {
	if !c.enabled() {
		return false
	}
	k := cacheKey{hash: hash, digest: digest}
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.m[k]
	if !ok {
		return false
	}
	if !c.clock.Now().Before(el.Value.(*cacheEntry).expires) {
		c.lru.Remove(el)
		delete(c.m, k)
		return false
	}
	c.lru.MoveToFront(el)
	return true
}

// add records a successful verification; the entry expires after the TTL
// from now, not from its last use.
func (c *verifiedCache) add(hash string, digest [sha256.Size]byte) {
	if !c.enabled() {
		return
	}
	k := cacheKey{hash: hash, digest: digest}
	c.mu.Lock()
	defer c.mu.Unlock()
	exp := c.clock.Now().Add(c.ttl)
	if el, ok := c.m[k]; ok {
		el.Value.(*cacheEntry).expires = exp
		c.lru.MoveToFront(el)
		return
	}
	c.m[k] = c.lru.PushFront(&cacheEntry{key: k, expires: exp})
	for c.lru.Len() > c.size {
		old := c.lru.Back()
		c.lru.Remove(old)
		delete(c.m, old.Value.(*cacheEntry).key)
	}
}

// purge drops the entries of the given hashes.
func (c *verifiedCache) purge(hashes map[string]bool) {
	if !c.enabled() || len(hashes) == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for el := c.lru.Front(); el != nil; {
		next := el.Next()
		if e := el.Value.(*cacheEntry); hashes[e.key.hash] {
			c.lru.Remove(el)
			delete(c.m, e.key)
		}
		el = next
	}
}

// len is the number of entries, for tests.
func (c *verifiedCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}

// reset drops every entry.
func (c *verifiedCache) reset() {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lru.Init()
	clear(c.m)
}
