// Package imagesecret is the controller behind ImagePushSecret and
// ImagePullSecret: for each object it keeps a Secret with rotating registry
// credentials in the object's namespace and mirrors the password hashes into
// an ImageRegistryAccount in the registry's namespace, where the registry's
// authenticator reads them. One Controller serves one kind
// (NewPushController, NewPullController).
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
	"github.com/image-registry-operator/image-registry-operator/pkg/credentials"
	"github.com/image-registry-operator/image-registry-operator/pkg/generated/clientset/versioned"
	registryscheme "github.com/image-registry-operator/image-registry-operator/pkg/generated/clientset/versioned/scheme"
	registryinformers "github.com/image-registry-operator/image-registry-operator/pkg/generated/informers/externalversions/registry/v1alpha1"
	listers "github.com/image-registry-operator/image-registry-operator/pkg/generated/listers/registry/v1alpha1"
	"github.com/image-registry-operator/image-registry-operator/pkg/objectcache"
)

// Options configure a Controller. Zero durations and cost take the defaults.
type Options struct {
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

// Event and condition reasons.
const (
	// ReasonIssued: the Secret holds credentials whose hashes are published (Ready=True).
	ReasonIssued = "Issued"
	// ReasonIssuing: new credentials are published and on their way to the
	// Secret (Ready=False). A reset reads it to tell whether the current
	// password ever reached a Secret.
	ReasonIssuing = "Issuing"
	// ReasonNoRegistry: the object names no registry and the operator has no default.
	ReasonNoRegistry = "NoRegistry"
	// ReasonRegistryNotFound: the referenced ImageRegistry does not exist (or lives
	// in a namespace the operator does not watch).
	ReasonRegistryNotFound = "RegistryNotFound"
	// ReasonRegistryNotReady: the registry has no hostname yet or is not Ready.
	ReasonRegistryNotReady = "RegistryNotReady"
	// ReasonNamespaceNotAllowed: the registry's spec.access does not admit the
	// object's namespace; its account, if any, is deleted.
	ReasonNamespaceNotAllowed = "NamespaceNotAllowed"
	// ReasonSecretConflict: a Secret with the target name exists and is not
	// controlled by this object.
	ReasonSecretConflict = "SecretConflict"
	// ReasonAccountConflict: an ImageRegistryAccount with the target name exists
	// and belongs to someone else.
	ReasonAccountConflict = "AccountConflict"
	// ReasonPasswordsReset: the current password could not be recovered from the
	// Secret (deleted or edited), so fresh passwords were issued.
	ReasonPasswordsReset = "PasswordsReset"
	// ReasonSecretRestored: the Secret was missing parts or had been edited and was
	// written back.
	ReasonSecretRestored = "SecretRestored"
	// ReasonAccountDeleted: the account of a deleted object, or an orphan, was removed.
	ReasonAccountDeleted = "AccountDeleted"
)

// setDefaults fills unset options and checks the rest.
func (o *Options) setDefaults() error {
	if o.DefaultRotationInterval <= 0 {
		o.DefaultRotationInterval = DefaultRotationInterval
	}
	if o.GracePeriod <= 0 {
		o.GracePeriod = DefaultGracePeriod
	}
	if o.BcryptCost == 0 {
		o.BcryptCost = DefaultBcryptCost
	}
	if o.BcryptCost < bcrypt.MinCost || o.BcryptCost > bcrypt.MaxCost {
		return fmt.Errorf("bcrypt cost %d is outside [%d, %d]", o.BcryptCost, bcrypt.MinCost, bcrypt.MaxCost)
	}
	if o.SweepInterval <= 0 {
		o.SweepInterval = DefaultSweepInterval
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	return nil
}

// registryIndex indexes push/pull objects by "<namespace>/<name>" of the
// registry they resolve to, so that a registry change finds its dependents.
const registryIndex = "registry"

// Controller keeps Secrets and ImageRegistryAccounts of one kind in step.
type Controller struct {
	kind credentials.Kind
	opts Options

	// kubeClient writes Secrets; registryClient writes the objects and accounts.
	kubeClient     kubernetes.Interface
	registryClient versioned.Interface

	// objects reads and writes the served kind; objectIndexer finds objects by registry.
	objects       objectAccess
	objectIndexer cache.Indexer
	objectsSynced cache.InformerSynced

	// secrets and accounts are read through their listers and told about
	// this controller's writes (objectcache); the Secret cache holds only
	// Secrets labelled as managed by the operator.
	secrets        *objectcache.Secrets
	secretLister   corelisters.SecretLister
	accounts       *objectcache.Accounts
	accountLister  listers.ImageRegistryAccountLister
	registryLister listers.ImageRegistryLister
	registrySynced cache.InformerSynced
	// serviceAccountLister is nil for push objects, which have no
	// spec.serviceAccounts.
	serviceAccountLister  corelisters.ServiceAccountLister
	serviceAccountsSynced cache.InformerSynced

	// queue holds object names; rotation and grace-period ends are AddAfter timers on it.
	queue worker.Queue
	// recorder emits events on the push/pull objects.
	recorder record.EventRecorder

	// Test seams.
	clock       clock.WithTicker
	randRead    io.Reader
	syncHandler worker.SyncFunc
	verifier    *verifier
}

// Informers are what a Controller watches. Secrets and Accounts come from
// one objectcache.Factory, shared with the other controllers.
type Informers struct {
	Secrets    *objectcache.Secrets
	Accounts   *objectcache.Accounts
	Registries registryinformers.ImageRegistryInformer
	// ServiceAccounts serve ImagePullSecret spec.serviceAccounts; the push
	// controller does not use them.
	ServiceAccounts coreinformers.ServiceAccountInformer
}

// NewPushController returns the controller of ImagePushSecrets.
func NewPushController(ctx context.Context, kubeClient kubernetes.Interface, registryClient versioned.Interface,
	inf Informers, pushInformer registryinformers.ImagePushSecretInformer, opts Options) (*Controller, error) {
	return newController(ctx, kubeClient, registryClient, inf, newPushAccess(registryClient, pushInformer), opts, newRecorder(ctx, kubeClient, credentials.KindPush))
}

// NewPullController returns the controller of ImagePullSecrets.
func NewPullController(ctx context.Context, kubeClient kubernetes.Interface, registryClient versioned.Interface,
	inf Informers, pullInformer registryinformers.ImagePullSecretInformer, opts Options) (*Controller, error) {
	if inf.ServiceAccounts == nil {
		return nil, errors.New("the pull controller needs a ServiceAccount informer")
	}
	return newController(ctx, kubeClient, registryClient, inf, newPullAccess(registryClient, pullInformer), opts, newRecorder(ctx, kubeClient, credentials.KindPull))
}

func newPushAccess(client versioned.Interface, inf registryinformers.ImagePushSecretInformer) *access[*v1alpha1.ImagePushSecret] {
	objects := objectcache.NewObjects[*v1alpha1.ImagePushSecret](inf.Informer(), "imagepushsecrets")
	return &access[*v1alpha1.ImagePushSecret]{
		kind:    credentials.KindPush,
		objects: objects,
		wrap:    wrapPush,
		client: func(ns string) typedClient[*v1alpha1.ImagePushSecret] {
			return client.RegistryV1alpha1().ImagePushSecrets(ns)
		},
	}
}

func newPullAccess(client versioned.Interface, inf registryinformers.ImagePullSecretInformer) *access[*v1alpha1.ImagePullSecret] {
	objects := objectcache.NewObjects[*v1alpha1.ImagePullSecret](inf.Informer(), "imagepullsecrets")
	return &access[*v1alpha1.ImagePullSecret]{
		kind:    credentials.KindPull,
		objects: objects,
		wrap:    wrapPull,
		client: func(ns string) typedClient[*v1alpha1.ImagePullSecret] {
			return client.RegistryV1alpha1().ImagePullSecrets(ns)
		},
	}
}

func newRecorder(ctx context.Context, kubeClient kubernetes.Interface, kind credentials.Kind) record.EventRecorder {
	utilruntime.Must(registryscheme.AddToScheme(scheme.Scheme))
	broadcaster := record.NewBroadcaster(record.WithContext(ctx))
	broadcaster.StartStructuredLogging(0)
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: kubeClient.CoreV1().Events("")})
	return broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "image-" + string(kind) + "-secret-controller"})
}

