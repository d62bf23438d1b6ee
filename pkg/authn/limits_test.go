package authn

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	registryv1alpha1 "github.com/image-registry-operator/image-registry-operator/pkg/apis/registry/v1alpha1"
)

// blockingCompare makes every bcrypt compare of f wait for release, and
// counts the compares that started.
type blockingCompare struct {
	release chan struct{}
	started atomic.Int64
}

func blockCompares(f *fixture) *blockingCompare {
	b := &blockingCompare{release: make(chan struct{})}
	inner := f.auth.compare
	f.auth.compare = func(h, p []byte) error {
		b.started.Add(1)
		<-b.release
		return inner(h, p)
	}
	return b
}

type verifyResult struct {
	res Result
	err error
}

func (f *fixture) verifyAsync(ctx context.Context, user, pw string) <-chan verifyResult {
	c := make(chan verifyResult, 1)
	go func() {
		res, _, err := f.auth.Verify(ctx, user, pw)
		c <- verifyResult{res, err}
	}()
	return c
}

// TestBusyWhenQueueFull: with the compare slot taken and the wait queue
// full, one more login is answered ErrBusy at once, without a compare,
// while a login the verified cache holds is still allowed.
func TestBusyWhenQueueFull(t *testing.T) {
	f := newFixtureWith(t, func(o *Options) {
		o.CompareConcurrency, o.CompareQueue = 1, 1
		o.UserLimitBurst, o.ClientLimitBurst = 0, 0
	}, rotating(t, "push-x", "team/app", 1, pushLabels, "p0", "p1", "p2"))
	if res, _ := f.verify("team/app/1", "p1"); res != Allowed { // cached from now on
		t.Fatal(res)
	}
	b := blockCompares(f)
	first := f.verifyAsync(context.Background(), "team/app/1", "wrong")
	f.eventually("a compare running", func() bool { return b.started.Load() == 1 })
	second := f.verifyAsync(context.Background(), "team/app/1", "wrong2")
	f.eventually("a login waiting", func() bool { return f.auth.gate.waiting.Load() == 1 })

	// A guard only: before the fix, the third login would wait for ever.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, _, err := f.auth.Verify(ctx, "team/app/1", "wrong3"); !errors.Is(err, ErrBusy) {
		t.Errorf("login with the slot taken and the queue full: %v, want ErrBusy", err)
	}
	if _, _, err := f.auth.Verify(ctx, "nobody", "x"); !errors.Is(err, ErrBusy) {
		t.Errorf("unknown user with the queue full: %v, want ErrBusy", err)
	}
	if res, _, err := f.auth.Verify(ctx, "team/app/1", "p1"); res != Allowed || err != nil {
		t.Errorf("cached login with the queue full: %v %v, want Allowed", res, err)
	}
	if n := b.started.Load(); n != 1 {
		t.Errorf("%d compares started, want 1", n)
	}
	close(b.release)
	for _, c := range []<-chan verifyResult{first, second} {
		if r := <-c; r.res != Denied || r.err != nil {
			t.Errorf("queued login: %v %v, want Denied", r.res, r.err)
		}
	}
}

// TestBusyAfterWaitBound: a login that waited CompareWait for a slot is
// answered ErrBusy.
func TestBusyAfterWaitBound(t *testing.T) {
	f := newFixtureWith(t, func(o *Options) {
		o.CompareConcurrency, o.CompareQueue, o.CompareWait = 1, 10, 3*time.Second
		o.UserLimitBurst, o.ClientLimitBurst = 0, 0
	}, rotating(t, "push-x", "team/app", 1, pushLabels, "p0", "p1", "p2"))
	b := blockCompares(f)
	first := f.verifyAsync(context.Background(), "team/app/1", "wrong")
	f.eventually("a compare running", func() bool { return b.started.Load() == 1 })
	second := f.verifyAsync(context.Background(), "team/app/1", "p1")
	f.eventually("a login waiting on its timer", func() bool { return f.clock.HasWaiters() })
	f.clock.Step(2 * time.Second)
	select {
	case r := <-second:
		t.Fatalf("answered before the wait bound: %v %v", r.res, r.err)
	default:
	}
	f.clock.Step(time.Second)
	if r := <-second; !errors.Is(r.err, ErrBusy) {
		t.Errorf("after waiting 3s: %v %v, want ErrBusy", r.res, r.err)
	}
	close(b.release)
	<-first
	if n := b.started.Load(); n != 1 {
		t.Errorf("%d compares, want 1", n)
	}
}

