package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// +genclient
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=imgreg;ireg,categories=image-registry-operator
// +kubebuilder:printcolumn:name="Hostname",type=string,JSONPath=`.status.hostname`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`,priority=1
// +kubebuilder:printcolumn:name="Replicas",type=integer,JSONPath=`.spec.replicas`
// +kubebuilder:printcolumn:name="Available",type=integer,JSONPath=`.status.readyReplicas`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:validation:XValidation:rule="size(self.metadata.name) <= 63 && self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')",message="metadata.name must be a DNS-1035 label (at most 63 lower-case letters, digits and '-', starting with a letter): it becomes the first label of the registry's hostname and certificate names"

// ImageRegistry is an in-cluster container image registry: the operator runs
// it as a StatefulSet of the CNCF distribution registry with token
// authentication, and maintains its Services, TLS certificate, token signing
// key and auth configuration.
type ImageRegistry struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is the registry the user asks for.
	// +optional
	Spec ImageRegistrySpec `json:"spec,omitempty"`
	// Status is what the operator observed.
	// +optional
	Status ImageRegistryStatus `json:"status,omitempty"`
}

// ImageRegistrySpec is the desired state of an ImageRegistry.
// +kubebuilder:validation:XValidation:rule="!has(self.replicas) || self.replicas <= 1 || has(self.storage) || (has(self.persistentVolumeClaim) && has(self.persistentVolumeClaim.accessModes) && 'ReadWriteMany' in self.persistentVolumeClaim.accessModes)",message="more than one replica needs shared blob storage: persistentVolumeClaim.accessModes must contain ReadWriteMany, or storage.s3 must be set"
type ImageRegistrySpec struct {
	// Replicas is the number of registry pods. More than one needs shared
	// blob storage (a ReadWriteMany volume or S3).
	// +kubebuilder:default=1
	// +kubebuilder:validation:Minimum=0
	// +optional
	Replicas *int32 `json:"replicas,omitempty"`

	// PersistentVolumeClaim is the template of each registry pod's volume.
	// Ignored for blobs when storage.s3 is set.
	// +optional
	PersistentVolumeClaim PersistentVolumeClaimSpec `json:"persistentVolumeClaim,omitempty"`

	// TLS selects the registry's serving certificate. Empty (or tls: {})
	// means a certificate signed by the operator's own CA.
	// +optional
	TLS *TLSSpec `json:"tls,omitempty"`

	// Auth configures the token server that authenticates registry clients.
	// +optional
	Auth AuthSpec `json:"auth,omitempty"`

	// Storage selects a shared blob store instead of the pod's volume.
	// +optional
	Storage *StorageSpec `json:"storage,omitempty"`

	// Images overrides the container images the registry pod runs.
	// +optional
	Images *ImagesSpec `json:"images,omitempty"`

	// Access says which other namespaces' ImagePushSecrets and
	// ImagePullSecrets get an account on this registry. Secrets in the
	// registry's own namespace always do; others get Ready=False
	// NamespaceNotAllowed and no account.
	// +optional
	Access *AccessSpec `json:"access,omitempty"`
}

// PersistentVolumeClaimSpec is the part of a PersistentVolumeClaim the user may set.
type PersistentVolumeClaimSpec struct {
	// StorageClassName of the volume; empty means the cluster's default class.
	// +optional
	StorageClassName *string `json:"storageClassName,omitempty"`
	// AccessModes of the volume. Defaults to ReadWriteOnce.
	// +kubebuilder:validation:items:Enum=ReadWriteOnce;ReadOnlyMany;ReadWriteMany;ReadWriteOncePod
	// +listType=atomic
	// +optional
	AccessModes []corev1.PersistentVolumeAccessMode `json:"accessModes,omitempty"`
	// Resources is the storage the volume requests, e.g. requests.storage: 8Gi.
	// Defaults to 8Gi.
	// +optional
	Resources corev1.VolumeResourceRequirements `json:"resources,omitempty"`
}

// TLSSpec selects the registry's serving certificate.
// +kubebuilder:validation:XValidation:rule="!(has(self.secretName) && has(self.issuerRef))",message="tls.secretName and tls.issuerRef are mutually exclusive"
type TLSSpec struct {
	// SecretName names a kubernetes.io/tls Secret in the registry's namespace
	// that the user maintains. The operator reads it and never writes it.
	// +optional
	SecretName string `json:"secretName,omitempty"`
	// IssuerRef asks cert-manager for the certificate.
	// +optional
	IssuerRef *IssuerRef `json:"issuerRef,omitempty"`
}

// AuthServer names the token server implementation.
// +kubebuilder:validation:Enum=builtin;docker_auth
type AuthServer string

const (
	// AuthServerBuiltin is the operator's own token server (registry-auth).
	AuthServerBuiltin AuthServer = "builtin"
	// AuthServerDockerAuth is the upstream cesanta/docker_auth image with the
	// operator's authenticator as its ext_auth command.
	AuthServerDockerAuth AuthServer = "docker_auth"
)

