package imageregistry

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"

	"github.com/image-registry-operator/image-registry-operator/pkg/apis/registry/v1alpha1"
	"github.com/image-registry-operator/image-registry-operator/pkg/pki"
)

// How the registry pods and the garbage collector reach S3: the
// credentials through the environment (usercredentials.go digests them
// into the pod template) and, with spec.storage.s3.caBundle, a private CA
// beside the system's roots.
const (
	s3CAVolume = "s3-ca"
	// s3CADir lies beside the other mounts (as tlsDir does), not inside
	// one: a mount point inside a read-only ConfigMap volume cannot be made.
	s3CADir  = "/etc/registry-s3-ca"
	s3CAFile = "ca.crt"
	// defaultCABundleKey is caBundle's key when it names none.
	defaultCABundleKey = "ca.crt"
	// systemCertDir holds the system roots in the registry image. Go reads
	// the first system bundle file it finds and every file in the
	// directories SSL_CERT_DIR lists, which replace its default ones: so
	// the system directory is listed again, and the CA joins the roots.
	systemCertDir = "/etc/ssl/certs"
)

// Condition reasons of spec.storage.s3.caBundle.
const (
	// ReasonS3CABundleNotFound (bad input): the ConfigMap or its key is missing.
	ReasonS3CABundleNotFound = "S3CABundleNotFound"
	// ReasonInvalidS3CABundle (bad input): the key holds no PEM certificate.
	ReasonInvalidS3CABundle = "InvalidS3CABundle"
)

func caBundleKey(b *v1alpha1.ConfigMapKeyRef) string {
	if b.Key == "" {
		return defaultCABundleKey
	}
	return b.Key
}

// s3Access is what a container needs to reach reg's S3 storage: its
// environment, and the volumes and mounts of the CA bundle. All nil
// without S3.
func s3Access(reg *v1alpha1.ImageRegistry) ([]corev1.EnvVar, []corev1.Volume, []corev1.VolumeMount) {
	s3 := s3Storage(reg)
	if s3 == nil {
		return nil, nil, nil
	}
	env := []corev1.EnvVar{
		secretEnv("REGISTRY_STORAGE_S3_ACCESSKEY", s3.CredentialsSecret, s3AccessKeyIDKey),
		secretEnv("REGISTRY_STORAGE_S3_SECRETKEY", s3.CredentialsSecret, s3SecretAccessKeyKey),
	}
	b := s3.CABundle
	if b == nil {
		return env, nil, nil
	}
	env = append(env, corev1.EnvVar{Name: "SSL_CERT_DIR", Value: systemCertDir + ":" + s3CADir})
	volume := corev1.Volume{Name: s3CAVolume, VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
		LocalObjectReference: corev1.LocalObjectReference{Name: b.Name},
		Items:                []corev1.KeyToPath{{Key: caBundleKey(b), Path: s3CAFile}},
		DefaultMode:          ptr.To(configFileMode),
	}}}
	mount := corev1.VolumeMount{Name: s3CAVolume, MountPath: s3CADir, ReadOnly: true}
	return env, []corev1.Volume{volume}, []corev1.VolumeMount{mount}
}

// readS3CABundle reads spec.storage.s3.caBundle into st.s3CA, so that the
// pods roll when it changes (configHash). The ConfigMap informer sees every
// ConfigMap of the namespace; a change enqueues the registry
// (indexByConfigMaps).
func (c *Controller) readS3CABundle(_ context.Context, reg *v1alpha1.ImageRegistry, st *syncState) error {
	s3 := s3Storage(reg)
	if s3 == nil || s3.CABundle == nil {
		return nil
	}
	b := s3.CABundle
	cm, err := lookup(c.configMapsLister.ConfigMaps(reg.Namespace).Get(b.Name))
	if err != nil {
		return err
	}
	if cm == nil {
		return badInput(ReasonS3CABundleNotFound, "ConfigMap %s (spec.storage.s3.caBundle) not found", b.Name)
	}
	bundle, ok := cm.Data[caBundleKey(b)]
	if !ok {
		return badInput(ReasonS3CABundleNotFound, "ConfigMap %s (spec.storage.s3.caBundle) has no key %s", b.Name, caBundleKey(b))
	}
	if certs, err := pki.ParseCertificates([]byte(bundle)); err != nil || len(certs) == 0 {
		return badInput(ReasonInvalidS3CABundle, "ConfigMap %s key %s (spec.storage.s3.caBundle) holds no PEM certificate", b.Name, caBundleKey(b))
	}
	st.s3CA = []byte(bundle)
	return nil
}
