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

// On ImageRegistries' objects and pods.
const (
	// LabelRegistry names the ImageRegistry an object or pod belongs to;
	// Secrets labelled with it by others (cert-manager sets no owner
	// reference) or by users (S3 credentials) are watched for the registry.
	LabelRegistry = "registry.mgoltzsche.github.com/imageregistry"
	// AnnotationConfigHash on the registry's pod template digests the
	// registry and auth configuration, TLS and token key pairs and the HTTP
	// secret, so that changing any of them rolls the pods.
	AnnotationConfigHash = "registry.mgoltzsche.github.com/config-hash"
	// AnnotationS3CredentialsHash on the pod template digests the S3
	// credentials the containers read at start, so that changing them rolls
	// the pods.
	AnnotationS3CredentialsHash = "registry.mgoltzsche.github.com/s3-credentials-hash"
	// AnnotationProxyCredentialsHash on the pod template digests the
	// upstream registry's credentials (spec.proxy.credentialsSecret), so
	// that changing them rolls the pods.
	AnnotationProxyCredentialsHash = "registry.mgoltzsche.github.com/proxy-credentials-hash"
	// AnnotationReadOnly on the pod template says whether the pods' config
	// is read-only (garbage collection): "true" or "false".
	AnnotationReadOnly = "registry.mgoltzsche.github.com/read-only"
	// AnnotationTokenSigningKey on the pod template is the thumbprint of the
	// key its token server signs with.
	AnnotationTokenSigningKey = "registry.mgoltzsche.github.com/token-signing-key"
	// AnnotationTrustedTokenKeys on the pod template lists the thumbprints
	// of the keys its registry trusts, comma-separated.
	AnnotationTrustedTokenKeys = "registry.mgoltzsche.github.com/trusted-token-keys"
	// AnnotationRetiredTokenKeys on the registry ConfigMap maps the
	// thumbprint of each retired token key to the time (RFC 3339) until
	// which it stays trusted, or to "" while pods may still sign with it.
	AnnotationRetiredTokenKeys = "registry.mgoltzsche.github.com/retired-token-keys"
)
