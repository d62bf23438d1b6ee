package imagesecret

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	"github.com/image-registry-operator/image-registry-operator/pkg/apis/registry/v1alpha1"
	"github.com/image-registry-operator/image-registry-operator/pkg/metrics"
)

// world is what one sync looks at.
type world struct {
	cr      *imageSecret
	reg     *v1alpha1.ImageRegistry
	ref     v1alpha1.RegistryRef
	secret  *corev1.Secret                 // nil: absent
	account *v1alpha1.ImageRegistryAccount // nil: absent
}

// sync brings one object's Secret and account in step with its status. It
// decides from the informer caches whether anything must be written; if so
// it decides again from live reads and writes in the order rotation.go
// explains. A returned error requeues with back-off.
func (c *Controller) sync(ctx context.Context, key cache.ObjectName) error {
	logger := klog.LoggerWithValues(klog.FromContext(ctx), "kind", c.kind, "object", klog.KRef(key.Namespace, key.Name))
	ctx = klog.NewContext(ctx, logger)

	cr, err := c.objects.get(key.Namespace, key.Name)
	if apierrors.IsNotFound(err) {
		logger.V(4).Info("Object no longer exists")
		c.written.forget(key)
		return nil
	}
	if err != nil {
		return err
	}
	if cr.meta.DeletionTimestamp != nil {
		c.written.forget(key)
		return c.finalize(ctx, cr)
	}
	// The finalizer goes on before any account exists, so that no account
	// can outlive its object.
	if !slices.Contains(cr.meta.Finalizers, FinalizerAccountCleanup) {
		cr.meta.Finalizers = append(cr.meta.Finalizers, FinalizerAccountCleanup)
		updated, err := c.objects.update(ctx, cr)
		if err != nil {
			return fmt.Errorf("adding finalizer to %s %s: %w", c.kind, klog.KObj(cr.meta), err)
		}
		cr = updated
	}
	reg, ref, reason, msg := c.resolveRegistry(cr)
	if reason == NamespaceNotAllowed {
		// Access withdrawn: the credentials stop working now, not at
		// their next rotation.
		if err := c.revokeNotAllowed(ctx, cr, ref.Namespace); err != nil {
			return err
		}
	}
	if reason != "" {
		c.written.forget(key)
		return c.notReady(ctx, cr, reason, msg)
	}

	now := c.clock.Now()
	w := &world{cr: cr, reg: reg, ref: ref}
	if w.secret, err = c.secretLister.Secrets(key.Namespace).Get(c.secretName(cr)); apierrors.IsNotFound(err) {
		w.secret = nil
	} else if err != nil {
		return err
	}
	if w.account, err = c.accountLister.ImageRegistryAccounts(ref.Namespace).Get(AccountName(c.kind, key.Namespace, key.Name)); apierrors.IsNotFound(err) {
		w.account = nil
	} else if err != nil {
		return err
	}
	d := c.decide(cr, w.secret, now)
	if d.action == actionKeep {
		upToDate, err := c.upToDate(w, d, now)
		if err != nil {
			return err
		}
		if upToDate {
			c.schedule(key, cr, w.secret, now)
			return nil
		}
	}

	// Something must be written. Decide again from live objects unless the
	// cache provably holds the latest state (freshness.go) or the object is
	// new: initialize publishes with a resourceVersion precondition and then
	// only creates, so a stale cache makes it fail, never overwrite.
	fresh := cacheUnknown
	rec, ok := c.written.get(key)
	if ok {
		fresh = rec.classify(w)
	}
	undelivered := false
	switch {
	case fresh == cacheCurrent, !ok && d.action == actionInitialize:
		err := c.apply(ctx, key, w, d, now)
		if !apierrors.IsConflict(err) && !apierrors.IsAlreadyExists(err) && !apierrors.IsNotFound(err) {
			return err
		}
		// Something the cache did not show yet (or, for Secrets without
		// the managed-by label, never shows). Whatever was written so far
		// is a state the protocol resumes from, as after a crash.
		var u *undeliveredRotationError
		undelivered = errors.As(err, &u)
		logger.V(4).Info("Cache was stale; deciding again from live reads", "err", err)
	case fresh == cacheBehind:
		logger.V(4).Info("Cache behind our own writes; waiting for their events")
		c.queue.AddAfter(key, behindRetry)
		return nil
	}
	if w.cr, err = c.objects.getLive(ctx, key.Namespace, key.Name); apierrors.IsNotFound(err) {
		c.written.forget(key)
		return nil
	} else if err != nil {
		return err
	}
	if w.cr.meta.DeletionTimestamp != nil {
		c.written.forget(key)
		return c.finalize(ctx, w.cr)
	}
	if !slices.Contains(w.cr.meta.Finalizers, FinalizerAccountCleanup) {
		return fmt.Errorf("%s %s has no finalizer yet; retrying", c.kind, klog.KObj(w.cr.meta))
	}
	if w.secret, err = c.kubeClient.CoreV1().Secrets(key.Namespace).Get(ctx, c.secretName(w.cr), metav1.GetOptions{}); apierrors.IsNotFound(err) {
		w.secret = nil
	} else if err != nil {
		return fmt.Errorf("reading Secret of %s %s: %w", c.kind, klog.KObj(w.cr.meta), err)
	}
	if w.account, err = c.registryClient.RegistryV1alpha1().ImageRegistryAccounts(ref.Namespace).Get(ctx, AccountName(c.kind, key.Namespace, key.Name), metav1.GetOptions{}); apierrors.IsNotFound(err) {
		w.account = nil
	} else if err != nil {
		return fmt.Errorf("reading account of %s %s: %w", c.kind, klog.KObj(w.cr.meta), err)
	}
	d = c.decide(w.cr, w.secret, now)
	if undelivered && d.action == actionReset {
		d.currentUndelivered = true
	}
	return c.apply(ctx, key, w, d, now)
}