// AuthSpec configures the registry's token server.
// +kubebuilder:validation:XValidation:rule="!(has(self.configMapName) && has(self.acl))",message="auth.acl and auth.configMapName are mutually exclusive: the ConfigMap holds the whole auth configuration"
type AuthSpec struct {
	// Server is the token server implementation.
	// +kubebuilder:default=builtin
	// +optional
	Server AuthServer `json:"server,omitempty"`

	// ACL replaces the default access rules, in docker_auth's ACL format:
	// entries are tried in order and the first match wins. The default lets
	// push accounts push and pull <their namespace>/* and pull accounts pull
	// <their namespace>/*, and nothing else.
	// +listType=atomic
	// +optional
	ACL []ACLEntry `json:"acl,omitempty"`

	// TokenExpiration is how long an issued registry token is valid. Default 5m.
	// +optional
	TokenExpiration *metav1.Duration `json:"tokenExpiration,omitempty"`

	// ConfigMapName names a ConfigMap in the registry's namespace whose
	// auth_config.yml is the whole auth configuration (docker_auth format),
	// used instead of the rendered one.
	// +optional
	ConfigMapName string `json:"configMapName,omitempty"`

	// IssuerRef asks cert-manager for the token signing certificate instead
	// of a key pair made by the operator.
	// +optional
	IssuerRef *IssuerRef `json:"issuerRef,omitempty"`

	// CA is the old system's way of naming the token signing certificate.
	// Deprecated: use issuerRef; kept so that old manifests still apply.
	// +optional
	CA *AuthCASpec `json:"ca,omitempty"`
}

// AuthCASpec is the deprecated token signing certificate reference.
type AuthCASpec struct {
	// SecretName of a kubernetes.io/tls Secret holding the signing key pair.
	// +optional
	SecretName string `json:"secretName,omitempty"`
	// IssuerRef asks cert-manager to maintain that Secret.
	// +optional
	IssuerRef *IssuerRef `json:"issuerRef,omitempty"`
}

// ACLEntry is one docker_auth ACL rule.
type ACLEntry struct {
	// Match selects the requests this rule applies to; every given field
	// must match. An empty match matches every request, including anonymous ones.
	Match ACLMatch `json:"match"`
	// Actions granted on a match, e.g. push, pull, delete, or * for all.
	// An empty list denies.
	// +listType=atomic
	Actions []string `json:"actions"`
	// Comment is a note for humans.
	// +optional
	Comment string `json:"comment,omitempty"`
}

// ACLMatch holds docker_auth's match keys. Values are literals, globs, or
// /regular expressions/, and may use ${account}, ${name}, ${type},
// ${service} and ${labels:KEY} placeholders.
type ACLMatch struct {
	// Account is the login name ("" for anonymous).
	// +optional
	Account string `json:"account,omitempty"`
	// Type is the resource type of the request scope, e.g. repository.
	// +optional
	Type string `json:"type,omitempty"`
	// Name is the resource name, e.g. a repository path.
	// +optional
	Name string `json:"name,omitempty"`
	// IP is the client address or CIDR.
	// +optional
	IP string `json:"ip,omitempty"`
	// Service is the registry's token service name.
	// +optional
	Service string `json:"service,omitempty"`
	// Labels must each match one of the account's values for that label.
	// +optional
	Labels map[string]string `json:"labels,omitempty"`
}

// StorageSpec selects shared blob storage.
type StorageSpec struct {
	// S3 stores blobs in an S3-compatible bucket.
	// +optional
	S3 *S3StorageSpec `json:"s3,omitempty"`
}

// S3StorageSpec configures the distribution registry's s3 storage driver.
type S3StorageSpec struct {
	// Endpoint URL of the S3-compatible service; empty means AWS.
	// +optional
	Endpoint string `json:"endpoint,omitempty"`
	// Bucket name.
	// +kubebuilder:validation:MinLength=1
	Bucket string `json:"bucket"`
	// Region of the bucket.
	// +kubebuilder:validation:MinLength=1
	Region string `json:"region"`
	// CredentialsSecret names a Secret in the registry's namespace with the
	// keys accessKeyID and secretAccessKey.
	// +kubebuilder:validation:MinLength=1
	CredentialsSecret string `json:"credentialsSecret"`
}

// ImagesSpec overrides container images.
type ImagesSpec struct {
	// Registry is the distribution registry image.
	// +optional
	Registry string `json:"registry,omitempty"`
	// Auth is the image of the builtin token server (registry-auth) and of
	// the docker_auth ext_auth authenticator; defaults to the operator's image.
	// +optional
	Auth string `json:"auth,omitempty"`
	// DockerAuth is the cesanta/docker_auth image used when auth.server is docker_auth.
	// +optional
	DockerAuth string `json:"dockerAuth,omitempty"`
}

// AccessSpec lists the namespaces that may use a registry besides its own.
type AccessSpec struct {
	// Namespaces whose push and pull secrets may use this registry; "*"
	// allows every namespace. The operator's
	// --default-registry-allowed-namespaces adds to this list for the
	// default registry.
	// +listType=set
	// +kubebuilder:validation:MaxItems=256
	// +kubebuilder:validation:items:MaxLength=63
	// +kubebuilder:validation:items:Pattern=`^(\*|[a-z0-9]([-a-z0-9]*[a-z0-9])?)$`
	// +optional
	Namespaces []string `json:"namespaces,omitempty"`
}

// ImageRegistryStatus is the observed state of an ImageRegistry.
type ImageRegistryStatus struct {
	// ObservedGeneration is the metadata.generation the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Hostname clients use: <name>.<namespace>.<OPERATOR_DNS_ZONE>.
	// +optional
	Hostname string `json:"hostname,omitempty"`
	// CA is the PEM bundle that verifies the registry's serving certificate;
	// the operator copies it into each push and pull Secret as ca.crt.
	// +optional
	CA string `json:"ca,omitempty"`
	// ReadyReplicas is the number of registry pods ready to serve.
	// +optional
	ReadyReplicas int32 `json:"readyReplicas,omitempty"`
	// Conditions; Ready tells whether the registry serves.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
// +kubebuilder:object:root=true

// ImageRegistryList is a list of ImageRegistry.
type ImageRegistryList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ImageRegistry `json:"items"`
}
