package v1alpha1

// ConditionReady is the type of the one condition every kind in this API
// reports: whether the object is fully served. Its reason says why not.
const ConditionReady = "Ready"

// IssuerRef names a cert-manager issuer.
type IssuerRef struct {
	// Name of the cert-manager Issuer or ClusterIssuer.
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`
	// Kind of the issuer: Issuer (in the registry's namespace) or ClusterIssuer.
	// +kubebuilder:validation:Enum=Issuer;ClusterIssuer
	// +kubebuilder:default=Issuer
	// +optional
	Kind string `json:"kind,omitempty"`
	// Group of the issuer resource.
	// +kubebuilder:default=cert-manager.io
	// +optional
	Group string `json:"group,omitempty"`
}