// undeliveredRotationError: a rotation was published (status and account)
// but its Secret had been deleted meanwhile, so the new current password
// never reached a Secret. The reset that follows must keep the previous
// hash, which is what copies of the deleted Secret log in with.
type undeliveredRotationError struct{ err error }

func (e *undeliveredRotationError) Error() string { return e.err.Error() }
func (e *undeliveredRotationError) Unwrap() error { return e.err }

// upToDate tells whether a keep decision needs no write at all.
func (c *Controller) upToDate(w *world, d decision, now time.Time) (bool, error) {
	st := w.cr.status.DeepCopy()
	c.observe(w, st)
	c.setReady(w.cr, st, metav1.ConditionTrue, Issued, c.readyMessage(w.cr))
	if !equality.Semantic.DeepEqual(st, w.cr.status) {
		return false, nil
	}
	if w.account == nil || !c.accountOwnedBy(w.account, w.cr) || !accountUpToDate(w.account, c.desiredAccount(w.cr, w.ref.Namespace)) {
		return false, nil
	}
	if w.secret == nil || !controlledBy(w.secret, w.cr) {
		return false, nil
	}
	desired, err := c.desiredSecret(w.cr, w.reg, d, c.keptRotatedAt(w, d, now))
	if err != nil {
		return false, err
	}
	return secretUpToDate(w.secret, desired), nil
}

// keptRotatedAt is the rotated-at time the Secret gets: unchanged while its
// password stays current, else now.
func (c *Controller) keptRotatedAt(w *world, d decision, now time.Time) time.Time {
	if d.secretCurrent && (d.action == actionKeep || d.action == actionReplaceNext || d.action == actionDropPrevious) {
		if t := secretRotatedAt(w.cr, w.secret, now); !t.IsZero() {
			return t
		}
	}
	return now
}

