package imagesecret

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/image-registry-operator/image-registry-operator/pkg/apis/registry/v1alpha1"
)

// Keys of the generated Secret besides the docker config.
const (
	KeyRegistry     = "registry"
	KeyUsername     = "username"
	KeyPassword     = "password"
	KeyNextPassword = "nextpassword"
	KeyCA           = "ca.crt"
	// KeyPushConfig holds a ~/.docker/config.json in push Secrets.
	KeyPushConfig = "config.json"
)

func (c *Controller) secretName(cr *imageSecret) string {
	if cr.spec.SecretName != "" {
		return cr.spec.SecretName
	}
	return DefaultSecretName(c.kind, cr.meta.Name)
}

// DefaultSecretName is the name of the Secret generated for the object of
// the kind named name unless its spec names one.
func DefaultSecretName(kind Kind, name string) string {
	return name + "-image-" + string(kind) + "-secret"
}

func username(cr *imageSecret, rotation int64) string {
	return fmt.Sprintf("%s/%s/%d", cr.meta.Namespace, cr.meta.Name, rotation)
}

type dockerConfig struct {
	Auths map[string]dockerAuth `json:"auths"`
}

type dockerAuth struct {
	Username string `json:"username"`
	Password string `json:"password"`
	Auth     string `json:"auth"`
}

// desiredSecret renders the Secret for the status' rotation with the
// plaintexts of d. rotatedAt is when its password became current there.
func (c *Controller) desiredSecret(cr *imageSecret, reg *v1alpha1.ImageRegistry, d decision, rotatedAt time.Time) (*corev1.Secret, error) {
	user := username(cr, cr.status.Rotation)
	host := reg.Status.Hostname
	cfg, err := json.Marshal(dockerConfig{Auths: map[string]dockerAuth{host: {
		Username: user,
		Password: d.cur,
		Auth:     base64.StdEncoding.EncodeToString([]byte(user + ":" + d.cur)),
	}}})
	if err != nil {
		return nil, fmt.Errorf("rendering docker config for %s/%s: %w", cr.meta.Namespace, cr.meta.Name, err)
	}
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Name:            c.secretName(cr),
			Namespace:       cr.meta.Namespace,
			Labels:          map[string]string{v1alpha1.LabelManagedBy: v1alpha1.ManagedByValue},
			Annotations:     map[string]string{AnnotationRotatedAt: rotatedAt.UTC().Format(time.RFC3339Nano)},
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(cr.meta, c.objects.groupVersionKind())},
		},
		Data: map[string][]byte{
			KeyRegistry:     []byte(host),
			KeyUsername:     []byte(user),
			KeyPassword:     []byte(d.cur),
			KeyNextPassword: []byte(d.next),
			KeyCA:           []byte(reg.Status.CA),
		},
	}
	if c.kind == KindPull {
		s.Type = corev1.SecretTypeDockerConfigJson
		s.Data[corev1.DockerConfigJsonKey] = cfg
	} else {
		s.Type = corev1.SecretTypeOpaque
		s.Data[KeyPushConfig] = cfg
	}
	return s, nil
}

// controlledBy tells whether the Secret is ours to write.
func controlledBy(s *corev1.Secret, cr *imageSecret) bool {
	ref := metav1.GetControllerOf(s)
	return ref != nil && ref.UID == cr.meta.UID
}

// secretUpToDate compares what the controller owns of a Secret.
func secretUpToDate(existing, desired *corev1.Secret) bool {
	if existing.Type != desired.Type || !secretDataEqual(existing.Data, desired.Data) {
		return false
	}
	return hasMetadata(existing, desired)
}

// mergeSecret returns a copy of existing (which may come trimmed from the
// cache) with the desired content; labels, annotations and owner references
// of others are kept.
func mergeSecret(existing, desired *corev1.Secret) *corev1.Secret {
	s := existing.DeepCopy()
	s.Type = desired.Type
	s.Data = desired.Data
	s.StringData = nil
	mergeMetadata(s, desired)
	return s
}
