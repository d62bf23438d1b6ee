package imageregistry

import (
	"context"
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"

	"github.com/image-registry-operator/image-registry-operator/pkg/apis/registry/v1alpha1"
)

// A registry on a ReadWriteMany volume runs all its replicas on one claim,
// which the operator makes: a StatefulSet's volumeClaimTemplates would give
// every pod a claim, and so a volume, of its own, and an image pushed
// through one pod would be unknown to the others.
//
// The claim has the name the first pod's template claim has
// (data-<statefulset>-0, dataClaimName), so a registry that ran on a
// template keeps its images, and the garbage collector mounts the same
// claim either way. Like a StatefulSet's claims it has no owner: it
// outlives the registry, and a registry made again under the same name
// finds its images.

// sharedClaim tells whether reg's replicas share one operator-made claim.
func sharedClaim(reg *v1alpha1.ImageRegistry) bool {
	return s3Storage(reg) == nil && slices.Contains(reg.Spec.PersistentVolumeClaim.AccessModes, corev1.ReadWriteMany)
}

// ensureSharedClaim creates the shared claim if it is missing. An existing
// claim is left as it is: its spec is immutable but for its size, as a
// template claim's is.
func (c *Controller) ensureSharedClaim(ctx context.Context, reg *v1alpha1.ImageRegistry, st *syncState) error {
	if !sharedClaim(reg) {
		return nil
	}
	name := dataClaimName(reg)
	cur, err := lookup(c.claimsLister.PersistentVolumeClaims(reg.Namespace).Get(name))
	if err != nil {
		return err
	}
	if cur != nil {
		if !slices.Contains(cur.Spec.AccessModes, corev1.ReadWriteMany) && replicas(reg) > 1 {
			return badInput(ReasonSharedClaimNotReadWriteMany,
				"PersistentVolumeClaim %s, which the registry's replicas share, was made without ReadWriteMany access (access modes cannot change): delete it (and its images) or run one replica", name)
		}
		return nil
	}
	tmpl := volumeClaimTemplate(reg)
	claim := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: reg.Namespace, Labels: objectLabels(reg)},
		Spec:       tmpl.Spec,
	}
	created, err := c.kubeClient.CoreV1().PersistentVolumeClaims(reg.Namespace).Create(ctx, claim, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("PersistentVolumeClaim %s/%s exists but is not in the cache yet: %w", reg.Namespace, name, err)
	}
	if err != nil {
		return writeError("PersistentVolumeClaim", claim, "create", err)
	}
	klog.FromContext(ctx).V(2).Info("Created", "kind", "PersistentVolumeClaim", "object", klog.KObj(created))
	c.recorder.Eventf(reg, corev1.EventTypeNormal, EventReasonCreated, "Created PersistentVolumeClaim %s", created.GetName())
	return nil
}

// sharedClaimVolume is the pod volume of the shared claim.
func sharedClaimVolume(reg *v1alpha1.ImageRegistry) corev1.Volume {
	return corev1.Volume{Name: dataVolume, VolumeSource: corev1.VolumeSource{
		PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: dataClaimName(reg)},
	}}
}
