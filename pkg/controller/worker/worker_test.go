package worker

import (
	"context"
	"errors"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/component-base/metrics/testutil"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/image-registry-operator/image-registry-operator/pkg/metrics"
)

func TestProcessNext(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Now())
	q := NewQueue("test", clk)
	defer q.ShutDown()
	key := cache.NewObjectName("ns", "name")
	metrics.Register()
	errorsBefore, _ := testutil.GetCounterMetricValue(metrics.SyncErrors.WithLabelValues("test-controller"))

	// A failed sync comes back, rate-limited, and is counted.
	q.Add(key)
	var synced []cache.ObjectName
	fail := func(_ context.Context, k cache.ObjectName) error {
		synced = append(synced, k)
		return errors.New("boom")
	}
	if !ProcessNext(t.Context(), "test-controller", q, fail) {
		t.Fatal("ProcessNext stopped on a live queue")
	}
	if len(synced) != 1 || synced[0] != key {
		t.Fatalf("synced %v, want [%v]", synced, key)
	}
	if n := q.NumRequeues(key); n != 1 {
		t.Errorf("requeues after a failure: %d, want 1", n)
	}
	if got, _ := testutil.GetCounterMetricValue(metrics.SyncErrors.WithLabelValues("test-controller")); got != errorsBefore+1 {
		t.Errorf("sync errors %v, want %v", got, errorsBefore+1)
	}

	// A successful sync forgets the back-off.
	clk.Step(time.Minute)
	for q.Len() == 0 {
		time.Sleep(time.Millisecond)
	}
	ok := func(_ context.Context, k cache.ObjectName) error { synced = append(synced, k); return nil }
	ProcessNext(t.Context(), "test-controller", q, ok)
	if n := q.NumRequeues(key); n != 0 || len(synced) != 2 || q.Len() != 0 {
		t.Errorf("after a success: requeues %d, syncs %d, queued %d; want 0, 2, 0", n, len(synced), q.Len())
	}

	q.ShutDown()
	if ProcessNext(t.Context(), "test-controller", q, ok) {
		t.Error("ProcessNext went on after the queue shut down")
	}
}

func TestEnqueueAndMetaObjectUnwrapTombstones(t *testing.T) {
	q := NewQueue("test", clocktesting.NewFakeClock(time.Now()))
	defer q.ShutDown()
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "gone"}}
	tomb := cache.DeletedFinalStateUnknown{Key: "ns/gone", Obj: s}
	Enqueue(q, tomb)
	if k, _ := q.Get(); k != cache.NewObjectName("ns", "gone") {
		t.Errorf("enqueued %v", k)
	}
	if o, ok := MetaObject(tomb); !ok || o.GetName() != "gone" {
		t.Errorf("MetaObject(tombstone) = %v, %v", o, ok)
	}
	if _, ok := MetaObject("not an object"); ok {
		t.Error("MetaObject accepted a string")
	}
}
