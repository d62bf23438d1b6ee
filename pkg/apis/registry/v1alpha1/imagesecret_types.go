package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// +genclient
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=imgpush;ipush,categories=image-registry-operator
// +kubebuilder:printcolumn:name="Registry",type=string,JSONPath=`.status.registryRef.name`,description="The ImageRegistry in use (its hostname: -o wide); empty: none resolved, the reason says why"
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`,description="Whether the Secret holds working credentials"
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`,description="Issued when Ready; else why not, e.g. NoRegistry, RegistryNotFound, RegistryNotReady, NamespaceNotAllowed"
// +kubebuilder:printcolumn:name="Rotation",type=integer,JSONPath=`.status.rotation`,description="Rotation number; the Secret's username is <namespace>/<name>/<rotation>"
// +kubebuilder:printcolumn:name="Next Rotation",type=string,JSONPath=`.status.nextRotationDate`,description="When the password rotates next (RFC 3339)"
// +kubebuilder:printcolumn:name="Secret",type=string,JSONPath=`.status.secretName`,priority=1
// +kubebuilder:printcolumn:name="Hostname",type=string,JSONPath=`.status.registry`,priority=1
// +kubebuilder:printcolumn:name="Rotated",type=date,JSONPath=`.status.rotationDate`,priority=1,description="Since when the current password is in use"
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`

// ImagePushSecret asks for rotating credentials that may push to and pull
// from a registry. The operator writes them to an Opaque Secret with a
// config.json key (a ~/.docker/config.json).
type ImagePushSecret struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec names the registry and how the credentials rotate.
	// +optional
	Spec ImageSecretSpec `json:"spec,omitempty"`
	// Status is what the operator observed and published.
	// +optional
	Status ImageSecretStatus `json:"status,omitempty"`
}

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
// +kubebuilder:object:root=true

// ImagePushSecretList is a list of ImagePushSecret.
type ImagePushSecretList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ImagePushSecret `json:"items"`
}

// +genclient
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=imgpull;ipull,categories=image-registry-operator
// +kubebuilder:printcolumn:name="Registry",type=string,JSONPath=`.status.registryRef.name`,description="The ImageRegistry in use (its hostname: -o wide); empty: none resolved, the reason says why"
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`,description="Whether the Secret holds working credentials"
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`,description="Issued when Ready; else why not, e.g. NoRegistry, RegistryNotFound, RegistryNotReady, NamespaceNotAllowed"
// +kubebuilder:printcolumn:name="SAs",type=integer,JSONPath=`.status.serviceAccounts`,description="ServiceAccounts whose imagePullSecrets name the Secret"
// +kubebuilder:printcolumn:name="Rotation",type=integer,JSONPath=`.status.rotation`,description="Rotation number; the Secret's username is <namespace>/<name>/<rotation>"
// +kubebuilder:printcolumn:name="Next Rotation",type=string,JSONPath=`.status.nextRotationDate`,description="When the password rotates next (RFC 3339)"
// +kubebuilder:printcolumn:name="Secret",type=string,JSONPath=`.status.secretName`,priority=1
// +kubebuilder:printcolumn:name="Hostname",type=string,JSONPath=`.status.registry`,priority=1
// +kubebuilder:printcolumn:name="Rotated",type=date,JSONPath=`.status.rotationDate`,priority=1,description="Since when the current password is in use"
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`

// ImagePullSecret asks for rotating credentials that may pull from a
// registry. The operator writes them to a kubernetes.io/dockerconfigjson
// Secret, usable as a Pod's imagePullSecret.
type ImagePullSecret struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec names the registry, how the credentials rotate and which
	// ServiceAccounts hand them to their Pods.
	// +optional
	Spec ImagePullSecretSpec `json:"spec,omitempty"`
	// Status is what the operator observed and published.
	// +optional
	Status ImageSecretStatus `json:"status,omitempty"`
}

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
// +kubebuilder:object:root=true

// ImagePullSecretList is a list of ImagePullSecret.
type ImagePullSecretList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ImagePullSecret `json:"items"`
}

