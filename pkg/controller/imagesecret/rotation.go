package imagesecret

// The rotation protocol.
//
// State lives in three places: the object's status (rotation r and bcrypt
// hashes [previous], current, next), the ImageRegistryAccount (a mirror of
// the status that the authenticator reads) and the Secret (username with r,
// the plaintext current password and the plaintext next password). The
// plaintexts live only in the Secret; the operator keeps no other copy, so
// after a crash the Secret is the only place to recover them from.
//
// Every sync first works out which published hashes the Secret's plaintexts
// verify against (decide), then writes in one fixed order:
//
//  1. the status (UpdateStatus, optimistic concurrency on resourceVersion),
//  2. the account, made equal to the status just written,
//  3. the Secret, only with plaintexts whose hashes steps 1 and 2 published,
//  4. the Ready condition.
//
// A write that fails stops the sync, so a later step never runs without the
// earlier ones. Every write is conditional (resourceVersion preconditions,
// creates), so a decision from a cache that is behind cannot publish over
// newer state or write a Secret from an outdated view: its write fails and
// the sync decides again from live reads (sync.go). Every decision reads
// API state only, so a restarted process decides the same.
//
// The transitions (decide) and why each is safe if the process stops after
// any write:
//
//   - initialize (no hashes yet): fresh current and next at rotation 0,
//     published, then the Secret is created. A crash before the Secret write
//     leaves hashes nobody knows a password for; the next sync finds the
//     Secret missing and resets.
//   - rotate (rotationDate+interval passed, or the rotate annotation
//     changed): the known next becomes current, a fresh next is generated,
//     the old current stays as previous: [cur, next, new]. After a crash
//     between status and Secret the Secret still holds the old current and
//     the old next, username r-1: the old current verifies as "previous" and
//     keeps working; the old next verifies as "current" (see lagging below).
//   - lagging Secret (its nextpassword verifies the current hash, so the
//     new next was lost): replaceNext generates another next, publishes
//     [previous, current, another], then writes the Secret at rotation r.
//     The previous hash is kept because the Secret's password still uses it.
//   - replaceNext also repairs an edited nextpassword.
//   - reset (the Secret is gone or its password verifies no current hash):
//     fresh current and next at rotation r+1; the old current (clients may
//     hold a copy of a deleted Secret) stays as previous for the grace
//     period. Hashes are found by rotation number, so a kept hash must stay
//     at its rotation: if the current password never was a Secret's
//     password (the Secret's password is the previous one, or the current
//     one was issued by initialize/reset, marked by Ready=False reason
//     Issuing until the Secret has it, and the process stopped before the
//     Secret write, or a rotation's Secret write found the Secret deleted,
//     which sets Issuing too), rotation r is re-issued in place instead and
//     the previous hash stays. So repeated crashes never push out the hash that
//     the last distributed password verifies.
//   - dropPrevious: the previous hash is removed only when the Secret's
//     password is the current one and the grace period, counted from the
//     moment the Secret itself changed (annotation AnnotationRotatedAt,
//     written atomically with the Secret content), has passed. Counting from
//     the Secret, not from status.rotationDate, matters: after a crash
//     between publish and Secret write the Secret may change much later
//     than the rotation began.
//
// Hence: a password is in a Secret only after its hash is in the status and
// the account (invariant 1); the previous password is removed at the first
// sync after its grace period, which a queue.AddAfter timer triggers
// (invariant 2); a hash that the Secret's password verifies is never
// removed, so clients of the current Secret keep access at every step, and
// each account is created only after the finalizer that removes it is on
// the object (invariants 3 and 4).
//
// A rotation never starts while a previous password is still in its grace
// period (at most three hashes); it waits for the grace period to end. With
// rotationInterval shorter than the grace period rotations therefore happen
// every grace period.

import (
	"fmt"
	"hash/fnv"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/image-registry-operator/image-registry-operator/pkg/apis/registry/v1alpha1"
	"github.com/image-registry-operator/image-registry-operator/pkg/credentials"
)

type credAction int

const (
	actionKeep credAction = iota
	actionInitialize
	actionReset
	actionReplaceNext
	actionRotate
	actionDropPrevious
)

func (a credAction) String() string {
	return [...]string{"keep", "initialize", "reset", "replaceNext", "rotate", "dropPrevious"}[a]
}

