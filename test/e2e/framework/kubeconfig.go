package framework

import (
	"fmt"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

const contextName = "iro-e2e"

// writeKubeconfig writes an admin kubeconfig with the credentials embedded, so
// that the file still works when copied elsewhere (hack/localcluster
// --kubeconfig-out), and returns the rest.Config loaded back from it, which
// proves that the file kubectl gets is the one the tests use.
func writeKubeconfig(path, serverURL string, p *pki) (*rest.Config, error) {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters[contextName] = &clientcmdapi.Cluster{
		Server:                   serverURL,
		CertificateAuthorityData: p.CACertPEM,
	}
	cfg.AuthInfos[contextName] = &clientcmdapi.AuthInfo{
		ClientCertificateData: p.AdminCertPEM,
		ClientKeyData:         p.AdminKeyPEM,
	}
	cfg.Contexts[contextName] = &clientcmdapi.Context{
		Cluster:  contextName,
		AuthInfo: contextName,
	}
	cfg.CurrentContext = contextName
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		return nil, fmt.Errorf("writing kubeconfig %s: %w", path, err)
	}
	restConfig, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		return nil, fmt.Errorf("loading kubeconfig %s: %w", path, err)
	}
	// client-go's defaults (5 QPS, burst 10) throttle tests that create
	// many objects; this API server has nobody else to protect.
	restConfig.QPS = 100
	restConfig.Burst = 200
	return restConfig, nil
}
