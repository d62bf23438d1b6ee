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
// +kubebuilder:printcolumn:name="Hostname",type=string,JSONPath=`.status.hostname`,description="Where clients push and pull: <name>.<namespace>.<OPERATOR_DNS_ZONE>"
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`,description="Whether the registry serves"
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`,description="Ready when serving; else why not, e.g. RolloutInProgress, ScaledToZero, CertificatePending, ImageNotAllowed"
// +kubebuilder:printcolumn:name="Replicas",type=integer,JSONPath=`.spec.replicas`,description="Desired registry pods"
// +kubebuilder:printcolumn:name="Available",type=integer,JSONPath=`.status.readyReplicas`,description="Registry pods ready to serve"
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

	// PersistentVolumeClaim describes the registry's volume: one per pod
	// (data-<name>-<ordinal>), or with ReadWriteMany one that every pod
	// shares (data-<name>-0). Claims outlive the registry. Ignored when
	// storage.s3 is set.
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

	// GarbageCollection schedules `registry garbage-collect`, which frees
	// the blobs no manifest references any more. During a run the registry
	// is in read-only maintenance mode: pulls work, pushes and deletes are
	// refused. Unset: no scheduled runs, but the garbage-collect annotation
	// still asks for one.
	// +optional
	GarbageCollection *GarbageCollectionSpec `json:"garbageCollection,omitempty"`

	// Proxy makes the registry a pull-through cache of another registry.
	// Pushes are refused; pulls still need a token from the token server.
	// +optional
	Proxy *ProxySpec `json:"proxy,omitempty"`
}

// AnnotationGarbageCollect on an ImageRegistry asks for a garbage
// collection now: each new value of it starts one run (the operator records
// the value it acted on in status.garbageCollection.lastRequest).
const AnnotationGarbageCollect = "registry.mgoltzsche.github.com/garbage-collect"

// Condition types of an ImageRegistry besides Ready.
const (
	// ConditionReadOnly is True while the registry is in read-only
	// maintenance mode for a garbage collection.
	ConditionReadOnly = "ReadOnly"
	// ConditionGarbageCollected tells whether the last garbage collection
	// succeeded (or why none can run).
	ConditionGarbageCollected = "GarbageCollected"
)

// GarbageCollectionSpec schedules garbage collection.
type GarbageCollectionSpec struct {
	// Schedule is a cron expression, in UTC unless it starts with
	// CRON_TZ=<zone>: five fields (minute hour day-of-month month
	// day-of-week) or @hourly, @daily, @weekly, @monthly, @yearly. Empty:
	// only on demand (the garbage-collect annotation). A run that was missed
	// (operator down) runs once when the operator sees it.
	// +kubebuilder:validation:MaxLength=128
	// +optional
	Schedule string `json:"schedule,omitempty"`
	// DeleteUntagged also deletes manifests that no tag points at (and
	// that no index references), as `registry garbage-collect
	// --delete-untagged` does. Default false: only blobs of deleted
	// manifests are freed.
	// +optional
	DeleteUntagged bool `json:"deleteUntagged,omitempty"`
	// Timeout bounds a run, from switching to read-only mode until the
	// collector ends; a run that takes longer is stopped, marked failed and
	// the registry made writable again. Default 1h.
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1m')",message="timeout must be at least 1m"
	// +optional
	Timeout *metav1.Duration `json:"timeout,omitempty"`
}

