package authn

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"
	clocktesting "k8s.io/utils/clock/testing"

	registryv1alpha1 "github.com/image-registry-operator/image-registry-operator/pkg/apis/registry/v1alpha1"
	"github.com/image-registry-operator/image-registry-operator/pkg/generated/clientset/versioned/fake"
	informers "github.com/image-registry-operator/image-registry-operator/pkg/generated/informers/externalversions"
)

const ns = "registry"

// hashes are precomputed at the minimum cost to keep tests fast.
var (
	hashOnce sync.Once
	hashMap  = map[string]string{}
)

func hash(t testing.TB, pw string) string {
	hashOnce.Do(func() {
		for _, p := range []string{"p0", "p1", "p2", "p3", "p4", "static-a", "static-b", "pull-2", "push-2"} {
			h, err := bcrypt.GenerateFromPassword([]byte(p), bcrypt.MinCost)
			if err != nil {
				panic(err)
			}
			hashMap[p] = string(h)
		}
	})
	h, ok := hashMap[pw]
	if !ok {
		t.Fatalf("no precomputed hash for %q", pw)
	}
	return h
}

func rotating(t testing.TB, name, username string, rotation int64, labels map[string][]string, passwords ...string) *registryv1alpha1.ImageRegistryAccount {
	a := &registryv1alpha1.ImageRegistryAccount{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, UID: types.UID("uid-" + name)},
		Spec: registryv1alpha1.ImageRegistryAccountSpec{
			Username: username,
			Rotation: &rotation,
			Labels:   labels,
		},
	}
	for _, p := range passwords {
		a.Spec.Passwords = append(a.Spec.Passwords, hash(t, p))
	}
	return a
}

func static(t testing.TB, name, username string, passwords ...string) *registryv1alpha1.ImageRegistryAccount {
	a := rotating(t, name, username, 0, map[string][]string{"role": {"ci"}}, passwords...)
	a.Spec.Rotation = nil
	return a
}

type fixture struct {
	t      testing.TB
	client *fake.Clientset
	auth   *Authenticator
	clock  *clocktesting.FakeClock
	bcrypt atomic.Int64
	cancel context.CancelFunc
}

// newFixture runs an authenticator with the default options, but without
// failed-login budgets: tests of other things log in wrongly many times.
func newFixture(t testing.TB, objs ...*registryv1alpha1.ImageRegistryAccount) *fixture {
	t.Helper()
	return newFixtureWith(t, func(o *Options) { o.UserLimitBurst, o.ClientLimitBurst = 0, 0 }, objs...)
}

// newFixtureWith runs an authenticator with NewOptions changed by opts.
func newFixtureWith(t testing.TB, opts func(*Options), objs ...*registryv1alpha1.ImageRegistryAccount) *fixture {
	t.Helper()
	f := &fixture{t: t, clock: clocktesting.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))}
	f.client = fake.NewClientset()
	for _, o := range objs {
		if _, err := f.client.RegistryV1alpha1().ImageRegistryAccounts(o.Namespace).Create(context.Background(), o, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	factory := informers.NewSharedInformerFactoryWithOptions(f.client, 0, informers.WithNamespace(ns))
	o := NewOptions()
	o.Namespace = ns
	if opts != nil {
		opts(o)
	}
	a, err := newWithClock(factory.Registry().V1alpha1().ImageRegistryAccounts(), o, f.clock)
	if err != nil {
		t.Fatal(err)
	}
	inner := a.compare
	a.compare = func(h, p []byte) error {
		f.bcrypt.Add(1)
		return inner(h, p)
	}
	f.auth = a
	ctx, cancel := context.WithCancel(context.Background())
	f.cancel = cancel
	t.Cleanup(func() { cancel(); factory.Shutdown() })
	factory.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), a.HasSynced) {
		t.Fatal("cache not synced")
	}
	return f
}

func (f *fixture) verify(user, pw string) (Result, map[string][]string) {
	f.t.Helper()
	res, labels, err := f.auth.Verify(context.Background(), user, pw)
	if err != nil {
		f.t.Fatalf("Verify(%q): %v", user, err)
	}
	return res, labels
}

