// Package credentials defines, once, the names and shapes of the objects
// that carry rotating registry credentials: the Secret generated for an
// ImagePushSecret or ImagePullSecret and the ImageRegistryAccount that
// mirrors its password hashes. The controller builds them with NewSecret and
// NewAccount; the informer caches (pkg/objectcache) rebuild their metadata
// with SecretMeta and AccountMeta; the bench replays them. Adding a label
// here reaches all three.
//
// It imports only the API types.
package credentials

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/image-registry-operator/image-registry-operator/pkg/apis/registry/v1alpha1"
)

// Kind is push (ImagePushSecret) or pull (ImagePullSecret). Its value is
// also the type label of the accounts and the middle of generated names.
type Kind string

const (
	KindPush Kind = "push"
	KindPull Kind = "pull"
)

// ObjectKind is the API kind of the objects of this kind.
func (k Kind) ObjectKind() string {
	if k == KindPull {
		return v1alpha1.ImagePullSecretKind
	}
	return v1alpha1.ImagePushSecretKind
}

// KindOf returns the Kind whose objects have the API kind objectKind.
func KindOf(objectKind string) (Kind, bool) {
	switch objectKind {
	case v1alpha1.ImagePushSecretKind:
		return KindPush, true
	case v1alpha1.ImagePullSecretKind:
		return KindPull, true
	}
	return "", false
}

// Keys of the generated Secret besides the docker config.
const (
	KeyRegistry     = "registry"
	KeyUsername     = "username"
	KeyPassword     = "password"
	KeyNextPassword = "nextpassword"
	KeyCA           = "ca.crt"
	// KeyPushConfig holds a ~/.docker/config.json in push Secrets; pull
	// Secrets hold it under corev1.DockerConfigJsonKey.
	KeyPushConfig = "config.json"
)

// Owner is the push or pull object generated objects belong to.
type Owner struct {
	Kind      Kind
	Namespace string
	Name      string
	UID       types.UID
}

// DefaultSecretName is the name of the Secret generated for an object
// whose spec names none.
func DefaultSecretName(kind Kind, name string) string {
	return name + "-image-" + string(kind) + "-secret"
}

// SecretName is specName, or the default name if it is empty.
func SecretName(kind Kind, name, specName string) string {
	if specName != "" {
		return specName
	}
	return DefaultSecretName(kind, name)
}

// Username is the login name of the password of a rotation.
func Username(namespace, name string, rotation int64) string {
	return fmt.Sprintf("%s/%s/%d", namespace, name, rotation)
}

// AccountName is the name of the account mirroring the object:
// "<kind>.<namespace>.<name>", unique per kind and object, since namespaces
// contain no dots, and a DNS subdomain since name is one. Longer than 253
// characters it becomes a prefix plus a hash of the whole.
func AccountName(kind Kind, namespace, name string) string {
	const maxLen = 253
	full := string(kind) + "." + namespace + "." + name
	if len(full) <= maxLen {
		return full
	}
	sum := sha256.Sum256([]byte(full))
	suffix := hex.EncodeToString(sum[:8])
	prefix := strings.TrimRight(full[:maxLen-len(suffix)-1], ".-")
	return prefix + "." + suffix
}

// OwnerKey is the AnnotationOwner value of the object's account.
func OwnerKey(kind Kind, namespace, name string) string {
	return string(kind) + "/" + namespace + "/" + name
}

// ParseOwnerKey reverses OwnerKey.
func ParseOwnerKey(s string) (kind Kind, namespace, name string, ok bool) {
	parts := strings.SplitN(s, "/", 3)
	if len(parts) != 3 || parts[1] == "" || parts[2] == "" {
		return "", "", "", false
	}
	return Kind(parts[0]), parts[1], parts[2], true
}

// SecretMeta is the metadata the operator writes on a generated Secret.
// rotatedAt is the AnnotationRotatedAt value.
func SecretMeta(owner Owner, secretName, rotatedAt string) metav1.ObjectMeta {
	t := true
	return metav1.ObjectMeta{
		Name:        secretName,
		Namespace:   owner.Namespace,
		Labels:      map[string]string{v1alpha1.LabelManagedBy: v1alpha1.ManagedByValue},
		Annotations: map[string]string{v1alpha1.AnnotationRotatedAt: rotatedAt},
		OwnerReferences: []metav1.OwnerReference{{
			APIVersion:         v1alpha1.SchemeGroupVersion.String(),
			Kind:               owner.Kind.ObjectKind(),
			Name:               owner.Name,
			UID:                owner.UID,
			Controller:         &t,
			BlockOwnerDeletion: &t,
		}},
	}
}

