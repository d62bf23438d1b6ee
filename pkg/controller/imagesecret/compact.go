package imagesecret

import (
	"bytes"
	"encoding/hex"
	"maps"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/image-registry-operator/image-registry-operator/pkg/apis/registry/v1alpha1"
)

// Compact cache entries. Even trimmed, a typed Secret and account cost the
// informer caches about 3.5 KiB per push or pull object, most of it Go map
// and ObjectMeta overhead around a few short strings. When their metadata
// is exactly what the controller writes (the usual case: nobody else
// labels, annotates or holds them), TrimForCache stores them as the structs
// below, which keep only what cannot be derived. The listers of
// CompactSecrets and CompactAccounts expand them back into the trimmed
// typed objects the controllers read. TrimForCache keeps the typed form
// whenever expanding would not give back the same object (apart from
// apiVersion and kind, which typed clients set on writes, and
// managedFields, which the operator's caches drop anyway), so nothing an
// update starts from is ever lost.
//
// Entries are shared and immutable: expansions hand out the entry's own
// byte slices, and DeepCopyObject copies the struct only.

// compactSecret is a trimmed Secret controlled by a push or pull object,
// with the labels, annotation and owner reference desiredSecret writes.
type compactSecret struct {
	name            string // "": the owner's name plus the generated suffix
	namespace       string
	uid             compactUID
	resourceVersion string
	generation      int64
	created         int64 // metadata.creationTimestamp, Unix seconds
	secretType      corev1.SecretType
	ownerKind       string // ImagePushSecret or ImagePullSecret
	ownerName       string
	ownerUID        compactUID
	rotatedAt       string // AnnotationRotatedAt
	digest          []byte // cacheDigestKey
	password        []byte // nil: no KeyPassword
	nextPassword    []byte // nil: no KeyNextPassword
}

// compactAccount is a trimmed account with the labels and annotations
// desiredAccount writes.
type compactAccount struct {
	name, namespace string
	uid             compactUID
	resourceVersion string
	generation      int64
	created         int64
	owner           string     // AnnotationOwner: <kind>/<namespace>/<name>
	ownerUID        compactUID // AnnotationOwnerUID
	digest          string     // cacheDigestKey
	plainLabels     bool       // the owner labels hold the owner's namespace and name, not hashes
}

// compactSecretFrom returns the compact form of a trimmed Secret, or nil if
// its expansion would differ from it.
func compactSecretFrom(s *corev1.Secret) *compactSecret {
	ref := metav1.GetControllerOf(s)
	if ref == nil || len(s.OwnerReferences) != 1 {
		return nil
	}
	c := &compactSecret{
		name: s.Name, namespace: s.Namespace, uid: newCompactUID(s.UID), resourceVersion: s.ResourceVersion,
		generation: s.Generation, created: s.CreationTimestamp.Unix(),
		secretType: canonicalSecretType(s.Type),
		ownerKind:  canonicalOwnerKind(ref.Kind),
		ownerName:  ref.Name, ownerUID: newCompactUID(ref.UID),
		rotatedAt: s.Annotations[AnnotationRotatedAt],
		digest:    s.Data[cacheDigestKey],
		password:  s.Data[KeyPassword], nextPassword: s.Data[KeyNextPassword],
	}
	if c.name == c.derivedName() {
		c.name = ""
	}
	want := c.secret()
	if !equality.Semantic.DeepEqual(want.ObjectMeta, withoutManagedFields(s.ObjectMeta)) ||
		want.Type != s.Type || !maps.EqualFunc(want.Data, s.Data, bytes.Equal) ||
		s.Immutable != nil || s.StringData != nil {
		return nil
	}
	return c
}

// secret expands the entry into the trimmed Secret it was made from.
func (c *compactSecret) secret() *corev1.Secret {
	data := map[string][]byte{cacheDigestKey: c.digest}
	if c.password != nil {
		data[KeyPassword] = c.password
	}
	if c.nextPassword != nil {
		data[KeyNextPassword] = c.nextPassword
	}
	return &corev1.Secret{ObjectMeta: *c.objectMeta(), Type: c.secretType, Data: data}
}

func (c *compactSecret) objectMeta() *metav1.ObjectMeta {
	name := c.name
	if name == "" {
		name = c.derivedName()
	}
	return &metav1.ObjectMeta{
		Name: name, Namespace: c.namespace, UID: c.uid.uid(), ResourceVersion: c.resourceVersion,
		Generation: c.generation, CreationTimestamp: metav1.Unix(c.created, 0),
		Labels:      map[string]string{v1alpha1.LabelManagedBy: v1alpha1.ManagedByValue},
		Annotations: map[string]string{AnnotationRotatedAt: c.rotatedAt},
		OwnerReferences: []metav1.OwnerReference{{
			APIVersion: v1alpha1.SchemeGroupVersion.String(), Kind: c.ownerKind,
			Name: c.ownerName, UID: c.ownerUID.uid(),
			Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true),
		}},
	}
}