// decision is what decide found out about an object's credentials.
type decision struct {
	action credAction
	// cur and next are the plaintexts recovered from the Secret (or, after
	// advance, the ones to write to it).
	cur, next string
	// inUseHash is the published hash that the Secret's password verifies.
	inUseHash string
	// secretCurrent: the Secret's password is the current password.
	secretCurrent bool
	// manual: the rotate annotation asks for a rotation not yet done.
	manual bool
	// due is when the scheduled rotation fell due.
	due time.Time
}

// decide compares the Secret's plaintexts with the published hashes. It
// never writes and never generates passwords.
func (c *Controller) decide(cr *imageSecret, secret *corev1.Secret, now time.Time) decision {
	st := cr.status
	var d decision
	n := len(st.Passwords)
	if n < 2 || n > 3 {
		if n == 0 && st.RotationDate == nil {
			d.action = actionInitialize
		} else {
			d.action = actionReset
		}
		return d
	}
	prevHash, curHash, nextHash := "", st.Passwords[n-2], st.Passwords[n-1]
	if n == 3 {
		prevHash = st.Passwords[0]
	}
	var password, nextPassword string
	if secret != nil {
		password, nextPassword = string(secret.Data[credentials.KeyPassword]), string(secret.Data[credentials.KeyNextPassword])
	}
	switch {
	case c.verifier.verify(curHash, password):
		d.cur, d.secretCurrent, d.inUseHash = password, true, curHash
		if c.verifier.verify(nextHash, nextPassword) {
			d.next = nextPassword
		}
	case c.verifier.verify(curHash, nextPassword):
		// The Secret lags one rotation behind the status.
		d.cur = nextPassword
		if c.verifier.verify(prevHash, password) {
			d.inUseHash = prevHash
		}
	default:
		if c.verifier.verify(prevHash, password) {
			d.inUseHash = prevHash
		}
		d.action = actionReset
		return d
	}
	if d.next == "" {
		d.action = actionReplaceNext
		return d
	}

	d.manual = c.rotateRequested(cr)
	graceOver := n < 3 || !now.Before(c.graceEnd(cr, secret))
	d.due = c.rotationDue(cr, st.RotationDate)
	due := d.manual || !now.Before(d.due)
	switch {
	case due && graceOver:
		d.action = actionRotate
	case n == 3 && graceOver:
		d.action = actionDropPrevious
	}
	return d
}

func (c *Controller) rotateRequested(cr *imageSecret) bool {
	v := cr.meta.Annotations[v1alpha1.AnnotationRotate]
	return v != "" && v != cr.status.RotateRequest
}

// advance applies a decision to a copy of the status: it generates the
// passwords a transition needs and publishes their hashes there. d.cur and
// d.next become the plaintexts for the Secret.
func (c *Controller) advance(cr *imageSecret, st *v1alpha1.ImageSecretStatus, d *decision, now time.Time) error {
	n := len(st.Passwords)
	fresh := func() (string, string, error) {
		p, err := newPassword(c.randRead)
		if err != nil {
			return "", "", err
		}
		h, err := hashPassword(p, c.opts.BcryptCost)
		if err == nil {
			c.verifier.remember(h, p)
		}
		return p, h, err
	}
	rotatedNow := func() {
		// Whole seconds, as the API stores it, so that what is derived
		// from it (nextRotationDate) does not change once stored.
		t := metav1.NewTime(now.Truncate(time.Second))
		st.RotationDate = &t
		st.RotateRequest = cr.meta.Annotations[v1alpha1.AnnotationRotate]
	}
	switch d.action {
	case actionInitialize, actionReset:
		cur, curHash, err := fresh()
		if err != nil {
			return err
		}
		next, nextHash, err := fresh()
		if err != nil {
			return err
		}
		switch {
		case d.action == actionInitialize:
			st.Rotation = 0
			st.Passwords = []string{curHash, nextHash}
		case n < 2 || n > 3:
			st.Rotation++
			st.Passwords = []string{curHash, nextHash}
		case n == 3 && (d.inUseHash == st.Passwords[0] || issuing(st)):
			// The current password never was a Secret's password: either
			// the Secret's password is still the previous one, or the
			// current one was issued and never reached the Secret. Re-issue
			// this rotation and keep the previous hash where it is, at
			// rotation-1, which is what its holders log in with.
			st.Passwords = []string{st.Passwords[0], curHash, nextHash}
		case issuing(st):
			st.Passwords = []string{curHash, nextHash}
		default:
			// The current password was handed out: it stays valid as
			// the previous one for the grace period.
			st.Passwords = []string{st.Passwords[n-2], curHash, nextHash}
			st.Rotation++
		}
		d.cur, d.next = cur, next
		rotatedNow()
	case actionReplaceNext:
		next, nextHash, err := fresh()
		if err != nil {
			return err
		}
		st.Passwords = append(append([]string(nil), st.Passwords[:n-1]...), nextHash)
		d.next = next
	case actionRotate:
		next, nextHash, err := fresh()
		if err != nil {
			return err
		}
		st.Passwords = []string{st.Passwords[n-2], st.Passwords[n-1], nextHash}
		st.Rotation++
		d.cur, d.next = d.next, next
		rotatedNow()
	case actionDropPrevious:
		st.Passwords = []string{st.Passwords[n-2], st.Passwords[n-1]}
	case actionKeep:
	default:
		return fmt.Errorf("unknown action %v", d.action)
	}
	return nil
}

