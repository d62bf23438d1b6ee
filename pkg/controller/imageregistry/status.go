package imageregistry

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"

	"github.com/image-registry-operator/image-registry-operator/pkg/apis/registry/v1alpha1"
)

// Reasons of the Ready condition. Those marked "bad input" come with a
// Warning event of the same reason and a retry with back-off.
const (
	// ReasonReady: every desired replica is ready.
	ReasonReady = "Ready"
	// ReasonRolloutInProgress: fewer replicas are ready than desired, or the
	// StatefulSet controller has not yet seen the latest template.
	ReasonRolloutInProgress = "RolloutInProgress"
	// ReasonScaledToZero: spec.replicas is 0.
	ReasonScaledToZero = "ScaledToZero"
	// ReasonInvalidName (bad input): metadata.name is not a DNS-1035 label
	// (an API server without the CRD's validation let it through).
	ReasonInvalidName = "InvalidName"
	// ReasonImageNotAllowed (bad input): spec.images names an image the
	// operator's --allowed-images does not allow.
	ReasonImageNotAllowed = "ImageNotAllowed"
	// ReasonTLSSecretNotFound (bad input): spec.tls.secretName names no Secret.
	ReasonTLSSecretNotFound = "TLSSecretNotFound"
	// ReasonInvalidTLSSecret (bad input): that Secret holds no valid key pair.
	ReasonInvalidTLSSecret = "InvalidTLSSecret"
	// ReasonTokenSecretNotFound (bad input): spec.auth.ca.secretName names no Secret.
	ReasonTokenSecretNotFound = "TokenSecretNotFound"
	// ReasonInvalidTokenSecret (bad input): that Secret holds no valid key pair.
	ReasonInvalidTokenSecret = "InvalidTokenSecret"
	// ReasonCertManagerMissing (bad input): an issuerRef is set but
	// cert-manager's Certificate API is not served.
	ReasonCertManagerMissing = "CertManagerMissing"
	// ReasonCertificatePending: cert-manager has not issued the Certificate yet.
	ReasonCertificatePending = "CertificatePending"
	// ReasonAuthConfigNotFound (bad input): spec.auth.configMapName names no ConfigMap.
	ReasonAuthConfigNotFound = "AuthConfigNotFound"
	// ReasonInvalidAuthConfig (bad input): the user's or the rendered auth
	// configuration does not load in the token server.
	ReasonInvalidAuthConfig = "InvalidAuthConfig"
	// ReasonInvalidSpec (bad input): the API rejected an object built from
	// the spec, e.g. the volume claim template.
	ReasonInvalidSpec = "InvalidSpec"
	// ReasonResourceConflict (bad input): an object the registry needs
	// exists but belongs to someone else.
	ReasonResourceConflict = "ResourceConflict"
	// ReasonSharedClaimNotReadWriteMany (bad input): the claim several
	// replicas would share exists without ReadWriteMany access.
	ReasonSharedClaimNotReadWriteMany = "SharedClaimNotReadWriteMany"
	// ReasonStorageNotShared (bad input): several replicas each have a claim
	// of their own, from a StatefulSet made with a volume claim template.
	ReasonStorageNotShared = "StorageNotShared"
)

// Reasons of Normal and Warning events that are not condition reasons.
const (
	EventReasonCreated = "Created"
	EventReasonUpdated = "Updated"
	// EventReasonVolumeClaimTemplateImmutable: spec.persistentVolumeClaim
	// changed, which an existing StatefulSet cannot follow.
	EventReasonVolumeClaimTemplateImmutable = "VolumeClaimTemplateImmutable"
	// EventReasonACLCrossesNamespaces: an entry of spec.auth.acl grants
	// access without the ${labels:namespace} placeholder in its name
	// pattern or an account match, so every admitted namespace's accounts
	// get it.
	EventReasonACLCrossesNamespaces = "ACLCrossesNamespaces"
	// EventReasonDisruptionBudgetLeftToUser: a PodDisruptionBudget of
	// someone else's selects the registry's pods, so the operator's went.
	EventReasonDisruptionBudgetLeftToUser = "DisruptionBudgetLeftToUser"
)

// updateStatus writes status only when it changed. cerr, if set, is the
// reason the sync stopped early; then fields the sync did not reach keep
// their previous values.
func (c *Controller) updateStatus(ctx context.Context, cached *v1alpha1.ImageRegistry, st *syncState, cerr *conditionError) error {
	reg := cached.DeepCopy()
	s := &reg.Status
	s.ObservedGeneration = reg.Generation
	s.Hostname = st.hostname
	if st.tls != nil {
		s.CA = string(st.tls.caPEM)
	}
	if st.statefulSet != nil {
		s.ReadyReplicas = st.statefulSet.Status.ReadyReplicas
	}
	cond := metav1.Condition{
		Type:               v1alpha1.ConditionReady,
		ObservedGeneration: reg.Generation,
		LastTransitionTime: metav1.NewTime(st.now),
	}
	cond.Status, cond.Reason, cond.Message = readiness(reg, st, cerr)
	meta.SetStatusCondition(&s.Conditions, cond)
	gcConditions(reg, st, s)

	if equality.Semantic.DeepEqual(cached.Status, reg.Status) {
		return nil
	}
	if _, err := c.registryClient.RegistryV1alpha1().ImageRegistries(reg.Namespace).UpdateStatus(ctx, reg, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("update status of ImageRegistry %s: %w", klog.KObj(reg), err)
	}
	return nil
}

func readiness(reg *v1alpha1.ImageRegistry, st *syncState, cerr *conditionError) (metav1.ConditionStatus, string, string) {
	if cerr != nil {
		return metav1.ConditionFalse, cerr.reason, cerr.message
	}
	want := replicas(reg)
	if want == 0 {
		return metav1.ConditionFalse, ReasonScaledToZero, "spec.replicas is 0"
	}
	sts := st.statefulSet
	if sts == nil {
		return metav1.ConditionFalse, ReasonRolloutInProgress, "waiting for the StatefulSet"
	}
	if sts.Status.ObservedGeneration < sts.Generation {
		return metav1.ConditionFalse, ReasonRolloutInProgress, "the StatefulSet controller has not yet observed the latest pod template"
	}
	if sts.Status.ReadyReplicas < want {
		return metav1.ConditionFalse, ReasonRolloutInProgress, fmt.Sprintf("%d of %d replicas ready", sts.Status.ReadyReplicas, want)
	}
	return metav1.ConditionTrue, ReasonReady, fmt.Sprintf("%d of %d replicas ready; serving on %s", sts.Status.ReadyReplicas, want, st.hostname)
}
