package authn

import (
	"container/list"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/bcrypt"
	"k8s.io/utils/clock"
)

// Login floods. A bcrypt compare costs milliseconds of CPU (about 1 ms at
// the operator's cost 4, 65 ms at cost 10), so logins with wrong passwords
// are the cheapest way to make an authenticator burn CPU. Three things bound
// what they cost:
//
//   - compareGate: at most Options.CompareConcurrency compares run at once;
//     at most Options.CompareQueue logins wait for one, each at most
//     Options.CompareWait. Any other login is answered ErrBusy at once.
//   - failureLimiter: every compare is paid for with a token from the
//     bucket of the client address (when the front end knows it) and of
//     the user name; an empty bucket refuses the login with a *LimitError
//     before any compare. A login that verifies gives its tokens back, so
//     the buckets count failed logins only.
//   - the verified-login cache: a login it serves waits for no slot and
//     pays no token.

// ErrBusy refuses a login that would have had to wait too long for a
// bcrypt compare: every slot is taken and the wait queue is full, or the
// login waited Options.CompareWait. No password was checked; the client
// may retry after BusyRetryAfter.
var ErrBusy = errors.New("too many logins are being checked; retry later")

// BusyRetryAfter is what a client refused with ErrBusy is told to wait.
const BusyRetryAfter = time.Second

// LimitError refuses a login whose client address or user name has used up
// its budget of failed logins. No password was checked.
type LimitError struct {
	// Client is true when the client address's budget is used up, false
	// for the user name's.
	Client bool
	// RetryAfter is when the budget allows one more login.
	RetryAfter time.Duration
}

func (e *LimitError) Error() string {
	what := "user name"
	if e.Client {
		what = "client address"
	}
	return fmt.Sprintf("too many failed logins for this %s; retry in %ds", what, RetryAfterSeconds(e.RetryAfter))
}

// RetryAfterSeconds rounds d up to whole seconds, at least 1, as an HTTP
// Retry-After header counts them.
func RetryAfterSeconds(d time.Duration) int64 {
	s := int64(math.Ceil(d.Seconds()))
	if s < 1 {
		return 1
	}
	return s
}

// compareGate bounds concurrent bcrypt compares and the logins waiting for
// one.
type compareGate struct {
	slots    chan struct{}
	maxQueue int64
	maxWait  time.Duration
	clock    clock.Clock
	waiting  atomic.Int64
}

func newCompareGate(concurrency, queue int, wait time.Duration, clk clock.Clock) *compareGate {
	return &compareGate{slots: make(chan struct{}, concurrency), maxQueue: int64(queue), maxWait: wait, clock: clk}
}

// acquire takes a compare slot. It returns ErrBusy at once when every slot
// is taken and maxQueue logins already wait, and after maxWait when none
// came free; the caller must release a slot it got.
func (g *compareGate) acquire(ctx context.Context) error {
	select {
	case g.slots <- struct{}{}:
		return nil
	default:
	}
	if g.waiting.Add(1) > g.maxQueue {
		g.waiting.Add(-1)
		return ErrBusy
	}
	defer g.waiting.Add(-1)
	t := g.clock.NewTimer(g.maxWait)
	defer t.Stop()
	select {
	case g.slots <- struct{}{}:
		return nil
	case <-t.C():
		return ErrBusy
	case <-ctx.Done():
		return fmt.Errorf("waiting to check a password: %w", ctx.Err())
	}
}

func (g *compareGate) release() { <-g.slots }

// failureLimiter is a token bucket per key (a client address or a user
// name): burst tokens, one more every interval. It holds at most max
// buckets and forgets the least recently used beyond that; a full bucket
// is forgotten at once, since it behaves like a missing one. So its memory
// is bounded whatever the keys an attacker makes up.
type failureLimiter struct {
	burst    float64
	interval time.Duration
	max      int

	mu  sync.Mutex
	lru *list.List // of *bucket, most recently used first
	m   map[string]*list.Element
}

type bucket struct {
	key    string
	tokens float64
	at     time.Time // when tokens was last brought up to date
}

// newFailureLimiter returns nil (no limit) when burst is 0.
func newFailureLimiter(burst int, interval time.Duration, max int) *failureLimiter {
	if burst <= 0 {
		return nil
	}
	return &failureLimiter{burst: float64(burst), interval: interval, max: max, lru: list.New(), m: map[string]*list.Element{}}
}

func (l *failureLimiter) refill(b *bucket, now time.Time) {
	if now.After(b.at) {
		b.tokens = math.Min(l.burst, b.tokens+float64(now.Sub(b.at))/float64(l.interval))
		b.at = now
	}
}

