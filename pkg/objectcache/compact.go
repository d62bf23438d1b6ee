package objectcache

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

	"github.com/image-registry-operator/image-registry-operator/pkg/apis/registry/v1alpha1"
	"github.com/image-registry-operator/image-registry-operator/pkg/credentials"
)

// Compact cache entries. Even trimmed, a typed Secret and account cost the
// informer caches about 3.5 KiB per push or pull object, most of it Go map
// and ObjectMeta overhead around a few short strings. When their metadata
// is exactly what the operator writes (credentials.SecretMeta and
// AccountMeta: nobody else labels, annotates or holds them, the usual
// case), trim stores them as the structs below, which keep only what
// cannot be derived, and the listers expand them back into the trimmed typed
// objects with the same functions. trim keeps the typed form whenever
// expanding would not give back the same object (apart from apiVersion and
// kind, which typed clients set on writes, and managedFields, which the
// caches drop anyway), so nothing an update starts from is ever lost, and a
// label added to credentials reaches entries and expansions alike.
//
// Entries are shared and immutable: expansions hand out the entry's own
// byte slices, and DeepCopyObject copies the struct only.

// compactSecret is a trimmed Secret controlled by a push or pull object.
type compactSecret struct {
	name            string // "": the owner's default Secret name
	uid             compactUID
	resourceVersion string
	generation      int64
	created         int64 // metadata.creationTimestamp, Unix seconds
	secretType      corev1.SecretType
	owner           credentials.Owner // Namespace is the Secret's
	ownerUID        compactUID
	rotatedAt       string // AnnotationRotatedAt
	digest          []byte // digestKey
	password        []byte // nil: no KeyPassword
	nextPassword    []byte // nil: no KeyNextPassword
}

// compactAccount is a trimmed account made by the operator.
type compactAccount struct {
	namespace       string
	uid             compactUID
	resourceVersion string
	generation      int64
	created         int64
	owner           credentials.Owner // UID in ownerUID
	ownerUID        compactUID
	digest          string // digestKey
}

// compactSecretFrom returns the compact form of a trimmed Secret, or nil if
// its expansion would differ from it.
func compactSecretFrom(s *corev1.Secret) *compactSecret {
	ref := metav1.GetControllerOf(s)
	if ref == nil || len(s.OwnerReferences) != 1 {
		return nil
	}
	kind, ok := credentials.KindOf(ref.Kind)
	if !ok {
		return nil
	}
	c := &compactSecret{
		name: s.Name, uid: newCompactUID(s.UID), resourceVersion: s.ResourceVersion,
		generation: s.Generation, created: s.CreationTimestamp.Unix(),
		secretType: canonicalSecretType(s.Type),
		owner:      credentials.Owner{Kind: kind, Namespace: s.Namespace, Name: ref.Name},
		ownerUID:   newCompactUID(ref.UID),
		rotatedAt:  s.Annotations[v1alpha1.AnnotationRotatedAt],
		digest:     s.Data[digestKey],
		password:   s.Data[credentials.KeyPassword], nextPassword: s.Data[credentials.KeyNextPassword],
	}
	if c.name == credentials.DefaultSecretName(kind, ref.Name) {
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
	data := map[string][]byte{digestKey: c.digest}
	if c.password != nil {
		data[credentials.KeyPassword] = c.password
	}
	if c.nextPassword != nil {
		data[credentials.KeyNextPassword] = c.nextPassword
	}
	return &corev1.Secret{ObjectMeta: *c.objectMeta(), Type: c.secretType, Data: data}
}

func (c *compactSecret) objectMeta() *metav1.ObjectMeta {
	owner := c.owner
	owner.UID = c.ownerUID.uid()
	m := credentials.SecretMeta(owner, credentials.SecretName(owner.Kind, owner.Name, c.name), c.rotatedAt)
	m.UID, m.ResourceVersion, m.Generation = c.uid.uid(), c.resourceVersion, c.generation
	m.CreationTimestamp = metav1.Unix(c.created, 0)
	return &m
}

// compactAccountFrom returns the compact form of a trimmed account, or nil
// if its expansion would differ from it.
func compactAccountFrom(a *v1alpha1.ImageRegistryAccount) *compactAccount {
	kind, ns, name, ok := credentials.ParseOwnerKey(a.Annotations[v1alpha1.AnnotationOwner])
	if !ok {
		return nil
	}
	c := &compactAccount{
		namespace: a.Namespace, uid: newCompactUID(a.UID), resourceVersion: a.ResourceVersion,
		generation: a.Generation, created: a.CreationTimestamp.Unix(),
		owner:    credentials.Owner{Kind: kind, Namespace: ns, Name: name},
		ownerUID: newCompactUID(types.UID(a.Annotations[v1alpha1.AnnotationOwnerUID])),
		digest:   a.Annotations[digestKey],
	}
	want := c.account()
	if !equality.Semantic.DeepEqual(want.ObjectMeta, withoutManagedFields(a.ObjectMeta)) ||
		!equality.Semantic.DeepEqual(want.Spec, a.Spec) ||
		!equality.Semantic.DeepEqual(a.Status, v1alpha1.ImageRegistryAccountStatus{}) {
		return nil
	}
	return c
}

// account expands the entry into the trimmed account it was made from.
func (c *compactAccount) account() *v1alpha1.ImageRegistryAccount {
	return &v1alpha1.ImageRegistryAccount{ObjectMeta: *c.objectMeta()}
}

func (c *compactAccount) objectMeta() *metav1.ObjectMeta {
	owner := c.owner
	owner.UID = c.ownerUID.uid()
	m := credentials.AccountMeta(owner, c.namespace)
	m.Annotations[digestKey] = c.digest
	m.UID, m.ResourceVersion, m.Generation = c.uid.uid(), c.resourceVersion, c.generation
	m.CreationTimestamp = metav1.Unix(c.created, 0)
	return &m
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

// canonicalSecretType returns the package's constant for a known type, so
// that entries share its bytes instead of each holding a decoded copy.
func canonicalSecretType(t corev1.SecretType) corev1.SecretType {
	switch t {
	case corev1.SecretTypeOpaque:
		return corev1.SecretTypeOpaque
	case corev1.SecretTypeDockerConfigJson:
		return corev1.SecretTypeDockerConfigJson
	}
	return t
}

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

func (c *compactAccount) GetObjectMeta() metav1.Object { return c.objectMeta() }

func (c *compactAccount) GetObjectKind() schema.ObjectKind { return schema.EmptyObjectKind }

func (c *compactAccount) DeepCopyObject() runtime.Object {
	cp := *c
	return &cp
}
