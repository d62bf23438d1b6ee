package imageregistry

import (
	"context"
	"fmt"
	"slices"

	appsv1 "k8s.io/api/apps/v1"
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
// finds its images. A StatefulSet keeps the layout it was made with
// (decideClaimLayout), as its claim templates cannot change.

// claimLayout is how a registry's pods get their data volume.
type claimLayout int

const (
	// noClaim: S3 holds the blobs.
	noClaim claimLayout = iota
	// claimPerPod: a volumeClaimTemplate, a claim (and volume) per pod.
	claimPerPod
	// oneSharedClaim: every pod mounts the operator-made dataClaimName.
	oneSharedClaim
)

// decideClaimLayout picks the layout for reg. An existing StatefulSet's
// claim templates cannot change, so it keeps the layout it was made with:
// with templates, a claim per pod; without, one shared claim (a registry
// back from S3 or from ReadWriteMany runs one replica on it).
func decideClaimLayout(reg *v1alpha1.ImageRegistry, cur *appsv1.StatefulSet) claimLayout {
	switch {
	case s3Storage(reg) != nil:
		return noClaim
	case cur != nil && len(cur.Spec.VolumeClaimTemplates) > 0:
		return claimPerPod
	case cur != nil || slices.Contains(reg.Spec.PersistentVolumeClaim.AccessModes, corev1.ReadWriteMany):
		return oneSharedClaim
	default:
		return claimPerPod
	}
}

// storageNotShared is the condition of a registry whose replicas each
// have a claim of their own (a StatefulSet made with a claim template, as
// every registry on ReadWriteOnce is): what one pod takes, the others do
// not serve. cur is the StatefulSet. Nil if that is not so.
func storageNotShared(reg *v1alpha1.ImageRegistry, layout claimLayout, cur *appsv1.StatefulSet) error {
	n := replicas(reg)
	if layout != claimPerPod || n < 2 || cur == nil || len(cur.Spec.VolumeClaimTemplates) == 0 {
		return nil
	}
	sts := statefulSetName(reg)
	claims := fmt.Sprintf("%s to %s-%d", dataClaimName(reg), dataVolume+"-"+sts, n-1)
	way := fmt.Sprintf("copy the images of the other claims into %s, then kubectl delete statefulset %s --cascade=orphan (the pods keep serving) and the operator makes it anew with %s shared", dataClaimName(reg), sts, dataClaimName(reg))
	if !slices.Contains(cur.Spec.VolumeClaimTemplates[0].Spec.AccessModes, corev1.ReadWriteMany) {
		// A ReadWriteOnce claim cannot become the shared one.
		way = "make a registry on ReadWriteMany storage or S3 and copy the images over"
	}
	// No retry: nothing changes until the user acts, which brings a sync.
	return &conditionError{reason: ReasonStorageNotShared, warn: true, message: fmt.Sprintf(
		"the %d replicas each mount a claim of their own, %s (the StatefulSet was made with a volume claim template, which cannot change), so images pushed through one pod are missing on the others: run one replica, or %s",
		n, claims, way)}
}

// ensureSharedClaim creates the shared claim if it is missing. An existing
// claim is left as it is: its spec is immutable but for its size, as a
// template claim's is.
func (c *Controller) ensureSharedClaim(ctx context.Context, reg *v1alpha1.ImageRegistry) error {
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
