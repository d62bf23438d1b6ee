// Package v1alpha1 holds the registry.mgoltzsche.github.com/v1alpha1 API:
// ImageRegistry, ImagePushSecret, ImagePullSecret and ImageRegistryAccount.
//
// The group name is kept from the operator this project replaces, so that
// manifests written for it apply unchanged.
//
// +k8s:deepcopy-gen=package
// +k8s:openapi-gen=true
// +groupName=registry.mgoltzsche.github.com
// +kubebuilder:object:generate=false
package v1alpha1