// issuing tells whether the status' current password was issued by
// initialize or reset and has not yet been confirmed in the Secret (the
// Ready condition says Issuing until it is).
func issuing(st *v1alpha1.ImageSecretStatus) bool {
	c := meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionReady)
	return c != nil && c.Reason == ReasonIssuing
}

func (c *Controller) rotationInterval(cr *imageSecret) time.Duration {
	if ri := cr.spec.RotationInterval; ri != nil && ri.Duration > 0 {
		return ri.Duration
	}
	return c.opts.DefaultRotationInterval
}

// rotationDue is when the scheduled rotation falls due (status
// nextRotationDate): rotationDate + interval + a jitter fixed per object, so
// that objects created together spread their rotations, in whole seconds as
// the API stores times.
func (c *Controller) rotationDue(cr *imageSecret, rotationDate *metav1.Time) time.Time {
	if rotationDate == nil {
		return time.Time{}
	}
	interval := c.rotationInterval(cr)
	due := rotationDate.Add(interval + jitter(cr.meta.UID, interval))
	if t := due.Truncate(time.Second); !t.Equal(due) {
		return t.Add(time.Second)
	}
	return due
}

// jitterSpan bounds the jitter: a tenth of min(interval, 1h).
func jitterSpan(interval time.Duration) time.Duration {
	return min(interval, time.Hour) / 10
}

// jitter is the delay in [0, jitterSpan(interval)) that an object with this
// UID adds to each scheduled rotation.
func jitter(uid types.UID, interval time.Duration) time.Duration {
	span := jitterSpan(interval)
	if span <= 0 {
		return 0
	}
	h := fnv.New64a()
	_, _ = h.Write([]byte(uid))
	return time.Duration(h.Sum64() % uint64(span))
}

// secretRotatedAt is when the Secret's current password became current in
// the Secret, falling back to status.rotationDate. The annotation is only
// believed between the rotation's start and now: whoever may edit the Secret
// must not be able to stretch the grace period (or stop rotation) by
// writing a time in the future.
func secretRotatedAt(cr *imageSecret, secret *corev1.Secret, now time.Time) time.Time {
	if secret != nil {
		if t, err := time.Parse(time.RFC3339Nano, secret.Annotations[v1alpha1.AnnotationRotatedAt]); err == nil && !t.After(now) &&
			(cr.status.RotationDate == nil || !t.Before(cr.status.RotationDate.Time)) {
			return t
		}
	}
	if cr.status.RotationDate != nil {
		return cr.status.RotationDate.Time
	}
	return time.Time{}
}

func (c *Controller) graceEnd(cr *imageSecret, secret *corev1.Secret) time.Time {
	return secretRotatedAt(cr, secret, c.clock.Now()).Add(c.opts.GracePeriod)
}

// nextWake is when the object needs its next timed sync: the end of the
// grace period while a previous password exists (a due rotation waits for
// it), else the rotation.
func (c *Controller) nextWake(cr *imageSecret, secret *corev1.Secret) time.Time {
	if len(cr.status.Passwords) == 3 {
		return c.graceEnd(cr, secret)
	}
	return c.rotationDue(cr, cr.status.RotationDate)
}

// setReady sets the Ready condition on a status copy; it reports a change.
func (c *Controller) setReady(cr *imageSecret, st *v1alpha1.ImageSecretStatus, status metav1.ConditionStatus, reason, message string) bool {
	return meta.SetStatusCondition(&st.Conditions, metav1.Condition{
		Type:               v1alpha1.ConditionReady,
		Status:             status,
		Reason:             reason,
		Message:            message,
		ObservedGeneration: cr.meta.Generation,
		LastTransitionTime: metav1.NewTime(c.clock.Now()),
	})
}
