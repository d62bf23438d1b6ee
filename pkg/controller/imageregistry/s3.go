package imageregistry

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/image-registry-operator/image-registry-operator/pkg/apis/registry/v1alpha1"
)

// Keys of the S3 credentials Secret.
const (
	s3AccessKeyIDKey     = "accessKeyID"
	s3SecretAccessKeyKey = "secretAccessKey"
)

// Warning event reasons of the S3 credentials Secret.
const (
	// EventReasonS3CredentialsNotFound: spec.storage.s3.credentialsSecret
	// names no Secret.
	EventReasonS3CredentialsNotFound = "S3CredentialsNotFound"
	// EventReasonInvalidS3Credentials: the Secret lacks accessKeyID or
	// secretAccessKey.
	EventReasonInvalidS3Credentials = "InvalidS3Credentials"
)

// annotateS3Credentials reads the S3 credentials Secret and sets
// v1alpha1.AnnotationS3CredentialsHash on desired's pod template. A missing Secret
// or key is a Warning event and no annotation: nothing else waits for it.
//
// The Secret is the user's and carries no managed-by label, so the
// operator's Secret informer does not see it: it is read from the API at
// every sync and re-read every UserSecretRecheckInterval (5 minutes), as a
// user's TLS Secret is. A credentials Secret labelled like the Secrets
// cert-manager writes for a registry (app.kubernetes.io/managed-by=
// image-registry-operator and registry.mgoltzsche.github.com/imageregistry=
// <registry name>) is watched, and a change rolls the pods at once.
//
// The digest is an HMAC keyed with the registry's http.secret: the pod
// template is readable by more people than the Secret, and a plain hash of
// a credential would let them test guesses offline.
func (c *Controller) annotateS3Credentials(ctx context.Context, reg *v1alpha1.ImageRegistry, st *syncState, desired *appsv1.StatefulSet) error {
	s3 := s3Storage(reg)
	if s3 == nil {
		return nil
	}
	st.requeueNoLaterThan(st.now.Add(c.opts.UserSecretRecheckInterval))
	s, err := c.kubeClient.CoreV1().Secrets(reg.Namespace).Get(ctx, s3.CredentialsSecret, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		// The rest is kept in shape; the registry containers wait for the
		// Secret as Kubernetes makes them (CreateContainerConfigError), and
		// the Ready condition says the rollout is not through.
		c.recorder.Eventf(reg, corev1.EventTypeWarning, EventReasonS3CredentialsNotFound,
			"S3 credentials Secret %s (spec.storage.s3.credentialsSecret) not found: the registry pods cannot start", s3.CredentialsSecret)
		return nil
	}
	if err != nil {
		return err
	}
	for _, k := range []string{s3AccessKeyIDKey, s3SecretAccessKeyKey} {
		if len(s.Data[k]) == 0 {
			c.recorder.Eventf(reg, corev1.EventTypeWarning, EventReasonInvalidS3Credentials,
				"S3 credentials Secret %s has no key %s: the registry pods cannot start", s3.CredentialsSecret, k)
			return nil
		}
	}
	mac := hmac.New(sha256.New, st.httpSecret)
	for _, b := range [][]byte{s.Data[s3AccessKeyIDKey], s.Data[s3SecretAccessKeyKey]} {
		_ = binary.Write(mac, binary.BigEndian, uint64(len(b)))
		mac.Write(b)
	}
	if desired.Spec.Template.Annotations == nil {
		desired.Spec.Template.Annotations = map[string]string{}
	}
	desired.Spec.Template.Annotations[v1alpha1.AnnotationS3CredentialsHash] = hex.EncodeToString(mac.Sum(nil))
	return nil
}
