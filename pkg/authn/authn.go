// Package authn authenticates registry logins against ImageRegistryAccounts.
//
// A login name names an account and, for rotating accounts, the rotation
// whose password is presented (see Login), so a login costs one bcrypt
// compare. Accounts are read from an informer cache of one namespace, indexed
// by username, so a login never scans the namespace. docker_auth's ext_auth
// process asks a long-running sidecar that holds such a cache (pkg/extauth,
// k8s-docker-authn --serve); only when none answers does it check the login
// on its own, reading the accounts with one list request (NewDirect).
//
// A successful login returns the account's spec.labels, unchanged (for
// operator-made accounts: namespace, name and type). No label is synthesized:
// the ACL has ${account} for the login name.
//
// A login that fails is a failed login: ok is false, and no labels are
// returned. The caller (the ACL) decides what anonymous requests may do.
package authn

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"sync/atomic"

	"golang.org/x/crypto/bcrypt"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/clock"

	registryv1alpha1 "github.com/image-registry-operator/image-registry-operator/pkg/apis/registry/v1alpha1"
	"github.com/image-registry-operator/image-registry-operator/pkg/generated/clientset/versioned"
	informersv1alpha1 "github.com/image-registry-operator/image-registry-operator/pkg/generated/informers/externalversions/registry/v1alpha1"
)

// ErrNoMatch is returned, with ok false, when no account answers to the
// login name: the login is not ours. It follows docker_auth's convention, in
// which "no match" lets another authenticator try.
var ErrNoMatch = errors.New("no account with this login name")

// MaxPasswordLength bounds the password that front ends read (it bounds
// their input); a longer one is malformed input.
const MaxPasswordLength = 1024

// MaxBcryptPasswordLength is the longest password a login may present:
// bcrypt reads only the first 72 bytes, so a longer one would verify
// whatever followed them. Longer passwords are Denied, for every account.
const MaxBcryptPasswordLength = 72

// UsernameIndex is the informer index of accounts by username.
const UsernameIndex = "username"

// Result is the outcome of a login.
type Result int

const (
	// NoMatch: no account answers to the login name.
	NoMatch Result = iota
	// Denied: an account answers to the login name, but the password does
	// not verify, the rotation is out of range, or the account has expired
	// or is being deleted.
	Denied
	// Allowed: the password verified.
	Allowed
)

func (r Result) String() string {
	switch r {
	case Allowed:
		return "allowed"
	case Denied:
		return "denied"
	default:
		return "no match"
	}
}

// accountSource finds the accounts whose username is one of the given ones.
type accountSource interface {
	byUsernames(ctx context.Context, usernames []string) ([]*registryv1alpha1.ImageRegistryAccount, error)
}

// Authenticator checks logins. It is safe for concurrent use.
type Authenticator struct {
	source accountSource
	cache  *verifiedCache
	clock  clock.Clock
	// compare checks a password against a bcrypt hash; a test seam.
	compare func(hash, password []byte) error
	// gate bounds concurrent bcrypt compares and the logins waiting for
	// one (limits.go); nil means no bound.
	gate *compareGate
	// limits are the failed-login budgets (limits.go); nil means none.
	limits *limits
	// dummyCost is the bcrypt cost of dummy compares: that of the
	// rotating accounts last seen.
	dummyCost atomic.Int32
	// hasSynced reports whether the account cache is filled; nil when the
	// source reads the API server directly.
	hasSynced cache.InformerSynced
	// registry is Options.Registry.
	registry string
}

// New makes an authenticator over an ImageRegistryAccount informer, which
// should watch the registry's namespace only. It adds the username index and
// an event handler that purges the verified cache, so it must be called
// before the informer starts. The caller starts the informer.
func New(inf informersv1alpha1.ImageRegistryAccountInformer, o *Options) (*Authenticator, error) {
	return newWithClock(inf, o, clock.RealClock{})
}

