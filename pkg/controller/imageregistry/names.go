package imageregistry

import (
	"k8s.io/apimachinery/pkg/labels"

	"github.com/image-registry-operator/image-registry-operator/pkg/apis/registry/v1alpha1"
)

// CASecretName is the operator CA Secret in the operator namespace. It
// signs every registry's serving certificate unless spec.tls says otherwise.
const CASecretName = "image-registry-root-ca"

// AnnotationExternalDNSHostname asks external-dns to publish the LoadBalancer
// Service under the registry's hostname.
const AnnotationExternalDNSHostname = "external-dns.alpha.kubernetes.io/hostname"

// Ports and paths inside the registry pod. The ConfigMaps and Secrets are
// mounted as directories (never subPath), so the kubelet refreshes them.
const (
	registryPort = 5000
	authPort     = 5001
	// authMetricsPort serves the builtin token server's /metrics.
	authMetricsPort = 5003
	// servicePort is the registry's port on the LoadBalancer Service, so that
	// clients need no port in image references.
	servicePort = 443

	registryConfigDir = "/etc/distribution"
	registryConfigKey = "config.yml"
	// jwksKey in the registry ConfigMap holds the token public keys the
	// registry trusts (auth.token.jwks).
	jwksKey            = "jwks.json"
	authConfigDir      = "/etc/registry-auth"
	authConfigKey      = "auth_config.yml"
	tlsDir             = "/etc/registry-tls"
	tokenDir           = "/etc/registry-token"
	dataDir            = "/var/lib/registry"
	extAuthDir         = "/ext-auth"
	serviceAccountDir  = "/var/run/secrets/kubernetes.io/serviceaccount"
	httpSecretKey      = "secret"
	caCertKey          = "ca.crt"
	pluginInImage      = "/usr/local/bin/k8s-docker-authn"
	builtinAuthCommand = "registry-auth"
)

// Names of the objects an ImageRegistry owns.
func statefulSetName(r *v1alpha1.ImageRegistry) string     { return r.Name }
func serviceName(r *v1alpha1.ImageRegistry) string         { return r.Name }
func headlessServiceName(r *v1alpha1.ImageRegistry) string { return r.Name + "-headless" }
func registryConfigMapName(r *v1alpha1.ImageRegistry) string {
	return r.Name + "-registry-config"
}
func authConfigMapName(r *v1alpha1.ImageRegistry) string { return r.Name + "-auth-config" }
func tlsSecretName(r *v1alpha1.ImageRegistry) string     { return r.Name + "-tls" }
func tokenSecretName(r *v1alpha1.ImageRegistry) string   { return r.Name + "-auth-token" }
func httpSecretName(r *v1alpha1.ImageRegistry) string    { return r.Name + "-http-secret" }
func authServiceAccountName(r *v1alpha1.ImageRegistry) string {
	return r.Name + "-auth"
}
func authRoleName(r *v1alpha1.ImageRegistry) string { return r.Name + "-auth" }

// selectorLabels select a registry's pods; they never change, since a
// StatefulSet's selector is immutable.
func selectorLabels(r *v1alpha1.ImageRegistry) map[string]string {
	return map[string]string{
		"app.kubernetes.io/name":     "image-registry",
		"app.kubernetes.io/instance": r.Name,
	}
}

// objectLabels go on everything the controller creates. The managed-by
// label is what lets the operator's filtered Secret informer see its Secrets.
func objectLabels(r *v1alpha1.ImageRegistry) map[string]string {
	l := selectorLabels(r)
	l[v1alpha1.LabelManagedBy] = v1alpha1.ManagedByValue
	return l
}

var everything = labels.Everything()
