// Package imagesecret is the controller behind ImagePushSecret and
// ImagePullSecret: for each object it keeps a Secret with rotating registry
// credentials in the object's namespace and mirrors the password hashes into
// an ImageRegistryAccount in the registry's namespace, where the registry's
// authenticator reads them. One Controller serves one kind (Options.Kind).
//
// The rotation protocol and why it never locks a client out is described in
// rotation.go.
package imagesecret

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"time"

	"golang.org/x/crypto/bcrypt"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	coreinformers "k8s.io/client-go/informers/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/image-registry-operator/image-registry-operator/pkg/apis/registry/v1alpha1"
	"github.com/image-registry-operator/image-registry-operator/pkg/controller/worker"
	"github.com/image-registry-operator/image-registry-operator/pkg/generated/clientset/versioned"
	registryscheme "github.com/image-registry-operator/image-registry-operator/pkg/generated/clientset/versioned/scheme"
	registryinformers "github.com/image-registry-operator/image-registry-operator/pkg/generated/informers/externalversions/registry/v1alpha1"
	listers "github.com/image-registry-operator/image-registry-operator/pkg/generated/listers/registry/v1alpha1"
)

// Kind selects which of the two credential kinds a Controller serves. Its
// value is also the `type` label of the accounts it makes.
type Kind string

const (
	KindPush Kind = "push"
	KindPull Kind = "pull"
)

// Options configure a Controller. Zero durations and cost take the defaults.
type Options struct {
	// Kind is push (ImagePushSecret) or pull (ImagePullSecret).
	Kind Kind
	// DefaultRegistry is used by objects without spec.registryRef. An empty
	// Name means there is none; an empty Namespace means the object's own.
	DefaultRegistry types.NamespacedName
	// DefaultRegistryNamespaces may use the default registry besides those
	// its spec.access allows; "*" means every namespace. nil means "*" (the
	// default registry serves everyone unless told otherwise); an empty
	// list adds none.
	DefaultRegistryNamespaces []string
	// DefaultRotationInterval applies where spec.rotationInterval is unset.
	DefaultRotationInterval time.Duration
	// GracePeriod is how long a replaced password keeps working after it
	// left the Secret.
	GracePeriod time.Duration
	// BcryptCost of the published hashes.
	BcryptCost int
	// SweepInterval is how often accounts without an owner are looked for.
	SweepInterval time.Duration
	// Clock drives rotation; tests inject a fake one.
	Clock clock.WithTicker
}

// Defaults of Options.
const (
	DefaultRotationInterval = 24 * time.Hour
	DefaultGracePeriod      = 5 * time.Minute
	// DefaultBcryptCost is bcrypt's minimum. The passwords are 32 bytes
	// from crypto/rand: guessing one from its hash means searching 2^256
	// candidates, which no work factor makes more or less feasible, so a
	// higher cost would only buy CPU time in the operator (two hashes per
	// new object, one per rotation) and in every uncached login. README.md
	// ("Performance") explains the choice and docs/performance.md measures
	// it.
	DefaultBcryptCost    = bcrypt.MinCost
	DefaultSweepInterval = 10 * time.Minute
)

// Names this controller writes onto objects.
const (
	// FinalizerAccountCleanup on a push or pull object makes its deletion
	// wait until its ImageRegistryAccount, which lives in another namespace
	// and so cannot carry an owner reference, is gone.
	FinalizerAccountCleanup = "registry.mgoltzsche.github.com/account-cleanup"
	// AnnotationRotatedAt on the generated Secret is when the Secret's
	// current password became current there (RFC 3339); the grace period of
	// the previous password runs from it.
	AnnotationRotatedAt = "registry.mgoltzsche.github.com/rotated-at"
	// AnnotationOwner on an account is "<type>/<namespace>/<name>" of the
	// object it mirrors.
	AnnotationOwner = "registry.mgoltzsche.github.com/owner"
	// AnnotationOwnerUID on an account is the UID of the object it mirrors.
	AnnotationOwnerUID = "registry.mgoltzsche.github.com/owner-uid"
	// LabelType on an account is push or pull.
	LabelType = "registry.mgoltzsche.github.com/type"
	// LabelOwnerNamespace and LabelOwnerName on an account name the object it
	// mirrors; a name longer than a label value allows is hashed.
	LabelOwnerNamespace = "registry.mgoltzsche.github.com/owner-namespace"
	LabelOwnerName      = "registry.mgoltzsche.github.com/owner-name"
)