// apply performs the writes of a decision in protocol order: status,
// account, Secret, Ready.
func (c *Controller) apply(ctx context.Context, key cache.ObjectName, w *world, d decision, now time.Time) error {
	logger := klog.FromContext(ctx)
	ref := klog.KObj(w.cr.meta)
	// The record of the previous apply no longer holds once this one
	// writes; a new one is kept only if every step succeeds.
	c.written.forget(key)
	// Someone else's Secret or account under our names blocks the object
	// before anything is published: retries would otherwise issue fresh
	// hashes each time.
	if w.secret != nil && !controlledBy(w.secret, w.cr) {
		return c.notReady(ctx, w.cr, SecretConflict, fmt.Sprintf("Secret %s exists and is not controlled by this object", w.secret.Name))
	}
	if w.account != nil && !c.accountOwnedBy(w.account, w.cr) {
		return c.notReady(ctx, w.cr, AccountConflict, fmt.Sprintf("ImageRegistryAccount %s/%s exists and belongs to someone else", w.account.Namespace, w.account.Name))
	}
	var rec struct{ cr, secret, account string }
	rec.cr, rec.secret, rec.account = w.cr.meta.ResourceVersion, secretVersion(w.secret), accountVersion(w.account)

	// 1. Publish the hashes in the status.
	st := w.cr.status.DeepCopy()
	if err := c.advance(w.cr, st, &d, now); err != nil {
		return fmt.Errorf("new credentials for %s %s: %w", c.kind, ref, err)
	}
	c.observe(w, st)
	if d.action == actionInitialize || d.action == actionReset {
		c.setReady(w.cr, st, metav1.ConditionFalse, Issuing, "Issuing new credentials")
	}
	if !equality.Semantic.DeepEqual(st, w.cr.status) {
		*w.cr.status = *st
		updated, err := c.objects.updateStatus(ctx, w.cr)
		if err != nil {
			return fmt.Errorf("publishing status of %s %s: %w", c.kind, ref, err)
		}
		w.cr = updated
		rec.cr = updated.meta.ResourceVersion
		logger.V(2).Info("Published status", "action", d.action, "rotation", st.Rotation, "hashes", len(st.Passwords))
	}

	// 2. Mirror them into the account.
	accounts := c.registryClient.RegistryV1alpha1().ImageRegistryAccounts(w.ref.Namespace)
	desiredAccount := c.desiredAccount(w.cr, w.ref.Namespace)
	switch {
	case w.account == nil:
		created, err := accounts.Create(ctx, desiredAccount, metav1.CreateOptions{})
		if err != nil {
			return fmt.Errorf("creating account %s for %s %s: %w", klog.KObj(desiredAccount), c.kind, ref, err)
		}
		rec.account = created.ResourceVersion
		metrics.AccountOperations.WithLabelValues(string(c.kind), "created").Inc()
	case !accountUpToDate(w.account, desiredAccount):
		updated, err := accounts.Update(ctx, mergeAccount(w.account, desiredAccount), metav1.UpdateOptions{})
		if err != nil {
			return fmt.Errorf("updating account %s for %s %s: %w", klog.KObj(desiredAccount), c.kind, ref, err)
		}
		rec.account = updated.ResourceVersion
	}

	// 3. Only now may the plaintexts reach the Secret.
	desired, err := c.desiredSecret(w.cr, w.reg, d, c.keptRotatedAt(w, d, now))
	if err != nil {
		return err
	}
	secrets := c.kubeClient.CoreV1().Secrets(w.cr.meta.Namespace)
	switch {
	case w.secret == nil:
		created, err := secrets.Create(ctx, desired, metav1.CreateOptions{})
		if err != nil {
			return fmt.Errorf("creating Secret %s: %w", klog.KObj(desired), err)
		}
		rec.secret = created.ResourceVersion
	case w.secret.Type != desired.Type:
		// The type of a Secret is immutable.
		uid := w.secret.UID
		if err := secrets.Delete(ctx, desired.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("replacing Secret %s of the wrong type: %w", klog.KObj(desired), err)
		}
		created, err := secrets.Create(ctx, desired, metav1.CreateOptions{})
		if err != nil {
			return fmt.Errorf("creating Secret %s: %w", klog.KObj(desired), err)
		}
		rec.secret = created.ResourceVersion
		c.recorder.Eventf(w.cr.obj, corev1.EventTypeNormal, SecretRestored, "Recreated Secret %s with type %s", desired.Name, desired.Type)
	case !secretUpToDate(w.secret, desired):
		updated, err := secrets.Update(ctx, mergeSecret(w.secret, desired), metav1.UpdateOptions{})
		if apierrors.IsNotFound(err) && d.action == actionRotate {
			return &undeliveredRotationError{fmt.Errorf("updating Secret %s after publishing rotation %d: %w", klog.KObj(desired), w.cr.status.Rotation, err)}
		}
		if err != nil {
			return fmt.Errorf("updating Secret %s: %w", klog.KObj(desired), err)
		}
		rec.secret = updated.ResourceVersion
		if d.action == actionKeep || d.action == actionReplaceNext {
			c.recorder.Eventf(w.cr.obj, corev1.EventTypeNormal, SecretRestored, "Restored Secret %s", desired.Name)
		}
	}

	// Routine transitions (first issue, scheduled rotation, end of a grace
	// period) are in the status, the metrics and the log, not in events:
	// an event is one more API write per object and rotation, which at
	// thousands of objects costs more than the rotation itself.
	switch d.action {
	case actionRotate:
		cause := "scheduled"
		if d.manual {
			cause = "requested"
		} else {
			metrics.RotationDelay.WithLabelValues(string(c.kind)).Observe(max(now.Sub(d.due), 0).Seconds())
		}
		metrics.Rotations.WithLabelValues(string(c.kind), cause).Inc()
		logger.V(2).Info("Rotated the password", "rotation", w.cr.status.Rotation, "cause", cause)
	case actionReset:
		metrics.Rotations.WithLabelValues(string(c.kind), "reset").Inc()
		c.recorder.Eventf(w.cr.obj, corev1.EventTypeWarning, PasswordsReset, "The current password could not be recovered from Secret %s; issued new passwords (rotation %d)", desired.Name, w.cr.status.Rotation)
	case actionDropPrevious:
		logger.V(2).Info("Dropped the previous password at the end of its grace period", "rotation", w.cr.status.Rotation-1)
	}

	// 4. Ready once the Secret holds published credentials.
	st = w.cr.status.DeepCopy()
	if c.setReady(w.cr, st, metav1.ConditionTrue, Issued, c.readyMessage(w.cr)) {
		*w.cr.status = *st
		updated, err := c.objects.updateStatus(ctx, w.cr)
		if err != nil {
			return fmt.Errorf("updating status of %s %s: %w", c.kind, ref, err)
		}
		w.cr = updated
		rec.cr = updated.meta.ResourceVersion
	}
	c.written.set(key, w.cr.meta.UID, rec.cr, rec.secret, rec.account)
	c.schedule(key, w.cr, desired, now)
	return nil
}

