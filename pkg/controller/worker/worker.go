// Package worker is the skeleton every controller of the operator shares,
// in the style of k8s.io/sample-controller: a rate-limited queue of object
// names fed by informer event handlers, and workers that sync one name at a
// time, retrying failures with back-off. A controller brings its sync
// function and its informers; everything else is here, once.
package worker

import (
	"context"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/image-registry-operator/image-registry-operator/pkg/metrics"
)

// Queue holds the names of objects to sync.
type Queue = workqueue.TypedRateLimitingInterface[cache.ObjectName]

// NewQueue makes a queue with client-go's default controller back-off,
// named for its workqueue metrics, on clk (a fake clock in tests).
func NewQueue(name string, clk clock.WithTicker) Queue {
	return workqueue.NewTypedRateLimitingQueueWithConfig(
		workqueue.DefaultTypedControllerRateLimiter[cache.ObjectName](),
		workqueue.TypedRateLimitingQueueConfig[cache.ObjectName]{Name: name, Clock: clk},
	)
}

// SyncFunc brings one object in line; an error retries it with back-off.
type SyncFunc func(ctx context.Context, key cache.ObjectName) error

// Run waits for the informer caches, then runs workers that sync queued
// names, and the background loops, until ctx ends; it shuts the queue
// down on return. controller names the controller in logs and in
// image_registry_operator_sync_errors_total.
func Run(ctx context.Context, controller string, q Queue, workers int, sync SyncFunc, synced []cache.InformerSynced, background ...func(context.Context)) error {
	defer utilruntime.HandleCrashWithContext(ctx)
	defer q.ShutDown()
	logger := klog.FromContext(ctx).WithValues("controller", controller)
	ctx = klog.NewContext(ctx, logger)

	logger.Info("Starting controller")
	if !cache.WaitForNamedCacheSyncWithContext(ctx, synced...) {
		return fmt.Errorf("%s: failed to wait for caches to sync", controller)
	}
	for range workers {
		go wait.UntilWithContext(ctx, func(ctx context.Context) {
			for ProcessNext(ctx, controller, q, sync) {
			}
		}, time.Second)
	}
	for _, f := range background {
		go f(ctx)
	}
	logger.Info("Started workers", "count", workers)
	<-ctx.Done()
	logger.Info("Shutting down workers")
	return nil
}

// ProcessNext syncs the next queued name; false once the queue shut down.
func ProcessNext(ctx context.Context, controller string, q Queue, sync SyncFunc) bool {
	key, shutdown := q.Get()
	if shutdown {
		return false
	}
	defer q.Done(key)
	if err := sync(ctx, key); err != nil {
		utilruntime.HandleErrorWithContext(ctx, err, "Error syncing; requeuing for later retry", "objectReference", key)
		metrics.SyncErrors.WithLabelValues(controller).Inc()
		q.AddRateLimited(key)
		return true
	}
	q.Forget(key)
	return true
}

// Enqueue adds the name of obj, which may be a deletion tombstone.
func Enqueue(q Queue, obj any) {
	key, err := cache.DeletionHandlingObjectToName(obj)
	if err != nil {
		utilruntime.HandleError(err)
		return
	}
	q.Add(key)
}

// MetaObject is the metadata of an informer event's object, a deletion
// tombstone unwrapped. meta.Accessor also reads the compact entries that
// the operator keeps in some caches (pkg/objectcache).
func MetaObject(obj any) (metav1.Object, bool) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	o, err := meta.Accessor(obj)
	if err != nil {
		utilruntime.HandleError(fmt.Errorf("informer event with an object of type %T, which has no metadata", obj))
		return nil, false
	}
	return o, true
}