// Event and condition reasons.
const (
	// Issued: the Secret holds credentials whose hashes are published (Ready=True).
	Issued = "Issued"
	// Issuing: new credentials are published and on their way to the
	// Secret (Ready=False). A reset reads it to tell whether the current
	// password ever reached a Secret.
	Issuing = "Issuing"
	// NoRegistry: the object names no registry and the operator has no default.
	NoRegistry = "NoRegistry"
	// RegistryNotFound: the referenced ImageRegistry does not exist (or lives
	// in a namespace the operator does not watch).
	RegistryNotFound = "RegistryNotFound"
	// RegistryNotReady: the registry has no hostname yet or is not Ready.
	RegistryNotReady = "RegistryNotReady"
	// NamespaceNotAllowed: the registry's spec.access does not admit the
	// object's namespace; its account, if any, is deleted.
	NamespaceNotAllowed = "NamespaceNotAllowed"
	// SecretConflict: a Secret with the target name exists and is not
	// controlled by this object.
	SecretConflict = "SecretConflict"
	// AccountConflict: an ImageRegistryAccount with the target name exists
	// and belongs to someone else.
	AccountConflict = "AccountConflict"
	// PasswordsReset: the current password could not be recovered from the
	// Secret (deleted or edited), so fresh passwords were issued.
	PasswordsReset = "PasswordsReset"
	// SecretRestored: the Secret was missing parts or had been edited and was
	// written back.
	SecretRestored = "SecretRestored"
	// AccountDeleted: the account of a deleted object, or an orphan, was removed.
	AccountDeleted = "AccountDeleted"
)

// registryIndex indexes push/pull objects by "<namespace>/<name>" of the
// registry they resolve to, so that a registry change finds its dependents.
const registryIndex = "registry"

// Controller keeps Secrets and ImageRegistryAccounts of one kind in step.
type Controller struct {
	kind Kind
	opts Options

	// kubeClient writes Secrets; registryClient writes the objects and accounts.
	kubeClient     kubernetes.Interface
	registryClient versioned.Interface

	// objects reads and writes the served kind; objectIndexer finds objects by registry.
	objects       objectAccess
	objectIndexer cache.Indexer
	objectsSynced cache.InformerSynced

	// secretLister sees only Secrets labelled as managed by the operator.
	secretLister   corelisters.SecretLister
	secretsSynced  cache.InformerSynced
	registryLister listers.ImageRegistryLister
	registrySynced cache.InformerSynced
	accountLister  listers.ImageRegistryAccountLister
	accountsSynced cache.InformerSynced

	// queue holds object names; rotation and grace-period ends are AddAfter timers on it.
	queue worker.Queue
	// recorder emits events on the push/pull objects.
	recorder record.EventRecorder

	// Test seams.
	clock       clock.WithTicker
	randRead    io.Reader
	syncHandler worker.SyncFunc
	verifier    *verifier
	// written lets syncs skip live reads when the cache holds their own
	// last writes (freshness.go).
	written *lastWrites
}

// NewController returns a controller for opts.Kind. Of pushInformer and
// pullInformer only the one of that kind is used; the other may be nil.
// secretInformer should be filtered to LabelManagedBy=ManagedByValue: every
// Secret this controller makes carries that label.
func NewController(
	ctx context.Context,
	kubeClient kubernetes.Interface,
	registryClient versioned.Interface,
	secretInformer coreinformers.SecretInformer,
	registryInformer registryinformers.ImageRegistryInformer,
	accountInformer registryinformers.ImageRegistryAccountInformer,
	pushInformer registryinformers.ImagePushSecretInformer,
	pullInformer registryinformers.ImagePullSecretInformer,
	opts Options,
) (*Controller, error) {
	utilruntime.Must(registryscheme.AddToScheme(scheme.Scheme))
	broadcaster := record.NewBroadcaster(record.WithContext(ctx))
	broadcaster.StartStructuredLogging(0)
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: kubeClient.CoreV1().Events("")})
	recorder := broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "image-" + string(opts.Kind) + "-secret-controller"})
	return newController(ctx, kubeClient, registryClient, secretInformer, registryInformer, accountInformer, pushInformer, pullInformer, opts, recorder)
}

