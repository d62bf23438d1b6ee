package main

// The second half of make run: a real node (kubelet, containerd, runc, CNI
// bridge; test/e2e/framework/node.go) with the node agent's DaemonSet Pod,
// and a Deployment whose Pod the kubelet pulls from the in-cluster registry
// with the pull Secret.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/image-registry-operator/image-registry-operator/test/e2e/dataplane"
	"github.com/image-registry-operator/image-registry-operator/test/e2e/framework"
)

const agentImage = "docker.io/library/image-registry-operator"

// nodeDemo starts the node and shows a Pod pulling from the registry. The
// node is returned to be stopped by the caller (also on error, if set).
func nodeDemo(ctx context.Context, cp *framework.ControlPlane, dp *dataplane.Runner, root, dir string, kubectl func(stdin string, args ...string) (string, error)) (*framework.Node, error) {
	if err := framework.CheckNode(cp.BinDir); err != nil {
		fmt.Printf("\nNo real node: %v.\n(apt-get install containerd runc containernetworking-plugins iproute2; make tools builds kubelet and crictl.)\n", err)
		return nil, nil
	}
	step("starting a real node: containerd and a kubelet registered as iro-node, in their own mount namespace")
	node, err := cp.StartNode(ctx, framework.NodeOptions{})
	if err != nil {
		return nil, err
	}
	for _, t := range node.Timings {
		fmt.Printf("  %-40s %5.1fs\n", t.Step, t.Duration.Seconds())
	}

	step("importing the operator image (make images) into the node's containerd")
	layout := filepath.Join(root, "_output", "images", "image-registry-operator")
	if err := node.ImportOCILayout(ctx, layout, agentImage, "local"); err != nil {
		return node, err
	}

	// The data plane serves the LoadBalancer Service on dp.Addr; a cloud's
	// LoadBalancer controller would publish its address like this.
	step("publishing the registry Service's LoadBalancer address %s (what a cloud's LoadBalancer controller does)", dp.Addr)
	if _, err := kubectl("", "patch", "-n", namespace, "service", registry, "--subresource=status", "--type=merge",
		"-p", fmt.Sprintf(`{"status":{"loadBalancer":{"ingress":[{"ip":%q}]}}}`, dp.Addr)); err != nil {
		return node, err
	}

	step("installing the node agent: kubectl apply -k artifacts/deploy/node-agent/namespaced, into namespace %s", namespace)
	overlay := filepath.Join(dir, "node-agent")
	if err := os.MkdirAll(overlay, 0o755); err != nil {
		return node, err
	}
	rel, err := filepath.Rel(overlay, filepath.Join(root, "artifacts", "deploy", "node-agent", "namespaced"))
	if err != nil {
		return node, err
	}
	// The image as imported (a tag other than latest, so the kubelet does
	// not try to pull it from Docker Hub).
	k := "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamespace: " + namespace + "\nresources:\n- " + rel +
		"\nimages:\n- name: image-registry-operator\n  newTag: local\n"
	if err := os.WriteFile(filepath.Join(overlay, "kustomization.yaml"), []byte(k), 0o644); err != nil {
		return node, err
	}
	fmt.Printf("%s/kustomization.yaml:\n%s", overlay, k)
	if _, err := kubectl("", "apply", "-k", overlay); err != nil {
		return node, err
	}
	ds, err := cp.Client.AppsV1().DaemonSets(namespace).Get(ctx, "image-registry-operator-node-agent", metav1.GetOptions{})
	if err != nil {
		return node, err
	}
	step("running the DaemonSet's Pod on iro-node (no DaemonSet controller or scheduler runs here; see framework.Node.DaemonSetPod)")
	pod, err := node.DaemonSetPod(ds, "image-registry-operator-node-agent-iro-node")
	if err != nil {
		return node, err
	}
	if _, err := cp.Client.CoreV1().Pods(namespace).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		return node, err
	}
	if _, err := kubectl("", "wait", "-n", namespace, "--for=condition=Ready", "--timeout=2m", "pod/"+pod.Name); err != nil {
		return node, err
	}
	host := dp.Hostname()
	if err := waitFile(ctx, filepath.Join(node.ContainerdCertsDir, host, "hosts.toml")); err != nil {
		return node, err
	}
	hosts, err := os.ReadFile(node.HostsFile)
	if err != nil {
		return node, err
	}
	fmt.Printf("The node's /etc/hosts (%s):\n%s", node.HostsFile, hosts)
	toml, err := os.ReadFile(filepath.Join(node.ContainerdCertsDir, host, "hosts.toml"))
	if err != nil {
		return node, err
	}
	fmt.Printf("The node's /etc/containerd/certs.d/%s/hosts.toml (beside ca.crt):\n%s", host, toml)

	step("pushing an application image with the push Secret")
	clientDir := filepath.Join(dir, "client")
	crane := dp.Client(clientDir)
	s, err := cp.Client.CoreV1().Secrets(namespace).Get(ctx, pushSecret, metav1.GetOptions{})
	if err != nil {
		return node, err
	}
	push, err := crane.SaveCredentials(s)
	if err != nil {
		return node, err
	}
	pause, err := framework.BuildPause(ctx, dir)
	if err != nil {
		return node, err
	}
	ref := host + "/" + namespace + "/app:v1"
	tarball := filepath.Join(dir, "app.tar")
	if err := framework.WriteBinaryImage(tarball, ref, pause, "app"); err != nil {
		return node, err
	}
	fmt.Printf("$ %s\n", crane.CommandLine(push, "push", tarball, ref))
	if _, err := crane.Run(ctx, push, "push", tarball, ref); err != nil {
		return node, err
	}

	step("a Deployment whose Pods pull %s with the pull Secret %s", ref, pullSecret)
	manifest := fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: app