// ProxySpec configures a pull-through cache.
type ProxySpec struct {
	// RemoteURL of the upstream registry, e.g. https://registry-1.docker.io.
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:Pattern=`^https?://[^\s/?#]+(/[^\s?#]*)?$`
	RemoteURL string `json:"remoteURL"`
	// CredentialsSecret names a Secret in the registry's namespace with the
	// keys username and password that log in to the upstream. Empty:
	// anonymous pulls from the upstream.
	// +kubebuilder:validation:MaxLength=253
	// +optional
	CredentialsSecret string `json:"credentialsSecret,omitempty"`
	// TTL is how long cached content is kept after it was last fetched
	// (the registry's proxy.ttl); 0 keeps it forever. Default 168h.
	// +optional
	TTL *metav1.Duration `json:"ttl,omitempty"`
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
	// push accounts push, pull and delete <their namespace>/* and pull
	// accounts pull <their namespace>/*, and nothing else; for a
	// pull-through cache (spec.proxy) it lets every account pull any
	// repository, and nothing else.
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
	// RootDirectory is the prefix of every key the registry writes, e.g.
	// /registries/team-a; empty is the bucket's root. Registries that share
	// a bucket need prefixes of their own: a garbage collection deletes the
	// blobs under its root that its own manifests do not reference.
	// Changing it points the registry at another, usually empty, root.
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:Pattern=`^(/[A-Za-z0-9_-][A-Za-z0-9._-]*)+$`
	// +optional
	RootDirectory string `json:"rootDirectory,omitempty"`
	// CABundle names PEM certificates the registry trusts for the endpoint
	// besides the system's: for an S3 service whose certificate a private
	// CA signed. Changing them rolls the pods.
	// +optional
	CABundle *ConfigMapKeyRef `json:"caBundle,omitempty"`
}

// ConfigMapKeyRef names a key of a ConfigMap in the registry's namespace.
type ConfigMapKeyRef struct {
	// Name of the ConfigMap.
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`
	// Key in the ConfigMap; default ca.crt.
	// +optional
	Key string `json:"key,omitempty"`
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
	ReadyReplicas int32 `json:"readyReplicas"`
	// Conditions; Ready tells whether the registry serves, ReadOnly
	// whether it is in maintenance mode, GarbageCollected how the last
	// garbage collection ended.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// GarbageCollection is the state of garbage collection.
	// +optional
	GarbageCollection *GarbageCollectionStatus `json:"garbageCollection,omitempty"`
}

// GarbageCollectionStatus records garbage collection runs.
type GarbageCollectionStatus struct {
	// Schedule is the spec.garbageCollection.schedule that
	// lastScheduleTime belongs to. A changed schedule counts from when the
	// operator saw it, so that changing it never starts a run at once.
	// +optional
	Schedule string `json:"schedule,omitempty"`
	// LastScheduleTime is the last time of the schedule that the operator
	// acted on: the scheduled time of the last run the schedule started (of
	// several missed ones, the latest), or when it first saw the schedule.
	// The next run is due at the schedule's next time after it.
	// +optional
	LastScheduleTime *metav1.Time `json:"lastScheduleTime,omitempty"`
	// LastRequest is the value of the garbage-collect annotation the
	// operator last acted on.
	// +optional
	LastRequest string `json:"lastRequest,omitempty"`
	// Active is the run under way, if any: the registry is read-only.
	// +optional
	Active *GarbageCollectionRun `json:"active,omitempty"`
	// LastRun is the last run that ended.
	// +optional
	LastRun *GarbageCollectionRun `json:"lastRun,omitempty"`
}

// GarbageCollectionResult is how a run ended.
// +kubebuilder:validation:Enum=Succeeded;Failed
type GarbageCollectionResult string

const (
	GarbageCollectionSucceeded GarbageCollectionResult = "Succeeded"
	GarbageCollectionFailed    GarbageCollectionResult = "Failed"
)

// GarbageCollectionRun is one garbage collection.
type GarbageCollectionRun struct {
	// Trigger is what started the run: Schedule or Request (the annotation).
	// +optional
	Trigger string `json:"trigger,omitempty"`
	// StartTime is when the operator started switching the registry to
	// read-only mode.
	StartTime metav1.Time `json:"startTime"`
	// CompletionTime is when the run ended.
	// +optional
	CompletionTime *metav1.Time `json:"completionTime,omitempty"`
	// PodName is the collector pod, once created.
	// +optional
	PodName string `json:"podName,omitempty"`
	// Result of an ended run.
	// +optional
	Result GarbageCollectionResult `json:"result,omitempty"`
	// BytesFreed is the storage the run freed: the size of the storage
	// directory (du, in 1 KiB blocks) before the collector minus after it.
	// Unset for S3 storage and for runs that failed before measuring.
	// +optional
	BytesFreed *int64 `json:"bytesFreed,omitempty"`
	// Message says why a run failed, or what the collector reported.
	// +optional
	Message string `json:"message,omitempty"`
}

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
// +kubebuilder:object:root=true

// ImageRegistryList is a list of ImageRegistry.
type ImageRegistryList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ImageRegistry `json:"items"`
}
