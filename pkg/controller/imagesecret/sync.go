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
	"github.com/image-registry-operator/image-registry-operator/pkg/credentials"
	"github.com/image-registry-operator/image-registry-operator/pkg/metrics"
)

// syncState is what one sync looks at.
type syncState struct {
	cr      *imageSecret
	reg     *v1alpha1.ImageRegistry
	ref     v1alpha1.RegistryRef
	secret  *corev1.Secret                 // nil: absent
	account *v1alpha1.ImageRegistryAccount // nil: absent
	// live: read from the API server, not the caches.
	live bool
}

// sync brings one object's Secret and account in step with its status:
// read, decide, apply. It decides from the informer caches; every write is
// conditional (resourceVersion preconditions, creates), so where the cache
// is behind the API server a write fails with Conflict, AlreadyExists or
// NotFound instead of overwriting anything, and the sync reads the three
// objects live and decides once more. Whatever was written before the
// failure is a state the protocol resumes from, as after a crash
// (rotation.go). A returned error requeues with back-off.
func (c *Controller) sync(ctx context.Context, key cache.ObjectName) error {
	logger := klog.LoggerWithValues(klog.FromContext(ctx), "kind", c.kind, "object", klog.KRef(key.Namespace, key.Name))
	ctx = klog.NewContext(ctx, logger)

	cr, err := c.objects.get(key.Namespace, key.Name)
	if apierrors.IsNotFound(err) {
		logger.V(4).Info("Object no longer exists")
		return nil
	}
	if err != nil {
		return err
	}
	if cr.meta.DeletionTimestamp != nil {
		return c.finalize(ctx, cr)
	}
	// The finalizer goes on before any account exists, so that no account
	// can outlive its object.
	if !slices.Contains(cr.meta.Finalizers, v1alpha1.FinalizerAccountCleanup) {
		cr.meta.Finalizers = append(cr.meta.Finalizers, v1alpha1.FinalizerAccountCleanup)
		updated, err := c.objects.update(ctx, cr)
		if err != nil {
			return fmt.Errorf("adding finalizer to %s %s: %w", c.kind, klog.KObj(cr.meta), err)
		}
		cr = updated
	}
	reg, ref, cerr := c.resolveRegistry(cr)
	if cerr != nil && cerr.reason == ReasonNamespaceNotAllowed {
		// Access withdrawn: the credentials stop working now, not at
		// their next rotation.
		if err := c.revokeNotAllowed(ctx, cr, ref.Namespace); err != nil {
			return err
		}
	}
	if cerr != nil {
		return c.notReady(ctx, cr, cerr)
	}

	now := c.clock.Now()
	w := &syncState{cr: cr, reg: reg, ref: ref}
	if w.secret, err = c.secretLister.Secrets(key.Namespace).Get(c.secretName(cr)); apierrors.IsNotFound(err) {
		w.secret = nil
	} else if err != nil {
		return err
	}
	if w.account, err = c.accountLister.ImageRegistryAccounts(ref.Namespace).Get(credentials.AccountName(c.kind, key.Namespace, key.Name)); apierrors.IsNotFound(err) {
		w.account = nil
	} else if err != nil {
		return err
	}
	err = c.reconcile(ctx, key, w, now)
	if !errors.Is(err, errDecideLive) && !apierrors.IsConflict(err) && !apierrors.IsAlreadyExists(err) && !apierrors.IsNotFound(err) {
		return err
	}
	logger.V(4).Info("Deciding again from live reads", "err", err)
	w.live = true

	if w.cr, err = c.objects.getLive(ctx, key.Namespace, key.Name); apierrors.IsNotFound(err) {
		return nil
	} else if err != nil {
		return err
	}
	if w.cr.meta.DeletionTimestamp != nil {
		return c.finalize(ctx, w.cr)
	}
	if !slices.Contains(w.cr.meta.Finalizers, v1alpha1.FinalizerAccountCleanup) {
		return fmt.Errorf("%s %s has no finalizer yet; retrying", c.kind, klog.KObj(w.cr.meta))
	}
	if w.secret, err = c.kubeClient.CoreV1().Secrets(key.Namespace).Get(ctx, c.secretName(w.cr), metav1.GetOptions{}); apierrors.IsNotFound(err) {
		w.secret = nil
	} else if err != nil {
		return fmt.Errorf("reading Secret of %s %s: %w", c.kind, klog.KObj(w.cr.meta), err)
	}
	if w.account, err = c.registryClient.RegistryV1alpha1().ImageRegistryAccounts(ref.Namespace).Get(ctx, credentials.AccountName(c.kind, key.Namespace, key.Name), metav1.GetOptions{}); apierrors.IsNotFound(err) {
		w.account = nil
	} else if err != nil {
		return fmt.Errorf("reading account of %s %s: %w", c.kind, klog.KObj(w.cr.meta), err)
	}
	return c.reconcile(ctx, key, w, now)
}