// compactAccountFrom returns the compact form of a trimmed account, or nil
// if its expansion would differ from it.
func compactAccountFrom(a *v1alpha1.ImageRegistryAccount) *compactAccount {
	c := &compactAccount{
		name: a.Name, namespace: a.Namespace, uid: newCompactUID(a.UID), resourceVersion: a.ResourceVersion,
		generation: a.Generation, created: a.CreationTimestamp.Unix(),
		owner:    a.Annotations[AnnotationOwner],
		ownerUID: newCompactUID(types.UID(a.Annotations[AnnotationOwnerUID])),
		digest:   a.Annotations[cacheDigestKey],
	}
	if _, ns, name, ok := parseOwner(c.owner); ok {
		c.plainLabels = labelValue(ns) == ns && labelValue(name) == name
	}
	want := c.account()
	if want == nil || !equality.Semantic.DeepEqual(want.ObjectMeta, withoutManagedFields(a.ObjectMeta)) ||
		!equality.Semantic.DeepEqual(want.Spec, a.Spec) ||
		!equality.Semantic.DeepEqual(a.Status, v1alpha1.ImageRegistryAccountStatus{}) {
		return nil
	}
	return c
}

// account expands the entry into the trimmed account it was made from; nil
// if the owner annotation does not parse.
func (c *compactAccount) account() *v1alpha1.ImageRegistryAccount {
	kind, ns, name, ok := parseOwner(c.owner)
	if !ok {
		return nil
	}
	nsLabel, nameLabel := ns, name
	if !c.plainLabels { // validating label values on every expansion costs more than the rest
		nsLabel, nameLabel = labelValue(ns), labelValue(name)
	}
	return &v1alpha1.ImageRegistryAccount{
		ObjectMeta: metav1.ObjectMeta{
			Name: c.name, Namespace: c.namespace, UID: c.uid.uid(), ResourceVersion: c.resourceVersion,
			Generation: c.generation, CreationTimestamp: metav1.Unix(c.created, 0),
			Labels: map[string]string{
				v1alpha1.LabelManagedBy: v1alpha1.ManagedByValue,
				LabelType:               string(kind),
				LabelOwnerNamespace:     nsLabel,
				LabelOwnerName:          nameLabel,
			},
			Annotations: map[string]string{
				AnnotationOwner:    c.owner,
				AnnotationOwnerUID: string(c.ownerUID.uid()),
				cacheDigestKey:     c.digest,
			},
		},
	}
}

// derivedName is the owner's default Secret name.
func (c *compactSecret) derivedName() string {
	kind := KindPush
	if c.ownerKind == pullObjectKind {
		kind = KindPull
	}
	return DefaultSecretName(kind, c.ownerName)
}

// compactUID holds a UID the API server generated (a lowercase UUID) in 16
// bytes, and any other UID as it is.
type compactUID struct {
	uuid  [16]byte
	other types.UID
}

func newCompactUID(u types.UID) compactUID {
	var c compactUID
	if len(u) == 36 && u[8] == '-' && u[13] == '-' && u[18] == '-' && u[23] == '-' {
		hexDigits := string(u[0:8]) + string(u[9:13]) + string(u[14:18]) + string(u[19:23]) + string(u[24:])
		if _, err := hex.Decode(c.uuid[:], []byte(hexDigits)); err == nil && c.uuid != [16]byte{} && c.uid() == u {
			return c
		}
	}
	return compactUID{other: u}
}

func (c compactUID) uid() types.UID {
	if c.uuid == [16]byte{} {
		return c.other
	}
	h := hex.EncodeToString(c.uuid[:])
	return types.UID(h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:])
}

func withoutManagedFields(m metav1.ObjectMeta) metav1.ObjectMeta {
	m.ManagedFields = nil
	return m
}

// canonicalSecretType and canonicalOwnerKind return the package's constant
// for a known value, so that entries share its bytes instead of each
// holding a decoded copy.
func canonicalSecretType(t corev1.SecretType) corev1.SecretType {
	switch t {
	case corev1.SecretTypeOpaque:
		return corev1.SecretTypeOpaque
	case corev1.SecretTypeDockerConfigJson:
		return corev1.SecretTypeDockerConfigJson
	}
	return t
}

func canonicalOwnerKind(k string) string {
	switch k {
	case pushObjectKind:
		return pushObjectKind
	case pullObjectKind:
		return pullObjectKind
	}
	return k
}

const (
	pushObjectKind = "ImagePushSecret"
	pullObjectKind = "ImagePullSecret"
)

// The informers' key and index functions and the controllers' event
// handlers reach an entry's metadata through meta.Accessor, which accepts a
// metav1.ObjectMetaAccessor; runtime.Object is there for client-go code
// that copies cached objects (the cache mutation detector).

// GetObjectMeta builds the metadata alone: the informers call it for keys
// and indexes on every event.
func (c *compactSecret) GetObjectMeta() metav1.Object { return c.objectMeta() }

func (c *compactSecret) GetObjectKind() schema.ObjectKind { return schema.EmptyObjectKind }

func (c *compactSecret) DeepCopyObject() runtime.Object {
	cp := *c // every field is immutable once cached
	return &cp
}

func (c *compactAccount) GetObjectMeta() metav1.Object {
	if a := c.account(); a != nil {
		return &a.ObjectMeta
	}
	return &metav1.ObjectMeta{Name: c.name, Namespace: c.namespace}
}

func (c *compactAccount) GetObjectKind() schema.ObjectKind { return schema.EmptyObjectKind }

func (c *compactAccount) DeepCopyObject() runtime.Object {
	cp := *c
	return &cp
}