// newController is NewController with the event recorder injected (tests).
func newController(
	ctx context.Context,
	kubeClient kubernetes.Interface,
	registryClient versioned.Interface,
	secretInformer coreinformers.SecretInformer,
	registryInformer registryinformers.ImageRegistryInformer,
	accountInformer registryinformers.ImageRegistryAccountInformer,
	pushInformer registryinformers.ImagePushSecretInformer,
	pullInformer registryinformers.ImagePullSecretInformer,
	opts Options,
	recorder record.EventRecorder,
) (*Controller, error) {
	logger := klog.FromContext(ctx)
	if opts.DefaultRotationInterval <= 0 {
		opts.DefaultRotationInterval = DefaultRotationInterval
	}
	if opts.GracePeriod <= 0 {
		opts.GracePeriod = DefaultGracePeriod
	}
	if opts.BcryptCost == 0 {
		opts.BcryptCost = DefaultBcryptCost
	}
	if opts.SweepInterval <= 0 {
		opts.SweepInterval = DefaultSweepInterval
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}

	var objects objectAccess
	switch opts.Kind {
	case KindPush:
		if pushInformer == nil {
			return nil, errors.New("push controller needs an ImagePushSecret informer")
		}
		objects = &pushAccess{client: registryClient, lister: pushInformer.Lister(), inf: pushInformer.Informer()}
	case KindPull:
		if pullInformer == nil {
			return nil, errors.New("pull controller needs an ImagePullSecret informer")
		}
		objects = &pullAccess{client: registryClient, lister: pullInformer.Lister(), inf: pullInformer.Informer()}
	default:
		return nil, fmt.Errorf("unknown kind %q: want %q or %q", opts.Kind, KindPush, KindPull)
	}

	c := &Controller{
		kind:           opts.Kind,
		opts:           opts,
		kubeClient:     kubeClient,
		registryClient: registryClient,
		objects:        objects,
		objectIndexer:  objects.informer().GetIndexer(),
		objectsSynced:  objects.informer().HasSynced,
		secretLister:   CompactSecrets(secretInformer).Lister(),
		secretsSynced:  secretInformer.Informer().HasSynced,
		registryLister: registryInformer.Lister(),
		registrySynced: registryInformer.Informer().HasSynced,
		accountLister:  CompactAccounts(accountInformer).Lister(),
		accountsSynced: accountInformer.Informer().HasSynced,
		queue:          worker.NewQueue("image"+string(opts.Kind)+"secrets", opts.Clock),
		recorder:       recorder,
		clock:          opts.Clock,
		randRead:       rand.Reader,
		verifier:       newVerifier(),
		written:        newLastWrites(),
	}
	c.syncHandler = c.sync

	if err := objects.informer().AddIndexers(cache.Indexers{registryIndex: c.registryIndexFunc}); err != nil {
		return nil, fmt.Errorf("adding registry index: %w", err)
	}

	logger.Info("Setting up event handlers", "kind", opts.Kind)
	if _, err := objects.informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.enqueue,
		UpdateFunc: func(_, obj interface{}) { c.enqueue(obj) },
		DeleteFunc: c.enqueue,
	}); err != nil {
		return nil, err
	}
	if _, err := secretInformer.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: c.handleSecret,
		UpdateFunc: func(old, cur interface{}) {
			o, err1 := meta.Accessor(old)
			n, err2 := meta.Accessor(cur)
			if err1 == nil && err2 == nil && o.GetResourceVersion() == n.GetResourceVersion() {
				return
			}
			c.handleSecret(cur)
		},
		DeleteFunc: c.handleSecret,
	}); err != nil {
		return nil, err
	}
	if _, err := accountInformer.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.handleAccount,
		UpdateFunc: func(_, cur interface{}) { c.handleAccount(cur) },
		DeleteFunc: c.handleAccount,
	}); err != nil {
		return nil, err
	}
	if _, err := registryInformer.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: c.handleRegistry,
		UpdateFunc: func(old, cur interface{}) {
			if registryServingChanged(old.(*v1alpha1.ImageRegistry), cur.(*v1alpha1.ImageRegistry)) {
				c.handleRegistry(cur)
			}
		},
		DeleteFunc: c.handleRegistry,
	}); err != nil {
		return nil, err
	}
	return c, nil
}