// eventually waits for the informer to see a change.
func (f *fixture) eventually(what string, cond func() bool) {
	f.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			f.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (f *fixture) update(a *registryv1alpha1.ImageRegistryAccount) {
	f.t.Helper()
	if _, err := f.client.RegistryV1alpha1().ImageRegistryAccounts(ns).Update(context.Background(), a, metav1.UpdateOptions{}); err != nil {
		f.t.Fatal(err)
	}
}

var pushLabels = map[string][]string{"namespace": {"team"}, "name": {"app"}, "type": {"push"}}
var pullLabels = map[string][]string{"namespace": {"team"}, "name": {"app"}, "type": {"pull"}}

func TestRotatingAccount(t *testing.T) {
	// rotation 5: passwords are [rotation 4 (previous), 5 (current), 6 (next)].
	f := newFixture(t, rotating(t, "push-x", "team/app", 5, pushLabels, "p0", "p1", "p2"))
	for _, tc := range []struct {
		user, pw string
		want     Result
	}{
		{"team/app/6", "p2", Allowed}, // next
		{"team/app/5", "p1", Allowed}, // current
		{"team/app/4", "p0", Allowed}, // previous, in its grace period
		{"team/app/5", "p2", Denied},  // the next password under the current rotation
		{"team/app/6", "p1", Denied},
		{"team/app/3", "p0", Denied}, // out of range
		{"team/app/7", "p2", Denied}, // out of range
		{"team/app/9223372036854775807", "p2", Denied},
		{"team/app/0", "p0", Denied},
		{"team/app/05", "p1", NoMatch}, // not canonical: a static reading only
		{"team/app", "p1", NoMatch},    // a rotating account needs the suffix
		{"team/other/5", "p1", NoMatch},
		{"team/app/5", "", Denied},
	} {
		res, labels := f.verify(tc.user, tc.pw)
		if res != tc.want {
			t.Errorf("%s/%s: %v, want %v", tc.user, tc.pw, res, tc.want)
		}
		if res == Allowed && !reflect.DeepEqual(labels, pushLabels) {
			t.Errorf("%s: labels %v, want %v", tc.user, labels, pushLabels)
		} else if res != Allowed && labels != nil {
			t.Errorf("%s: a failed login returned labels %v", tc.user, labels)
		}
	}
}

func TestAuthenticateContract(t *testing.T) {
	f := newFixture(t, rotating(t, "push-x", "team/app", 1, pushLabels, "p1", "p2"))
	ctx := context.Background()
	ok, labels, err := f.auth.Authenticate(ctx, "team/app/1", "p1")
	if !ok || err != nil || labels["type"][0] != "push" {
		t.Errorf("valid login: %v %v %v", ok, labels, err)
	}
	ok, labels, err = f.auth.Authenticate(ctx, "team/app/1", "wrong")
	if ok || err != nil || labels != nil {
		t.Errorf("wrong password: %v %v %v, want false, nil, nil", ok, labels, err)
	}
	ok, labels, err = f.auth.Authenticate(ctx, "nobody", "p1")
	if ok || !errors.Is(err, ErrNoMatch) || labels != nil {
		t.Errorf("unknown user: %v %v %v, want false, nil, ErrNoMatch", ok, labels, err)
	}
	ok, _, err = f.auth.Authenticate(ctx, "", "")
	if ok || !errors.Is(err, ErrNoMatch) {
		t.Errorf("anonymous: %v %v, want false, ErrNoMatch", ok, err)
	}
}

func TestOneBcryptPerLogin(t *testing.T) {
	f := newFixture(t, rotating(t, "push-x", "team/app", 2, pushLabels, "p0", "p1", "p2", "p3"))
	f.auth.cache.size = 0 // measure without the verified cache
	for _, pw := range []string{"p2", "wrong"} {
		before := f.bcrypt.Load()
		f.verify("team/app/2", pw)
		if n := f.bcrypt.Load() - before; n != 1 {
			t.Errorf("%s: %d bcrypt compares, want 1", pw, n)
		}
	}
}

func TestStaticAccount(t *testing.T) {
	// A static account whose username looks like a rotating login.
	f := newFixture(t,
		static(t, "ci", "", "static-a", "static-b"),
		static(t, "slashy", "ci/7", "p3"),
	)
	if res, labels := f.verify("ci", "static-b"); res != Allowed || labels["role"][0] != "ci" {
		t.Errorf("static second hash: %v %v", res, labels)
	}
	if res, _ := f.verify("ci", "static-a"); res != Allowed {
		t.Errorf("static first hash: %v", res)
	}
	if res, _ := f.verify("ci/1", "static-a"); res != NoMatch {
		t.Errorf("static account with a rotation suffix: %v, want NoMatch", res)
	}
	if res, _ := f.verify("ci/7", "p3"); res != Allowed {
		t.Errorf("static username ending in /7: %v", res)
	}
	if res, _ := f.verify("ci", "nope"); res != Denied {
		t.Errorf("static wrong password: %v", res)
	}
}

func TestPushAndPullShareUsername(t *testing.T) {
	f := newFixture(t,
		rotating(t, "push-app", "team/app", 3, pushLabels, "p0", "p1", "push-2"),
		rotating(t, "pull-app", "team/app", 1, pullLabels, "p3", "pull-2"),
	)
	if res, labels := f.verify("team/app/4", "push-2"); res != Allowed || labels["type"][0] != "push" {
		t.Errorf("push account: %v %v", res, labels)
	}
	if res, labels := f.verify("team/app/2", "pull-2"); res != Allowed || labels["type"][0] != "pull" {
		t.Errorf("pull account: %v %v", res, labels)
	}
	// Rotation 2 is in both ranges (push: previous, pull: next): each is checked.
	if res, labels := f.verify("team/app/2", "p0"); res != Allowed || labels["type"][0] != "push" {
		t.Errorf("push account's previous password: %v %v", res, labels)
	}
	if res, _ := f.verify("team/app/2", "push-2"); res != Denied {
		t.Errorf("a password of another rotation: %v", res)
	}
}

func TestExpiredAndDeletingAccounts(t *testing.T) {
	acc := rotating(t, "push-x", "team/app", 1, pushLabels, "p1", "p2")
	f := newFixture(t, acc)
	if res, _ := f.verify("team/app/1", "p1"); res != Allowed {
		t.Fatalf("before expiry: %v", res)
	}
	exp := metav1.NewTime(f.clock.Now().Add(time.Minute))
	acc = acc.DeepCopy()
	acc.Spec.ExpiresAt = &exp
	f.update(acc)
	f.eventually("expiry seen", func() bool {
		objs, _ := f.auth.source.byUsernames(context.Background(), []string{"team/app"})
		return len(objs) == 1 && objs[0].Spec.ExpiresAt != nil
	})
	if res, _ := f.verify("team/app/1", "p1"); res != Allowed {
		t.Errorf("before expiresAt: %v", res)
	}
	f.clock.Step(time.Minute)
	if res, _ := f.verify("team/app/1", "p1"); res != Denied {
		t.Errorf("at expiresAt (cached login): %v, want Denied", res)
	}

	acc = acc.DeepCopy()
	acc.Spec.ExpiresAt = nil
	now := metav1.NewTime(f.clock.Now())
	acc.DeletionTimestamp = &now
	acc.Finalizers = []string{"x"}
	f.update(acc)
	f.eventually("deletion seen", func() bool {
		objs, _ := f.auth.source.byUsernames(context.Background(), []string{"team/app"})
		return len(objs) == 1 && objs[0].DeletionTimestamp != nil
	})
	if res, _ := f.verify("team/app/1", "p1"); res != Denied {
		t.Errorf("being deleted: %v, want Denied", res)
	}
}

func TestVerifiedCache(t *testing.T) {
	acc := rotating(t, "push-x", "team/app", 1, pushLabels, "p0", "p1", "p2")
	f := newFixture(t, acc)
	if res, _ := f.verify("team/app/1", "p1"); res != Allowed {
		t.Fatal(res)
	}
	before := f.bcrypt.Load()
	for i := 0; i < 5; i++ {
		if res, _ := f.verify("team/app/1", "p1"); res != Allowed {
			t.Fatal(res)
		}
	}
	if n := f.bcrypt.Load() - before; n != 0 {
		t.Errorf("warm logins cost %d bcrypt compares, want 0", n)
	}
	// A wrong password is never served from the cache.
	if res, _ := f.verify("team/app/1", "p1x"); res != Denied {
		t.Errorf("wrong password: %v", res)
	}
	// Another rotation's login does not reuse the entry of rotation 1.
	if res, _ := f.verify("team/app/2", "p1"); res != Denied {
		t.Errorf("p1 under rotation 2: %v", res)
	}

	// TTL.
	f.clock.Step(DefaultCacheTTL)
	before = f.bcrypt.Load()
	f.verify("team/app/1", "p1")
	if n := f.bcrypt.Load() - before; n != 1 {
		t.Errorf("after the TTL: %d bcrypt compares, want 1", n)
	}

	// A rotation keeps the still-valid password's entry (its hash stays)...
	acc = acc.DeepCopy()
	rot := int64(2)
	acc.Spec.Rotation = &rot
	acc.Spec.Passwords = []string{hash(t, "p1"), hash(t, "p2"), hash(t, "p3")}
	f.update(acc)
	f.eventually("rotation seen", func() bool {
		objs, _ := f.auth.source.byUsernames(context.Background(), []string{"team/app"})
		return len(objs) == 1 && *objs[0].Spec.Rotation == 2
	})
	before = f.bcrypt.Load()
	if res, _ := f.verify("team/app/1", "p1"); res != Allowed {
		t.Errorf("previous password after rotation: %v", res)
	}
	if n := f.bcrypt.Load() - before; n != 0 {
		t.Errorf("rotation dropped a still valid cache entry (%d compares)", n)
	}
	// ...and a dropped hash fails at once and leaves the cache.
	f.verify("team/app/2", "p2") // cache p2
	acc = acc.DeepCopy()
	acc.Spec.Passwords = []string{hash(t, "p1"), hash(t, "p4")}
	f.update(acc)
	f.eventually("p2 purged", func() bool { return !f.auth.cache.has(hash(t, "p2"), f.auth.cache.digest("p2")) })
	if res, _ := f.verify("team/app/2", "p2"); res != Denied {
		t.Errorf("dropped password: %v, want Denied", res)
	}

	// Deletion revokes at once, cached or not.
	f.verify("team/app/2", "p1")
	if err := f.client.RegistryV1alpha1().ImageRegistryAccounts(ns).Delete(context.Background(), acc.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	// Wait for the informer without logging in meanwhile: a login racing
	// the deletion may cache an entry after the delete handler's purge (it
	// lingers until its TTL, harmless: every login looks the account up).
	f.eventually("deletion seen", func() bool {
		objs, _ := f.auth.source.byUsernames(context.Background(), []string{"team/app"})
		return len(objs) == 0
	})
	f.eventually("cache purged after the account's deletion", func() bool { return f.auth.cache.len() == 0 })
	if res, _ := f.verify("team/app/2", "p1"); res != NoMatch {
		t.Errorf("login after the account's deletion: %v, want NoMatch", res)
	}
}

func TestCacheBound(t *testing.T) {
	c := newVerifiedCache(3, time.Minute, clocktesting.NewFakeClock(time.Now()))
	for i := 0; i < 5; i++ {
		c.add(fmt.Sprint("h", i), c.digest("pw"))
	}
	if c.len() != 3 {
		t.Errorf("len %d, want 3", c.len())
	}
	if c.has("h0", c.digest("pw")) || !c.has("h4", c.digest("pw")) {
		t.Error("least recently used entries should go first")
	}
	if c.has("h4", c.digest("other")) {
		t.Error("hit for another password")
	}
}

func TestConcurrentLogins(t *testing.T) {
	acc := rotating(t, "push-x", "team/app", 1, pushLabels, "p0", "p1", "p2")
	f := newFixture(t, acc, static(t, "ci", "", "static-a"))
	var wg sync.WaitGroup
	errs := make(chan string, 100)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 30; i++ {
				user, pw, want := "team/app/1", "p1", Allowed
				switch (g + i) % 4 {
				case 1:
					pw, want = "bad", Denied
				case 2:
					user, pw = "ci", "static-a"
				case 3:
					user, want = "nobody", NoMatch
				}
				res, _, err := f.auth.Verify(context.Background(), user, pw)
				if err != nil || res != want {
					errs <- fmt.Sprintf("%s/%s: %v %v, want %v", user, pw, res, err, want)
				}
			}
		}(g)
	}
	// Concurrent updates exercise the purge path.
	for i := 0; i < 10; i++ {
		a := acc.DeepCopy()
		a.Spec.Labels = map[string][]string{"namespace": {"team"}, "type": {"push"}, "n": {fmt.Sprint(i)}}
		if i%2 == 1 {
			a.Spec.Passwords = append([]string{hash(t, "p3")}, a.Spec.Passwords...)
		}
		cur, err := f.client.RegistryV1alpha1().ImageRegistryAccounts(ns).Get(context.Background(), a.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		a.ResourceVersion = cur.ResourceVersion
		f.update(a)
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

func TestDirect(t *testing.T) {
	client := fake.NewClientset(
		rotating(t, "push-x", "team/app", 1, pushLabels, "p1", "p2"),
		static(t, "ci", "", "static-a"),
	)
	a := NewDirect(client, ns, "")
	for _, tc := range []struct {
		user, pw string
		want     Result
	}{
		{"team/app/2", "p2", Allowed},
		{"team/app/2", "p1", Denied},
		{"ci", "static-a", Allowed},
		{"other", "x", NoMatch},
	} {
		res, _, err := a.Verify(context.Background(), tc.user, tc.pw)
		if err != nil || res != tc.want {
			t.Errorf("%s: %v %v, want %v", tc.user, res, err, tc.want)
		}
	}
	if n := len(client.Actions()); n != 4 {
		t.Errorf("%d API requests for 4 logins, want one list each", n)
	}
}

func TestParseArgs(t *testing.T) {
	o, err := ParseArgs([]string{"--namespace=reg", "--auth-cache-size=10", "--auth-cache-ttl=5s"})
	if err != nil || o.Namespace != "reg" || o.CacheSize != 10 || o.CacheTTL != 5*time.Second || o.RequestTimeout != DefaultRequestTimeout {
		t.Errorf("ParseArgs: %+v %v", o, err)
	}
	for _, args := range [][]string{{"--namespace=reg", "--bogus"}, {"--namespace=reg", "extra"}, {"--namespace=reg", "--auth-cache-size=-1"}} {
		if _, err := ParseArgs(args); err == nil {
			t.Errorf("ParseArgs(%q) accepted", args)
		}
	}
}

// TestCompareSlotsBoundConcurrentBcrypt: with every compare slot taken by
// slow logins, one more waits instead of burning CPU beside them, and gives
// up when its request ends.
func TestCompareSlotsBoundConcurrentBcrypt(t *testing.T) {
	f := newFixtureWith(t, func(o *Options) { o.CompareConcurrency, o.UserLimitBurst = 2, 0 },
		rotating(t, "push.team.app", "team/app", 1, nil, "p0", "p1", "p2"))
	release := make(chan struct{})
	var inCompare atomic.Int64
	f.auth.compare = func(h, p []byte) error {
		inCompare.Add(1)
		<-release
		return errors.New("mismatch")
	}
	var wg sync.WaitGroup
	for i := 0; i < 2; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _, _ = f.auth.Verify(context.Background(), "team/app/1", "wrong")
		}()
	}
	f.eventually("two compares running", func() bool { return inCompare.Load() == 2 })

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, _, err := f.auth.Verify(ctx, "team/app/1", "wrong")
		done <- err
	}()
	f.eventually("a login waiting", func() bool { return f.auth.gate.waiting.Load() == 1 })
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("third login while both slots are busy: err = %v, want the request's end", err)
	}
	if n := inCompare.Load(); n != 2 {
		t.Errorf("%d compares ran, want 2: the third must wait for a slot", n)
	}
	close(release)
	wg.Wait()
}

