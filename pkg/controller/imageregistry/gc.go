package imageregistry

// Garbage collection: `registry garbage-collect` frees the blobs that no
// manifest references, but a push that runs beside it can lose layers (the
// collector marks what manifests reference, then deletes the rest; a blob
// uploaded in between for a manifest not yet written is deleted). So the
// controller never lets the two interleave:
//
//  1. start: a due schedule or a new value of the garbage-collect
//     annotation sets status.garbageCollection.active. From then on the
//     rendered registry config has storage.maintenance.readonly.enabled,
//     which rolls the pods (config-hash): read-only pods serve pulls and
//     answer every write with 405.
//  2. run: once every registry pod runs the read-only config (the
//     StatefulSet rolled out, and each pod the lister holds carries the
//     read-only config hash), the collector pod is created against the
//     same storage: for a ReadWriteOnce volume on the registry pod's node.
//  3. end: the collector pod finished, vanished, or the run exceeded its
//     timeout. The result goes into status.garbageCollection.lastRun (with
//     a Warning event if it failed), active is cleared, and the config is
//     rendered writable again; the finished pod is deleted once the status
//     holds its result.
//
// Read-only is decided from API state alone: active in the status, or a
// collector pod that exists and has not finished (also while it
// terminates). So a restarted operator decides the same, a lost status
// write is redone by the next sync, and the registry is never writable
// while a collector process may still run; it is writable again as soon as
// neither holds.
//
// A push that straddles the switch fails with the 405 and is repeated by
// the client after the run: the registry checks that every blob a manifest
// names exists when the manifest is put, so a push either completes or
// fails, never leaves a manifest with missing layers.

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"

	"github.com/image-registry-operator/image-registry-operator/pkg/apis/registry/v1alpha1"
)

const (
	// defaultGCTimeout applies when spec.garbageCollection.timeout is unset.
	defaultGCTimeout = time.Hour
	// collectorContainerName is the collector pod's one container.
	collectorContainerName = "collector"
	// labelComponent tells the collector pod from the registry's pods.
	labelComponent     = "app.kubernetes.io/component"
	collectorComponent = "garbage-collector"
	// Triggers of a run.
	gcTriggerSchedule = "Schedule"
	gcTriggerRequest  = "Request"
	// terminationMessagePath is where the collector writes its measurement.
	terminationMessagePath = "/dev/termination-log"
	// maxMessage bounds what a run's message keeps of the collector's output.
	maxMessage = 1024
	// maxMissedSchedules bounds the search for the latest missed schedule
	// time; past it, the run counts as scheduled now.
	maxMissedSchedules = 10000
)

// Reasons of the GarbageCollected and ReadOnly conditions and of events.
const (
	// ReasonGCSucceeded: the last run succeeded.
	ReasonGCSucceeded = "Succeeded"
	// ReasonGCFailed: the last run failed; its message says why.
	ReasonGCFailed = "Failed"
	// ReasonGCNeverRun: no run has ended yet.
	ReasonGCNeverRun = "NeverRun"
	// ReasonInvalidSchedule: spec.garbageCollection.schedule does not parse;
	// no scheduled runs until it does (on-demand runs still work).
	ReasonInvalidSchedule = "InvalidSchedule"
	// ReasonGarbageCollection (ReadOnly=True): a run is under way.
	ReasonGarbageCollection = "GarbageCollection"
	// ReasonWritable (ReadOnly=False).
	ReasonWritable = "Writable"

	// EventReasonGarbageCollectionStarted: the registry switches to
	// read-only mode for a run.
	EventReasonGarbageCollectionStarted = "GarbageCollectionStarted"
	// EventReasonGarbageCollectorCreated: the registry is read-only and the
	// collector pod was created.
	EventReasonGarbageCollectorCreated = "GarbageCollectorCreated"
	// EventReasonGarbageCollected (Normal): a run succeeded.
	EventReasonGarbageCollected = "GarbageCollected"
	// EventReasonGarbageCollectionFailed (Warning): a run failed, timed out
	// or was interrupted; the registry becomes writable again.
	EventReasonGarbageCollectionFailed = "GarbageCollectionFailed"
)

// cronParser reads standard five-field cron expressions, descriptors such
// as @daily, and CRON_TZ= prefixes.
var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

func collectorPodName(r *v1alpha1.ImageRegistry) string { return r.Name + "-gc" }

