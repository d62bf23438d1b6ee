package imageregistry

import (
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/image-registry-operator/image-registry-operator/pkg/apis/registry/v1alpha1"
)

// rollOut plays the StatefulSet controller and kubelet: the current
// template is rolled out and its pod runs and is ready on node "n1".
func (f *fixture) rollOut(reg *v1alpha1.ImageRegistry) {
	f.t.Helper()
	s := f.statefulSet(reg)
	s.Status.ObservedGeneration = s.Generation
	s.Status.Replicas = *s.Spec.Replicas
	s.Status.ReadyReplicas = *s.Spec.Replicas
	s.Status.UpdatedReplicas = *s.Spec.Replicas
	rev := "rev-" + s.Spec.Template.Annotations[v1alpha1.AnnotationConfigHash][:8]
	s.Status.CurrentRevision, s.Status.UpdateRevision = rev, rev
	if _, err := f.kubeClient.AppsV1().StatefulSets(reg.Namespace).UpdateStatus(f.ctx, s, metav1.UpdateOptions{}); err != nil {
		f.t.Fatal(err)
	}
	name := reg.Name + "-0"
	_ = f.kubeClient.CoreV1().Pods(reg.Namespace).Delete(f.ctx, name, metav1.DeleteOptions{})
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: reg.Namespace, Labels: s.Spec.Template.Labels,
			Annotations:     s.Spec.Template.Annotations,
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(s, appsv1.SchemeGroupVersion.WithKind("StatefulSet"))},
		},
		Spec: corev1.PodSpec{NodeName: "n1"},
	}
	if _, err := f.kubeClient.CoreV1().Pods(reg.Namespace).Create(f.ctx, pod, metav1.CreateOptions{}); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) registryConfigText(reg *v1alpha1.ImageRegistry) string {
	f.t.Helper()
	return f.configMap(reg.Namespace, registryConfigMapName(reg)).Data[registryConfigKey]
}

func (f *fixture) readOnly(reg *v1alpha1.ImageRegistry) bool {
	f.t.Helper()
	cfg := f.registryConfigText(reg)
	return strings.Contains(cfg, "readonly:\n      enabled: true")
}

func (f *fixture) collectorPod(reg *v1alpha1.ImageRegistry) *corev1.Pod {
	f.t.Helper()
	p, err := f.kubeClient.CoreV1().Pods(reg.Namespace).Get(f.ctx, collectorPodName(reg), metav1.GetOptions{})
	if err != nil {
		return nil
	}
	return p
}

// finishCollector plays the kubelet at the collector's end.
func (f *fixture) finishCollector(reg *v1alpha1.ImageRegistry, phase corev1.PodPhase, exit int32, msg string) {
	f.t.Helper()
	p := f.collectorPod(reg)
	if p == nil {
		f.t.Fatal("no collector pod")
	}
	p.Status.Phase = phase
	p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: collectorContainerName, State: corev1.ContainerState{
		Terminated: &corev1.ContainerStateTerminated{ExitCode: exit, Message: msg},
	}}}
	if _, err := f.kubeClient.CoreV1().Pods(reg.Namespace).UpdateStatus(f.ctx, p, metav1.UpdateOptions{}); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) gcStatus(reg *v1alpha1.ImageRegistry) *v1alpha1.GarbageCollectionStatus {
	f.t.Helper()
	return f.registry(reg.Namespace, reg.Name).Status.GarbageCollection
}

func (f *fixture) condition(reg *v1alpha1.ImageRegistry, typ string) *metav1.Condition {
	f.t.Helper()
	return meta.FindStatusCondition(f.registry(reg.Namespace, reg.Name).Status.Conditions, typ)
}

// requestGC sets the garbage-collect annotation, as kubectl annotate does.
func (f *fixture) requestGC(reg *v1alpha1.ImageRegistry, value string) {
	f.t.Helper()
	r := f.registry(reg.Namespace, reg.Name)
	if r.Annotations == nil {
		r.Annotations = map[string]string{}
	}
	r.Annotations[v1alpha1.AnnotationGarbageCollect] = value
	if _, err := f.client.RegistryV1alpha1().ImageRegistries(reg.Namespace).Update(f.ctx, r, metav1.UpdateOptions{}); err != nil {
		f.t.Fatal(err)
	}
}

// gcRegistry is a serving registry with garbage collection configured.
func gcRegistry(t *testing.T, spec *v1alpha1.GarbageCollectionSpec) (*fixture, *v1alpha1.ImageRegistry) {
	reg := newRegistry("team-a", "reg")
	reg.Spec.GarbageCollection = spec
	f := newFixture(t, nil, reg)
	f.mustSync(reg)
	f.rollOut(reg)
	f.mustSync(reg)
	f.expectReady(reg, metav1.ConditionTrue, ReasonReady)
	if f.readOnly(reg) {
		t.Fatal("a new registry is read-only")
	}
	return f, reg
}