// One trust domain per registry: an account that names other registries in
// spec.registries is refused like a wrong password (Denied, after a dummy
// compare), also for a login the verified cache holds; one that names none
// is valid for every registry of its namespace.
func TestRegistriesScopeAccounts(t *testing.T) {
	onlyA := rotating(t, "push-a", "team/a", 1, pushLabels, "p1", "p2")
	onlyA.Spec.Registries = []string{"registry-a"}
	onlyB := rotating(t, "push-b", "team/b", 1, pushLabels, "p3", "p4")
	onlyB.Spec.Registries = []string{"registry-b", "registry-c"}
	staticAcc := static(t, "ci-bot", "", "static-a")
	f := newFixtureWith(t, func(o *Options) { o.Registry = "registry-a" }, onlyA, onlyB, staticAcc)
	for _, c := range []struct {
		user, password string
		want           Result
	}{
		{"team/a/1", "p1", Allowed},
		{"team/b/1", "p3", Denied},
		{"team/b/1", "wrong", Denied},
		{"ci-bot", "static-a", Allowed},
	} {
		if res, _ := f.verify(c.user, c.password); res != c.want {
			t.Errorf("registry-a, %s: %v, want %v", c.user, res, c.want)
		}
	}

	// Moving an account to another registry takes effect on its next
	// login, cached or not.
	moved := onlyA.DeepCopy()
	moved.Spec.Registries = []string{"registry-b"}
	f.update(moved)
	f.eventually("the move seen", func() bool {
		objs, _ := f.auth.source.byUsernames(context.Background(), []string{"team/a"})
		return len(objs) == 1 && len(objs[0].Spec.Registries) == 1 && objs[0].Spec.Registries[0] == "registry-b"
	})
	if res, _ := f.verify("team/a/1", "p1"); res != Denied {
		t.Errorf("after the move: %v, want Denied", res)
	}

	// Without a registry name every account of the namespace is valid.
	all := newFixture(t, onlyA, onlyB)
	for user, password := range map[string]string{"team/a/1": "p1", "team/b/1": "p3"} {
		if res, _ := all.verify(user, password); res != Allowed {
			t.Errorf("no registry name, %s: %v, want Allowed", user, res)
		}
	}
}