func newWithClock(inf informersv1alpha1.ImageRegistryAccountInformer, o *Options, clk clock.Clock) (*Authenticator, error) {
	informer := inf.Informer()
	if err := informer.AddIndexers(cache.Indexers{UsernameIndex: usernameIndexFunc}); err != nil {
		return nil, fmt.Errorf("add username index: %w", err)
	}
	concurrency := o.CompareConcurrency
	if concurrency <= 0 {
		concurrency = DefaultCompareConcurrency()
	}
	wait := o.CompareWait
	if wait <= 0 {
		wait = DefaultCompareWait
	}
	lo := *o
	if lo.LimitEntries <= 0 {
		lo.LimitEntries = DefaultLimitEntries
	}
	if lo.UserLimitInterval <= 0 {
		lo.UserLimitInterval = DefaultUserLimitInterval
	}
	if lo.ClientLimitInterval <= 0 {
		lo.ClientLimitInterval = DefaultClientLimitInterval
	}
	a := &Authenticator{
		source:    indexerSource{informer.GetIndexer()},
		cache:     newVerifiedCache(o.CacheSize, o.CacheTTL, clk),
		clock:     clk,
		compare:   bcrypt.CompareHashAndPassword,
		hasSynced: informer.HasSynced,
		gate:      newCompareGate(concurrency, max(o.CompareQueue, 0), wait, clk),
		limits:    newLimits(&lo),
		registry:  o.Registry,
	}
	a.dummyCost.Store(DefaultDummyCost)
	if _, err := informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			if acc, ok := obj.(*registryv1alpha1.ImageRegistryAccount); ok {
				a.noteCost(acc)
			}
		},
		UpdateFunc: func(oldObj, newObj any) {
			oldAcc, ok1 := oldObj.(*registryv1alpha1.ImageRegistryAccount)
			newAcc, ok2 := newObj.(*registryv1alpha1.ImageRegistryAccount)
			if ok1 && ok2 {
				a.cache.purge(removedHashes(oldAcc.Spec.Passwords, newAcc.Spec.Passwords))
				a.noteCost(newAcc)
			}
		},
		DeleteFunc: func(obj any) {
			if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			if acc, ok := obj.(*registryv1alpha1.ImageRegistryAccount); ok {
				a.cache.purge(removedHashes(acc.Spec.Passwords, nil))
			}
		},
	}); err != nil {
		return nil, fmt.Errorf("add account event handler: %w", err)
	}
	return a, nil
}

// noteCost makes dummy compares cost what the compares of a rotating
// account cost: all of a namespace's operator-made accounts share the
// operator's --bcrypt-cost.
func (a *Authenticator) noteCost(acc *registryv1alpha1.ImageRegistryAccount) {
	if acc.Spec.Rotation == nil {
		return
	}
	if c, ok := dummyCostOf(acc.Spec.Passwords); ok {
		a.dummyCost.Store(int32(c))
	}
}

// NewForConfig makes an authenticator with its own informer of
// o.Namespace's accounts, starts it and waits up to o.RequestTimeout for its
// cache to fill. The informer stops with ctx. It needs get, list and watch on
// imageregistryaccounts in that namespace only.
func NewForConfig(ctx context.Context, cfg *rest.Config, o *Options) (*Authenticator, error) {
	a, err := Start(ctx, cfg, o)
	if err != nil {
		return nil, err
	}
	syncCtx, cancel := context.WithTimeout(ctx, o.RequestTimeout)
	defer cancel()
	if !cache.WaitForCacheSync(syncCtx.Done(), a.hasSynced) {
		return nil, fmt.Errorf("ImageRegistryAccounts of namespace %s not synced within %s", o.Namespace, o.RequestTimeout)
	}
	return a, nil
}

// NewDirect makes an authenticator without a cache for the registry named
// registry (see Options.Registry): each login lists the namespace's
// accounts from the API server. It suits one-shot processes such
// as the ext_auth binary, which answer one login each: they have no
// verified cache, no compare queue and no failed-login budgets to keep.
func NewDirect(client versioned.Interface, namespace, registry string) *Authenticator {
	a := &Authenticator{
		source:   listSource{client: client, namespace: namespace},
		clock:    clock.RealClock{},
		compare:  bcrypt.CompareHashAndPassword,
		registry: registry,
	}
	a.dummyCost.Store(DefaultDummyCost)
	return a
}

// HasSynced tells whether the account cache has been filled.
func (a *Authenticator) HasSynced() bool {
	return a.hasSynced == nil || a.hasSynced()
}

// Authenticate checks a login, docker_auth style: ok with the account's
// labels when the password verifies; ok false and err ErrNoMatch when no
// account answers to the name; ok false and a nil error when the login is
// refused; another error when it was not checked: the accounts cannot be
// read, ErrBusy, or a *LimitError.
func (a *Authenticator) Authenticate(ctx context.Context, user, password string) (ok bool, labels map[string][]string, err error) {
	return a.AuthenticateFrom(ctx, netip.Addr{}, user, password)
}

