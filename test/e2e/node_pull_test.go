//go:build e2e

package e2e

// The user's story on a real node: a real kubelet, containerd, runc and CNI
// bridge (framework.StartNode) pull a Pod's image from the in-cluster
// registry with the Pod's pull Secret, resolving and trusting the registry
// through what the node agent (cmd/node-agent) wrote on the node.
//
// What is real and what is played: the registry's pod still runs through
// the data-plane runner (test/e2e/dataplane: the real registry and token
// server as local processes from the operator's pod template), which also
// plays the LoadBalancer on a loopback address; the test publishes that
// address in the Service's status, as a cloud's LoadBalancer controller
// would. The node agent runs as a real Pod on the real node, made from the
// DaemonSet of artifacts/deploy/node-agent/namespaced as kubectl applied
// it; the control plane runs no DaemonSet controller or scheduler, so the
// test creates that Pod (what the DaemonSet controller would), and, as
// there is no Service routing, with host networking and the API server's
// loopback address in KUBERNETES_SERVICE_HOST/PORT plus the token volume
// the disabled ServiceAccount admission plugin would add. Everything else
// (image, command, hostPath mounts, security context, RBAC) is the
// manifest's.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/image-registry-operator/image-registry-operator/pkg/nodeagent"
	"github.com/image-registry-operator/image-registry-operator/test/e2e/framework"
)

// realNodeEnv is IRO_E2E_REAL_NODE: "0" skips the real-node scenarios even
// where they can run.
const realNodeEnv = "IRO_E2E_REAL_NODE"

// stepTimer records how long each step of a scenario took and logs them
// as a table at its end.
type stepTimer struct {
	t     *testing.T
	last  time.Time
	steps []framework.Timing
}

func newStepTimer(t *testing.T) *stepTimer {
	st := &stepTimer{t: t, last: time.Now()}
	t.Cleanup(func() {
		var b strings.Builder
		var total time.Duration
		for _, s := range st.steps {
			fmt.Fprintf(&b, "  %-62s %6.1fs\n", s.Step, s.Duration.Seconds())
			total += s.Duration
		}
		t.Logf("step timings (%.1fs in all):\n%s", total.Seconds(), b.String())
	})
	return st
}

func (st *stepTimer) done(step string) {
	now := time.Now()
	st.steps = append(st.steps, framework.Timing{Step: step, Duration: now.Sub(st.last)})
	st.t.Logf("step %q took %s", step, now.Sub(st.last).Round(10*time.Millisecond))
	st.last = now
}