func (c *Controller) readyMessage(cr *imageSecret) string {
	return fmt.Sprintf("Secret %s holds valid credentials", c.secretName(cr))
}

// observe records in a status copy what the sync is based on.
func (c *Controller) observe(w *world, st *v1alpha1.ImageSecretStatus) {
	st.ObservedGeneration = w.cr.meta.Generation
	st.Registry = w.reg.Status.Hostname
	ref := w.ref
	st.RegistryRef = &ref
	st.SecretName = c.secretName(w.cr)
}

// schedule arms the timer for the next rotation or grace-period end.
func (c *Controller) schedule(key cache.ObjectName, cr *imageSecret, secret *corev1.Secret, now time.Time) {
	delay := max(c.nextWake(cr, secret).Sub(now), time.Second)
	c.queue.AddAfter(key, delay)
}

// notReady records a condition that needs someone else to act: Ready=False
// with the reason, a Warning event, and an error so the object is retried
// with back-off.
func (c *Controller) notReady(ctx context.Context, cr *imageSecret, reason, msg string) error {
	c.recorder.Event(cr.obj, corev1.EventTypeWarning, reason, msg)
	st := cr.status.DeepCopy()
	st.ObservedGeneration = cr.meta.Generation
	c.setReady(cr, st, metav1.ConditionFalse, reason, msg)
	if !equality.Semantic.DeepEqual(st, cr.status) {
		*cr.status = *st
		if _, err := c.objects.updateStatus(ctx, cr); err != nil {
			return fmt.Errorf("updating status of %s %s: %w", c.kind, klog.KObj(cr.meta), err)
		}
	}
	return fmt.Errorf("%s %s: %s: %s", c.kind, klog.KObj(cr.meta), reason, msg)
}