// shortOf tells how long until key's bucket holds a token; 0 when it holds
// one now.
func (l *failureLimiter) shortOf(key string, now time.Time) time.Duration {
	if l == nil {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	el, ok := l.m[key]
	if !ok {
		return 0
	}
	b := el.Value.(*bucket)
	l.refill(b, now)
	if b.tokens >= 1 {
		return 0
	}
	return time.Duration((1 - b.tokens) * float64(l.interval))
}

// take removes a token from key's bucket. When there is none it takes
// nothing and tells how long until there is one.
func (l *failureLimiter) take(key string, now time.Time) (ok bool, wait time.Duration) {
	if l == nil {
		return true, 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	el, found := l.m[key]
	if !found {
		el = l.lru.PushFront(&bucket{key: key, tokens: l.burst, at: now})
		l.m[key] = el
		for l.lru.Len() > l.max {
			old := l.lru.Back()
			l.lru.Remove(old)
			delete(l.m, old.Value.(*bucket).key)
		}
	} else {
		l.lru.MoveToFront(el)
	}
	b := el.Value.(*bucket)
	l.refill(b, now)
	if b.tokens < 1 {
		return false, time.Duration((1 - b.tokens) * float64(l.interval))
	}
	b.tokens--
	return true, 0
}

// give returns n tokens to key's bucket: the login they paid for verified.
func (l *failureLimiter) give(key string, n int, now time.Time) {
	if l == nil || n == 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	el, ok := l.m[key]
	if !ok {
		return
	}
	b := el.Value.(*bucket)
	l.refill(b, now)
	b.tokens += float64(n)
	if b.tokens >= l.burst {
		l.lru.Remove(el)
		delete(l.m, key)
	}
}

// len is the number of buckets held, for tests.
func (l *failureLimiter) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lru.Len()
}

// limits are the failed-login budgets of an authenticator.
type limits struct {
	// client holds the budgets of client addresses.
	client *failureLimiter
	// accounts holds the budgets of user names (without a rotation
	// suffix) that are an account's username; others those of all other
	// names. Apart, so that made-up names, however many, never push an
	// account's budget out; a budget behaves the same in either table.
	accounts, others *failureLimiter
}

func newLimits(o *Options) *limits {
	return &limits{
		client:   newFailureLimiter(o.ClientLimitBurst, o.ClientLimitInterval, o.LimitEntries),
		accounts: newFailureLimiter(o.UserLimitBurst, o.UserLimitInterval, o.LimitEntries),
		others:   newFailureLimiter(o.UserLimitBurst, o.UserLimitInterval, o.LimitEntries),
	}
}

// charge pays for the compares of one login, and refunds them when it
// verifies.
type charge struct {
	client    *failureLimiter
	clientKey string
	user      *failureLimiter
	userKey   string
	taken     int
}

// check refuses the login when a budget has no token left; it takes none.
func (c *charge) check(now time.Time) error {
	if w := c.client.shortOf(c.clientKey, now); w > 0 {
		return &LimitError{Client: true, RetryAfter: w}
	}
	if w := c.user.shortOf(c.userKey, now); w > 0 {
		return &LimitError{RetryAfter: w}
	}
	return nil
}

// take pays for one compare from both budgets, or from neither.
func (c *charge) take(now time.Time) error {
	if ok, w := c.client.take(c.clientKey, now); !ok {
		return &LimitError{Client: true, RetryAfter: w}
	}
	if ok, w := c.user.take(c.userKey, now); !ok {
		c.client.give(c.clientKey, 1, now)
		return &LimitError{RetryAfter: w}
	}
	c.taken++
	return nil
}

// refund gives back what the login paid: it verified.
func (c *charge) refund(now time.Time) {
	c.client.give(c.clientKey, c.taken, now)
	c.user.give(c.userKey, c.taken, now)
	c.taken = 0
}

// clientKey is the budget key of a client address: the address itself for
// IPv4, its /64 for IPv6 (one host usually holds a whole /64). ok is false
// for an unknown address, which has no budget of its own.
func clientKey(addr netip.Addr) (key string, ok bool) {
	if !addr.IsValid() {
		return "", false
	}
	addr = addr.Unmap()
	if addr.Is6() {
		p, err := addr.Prefix(64)
		if err != nil {
			return "", false
		}
		return p.String(), true
	}
	return addr.String(), true
}

// Dummy compares. A login that no hash can verify (an unknown user, a
// rotation out of range, an expired account, an empty password) still
// costs one bcrypt compare, against a random hash of the cost the
// namespace's rotating accounts use, so that its answer takes as long as a
// wrong password's and timing does not tell which accounts exist.
const (
	// DefaultDummyCost is the cost of dummy compares until a rotating
	// account is seen: the operator's default --bcrypt-cost.
	DefaultDummyCost = 4
	// maxDummyCost bounds the cost of dummy compares, whatever cost an
	// account's author chose (each step doubles the CPU).
	maxDummyCost = 12
)

const bcryptAlphabet = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// dummyHash is a well-formed bcrypt hash of the given cost with a random
// salt and digest: comparing any password with it does the full work of
// that cost and fails.
func dummyHash(cost int) []byte {
	var r [53]byte // 22 characters of salt, 31 of digest
	if _, err := rand.Read(r[:]); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	h := fmt.Appendf(nil, "$2a$%02d$", cost)
	for _, b := range r {
		h = append(h, bcryptAlphabet[b&63])
	}
	return h
}

// dummyCostOf is the cost of an account's newest hash, if it is a rotating
// account (made by the operator, whose cost they share) with a valid one.
func dummyCostOf(hashes []string) (int, bool) {
	if len(hashes) == 0 {
		return 0, false
	}
	c, err := bcrypt.Cost([]byte(hashes[len(hashes)-1]))
	if err != nil {
		return 0, false
	}
	return min(max(c, bcrypt.MinCost), maxDummyCost), true
}
