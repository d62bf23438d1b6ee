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

// Keys of the S3 and upstream credentials Secrets.
const (
	s3AccessKeyIDKey     = "accessKeyID"
	s3SecretAccessKeyKey = "secretAccessKey"
	proxyUsernameKey     = "username"
	proxyPasswordKey     = "password"
)

// Warning event reasons of the users' credentials Secrets.
const (
	// EventReasonS3CredentialsNotFound: spec.storage.s3.credentialsSecret
	// names no Secret.
	EventReasonS3CredentialsNotFound = "S3CredentialsNotFound"
	// EventReasonInvalidS3Credentials: the Secret lacks accessKeyID or
	// secretAccessKey.
	EventReasonInvalidS3Credentials = "InvalidS3Credentials"
	// EventReasonProxyCredentialsNotFound: spec.proxy.credentialsSecret
	// names no Secret.
	EventReasonProxyCredentialsNotFound = "ProxyCredentialsNotFound"
	// EventReasonInvalidProxyCredentials: the Secret lacks username or
	// password.
	EventReasonInvalidProxyCredentials = "InvalidProxyCredentials"
)

// userCredentials is a user's Secret whose keys reach the registry
// container through its environment (statefulset.go), which the container
// reads only at start.
type userCredentials struct {
	// field is the spec field that names the Secret, for messages.
	field      string
	secretName string
	keys       []string
	// annotation on the pod template carries the keys' digest.
	annotation                    string
	notFoundReason, invalidReason string
}

// userCredentialsOf lists the credentials Secrets reg's pods read.
func userCredentialsOf(reg *v1alpha1.ImageRegistry) []userCredentials {
	var creds []userCredentials
	if s3 := s3Storage(reg); s3 != nil {
		creds = append(creds, userCredentials{
			field: "spec.storage.s3.credentialsSecret", secretName: s3.CredentialsSecret,
			keys:           []string{s3AccessKeyIDKey, s3SecretAccessKeyKey},
			annotation:     v1alpha1.AnnotationS3CredentialsHash,
			notFoundReason: EventReasonS3CredentialsNotFound, invalidReason: EventReasonInvalidS3Credentials,
		})
	}
	if p := reg.Spec.Proxy; p != nil && p.CredentialsSecret != "" {
		creds = append(creds, userCredentials{
			field: "spec.proxy.credentialsSecret", secretName: p.CredentialsSecret,
			keys:           []string{proxyUsernameKey, proxyPasswordKey},
			annotation:     v1alpha1.AnnotationProxyCredentialsHash,
			notFoundReason: EventReasonProxyCredentialsNotFound, invalidReason: EventReasonInvalidProxyCredentials,
		})
	}
	return creds
}

// annotateUserCredentials reads each credentials Secret of reg and sets
// its digest annotation on desired's pod template, so that changing the
// credentials rolls the pods. A missing Secret or key is a Warning event
// and no annotation: nothing else waits for it.
//
// The Secrets are the user's and carry no managed-by label, so the
// operator's Secret informer does not see them: they are read from the API
// at every sync and re-read every UserSecretRecheckInterval (5 minutes), as
// a user's TLS Secret is. A credentials Secret labelled like the Secrets
// cert-manager writes for a registry (app.kubernetes.io/managed-by=
// image-registry-operator and registry.mgoltzsche.github.com/imageregistry=
// <registry name>) is watched, and a change rolls the pods at once.
//
// The digest is an HMAC keyed with the registry's http.secret: the pod
// template is readable by more people than the Secret, and a plain hash of
// a credential would let them test guesses offline.
func (c *Controller) annotateUserCredentials(ctx context.Context, reg *v1alpha1.ImageRegistry, st *syncState, desired *appsv1.StatefulSet) error {
	creds := userCredentialsOf(reg)
	if len(creds) == 0 {
		return nil
	}
	st.requeueNoLaterThan(st.now.Add(c.opts.UserSecretRecheckInterval))
	for _, uc := range creds {
		digest, err := c.userCredentialsDigest(ctx, reg, st, uc)
		if err != nil {
			return err
		}
		if digest == "" {
			continue
		}
		if desired.Spec.Template.Annotations == nil {
			desired.Spec.Template.Annotations = map[string]string{}
		}
		desired.Spec.Template.Annotations[uc.annotation] = digest
	}
	return nil
}

// userCredentialsDigest returns the HMAC of uc's keys, or "" after a
// Warning event when the Secret or a key is missing.
func (c *Controller) userCredentialsDigest(ctx context.Context, reg *v1alpha1.ImageRegistry, st *syncState, uc userCredentials) (string, error) {
	s, err := c.kubeClient.CoreV1().Secrets(reg.Namespace).Get(ctx, uc.secretName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		// The rest is kept in shape; the registry containers wait for the
		// Secret as Kubernetes makes them (CreateContainerConfigError), and
		// the Ready condition says the rollout is not through.
		c.recorder.Eventf(reg, corev1.EventTypeWarning, uc.notFoundReason,
			"Secret %s (%s) not found: the registry pods cannot start", uc.secretName, uc.field)
		return "", nil
	}
	if err != nil {
		return "", err
	}
	for _, k := range uc.keys {
		if len(s.Data[k]) == 0 {
			c.recorder.Eventf(reg, corev1.EventTypeWarning, uc.invalidReason,
				"Secret %s (%s) has no key %s: the registry pods cannot start", uc.secretName, uc.field, k)
			return "", nil
		}
	}
	mac := hmac.New(sha256.New, st.httpSecret)
	for _, k := range uc.keys {
		b := s.Data[k]
		_ = binary.Write(mac, binary.BigEndian, uint64(len(b)))
		mac.Write(b)
	}
	return hex.EncodeToString(mac.Sum(nil)), nil
}
