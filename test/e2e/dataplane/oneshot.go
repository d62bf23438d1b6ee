package dataplane

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"

	"github.com/image-registry-operator/image-registry-operator/test/e2e/framework"
)

// One-shot pods: besides the StatefulSet's pod, the Runner plays kubelet
// for the pods with restartPolicy Never that the ImageRegistry itself
// controls (the garbage collector). Each runs once: its volumes are
// materialized as for the registry's pod (the same PVC directory), its
// containers start together, and when all have exited the pod's phase
// becomes Succeeded (every exit code 0) or Failed, with each container's
// exit code and termination message: the file at terminationMessagePath,
// bound into the container's mount namespace, or with
// FallbackToLogsOnError and a failure, the end of its log. A one-shot pod
// that is deleted has its processes stopped and is removed.

// maxTerminationMessage is the kubelet's limit of a termination message.
const maxTerminationMessage = 4096

// oneShots tracks the one-shot pods a Runner has started, by UID.
type oneShots struct {
	mu   sync.Mutex
	pods map[types.UID]*oneShotPod
	wg   sync.WaitGroup
}

type oneShotPod struct {
	name   string
	cancel context.CancelFunc
	done   chan struct{}
}

// isOneShot tells whether p is a one-shot pod of the runner's registry.
func (r *Runner) isOneShot(p *corev1.Pod) bool {
	if p.Spec.RestartPolicy != corev1.RestartPolicyNever {
		return false
	}
	ref := metav1.GetControllerOf(p)
	return ref != nil && ref.Kind == "ImageRegistry" && ref.Name == r.opts.Name
}

// syncOneShots is one kubelet pass over the one-shot pods.
func (r *Runner) syncOneShots(ctx context.Context) error {
	pods, err := r.kube.CoreV1().Pods(r.opts.Namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	s := &r.oneShots
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pods == nil {
		s.pods = map[types.UID]*oneShotPod{}
	}
	for i := range pods.Items {
		p := &pods.Items[i]
		if !r.isOneShot(p) {
			continue
		}
		running := s.pods[p.UID]
		if p.DeletionTimestamp != nil {
			if running != nil {
				r.opts.Logf("dataplane: one-shot pod %s is being deleted; stopping it", p.Name)
				running.cancel()
				<-running.done
			}
			err := r.kube.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{
				GracePeriodSeconds: ptr.To[int64](0),
				Preconditions:      &metav1.Preconditions{UID: &p.UID},
			})
			if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
				return fmt.Errorf("delete pod %s: %w", p.Name, err)
			}
			delete(s.pods, p.UID)
			continue
		}
		if running != nil || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			continue
		}
		if p.Spec.NodeName == "" {
			binding := &corev1.Binding{
				ObjectMeta: metav1.ObjectMeta{Name: p.Name, Namespace: p.Namespace, UID: p.UID},
				Target:     corev1.ObjectReference{Kind: "Node", Name: framework.NodeName},
			}
			if err := r.kube.CoreV1().Pods(p.Namespace).Bind(ctx, binding, metav1.CreateOptions{}); err != nil && !apierrors.IsConflict(err) {
				return fmt.Errorf("bind pod %s: %w", p.Name, err)
			}
		} else if p.Spec.NodeName != framework.NodeName {
			continue // another kubelet's
		}
		podCtx, cancel := context.WithCancel(ctx)
		op := &oneShotPod{name: p.Name, cancel: cancel, done: make(chan struct{})}
		s.pods[p.UID] = op
		s.wg.Add(1)
		go func(pod *corev1.Pod) {
			defer s.wg.Done()
			defer close(op.done)
			r.runOneShot(podCtx, pod)
		}(p.DeepCopy())
	}
	return nil
}

// waitOneShots waits for the one-shot loop and pods to end, after the
// runner's context was cancelled (Runner.Stop).
func (r *Runner) waitOneShots() { r.oneShots.wg.Wait() }

