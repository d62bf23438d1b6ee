package imageregistry

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/dynamic"
	appsinformers "k8s.io/client-go/informers/apps/v1"
	coreinformers "k8s.io/client-go/informers/core/v1"
	policyinformers "k8s.io/client-go/informers/policy/v1"
	rbacinformers "k8s.io/client-go/informers/rbac/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	appslisters "k8s.io/client-go/listers/apps/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	policylisters "k8s.io/client-go/listers/policy/v1"
	rbaclisters "k8s.io/client-go/listers/rbac/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/image-registry-operator/image-registry-operator/pkg/apis/registry/v1alpha1"
	"github.com/image-registry-operator/image-registry-operator/pkg/controller/worker"
	"github.com/image-registry-operator/image-registry-operator/pkg/generated/clientset/versioned"
	registryscheme "github.com/image-registry-operator/image-registry-operator/pkg/generated/clientset/versioned/scheme"
	registryinformers "github.com/image-registry-operator/image-registry-operator/pkg/generated/informers/externalversions/registry/v1alpha1"
	registrylisters "github.com/image-registry-operator/image-registry-operator/pkg/generated/listers/registry/v1alpha1"
	"github.com/image-registry-operator/image-registry-operator/pkg/objectcache"
)

const controllerAgentName = "imageregistry-controller"

// controllerName names the controller in logs and metrics.
const controllerName = "imageregistry"

// Defaults for Options fields left empty.
const (
	DefaultDNSZone         = "svc.cluster.local"
	DefaultRegistryImage   = "registry:3.0.0"
	DefaultDockerAuthImage = "cesanta/docker_auth:1.13"
	// DefaultTokenServerClusterRole is the ClusterRole (get, list and watch
	// on imageregistryaccounts) that each registry's token server is bound
	// to in its namespace; artifacts/deploy/operator ships it.
	DefaultTokenServerClusterRole = "image-registry-operator-token-server"
)

// Options are the operator-wide settings of the controller.
type Options struct {
	// OperatorNamespace holds the operator's CA Secret.
	OperatorNamespace string
	// DNSZone is the suffix of every registry's hostname
	// <name>.<namespace>.<DNSZone>; default svc.cluster.local.
	DNSZone string
	// AuthImage is the operator's own image: it runs the builtin token server
	// and carries the docker_auth ext_auth authenticator. Required.
	AuthImage string
	// RegistryImage is the distribution registry image; default DefaultRegistryImage.
	RegistryImage string
	// DockerAuthImage is the cesanta/docker_auth image; default DefaultDockerAuthImage.
	DockerAuthImage string
	// Clock drives certificate issuing and renewal timers; default the real clock.
	Clock clock.WithTicker
	// UserSecretRecheckInterval is how often a Secret the operator cannot
	// watch (a user's TLS Secret carries no managed-by label) is read again;
	// default 5 minutes.
	UserSecretRecheckInterval time.Duration
	// TokenServerClusterRole is bound to each token server's ServiceAccount
	// with a RoleBinding; default DefaultTokenServerClusterRole.
	TokenServerClusterRole string
	// AllowedImages restricts spec.images: each image set there must equal
	// an entry or start with an entry's text before a trailing "*". Empty
	// allows any.
	AllowedImages []string
}

// NormalizeDNSZone drops the dots a zone may be written with
// ("example.org." and ".example.org" are example.org).
func NormalizeDNSZone(zone string) string {
	return strings.Trim(zone, ".")
}