// A requested run: read-only first, the collector only once every pod runs
// read-only, the result in the status, writable again, the pod deleted.
func TestGarbageCollectionRun(t *testing.T) {
	f, reg := gcRegistry(t, &v1alpha1.GarbageCollectionSpec{DeleteUntagged: true})
	f.requestGC(reg, "1")
	f.mustSync(reg)
	if !f.readOnly(reg) {
		t.Fatal("the registry config is not read-only after the request")
	}
	gc := f.gcStatus(reg)
	if gc == nil || gc.Active == nil || gc.Active.Trigger != gcTriggerRequest || gc.LastRequest != "1" {
		t.Fatalf("status.garbageCollection %+v", gc)
	}
	if c := f.condition(reg, v1alpha1.ConditionReadOnly); c == nil || c.Status != metav1.ConditionTrue {
		t.Fatalf("ReadOnly condition %+v", c)
	}
	if f.collectorPod(reg) != nil {
		t.Fatal("collector created before the pods run read-only")
	}
	// The pods still run the writable config: no collector yet.
	f.mustSync(reg)
	if f.collectorPod(reg) != nil {
		t.Fatal("collector created while a writable pod runs")
	}
	f.rollOut(reg)
	f.mustSync(reg)
	p := f.collectorPod(reg)
	if p == nil {
		t.Fatal("no collector pod once the registry is read-only")
	}
	if p.Spec.NodeName != "n1" || p.Spec.RestartPolicy != corev1.RestartPolicyNever || !metav1.IsControlledBy(p, reg) {
		t.Errorf("collector pod: node %q, restartPolicy %s, owners %v", p.Spec.NodeName, p.Spec.RestartPolicy, p.OwnerReferences)
	}
	if p.Spec.Volumes[2].PersistentVolumeClaim == nil || p.Spec.Volumes[2].PersistentVolumeClaim.ClaimName != "data-reg-0" {
		t.Errorf("collector volumes %+v, want the registry's claim data-reg-0", p.Spec.Volumes)
	}
	script := p.Spec.Containers[0].Command[2]
	if !strings.Contains(script, "registry garbage-collect --delete-untagged /etc/distribution/config.yml") {
		t.Errorf("collector script:\n%s", script)
	}
	for k, v := range selectorLabels(reg) {
		if p.Labels[k] == v && k == "app.kubernetes.io/name" {
			t.Errorf("the collector carries the registry pods' selector label %s=%s: the Service would select it", k, v)
		}
	}
	if gc := f.gcStatus(reg); gc.Active == nil || gc.Active.PodName != p.Name {
		t.Fatalf("active run %+v", gc.Active)
	}

	f.finishCollector(reg, corev1.PodSucceeded, 0, `{"kibBefore":5000,"kibAfter":3976}`)
	f.mustSync(reg)
	if f.readOnly(reg) {
		t.Error("still read-only after the collector succeeded")
	}
	gc = f.gcStatus(reg)
	if gc.Active != nil || gc.LastRun == nil || gc.LastRun.Result != v1alpha1.GarbageCollectionSucceeded ||
		gc.LastRun.BytesFreed == nil || *gc.LastRun.BytesFreed != 1024*1024 || gc.LastRun.CompletionTime == nil {
		t.Fatalf("status.garbageCollection %+v, last run %+v", gc, gc.LastRun)
	}
	if c := f.condition(reg, v1alpha1.ConditionGarbageCollected); c == nil || c.Status != metav1.ConditionTrue {
		t.Errorf("GarbageCollected condition %+v", c)
	}
	// ReadOnly stays True until the pods run the writable config.
	if c := f.condition(reg, v1alpha1.ConditionReadOnly); c == nil || c.Status != metav1.ConditionTrue {
		t.Errorf("ReadOnly condition %+v before the writable config rolled out", c)
	}
	// The pod goes once the status holds its result.
	f.rollOut(reg)
	f.mustSync(reg)
	if c := f.condition(reg, v1alpha1.ConditionReadOnly); c == nil || c.Status != metav1.ConditionFalse {
		t.Errorf("ReadOnly condition %+v", c)
	}
	if f.collectorPod(reg) != nil {
		t.Error("the finished collector pod was not deleted")
	}
	// The same annotation value does not run again.
	f.mustSync(reg)
	if f.gcStatus(reg).Active != nil {
		t.Error("a second run for the same request")
	}
}

