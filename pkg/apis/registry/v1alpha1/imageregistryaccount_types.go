package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// +genclient
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=imgacc;iracc,categories=image-registry-operator
// +kubebuilder:printcolumn:name="Login",type=string,JSONPath=`.status.loginName`,description="Static accounts: the name to log in with (spec.username or metadata.name, plus /<rotation> if spec.rotation is set). Empty for generated accounts: theirs is <namespace>/<name>/<rotation>, in their Secret"
// +kubebuilder:printcolumn:name="Generated",type=string,JSONPath=`.metadata.labels['registry\.mgoltzsche\.github\.com/type']`,description="push or pull: the operator made it for an ImagePushSecret or ImagePullSecret; empty: a static account, written by a user"
// +kubebuilder:printcolumn:name="Expires",type=string,JSONPath=`.spec.expiresAt`,description="When logins stop working (RFC 3339); empty: never"
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`,description="Static accounts: whether the account can log in; empty for generated accounts (see their ImagePushSecret or ImagePullSecret)"
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`,priority=1
// +kubebuilder:printcolumn:name="Username",type=string,JSONPath=`.spec.username`,priority=1,description="spec.username; generated accounts: <namespace>/<name> of their ImagePushSecret or ImagePullSecret"
// +kubebuilder:printcolumn:name="Rotation",type=integer,JSONPath=`.spec.rotation`,priority=1,description="Rotating accounts log in as <username>/<rotation>"
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`

// ImageRegistryAccount is a login that the registry's token server accepts.
// It lives in the registry's namespace. The operator keeps one per
// ImagePushSecret and ImagePullSecret; admins may create static ones, e.g.
// for a CI system outside the cluster.
type ImageRegistryAccount struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec holds the password hashes and the labels the ACL matches.
	Spec ImageRegistryAccountSpec `json:"spec"`
	// Status is what the operator observed.
	// +optional
	Status ImageRegistryAccountStatus `json:"status,omitempty"`
}

// ImageRegistryAccountSpec holds an account's credentials.
// +kubebuilder:validation:XValidation:rule="!has(self.rotation) || self.rotation >= 0",message="rotation must not be negative"
type ImageRegistryAccountSpec struct {
	// Username is the login name. With rotation set, clients log in as
	// <username>/<rotation number>; without it, as <username>.
	// Default: metadata.name.
	// +kubebuilder:validation:MaxLength=512
	// +optional
	Username string `json:"username,omitempty"`

	// Rotation is the current rotation number of a rotating account. The
	// last hash of passwords belongs to rotation+1, the one before to
	// rotation, the one before that to rotation-1. Omitted for static
	// accounts, whose hashes are all valid for the plain username.
	// +optional
	Rotation *int64 `json:"rotation,omitempty"`

	// Passwords are bcrypt hashes, oldest first.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=8
	// +listType=atomic
	Passwords []string `json:"passwords"`

	// Labels are returned to the ACL on a successful login, e.g.
	// namespace, name and type (push or pull) for operator-made accounts.
	// +optional
	Labels map[string][]string `json:"labels,omitempty"`

	// ExpiresAt ends the account: logins fail from then on.
	// +optional
	ExpiresAt *metav1.Time `json:"expiresAt,omitempty"`

	// Registries are the names of the ImageRegistries in this namespace
	// that accept the account; another registry refuses its logins as it
	// refuses a wrong password. Empty: every registry of the namespace.
	// Accounts the operator makes name the one registry their
	// ImagePushSecret or ImagePullSecret uses.
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:MaxLength=63
	// +kubebuilder:validation:items:Pattern=`^[a-z]([-a-z0-9]*[a-z0-9])?$`
	// +listType=set
	// +optional
	Registries []string `json:"registries,omitempty"`
}

// ImageRegistryAccountStatus is the observed state of an ImageRegistryAccount.
//
// The operator writes it for static accounts only (those without the label
// app.kubernetes.io/managed-by=image-registry-operator). Generated accounts
// keep an empty status: their state is their ImagePushSecret's or
// ImagePullSecret's, and the operator caches them in a compact form that an
// empty status allows.
type ImageRegistryAccountStatus struct {
	// ObservedGeneration is the metadata.generation the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// LoginName is the name clients log in with: spec.username, or
	// metadata.name when that is empty; with spec.rotation set, followed by
	// /<rotation> (the current password's name).
	// +optional
	LoginName string `json:"loginName,omitempty"`
	// Conditions of the account; Ready tells whether it can log in, and
	// its reason why not (Expired, InvalidPassword, InvalidLoginName).
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
// +kubebuilder:object:root=true

// ImageRegistryAccountList is a list of ImageRegistryAccount.
type ImageRegistryAccountList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ImageRegistryAccount `json:"items"`
}
