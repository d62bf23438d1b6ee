package imagesecret

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"hash"
	"maps"
	"slices"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/image-registry-operator/image-registry-operator/pkg/apis/registry/v1alpha1"
)

// The informer caches hold one Secret and one account per push or pull
// object, and most of their bytes (docker config, CA, the account's spec)
// only matter when compared with what the controller would write.
// TrimForCache keeps what decisions read (metadata, the Secret's two
// passwords) and replaces the rest by a SHA-256 digest, which the up-to-date
// checks compare instead. Writes never start from the trimmed part: updates
// replace a Secret's data and an account's spec wholesale.

// cacheDigestKey holds the digest: in a trimmed Secret's data, in a trimmed
// account's annotations. It is neither a valid data key nor a valid
// annotation key, so the API server would refuse it should it ever leak
// into a write.
const cacheDigestKey = "#cache.sha256"

// TrimForCache is an informer transform for the Secret and
// ImageRegistryAccount informers this controller reads. It trims only
// Secrets controlled by a push or pull object and accounts the operator
// manages, and returns them as compact entries (compact.go) where an update
// starting from the expanded entry loses nothing; everything else passes
// unchanged. Informers it fills must be read
// through CompactSecrets and CompactAccounts.
func TrimForCache(obj interface{}) (interface{}, error) {
	switch o := obj.(type) {
	case *corev1.Secret:
		ref := metav1.GetControllerOf(o)
		if ref == nil || ref.APIVersion != v1alpha1.SchemeGroupVersion.String() || (ref.Kind != pushObjectKind && ref.Kind != pullObjectKind) {
			return obj, nil
		}
		if _, trimmed := o.Data[cacheDigestKey]; trimmed {
			return obj, nil
		}
		kept := map[string][]byte{cacheDigestKey: secretDigest(o.Data)}
		for _, k := range []string{KeyPassword, KeyNextPassword} {
			if v, ok := o.Data[k]; ok {
				kept[k] = v
			}
		}
		o.Data = kept
		if c := compactSecretFrom(o); c != nil {
			return c, nil
		}
	case *v1alpha1.ImageRegistryAccount:
		if o.Labels[v1alpha1.LabelManagedBy] != v1alpha1.ManagedByValue {
			return obj, nil
		}
		if _, trimmed := o.Annotations[cacheDigestKey]; trimmed {
			return obj, nil
		}
		if o.Annotations == nil {
			o.Annotations = map[string]string{}
		}
		o.Annotations[cacheDigestKey] = accountSpecDigest(&o.Spec)
		o.Spec = v1alpha1.ImageRegistryAccountSpec{}
		if c := compactAccountFrom(o); c != nil {
			return c, nil
		}
	}
	return obj, nil
}

// digester writes length-prefixed fields into a SHA-256, so that no two
// different field sequences produce the same stream.
type digester struct{ h hash.Hash }

func newDigester() digester { return digester{sha256.New()} }

func (d digester) uint(v uint64) {
	d.h.Write(binary.AppendUvarint(nil, v))
}

func (d digester) str(s string) {
	d.uint(uint64(len(s)))
	d.h.Write([]byte(s))
}

func (d digester) sum() []byte { return d.h.Sum(nil) }

// secretDigest is a digest of every key and value.
func secretDigest(data map[string][]byte) []byte {
	d := newDigester()
	for _, k := range slices.Sorted(maps.Keys(data)) {
		d.str(k)
		d.str(string(data[k]))
	}
	return d.sum()
}

// accountSpecDigest digests the spec field by field with the API's
// equalities: a nil and an empty list or map are the same, times count in
// seconds as they are stored.
func accountSpecDigest(spec *v1alpha1.ImageRegistryAccountSpec) string {
	d := newDigester()
	d.str(spec.Username)
	if spec.Rotation != nil {
		d.uint(1)
		d.uint(uint64(*spec.Rotation))
	} else {
		d.uint(0)
	}
	d.uint(uint64(len(spec.Passwords)))
	for _, p := range spec.Passwords {
		d.str(p)
	}
	d.uint(uint64(len(spec.Labels)))
	for _, k := range slices.Sorted(maps.Keys(spec.Labels)) {
		d.str(k)
		d.uint(uint64(len(spec.Labels[k])))
		for _, v := range spec.Labels[k] {
			d.str(v)
		}
	}
	if spec.ExpiresAt != nil {
		d.uint(1)
		d.uint(uint64(spec.ExpiresAt.Unix()))
	} else {
		d.uint(0)
	}
	return base64.RawStdEncoding.EncodeToString(d.sum())
}

// secretDataEqual compares an existing Secret's data, trimmed or not, with
// the desired data.
func secretDataEqual(existing, desired map[string][]byte) bool {
	if d, trimmed := existing[cacheDigestKey]; trimmed {
		return string(d) == string(secretDigest(desired))
	}
	return maps.EqualFunc(existing, desired, bytes.Equal)
}

// accountSpecEqual compares an existing account's spec, trimmed or not,
// with the desired spec.
func accountSpecEqual(existing, desired *v1alpha1.ImageRegistryAccount) bool {
	if d, trimmed := existing.Annotations[cacheDigestKey]; trimmed {
		return d == accountSpecDigest(&desired.Spec)
	}
	return equality.Semantic.DeepEqual(existing.Spec, desired.Spec)
}