spec:
  replicas: 1
  selector:
    matchLabels: {app: app}
  template:
    metadata:
      labels: {app: app}
    spec:
      nodeName: %s   # no scheduler runs here
      tolerations: [{key: iro.test/real-node, operator: Exists}]
      imagePullSecrets: [{name: %s}]
      containers:
      - name: app
        image: %s
        imagePullPolicy: Always
`, node.Name, pullSecret, ref)
	fmt.Print(manifest)
	if _, err := kubectl(manifest, "apply", "-n", namespace, "-f", "-"); err != nil {
		return node, err
	}
	if _, err := kubectl("", "rollout", "status", "-n", namespace, "deployment/app", "--timeout=3m"); err != nil {
		return node, err
	}
	if _, err := kubectl("", "get", "-n", namespace, "pods", "-o", "wide"); err != nil {
		return node, err
	}
	out, err := node.Crictl(ctx, "images")
	if err != nil {
		return node, err
	}
	fmt.Printf("$ crictl images   (on iro-node)\n%s", out)

	step("a Pod without the pull Secret is refused")
	noSecret := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "app-without-secret"},
		Spec: corev1.PodSpec{NodeName: node.Name,
			Tolerations: []corev1.Toleration{{Key: "iro.test/real-node", Operator: corev1.TolerationOpExists}},
			Containers:  []corev1.Container{{Name: "app", Image: ref, ImagePullPolicy: corev1.PullAlways}}},
	}
	if _, err := cp.Client.CoreV1().Pods(namespace).Create(ctx, noSecret, metav1.CreateOptions{}); err != nil {
		return node, err
	}
	var reason string
	err = wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		p, err := cp.Client.CoreV1().Pods(namespace).Get(ctx, noSecret.Name, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		for _, cs := range p.Status.ContainerStatuses {
			if w := cs.State.Waiting; w != nil && (w.Reason == "ErrImagePull" || w.Reason == "ImagePullBackOff") {
				reason = w.Reason + ": " + lastLine(w.Message)
				return true, nil
			}
			if cs.State.Running != nil {
				return false, errors.New("the Pod without a pull Secret runs the image")
			}
		}
		return false, nil
	})
	if err != nil {
		return node, err
	}
	fmt.Println(strings.TrimSpace(reason))
	return node, nil
}

func waitFile(ctx context.Context, path string) error {
	return wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, time.Minute, true, func(context.Context) (bool, error) {
		_, err := os.Stat(path)
		return err == nil, nil
	})
}