// startRealNode starts the node, or skips the test if this machine cannot
// run it.
func startRealNode(t *testing.T, u *userEnv, st *stepTimer) *framework.Node {
	t.Helper()
	cp := u.cp
	if os.Getenv(realNodeEnv) == "0" {
		t.Skipf("%s=0", realNodeEnv)
	}
	if err := framework.CheckNode(cp.BinDir); err != nil {
		t.Skipf("%v (.ci/run installs containerd, runc and containernetworking-plugins; make tools builds kubelet and crictl)", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	node, err := cp.StartNode(ctx, framework.NodeOptions{})
	if err != nil {
		t.Fatalf("starting the real node: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			names, _ := filepath.Glob(filepath.Join(node.LogDir, "*.log"))
			podLogs, _ := filepath.Glob(filepath.Join(node.PodLogsDir, "*", "*", "*.log"))
			for _, name := range append(names, podLogs...) {
				b, _ := os.ReadFile(name)
				t.Logf("node log %s, tail:\n%s", name, tail(string(b), 4000))
			}
		}
		// Stop removes the node's directory; its logs (kubelet, containerd,
		// node agent) go where the password scan, which runs later, reads.
		keep := filepath.Join(u.dir, "node-logs")
		_ = os.MkdirAll(keep, 0o755)
		// Stop first, so the logs are complete, then copy them.
		logs := map[string][]byte{}
		names, _ := filepath.Glob(filepath.Join(node.LogDir, "*.log"))
		podLogs, _ := filepath.Glob(filepath.Join(node.PodLogsDir, "*", "*", "*.log"))
		names = append(names, podLogs...)
		stopErr := node.StopKeepingDir(func() {
			for _, l := range names {
				if b, err := os.ReadFile(l); err == nil {
					logs[l] = b
				}
			}
		})
		if stopErr != nil {
			t.Errorf("stopping the real node: %v", stopErr)
		}
		kept := map[string]string{}
		for l, b := range logs {
			rel, _ := filepath.Rel(node.Dir, l)
			k := filepath.Join(keep, strings.ReplaceAll(rel, string(filepath.Separator), "_"))
			if os.WriteFile(k, b, 0o644) == nil {
				kept[l] = k
			}
		}
		for i, f := range u.logFiles {
			if k, ok := kept[f]; ok {
				u.logFiles[i] = k
				delete(kept, f)
			}
		}
		for _, k := range kept {
			u.logFiles = append(u.logFiles, k)
		}
	})
	for _, s := range node.Timings {
		st.steps = append(st.steps, framework.Timing{Step: "node: " + s.Step, Duration: s.Duration})
	}
	st.last = time.Now()
	return node
}

// TestRealNodePullsFromRegistry is the user's story: push an image with the
// push Secret, and a Deployment whose Pods name the pull Secret runs it on
// a real kubelet; Pods with no or a wrong Secret get ErrImagePull; after a
// rotation of the pull Secret, and after the node agent lost the registry
// and got it back, new Pods still pull.
func TestRealNodePullsFromRegistry(t *testing.T) {
	st := newStepTimer(t)
	u := newUserEnv(t)
	u.applyExamples(t)
	u.startDataPlane(t, exampleRegistry)
	u.waitReady(t, readyTimeout, "imageregistry/"+exampleRegistry, "imagepushsecret/example", "imagepullsecret/example")
	st.done("operator, examples and registry data plane ready")
	ctx := context.Background()
	host := u.dp.Hostname()

	// The data plane serves the LoadBalancer Service on u.dp.Addr; publish
	// it as a LoadBalancer controller would, so the agent maps the hostname
	// there rather than to the unrouted ClusterIP.
	svc, err := u.cp.Client.CoreV1().Services(u.ns).Get(ctx, exampleRegistry, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	svc.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: u.dp.Addr}}
	if _, err := u.cp.Client.CoreV1().Services(u.ns).UpdateStatus(ctx, svc, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}

	node := startRealNode(t, u, st)

	// The node agent: the namespaced overlay applied with kubectl, its
	// DaemonSet's Pod on the node, from the operator image make images built.
	agent := newAgentPods(t, u, node)
	st.done("operator image imported into the node, node-agent overlay applied")
	agent.start(t, "node-agent-1")
	hostsLine := u.dp.Addr + " " + host
	waitNodeFiles(t, node, agent, host, hostsLine, true)
	st.done("node agent Pod Running, wrote the hosts block and certs.d")

	// An application image, pushed with the push Secret's config.json.
	pause, err := framework.BuildPause(ctx, u.dir)
	if err != nil {
		t.Fatal(err)
	}
	ref := u.image("app:v1")
	tarball := filepath.Join(u.dir, "app.tar")
	if err := framework.WriteBinaryImage(tarball, ref, pause, "app"); err != nil {
		t.Fatal(err)
	}
	if _, err := u.crane.Run(ctx, u.creds(t, u.ns, examplePushSecret), "push", tarball, ref); err != nil {
		t.Fatalf("push with the push Secret: %v", err)
	}
	st.done("app image pushed with the push Secret (crane)")

	// A Deployment whose Pods use the pull Secret. No scheduler runs, so
	// the template names the node.
	dep := appDeployment(node.Name, "app", ref, examplePullSecret)
	if _, err := u.cp.Client.AppsV1().Deployments(u.ns).Create(ctx, dep, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitPodRunning(t, u, "app=app")
	st.done("Deployment's Pod Running, image pulled by the kubelet with the pull Secret")

	// The real docker CLI and engine, trusting the registry through the
	// node agent's /etc/docker/certs.d; a Pod runs what docker pushed.
	if d, ok := startDocker(t, node); !ok {
		t.Log("no Docker engine (dockerd, docker) here: the docker CLI step is skipped (.ci/run installs docker.io)")
	} else {
		st.done("dockerd up on the node")
		dockerRef := dockerPushAndPull(t, u, d, tarball)
		if _, err := u.cp.Client.CoreV1().Pods(u.ns).Create(ctx, appPod(node.Name, "docker-pushed", dockerRef, examplePullSecret), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		waitPodRunning(t, u, "iro.test/pod=docker-pushed")
		st.done("docker push/pull with the Secrets; a Pod runs the docker-pushed image")
	}

	// No Secret, and a Secret with a wrong password: the kubelet is refused.
	if _, err := u.cp.Client.CoreV1().Pods(u.ns).Create(ctx, appPod(node.Name, "no-secret", ref, ""), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	wrong := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "wrong-pull-secret"},
		Type:       corev1.SecretTypeDockerConfigJson,
		Data: map[string][]byte{corev1.DockerConfigJsonKey: []byte(fmt.Sprintf(
			`{"auths":{%q:{"username":%q,"password":"not-the-password"}}}`, host, u.ns+"/example/1"))},
	}
	if _, err := u.cp.Client.CoreV1().Secrets(u.ns).Create(ctx, wrong, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := u.cp.Client.CoreV1().Pods(u.ns).Create(ctx, appPod(node.Name, "wrong-secret", ref, wrong.Name), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"no-secret", "wrong-secret"} {
		msg := waitPullRefused(t, u, name)
		t.Logf("pod %s refused as expected: %s", name, tail(msg, 300))
	}
	st.done("Pods with no and with a wrong Secret: ErrImagePull")

	// A rotation of the pull Secret; a new Pod pulls with the new password
	// (imagePullPolicy Always: the kubelet checks the credentials even
	// though the image is on the node).
	before := u.secret(t, u.ns, examplePullSecret)
	u.kubectl(t, "annotate", "--overwrite", "imagepullsecret/example", "registry.mgoltzsche.github.com/rotate="+fmt.Sprint(time.Now().UnixNano()))
	eventually(t, readyTimeout, "the pull Secret to rotate", func(ctx context.Context) (bool, error) {
		s, err := u.cp.Client.CoreV1().Secrets(u.ns).Get(ctx, examplePullSecret, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return string(s.Data["password"]) != string(before.Data["password"]), nil
	})
	patch := fmt.Sprintf(`{"spec":{"template":{"metadata":{"annotations":{"iro.test/restart":"%d"}}}}}`, time.Now().UnixNano())
	if _, err := u.cp.Client.AppsV1().Deployments(u.ns).Patch(ctx, "app", types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	waitRolledOut(t, u, "app")
	st.done("after a rotation, the Deployment's new Pod pulls")

	// The agent forgets a registry that opts out of the hosts entry (its CA
	// stays), and maps it again when the opt-out goes.
	u.kubectl(t, "annotate", "imageregistry/"+exampleRegistry, nodeagent.AnnotationHosts+"=false")
	waitNodeFiles(t, node, agent, host, hostsLine, false)
	u.kubectl(t, "annotate", "imageregistry/"+exampleRegistry, nodeagent.AnnotationHosts+"-")
	waitNodeFiles(t, node, agent, host, hostsLine, true)
	if _, err := u.cp.Client.CoreV1().Pods(u.ns).Create(ctx, appPod(node.Name, "after-opt-out", ref, examplePullSecret), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitPodRunning(t, u, "iro.test/pod=after-opt-out")
	st.done("hosts entry removed and restored by the agent; a new Pod pulls")

	// The registry's pod is deleted and comes back (a new pod of the
	// StatefulSet, started by the data plane); new Pods still pull.
	oldPod := u.dp.PodUID()
	if err := u.cp.Client.CoreV1().Pods(u.ns).Delete(ctx, exampleRegistry+"-0", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	u.waitPodReplaced(t, oldPod, readyTimeout)
	if _, err := u.cp.Client.CoreV1().Pods(u.ns).Create(ctx, appPod(node.Name, "after-registry-restart", ref, examplePullSecret), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitPodRunning(t, u, "iro.test/pod=after-registry-restart")
	st.done("registry pod replaced; a new Pod pulls")

	// The agent stops (a DaemonSet pod replaced); meanwhile the node's
	// files drift: the block loses the registry and names one that is gone,
	// the registry's certs.d directory is lost, and a gone registry's
	// directory is left. The next agent converges from what it finds.
	agent.stop(t, "node-agent-1")
	gone := "gone." + u.ns + ".svc.cluster.local"
	drift := "127.0.0.1 localhost\n" + nodeagent.BlockBegin + "\n10.9.9.9 " + gone + "\n" + nodeagent.BlockEnd + "\n"
	// In place (same inode), as the bind mount over the node's /etc/hosts needs.
	if err := os.WriteFile(node.HostsFile, []byte(drift), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(node.ContainerdCertsDir, host)); err != nil {
		t.Fatal(err)
	}
	goneDir := filepath.Join(node.ContainerdCertsDir, gone)
	if err := os.MkdirAll(goneDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(goneDir, nodeagent.MarkerFile), []byte("x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	agent.start(t, "node-agent-2")
	waitNodeFiles(t, node, agent, host, hostsLine, true)
	eventually(t, time.Minute, "the gone registry's line and directory to go", func(context.Context) (bool, error) {
		b, err := os.ReadFile(node.HostsFile)
		if err != nil {
			return false, err
		}
		_, statErr := os.Stat(goneDir)
		return !strings.Contains(string(b), gone) && os.IsNotExist(statErr), fmt.Errorf("hosts:\n%s\ndir: %v", b, statErr)
	})
	if _, err := u.cp.Client.CoreV1().Pods(u.ns).Create(ctx, appPod(node.Name, "after-agent-restart", ref, examplePullSecret), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitPodRunning(t, u, "iro.test/pod=after-agent-restart")
	st.done("node agent restarted over drifted files, converged; a new Pod pulls")

	agent.check(t)
	for _, p := range u.dp.Problems() {
		t.Errorf("data plane problem: %s", p)
	}
}

// waitNodeFiles waits until the node's hosts file does (or does not) hold
// line, and containerd's certs.d has the registry's hosts.toml and CA.
func waitNodeFiles(t *testing.T, node *framework.Node, agent *agentPods, host, line string, present bool) {
	t.Helper()
	eventually(t, time.Minute, fmt.Sprintf("the node agent to write the node's files (hosts line present: %v)", present), func(context.Context) (bool, error) {
		agent.check(t)
		b, err := os.ReadFile(node.HostsFile)
		if err != nil {
			return false, err
		}
		if strings.Contains(string(b), line+"\n") != present {
			return false, fmt.Errorf("hosts file:\n%s", b)
		}
		for _, f := range []string{"hosts.toml", "ca.crt"} {
			if _, err := os.Stat(filepath.Join(node.ContainerdCertsDir, host, f)); err != nil {
				return false, err
			}
		}
		return true, nil
	})
}

func appPodSpec(nodeName, image, pullSecret string) corev1.PodSpec {
	spec := corev1.PodSpec{
		NodeName:                      nodeName,
		Tolerations:                   []corev1.Toleration{{Key: "iro.test/real-node", Operator: corev1.TolerationOpExists}},
		TerminationGracePeriodSeconds: new(int64),
		Containers: []corev1.Container{{
			Name: "app", Image: image, ImagePullPolicy: corev1.PullAlways,
		}},
	}
	if pullSecret != "" {
		spec.ImagePullSecrets = []corev1.LocalObjectReference{{Name: pullSecret}}
	}
	return spec
}

func appPod(nodeName, name, image, pullSecret string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"iro.test/pod": name}},
		Spec:       appPodSpec(nodeName, image, pullSecret),
	}
}

func appDeployment(nodeName, name, image, pullSecret string) *appsv1.Deployment {
	one := int32(1)
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: &one,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       appPodSpec(nodeName, image, pullSecret),
			},
		},
	}
}

// waitPodRunning waits for a Pod selected by selector to run with its
// container ready, and fails at once if the kubelet reports a pull error.
func waitPodRunning(t *testing.T, u *userEnv, selector string) {
	t.Helper()
	eventually(t, readyTimeout, "a Pod "+selector+" Running", func(ctx context.Context) (bool, error) {
		pods, err := u.cp.Client.CoreV1().Pods(u.ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			return false, err
		}
		for _, p := range pods.Items {
			if p.DeletionTimestamp != nil {
				continue
			}
			for _, cs := range p.Status.ContainerStatuses {
				if w := cs.State.Waiting; w != nil && (w.Reason == "ErrImagePull" || w.Reason == "ImagePullBackOff") {
					t.Fatalf("pod %s: %s: %s", p.Name, w.Reason, w.Message)
				}
				if cs.State.Running != nil && p.Status.Phase == corev1.PodRunning {
					return true, nil
				}
			}
		}
		return false, fmt.Errorf("%d pods, none running", len(pods.Items))
	})
}

// waitRolledOut waits until the Deployment's new ReplicaSet's Pod runs and
// the old one is gone.
func waitRolledOut(t *testing.T, u *userEnv, name string) {
	t.Helper()
	eventually(t, readyTimeout, "deployment "+name+" rolled out", func(ctx context.Context) (bool, error) {
		d, err := u.cp.Client.AppsV1().Deployments(u.ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		pods, err := u.cp.Client.CoreV1().Pods(u.ns).List(ctx, metav1.ListOptions{LabelSelector: "app=" + name})
		if err != nil {
			return false, err
		}
		for _, p := range pods.Items {
			for _, cs := range p.Status.ContainerStatuses {
				if w := cs.State.Waiting; w != nil && (w.Reason == "ErrImagePull" || w.Reason == "ImagePullBackOff") {
					t.Fatalf("pod %s: %s: %s", p.Name, w.Reason, w.Message)
				}
			}
		}
		s := d.Status
		return s.ObservedGeneration == d.Generation && s.UpdatedReplicas == 1 && s.ReadyReplicas == 1 && s.Replicas == 1, fmt.Errorf("status %+v", s)
	})
}

// waitPullRefused waits for the Pod's container to be refused its image and
// returns the kubelet's message.
func waitPullRefused(t *testing.T, u *userEnv, name string) string {
	t.Helper()
	var msg string
	eventually(t, readyTimeout, "pod "+name+" to get ErrImagePull", func(ctx context.Context) (bool, error) {
		p, err := u.cp.Client.CoreV1().Pods(u.ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		for _, cs := range p.Status.ContainerStatuses {
			if cs.State.Running != nil {
				t.Fatalf("pod %s runs the image without valid credentials", name)
			}
			if w := cs.State.Waiting; w != nil && (w.Reason == "ErrImagePull" || w.Reason == "ImagePullBackOff") {
				msg = w.Reason + ": " + w.Message
				return true, nil
			}
		}
		return false, nil
	})
	return msg
}

// agentPods runs the node agent's DaemonSet Pods on the node.
type agentPods struct {
	u    *userEnv
	node *framework.Node
	ds   *appsv1.DaemonSet
	pod  string
}

const agentImage = "docker.io/library/image-registry-operator"

func newAgentPods(t *testing.T, u *userEnv, node *framework.Node) *agentPods {
	t.Helper()
	ctx := context.Background()
	root, err := framework.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	layout := filepath.Join(root, "_output", "images", "image-registry-operator")
	if err := node.ImportOCILayout(ctx, layout, agentImage, "e2e"); err != nil {
		t.Fatalf("importing the operator image (make images builds it): %v", err)
	}
	// The namespaced variant, rendered into this test's namespace with a
	// kustomization on top and the image set, as a user would.
	overlay := filepath.Join(u.dir, "node-agent-overlay")
	if err := os.MkdirAll(overlay, 0o755); err != nil {
		t.Fatal(err)
	}
	rel, err := filepath.Rel(overlay, filepath.Join(root, "artifacts", "deploy", "node-agent", "namespaced"))
	if err != nil {
		t.Fatal(err)
	}
	k := "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamespace: " + u.ns + "\nresources:\n- " + rel +
		"\nimages:\n- name: image-registry-operator\n  newTag: e2e\n"
	if err := os.WriteFile(filepath.Join(overlay, "kustomization.yaml"), []byte(k), 0o644); err != nil {
		t.Fatal(err)
	}
	out := u.kubectl(t, "apply", "-k", overlay)
	t.Log(strings.TrimSpace(out))
	ds, err := u.cp.Client.AppsV1().DaemonSets(u.ns).Get(ctx, "image-registry-operator-node-agent", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return &agentPods{u: u, node: node, ds: ds}
}

// start creates the Pod the DaemonSet controller would create for the node
// (framework.Node.DaemonSetPod says what differs) and waits for it to run.
func (a *agentPods) start(t *testing.T, name string) {
	t.Helper()
	pod, err := a.node.DaemonSetPod(a.ds, name)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.u.cp.Client.CoreV1().Pods(a.u.ns).Create(context.Background(), pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	a.pod = name
	waitPodRunning(t, a.u, "app.kubernetes.io/name=image-registry-operator-node-agent")
}

// stop deletes the agent's Pod and waits until it is gone.
func (a *agentPods) stop(t *testing.T, name string) {
	t.Helper()
	zero := int64(0)
	if err := a.u.cp.Client.CoreV1().Pods(a.u.ns).Delete(context.Background(), name, metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Minute, "the agent pod "+name+" to go", func(ctx context.Context) (bool, error) {
		_, err := a.u.cp.Client.CoreV1().Pods(a.u.ns).Get(ctx, name, metav1.GetOptions{})
		return apierrors.IsNotFound(err), err
	})
	a.pod = ""
}

// check fails the test if the agent's container has restarted or ended.
func (a *agentPods) check(t *testing.T) {
	t.Helper()
	if a.pod == "" {
		return
	}
	p, err := a.u.cp.Client.CoreV1().Pods(a.u.ns).Get(context.Background(), a.pod, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, cs := range p.Status.ContainerStatuses {
		if cs.RestartCount > 0 || cs.State.Terminated != nil {
			t.Fatalf("node agent pod %s: restarts %d, state %+v", a.pod, cs.RestartCount, cs.State)
		}
	}
}