// TestDefaultLimitsOn: the documented defaults, on unless a flag says
// otherwise.
func TestDefaultLimitsOn(t *testing.T) {
	o := NewOptions()
	if o.UserLimitBurst != 10 || o.UserLimitInterval != 6*time.Second || o.ClientLimitBurst != 30 || o.ClientLimitInterval != time.Second ||
		o.CompareQueue != 64 || o.CompareWait != time.Second || o.LimitEntries != 10000 || o.CompareConcurrency != 0 {
		t.Errorf("defaults changed: %+v (update plugin/README.md and docs/security.md)", o)
	}
	f := newFixtureWith(t, nil)
	if f.auth.limits.client == nil || f.auth.limits.accounts == nil || f.auth.limits.others == nil || f.auth.gate == nil {
		t.Error("limits off by default")
	}
	o, err := ParseArgs([]string{"--namespace=x", "--auth-user-limit-burst=0", "--auth-client-limit-burst=5", "--auth-client-limit-interval=2s", "--auth-compare-queue=0", "--auth-compare-wait=250ms", "--auth-compare-concurrency=3", "--auth-limit-entries=7", "--auth-user-limit-interval=1m"})
	if err != nil || o.UserLimitBurst != 0 || o.ClientLimitBurst != 5 || o.ClientLimitInterval != 2*time.Second || o.CompareQueue != 0 ||
		o.CompareWait != 250*time.Millisecond || o.CompareConcurrency != 3 || o.LimitEntries != 7 || o.UserLimitInterval != time.Minute {
		t.Errorf("flags: %+v %v", o, err)
	}
	for _, bad := range []string{"--auth-compare-wait=0s", "--auth-user-limit-burst=-1", "--auth-client-limit-interval=0s", "--auth-limit-entries=0", "--auth-compare-queue=-1", "--auth-compare-concurrency=-1"} {
		if _, err := ParseArgs([]string{"--namespace=x", bad}); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

// limitOpts: a budget of 3 per user name and 5 per client, one more every
// 10s.
func limitOpts(o *Options) {
	o.UserLimitBurst, o.UserLimitInterval = 3, 10*time.Second
	o.ClientLimitBurst, o.ClientLimitInterval = 5, 10*time.Second
}

// TestUserLimit: a user name that failed its budget's worth of compares,
// under any rotation, is refused without a compare until the budget
// refills; unknown names have budgets too (else a 429 would tell which
// names exist), kept apart from the accounts', so that made-up names
// cannot push an account's budget out.
func TestUserLimit(t *testing.T) {
	f := newFixtureWith(t, func(o *Options) { limitOpts(o); o.LimitEntries = 2 },
		rotating(t, "push-x", "team/app", 1, pushLabels, "p0", "p1", "p2"))
	type step struct {
		user, pw string
		want     Result
		limited  bool
		compares int64
		advance  time.Duration
	}
	for i, s := range []step{
		{user: "team/app/1", pw: "w1", want: Denied, compares: 1},
		{user: "team/app/2", pw: "w2", want: Denied, compares: 1}, // another rotation, the same account
		{user: "team/app/1", pw: "w3", want: Denied, compares: 1},
		{user: "team/app/1", pw: "w4", limited: true},
		{user: "team/app/1", pw: "p1", limited: true}, // even the right password: the budget is empty
		{user: "team/app/9", pw: "p1", limited: true}, // out of range: the same budget
		// Made-up names, more than the table holds, each with a budget.
		{user: "ghost-a", pw: "x", want: NoMatch, compares: 1},
		{user: "ghost-b", pw: "x", want: NoMatch, compares: 1},
		{user: "ghost-c", pw: "x", want: NoMatch, compares: 1},
		{user: "team/app/1", pw: "p1", limited: true},
		{advance: 9 * time.Second, user: "team/app/1", pw: "p1", limited: true},
		{advance: time.Second, user: "team/app/1", pw: "p1", want: Allowed, compares: 1},
	} {
		f.clock.Step(s.advance)
		before := f.bcrypt.Load()
		res, _, err := f.auth.VerifyFrom(context.Background(), netip.AddrFrom4([4]byte{192, 0, 2, byte(i)}), s.user, s.pw)
		var le *LimitError
		switch {
		case s.limited && (!errors.As(err, &le) || le.Client || le.RetryAfter <= 0):
			t.Errorf("step %d %s: %v %v, want a user name LimitError", i, s.user, res, err)
		case !s.limited && (err != nil || res != s.want):
			t.Errorf("step %d %s: %v %v, want %v", i, s.user, res, err, s.want)
		}
		if n := f.bcrypt.Load() - before; n != s.compares {
			t.Errorf("step %d %s: %d compares, want %d", i, s.user, n, s.compares)
		}
	}
	// An unknown name is limited like an account.
	for i := 0; i < 3; i++ {
		f.verify("ghost", "x")
	}
	before := f.bcrypt.Load()
	var le *LimitError
	if _, _, err := f.auth.Verify(context.Background(), "ghost", "x"); !errors.As(err, &le) || f.bcrypt.Load() != before {
		t.Errorf("unknown name over its budget: %v, %d compares", err, f.bcrypt.Load()-before)
	}
	if n := f.auth.limits.others.len(); n > 2 {
		t.Errorf("%d budgets of unknown names held, want at most 2", n)
	}
}

// TestBudgetsDoNotTellWhichNamesExist: the same logins against an
// account's name and a made-up one are answered the same way, 429s
// included, whichever rotations and readings they use.
func TestBudgetsDoNotTellWhichNamesExist(t *testing.T) {
	f := newFixtureWith(t, limitOpts, rotating(t, "push-x", "team/app", 1, pushLabels, "p0", "p1", "p2"), static(t, "ci", "ci", "static-a"))
	pattern := func(names ...string) string {
		var out []string
		for i := 0; i < 4; i++ {
			for _, n := range names {
				_, _, err := f.auth.Verify(context.Background(), n, "wrong")
				var le *LimitError
				out = append(out, fmt.Sprint(errors.As(err, &le)))
			}
		}
		return strings.Join(out, " ")
	}
	for _, tc := range []struct{ known, unknown []string }{
		{[]string{"team/app/1", "team/app/2", "team/app/9", "team/app"}, []string{"team/ghost/1", "team/ghost/2", "team/ghost/9", "team/ghost"}},
		{[]string{"ci", "ci/3"}, []string{"ghost", "ghost/3"}},
	} {
		if k, u := pattern(tc.known...), pattern(tc.unknown...); k != u {
			t.Errorf("limited: %v for %v, %v for %v", k, tc.known, u, tc.unknown)
		}
	}
}

// TestVerifiedLoginRefunds: a login that verifies gives back what it paid,
// so budgets count failed logins only.
func TestVerifiedLoginRefunds(t *testing.T) {
	f := newFixtureWith(t, func(o *Options) { limitOpts(o); o.CacheSize = 0 },
		rotating(t, "push-x", "team/app", 1, pushLabels, "p0", "p1", "p2"))
	for i := 0; i < 20; i++ {
		if res, _ := f.verify("team/app/1", "p1"); res != Allowed {
			t.Fatalf("uncached valid login %d: %v", i, res)
		}
	}
	if n := f.auth.limits.accounts.len(); n != 0 {
		t.Errorf("%d budgets held after valid logins only, want 0", n)
	}
}

// TestClientLimit: an address that failed its budget's worth of compares,
// whatever the user names, is refused without a compare; other addresses
// are not. An IPv6 /64 is one client. Logins without an address (the
// ext_auth sidecar's) have no client budget.
func TestClientLimit(t *testing.T) {
	f := newFixtureWith(t, func(o *Options) { limitOpts(o); o.UserLimitBurst = 0 },
		rotating(t, "push-x", "team/app", 1, pushLabels, "p0", "p1", "p2"))
	try := func(addr string, user string) (Result, error) {
		var a netip.Addr
		if addr != "" {
			a = netip.MustParseAddr(addr)
		}
		res, _, err := f.auth.VerifyFrom(context.Background(), a, user, "wrong")
		return res, err
	}
	for _, tc := range []struct {
		addr    string
		n       int
		limited bool
	}{
		{"192.0.2.1", 5, false},
		{"192.0.2.1", 1, true},
		{"::ffff:192.0.2.1", 1, true}, // the same address, IPv4-mapped
		{"192.0.2.2", 5, false},
		{"2001:db8::1", 3, false},
		{"2001:db8::2", 2, false}, // the same /64
		{"2001:db8::3", 1, true},
		{"2001:db8:0:1::1", 1, false},
		{"", 50, false},
	} {
		for i := 0; i < tc.n; i++ {
			before := f.bcrypt.Load()
			res, err := try(tc.addr, fmt.Sprintf("user-%d", i))
			var le *LimitError
			if tc.limited {
				if !errors.As(err, &le) || !le.Client || f.bcrypt.Load() != before {
					t.Errorf("%s: %v %v, %d compares; want a client LimitError and none", tc.addr, res, err, f.bcrypt.Load()-before)
				}
			} else if err != nil || res != NoMatch {
				t.Errorf("%s #%d: %v %v, want NoMatch", tc.addr, i, res, err)
			}
		}
	}
}

// TestLimiterBounded: the budget tables never hold more than LimitEntries
// entries, however many keys pass.
func TestLimiterBounded(t *testing.T) {
	l := newFailureLimiter(2, time.Second, 100)
	now := time.Now()
	for i := 0; i < 10000; i++ {
		l.take(fmt.Sprint("k", i), now)
	}
	if n := l.len(); n != 100 {
		t.Errorf("%d buckets, want 100", n)
	}
	// A bucket refilled to its burst is the same as none: given back, it
	// leaves.
	l.take("x", now)
	l.give("x", 1, now)
	if w := l.shortOf("x", now); w != 0 {
		t.Errorf("full bucket short by %s", w)
	}
	if _, ok := l.m["x"]; ok {
		t.Error("a full bucket is kept")
	}
	// Refill: one token per interval, up to the burst.
	l.take("y", now)
	l.take("y", now)
	if ok, w := l.take("y", now); ok || w != time.Second {
		t.Errorf("empty bucket: %v %s, want refused for 1s", ok, w)
	}
	if ok, _ := l.take("y", now.Add(time.Second)); !ok {
		t.Error("no token after an interval")
	}
}

// TestStaticCompares: a static account's login compares each distinct
// valid hash at most once, stops at the one that verifies, and pays for
// every compare.
func TestStaticCompares(t *testing.T) {
	acc := static(t, "ci", "", "static-a", "static-b")
	acc.Spec.Passwords = append(acc.Spec.Passwords, hash(t, "static-a"), "not-a-bcrypt-hash")
	f := newFixtureWith(t, func(o *Options) { limitOpts(o); o.UserLimitBurst = 5; o.CacheSize = 0 }, acc)
	for _, tc := range []struct {
		pw       string
		want     Result
		compares int64
	}{
		{"static-a", Allowed, 1},
		{"static-b", Allowed, 2},
		{"wrong", Denied, 2}, // not 4: the duplicate and the invalid hash cost nothing
		{"wrong", Denied, 2},
		{"wrong", Denied, 1}, // 5 paid: the budget ran out after one compare
	} {
		before := f.bcrypt.Load()
		res, _, err := f.auth.Verify(context.Background(), "ci", tc.pw)
		n := f.bcrypt.Load() - before
		if tc.compares == 1 && tc.want == Denied {
			var le *LimitError
			if !errors.As(err, &le) {
				t.Errorf("%s: %v %v, want a LimitError after the budget ran out", tc.pw, res, err)
			}
		} else if res != tc.want || err != nil {
			t.Errorf("%s: %v %v, want %v", tc.pw, res, err, tc.want)
		}
		if n != tc.compares {
			t.Errorf("%s: %d compares, want %d", tc.pw, n, tc.compares)
		}
	}
}

// TestEqualWork: a login that no hash can verify costs one compare, like
// a wrong password of a rotating account, so its answer is not faster;
// the dummy compare is at the cost of the namespace's rotating accounts.
func TestEqualWork(t *testing.T) {
	exp := metav1.NewTime(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	expired := rotating(t, "push-old", "team/old", 1, pushLabels, "p0", "p1")
	expired.Spec.ExpiresAt = &exp
	invalid := static(t, "broken", "broken")
	invalid.Spec.Passwords = []string{"not-a-hash"}
	f := newFixture(t, rotating(t, "push-x", "team/app", 1, pushLabels, "p0", "p1", "p2"), expired, invalid)
	f.auth.cache.size = 0
	var costs []int
	var mu sync.Mutex
	inner := f.auth.compare
	f.auth.compare = func(h, p []byte) error {
		c, err := bcrypt.Cost(h)
		if err != nil {
			t.Errorf("compared with an invalid hash: %v", err)
		}
		mu.Lock()
		costs = append(costs, c)
		mu.Unlock()
		return inner(h, p)
	}
	for _, tc := range []struct {
		name, user, pw string
		want           Result
	}{
		{"known, wrong password", "team/app/1", "wrong", Denied},
		{"unknown user", "nobody", "wrong", NoMatch},
		{"unknown rotating name", "team/nobody/1", "wrong", NoMatch},
		{"rotation out of range", "team/app/7", "wrong", Denied},
		{"expired account", "team/old/1", "p0", Denied},
		{"empty password", "team/app/1", "", Denied},
		{"no valid hash", "broken", "x", Denied},
	} {
		before := f.bcrypt.Load()
		if res, _ := f.verify(tc.user, tc.pw); res != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, res, tc.want)
		}
		if n := f.bcrypt.Load() - before; n != 1 {
			t.Errorf("%s: %d compares, want 1", tc.name, n)
		}
	}
	for _, c := range costs {
		if c != bcrypt.MinCost {
			t.Errorf("a compare at cost %d, want the accounts' %d", c, bcrypt.MinCost)
		}
	}
}

// TestDummyCost: dummy compares follow the cost of the rotating accounts
// seen last, within [4, 12]; static accounts (any author's cost) do not
// change it.
func TestDummyCost(t *testing.T) {
	withCost := func(name string, cost int, rotation bool) *registryv1alpha1.ImageRegistryAccount {
		a := rotating(t, name, "team/"+name, 1, nil, "p0")
		a.Spec.Passwords = []string{fmt.Sprintf("$2a$%02d$", cost) + strings.Repeat("a", 53)}
		if !rotation {
			a.Spec.Rotation = nil
		}
		return a
	}
	for _, tc := range []struct {
		name     string
		accounts []*registryv1alpha1.ImageRegistryAccount
		want     int32
	}{
		{"none", nil, DefaultDummyCost},
		{"rotating cost 10", []*registryv1alpha1.ImageRegistryAccount{withCost("a", 10, true)}, 10},
		{"static cost 11 only", []*registryv1alpha1.ImageRegistryAccount{withCost("a", 11, false)}, DefaultDummyCost},
		{"rotating cost 20", []*registryv1alpha1.ImageRegistryAccount{withCost("a", 20, true)}, 12},
	} {
		f := newFixture(t, tc.accounts...)
		// The informer's handler notes costs after the cache has synced.
		f.eventually(fmt.Sprintf("%s: dummy cost %d", tc.name, tc.want), func() bool { return f.auth.dummyCost.Load() == tc.want })
	}
}

// TestDummyHashDoesTheWork: comparing with a dummy hash is a full bcrypt
// of its cost that fails, not a parse error that returns at once.
func TestDummyHashDoesTheWork(t *testing.T) {
	for _, cost := range []int{4, 5, 12} {
		for i := 0; i < 20; i++ {
			h := dummyHash(cost)
			if c, err := bcrypt.Cost(h); err != nil || c != cost {
				t.Fatalf("dummy hash %q: cost %d %v", h, c, err)
			}
			if cost > 5 {
				break // slow; the format was checked
			}
			if err := bcrypt.CompareHashAndPassword(h, []byte("pw")); !errors.Is(err, bcrypt.ErrMismatchedHashAndPassword) {
				t.Fatalf("compare with %q: %v, want a mismatch", h, err)
			}
		}
	}
}

// TestLongPasswordRefused: bcrypt reads 72 bytes of a password; a longer
// one would verify whatever followed them. It is Denied for every account
// type, and for unknown users, without a compare.
func TestLongPasswordRefused(t *testing.T) {
	pw72 := strings.Repeat("x", 72)
	h, err := bcrypt.GenerateFromPassword([]byte(pw72), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	rot := rotating(t, "push-x", "team/app", 1, pushLabels, "p0", "p1")
	rot.Spec.Passwords[1] = string(h)
	st := static(t, "ci", "", "static-a")
	st.Spec.Passwords = []string{string(h)}
	f := newFixture(t, rot, st)
	for _, user := range []string{"team/app/2", "ci"} {
		if res, _ := f.verify(user, pw72); res != Allowed {
			t.Errorf("%s, 72 bytes: %v, want Allowed", user, res)
		}
		before := f.bcrypt.Load()
		if res, _ := f.verify(user, pw72+"anything"); res != Denied {
			t.Errorf("%s, 80 bytes whose first 72 verify: %v, want Denied", user, res)
		}
		if n := f.bcrypt.Load() - before; n != 0 {
			t.Errorf("%s: %d compares for a refused long password", user, n)
		}
	}
	if res, _ := f.verify("nobody", pw72+"y"); res != Denied {
		t.Errorf("unknown user, long password: %v, want Denied", res)
	}
}