// runOneShot runs pod to its end and reports its status.
func (r *Runner) runOneShot(ctx context.Context, pod *corev1.Pod) {
	if hook := r.opts.BeforeOneShot; hook != nil {
		if err := hook(ctx, pod); err != nil {
			if ctx.Err() != nil {
				return
			}
			r.opts.Logf("dataplane: one-shot pod %s fails without running: %v", pod.Name, err)
			statuses := make([]corev1.ContainerStatus, 0, len(pod.Spec.Containers))
			for _, c := range pod.Spec.Containers {
				statuses = append(statuses, terminatedStatus(c, 1, "Error", err.Error()))
			}
			r.reportOneShot(ctx, pod, corev1.PodFailed, statuses)
			return
		}
	}
	podDir := filepath.Join(r.opts.Dir, "pods", string(pod.UID))
	defer os.RemoveAll(podDir)
	statuses, err := r.runOneShotContainers(ctx, pod, podDir)
	if ctx.Err() != nil {
		return // deleted, or the runner stops
	}
	if err != nil {
		r.problem("one-shot pod %s: %v", pod.Name, err)
		statuses = nil
		for _, c := range pod.Spec.Containers {
			statuses = append(statuses, terminatedStatus(c, 128, "ContainerCannotRun", err.Error()))
		}
	}
	phase := corev1.PodSucceeded
	for _, st := range statuses {
		if st.State.Terminated.ExitCode != 0 {
			phase = corev1.PodFailed
		}
	}
	r.reportOneShot(ctx, pod, phase, statuses)
}

func (r *Runner) runOneShotContainers(ctx context.Context, pod *corev1.Pod, podDir string) ([]corev1.ContainerStatus, error) {
	if len(pod.Spec.InitContainers) > 0 {
		return nil, errors.New("init containers of one-shot pods are not supported by the data-plane runner")
	}
	volumes, err := r.materializeVolumes(ctx, pod, podDir, filepath.Join(r.opts.Dir, "pvc"))
	if err != nil {
		return nil, err
	}
	var ctrs []*container
	var msgFiles []string
	for i := range pod.Spec.Containers {
		spec := &pod.Spec.Containers[i]
		c, err := r.oneShotContainer(ctx, pod, spec, volumes)
		if err != nil {
			return nil, err
		}
		msgFile := ""
		if spec.TerminationMessagePath != "" {
			msgFile = filepath.Join(podDir, "termination-"+spec.Name)
			if err := bindTerminationMessage(c, msgFile, spec.TerminationMessagePath); err != nil {
				return nil, err
			}
		}
		ctrs, msgFiles = append(ctrs, c), append(msgFiles, msgFile)
	}
	r.reportOneShot(ctx, pod, corev1.PodRunning, nil)
	for _, c := range ctrs {
		if err := c.start(); err != nil {
			for _, s := range ctrs {
				_ = s.stop(r.opts.MaxStopGrace)
			}
			return nil, err
		}
	}
	r.opts.Logf("dataplane: started one-shot pod %s (%s)", pod.Name, pod.UID)
	var statuses []corev1.ContainerStatus
	for i, c := range ctrs {
		select {
		case <-c.done:
		case <-ctx.Done():
			for _, s := range ctrs {
				_ = s.stop(r.opts.MaxStopGrace)
			}
			return nil, ctx.Err()
		}
		code := 0
		if c.err != nil {
			var exit *exec.ExitError
			if !errors.As(c.err, &exit) {
				return nil, fmt.Errorf("container %s: %w", c.name, c.err)
			}
			code = exit.ExitCode()
			if code < 0 {
				code = 137 // killed by a signal
			}
		}
		msg := ""
		if msgFiles[i] != "" {
			b, err := os.ReadFile(msgFiles[i])
			if err != nil {
				return nil, err
			}
			msg = string(b)
		}
		if msg == "" && code != 0 && c.spec.TerminationMessagePolicy == corev1.TerminationMessageFallbackToLogsOnError {
			msg = logTail(c.logPath)
		}
		if len(msg) > maxTerminationMessage {
			msg = msg[len(msg)-maxTerminationMessage:]
		}
		reason := "Completed"
		if code != 0 {
			reason = "Error"
		}
		statuses = append(statuses, terminatedStatus(c.spec, int32(code), reason, msg))
		r.opts.Logf("dataplane: one-shot pod %s container %s exited with code %d", pod.Name, c.name, code)
	}
	return statuses, nil
}

// oneShotContainer prepares a container of a one-shot pod: its command
// line and environment, as for the registry's pod but in the host's
// network and without API credentials (the collector needs neither).
func (r *Runner) oneShotContainer(ctx context.Context, pod *corev1.Pod, c *corev1.Container, volumes map[string]string) (*container, error) {
	argv, err := buildArgv(r.opts.BinDir, r.opts.Dir, r.opts.Entrypoints, pod, c, volumes)
	if err != nil {
		return nil, err
	}
	env, err := r.resolveEnv(ctx, pod, c)
	if err != nil {
		return nil, err
	}
	base := []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOSTNAME=" + pod.Name, "HOME=/"}
	base = append(base, imageEnv[c.Name]...)
	return &container{
		name: c.Name, spec: *c.DeepCopy(), argv: argv, env: append(base, env...),
		logPath: filepath.Join(r.LogDir(), pod.Name+"-"+c.Name+".log"),
	}, nil
}

