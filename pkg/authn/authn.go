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
	"runtime"
	"sort"

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

// MaxPasswordLength bounds the password accepted; bcrypt uses at most 72 bytes.
const MaxPasswordLength = 1024

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
	clock  clock.PassiveClock
	// compare checks a password against a bcrypt hash; a test seam.
	compare func(hash, password []byte) error
	// compareSlots bounds concurrent bcrypt compares, so that a flood of
	// logins with wrong passwords (each costs tens of milliseconds of CPU)
	// queues instead of starving the process; nil means no bound.
	compareSlots chan struct{}
	// hasSynced reports whether the account cache is filled; nil when the
	// source reads the API server directly.
	hasSynced cache.InformerSynced
}

// New makes an authenticator over an ImageRegistryAccount informer, which
// should watch the registry's namespace only. It adds the username index and
// an event handler that purges the verified cache, so it must be called
// before the informer starts. The caller starts the informer.
func New(inf informersv1alpha1.ImageRegistryAccountInformer, o *Options) (*Authenticator, error) {
	return newWithClock(inf, o, clock.RealClock{})
}

func newWithClock(inf informersv1alpha1.ImageRegistryAccountInformer, o *Options, clk clock.PassiveClock) (*Authenticator, error) {
	informer := inf.Informer()
	if err := informer.AddIndexers(cache.Indexers{UsernameIndex: usernameIndexFunc}); err != nil {
		return nil, fmt.Errorf("add username index: %w", err)
	}
	a := &Authenticator{
		source:    indexerSource{informer.GetIndexer()},
		cache:     newVerifiedCache(o.CacheSize, o.CacheTTL, clk),
		clock:     clk,
		compare:   bcrypt.CompareHashAndPassword,
		hasSynced: informer.HasSynced,
		// Two compares per core keep the CPU busy without letting a
		// flood of bad logins pile up goroutines burning it.
		compareSlots: make(chan struct{}, 2*runtime.GOMAXPROCS(0)),
	}
	if _, err := informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		UpdateFunc: func(oldObj, newObj any) {
			oldAcc, ok1 := oldObj.(*registryv1alpha1.ImageRegistryAccount)
			newAcc, ok2 := newObj.(*registryv1alpha1.ImageRegistryAccount)
			if ok1 && ok2 {
				a.cache.purge(removedHashes(oldAcc.Spec.Passwords, newAcc.Spec.Passwords))
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

// NewDirect makes an authenticator without a cache: each login lists the
// namespace's accounts from the API server. It suits one-shot processes such
// as the ext_auth binary.
func NewDirect(client versioned.Interface, namespace string) *Authenticator {
	return &Authenticator{
		source:  listSource{client: client, namespace: namespace},
		clock:   clock.RealClock{},
		compare: bcrypt.CompareHashAndPassword,
	}
}

// HasSynced tells whether the account cache has been filled.
func (a *Authenticator) HasSynced() bool {
	return a.hasSynced == nil || a.hasSynced()
}

// Authenticate checks a login, docker_auth style: ok with the account's
// labels when the password verifies; ok false and err ErrNoMatch when no
// account answers to the name; ok false and a nil error when the login is
// refused; another error when the accounts cannot be read.
func (a *Authenticator) Authenticate(ctx context.Context, user, password string) (ok bool, labels map[string][]string, err error) {
	res, labels, err := a.Verify(ctx, user, password)
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
	l, ok := ParseLogin(user)
	if !ok {
		return NoMatch, nil, nil
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

	type candidate struct {
		account *registryv1alpha1.ImageRegistryAccount
		hashes  []string
	}
	var candidates []candidate
	named := false
	now := a.clock.Now()
	for _, acc := range accounts {
		hashes, n := hashesFor(acc, l)
		if !n {
			continue
		}
		named = true
		if len(hashes) > 0 && usable(acc, now) {
			candidates = append(candidates, candidate{acc, hashes})
		}
	}
	if !named {
		return NoMatch, nil, nil
	}
	if len(candidates) == 0 || len(password) > MaxPasswordLength || password == "" {
		return Denied, nil, nil
	}

	var digest [32]byte
	if a.cache.enabled() {
		digest = a.cache.digest(password)
		for _, c := range candidates {
			for _, h := range c.hashes {
				if a.cache.has(h, digest) {
					return Allowed, copyLabels(c.account.Spec.Labels), nil
				}
			}
		}
	}
	if a.compareSlots != nil {
		select {
		case a.compareSlots <- struct{}{}:
			defer func() { <-a.compareSlots }()
		case <-ctx.Done():
			return NoMatch, nil, fmt.Errorf("waiting to check a password: %w", ctx.Err())
		}
	}
	for _, c := range candidates {
		for _, h := range c.hashes {
			if a.compare([]byte(h), []byte(password)) == nil {
				a.cache.add(h, digest)
				return Allowed, copyLabels(c.account.Spec.Labels), nil
			}
		}
	}
	return Denied, nil, nil
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
