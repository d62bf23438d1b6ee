package v1alpha1

import "k8s.io/apimachinery/pkg/runtime/schema"

// Kind takes an unqualified kind and returns a group-qualified GroupKind.
// (register-gen makes Resource, SchemeGroupVersion and AddToScheme.)
func Kind(kind string) schema.GroupKind {
	return SchemeGroupVersion.WithKind(kind).GroupKind()
}

// The kinds of this group.
const (
	ImageRegistryKind        = "ImageRegistry"
	ImageRegistryAccountKind = "ImageRegistryAccount"
	ImagePushSecretKind      = "ImagePushSecret"
	ImagePullSecretKind      = "ImagePullSecret"
)