// dataClaimName is the volume claim of the StatefulSet's first pod.
func dataClaimName(r *v1alpha1.ImageRegistry) string {
	return dataVolume + "-" + statefulSetName(r) + "-0"
}

// collectorLabels differ from selectorLabels, so that neither the
// StatefulSet nor the Services select the collector pod; the managed-by
// label puts it into the operator's filtered pod cache.
func collectorLabels(r *v1alpha1.ImageRegistry) map[string]string {
	return map[string]string{
		"app.kubernetes.io/name":     "image-registry-gc",
		"app.kubernetes.io/instance": r.Name,
		labelComponent:               collectorComponent,
		v1alpha1.LabelManagedBy:      v1alpha1.ManagedByValue,
	}
}

func gcTimeout(reg *v1alpha1.ImageRegistry) time.Duration {
	if g := reg.Spec.GarbageCollection; g != nil && g.Timeout != nil && g.Timeout.Duration > 0 {
		return g.Timeout.Duration
	}
	return defaultGCTimeout
}

func podFinished(p *corev1.Pod) bool {
	return p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed
}

func toTime(t time.Time) metav1.Time { return metav1.NewTime(t.Truncate(time.Second)) }

// planGarbageCollection decides, before the registry config is rendered,
// whether a run starts or ends and so whether the registry is read-only
// (st.readOnly). The new status goes into st.gc and is written with the
// rest of the status.
func (c *Controller) planGarbageCollection(ctx context.Context, reg *v1alpha1.ImageRegistry, st *syncState) error {
	gc := reg.Status.GarbageCollection.DeepCopy()
	if gc == nil {
		gc = &v1alpha1.GarbageCollectionStatus{}
	}
	st.gc = gc
	pod, err := lookup(c.podsLister.Pods(reg.Namespace).Get(collectorPodName(reg)))
	if err != nil {
		return err
	}
	if pod != nil && !metav1.IsControlledBy(pod, reg) {
		pod = nil // not ours; creating ours will fail and say so
	}
	st.gcPod = pod
	now := st.now
	if a := gc.Active; a != nil {
		switch {
		case pod != nil && podFinished(pod):
			c.endRun(ctx, reg, st, collectorResult(pod))
		case pod == nil && a.PodName != "":
			c.endRun(ctx, reg, st, runResult{failed: true, message: fmt.Sprintf("the collector pod %s disappeared before it finished", a.PodName)})
		case !now.Before(a.StartTime.Add(gcTimeout(reg))):
			msg := fmt.Sprintf("the run did not end within its timeout of %s", gcTimeout(reg))
			if a.PodName == "" {
				msg += " (the registry's pods did not all run read-only in time)"
			}
			c.endRun(ctx, reg, st, runResult{failed: true, message: msg})
		case pod != nil && a.PodName == "":
			// Created by a sync whose status write was lost.
			a.PodName = pod.Name
		}
	}
	sched, err := c.gcSchedule(reg, st)
	if err != nil {
		return err
	}
	if gc.Active == nil && pod == nil {
		if trigger := c.gcTrigger(ctx, reg, st, sched); trigger != "" {
			gc.Active = &v1alpha1.GarbageCollectionRun{Trigger: trigger, StartTime: toTime(now)}
			klog.FromContext(ctx).Info("Garbage collection: switching the registry to read-only mode", "trigger", trigger)
			c.recorder.Eventf(reg, corev1.EventTypeNormal, EventReasonGarbageCollectionStarted,
				"Garbage collection (%s): switching the registry to read-only mode; pushes are refused until it ends", trigger)
		}
	}
	if a := gc.Active; a != nil {
		st.requeueNoLaterThan(a.StartTime.Add(gcTimeout(reg)))
	}
	st.readOnly = gc.Active != nil || (pod != nil && !podFinished(pod))
	pods, err := c.podsLister.Pods(reg.Namespace).List(labels.SelectorFromSet(selectorLabels(reg)))
	if err != nil {
		return err
	}
	for _, p := range pods {
		if p.Annotations[v1alpha1.AnnotationReadOnly] == "true" {
			st.readOnlyPods++
		}
	}
	return nil
}