// AuthenticateFrom is Authenticate for a login from the client address
// client (the zero Addr when unknown), whose failed logins are limited too.
func (a *Authenticator) AuthenticateFrom(ctx context.Context, client netip.Addr, user, password string) (ok bool, labels map[string][]string, err error) {
	res, labels, err := a.VerifyFrom(ctx, client, user, password)
	switch {
	case err != nil:
		return false, nil, err
	case res == Allowed:
		return true, labels, nil
	case res == NoMatch:
		return false, nil, ErrNoMatch
	default:
		return false, nil, nil
	}
}

// Verify checks a login and tells its Result; labels are set only when it
// is Allowed.
func (a *Authenticator) Verify(ctx context.Context, user, password string) (Result, map[string][]string, error) {
	return a.VerifyFrom(ctx, netip.Addr{}, user, password)
}

// toCompare is a hash a login is compared with, and the account it
// belongs to (nil for a dummy hash).
type toCompare struct {
	hash    []byte
	account *registryv1alpha1.ImageRegistryAccount
}

// VerifyFrom checks a login from the client address client (the zero Addr
// when unknown) and tells its Result; labels are set only when it is
// Allowed.
//
// What a login costs:
//   - a password longer than MaxBcryptPasswordLength is Denied at once,
//     whoever the user: bcrypt would ignore its end.
//   - a login the verified cache holds: no compare, no wait, no budget.
//   - any other: first the budgets of the client address and the user
//     name (without its rotation suffix) must hold a token (else a *LimitError), then a compare slot
//     (else ErrBusy), then one compare per hash that may verify the login,
//     each paid with a token, stopping at the first that verifies: one for
//     a rotating login, at most one per distinct valid hash of a static
//     account. A login that verifies gets its tokens back.
//   - a login no hash can verify (unknown user, rotation out of range,
//     expired account, empty password) costs one dummy compare, so that it
//     answers no faster than a wrong password.
func (a *Authenticator) VerifyFrom(ctx context.Context, client netip.Addr, user, password string) (Result, map[string][]string, error) {
	l, ok := ParseLogin(user)
	if !ok {
		return NoMatch, nil, nil
	}
	if len(password) > MaxBcryptPasswordLength {
		return Denied, nil, nil
	}
	names := []string{l.Name}
	if l.HasRotation {
		names = append(names, l.Base)
	}
	accounts, err := a.source.byUsernames(ctx, names)
	if err != nil {
		return NoMatch, nil, err
	}
	// Deterministic order, should two accounts ever verify the same login.
	sort.Slice(accounts, func(i, j int) bool { return accounts[i].Name < accounts[j].Name })

	// The hashes that may verify the login: each once, valid ones only.
	var hashes []toCompare
	seen := map[string]bool{}
	named := false
	now := a.clock.Now()
	for _, acc := range accounts {
		hs, n := hashesFor(acc, l)
		if !n {
			continue
		}
		named = true
		// An account of another registry, like an expired one, verifies
		// nothing: the login is Denied after a dummy compare, exactly as
		// with a wrong password.
		if !usable(acc, now) || !validFor(acc, a.registry) || password == "" {
			continue
		}
		for _, h := range hs {
			if seen[h] {
				continue
			}
			seen[h] = true
			if _, err := bcrypt.Cost([]byte(h)); err != nil {
				continue // not a bcrypt hash: it verifies nothing
			}
			hashes = append(hashes, toCompare{hash: []byte(h), account: acc})
		}
	}
	miss := NoMatch
	if named {
		miss = Denied
	}

	var digest [32]byte
	if len(hashes) > 0 && a.cache.enabled() {
		digest = a.cache.digest(password)
		if acc := a.cached(hashes, digest); acc != nil {
			return Allowed, copyLabels(acc.Spec.Labels), nil
		}
	}

	// Not served by the cache: the login pays for its compares, from the
	// budget of its client address and of its user name without the
	// rotation suffix. The key depends on the name alone, never on which
	// accounts exist or which rotations are in range, so that the answers
	// to a made-up name run out exactly like a real one's. Only the table
	// differs: names of accounts apart from made-up ones, which then
	// cannot push an account's budget out, however many.
	ch := charge{}
	if a.limits != nil {
		ch.client = a.limits.client
		if k, ok := clientKey(client); ok {
			ch.clientKey = k
		} else {
			ch.client = nil
		}
		ch.userKey = l.Name
		if l.HasRotation {
			ch.userKey = l.Base
		}
		ch.user = a.limits.others
		for _, acc := range accounts {
			if Username(acc) == ch.userKey {
				ch.user = a.limits.accounts
				break
			}
		}
	}
	if err := ch.check(now); err != nil {
		return NoMatch, nil, err
	}
	if a.gate != nil {
		if err := a.gate.acquire(ctx); err != nil {
			return NoMatch, nil, err
		}
		defer a.gate.release()
		// While this login waited, another with the same password may
		// have verified it.
		if len(hashes) > 0 && a.cache.enabled() {
			if acc := a.cached(hashes, digest); acc != nil {
				return Allowed, copyLabels(acc.Spec.Labels), nil
			}
		}
	}
	if len(hashes) == 0 {
		hashes = []toCompare{{hash: dummyHash(int(a.dummyCost.Load()))}}
	}
	for _, h := range hashes {
		if err := ch.take(a.clock.Now()); err != nil {
			return NoMatch, nil, err
		}
		if a.compare(h.hash, []byte(password)) == nil && h.account != nil {
			ch.refund(a.clock.Now())
			a.cache.add(string(h.hash), digest)
			return Allowed, copyLabels(h.account.Spec.Labels), nil
		}
	}
	return miss, nil, nil
}

