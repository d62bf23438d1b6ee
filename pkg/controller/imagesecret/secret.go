package imagesecret

import (
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/image-registry-operator/image-registry-operator/pkg/apis/registry/v1alpha1"
	"github.com/image-registry-operator/image-registry-operator/pkg/controller/objectmeta"
	"github.com/image-registry-operator/image-registry-operator/pkg/credentials"
	"github.com/image-registry-operator/image-registry-operator/pkg/objectcache"
)

func (c *Controller) secretName(cr *imageSecret) string {
	return credentials.SecretName(c.kind, cr.meta.Name, cr.spec.SecretName)
}

func (c *Controller) owner(cr *imageSecret) credentials.Owner {
	return credentials.Owner{Kind: c.kind, Namespace: cr.meta.Namespace, Name: cr.meta.Name, UID: cr.meta.UID}
}

// desiredSecret renders the Secret for the status' rotation with the
// plaintexts of d. rotatedAt is when its password became current there.
func (c *Controller) desiredSecret(cr *imageSecret, reg *v1alpha1.ImageRegistry, d decision, rotatedAt time.Time) (*corev1.Secret, error) {
	return credentials.NewSecret(c.owner(cr), c.secretName(cr), credentials.SecretContent{
		Registry:     reg.Status.Hostname,
		CA:           reg.Status.CA,
		Rotation:     cr.status.Rotation,
		Password:     d.cur,
		NextPassword: d.next,
		RotatedAt:    rotatedAt,
	})
}

// controlledBy tells whether the Secret is ours to write.
func controlledBy(s *corev1.Secret, cr *imageSecret) bool {
	ref := metav1.GetControllerOf(s)
	return ref != nil && ref.UID == cr.meta.UID
}

// secretUpToDate compares what the controller owns of a Secret.
func secretUpToDate(existing, desired *corev1.Secret) bool {
	if existing.Type != desired.Type || !objectcache.SecretDataEqual(existing.Data, desired.Data) {
		return false
	}
	return objectmeta.Has(existing, desired)
}

// mergeSecret returns a copy of existing (which may come trimmed from the
// cache) with the desired content; labels, annotations and owner references
// of others are kept.
func mergeSecret(existing, desired *corev1.Secret) *corev1.Secret {
	s := existing.DeepCopy()
	s.Type = desired.Type
	s.Data = desired.Data
	s.StringData = nil
	objectmeta.Merge(s, desired)
	return s
}
