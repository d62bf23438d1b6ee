// Package imageregistryaccount is the controller that writes the status of
// static ImageRegistryAccounts, the ones users write (docs/design.md,
// "Account status"): the login name clients use (spec.username or
// metadata.name, with /<rotation> for a rotating one) and a Ready condition
// that says whether the account can log in, and if not why (expired, a
// password entry that is no bcrypt hash, a login name no login can match).
//
// Generated accounts (labelled app.kubernetes.io/managed-by=
// image-registry-operator, one per ImagePushSecret and ImagePullSecret)
// are left alone: their state is their owner's status, and their cache
// entries are compact only while their status is empty (pkg/objectcache).
//
// The controller reads accounts only through objectcache.Accounts and
// writes nothing but /status.
package imageregistryaccount

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/image-registry-operator/image-registry-operator/pkg/apis/registry/v1alpha1"
	"github.com/image-registry-operator/image-registry-operator/pkg/controller/worker"
	"github.com/image-registry-operator/image-registry-operator/pkg/generated/clientset/versioned"
	registryscheme "github.com/image-registry-operator/image-registry-operator/pkg/generated/clientset/versioned/scheme"
	listers "github.com/image-registry-operator/image-registry-operator/pkg/generated/listers/registry/v1alpha1"
	"github.com/image-registry-operator/image-registry-operator/pkg/objectcache"
)

const controllerAgentName = "imageregistryaccount-controller"

// controllerName names the controller in logs and metrics.
const controllerName = "imageregistryaccount"

// Options are the controller's settings.
type Options struct {
	// Clock decides expiry and schedules the sync at spec.expiresAt;
	// default the real clock.
	Clock clock.WithTicker
}

// Controller keeps the status of static ImageRegistryAccounts.
type Controller struct {
	// client writes account status.
	client versioned.Interface
	// accounts is the shared account cache; its lister expands the
	// compact entries of generated accounts, which the controller skips.
	accounts *objectcache.Accounts
	lister   listers.ImageRegistryAccountLister

	// queue holds accounts to sync; AddAfter on it schedules the sync at
	// expiry, on clock.
	queue    worker.Queue
	recorder record.EventRecorder
	clock    clock.WithTicker

	// syncHandler is a seam for tests of the queue plumbing.
	syncHandler worker.SyncFunc
}

// NewController returns a controller over the shared account cache. Call
// it before the informers start.
func NewController(ctx context.Context, kubeClient kubernetes.Interface, client versioned.Interface, accounts *objectcache.Accounts, opts Options) (*Controller, error) {
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	utilruntime.Must(registryscheme.AddToScheme(scheme.Scheme))
	eventBroadcaster := record.NewBroadcaster(record.WithContext(ctx))
	eventBroadcaster.StartStructuredLogging(0)
	eventBroadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: kubeClient.CoreV1().Events("")})
	recorder := eventBroadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: controllerAgentName})

	c := &Controller{
		client:   client,
		accounts: accounts,
		lister:   accounts.Lister(),
		queue:    worker.NewQueue("ImageRegistryAccounts", opts.Clock),
		recorder: recorder,
		clock:    opts.Clock,
	}
	c.syncHandler = c.sync

	klog.FromContext(ctx).Info("Setting up event handlers", "controller", controllerName)
	if _, err := accounts.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: c.enqueueStatic,
		UpdateFunc: func(old, cur any) {
			o, _ := worker.MetaObject(old)
			n, _ := worker.MetaObject(cur)
			if o != nil && n != nil && o.GetResourceVersion() == n.GetResourceVersion() {
				return // a resync: the expiry timer, if any, is queued
			}
			c.enqueueStatic(cur)
		},
		// A deleted account needs no status.
	}); err != nil {
		return nil, fmt.Errorf("add event handler: %w", err)
	}
	return c, nil
}

// Run starts workers after the cache has synced and blocks until ctx is done.
func (c *Controller) Run(ctx context.Context, workers int) error {
	return worker.Run(ctx, controllerName, c.queue, workers, c.syncHandler, []cache.InformerSynced{c.accounts.HasSynced})
}

// enqueueStatic queues static accounts; events of generated ones, which
// come with every rotation, cost a label lookup and nothing else.
func (c *Controller) enqueueStatic(obj any) {
	m, ok := worker.MetaObject(obj)
	if !ok || Generated(m.GetLabels()) {
		return
	}
	c.queue.Add(cache.NewObjectName(m.GetNamespace(), m.GetName()))
}

// Generated tells whether an account with these labels is one the operator
// made for an ImagePushSecret or ImagePullSecret.
func Generated(labels map[string]string) bool {
	return labels[v1alpha1.LabelManagedBy] == v1alpha1.ManagedByValue
}

func (c *Controller) sync(ctx context.Context, key cache.ObjectName) error {
	acc, err := c.lister.ImageRegistryAccounts(key.Namespace).Get(key.Name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if Generated(acc.Labels) || acc.DeletionTimestamp != nil {
		return nil
	}
	now := c.clock.Now()
	if exp := acc.Spec.ExpiresAt; exp != nil && now.Before(exp.Time) {
		// Ready turns False at expiry without any event to tell.
		c.queue.AddAfter(key, exp.Sub(now))
	}
	desired := acc.DeepCopy()
	setStatus(desired, now)
	if statusEqual(acc.Status, desired.Status) {
		return nil
	}
	updated, err := c.client.RegistryV1alpha1().ImageRegistryAccounts(acc.Namespace).UpdateStatus(ctx, desired, metav1UpdateOptions)
	if err != nil {
		return fmt.Errorf("update status of ImageRegistryAccount %s: %w", klog.KObj(acc), err)
	}
	old, cur := readyReason(acc.Status), readyReason(desired.Status)
	if badInput(cur) && cur != old {
		c.recorder.Event(updated, corev1.EventTypeWarning, cur, readyMessage(desired.Status))
	}
	klog.FromContext(ctx).V(2).Info("Updated account status", "account", klog.KObj(acc), "reason", cur)
	return nil
}