// cached returns the account of the first hash the verified cache holds
// for the password with this digest.
func (a *Authenticator) cached(hashes []toCompare, digest [32]byte) *registryv1alpha1.ImageRegistryAccount {
	for _, h := range hashes {
		if a.cache.has(string(h.hash), digest) {
			return h.account
		}
	}
	return nil
}

func usernameIndexFunc(obj any) ([]string, error) {
	acc, ok := obj.(*registryv1alpha1.ImageRegistryAccount)
	if !ok {
		return nil, fmt.Errorf("unexpected object %T", obj)
	}
	return []string{Username(acc)}, nil
}

// indexerSource reads accounts from an informer's indexer. The objects are
// shared with the cache and must not be modified.
type indexerSource struct {
	indexer cache.Indexer
}

func (s indexerSource) byUsernames(_ context.Context, usernames []string) ([]*registryv1alpha1.ImageRegistryAccount, error) {
	var out []*registryv1alpha1.ImageRegistryAccount
	for _, u := range usernames {
		objs, err := s.indexer.ByIndex(UsernameIndex, u)
		if err != nil {
			return nil, err
		}
		for _, o := range objs {
			if acc, ok := o.(*registryv1alpha1.ImageRegistryAccount); ok {
				out = append(out, acc)
			}
		}
	}
	return out, nil
}

// listSource lists the namespace's accounts on every lookup. The API offers
// no field selector on spec.username, and a login name does not determine
// an account's name, so a GET cannot replace the list: an operator-made
// account is named <type>.<namespace>.<name> while its push and pull twins
// share the username <namespace>/<name>, and a static account may carry any
// spec.username under any name. One list per process is what a one-shot
// ext_auth call costs; the sidecar path does not list at all.
type listSource struct {
	client    versioned.Interface
	namespace string
}

func (s listSource) byUsernames(ctx context.Context, usernames []string) ([]*registryv1alpha1.ImageRegistryAccount, error) {
	list, err := s.client.RegistryV1alpha1().ImageRegistryAccounts(s.namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list ImageRegistryAccounts in namespace %s: %w", s.namespace, err)
	}
	var out []*registryv1alpha1.ImageRegistryAccount
	for i := range list.Items {
		u := Username(&list.Items[i])
		for _, want := range usernames {
			if u == want {
				out = append(out, &list.Items[i])
				break
			}
		}
	}
	return out, nil
}

// removedHashes are the hashes of old that are not in new.
func removedHashes(old, new []string) map[string]bool {
	var out map[string]bool
	for _, h := range old {
		found := false
		for _, n := range new {
			if n == h {
				found = true
				break
			}
		}
		if !found {
			if out == nil {
				out = map[string]bool{}
			}
			out[h] = true
		}
	}
	return out
}

// ResetCache forgets every verified login, so the next login of each
// account pays its bcrypt compare again.
func (a *Authenticator) ResetCache() {
	a.cache.reset()
}