// Run waits for the caches, starts the workers and the account sweep, and
// blocks until ctx is done.
func (c *Controller) Run(ctx context.Context, workers int) error {
	return worker.Run(ctx, "image"+string(c.kind)+"secret", c.queue, workers, c.syncHandler,
		[]cache.InformerSynced{c.objectsSynced, c.secretsSynced, c.registrySynced, c.accountsSynced},
		c.runSweeper)
}

// runSweeper deletes orphan accounts at start and every SweepInterval.
func (c *Controller) runSweeper(ctx context.Context) {
	ticker := c.clock.NewTicker(c.opts.SweepInterval)
	defer ticker.Stop()
	for {
		if err := c.sweep(ctx); err != nil {
			utilruntime.HandleErrorWithContext(ctx, err, "Sweeping orphan accounts", "kind", c.kind)
		}
		select {
		case <-ctx.Done():
			return
		case <-ticker.C():
		}
	}
}

func (c *Controller) enqueue(obj interface{}) { worker.Enqueue(c.queue, obj) }

// handleSecret enqueues the object controlling a generated Secret.
func (c *Controller) handleSecret(obj interface{}) {
	object, ok := worker.MetaObject(obj)
	if !ok {
		return
	}
	ref := metav1.GetControllerOf(object)
	gvk := c.objects.groupVersionKind()
	if ref == nil || ref.Kind != gvk.Kind || ref.APIVersion != gvk.GroupVersion().String() {
		return
	}
	c.queue.Add(cache.NewObjectName(object.GetNamespace(), ref.Name))
}

// handleAccount enqueues the object an account mirrors, so that an edited or
// deleted account is put back.
func (c *Controller) handleAccount(obj interface{}) {
	object, ok := worker.MetaObject(obj)
	if !ok {
		return
	}
	kind, namespace, name, ok := parseOwner(object.GetAnnotations()[AnnotationOwner])
	if !ok || kind != c.kind || object.GetLabels()[v1alpha1.LabelManagedBy] != v1alpha1.ManagedByValue {
		return
	}
	c.queue.Add(cache.NewObjectName(namespace, name))
}

// handleRegistry enqueues every object that resolves to the registry.
func (c *Controller) handleRegistry(obj interface{}) {
	object, ok := worker.MetaObject(obj)
	if !ok {
		return
	}
	dependents, err := c.objectIndexer.ByIndex(registryIndex, object.GetNamespace()+"/"+object.GetName())
	if err != nil {
		utilruntime.HandleError(err)
		return
	}
	for _, d := range dependents {
		c.enqueue(d)
	}
}

func (c *Controller) registryIndexFunc(obj interface{}) ([]string, error) {
	o, ok := obj.(metav1.Object)
	if !ok {
		return nil, nil
	}
	var spec *v1alpha1.ImageSecretSpec
	switch t := obj.(type) {
	case *v1alpha1.ImagePushSecret:
		spec = &t.Spec
	case *v1alpha1.ImagePullSecret:
		spec = &t.Spec
	default:
		return nil, nil
	}
	ref, ok := c.resolveRegistryRef(o.GetNamespace(), spec)
	if !ok {
		return nil, nil
	}
	return []string{ref.Namespace + "/" + ref.Name}, nil
}

func registryServingChanged(old, cur *v1alpha1.ImageRegistry) bool {
	return old.Status.Hostname != cur.Status.Hostname ||
		old.Status.CA != cur.Status.CA ||
		registryReady(old) != registryReady(cur)
}