func (o *Options) setDefaults() error {
	if o.OperatorNamespace == "" {
		return errors.New("imageregistry controller: OperatorNamespace is required")
	}
	if o.AuthImage == "" {
		return errors.New("imageregistry controller: AuthImage is required")
	}
	o.DNSZone = NormalizeDNSZone(o.DNSZone)
	if o.DNSZone == "" {
		o.DNSZone = DefaultDNSZone
	}
	if o.RegistryImage == "" {
		o.RegistryImage = DefaultRegistryImage
	}
	if o.DockerAuthImage == "" {
		o.DockerAuthImage = DefaultDockerAuthImage
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	if o.TokenServerClusterRole == "" {
		o.TokenServerClusterRole = DefaultTokenServerClusterRole
	}
	if o.UserSecretRecheckInterval <= 0 {
		o.UserSecretRecheckInterval = 5 * time.Minute
	}
	return nil
}

// configMapsIndex indexes ImageRegistries by the user ConfigMaps
// (namespace/name) they reference (spec.auth.configMapName,
// spec.storage.s3.caBundle), so that a change to one enqueues exactly the
// registries that use it.
const configMapsIndex = "imageregistry.configMaps"

// Controller keeps each ImageRegistry's owned objects in step with its spec.
type Controller struct {
	// kubeClient writes the owned core, apps and RBAC objects and reads user
	// Secrets, which the label-filtered Secret informer does not see.
	kubeClient kubernetes.Interface
	// registryClient writes ImageRegistry status.
	registryClient versioned.Interface
	// dynamicClient manages cert-manager Certificates without importing
	// cert-manager; nil means cert-manager is treated as missing.
	dynamicClient dynamic.Interface

	registriesLister registrylisters.ImageRegistryLister
	registriesIndex  cache.Indexer
	registriesSynced cache.InformerSynced
	// The listers of every kind the controller owns: reads come from the
	// cache, so a steady state costs no API calls.
	statefulSetsLister    appslisters.StatefulSetLister
	statefulSetsSynced    cache.InformerSynced
	servicesLister        corelisters.ServiceLister
	servicesSynced        cache.InformerSynced
	configMapsLister      corelisters.ConfigMapLister
	configMapsSynced      cache.InformerSynced
	secretsLister         corelisters.SecretLister
	secretsSynced         cache.InformerSynced
	serviceAccountsLister corelisters.ServiceAccountLister
	serviceAccountsSynced cache.InformerSynced
	roleBindingsLister    rbaclisters.RoleBindingLister
	roleBindingsSynced    cache.InformerSynced
	// podsLister holds the pods the operator's labels mark: the registry's
	// and the garbage collector's (gc.go).
	podsLister corelisters.PodLister
	podsSynced cache.InformerSynced
	// claimsLister holds the namespace's PersistentVolumeClaims, for the
	// one claim replicas on a ReadWriteMany volume share (sharedclaim.go).
	claimsLister corelisters.PersistentVolumeClaimLister
	claimsSynced cache.InformerSynced
	// disruptionBudgetsLister holds the registries' PodDisruptionBudgets (disruption.go).
	disruptionBudgetsLister policylisters.PodDisruptionBudgetLister
	disruptionBudgetsSynced cache.InformerSynced

	// queue holds registries to sync; AddAfter on it schedules certificate
	// renewals, using opts.Clock so tests can move time.
	queue worker.Queue
	// recorder tells users about bad input and repairs as Events on the registry.
	recorder record.EventRecorder

	opts Options

	// tokenSecrets remembers each registry's token Secret, so that a
	// deleted one's key can come back (tokensecrets.go).
	tokenSecrets *lastTokenSecrets

	// syncHandler is a seam for tests of the queue plumbing.
	syncHandler worker.SyncFunc
}

// NewController returns a controller over the given informers. The Secret
// informer must be filtered to v1alpha1.LabelManagedBy=v1alpha1.ManagedByValue.
// Call it before the informers start: it adds an index to the ImageRegistry informer.
func NewController(
	ctx context.Context,
	kubeClient kubernetes.Interface,
	registryClient versioned.Interface,
	dynamicClient dynamic.Interface,
	registryInformer registryinformers.ImageRegistryInformer,
	statefulSetInformer appsinformers.StatefulSetInformer,
	serviceInformer coreinformers.ServiceInformer,
	configMapInformer coreinformers.ConfigMapInformer,
	secrets *objectcache.Secrets,
	serviceAccountInformer coreinformers.ServiceAccountInformer,
	roleBindingInformer rbacinformers.RoleBindingInformer,
	podInformer coreinformers.PodInformer,
	claimInformer coreinformers.PersistentVolumeClaimInformer,
	disruptionBudgetInformer policyinformers.PodDisruptionBudgetInformer,
	opts Options,
) (*Controller, error) {
	logger := klog.FromContext(ctx)
	if err := opts.setDefaults(); err != nil {
		return nil, err
	}
	utilruntime.Must(registryscheme.AddToScheme(scheme.Scheme))

	eventBroadcaster := record.NewBroadcaster(record.WithContext(ctx))
	eventBroadcaster.StartStructuredLogging(0)
	eventBroadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: kubeClient.CoreV1().Events("")})
	recorder := eventBroadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: controllerAgentName})

	if err := registryInformer.Informer().AddIndexers(cache.Indexers{configMapsIndex: indexByConfigMaps}); err != nil {
		return nil, fmt.Errorf("add ImageRegistry index: %w", err)
	}

	c := &Controller{
		kubeClient:         kubeClient,
		registryClient:     registryClient,
		dynamicClient:      dynamicClient,
		registriesLister:   registryInformer.Lister(),
		registriesIndex:    registryInformer.Informer().GetIndexer(),
		registriesSynced:   registryInformer.Informer().HasSynced,
		statefulSetsLister: statefulSetInformer.Lister(),
		statefulSetsSynced: statefulSetInformer.Informer().HasSynced,
		servicesLister:     serviceInformer.Lister(),
		servicesSynced:     serviceInformer.Informer().HasSynced,
		configMapsLister:   configMapInformer.Lister(),
		configMapsSynced:   configMapInformer.Informer().HasSynced,
		// The Secret cache is shared with the push/pull controllers
		// (objectcache): its lister expands their compact entries.
		secretsLister:           secrets.Lister(),
		secretsSynced:           secrets.HasSynced,
		serviceAccountsLister:   serviceAccountInformer.Lister(),
		serviceAccountsSynced:   serviceAccountInformer.Informer().HasSynced,
		roleBindingsLister:      roleBindingInformer.Lister(),
		roleBindingsSynced:      roleBindingInformer.Informer().HasSynced,
		podsLister:              podInformer.Lister(),
		podsSynced:              podInformer.Informer().HasSynced,
		claimsLister:            claimInformer.Lister(),
		claimsSynced:            claimInformer.Informer().HasSynced,
		disruptionBudgetsLister: disruptionBudgetInformer.Lister(),
		disruptionBudgetsSynced: disruptionBudgetInformer.Informer().HasSynced,
		queue:                   worker.NewQueue("ImageRegistries", opts.Clock),
		recorder:                recorder,
		opts:                    opts,
		tokenSecrets:            newLastTokenSecrets(),
	}
	c.syncHandler = c.sync

	logger.Info("Setting up event handlers")
	handlers := []struct {
		informer interface {
			AddEventHandler(cache.ResourceEventHandler) (cache.ResourceEventHandlerRegistration, error)
		}
		handler cache.ResourceEventHandler
	}{
		{registryInformer.Informer(), cache.ResourceEventHandlerFuncs{
			AddFunc:    c.enqueue,
			UpdateFunc: func(_, obj interface{}) { c.enqueue(obj) },
			DeleteFunc: c.enqueue,
		}},
		{statefulSetInformer.Informer(), c.ownedHandler(nil)},
		{serviceInformer.Informer(), c.ownedHandler(nil)},
		{configMapInformer.Informer(), c.ownedHandler(c.handleUserConfigMap)},
		{secrets, c.ownedHandler(c.handleUnownedSecret)},
		{serviceAccountInformer.Informer(), c.ownedHandler(nil)},
		{roleBindingInformer.Informer(), c.ownedHandler(nil)},
		{podInformer.Informer(), c.podHandler()},
		{claimInformer.Informer(), c.claimHandler()},
		{disruptionBudgetInformer.Informer(), c.ownedHandler(c.enqueueNamespace)},
	}
	for _, h := range handlers {
		if _, err := h.informer.AddEventHandler(h.handler); err != nil {
			return nil, fmt.Errorf("add event handler: %w", err)
		}
	}
	return c, nil
}