// A failed collector, a vanished one and a timed-out run each leave the
// registry writable, with GarbageCollected=False and a Warning event.
func TestGarbageCollectionFailures(t *testing.T) {
	start := func(t *testing.T) (*fixture, *v1alpha1.ImageRegistry) {
		f, reg := gcRegistry(t, &v1alpha1.GarbageCollectionSpec{Timeout: &metav1.Duration{Duration: 10 * time.Minute}})
		f.requestGC(reg, "x")
		f.mustSync(reg)
		f.rollOut(reg)
		f.mustSync(reg)
		if f.collectorPod(reg) == nil {
			t.Fatal("no collector pod")
		}
		f.events()
		return f, reg
	}
	check := func(t *testing.T, f *fixture, reg *v1alpha1.ImageRegistry, msg string, warned bool) {
		t.Helper()
		if f.readOnly(reg) {
			t.Error("still read-only")
		}
		gc := f.gcStatus(reg)
		if gc.Active != nil || gc.LastRun == nil || gc.LastRun.Result != v1alpha1.GarbageCollectionFailed || !strings.Contains(gc.LastRun.Message, msg) {
			t.Fatalf("last run %+v, want failed with %q", gc.LastRun, msg)
		}
		if c := f.condition(reg, v1alpha1.ConditionGarbageCollected); c == nil || c.Status != metav1.ConditionFalse || c.Reason != ReasonGCFailed {
			t.Errorf("GarbageCollected condition %+v", c)
		}
		if !warned {
			f.expectWarning(EventReasonGarbageCollectionFailed)
		}
	}
	t.Run("collector fails", func(t *testing.T) {
		f, reg := start(t)
		f.finishCollector(reg, corev1.PodFailed, 1, "failed to mark: boom")
		f.mustSync(reg)
		check(t, f, reg, "exit code 1: failed to mark: boom", false)
	})
	t.Run("collector pod deleted", func(t *testing.T) {
		f, reg := start(t)
		if err := f.kubeClient.CoreV1().Pods(reg.Namespace).Delete(f.ctx, collectorPodName(reg), metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		f.mustSync(reg)
		check(t, f, reg, "disappeared", false)
	})
	t.Run("timeout", func(t *testing.T) {
		f, reg := start(t)
		f.clock.Step(10 * time.Minute)
		f.mustSync(reg)
		f.expectWarning(EventReasonGarbageCollectionFailed)
		// Read-only until the running collector is gone.
		if !f.readOnly(reg) {
			t.Error("writable while the collector may still run")
		}
		if f.collectorPod(reg) != nil {
			t.Error("the timed-out collector pod was not deleted")
		}
		f.mustSync(reg)
		check(t, f, reg, "timeout of 10m0s", true)
	})
	t.Run("collector terminating after the status was lost", func(t *testing.T) {
		f, reg := start(t)
		// The status is wiped (a restore without status): a collector that
		// has not finished still keeps the registry read-only.
		r := f.registry(reg.Namespace, reg.Name)
		r.Status.GarbageCollection = nil
		if _, err := f.client.RegistryV1alpha1().ImageRegistries(reg.Namespace).UpdateStatus(f.ctx, r, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		f.mustSync(reg)
		if !f.readOnly(reg) {
			t.Error("writable while a collector pod runs")
		}
	})
}

func TestGarbageCollectionSchedule(t *testing.T) {
	f, reg := gcRegistry(t, &v1alpha1.GarbageCollectionSpec{Schedule: "0 3 * * *"})
	// testStart is 12:00: the schedule counts from when it was seen.
	gc := f.gcStatus(reg)
	if gc == nil || gc.Schedule != "0 3 * * *" || gc.LastScheduleTime == nil || !gc.LastScheduleTime.Time.Equal(testStart) || gc.Active != nil {
		t.Fatalf("status.garbageCollection %+v", gc)
	}
	f.clock.Step(14*time.Hour + time.Minute) // 02:01 the next day
	f.mustSync(reg)
	if f.gcStatus(reg).Active != nil {
		t.Fatal("run before 03:00")
	}
	f.clock.Step(3 * 24 * time.Hour) // missed three: run once, for the latest
	f.mustSync(reg)
	gc = f.gcStatus(reg)
	want := time.Date(2026, 3, 4, 3, 0, 0, 0, time.UTC)
	if gc.Active == nil || gc.Active.Trigger != gcTriggerSchedule || !gc.LastScheduleTime.Time.Equal(want) {
		t.Fatalf("status.garbageCollection %+v, want a scheduled run for %s", gc, want)
	}

	// An invalid schedule keeps the registry serving and says why.
	r := f.registry(reg.Namespace, reg.Name)
	r.Spec.GarbageCollection.Schedule = "every day"
	r.Generation++
	if _, err := f.client.RegistryV1alpha1().ImageRegistries(reg.Namespace).Update(f.ctx, r, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	f.mustSync(reg)
	if c := f.condition(reg, v1alpha1.ConditionGarbageCollected); c == nil || c.Reason != ReasonInvalidSchedule {
		t.Errorf("GarbageCollected condition %+v", c)
	}
	f.expectWarning(ReasonInvalidSchedule)
	if c := f.condition(reg, v1alpha1.ConditionReady); c.Reason == ReasonInvalidSchedule {
		t.Error("an invalid schedule made the registry not Ready")
	}
}

func TestGarbageCollectionUnsupportedVolume(t *testing.T) {
	reg := newRegistry("team-a", "reg")
	reg.Spec.PersistentVolumeClaim.AccessModes = []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOncePod}
	f := newFixture(t, nil, reg)
	f.mustSync(reg)
	f.rollOut(reg)
	f.requestGC(reg, "1")
	f.mustSync(reg)
	f.rollOut(reg)
	f.mustSync(reg)
	gc := f.gcStatus(reg)
	if gc.Active != nil || gc.LastRun == nil || !strings.Contains(gc.LastRun.Message, "ReadWriteOncePod") || f.collectorPod(reg) != nil {
		t.Fatalf("status %+v, last run %+v", gc, gc.LastRun)
	}
	f.mustSync(reg)
	if f.readOnly(reg) {
		t.Error("read-only after a run that cannot start")
	}
}

func TestCollectorResult(t *testing.T) {
	pod := func(phase corev1.PodPhase, msg string) *corev1.Pod {
		return &corev1.Pod{Status: corev1.PodStatus{Phase: phase, ContainerStatuses: []corev1.ContainerStatus{{
			Name: collectorContainerName, State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 0, Message: msg}},
		}}}}
	}
	if r := collectorResult(pod(corev1.PodSucceeded, `{"kibBefore":10,"kibAfter":12}`)); r.failed || r.bytesFreed == nil || *r.bytesFreed != 0 {
		t.Errorf("grown storage: %+v", r)
	}
	if r := collectorResult(pod(corev1.PodSucceeded, "garbage")); r.failed || r.bytesFreed != nil || !strings.Contains(r.message, "does not parse") {
		t.Errorf("bad report: %+v", r)
	}
	if r := collectorResult(pod(corev1.PodSucceeded, "")); r.failed || r.bytesFreed != nil {
		t.Errorf("S3 (no report): %+v", r)
	}
	long := strings.Repeat("x", 5000) + "the end"
	if r := collectorResult(pod(corev1.PodFailed, long)); !r.failed || len(r.message) > maxMessage+200 || !strings.HasSuffix(r.message, "the end") {
		t.Errorf("long failure message kept %d bytes", len(r.message))
	}
}