// gcSchedule parses spec.garbageCollection.schedule; nil without one. A
// schedule that does not parse is no error of the sync: the registry keeps
// serving, GarbageCollected=False says why and a Warning event repeats it.
func (c *Controller) gcSchedule(reg *v1alpha1.ImageRegistry, st *syncState) (cron.Schedule, error) {
	spec := reg.Spec.GarbageCollection
	if spec == nil || spec.Schedule == "" {
		return nil, nil
	}
	sched, err := cronParser.Parse(spec.Schedule)
	if err != nil {
		st.gcScheduleErr = fmt.Sprintf("spec.garbageCollection.schedule %q: %v", spec.Schedule, err)
		c.recorder.Event(reg, corev1.EventTypeWarning, ReasonInvalidSchedule, st.gcScheduleErr)
		return nil, nil
	}
	return sched, nil
}

// gcTrigger tells whether a run is due: a new annotation value, or a due
// schedule. It records what it acted on in st.gc and schedules the next
// look at the schedule.
func (c *Controller) gcTrigger(ctx context.Context, reg *v1alpha1.ImageRegistry, st *syncState, sched cron.Schedule) string {
	gc := st.gc
	if v := reg.Annotations[v1alpha1.AnnotationGarbageCollect]; v != "" && v != gc.LastRequest {
		gc.LastRequest = v
		return gcTriggerRequest
	}
	spec := reg.Spec.GarbageCollection
	if spec == nil || spec.Schedule == "" {
		gc.Schedule, gc.LastScheduleTime = "", nil
		return ""
	}
	if sched == nil {
		return ""
	}
	now := st.now
	if gc.Schedule != spec.Schedule || gc.LastScheduleTime == nil {
		// A new or changed schedule counts from now.
		gc.Schedule, gc.LastScheduleTime = spec.Schedule, ptr.To(toTime(now))
		st.requeueNoLaterThan(sched.Next(now))
		return ""
	}
	next := sched.Next(gc.LastScheduleTime.Time)
	if next.IsZero() {
		return "" // a schedule that never fires, such as February 30th
	}
	if now.Before(next) {
		st.requeueNoLaterThan(next)
		return ""
	}
	// Of several missed times (the operator was down), run once, for the latest.
	latest := next
	for i := 0; ; i++ {
		n := sched.Next(latest)
		if n.IsZero() || n.After(now) {
			break
		}
		if i == maxMissedSchedules {
			latest = now
			break
		}
		latest = n
	}
	gc.LastScheduleTime = ptr.To(toTime(latest))
	klog.FromContext(ctx).V(2).Info("Garbage collection due", "scheduled", latest)
	return gcTriggerSchedule
}

// runResult is how a run ended.
type runResult struct {
	failed     bool
	message    string
	bytesFreed *int64
}

// endRun moves the active run to lastRun.
func (c *Controller) endRun(ctx context.Context, reg *v1alpha1.ImageRegistry, st *syncState, res runResult) {
	run := st.gc.Active
	st.gc.Active = nil
	run.CompletionTime = ptr.To(toTime(st.now))
	run.Result, run.Message, run.BytesFreed = v1alpha1.GarbageCollectionSucceeded, res.message, res.bytesFreed
	st.gc.LastRun = run
	logger := klog.FromContext(ctx)
	if res.failed {
		run.Result = v1alpha1.GarbageCollectionFailed
		logger.Info("Garbage collection failed; making the registry writable again", "message", res.message)
		c.recorder.Eventf(reg, corev1.EventTypeWarning, EventReasonGarbageCollectionFailed,
			"Garbage collection failed, the registry becomes writable again: %s", res.message)
		return
	}
	freed := "an unknown amount of storage"
	if res.bytesFreed != nil {
		freed = fmt.Sprintf("%d bytes", *res.bytesFreed)
	}
	logger.Info("Garbage collection succeeded; making the registry writable again", "bytesFreed", res.bytesFreed)
	c.recorder.Eventf(reg, corev1.EventTypeNormal, EventReasonGarbageCollected, "Garbage collection freed %s; the registry becomes writable again", freed)
}

// collectorReport is what the collector script writes to its termination
// message: the storage directory's size before and after, in KiB.
type collectorReport struct {
	KiBBefore int64 `json:"kibBefore"`
	KiBAfter  int64 `json:"kibAfter"`
}