// Run starts workers after the caches have synced and blocks until ctx is done.
func (c *Controller) Run(ctx context.Context, workers int) error {
	return worker.Run(ctx, controllerName, c.queue, workers, c.syncHandler, []cache.InformerSynced{
		c.registriesSynced, c.statefulSetsSynced, c.servicesSynced, c.configMapsSynced,
		c.secretsSynced, c.serviceAccountsSynced, c.roleBindingsSynced, c.podsSynced, c.claimsSynced,
		c.disruptionBudgetsSynced,
	})
}

func (c *Controller) enqueue(obj interface{}) { worker.Enqueue(c.queue, obj) }

// ownedHandler enqueues the ImageRegistry controlling an object; objects
// without such an owner go to unowned, if given.
func (c *Controller) ownedHandler(unowned func(metav1.Object)) cache.ResourceEventHandler {
	handle := func(obj interface{}) {
		object, ok := worker.MetaObject(obj)
		if !ok {
			return
		}
		if ref := metav1.GetControllerOf(object); ref != nil && ref.Kind == "ImageRegistry" && ref.APIVersion == v1alpha1.SchemeGroupVersion.String() {
			c.queue.Add(cache.NewObjectName(object.GetNamespace(), ref.Name))
			return
		}
		if unowned != nil {
			unowned(object)
		}
	}
	return cache.ResourceEventHandlerFuncs{
		AddFunc: handle,
		UpdateFunc: func(old, cur interface{}) {
			o, _ := worker.MetaObject(old)
			n, _ := worker.MetaObject(cur)
			if o != nil && n != nil && o.GetResourceVersion() == n.GetResourceVersion() {
				return // a resync: nothing changed
			}
			handle(cur)
		},
		DeleteFunc: handle,
	}
}