// newController wires a controller of the kind objects serves.
func newController(
	ctx context.Context,
	kubeClient kubernetes.Interface,
	registryClient versioned.Interface,
	inf Informers,
	objects objectAccess,
	opts Options,
	recorder record.EventRecorder,
) (*Controller, error) {
	logger := klog.FromContext(ctx)
	if err := opts.setDefaults(); err != nil {
		return nil, err
	}
	kind, _ := credentials.KindOf(objects.groupVersionKind().Kind)

	c := &Controller{
		kind:           kind,
		opts:           opts,
		kubeClient:     kubeClient,
		registryClient: registryClient,
		objects:        objects,
		objectIndexer:  objects.informer().GetIndexer(),
		objectsSynced:  objects.informer().HasSynced,
		secrets:        inf.Secrets,
		secretLister:   inf.Secrets.Lister(),
		accounts:       inf.Accounts,
		accountLister:  inf.Accounts.Lister(),
		registryLister: inf.Registries.Lister(),
		registrySynced: inf.Registries.Informer().HasSynced,
		queue:          worker.NewQueue("image"+string(kind)+"secrets", opts.Clock),
		recorder:       recorder,
		clock:          opts.Clock,
		randRead:       rand.Reader,
		verifier:       newVerifier(),
	}
	c.syncHandler = c.sync
	if kind == credentials.KindPull && inf.ServiceAccounts != nil {
		c.serviceAccountLister = inf.ServiceAccounts.Lister()
		c.serviceAccountsSynced = inf.ServiceAccounts.Informer().HasSynced
		if _, err := inf.ServiceAccounts.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc: c.handleServiceAccount,
			UpdateFunc: func(old, cur interface{}) {
				if serviceAccountChanged(old, cur) {
					c.handleServiceAccount(cur)
				}
			},
			DeleteFunc: c.handleServiceAccount,
		}); err != nil {
			return nil, err
		}
	}

	if err := objects.informer().AddIndexers(cache.Indexers{registryIndex: c.registryIndexFunc}); err != nil {
		return nil, fmt.Errorf("adding registry index: %w", err)
	}

	logger.Info("Setting up event handlers", "kind", kind)
	if _, err := objects.informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.enqueue,
		UpdateFunc: func(_, obj interface{}) { c.enqueue(obj) },
		DeleteFunc: c.enqueue,
	}); err != nil {
		return nil, err
	}
	if _, err := inf.Secrets.AddEventHandler(cache.ResourceEventHandlerFuncs{
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
	if _, err := inf.Accounts.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.handleAccount,
		UpdateFunc: func(_, cur interface{}) { c.handleAccount(cur) },
		DeleteFunc: c.handleAccount,
	}); err != nil {
		return nil, err
	}
	if _, err := inf.Registries.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
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
	synced := []cache.InformerSynced{c.objectsSynced, c.secrets.HasSynced, c.registrySynced, c.accounts.HasSynced}
	if c.serviceAccountsSynced != nil {
		synced = append(synced, c.serviceAccountsSynced)
	}
	return worker.Run(ctx, "image"+string(c.kind)+"secret", c.queue, workers, c.syncHandler, synced, c.runSweeper)
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
	kind, namespace, name, ok := credentials.ParseOwnerKey(object.GetAnnotations()[v1alpha1.AnnotationOwner])
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
		spec = &t.Spec.ImageSecretSpec
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