// collectorResult reads a finished collector pod.
func collectorResult(pod *corev1.Pod) runResult {
	var term *corev1.ContainerStateTerminated
	for _, s := range pod.Status.ContainerStatuses {
		if s.Name == collectorContainerName {
			term = s.State.Terminated
		}
	}
	if pod.Status.Phase == corev1.PodSucceeded {
		res := runResult{message: "the collector succeeded"}
		if term != nil && strings.TrimSpace(term.Message) != "" {
			var rep collectorReport
			if err := json.Unmarshal([]byte(term.Message), &rep); err != nil {
				res.message = fmt.Sprintf("the collector succeeded; its report %q does not parse: %v", truncate(term.Message), err)
				return res
			}
			freed := max(rep.KiBBefore-rep.KiBAfter, 0) * 1024
			res.bytesFreed = &freed
			res.message = fmt.Sprintf("the storage used %d KiB before and %d KiB after", rep.KiBBefore, rep.KiBAfter)
		}
		return res
	}
	msg := "the collector pod failed"
	if pod.Status.Reason != "" {
		msg += ": " + pod.Status.Reason
		if pod.Status.Message != "" {
			msg += " (" + pod.Status.Message + ")"
		}
	}
	if term != nil {
		msg += fmt.Sprintf("; exit code %d", term.ExitCode)
		if m := strings.TrimSpace(term.Message); m != "" {
			msg += ": " + truncate(m)
		}
	}
	return runResult{failed: true, message: msg}
}

// truncate keeps the end of a long message: the collector's last lines say
// what went wrong.
func truncate(s string) string {
	if len(s) <= maxMessage {
		return s
	}
	return "..." + s[len(s)-maxMessage:]
}

// runGarbageCollection acts on the plan after the StatefulSet is ensured:
// it creates the collector pod once every registry pod is read-only, and
// deletes a collector pod whose run has ended.
func (c *Controller) runGarbageCollection(ctx context.Context, reg *v1alpha1.ImageRegistry, st *syncState) error {
	gc, pod := st.gc, st.gcPod
	if pod != nil {
		recorded := reg.Status.GarbageCollection == nil || reg.Status.GarbageCollection.Active == nil
		if gc.Active == nil && (!podFinished(pod) || recorded) && pod.DeletionTimestamp == nil {
			// A finished run whose result the API holds, or a collector that
			// outlived its run (timed out, or orphaned).
			err := c.kubeClient.CoreV1().Pods(reg.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &pod.UID}})
			if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
				return fmt.Errorf("delete collector pod %s: %w", pod.Name, err)
			}
			klog.FromContext(ctx).V(2).Info("Deleted collector pod", "pod", klog.KObj(pod))
		}
		return nil
	}
	a := gc.Active
	if a == nil || a.PodName != "" {
		return nil
	}
	if msg := c.unsupportedStorage(reg); msg != "" {
		c.endRun(ctx, reg, st, runResult{failed: true, message: msg})
		return nil
	}
	ok, node, err := c.registryReadOnly(reg, st)
	if err != nil || !ok {
		// Pod and StatefulSet events bring the registry back.
		return err
	}
	desired := c.collectorPod(reg, node)
	desired.Namespace = reg.Namespace
	desired.OwnerReferences = []metav1.OwnerReference{*metav1.NewControllerRef(reg, v1alpha1.SchemeGroupVersion.WithKind("ImageRegistry"))}
	created, err := c.kubeClient.CoreV1().Pods(reg.Namespace).Create(ctx, desired, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		// Ours appears in the cache soon; someone else's blocks the run.
		if cur, gerr := c.kubeClient.CoreV1().Pods(reg.Namespace).Get(ctx, desired.Name, metav1.GetOptions{}); gerr == nil && !metav1.IsControlledBy(cur, reg) {
			c.endRun(ctx, reg, st, runResult{failed: true, message: fmt.Sprintf("pod %s already exists and is not controlled by ImageRegistry %s", desired.Name, reg.Name)})
			return nil
		}
		return err
	}
	if apierrors.IsInvalid(err) || apierrors.IsForbidden(err) {
		c.endRun(ctx, reg, st, runResult{failed: true, message: fmt.Sprintf("the API refused the collector pod: %v", err)})
		return nil
	}
	if err != nil {
		return fmt.Errorf("create collector pod: %w", err)
	}
	a.PodName = created.Name
	klog.FromContext(ctx).Info("Registry is read-only; created the collector pod", "pod", klog.KObj(created), "node", node)
	c.recorder.Eventf(reg, corev1.EventTypeNormal, EventReasonGarbageCollectorCreated, "The registry is read-only; created collector pod %s", created.Name)
	return nil
}

