// Command demo is what `make run` runs (through hack/run.sh): a local
// control plane (etcd, kube-apiserver, kube-controller-manager), the CRDs,
// the operator binary for namespace default, the examples in
// artifacts/examples/, and the registry's data plane (test/e2e/dataplane:
// the real distribution registry and token server started from the pod
// template the operator generated). It then pushes and pulls an image with
// the generated Secrets, printing every command so that you can repeat it;
// where the machine can, it starts a real node (kubelet, containerd) with
// the node agent's DaemonSet Pod and runs a Deployment whose image the
// kubelet pulls from the registry with the pull Secret (node.go); and it
// stays up until Ctrl-C.
//
// It needs root (the data plane uses mount namespaces) and the binaries of
// `make tools build` in _output/bin (or $IRO_BIN_DIR).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/image-registry-operator/image-registry-operator/test/e2e/dataplane"
	"github.com/image-registry-operator/image-registry-operator/test/e2e/framework"
)

const (
	namespace  = "default"
	registry   = "registry"
	pushSecret = "example-image-push-secret"
	pullSecret = "example-image-pull-secret"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "demo: %v\n", err)
		os.Exit(1)
	}
}

func run() error {
	root, err := framework.RepoRoot()
	if err != nil {
		return err
	}
	dir := flag.String("dir", filepath.Join(root, "_output", "run"), "Directory for the cluster, logs and credentials; emptied at start.")
	withNode := flag.Bool("node", true, "Also start a real node (kubelet, containerd) with the node agent and a Deployment pulling from the registry, where this machine can (hack/demo/node.go).")
	flag.Parse()
	if os.Geteuid() != 0 {
		return errors.New("the data plane needs root (mount namespaces and bind mounts); run as root")
	}
	binDir, err := framework.DefaultBinDir()
	if err != nil {
		return err
	}
	if binDir, err = filepath.Abs(binDir); err != nil {
		return err
	}
	// A fresh cluster each run: certificates are regenerated on start, and
	// old objects would only confuse.
	if err := os.RemoveAll(*dir); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	step("starting etcd, kube-apiserver and kube-controller-manager in %s", *dir)
	cp, err := framework.Start(ctx, framework.Options{BinDir: binDir, Dir: filepath.Join(*dir, "cluster")})
	if err != nil {
		return err
	}
	defer func() {
		step("stopping the control plane")
		if err := cp.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stopping the control plane:", err)
		}
	}()
	kubectl := func(args ...string) (string, error) {
		tctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
		defer cancel()
		fmt.Printf("$ kubectl %s\n", strings.Join(args, " "))
		out, err := cp.Kubectl(tctx, args...)
		fmt.Print(string(out))
		return string(out), err
	}
	if _, err := kubectl("apply", "--server-side", "-f", filepath.Join(root, "artifacts", "crds")); err != nil {
		return err
	}
	// The ClusterRole the operator binds each registry's token server to.
	if _, err := kubectl("apply", "--server-side", "-f", filepath.Join(root, "artifacts", "deploy", "operator", "token_server_cluster_role.yaml")); err != nil {
		return err
	}
	if _, err := kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd", "--all"); err != nil {
		return err
	}

	step("starting the operator (namespace %s)", namespace)
	op, err := cp.StartOperator("operator", "--namespace="+namespace, "--operator-namespace="+namespace, "--v=2")
	if err != nil {
		return err
	}
	defer func() {
		step("stopping the operator")
		_ = op.Stop()
	}()
	if _, err := kubectl("apply", "-n", namespace, "-f", filepath.Join(root, "artifacts", "examples")); err != nil {
		return err
	}

	step("playing kubelet and Service for the registry's pod")
	dpLog := filepath.Join(*dir, "dataplane.log")
	logf, err := os.Create(dpLog)
	if err != nil {
		return err
	}
	defer logf.Close()
	dp, err := dataplane.Start(ctx, dataplane.Options{
		RestConfig: cp.RestConfig, Namespace: namespace, Name: registry, BinDir: binDir,
		Dir: filepath.Join(*dir, "dataplane"),
		Logf: func(format string, args ...any) {
			fmt.Fprintf(logf, time.Now().Format("15:04:05.000 ")+format+"\n", args...)
		},
	})
	if err != nil {
		return err
	}
	defer func() {
		step("stopping the data plane")
		if err := dp.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stopping the data plane:", err)
		}
	}()
	wctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	err = dp.WaitReady(wctx)
	cancel()
	if err != nil {
		return fmt.Errorf("%w (see %s)", err, dpLog)
	}
	if _, err := kubectl("wait", "-n", namespace, "--for=condition=Ready", "--timeout=3m",
		"imageregistry/"+registry, "imagepushsecret/example", "imagepullsecret/example"); err != nil {
		return err
	}

	if err := demo(ctx, cp, dp, *dir); err != nil {
		return err
	}
	var node *framework.Node
	if *withNode {
		kubectlIn := func(stdin string, args ...string) (string, error) {
			tctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
			defer cancel()
			fmt.Printf("$ kubectl %s\n", strings.Join(args, " "))
			var in []byte
			if stdin != "" {
				in = []byte(stdin)
			}
			out, err := cp.KubectlWithInput(tctx, in, args...)
			fmt.Print(string(out))
			return string(out), err
		}
		node, err = nodeDemo(ctx, cp, dp, root, *dir, kubectlIn)
		if node != nil {
			defer func() {
				step("stopping the real node")
				if err := node.Stop(); err != nil {
					fmt.Fprintln(os.Stderr, "stopping the real node:", err)
				}
			}()
		}
		if err != nil {
			return err
		}
	}
	if _, err := kubectl("get", "-n", namespace, "imageregistries,imagepushsecrets,imagepullsecrets,secrets"); err != nil {
		return err
	}

	fmt.Printf(`
The cluster is up. Use it with:

  export KUBECONFIG=%s
  %s get imageregistries,imagepushsecrets,imagepullsecrets,secrets

Logs: %s (control plane, operator), %s (registry, token server), %s (data plane).
`, cp.Kubeconfig, filepath.Join(binDir, "kubectl"), cp.LogDir, dp.LogDir(), dpLog)
	if node != nil {
		fmt.Printf("Real node iro-node: logs in %s (kubelet, containerd), Pod logs in %s;\n  %s --config %s ps\n",
			node.LogDir, node.PodLogsDir, filepath.Join(binDir, framework.CrictlBinary), node.CrictlConfig)
	}
	fmt.Println("Press Ctrl-C to stop everything.")

	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			fmt.Println()
			return nil
		case <-t.C:
		}
		if err := cp.Err(); err != nil {
			return err
		}
		if exited, err := op.Exited(); exited {
			return err
		}
	}
}