// ImageSecretSpec is the desired state of an ImagePushSecret or ImagePullSecret.
// +kubebuilder:validation:XValidation:rule="has(self.registryRef) == has(oldSelf.registryRef) && (!has(self.registryRef) || self.registryRef == oldSelf.registryRef)",message="registryRef is immutable: create a new object to use another registry"
// +kubebuilder:validation:XValidation:rule="has(self.secretName) == has(oldSelf.secretName) && (!has(self.secretName) || self.secretName == oldSelf.secretName)",message="secretName is immutable"
type ImageSecretSpec struct {
	// RegistryRef names the ImageRegistry. Omitted, the operator's default
	// registry is used; an omitted namespace means the object's own namespace.
	// +optional
	RegistryRef *RegistryRef `json:"registryRef,omitempty"`

	// SecretName is the name of the generated Secret. Default:
	// <name>-image-push-secret or <name>-image-pull-secret.
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	// +optional
	SecretName string `json:"secretName,omitempty"`

	// RotationInterval is how often the password changes. Default: the
	// operator's --rotation-interval (24h). At least 10s.
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('10s')",message="rotationInterval must be at least 10s"
	// +optional
	RotationInterval *metav1.Duration `json:"rotationInterval,omitempty"`
}

// ImagePullSecretSpec is an ImageSecretSpec plus the ServiceAccounts that
// get the Secret.
type ImagePullSecretSpec struct {
	ImageSecretSpec `json:",inline"`

	// ServiceAccounts in this namespace whose imagePullSecrets get the
	// generated Secret, so that their Pods pull with it without naming it;
	// "*" (alone) means every ServiceAccount of the namespace, including
	// those created later. The operator removes the entries it added when a
	// name leaves the list or this object is deleted, and never touches
	// entries it did not add. A ServiceAccount that does not exist yet gets
	// the entry when it appears.
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self.all(n, n == '*' || n.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*$'))",message="each entry must be a ServiceAccount name (a DNS subdomain) or \"*\""
	// +kubebuilder:validation:XValidation:rule="!self.exists(n, n == '*') || self.size() == 1",message="\"*\" selects every ServiceAccount and must be the only entry"
	// +listType=set
	// +optional
	ServiceAccounts []string `json:"serviceAccounts,omitempty"`
}

// RegistryRef names an ImageRegistry.
type RegistryRef struct {
	// Name of the ImageRegistry.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
	// Namespace of the ImageRegistry; default: the referring object's namespace.
	// +kubebuilder:validation:MaxLength=63
	// +optional
	Namespace string `json:"namespace,omitempty"`
}

// ImageSecretStatus is the observed state of an ImagePushSecret or ImagePullSecret.
type ImageSecretStatus struct {
	// ObservedGeneration is the metadata.generation the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Rotation counts password rotations; the username of the current
	// password is <namespace>/<name>/<rotation>.
	// +optional
	Rotation int64 `json:"rotation"`
	// RotationDate is when the current rotation began.
	// +optional
	RotationDate *metav1.Time `json:"rotationDate,omitempty"`
	// ServiceAccounts counts the ServiceAccounts of spec.serviceAccounts
	// whose imagePullSecrets name the Secret (ImagePullSecret only).
	// +optional
	ServiceAccounts int32 `json:"serviceAccounts,omitempty"`
	// NextRotationDate is when the next scheduled rotation falls due:
	// rotationDate plus the rotation interval plus a delay fixed per object
	// that spreads rotations of objects created together. A rotation also
	// waits for the previous password's grace period to end.
	// +optional
	NextRotationDate *metav1.Time `json:"nextRotationDate,omitempty"`
	// Passwords are bcrypt hashes, oldest first: the last belongs to rotation
	// rotation+1 (the next password), the one before to rotation (the current
	// password), and a third, while present, to the previous password during
	// its grace period.
	// +listType=atomic
	// +optional
	Passwords []string `json:"passwords,omitempty"`
	// Registry is the registry's hostname.
	// +optional
	Registry string `json:"registry,omitempty"`
	// RegistryRef is the resolved registry (namespace always set).
	// +optional
	RegistryRef *RegistryRef `json:"registryRef,omitempty"`
	// SecretName is the name of the generated Secret.
	// +optional
	SecretName string `json:"secretName,omitempty"`
	// RotateRequest is the value of the rotate annotation that the operator
	// last acted on.
	// +optional
	RotateRequest string `json:"rotateRequest,omitempty"`
	// Conditions; Ready tells whether the Secret holds working credentials.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}