// unsupportedStorage says why no collector can reach the storage, or "".
func (c *Controller) unsupportedStorage(reg *v1alpha1.ImageRegistry) string {
	if s3Storage(reg) == nil && slices.Contains(c.dataAccessModes(reg), corev1.ReadWriteOncePod) {
		return "the data volume is ReadWriteOncePod: no second pod may mount it beside the registry"
	}
	return ""
}

// dataAccessModes are the access modes of the claim the collector mounts:
// the claim's own once it exists (they cannot change, whatever the spec
// says now), else the spec's.
func (c *Controller) dataAccessModes(reg *v1alpha1.ImageRegistry) []corev1.PersistentVolumeAccessMode {
	if claim, err := c.claimsLister.PersistentVolumeClaims(reg.Namespace).Get(dataClaimName(reg)); err == nil {
		return claim.Spec.AccessModes
	}
	return volumeClaimTemplate(reg).Spec.AccessModes
}

// registryReadOnly tells whether every registry pod runs the read-only
// config that this sync rendered, and the node the collector must run on
// (the first pod's, for a ReadWriteOnce volume; "" lets the scheduler
// choose).
func (c *Controller) registryReadOnly(reg *v1alpha1.ImageRegistry, st *syncState) (bool, string, error) {
	sts := st.statefulSet
	if sts == nil || !rolledOut(sts) || sts.Status.ReadyReplicas < replicas(reg) {
		return false, "", nil
	}
	want := configHash(st)
	if sts.Spec.Template.Annotations[v1alpha1.AnnotationConfigHash] != want {
		return false, "", nil
	}
	pods, err := c.podsLister.Pods(reg.Namespace).List(labels.SelectorFromSet(selectorLabels(reg)))
	if err != nil {
		return false, "", err
	}
	node := ""
	for _, p := range pods {
		if !metav1.IsControlledBy(p, sts) {
			continue
		}
		if p.DeletionTimestamp != nil || p.Annotations[v1alpha1.AnnotationConfigHash] != want {
			return false, "", nil // a pod that may still accept writes
		}
		if p.Name == statefulSetName(reg)+"-0" {
			node = p.Spec.NodeName
		}
	}
	if s3Storage(reg) != nil || slices.Contains(c.dataAccessModes(reg), corev1.ReadWriteMany) {
		node = ""
	}
	return true, node, nil
}

// collectorScript measures the storage directory, collects, and measures
// again. It needs only a POSIX shell and du, which the distribution image
// has (busybox). On failure it writes no report, so that the kubelet puts
// the end of its output into the termination message
// (FallbackToLogsOnError).
func collectorScript(reg *v1alpha1.ImageRegistry) string {
	args := "garbage-collect"
	if g := reg.Spec.GarbageCollection; g != nil && g.DeleteUntagged {
		args += " --delete-untagged"
	}
	cmd := "registry " + args + " " + registryConfigDir + "/" + registryConfigKey
	if s3Storage(reg) != nil {
		return "exec " + cmd + "\n"
	}
	return strings.Join([]string{
		"set -u",
		`kib() { set -- $(du -sk ` + dataDir + `) && echo "$1"; }`,
		`before=$(kib) || exit 1`,
		cmd + ` || exit $?`,
		`after=$(kib) || exit 1`,
		`printf '{"kibBefore":%s,"kibAfter":%s}' "$before" "$after" >` + terminationMessagePath,
		"",
	}, "\n")
}

