package framework

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"time"

	"k8s.io/client-go/kubernetes"
)

const (
	// ServiceClusterIPRange is the service CIDR kube-apiserver allocates
	// ClusterIPs from. Nothing routes it; it only has to be valid.
	ServiceClusterIPRange = "10.0.0.0/24"
	// ServiceAccountIssuer is the iss claim of service-account tokens.
	ServiceAccountIssuer = "https://kubernetes.default.svc"
)

// apiServerArgs returns the flags of a kube-apiserver on loopback.
// disableServiceAccountAdmission is an API server flag; the flag is a list,
// so a later occurrence adds to it rather than replacing it.
const disableServiceAccountAdmission = "--disable-admission-plugins=ServiceAccount"

func apiServerArgs(dir string, p *pki, etcdURL string, securePort int) []string {
	return []string{
		"--etcd-servers=" + etcdURL,
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(securePort),
		// The default (lease) reconciler would publish 127.0.0.1 as the
		// endpoint of the "kubernetes" Service, which Endpoints validation
		// rejects as loopback. Nothing here reaches the API through that
		// Service anyway.
		"--endpoint-reconciler-type=none",
		// Anything kube-apiserver decides to self-generate goes here rather
		// than into /var/run/kubernetes.
		"--cert-dir=" + filepath.Join(dir, "apiserver"),
		"--tls-cert-file=" + p.ServingCertFile,
		"--tls-private-key-file=" + p.ServingKeyFile,
		"--client-ca-file=" + p.CACertFile,
		"--service-account-issuer=" + ServiceAccountIssuer,
		"--service-account-key-file=" + p.ServiceAccountPubKeyFile,
		"--service-account-signing-key-file=" + p.ServiceAccountKeyFile,
		"--service-cluster-ip-range=" + ServiceClusterIPRange,
		"--authorization-mode=RBAC",
		// The ServiceAccount admission plugin rejects Pods until the
		// namespace's "default" ServiceAccount exists and mounts a token
		// volume; with no kubelet there is nothing to gain from it, and
		// StatefulSet Pods would race the serviceaccount controller.
		disableServiceAccountAdmission,
		// Operator Pod templates may ask for privileged containers; the
		// objects are only stored, never run.
		"--allow-privileged=true",
		"--profiling=false",
	}
}

// waitForAPIServer polls /readyz with the admin credentials. /readyz (unlike
// /healthz) waits for the post-start hooks, notably the RBAC bootstrap
// policy, without which the first requests of a test can be denied.
func waitForAPIServer(ctx context.Context, p *process, client kubernetes.Interface, timeout time.Duration) error {
	var lastBody string
	err := waitForProcess(ctx, p, timeout, func(ctx context.Context) (bool, error) {
		reqCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		body, err := client.Discovery().RESTClient().Get().AbsPath("/readyz").Do(reqCtx).Raw()
		if err != nil {
			// On failure Raw returns the verbose check list, if any.
			if len(body) > 0 {
				lastBody = string(body)
			}
			return false, err
		}
		return true, nil
	})
	if err != nil && lastBody != "" {
		return fmt.Errorf("%w\nlast /readyz response:\n%s", err, lastBody)
	}
	return err
}