// bindTerminationMessage makes the file msgFile appear at target in the
// container's mount namespace, writable for the container's user, as the
// kubelet does for terminationMessagePath. The mount is added to the
// container's setup script, which runs as root.
func bindTerminationMessage(c *container, msgFile, target string) error {
	if err := os.WriteFile(msgFile, nil, 0o666); err != nil {
		return err
	}
	if err := os.Chmod(msgFile, 0o666); err != nil {
		return err
	}
	// First, before a volume (an emptyDir at /tmp) can hide msgFile.
	lines := fmt.Sprintf("[ -e %[1]s ] || : >>%[1]s\nmount --bind %[2]s %[1]s\n", shellQuote(target), shellQuote(msgFile))
	for i, a := range c.argv {
		if strings.HasPrefix(a, "set -e\n") {
			c.argv[i] = "set -e\n" + lines + strings.TrimPrefix(a, "set -e\n")
			return nil
		}
	}
	return fmt.Errorf("container %s: no place in its setup script for the termination message mount", c.name)
}

// logTail is the end of a container's log, as the kubelet's
// FallbackToLogsOnError gives it (at most 80 lines).
func logTail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > 80 {
		lines = lines[len(lines)-80:]
	}
	return strings.Join(lines, "\n")
}

func terminatedStatus(c corev1.Container, code int32, reason, msg string) corev1.ContainerStatus {
	now := metav1.Now()
	return corev1.ContainerStatus{
		Name: c.Name, Image: c.Image, Started: ptr.To(false),
		State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
			ExitCode: code, Reason: reason, Message: msg, FinishedAt: now,
		}},
	}
}

// reportOneShot writes the pod's phase and container statuses.
func (r *Runner) reportOneShot(ctx context.Context, pod *corev1.Pod, phase corev1.PodPhase, statuses []corev1.ContainerStatus) {
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		p, err := r.kube.CoreV1().Pods(pod.Namespace).Get(ctx, pod.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if p.UID != pod.UID {
			return nil
		}
		now := metav1.Now()
		p.Status.Phase = phase
		if p.Status.StartTime == nil {
			p.Status.StartTime = &now
		}
		p.Status.HostIP, p.Status.PodIP = podIP, podIP
		p.Status.PodIPs = []corev1.PodIP{{IP: podIP}}
		ready := corev1.ConditionFalse
		if phase == corev1.PodRunning {
			ready = corev1.ConditionTrue
		}
		p.Status.Conditions = []corev1.PodCondition{
			{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: now},
			{Type: corev1.PodInitialized, Status: corev1.ConditionTrue, LastTransitionTime: now},
			{Type: corev1.ContainersReady, Status: ready, LastTransitionTime: now},
			{Type: corev1.PodReady, Status: ready, LastTransitionTime: now},
		}
		if statuses == nil {
			statuses = []corev1.ContainerStatus{}
			for _, c := range pod.Spec.Containers {
				statuses = append(statuses, corev1.ContainerStatus{Name: c.Name, Image: c.Image, Started: ptr.To(true),
					State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}}})
			}
		}
		p.Status.ContainerStatuses = statuses
		_, err = r.kube.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, p, metav1.UpdateOptions{})
		return err
	})
	if err != nil && ctx.Err() == nil && !apierrors.IsNotFound(err) {
		r.problem("report one-shot pod %s status: %v", pod.Name, err)
	}
}

// startOneShots runs syncOneShots in the background until ctx ends; the
// pods' processes stop with it.
func (r *Runner) startOneShots(ctx context.Context) {
	r.oneShots.wg.Add(1)
	go func() {
		defer r.oneShots.wg.Done()
		r.oneShotLoop(ctx)
	}()
}

func (r *Runner) oneShotLoop(ctx context.Context) {
	var lastLogged string
	for {
		if err := r.syncOneShots(ctx); err != nil && ctx.Err() == nil && err.Error() != lastLogged {
			r.opts.Logf("dataplane: one-shot pods: %v", err)
			lastLogged = err.Error()
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(250 * time.Millisecond):
		}
	}
}
