package objectcache

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"

	"github.com/image-registry-operator/image-registry-operator/pkg/apis/registry/v1alpha1"
	"github.com/image-registry-operator/image-registry-operator/pkg/credentials"
)

// Sample objects: a push or pull object's Secret and account, rendered by
// package credentials as the controller writes them, with the metadata the
// API server adds.

var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

const (
	regNS   = "infra"
	regHost = "registry.infra.svc.cluster.local"
	regCA   = "-----BEGIN CERTIFICATE-----\nMIIfake\n-----END CERTIFICATE-----\n"
)

// owner is the push or pull object ns/name, with a UID as the API server
// makes them.
func owner(kind credentials.Kind, ns, name string) credentials.Owner {
	return credentials.Owner{Kind: kind, Namespace: ns, Name: name, UID: "0b7f3c2e-1d4a-4f6b-9c8d-00000000002a"}
}

// stored adds what the API server sets on a create.
func stored(m *metav1.ObjectMeta, uid types.UID, rv string, generation int64) {
	m.UID, m.ResourceVersion, m.Generation = uid, rv, generation
	m.CreationTimestamp = metav1.NewTime(t0)
	m.ManagedFields = []metav1.ManagedFieldsEntry{{
		Manager: "image-registry-operator", Operation: metav1.ManagedFieldsOperationUpdate, APIVersion: "v1",
		Time: &m.CreationTimestamp, FieldsType: "FieldsV1",
		FieldsV1: &metav1.FieldsV1{Raw: []byte(`{"f:metadata":{"f:labels":{".":{},"f:app.kubernetes.io/managed-by":{}}}}`)},
	}}
}

// secretContent is what the owner's Secret holds at rotation 1.
func secretContent(o credentials.Owner) credentials.SecretContent {
	return credentials.SecretContent{
		Registry: regHost, CA: regCA, Rotation: 1,
		Password: "password-of-" + o.Name, NextPassword: "next-password-of-" + o.Name,
		RotatedAt: t0,
	}
}

// newSecret is the Secret the controller writes for o under its default
// name, as the API server stores it.
func newSecret(t testing.TB, o credentials.Owner) *corev1.Secret {
	t.Helper()
	s, err := credentials.NewSecret(o, credentials.DefaultSecretName(o.Kind, o.Name), secretContent(o))
	if err != nil {
		t.Fatal(err)
	}
	stored(&s.ObjectMeta, "5e0c1d2a-7b3f-4c8e-9a6d-000000000001", "10", 0)
	return s
}

// accountHashes are the bcrypt hashes of the account at rotation 1.
var accountHashes = []string{"$2a$04$previous", "$2a$04$current", "$2a$04$next"}

// newAccount is the account the controller writes for o, as the API
// server stores it.
func newAccount(o credentials.Owner) *v1alpha1.ImageRegistryAccount {
	a := credentials.NewAccount(o, types.NamespacedName{Namespace: regNS, Name: "registry"}, 1, accountHashes)
	stored(&a.ObjectMeta, "5e0c1d2a-7b3f-4c8e-9a6d-000000000002", "11", 1)
	return a
}

// withVersion returns a copy of s at resourceVersion rv whose next password
// is mark.
func withVersion(s *corev1.Secret, rv, mark string) *corev1.Secret {
	c := s.DeepCopy()
	c.ResourceVersion = rv
	c.Data[credentials.KeyNextPassword] = []byte(mark)
	return c
}

// accountWithVersion returns a copy of a at resourceVersion rv whose last
// hash is mark.
func accountWithVersion(a *v1alpha1.ImageRegistryAccount, rv, mark string) *v1alpha1.ImageRegistryAccount {
	c := a.DeepCopy()
	c.ResourceVersion = rv
	c.Spec.Passwords[len(c.Spec.Passwords)-1] = mark
	return c
}

// trimmedTyped trims obj in place as trim does before compacting: the
// typed form of what the cache holds, as a lister hands it out (no
// managedFields, no apiVersion and kind).
func trimmedTyped(t *testing.T, obj metav1.Object) {
	t.Helper()
	trim(obj)
	obj.SetManagedFields(nil)
	if o, ok := obj.(interface{ GetObjectKind() schema.ObjectKind }); ok {
		o.GetObjectKind().SetGroupVersionKind(schema.GroupVersionKind{})
	}
}

// transformed runs the informer transform on a copy of obj.
func transformed(t *testing.T, obj runtime.Object) any {
	t.Helper()
	out, err := Transform(obj.DeepCopyObject())
	if err != nil {
		t.Fatal(err)
	}
	return out
}
