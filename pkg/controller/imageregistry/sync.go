package imageregistry

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	"github.com/image-registry-operator/image-registry-operator/pkg/apis/registry/v1alpha1"
	"github.com/image-registry-operator/image-registry-operator/pkg/controller/objectmeta"
)

// conditionError is a failure that the user must fix, or wait out: it
// becomes the reason of the Ready=False condition and a Warning event.
// With retry the registry is synced again with back-off; without it, an
// informer event (e.g. cert-manager writing the Secret) brings it back.
type conditionError struct {
	reason  string
	message string
	retry   bool
	warn    bool
}

func (e *conditionError) Error() string { return e.reason + ": " + e.message }

func badInput(reason, format string, args ...any) error {
	return &conditionError{reason: reason, message: fmt.Sprintf(format, args...), retry: true, warn: true}
}

// syncState carries what one sync learnt, for the objects built later in
// the same sync and for the status.
type syncState struct {
	hostname string
	now      time.Time
	// tls is the serving key pair, with the CA bundle that verifies it.
	tls *keyMaterial
	// token is the token signing key pair.
	token *keyMaterial
	// httpSecret is the registry's shared http.secret.
	httpSecret []byte
	// authConfig is the auth_config.yml the auth container reads, from
	// authConfigMap (rendered or the user's).
	authConfig    []byte
	authConfigMap string
	// issuer is the token issuer the registry must expect.
	issuer         string
	registryConfig []byte
	// nextTokenKey is published in the JWKS before the token servers sign
	// with it (see trust.go); nil when no renewal is under way.
	nextTokenKey crypto.PublicKey
	// tokenExpiration is the token lifetime the auth config sets.
	tokenExpiration time.Duration
	// trust is the token key set the registry trusts, with its JWKS.
	trust       *tokenTrust
	statefulSet *appsv1.StatefulSet
	// readOnly renders the registry config in maintenance mode (gc.go).
	readOnly bool
	// gc is the garbage collection status to write; nil if the sync did
	// not get that far. gcPod is the collector pod in the cache.
	gc    *v1alpha1.GarbageCollectionStatus
	gcPod *corev1.Pod
	// gcScheduleErr says why spec.garbageCollection.schedule is refused.
	gcScheduleErr string
	// readOnlyPods counts the registry pods whose template said read-only.
	readOnlyPods int
	// s3CA is the PEM CA bundle of spec.storage.s3.caBundle, if set.
	s3CA []byte
	// claims is how the pods get their data volume (sharedclaim.go).
	claims claimLayout
	// degraded is reported once every object is written: the registry
	// runs, but not as the spec asks.
	degraded error
	// requeueAt is the earliest time the registry must be looked at again
	// without an event: a certificate renewal or a user Secret re-read.
	requeueAt time.Time
}

func (s *syncState) requeueNoLaterThan(t time.Time) {
	if !t.IsZero() && (s.requeueAt.IsZero() || t.Before(s.requeueAt)) {
		s.requeueAt = t
	}
}

// sync brings one ImageRegistry's owned objects and status in line with its
// spec. Bad input ends as a condition and a Warning event; an error return
// means "retry with back-off".
func (c *Controller) sync(ctx context.Context, key cache.ObjectName) error {
	logger := klog.LoggerWithValues(klog.FromContext(ctx), "imageRegistry", klog.KRef(key.Namespace, key.Name))
	ctx = klog.NewContext(ctx, logger)
	cached, err := c.registriesLister.ImageRegistries(key.Namespace).Get(key.Name)
	if apierrors.IsNotFound(err) {
		// Owned objects go with it through garbage collection.
		logger.V(4).Info("ImageRegistry gone")
		c.tokenSecrets.forget(key)
		return nil
	}
	if err != nil {
		return err
	}
	if cached.DeletionTimestamp != nil {
		return nil
	}
	reg := cached.DeepCopy()

	st := &syncState{hostname: c.hostname(reg), now: c.opts.Clock.Now()}
	syncErr := c.reconcile(ctx, reg, st)

	var cerr *conditionError
	if errors.As(syncErr, &cerr) && cerr.warn {
		c.recorder.Event(reg, corev1.EventTypeWarning, cerr.reason, cerr.message)
	}
	if syncErr == nil || cerr != nil {
		if err := c.updateStatus(ctx, cached, st, cerr); err != nil {
			return errors.Join(syncErr, err)
		}
	}
	if !st.requeueAt.IsZero() {
		c.queue.AddAfter(key, st.requeueAt.Sub(c.opts.Clock.Now()))
	}
	if cerr != nil && !cerr.retry {
		return nil
	}
	return syncErr
}

func (c *Controller) reconcile(ctx context.Context, reg *v1alpha1.ImageRegistry, st *syncState) error {
	// The name is the first label of every name the serving certificate
	// holds: with a dot in it, a registry could obtain a certificate for
	// another namespace's hostname. The CRD refuses such names; this check
	// guards API servers that skipped that validation.
	if errs := validation.IsDNS1035Label(reg.Name); len(errs) > 0 {
		return &conditionError{reason: ReasonInvalidName, message: fmt.Sprintf("metadata.name %q is not a DNS-1035 label: %s", reg.Name, strings.Join(errs, "; ")), warn: true}
	}
	if err := c.checkImages(reg); err != nil {
		return err
	}
	steps := []func(context.Context, *v1alpha1.ImageRegistry, *syncState) error{
		c.ensureTLS,
		c.ensureTokenKey,
		c.ensureHTTPSecret,
		c.readS3CABundle,
		c.ensureAuthConfig,
		c.planGarbageCollection,
		c.ensureRegistryConfig,
		c.ensureRBAC,
		c.ensureServices,
		c.ensureStatefulSet,
		c.runGarbageCollection,
		c.ensurePodDisruptionBudget,
	}
	for _, step := range steps {
		if err := step(ctx, reg, st); err != nil {
			return err
		}
	}
	return st.degraded
}