// SecretContent is what a generated Secret holds.
type SecretContent struct {
	// Registry is the registry's hostname, CA its CA bundle (PEM).
	Registry, CA string
	Rotation     int64
	// Password and NextPassword are the plaintexts.
	Password, NextPassword string
	// RotatedAt is when Password became current in the Secret.
	RotatedAt time.Time
}

type dockerConfig struct {
	Auths map[string]dockerAuth `json:"auths"`
}

type dockerAuth struct {
	Username string `json:"username"`
	Password string `json:"password"`
	Auth     string `json:"auth"`
}

// NewSecret renders the generated Secret: a docker config (push: KeyPushConfig
// in an Opaque Secret; pull: a kubernetes.io/dockerconfigjson Secret) and
// the parts on their own keys.
func NewSecret(owner Owner, secretName string, c SecretContent) (*corev1.Secret, error) {
	user := Username(owner.Namespace, owner.Name, c.Rotation)
	cfg, err := json.Marshal(dockerConfig{Auths: map[string]dockerAuth{c.Registry: {
		Username: user,
		Password: c.Password,
		Auth:     base64.StdEncoding.EncodeToString([]byte(user + ":" + c.Password)),
	}}})
	if err != nil {
		return nil, fmt.Errorf("rendering docker config for %s/%s: %w", owner.Namespace, owner.Name, err)
	}
	s := &corev1.Secret{
		ObjectMeta: SecretMeta(owner, secretName, c.RotatedAt.UTC().Format(time.RFC3339Nano)),
		Data: map[string][]byte{
			KeyRegistry:     []byte(c.Registry),
			KeyUsername:     []byte(user),
			KeyPassword:     []byte(c.Password),
			KeyNextPassword: []byte(c.NextPassword),
			KeyCA:           []byte(c.CA),
		},
	}
	if owner.Kind == KindPull {
		s.Type = corev1.SecretTypeDockerConfigJson
		s.Data[corev1.DockerConfigJsonKey] = cfg
	} else {
		s.Type = corev1.SecretTypeOpaque
		s.Data[KeyPushConfig] = cfg
	}
	return s, nil
}

// AccountMeta is the metadata the operator writes on a generated account in
// registryNamespace.
func AccountMeta(owner Owner, registryNamespace string) metav1.ObjectMeta {
	return metav1.ObjectMeta{
		Name:      AccountName(owner.Kind, owner.Namespace, owner.Name),
		Namespace: registryNamespace,
		Labels: map[string]string{
			v1alpha1.LabelManagedBy:      v1alpha1.ManagedByValue,
			v1alpha1.LabelType:           string(owner.Kind),
			v1alpha1.LabelOwnerNamespace: LabelValue(owner.Namespace),
			v1alpha1.LabelOwnerName:      LabelValue(owner.Name),
		},
		Annotations: map[string]string{
			v1alpha1.AnnotationOwner:    OwnerKey(owner.Kind, owner.Namespace, owner.Name),
			v1alpha1.AnnotationOwnerUID: string(owner.UID),
		},
	}
}

// NewAccount is the account that publishes the hashes of a rotation to the
// authenticator of the registry the owner uses, and to no other.
func NewAccount(owner Owner, registry types.NamespacedName, rotation int64, hashes []string) *v1alpha1.ImageRegistryAccount {
	return &v1alpha1.ImageRegistryAccount{
		ObjectMeta: AccountMeta(owner, registry.Namespace),
		Spec: v1alpha1.ImageRegistryAccountSpec{
			Username:   owner.Namespace + "/" + owner.Name,
			Rotation:   &rotation,
			Passwords:  append([]string(nil), hashes...),
			Registries: []string{registry.Name},
			Labels: map[string][]string{
				"namespace": {owner.Namespace},
				"name":      {owner.Name},
				"type":      {string(owner.Kind)},
			},
		},
	}
}

// LabelValue returns v if it is a valid label value, else a hash of it, so
// that long names never produce an invalid (and then empty) selector.
func LabelValue(v string) string {
	if validLabelValue(v) {
		return v
	}
	sum := sha256.Sum256([]byte(v))
	return hex.EncodeToString(sum[:20])
}

// validLabelValue is the rule of validation.IsValidLabelValue without its
// regular expression, which costs more than the rest of a cache expansion:
// at most 63 of [A-Za-z0-9._-], starting and ending alphanumeric.
func validLabelValue(v string) bool {
	if len(v) > 63 {
		return false
	}
	alnum := func(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' }
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !alnum(c) && c != '-' && c != '_' && c != '.' {
			return false
		}
	}
	return v == "" || alnum(v[0]) && alnum(v[len(v)-1])
}
