package objectcache

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	apiruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer/protobuf"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/cache"

	"github.com/image-registry-operator/image-registry-operator/pkg/apis/registry/v1alpha1"
	"github.com/image-registry-operator/image-registry-operator/pkg/credentials"
	registryscheme "github.com/image-registry-operator/image-registry-operator/pkg/generated/clientset/versioned/scheme"
)

// BenchmarkCacheMemory measures what one push or pull object costs in the
// operator's informer caches: the object, its Secret and its account, each
// decoded from the bytes the API server sends (JSON for custom resources,
// protobuf for the Secret, managedFields included), passed through the
// operator's informer transform and stored in an indexer with the
// informers' namespace index. It reports live heap bytes per object after a
// garbage collection (B/object) and per cached kind.
func BenchmarkCacheMemory(b *testing.B) {
	const n = 2000
	codecs := scheme.Codecs.UniversalDeserializer()
	pb := protobuf.NewSerializer(scheme.Scheme, scheme.Scheme)
	crs, secrets, accounts := make([][]byte, n), make([][]byte, n), make([][]byte, n)
	for i := range n {
		cr, secret, account := sampleObjects(i)
		var err error
		if crs[i], err = apiruntime.Encode(registryscheme.Codecs.LegacyCodec(v1alpha1.SchemeGroupVersion), cr); err != nil {
			b.Fatal(err)
		}
		if accounts[i], err = apiruntime.Encode(registryscheme.Codecs.LegacyCodec(v1alpha1.SchemeGroupVersion), account); err != nil {
			b.Fatal(err)
		}
		if secrets[i], err = apiruntime.Encode(pb, secret); err != nil {
			b.Fatal(err)
		}
	}
	crDecoder := registryscheme.Codecs.UniversalDeserializer()
	fill := func(data [][]byte, dec apiruntime.Decoder, transform cache.TransformFunc) cache.Indexer {
		idx := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
		for _, d := range data {
			decoded, err := apiruntime.Decode(dec, d)
			if err != nil {
				b.Fatal(err)
			}
			obj, err := transform(decoded)
			if err != nil {
				b.Fatal(err)
			}
			if err := idx.Add(obj); err != nil {
				b.Fatal(err)
			}
		}
		return idx
	}
	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	var perCR, perSecret, perAccount float64
	for b.Loop() {
		h0 := heap()
		c := fill(crs, crDecoder, Transform)
		h1 := heap()
		s := fill(secrets, codecs, Transform)
		h2 := heap()
		a := fill(accounts, crDecoder, Transform)
		h3 := heap()
		perCR += float64(h1-h0) / n
		perSecret += float64(h2-h1) / n
		perAccount += float64(h3-h2) / n
		runtime.KeepAlive(c)
		runtime.KeepAlive(s)
		runtime.KeepAlive(a)
	}
	runs := float64(b.N)
	b.ReportMetric(perCR/runs, "B/cr")
	b.ReportMetric(perSecret/runs, "B/secret")
	b.ReportMetric(perAccount/runs, "B/account")
	b.ReportMetric((perCR+perSecret+perAccount)/runs, "B/object")
}

// sampleObjects are a pull object, its Secret and its account the way the
// operator writes them (package credentials renders the Secret and the
// account), with the metadata the API server adds.
func sampleObjects(i int) (*v1alpha1.ImagePullSecret, *corev1.Secret, *v1alpha1.ImageRegistryAccount) {
	ns, name := "team-a", fmt.Sprintf("app-%04d", i)
	created := metav1.NewTime(time.Date(2026, 11, 29, 0, 0, 0, 0, time.UTC))
	hash := func(k int) string { return fmt.Sprintf("$2a$04$%053d", i*10+k) }
	meta := func(m *metav1.ObjectMeta, rv int) {
		m.UID = types.UID(fmt.Sprintf("0b7f3c2e-1d4a-4f6b-9c8d-%012d", rv))
		m.ResourceVersion, m.Generation, m.CreationTimestamp = fmt.Sprint(100000+rv), 1, created
		m.ManagedFields = []metav1.ManagedFieldsEntry{{
			Manager: "image-registry-operator", Operation: metav1.ManagedFieldsOperationUpdate, APIVersion: "v1", Time: &created,
			FieldsType: "FieldsV1", FieldsV1: &metav1.FieldsV1{Raw: []byte(`{"f:metadata":{"f:labels":{".":{},"f:app.kubernetes.io/managed-by":{}}},"f:spec":{".":{}}}`)},
		}}
	}
	cr := &v1alpha1.ImagePullSecret{
		TypeMeta:   metav1.TypeMeta{APIVersion: v1alpha1.SchemeGroupVersion.String(), Kind: v1alpha1.ImagePullSecretKind},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Finalizers: []string{v1alpha1.FinalizerAccountCleanup}},
		Spec:       v1alpha1.ImagePullSecretSpec{ImageSecretSpec: v1alpha1.ImageSecretSpec{RotationInterval: &metav1.Duration{Duration: 24 * time.Hour}}},
		Status: v1alpha1.ImageSecretStatus{
			ObservedGeneration: 1,
			Rotation:           0,
			RotationDate:       &created,
			Passwords:          []string{hash(0), hash(1), hash(2)},
			Registry:           "registry.infra.svc.cluster.local",
			RegistryRef:        &v1alpha1.RegistryRef{Namespace: "infra", Name: "registry"},
			SecretName:         name + "-image-pull-secret",
			Conditions: []metav1.Condition{{
				Type: v1alpha1.ConditionReady, Status: metav1.ConditionTrue, ObservedGeneration: 1, LastTransitionTime: created,
				// imagesecret.ReasonIssued (that package imports this one).
				Reason: "Issued", Message: "Secret " + name + "-image-pull-secret holds valid credentials",
			}},
		},
	}
	meta(&cr.ObjectMeta, 3*i)
	owner := credentials.Owner{Kind: credentials.KindPull, Namespace: ns, Name: name, UID: cr.UID}
	secret, err := credentials.NewSecret(owner, credentials.DefaultSecretName(owner.Kind, name), credentials.SecretContent{
		Registry:     "registry.infra.svc.cluster.local",
		CA:           "-----BEGIN CERTIFICATE-----\n" + strings.Repeat(strings.Repeat("A", 64)+"\n", 9) + "-----END CERTIFICATE-----\n",
		Rotation:     0,
		Password:     strings.Repeat("p", 43),
		NextPassword: strings.Repeat("n", 43),
		RotatedAt:    created.Time,
	})
	if err != nil {
		panic(err)
	}
	secret.TypeMeta = metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"}
	meta(&secret.ObjectMeta, 3*i+1)
	account := credentials.NewAccount(owner, types.NamespacedName{Namespace: "infra", Name: "registry"}, 0, []string{hash(0), hash(1), hash(2)})
	account.TypeMeta = metav1.TypeMeta{APIVersion: v1alpha1.SchemeGroupVersion.String(), Kind: v1alpha1.ImageRegistryAccountKind}
	meta(&account.ObjectMeta, 3*i+2)
	return cr, secret, account
}