// podHandler enqueues the registry of a collector pod (its controller) and
// of a registry pod (by its instance label: the StatefulSet controls it),
// whose config hash tells when the registry is read-only.
func (c *Controller) podHandler() cache.ResourceEventHandler {
	return c.ownedHandler(func(p metav1.Object) {
		if ref := metav1.GetControllerOf(p); ref != nil && ref.Kind == "StatefulSet" {
			c.enqueueInstance(p)
		}
	})
}

// claimHandler enqueues the registry of a volume claim, which has no
// owner (sharedclaim.go), by its instance label.
func (c *Controller) claimHandler() cache.ResourceEventHandler {
	return c.ownedHandler(c.enqueueInstance)
}

// enqueueNamespace enqueues every registry of an object's namespace: a
// PodDisruptionBudget of the user's may select any registry's pods
// (disruption.go), and registries per namespace are few.
func (c *Controller) enqueueNamespace(o metav1.Object) {
	regs, err := c.registriesLister.ImageRegistries(o.GetNamespace()).List(everything)
	if err != nil {
		utilruntime.HandleError(err)
		return
	}
	for _, r := range regs {
		c.enqueue(r)
	}
}

// enqueueInstance enqueues the registry an object's labels name as theirs.
func (c *Controller) enqueueInstance(o metav1.Object) {
	if name := o.GetLabels()["app.kubernetes.io/instance"]; name != "" && o.GetLabels()["app.kubernetes.io/name"] == "image-registry" {
		c.queue.Add(cache.NewObjectName(o.GetNamespace(), name))
	}
}

// handleUserConfigMap enqueues the registries that reference this
// ConfigMap (configMapsIndex).
func (c *Controller) handleUserConfigMap(cm metav1.Object) {
	objs, err := c.registriesIndex.ByIndex(configMapsIndex, cm.GetNamespace()+"/"+cm.GetName())
	if err != nil {
		utilruntime.HandleError(err)
		return
	}
	for _, o := range objs {
		c.enqueue(o)
	}
}

// handleUnownedSecret reacts to the operator's CA Secret, which every
// registry's serving certificate depends on, and to Secrets cert-manager
// writes for a registry (they carry v1alpha1.LabelRegistry, not an owner reference).
func (c *Controller) handleUnownedSecret(s metav1.Object) {
	if s.GetNamespace() == c.opts.OperatorNamespace && s.GetName() == CASecretName {
		regs, err := c.registriesLister.List(everything)
		if err != nil {
			utilruntime.HandleError(err)
			return
		}
		for _, r := range regs {
			c.enqueue(r)
		}
		return
	}
	if name := s.GetLabels()[v1alpha1.LabelRegistry]; name != "" {
		c.queue.Add(cache.NewObjectName(s.GetNamespace(), name))
	}
}

func indexByConfigMaps(obj interface{}) ([]string, error) {
	r, ok := obj.(*v1alpha1.ImageRegistry)
	if !ok {
		return nil, nil
	}
	var keys []string
	if r.Spec.Auth.ConfigMapName != "" {
		keys = append(keys, r.Namespace+"/"+r.Spec.Auth.ConfigMapName)
	}
	if s3 := s3Storage(r); s3 != nil && s3.CABundle != nil {
		keys = append(keys, r.Namespace+"/"+s3.CABundle.Name)
	}
	return keys, nil
}