// resolveRegistryRef is spec.registryRef (namespace defaulting to the
// object's) or the operator's default registry.
func (c *Controller) resolveRegistryRef(namespace string, spec *v1alpha1.ImageSecretSpec) (v1alpha1.RegistryRef, bool) {
	if r := spec.RegistryRef; r != nil {
		ref := v1alpha1.RegistryRef{Name: r.Name, Namespace: r.Namespace}
		if ref.Namespace == "" {
			ref.Namespace = namespace
		}
		return ref, ref.Name != ""
	}
	if c.opts.DefaultRegistry.Name == "" {
		return v1alpha1.RegistryRef{}, false
	}
	ref := v1alpha1.RegistryRef{Name: c.opts.DefaultRegistry.Name, Namespace: c.opts.DefaultRegistry.Namespace}
	if ref.Namespace == "" {
		ref.Namespace = namespace
	}
	return ref, true
}

// resolveRegistry returns the registry, or a reason and message why it cannot be used.
func (c *Controller) resolveRegistry(cr *imageSecret) (*v1alpha1.ImageRegistry, v1alpha1.RegistryRef, string, string) {
	ref, ok := c.resolveRegistryRef(cr.meta.Namespace, cr.spec)
	if !ok {
		return nil, ref, NoRegistry, "spec.registryRef is not set and the operator has no default registry"
	}
	reg, err := c.registryLister.ImageRegistries(ref.Namespace).Get(ref.Name)
	if err != nil {
		return nil, ref, RegistryNotFound, fmt.Sprintf("ImageRegistry %s/%s not found (or in a namespace the operator does not watch)", ref.Namespace, ref.Name)
	}
	if !c.mayUse(reg, cr.meta.Namespace) {
		return nil, ref, NamespaceNotAllowed, fmt.Sprintf("ImageRegistry %s/%s does not admit namespace %s: its owner can add it to spec.access.namespaces", ref.Namespace, ref.Name, cr.meta.Namespace)
	}
	// A registry that is not ready yet gets no credentials. Credentials
	// already issued keep rotating and their replaced passwords keep
	// expiring while it is briefly not ready (a rollout, a lost pod), so
	// that a replaced password never outlives its grace period.
	if reg.Status.Hostname == "" || (!registryReady(reg) && len(cr.status.Passwords) == 0) {
		return nil, ref, RegistryNotReady, fmt.Sprintf("ImageRegistry %s/%s is not ready", ref.Namespace, ref.Name)
	}
	return reg, ref, "", ""
}