// checkImages refuses spec.images outside Options.AllowedImages: whoever
// may create an ImageRegistry would otherwise run any image with the token
// server's ServiceAccount and the registry's Secrets.
func (c *Controller) checkImages(reg *v1alpha1.ImageRegistry) error {
	if len(c.opts.AllowedImages) == 0 || reg.Spec.Images == nil {
		return nil
	}
	i := reg.Spec.Images
	// In a fixed order, so that the condition message is stable.
	for _, f := range []struct{ field, image string }{{"registry", i.Registry}, {"auth", i.Auth}, {"dockerAuth", i.DockerAuth}} {
		if f.image != "" && !imageAllowed(f.image, c.opts.AllowedImages) {
			return badInput(ReasonImageNotAllowed, "spec.images.%s %q is not among the images the operator allows (--allowed-images)", f.field, f.image)
		}
	}
	return nil
}

func imageAllowed(image string, allowed []string) bool {
	for _, a := range allowed {
		if prefix, ok := strings.CutSuffix(a, "*"); ok && strings.HasPrefix(image, prefix) || image == a {
			return true
		}
	}
	return false
}

func (c *Controller) hostname(reg *v1alpha1.ImageRegistry) string {
	return reg.Name + "." + reg.Namespace + "." + c.opts.DNSZone
}

// objectWriter is the part of a typed client that ensureObject needs.
type objectWriter[T any] interface {
	Create(context.Context, T, metav1.CreateOptions) (T, error)
	Update(context.Context, T, metav1.UpdateOptions) (T, error)
}

// ensureObject creates desired if current is nil, and otherwise repairs
// drift: our labels and annotations are put back, and merge copies the
// fields we own from desired onto the copy of current it is given, telling
// whether any changed. Fields other parties set or the API defaults stay.
func ensureObject[T interface {
	*E
	metav1.Object
	runtime.Object
}, E any](ctx context.Context, c *Controller, reg *v1alpha1.ImageRegistry, kind string, current, desired T, w objectWriter[T], merge func(cur, desired T) bool) (T, error) {
	if current == nil {
		desired.SetNamespace(reg.Namespace)
		desired.SetOwnerReferences([]metav1.OwnerReference{*metav1.NewControllerRef(reg, v1alpha1.SchemeGroupVersion.WithKind("ImageRegistry"))})
		created, err := w.Create(ctx, desired, metav1.CreateOptions{})
		if err != nil {
			return nil, writeError(kind, desired, "create", err)
		}
		klog.FromContext(ctx).V(2).Info("Created", "kind", kind, "object", klog.KObj(created))
		c.recorder.Eventf(reg, corev1.EventTypeNormal, EventReasonCreated, "Created %s %s", kind, created.GetName())
		return created, nil
	}
	if err := checkControlled(reg, kind, current); err != nil {
		return nil, err
	}
	updated := current.DeepCopyObject().(T)
	changed := objectmeta.Merge(updated, desired)
	changed = merge(updated, desired) || changed
	if !changed {
		return current, nil
	}
	result, err := w.Update(ctx, updated, metav1.UpdateOptions{})
	if err != nil {
		return nil, writeError(kind, updated, "update", err)
	}
	klog.FromContext(ctx).V(2).Info("Repaired drift", "kind", kind, "object", klog.KObj(result))
	c.recorder.Eventf(reg, corev1.EventTypeNormal, EventReasonUpdated, "Updated %s %s to match the ImageRegistry", kind, result.GetName())
	return result, nil
}

// checkControlled refuses to take over an object someone else made.
func checkControlled(reg *v1alpha1.ImageRegistry, kind string, obj metav1.Object) error {
	if metav1.IsControlledBy(obj, reg) {
		return nil
	}
	return badInput(ReasonResourceConflict, "%s %s already exists and is not controlled by ImageRegistry %s", kind, obj.GetName(), reg.Name)
}

// writeError turns the API's rejection of what we built from the spec
// (e.g. a PVC template it finds invalid) into bad input; anything else is
// a plain error to retry.
func writeError(kind string, obj metav1.Object, verb string, err error) error {
	if apierrors.IsInvalid(err) || apierrors.IsBadRequest(err) {
		return badInput(ReasonInvalidSpec, "the API rejected %s %s: %v", kind, obj.GetName(), err)
	}
	return fmt.Errorf("%s %s %s/%s: %w", verb, kind, obj.GetNamespace(), obj.GetName(), err)
}

// lookup turns a lister's NotFound into nil.
func lookup[T any](obj T, err error) (T, error) {
	var zero T
	if apierrors.IsNotFound(err) {
		return zero, nil
	}
	if err != nil {
		return zero, err
	}
	return obj, nil
}