// The proxy's registry config, credentials and ACL.
func TestProxyRegistry(t *testing.T) {
	reg := newRegistry("team-a", "cache")
	reg.Spec.Proxy = &v1alpha1.ProxySpec{RemoteURL: "https://registry-1.docker.io", CredentialsSecret: "hub"}
	f := newFixture(t, nil, reg)
	f.mustSync(reg)
	cfg := f.registryConfigText(reg)
	if !strings.Contains(cfg, "remoteurl: https://registry-1.docker.io") || strings.Contains(cfg, "delete:") {
		t.Errorf("proxy config:\n%s", cfg)
	}
	ctr := f.statefulSet(reg).Spec.Template.Spec.Containers[0]
	var names []string
	for _, e := range ctr.Env {
		if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil && e.ValueFrom.SecretKeyRef.Name == "hub" {
			names = append(names, e.Name+"="+e.ValueFrom.SecretKeyRef.Key)
		}
	}
	if strings.Join(names, ",") != "REGISTRY_PROXY_USERNAME=username,REGISTRY_PROXY_PASSWORD=password" {
		t.Errorf("upstream credentials from the Secret: %v", names)
	}
	acl := defaultACL(reg)
	if len(acl) != 1 || acl[0].Match.Account != "/.+/" || strings.Join(acl[0].Actions, ",") != "pull" {
		t.Errorf("proxy ACL %+v", acl)
	}
	if p := ptr.Deref(f.statefulSet(reg).Spec.Replicas, 0); p != 1 {
		t.Errorf("replicas %d", p)
	}
}

// Push accounts may delete in their own namespace; pull accounts may not.
func TestDefaultACLDelete(t *testing.T) {
	rules := defaultACL(newRegistry("team-a", "reg"))
	for _, r := range rules {
		hasDelete := strings.Contains(strings.Join(r.Actions, ","), "delete")
		if r.Match.Labels["type"] == "push" != hasDelete {
			t.Errorf("rule %+v", r)
		}
	}
}