// errDecideLive: the decision needs live reads.
var errDecideLive = errors.New("decision needs live reads")

// reconcile decides from w and writes what the decision needs, if anything.
// A reset discards the current password, so it is decided from live reads
// only: the cache cannot see a Secret whose managed-by label was removed.
func (c *Controller) reconcile(ctx context.Context, key cache.ObjectName, w *syncState, now time.Time) error {
	d := c.decide(w.cr, w.secret, now)
	if d.action == actionReset && !w.live {
		return errDecideLive
	}
	if d.action == actionKeep {
		upToDate, err := c.upToDate(w, d, now)
		if err != nil {
			return err
		}
		if upToDate {
			c.schedule(key, w.cr, w.secret, now)
			return c.syncServiceAccounts(ctx, w.cr, true)
		}
	}
	if err := c.apply(ctx, key, w, d, now); err != nil {
		return err
	}
	// Only a Secret that holds published credentials is handed to Pods.
	return c.syncServiceAccounts(ctx, w.cr, true)
}

// upToDate tells whether a keep decision needs no write at all.
func (c *Controller) upToDate(w *syncState, d decision, now time.Time) (bool, error) {
	st := w.cr.status.DeepCopy()
	c.observe(w, st)
	c.setReady(w.cr, st, metav1.ConditionTrue, ReasonIssued, c.readyMessage(w.cr))
	if !equality.Semantic.DeepEqual(st, w.cr.status) {
		return false, nil
	}
	if w.account == nil || !c.accountOwnedBy(w.account, w.cr) || !accountUpToDate(w.account, c.desiredAccount(w.cr, w.ref)) {
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
func (c *Controller) keptRotatedAt(w *syncState, d decision, now time.Time) time.Time {
	if d.secretCurrent && (d.action == actionKeep || d.action == actionReplaceNext || d.action == actionDropPrevious) {
		if t := secretRotatedAt(w.cr, w.secret, now); !t.IsZero() {
			return t
		}
	}
	return now
}

// apply performs the writes of a decision in protocol order: status,
// account, Secret, Ready.
func (c *Controller) apply(ctx context.Context, key cache.ObjectName, w *syncState, d decision, now time.Time) error {
	logger := klog.FromContext(ctx)
	ref := klog.KObj(w.cr.meta)
	// Someone else's Secret or account under our names blocks the object
	// before anything is published: retries would otherwise issue fresh
	// hashes each time.
	if w.secret != nil && !controlledBy(w.secret, w.cr) {
		return c.notReady(ctx, w.cr, newConditionError(ReasonSecretConflict, "Secret %s exists and is not controlled by this object", w.secret.Name))
	}
	if w.account != nil && !c.accountOwnedBy(w.account, w.cr) {
		return c.notReady(ctx, w.cr, newConditionError(ReasonAccountConflict, "ImageRegistryAccount %s/%s exists and belongs to someone else", w.account.Namespace, w.account.Name))
	}
	// 1. Publish the hashes in the status.
	st := w.cr.status.DeepCopy()
	if err := c.advance(w.cr, st, &d, now); err != nil {
		return fmt.Errorf("new credentials for %s %s: %w", c.kind, ref, err)
	}
	c.observe(w, st)
	if d.action == actionInitialize || d.action == actionReset {
		c.setReady(w.cr, st, metav1.ConditionFalse, ReasonIssuing, "Issuing new credentials")
	}
	if !equality.Semantic.DeepEqual(st, w.cr.status) {
		*w.cr.status = *st
		updated, err := c.objects.updateStatus(ctx, w.cr)
		if err != nil {
			return fmt.Errorf("publishing status of %s %s: %w", c.kind, ref, err)
		}
		w.cr = updated
		logger.V(2).Info("Published status", "action", d.action, "rotation", st.Rotation, "hashes", len(st.Passwords))
	}

	// 2. Mirror them into the account.
	accounts := c.registryClient.RegistryV1alpha1().ImageRegistryAccounts(w.ref.Namespace)
	desiredAccount := c.desiredAccount(w.cr, w.ref)
	switch {
	case w.account == nil:
		if _, err := accounts.Create(ctx, desiredAccount, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("creating account %s for %s %s: %w", klog.KObj(desiredAccount), c.kind, ref, err)
		}
		metrics.AccountOperations.WithLabelValues(string(c.kind), "created").Inc()
	case !accountUpToDate(w.account, desiredAccount):
		if _, err := accounts.Update(ctx, mergeAccount(w.account, desiredAccount), metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("updating account %s for %s %s: %w", klog.KObj(desiredAccount), c.kind, ref, err)
		}
	}

	// 3. Only now may the plaintexts reach the Secret.
	desired, err := c.desiredSecret(w.cr, w.reg, d, c.keptRotatedAt(w, d, now))
	if err != nil {
		return err
	}
	secrets := c.kubeClient.CoreV1().Secrets(w.cr.meta.Namespace)
	switch {
	case w.secret == nil:
		if _, err := secrets.Create(ctx, desired, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("creating Secret %s: %w", klog.KObj(desired), err)
		}
	case w.secret.Type != desired.Type:
		// The type of a Secret is immutable.
		uid := w.secret.UID
		if err := secrets.Delete(ctx, desired.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("replacing Secret %s of the wrong type: %w", klog.KObj(desired), err)
		}
		if _, err := secrets.Create(ctx, desired, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("creating Secret %s: %w", klog.KObj(desired), err)
		}
		c.recorder.Eventf(w.cr.obj, corev1.EventTypeNormal, ReasonSecretRestored, "Recreated Secret %s with type %s", desired.Name, desired.Type)
	case !secretUpToDate(w.secret, desired):
		_, err := secrets.Update(ctx, mergeSecret(w.secret, desired), metav1.UpdateOptions{})
		if apierrors.IsNotFound(err) && d.action == actionRotate {
			// The Secret was deleted after this rotation was published,
			// so its password never reached a Secret. The status says so
			// (ReasonIssuing, as after initialize and reset), so that the reset
			// that follows keeps the previous hash, which copies of the
			// deleted Secret log in with.
			if serr := c.markUndelivered(ctx, w.cr, desired.Name); serr != nil {
				return serr
			}
		}
		if err != nil {
			return fmt.Errorf("updating Secret %s: %w", klog.KObj(desired), err)
		}
		if d.action == actionKeep || d.action == actionReplaceNext {
			c.recorder.Eventf(w.cr.obj, corev1.EventTypeNormal, ReasonSecretRestored, "Restored Secret %s", desired.Name)
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
		c.recorder.Eventf(w.cr.obj, corev1.EventTypeWarning, ReasonPasswordsReset, "The current password could not be recovered from Secret %s; issued new passwords (rotation %d)", desired.Name, w.cr.status.Rotation)
	case actionDropPrevious:
		logger.V(2).Info("Dropped the previous password at the end of its grace period", "rotation", w.cr.status.Rotation-1)
	}

	// 4. Ready once the Secret holds published credentials.
	st = w.cr.status.DeepCopy()
	if c.setReady(w.cr, st, metav1.ConditionTrue, ReasonIssued, c.readyMessage(w.cr)) {
		*w.cr.status = *st
		updated, err := c.objects.updateStatus(ctx, w.cr)
		if err != nil {
			return fmt.Errorf("updating status of %s %s: %w", c.kind, ref, err)
		}
		w.cr = updated
	}
	c.schedule(key, w.cr, desired, now)
	return nil
}

// markUndelivered records that the current password never reached the
// Secret.
func (c *Controller) markUndelivered(ctx context.Context, cr *imageSecret, secretName string) error {
	st := cr.status.DeepCopy()
	c.setReady(cr, st, metav1.ConditionFalse, ReasonIssuing, fmt.Sprintf("Secret %s was deleted before rotation %d reached it; issuing new credentials", secretName, st.Rotation))
	*cr.status = *st
	if _, err := c.objects.updateStatus(ctx, cr); err != nil {
		return fmt.Errorf("updating status of %s %s: %w", c.kind, klog.KObj(cr.meta), err)
	}
	return nil
}

func (c *Controller) readyMessage(cr *imageSecret) string {
	return fmt.Sprintf("Secret %s holds valid credentials", c.secretName(cr))
}

// observe records in a status copy what the sync is based on.
func (c *Controller) observe(w *syncState, st *v1alpha1.ImageSecretStatus) {
	st.ObservedGeneration = w.cr.meta.Generation
	st.Registry = w.reg.Status.Hostname
	ref := w.ref
	st.RegistryRef = &ref
	st.SecretName = c.secretName(w.cr)
	st.ServiceAccounts = c.countServiceAccounts(w.cr)
	st.NextRotationDate = nil
	if due := c.rotationDue(w.cr, st.RotationDate); !due.IsZero() {
		t := metav1.NewTime(due)
		st.NextRotationDate = &t
	}
}

// schedule arms the timer for the next rotation or grace-period end.
func (c *Controller) schedule(key cache.ObjectName, cr *imageSecret, secret *corev1.Secret, now time.Time) {
	delay := max(c.nextWake(cr, secret).Sub(now), time.Second)
	c.queue.AddAfter(key, delay)
}

// conditionError is a failure that someone else must fix (a missing or
// unready registry, a name taken by someone else's object): it becomes the
// reason of the Ready=False condition and a Warning event, and the object
// is retried with back-off.
type conditionError struct {
	reason  string
	message string
}

func (e *conditionError) Error() string { return e.reason + ": " + e.message }

func newConditionError(reason, format string, args ...any) *conditionError {
	return &conditionError{reason: reason, message: fmt.Sprintf(format, args...)}
}

// notReady records a conditionError on the object and returns it.
func (c *Controller) notReady(ctx context.Context, cr *imageSecret, cerr *conditionError) error {
	c.recorder.Event(cr.obj, corev1.EventTypeWarning, cerr.reason, cerr.message)
	st := cr.status.DeepCopy()
	st.ObservedGeneration = cr.meta.Generation
	c.setReady(cr, st, metav1.ConditionFalse, cerr.reason, cerr.message)
	if !equality.Semantic.DeepEqual(st, cr.status) {
		*cr.status = *st
		if _, err := c.objects.updateStatus(ctx, cr); err != nil {
			return fmt.Errorf("updating status of %s %s: %w", c.kind, klog.KObj(cr.meta), err)
		}
	}
	return fmt.Errorf("%s %s: %w", c.kind, klog.KObj(cr.meta), cerr)
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

// resolveRegistry returns the registry, or why it cannot be used.
func (c *Controller) resolveRegistry(cr *imageSecret) (*v1alpha1.ImageRegistry, v1alpha1.RegistryRef, *conditionError) {
	ref, ok := c.resolveRegistryRef(cr.meta.Namespace, cr.spec)
	if !ok {
		return nil, ref, newConditionError(ReasonNoRegistry, "spec.registryRef is not set and the operator has no default registry")
	}
	reg, err := c.registryLister.ImageRegistries(ref.Namespace).Get(ref.Name)
	if err != nil {
		return nil, ref, newConditionError(ReasonRegistryNotFound, "ImageRegistry %s/%s not found (or in a namespace the operator does not watch)", ref.Namespace, ref.Name)
	}
	if !c.mayUse(reg, cr.meta.Namespace) {
		return nil, ref, newConditionError(ReasonNamespaceNotAllowed, "ImageRegistry %s/%s does not admit namespace %s: its owner can add it to spec.access.namespaces", ref.Namespace, ref.Name, cr.meta.Namespace)
	}
	// A registry that is not ready yet gets no credentials. Credentials
	// already issued keep rotating and their replaced passwords keep
	// expiring while it is briefly not ready (a rollout, a lost pod), so
	// that a replaced password never outlives its grace period.
	if reg.Status.Hostname == "" || (!registryReady(reg) && len(cr.status.Passwords) == 0) {
		return nil, ref, newConditionError(ReasonRegistryNotReady, "ImageRegistry %s/%s is not ready", ref.Namespace, ref.Name)
	}
	return reg, ref, nil
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
	if _, err := c.accountLister.ImageRegistryAccounts(namespace).Get(credentials.AccountName(c.kind, cr.meta.Namespace, cr.meta.Name)); apierrors.IsNotFound(err) {
		return nil
	}
	deleted, err := c.deleteAccount(ctx, cr, namespace)
	if err != nil {
		return fmt.Errorf("revoking credentials of %s %s: %w", c.kind, klog.KObj(cr.meta), err)
	}
	if deleted {
		metrics.AccountOperations.WithLabelValues(string(c.kind), "revoked").Inc()
		c.recorder.Eventf(cr.obj, corev1.EventTypeNormal, ReasonAccountDeleted, "Deleted ImageRegistryAccount %s/%s: the registry no longer admits namespace %s", namespace, credentials.AccountName(c.kind, cr.meta.Namespace, cr.meta.Name), cr.meta.Namespace)
	}
	return nil
}

func registryReady(reg *v1alpha1.ImageRegistry) bool {
	return meta.IsStatusConditionTrue(reg.Status.Conditions, v1alpha1.ConditionReady)
}

// finalize revokes a deleted object's credentials by deleting its account,
// then lets the deletion proceed. The Secret goes with its owner reference.
func (c *Controller) finalize(ctx context.Context, cr *imageSecret) error {
	if !slices.Contains(cr.meta.Finalizers, v1alpha1.FinalizerAccountCleanup) {
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
			c.recorder.Eventf(cr.obj, corev1.EventTypeNormal, ReasonAccountDeleted, "Deleted ImageRegistryAccount %s/%s", ns, credentials.AccountName(c.kind, cr.meta.Namespace, cr.meta.Name))
		}
	}
	// Pods created from now on must not get the Secret, which goes with
	// the object.
	if err := c.syncServiceAccounts(ctx, cr, false); err != nil {
		return err
	}
	cr.meta.Finalizers = slices.DeleteFunc(cr.meta.Finalizers, func(f string) bool { return f == v1alpha1.FinalizerAccountCleanup })
	if _, err := c.objects.update(ctx, cr); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("removing finalizer of %s %s: %w", c.kind, klog.KObj(cr.meta), err)
	}
	return nil
}
