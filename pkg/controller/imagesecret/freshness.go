package imagesecret

import (
	"hash/fnv"
	"strconv"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"

	"github.com/image-registry-operator/image-registry-operator/pkg/apis/registry/v1alpha1"
)

// Live reads cost three GETs per write decision, a third of all requests in
// a burst of new objects. They are needed only when the informer caches may
// be older than what this process itself last wrote: a decision from such a
// cache could undo its own progress (say, drop from the account a hash it
// just published) with writes whose resourceVersion preconditions still
// hold. lastWrites remembers, per object, the resourceVersions of the
// object, its Secret and its account that the last successful apply left
// behind (what it wrote or, where it wrote nothing, what it read live).
// resourceVersions of one resource are ordered (KEP-5504, comparable
// resource versions), so a sync compares the cached objects with that
// record:
//
//   - each cached object at the recorded version or newer: the cache holds
//     this process's last writes and whatever others wrote after them, as
//     far as the watch has told. Deciding from it is as good as a live read;
//     every write stays conditional (resourceVersion preconditions, creates),
//     so a change the watch has not delivered yet makes the write fail
//     instead of overwriting it.
//   - some cached object older than the record, none unknown: the cache has
//     not caught up with our own writes. Their watch events are on the way
//     and will enqueue the object again, so this sync does nothing but arm
//     a retry (behindRetry) in case an event never comes.
//   - otherwise (no record, a record of another incarnation of the object,
//     a recorded object absent from the cache, an unparsable version): live
//     reads. An absent object is never
//     "behind": a deletion after our create looks the same in the cache.
type lastWrites struct {
	mu sync.Mutex
	m  map[cache.ObjectName]writeRecord
}

// writeRecord holds resourceVersions as numbers (0: absent), which keeps a
// record at a few dozen bytes per object, and a hash of the object's UID:
// the record describes one incarnation of the object, and the Secret and
// account names it resolved then.
type writeRecord struct {
	uid                 uint64
	cr, secret, account uint64
}

type freshness int

// behindRetry re-syncs an object whose cache was behind our writes even if
// no event arrives (one filtered away, a relist that merged versions).
const behindRetry = 30 * time.Second

const (
	cacheUnknown freshness = iota // read live
	cacheCurrent                  // decide from the cache
	cacheBehind                   // wait for our own writes' events
)

func newLastWrites() *lastWrites {
	return &lastWrites{m: map[cache.ObjectName]writeRecord{}}
}

func (l *lastWrites) get(key cache.ObjectName) (writeRecord, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	r, ok := l.m[key]
	return r, ok
}

// set records the versions an apply left behind ("" for absent). A version
// that is not a well-formed number cannot be compared: no record then.
func (l *lastWrites) set(key cache.ObjectName, uid types.UID, cr, secret, account string) {
	r := writeRecord{uid: uidHash(uid)}
	var ok [3]bool
	r.cr, ok[0] = parseVersion(cr)
	r.secret, ok[1] = parseVersion(secret)
	r.account, ok[2] = parseVersion(account)
	l.mu.Lock()
	defer l.mu.Unlock()
	if ok != [3]bool{true, true, true} {
		delete(l.m, key)
		return
	}
	l.m[key] = r
}

func (l *lastWrites) forget(key cache.ObjectName) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.m, key)
}

// parseVersion reads a resourceVersion the way
// k8s.io/apimachinery/pkg/util/resourceversion compares them: a positive
// decimal without leading zeros. "" (absent) is 0.
func parseVersion(rv string) (uint64, bool) {
	if rv == "" {
		return 0, true
	}
	if rv[0] == '0' {
		return 0, false
	}
	v, err := strconv.ParseUint(rv, 10, 64)
	return v, err == nil
}

func uidHash(uid types.UID) uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(uid))
	return h.Sum64()
}

// classify tells how the cached world relates to the record. A record of
// another incarnation of the object (deleted and created again under the
// same name) says nothing about this one.
func (r writeRecord) classify(w *world) freshness {
	if uidHash(w.cr.meta.UID) != r.uid {
		return cacheUnknown
	}
	behind := false
	for _, v := range []struct {
		cached   string
		recorded uint64
	}{
		{w.cr.meta.ResourceVersion, r.cr},
		{secretVersion(w.secret), r.secret},
		{accountVersion(w.account), r.account},
	} {
		if v.recorded == 0 {
			continue
		}
		cached, ok := parseVersion(v.cached)
		switch {
		case !ok, cached == 0:
			return cacheUnknown
		case cached < v.recorded:
			behind = true
		}
	}
	if behind {
		return cacheBehind
	}
	return cacheCurrent
}

func secretVersion(s *corev1.Secret) string {
	if s == nil {
		return ""
	}
	return s.ResourceVersion
}

func accountVersion(a *v1alpha1.ImageRegistryAccount) string {
	if a == nil {
		return ""
	}
	return a.ResourceVersion
}
