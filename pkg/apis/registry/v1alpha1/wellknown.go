package v1alpha1

// Well-known labels, annotations and finalizers. Each is set by the
// operator unless its comment says otherwise.

// LabelManagedBy=ManagedByValue is on everything the operator creates. Its
// Secret informer watches only Secrets with it, so that unrelated Secrets
// cost no memory.
const (
	LabelManagedBy = "app.kubernetes.io/managed-by"
	ManagedByValue = "image-registry-operator"
)

// Set by users.
const (
	// AnnotationRotate asks for a rotation now: each change of its value on
	// an ImagePushSecret or ImagePullSecret triggers one rotation.
	AnnotationRotate = "registry.mgoltzsche.github.com/rotate"
)

// On ImagePushSecrets and ImagePullSecrets and what they generate.
const (
	// FinalizerAccountCleanup on a push or pull object makes its deletion
	// wait until its ImageRegistryAccount, which lives in another namespace
	// and so cannot carry an owner reference, is gone.
	FinalizerAccountCleanup = "registry.mgoltzsche.github.com/account-cleanup"
	// AnnotationRotatedAt on a generated Secret is when the Secret's
	// current password became current there (RFC 3339); the grace period of
	// the previous password runs from it.
	AnnotationRotatedAt = "registry.mgoltzsche.github.com/rotated-at"
	// AnnotationOwner on a generated account is "<type>/<namespace>/<name>"
	// of the object it mirrors.
	AnnotationOwner = "registry.mgoltzsche.github.com/owner"
	// AnnotationOwnerUID on a generated account is the UID of the object it
	// mirrors.
	AnnotationOwnerUID = "registry.mgoltzsche.github.com/owner-uid"
	// LabelType on a generated account is push or pull.
	LabelType = "registry.mgoltzsche.github.com/type"
	// LabelOwnerNamespace and LabelOwnerName on a generated account name the
	// object it mirrors; a value longer than a label value allows is hashed.
	LabelOwnerNamespace = "registry.mgoltzsche.github.com/owner-namespace"
	LabelOwnerName      = "registry.mgoltzsche.github.com/owner-name"
	// AnnotationAddedImagePullSecrets on a ServiceAccount lists,
	// comma-separated, the entries of its imagePullSecrets the operator
	// added for ImagePullSecrets' spec.serviceAccounts: only those it ever
	// removes.
	AnnotationAddedImagePullSecrets = "registry.mgoltzsche.github.com/added-image-pull-secrets"
)
