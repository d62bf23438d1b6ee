package objectcache

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"maps"
	"slices"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/image-registry-operator/image-registry-operator/pkg/apis/registry/v1alpha1"
	"github.com/image-registry-operator/image-registry-operator/pkg/credentials"
)

// The caches hold one Secret and one account per push or pull object, and
// most of their bytes (docker config, CA, the account's spec) only matter
// when compared with what the controller would write. trim keeps what
// decisions read (metadata, the Secret's two passwords) and replaces the
// rest by a SHA-256 digest, which SecretDataEqual and AccountSpecEqual
// compare instead. Writes never start from the trimmed part: the controller's
// updates replace a Secret's data and an account's spec wholesale, and
// WithoutDigest takes the digest out of annotations they start from.

// digestKey holds the digest: in a trimmed Secret's data, in a trimmed
// account's annotations. It is neither a valid data key nor a valid
// annotation key, so the API server would refuse it should it ever leak
// into a write.
const digestKey = "#cache.sha256"

// trim trims Secrets controlled by a push or pull object and accounts the
// operator manages, and returns them as compact entries (compact.go) where
// an update starting from the expanded entry loses nothing; everything else
// passes unchanged.
func trim(obj interface{}) interface{} {
	switch o := obj.(type) {
	case *corev1.Secret:
		ref := metav1.GetControllerOf(o)
		if ref == nil || ref.APIVersion != v1alpha1.SchemeGroupVersion.String() {
			return obj
		}
		if _, ok := credentials.KindOf(ref.Kind); !ok {
			return obj
		}
		if _, trimmed := o.Data[digestKey]; trimmed {
			return obj
		}
		kept := map[string][]byte{digestKey: secretDigest(o.Data)}
		for _, k := range []string{credentials.KeyPassword, credentials.KeyNextPassword} {
			if v, ok := o.Data[k]; ok {
				kept[k] = v
			}
		}
		o.Data = kept
		if c := compactSecretFrom(o); c != nil {
			return c
		}
	case *v1alpha1.ImageRegistryAccount:
		if o.Labels[v1alpha1.LabelManagedBy] != v1alpha1.ManagedByValue {
			return obj
		}
		if _, trimmed := o.Annotations[digestKey]; trimmed {
			return obj
		}
		if o.Annotations == nil {
			o.Annotations = map[string]string{}
		}
		o.Annotations[digestKey] = accountSpecDigest(&o.Spec)
		o.Spec = v1alpha1.ImageRegistryAccountSpec{}
		if c := compactAccountFrom(o); c != nil {
			return c
		}
	}
	return obj
}

// secretDigest digests every key and value, each length-prefixed so that no
// two different maps produce the same stream.
func secretDigest(data map[string][]byte) []byte {
	h := sha256.New()
	for _, k := range slices.Sorted(maps.Keys(data)) {
		for _, s := range [][]byte{[]byte(k), data[k]} {
			h.Write(binary.AppendUvarint(nil, uint64(len(s))))
			h.Write(s)
		}
	}
	return h.Sum(nil)
}

// accountSpecDigest digests the spec as the API server stores it (JSON), so
// that a new field is covered without touching this function; times count
// in whole seconds, as stored.
func accountSpecDigest(spec *v1alpha1.ImageRegistryAccountSpec) string {
	b, err := json.Marshal(spec)
	if err != nil {
		// A spec of strings, lists, maps and times always marshals; should
		// it ever fail, no digest equals it, so the account is rewritten.
		return ""
	}
	sum := sha256.Sum256(b)
	return base64.RawStdEncoding.EncodeToString(sum[:])
}

// SecretDataEqual compares an existing Secret's data, trimmed or not, with
// the desired data.
func SecretDataEqual(existing, desired map[string][]byte) bool {
	if d, trimmed := existing[digestKey]; trimmed {
		return bytes.Equal(d, secretDigest(desired))
	}
	return maps.EqualFunc(existing, desired, bytes.Equal)
}

// AccountSpecEqual compares an existing account's spec, trimmed or not,
// with the desired spec.
func AccountSpecEqual(existing, desired *v1alpha1.ImageRegistryAccount) bool {
	if d, trimmed := existing.Annotations[digestKey]; trimmed {
		return d != "" && d == accountSpecDigest(&desired.Spec)
	}
	return equality.Semantic.DeepEqual(existing.Spec, desired.Spec)
}

// WithoutDigest returns a copy of labels or annotations without the cache's
// digest key, for writes that start from a cached object.
func WithoutDigest(m map[string]string) map[string]string {
	if _, ok := m[digestKey]; !ok {
		return m
	}
	c := maps.Clone(m)
	delete(c, digestKey)
	return c
}