// collectorPod runs the collector against the registry's storage with the
// registry's own image and config.
func (c *Controller) collectorPod(reg *v1alpha1.ImageRegistry, node string) *corev1.Pod {
	image := c.opts.RegistryImage
	if i := reg.Spec.Images; i != nil && i.Registry != "" {
		image = i.Registry
	}
	volumes := []corev1.Volume{
		configMapVolume("registry-config", registryConfigMapName(reg), registryConfigKey),
		{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
	}
	mounts := []corev1.VolumeMount{
		{Name: "registry-config", MountPath: registryConfigDir, ReadOnly: true},
		{Name: "tmp", MountPath: "/tmp"},
	}
	env, s3Volumes, s3Mounts := s3Access(reg)
	volumes = append(volumes, s3Volumes...)
	mounts = append(mounts, s3Mounts...)
	if s3Storage(reg) == nil {
		volumes = append(volumes, corev1.Volume{Name: dataVolume, VolumeSource: corev1.VolumeSource{
			PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: dataClaimName(reg)},
		}})
		mounts = append(mounts, corev1.VolumeMount{Name: dataVolume, MountPath: dataDir})
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: collectorPodName(reg), Labels: collectorLabels(reg)},
		Spec: corev1.PodSpec{
			RestartPolicy:                corev1.RestartPolicyNever,
			NodeName:                     node,
			AutomountServiceAccountToken: ptr.To(false),
			EnableServiceLinks:           ptr.To(false),
			SecurityContext: &corev1.PodSecurityContext{
				RunAsNonRoot:   ptr.To(true),
				RunAsUser:      ptr.To(podUser),
				RunAsGroup:     ptr.To(podUser),
				FSGroup:        ptr.To(podUser),
				SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
			},
			// The operator's timeout stops it too; this is for a kubelet
			// that outlives the operator.
			ActiveDeadlineSeconds: ptr.To(int64(gcTimeout(reg) / time.Second)),
			Volumes:               volumes,
			Containers: []corev1.Container{{
				Name:                     collectorContainerName,
				Image:                    image,
				Command:                  []string{"/bin/sh", "-c", collectorScript(reg)},
				Env:                      env,
				VolumeMounts:             mounts,
				Resources:                requests("100m", "128Mi"),
				SecurityContext:          containerSecurityContext(),
				ImagePullPolicy:          corev1.PullIfNotPresent,
				TerminationMessagePath:   terminationMessagePath,
				TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
			}},
		},
	}
}

// gcConditions sets the ReadOnly and GarbageCollected conditions on a
// registry that uses garbage collection.
func gcConditions(reg *v1alpha1.ImageRegistry, st *syncState, s *v1alpha1.ImageRegistryStatus) {
	gc := st.gc
	if gc == nil {
		return
	}
	used := reg.Spec.GarbageCollection != nil || gc.Active != nil || gc.LastRun != nil || gc.LastRequest != ""
	if !used {
		return
	}
	s.GarbageCollection = gc
	ro := metav1.Condition{Type: v1alpha1.ConditionReadOnly, ObservedGeneration: reg.Generation, LastTransitionTime: toTime(st.now),
		Status: metav1.ConditionFalse, Reason: ReasonWritable, Message: "the registry accepts pushes and deletes"}
	switch {
	case gc.Active != nil:
		ro.Status, ro.Reason = metav1.ConditionTrue, ReasonGarbageCollection
		ro.Message = fmt.Sprintf("garbage collection since %s: pulls work, pushes and deletes are refused (405) until it ends", gc.Active.StartTime.UTC().Format(time.RFC3339))
	case st.readOnly && st.gcPod != nil:
		ro.Status, ro.Reason = metav1.ConditionTrue, ReasonGarbageCollection
		ro.Message = fmt.Sprintf("the run ended; waiting for collector pod %s to end before the registry becomes writable", st.gcPod.Name)
	case st.readOnly || st.readOnlyPods > 0:
		ro.Status, ro.Reason = metav1.ConditionTrue, ReasonGarbageCollection
		ro.Message = fmt.Sprintf("the run ended; %d pod(s) still run read-only until the writable config rolls out", st.readOnlyPods)
	}
	meta.SetStatusCondition(&s.Conditions, ro)

	done := metav1.Condition{Type: v1alpha1.ConditionGarbageCollected, ObservedGeneration: reg.Generation, LastTransitionTime: toTime(st.now),
		Status: metav1.ConditionUnknown, Reason: ReasonGCNeverRun, Message: "no garbage collection has ended yet"}
	if r := gc.LastRun; r != nil {
		done.Status, done.Reason, done.Message = metav1.ConditionTrue, ReasonGCSucceeded, r.Message
		if r.Result == v1alpha1.GarbageCollectionFailed {
			done.Status, done.Reason = metav1.ConditionFalse, ReasonGCFailed
		}
	}
	if st.gcScheduleErr != "" {
		done.Status, done.Reason, done.Message = metav1.ConditionFalse, ReasonInvalidSchedule, st.gcScheduleErr
	}
	meta.SetStatusCondition(&s.Conditions, done)
}