// mayUse tells whether objects in namespace may get an account on reg: its
// own namespace, spec.access.namespaces, and for the default registry the
// operator's DefaultRegistryNamespaces.
func (c *Controller) mayUse(reg *v1alpha1.ImageRegistry, namespace string) bool {
	if namespace == reg.Namespace {
		return true
	}
	var allowed []string
	if a := reg.Spec.Access; a != nil {
		allowed = a.Namespaces
	}
	def := c.opts.DefaultRegistry
	if reg.Name == def.Name && (def.Namespace == "" || reg.Namespace == def.Namespace) {
		extra := c.opts.DefaultRegistryNamespaces
		if extra == nil {
			extra = []string{"*"}
		}
		allowed = append(slices.Clip(allowed), extra...)
	}
	return slices.Contains(allowed, "*") || slices.Contains(allowed, namespace)
}

// revokeNotAllowed deletes the account an object holds on a registry that
// no longer admits its namespace.
func (c *Controller) revokeNotAllowed(ctx context.Context, cr *imageSecret, namespace string) error {
	if _, err := c.accountLister.ImageRegistryAccounts(namespace).Get(AccountName(c.kind, cr.meta.Namespace, cr.meta.Name)); apierrors.IsNotFound(err) {
		return nil
	}
	deleted, err := c.deleteAccount(ctx, cr, namespace)
	if err != nil {
		return fmt.Errorf("revoking credentials of %s %s: %w", c.kind, klog.KObj(cr.meta), err)
	}
	if deleted {
		metrics.AccountOperations.WithLabelValues(string(c.kind), "revoked").Inc()
		c.recorder.Eventf(cr.obj, corev1.EventTypeNormal, AccountDeleted, "Deleted ImageRegistryAccount %s/%s: the registry no longer admits namespace %s", namespace, AccountName(c.kind, cr.meta.Namespace, cr.meta.Name), cr.meta.Namespace)
	}
	return nil
}

func registryReady(reg *v1alpha1.ImageRegistry) bool {
	return meta.IsStatusConditionTrue(reg.Status.Conditions, v1alpha1.ConditionReady)
}

// finalize revokes a deleted object's credentials by deleting its account,
// then lets the deletion proceed. The Secret goes with its owner reference.
func (c *Controller) finalize(ctx context.Context, cr *imageSecret) error {
	if !slices.Contains(cr.meta.Finalizers, FinalizerAccountCleanup) {
		return nil
	}
	var namespaces []string
	if r := cr.status.RegistryRef; r != nil && r.Namespace != "" {
		namespaces = append(namespaces, r.Namespace)
	}
	if ref, ok := c.resolveRegistryRef(cr.meta.Namespace, cr.spec); ok && !slices.Contains(namespaces, ref.Namespace) {
		namespaces = append(namespaces, ref.Namespace)
	}
	for _, ns := range namespaces {
		deleted, err := c.deleteAccount(ctx, cr, ns)
		if apierrors.IsForbidden(err) && (cr.status.RegistryRef == nil || ns != cr.status.RegistryRef.Namespace) {
			// A registry the operator may not touch (e.g. another namespace
			// under the namespaced install) never got an account from it:
			// status.registryRef is set before any account is made.
			klog.FromContext(ctx).V(2).Info("No access to revoke in namespace", "object", klog.KObj(cr.meta), "namespace", ns)
			continue
		}
		if err != nil {
			return fmt.Errorf("revoking credentials of %s %s: %w", c.kind, klog.KObj(cr.meta), err)
		}
		if deleted {
			metrics.AccountOperations.WithLabelValues(string(c.kind), "revoked").Inc()
			c.recorder.Eventf(cr.obj, corev1.EventTypeNormal, AccountDeleted, "Deleted ImageRegistryAccount %s/%s", ns, AccountName(c.kind, cr.meta.Namespace, cr.meta.Name))
		}
	}
	cr.meta.Finalizers = slices.DeleteFunc(cr.meta.Finalizers, func(f string) bool { return f == FinalizerAccountCleanup })
	if _, err := c.objects.update(ctx, cr); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("removing finalizer of %s %s: %w", c.kind, klog.KObj(cr.meta), err)
	}
	return nil
}
