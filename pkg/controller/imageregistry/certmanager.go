package imageregistry

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/klog/v2"

	"github.com/image-registry-operator/image-registry-operator/pkg/apis/registry/v1alpha1"
	"github.com/image-registry-operator/image-registry-operator/pkg/pki"
)

// certificateGVR is cert-manager's Certificate. The controller speaks to it
// through the dynamic client so that cert-manager stays an optional,
// unimported dependency.
var certificateGVR = schema.GroupVersionResource{Group: "cert-manager.io", Version: "v1", Resource: "certificates"}

// certificateRequest is a Certificate the controller asks cert-manager for;
// its Secret has the same name.
type certificateRequest struct {
	name       string
	issuer     *v1alpha1.IssuerRef
	commonName string
	dnsNames   []string
	usages     []string
	duration   time.Duration
}

// certManagerInstalled asks discovery whether cert-manager's Certificate
// API is served.
func (c *Controller) certManagerInstalled() (bool, error) {
	if c.dynamicClient == nil {
		return false, nil
	}
	list, err := c.kubeClient.Discovery().ServerResourcesForGroupVersion(certificateGVR.GroupVersion().String())
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("discover %s: %w", certificateGVR.GroupVersion(), err)
	}
	for _, r := range list.APIResources {
		if r.Name == certificateGVR.Resource {
			return true, nil
		}
	}
	return false, nil
}

// ensureCertManagerKeyPair keeps a cert-manager Certificate and returns the
// key pair from its Secret once cert-manager has issued it.
func (c *Controller) ensureCertManagerKeyPair(ctx context.Context, reg *v1alpha1.ImageRegistry, req certificateRequest) (*keyMaterial, error) {
	ok, err := c.certManagerInstalled()
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, badInput(ReasonCertManagerMissing, "an issuerRef needs cert-manager, but the API %s is not served", certificateGVR.GroupResource())
	}
	if err := c.ensureCertificate(ctx, reg, req); err != nil {
		return nil, err
	}
	s, err := lookup(c.secretsLister.Secrets(reg.Namespace).Get(req.name))
	if err != nil {
		return nil, err
	}
	pending := &conditionError{reason: ReasonCertificatePending, message: fmt.Sprintf("waiting for cert-manager to issue Certificate %s", req.name)}
	if s == nil {
		return nil, pending
	}
	if _, err := pki.ParseKeyPair(s.Data[corev1.TLSCertKey], s.Data[corev1.TLSPrivateKeyKey]); err != nil {
		pending.message += fmt.Sprintf(": Secret holds no valid key pair yet: %v", err)
		return nil, pending
	}
	return &keyMaterial{certPEM: s.Data[corev1.TLSCertKey], keyPEM: s.Data[corev1.TLSPrivateKeyKey], caPEM: s.Data[caCertKey]}, nil
}

func desiredCertificate(reg *v1alpha1.ImageRegistry, req certificateRequest) *unstructured.Unstructured {
	issuer := map[string]any{"name": req.issuer.Name, "kind": req.issuer.Kind, "group": req.issuer.Group}
	if req.issuer.Kind == "" {
		issuer["kind"] = "Issuer"
	}
	if req.issuer.Group == "" {
		issuer["group"] = certificateGVR.Group
	}
	secretLabels := map[string]any{
		v1alpha1.LabelManagedBy: v1alpha1.ManagedByValue,
		v1alpha1.LabelRegistry:  reg.Name,
	}
	spec := map[string]any{
		"secretName": req.name,
		// The labels make the Secret visible to the operator's filtered
		// informer and tell it which registry the Secret is for.
		"secretTemplate": map[string]any{"labels": secretLabels},
		"issuerRef":      issuer,
		"commonName":     req.commonName,
		"duration":       req.duration.String(),
		"privateKey":     map[string]any{"algorithm": "ECDSA", "size": int64(256), "rotationPolicy": "Always"},
		"usages":         toAnySlice(req.usages),
	}
	if len(req.dnsNames) > 0 {
		spec["dnsNames"] = toAnySlice(req.dnsNames)
	}
	u := &unstructured.Unstructured{Object: map[string]any{"spec": spec}}
	u.SetAPIVersion(certificateGVR.GroupVersion().String())
	u.SetKind("Certificate")
	u.SetName(req.name)
	u.SetNamespace(reg.Namespace)
	u.SetLabels(objectLabels(reg))
	u.SetOwnerReferences([]metav1.OwnerReference{*metav1.NewControllerRef(reg, v1alpha1.SchemeGroupVersion.WithKind("ImageRegistry"))})
	return u
}

func (c *Controller) ensureCertificate(ctx context.Context, reg *v1alpha1.ImageRegistry, req certificateRequest) error {
	client := c.dynamicClient.Resource(certificateGVR).Namespace(reg.Namespace)
	desired := desiredCertificate(reg, req)
	cur, err := client.Get(ctx, req.name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		if _, err := client.Create(ctx, desired, metav1.CreateOptions{}); err != nil {
			return writeError("Certificate", desired, "create", err)
		}
		c.recorder.Eventf(reg, corev1.EventTypeNormal, EventReasonCreated, "Created Certificate %s", req.name)
		return nil
	}
	if err != nil {
		return fmt.Errorf("get Certificate %s/%s: %w", reg.Namespace, req.name, err)
	}
	if err := checkControlled(reg, "Certificate", cur); err != nil {
		return err
	}
	want := desired.Object["spec"].(map[string]any)
	have, _, _ := unstructured.NestedMap(cur.Object, "spec")
	if containsAll(have, want) {
		return nil
	}
	upd := cur.DeepCopy()
	for k, v := range want {
		if err := unstructured.SetNestedField(upd.Object, v, "spec", k); err != nil {
			return err
		}
	}
	if _, err := client.Update(ctx, upd, metav1.UpdateOptions{}); err != nil {
		return writeError("Certificate", upd, "update", err)
	}
	klog.FromContext(ctx).V(2).Info("Repaired drift", "kind", "Certificate", "object", klog.KObj(upd))
	c.recorder.Eventf(reg, corev1.EventTypeNormal, EventReasonUpdated, "Updated Certificate %s to match the ImageRegistry", req.name)
	return nil
}

// containsAll tells whether every key of want has an equal value in have,
// recursing into maps, so that fields cert-manager or others add are no drift.
func containsAll(have, want map[string]any) bool {
	for k, w := range want {
		h, ok := have[k]
		if !ok {
			return false
		}
		wm, wIsMap := w.(map[string]any)
		hm, hIsMap := h.(map[string]any)
		switch {
		case wIsMap && hIsMap:
			if !containsAll(hm, wm) {
				return false
			}
		case !equality.Semantic.DeepEqual(normalizeNumber(h), normalizeNumber(w)):
			return false
		}
	}
	return true
}

// normalizeNumber makes JSON numbers (int64 or float64 after a round trip)
// comparable.
func normalizeNumber(v any) any {
	switch n := v.(type) {
	case int64:
		return float64(n)
	case int:
		return float64(n)
	}
	return v
}

func toAnySlice(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}
