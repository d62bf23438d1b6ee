package framework

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// DefaultControllers are the kube-controller-manager controllers started
// unless Options.Controllers says otherwise, by their canonical v1.37 names
// (`kube-controller-manager --help` lists them under --controllers; older
// aliases such as "garbagecollector" still work). They are what an operator
// that owns StatefulSets, Deployments and ServiceAccounts relies on:
//
//   - garbage-collector-controller: ownerReference cascading deletion.
//   - namespace-controller: finishing namespace deletion, so test cleanup
//     does not leave namespaces Terminating forever.
//   - statefulset-controller, deployment-controller, replicaset-controller:
//     Pods from workload templates (they stay Pending: no kubelet).
//   - serviceaccount-controller: the "default" ServiceAccount per namespace.
//   - serviceaccount-token-controller: legacy token Secrets.
//   - root-ca-certificate-publisher-controller: the kube-root-ca.crt
//     ConfigMap per namespace, whose ca.crt the projected service-account
//     volume of the registry's auth container holds (test/e2e/dataplane).
//   - disruption-controller: the status of PodDisruptionBudgets, which the
//     eviction API reads.
//
// Node, volume and cloud controllers are left out: they have nothing to do
// without nodes and only add noise and CPU.
var DefaultControllers = []string{
	"garbage-collector-controller",
	"namespace-controller",
	"statefulset-controller",
	"deployment-controller",
	"replicaset-controller",
	"serviceaccount-controller",
	"serviceaccount-token-controller",
	"root-ca-certificate-publisher-controller",
	"disruption-controller",
}

// controllerManagerArgs returns the flags of a kube-controller-manager that
// talks to the loopback kube-apiserver as the admin user.
func controllerManagerArgs(dir string, p *pki, kubeconfig string, securePort int, controllers []string) []string {
	return []string{
		"--kubeconfig=" + kubeconfig,
		// Delegated authn/authz for kcm's own endpoints; without them it
		// warns about missing in-cluster configuration on every start.
		"--authentication-kubeconfig=" + kubeconfig,
		"--authorization-kubeconfig=" + kubeconfig,
		// Without skip-lookup kcm reads the request-header CA from the
		// extension-apiserver-authentication ConfigMap and logs an error
		// every few seconds because this kube-apiserver has no front proxy.
		// The client CA is given directly instead.
		"--authentication-skip-lookup=true",
		"--client-ca-file=" + p.CACertFile,
		"--controllers=" + strings.Join(controllers, ","),
		"--leader-elect=false",
		"--bind-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(securePort),
		// Serve with our loopback certificate so that the readiness probe
		// can verify it against our CA; anything self-generated would
		// otherwise land in /var/run/kubernetes.
		"--cert-dir=" + filepath.Join(dir, "controller-manager"),
		"--tls-cert-file=" + p.ServingCertFile,
		"--tls-private-key-file=" + p.ServingKeyFile,
		"--service-account-private-key-file=" + p.ServiceAccountKeyFile,
		"--root-ca-file=" + p.CACertFile,
		// Every controller uses the admin identity: per-controller service
		// accounts would need the token machinery that the tests disable.
		"--use-service-account-credentials=false",
		"--profiling=false",
	}
}

// waitForControllerManager polls kcm's /healthz, which it serves to anonymous
// callers too (default --authorization-always-allow-paths). A healthy kcm has
// reached the API and is starting its controllers; they need a few more
// seconds to sync their caches, so tests must still poll for their effects.
func waitForControllerManager(ctx context.Context, p *process, caPEM []byte, healthURL string, timeout time.Duration) error {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return fmt.Errorf("no certificate in the generated CA bundle")
	}
	client := &http.Client{
		Timeout: 2 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
		},
	}
	defer client.CloseIdleConnections()
	return waitForProcess(ctx, p, timeout, func(ctx context.Context) (bool, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, healthURL, nil)
		if err != nil {
			return false, err
		}
		resp, err := client.Do(req)
		if err != nil {
			return false, err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		if resp.StatusCode != http.StatusOK {
			return false, fmt.Errorf("%s: %s: %s", healthURL, resp.Status, body)
		}
		return true, nil
	})
}