// demo pushes with the push Secret and pulls with the pull Secret,
// printing each command.
func demo(ctx context.Context, cp *framework.ControlPlane, dp *dataplane.Runner, dir string) error {
	clientDir := filepath.Join(dir, "client")
	if err := os.MkdirAll(clientDir, 0o700); err != nil {
		return err
	}
	crane := dp.Client(clientDir)
	kubectlBin := filepath.Join(cp.BinDir, "kubectl")
	save := func(secret, key string) (*dataplane.Credentials, error) {
		s, err := cp.Client.CoreV1().Secrets(namespace).Get(ctx, secret, metav1.GetOptions{})
		if err != nil {
			return nil, err
		}
		c, err := crane.SaveCredentials(s)
		if err != nil {
			return nil, err
		}
		fmt.Printf("$ %s --kubeconfig %s -n %s get secret %s -o jsonpath='{.data.%s}' | base64 -d > %s/config.json\n",
			kubectlBin, cp.Kubeconfig, namespace, secret, strings.ReplaceAll(key, ".", `\.`), c.DockerConfigDir)
		fmt.Printf("$ %s --kubeconfig %s -n %s get secret %s -o jsonpath='{.data.ca\\.crt}' | base64 -d > %s\n",
			kubectlBin, cp.Kubeconfig, namespace, secret, c.CAFile)
		return c, nil
	}
	ref := dp.Hostname() + "/" + namespace + "/hello:v1"
	step("pushing %s with the push Secret %s", ref, pushSecret)
	push, err := save(pushSecret, "config.json")
	if err != nil {
		return err
	}
	layer, err := crane.RandomLayer()
	if err != nil {
		return err
	}
	runCrane := func(creds *dataplane.Credentials, args ...string) (string, error) {
		fmt.Printf("$ %s\n", crane.CommandLine(creds, args...))
		out, err := crane.Run(ctx, creds, args...)
		if out != "" {
			fmt.Println(out)
		}
		return out, err
	}
	if _, err := runCrane(push, "append", "-f", layer, "-t", ref); err != nil {
		return err
	}
	pushed, err := runCrane(push, "digest", ref)
	if err != nil {
		return err
	}

	step("pulling it with the pull Secret %s", pullSecret)
	pull, err := save(pullSecret, ".dockerconfigjson")
	if err != nil {
		return err
	}
	if _, err := runCrane(pull, "pull", "--format=oci", ref, filepath.Join(clientDir, "hello-v1")); err != nil {
		return err
	}
	pulled, err := runCrane(pull, "digest", ref)
	if err != nil {
		return err
	}
	if pulled != pushed {
		return fmt.Errorf("pulled digest %s, pushed %s", pulled, pushed)
	}
	step("pushed and pulled %s@%s", ref, pushed)

	step("the pull Secret cannot push")
	_, err = runCrane(pull, "append", "-f", layer, "-t", dp.Hostname()+"/"+namespace+"/hello:by-pull-secret")
	if err == nil {
		return errors.New("the pull Secret could push")
	}
	fmt.Println("refused, as it should be:", lastLine(err.Error()))
	fmt.Printf("\nThe commands above run crane in a private mount namespace whose /etc/hosts maps %s to %s (the Service); they need root.\n", dp.Hostname(), dp.Addr)
	return nil
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}

func step(format string, args ...any) {
	fmt.Printf("\n==> "+format+"\n", args...)
}
