package objectcache

import (
	"reflect"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/image-registry-operator/image-registry-operator/pkg/apis/registry/v1alpha1"
	"github.com/image-registry-operator/image-registry-operator/pkg/credentials"
)

func TestTrimSecret(t *testing.T) {
	full := newSecret(t, owner(credentials.KindPull, "team", "ci"))
	trimmed := full.DeepCopy()
	if _, ok := trim(trimmed).(*compactSecret); !ok {
		t.Fatal("the generated Secret was not compacted")
	}
	// trim trimmed the typed Secret in place before compacting it.
	if len(trimmed.Data) != 3 || string(trimmed.Data[credentials.KeyPassword]) != string(full.Data[credentials.KeyPassword]) ||
		string(trimmed.Data[credentials.KeyNextPassword]) != string(full.Data[credentials.KeyNextPassword]) {
		t.Fatalf("trimmed data keys %v: want the two passwords and the digest", len(trimmed.Data))
	}
	if trimmed.Type != full.Type {
		t.Errorf("type %q, want %q", trimmed.Type, full.Type)
	}
	if !SecretDataEqual(trimmed.Data, full.Data) {
		t.Error("a trimmed Secret must compare equal to its full content")
	}
	if !SecretDataEqual(full.Data, full.DeepCopy().Data) {
		t.Error("an untrimmed Secret must compare equal to its own content")
	}
	edited := full.DeepCopy()
	edited.Data[credentials.KeyCA] = []byte("another CA")
	if SecretDataEqual(trimmed.Data, edited.Data) || SecretDataEqual(full.Data, edited.Data) {
		t.Error("a Secret compared equal to different content")
	}
	delete(edited.Data, credentials.KeyCA)
	if SecretDataEqual(trimmed.Data, edited.Data) || SecretDataEqual(full.Data, edited.Data) {
		t.Error("a Secret compared equal to content with a key less")
	}
	again := trimmed.DeepCopy()
	if got := trim(again); got != any(again) || string(again.Data[digestKey]) != string(trimmed.Data[digestKey]) {
		t.Error("trimming twice changed the digest")
	}
	// An update starts from the cached metadata and replaces the data
	// wholesale: the digest is in the data alone, so it never reaches a
	// write.
	expanded, _ := expandSecret(trim(full.DeepCopy()))
	for _, m := range []map[string]string{trimmed.Labels, trimmed.Annotations, expanded.Labels, expanded.Annotations} {
		if _, ok := m[digestKey]; ok {
			t.Errorf("the digest is in the metadata %v", m)
		}
	}
	if len(validation.IsConfigMapKey(digestKey)) == 0 {
		t.Error("the digest key must be invalid in a Secret, so that a leak is refused")
	}

	foreign := &corev1.Secret{Data: map[string][]byte{"tls.crt": []byte("x")}}
	if got := trim(foreign); got != any(foreign) || len(foreign.Data) != 1 {
		t.Error("a Secret not controlled by a push or pull object must pass unchanged")
	}
}

func TestTrimAccount(t *testing.T) {
	o := owner(credentials.KindPush, "team", "ci")
	full := newAccount(o)
	trimmed := full.DeepCopy()
	if _, ok := trim(trimmed).(*compactAccount); !ok {
		t.Fatal("the generated account was not compacted")
	}
	if trimmed.Spec.Passwords != nil || trimmed.Annotations[digestKey] == "" {
		t.Fatalf("account not trimmed: %+v", trimmed.Spec)
	}
	desired := credentials.NewAccount(o, types.NamespacedName{Namespace: regNS, Name: "registry"}, 1, accountHashes)
	if !AccountSpecEqual(trimmed, desired) || !AccountSpecEqual(full, desired) {
		t.Error("an account must compare equal to its desired state, trimmed or not")
	}
	desired.Spec.Passwords = desired.Spec.Passwords[:1]
	if AccountSpecEqual(trimmed, desired) || AccountSpecEqual(full, desired) {
		t.Error("an account compared equal to other passwords")
	}
	broken := trimmed.DeepCopy()
	broken.Annotations[digestKey] = ""
	if AccountSpecEqual(broken, &v1alpha1.ImageRegistryAccount{}) {
		t.Error("an empty digest compared equal")
	}
	// An account update starts from the cached annotations without the
	// digest (and replaces the spec wholesale); the cached map, shared,
	// stays as it is.
	kept := WithoutDigest(trimmed.Annotations)
	if _, ok := kept[digestKey]; ok || len(kept) != len(trimmed.Annotations)-1 {
		t.Errorf("annotations for an update %v: want all but the digest", kept)
	}
	if _, ok := trimmed.Annotations[digestKey]; !ok {
		t.Error("WithoutDigest changed the cached annotations")
	}
	if m := map[string]string{"a": "b"}; len(WithoutDigest(m)) != 1 || WithoutDigest(nil) != nil {
		t.Error("WithoutDigest changed a map without the digest")
	}
	if len(validation.IsQualifiedName(digestKey)) == 0 {
		t.Error("the digest key must be an invalid annotation key, so that a leak is refused")
	}
	// nil and empty lists and maps are the same to the API.
	a, b := desired.Spec.DeepCopy(), desired.Spec.DeepCopy()
	a.Labels, b.Labels = nil, map[string][]string{}
	if accountSpecDigest(a) != accountSpecDigest(b) {
		t.Error("nil and empty labels digest differently")
	}
	// Times count in seconds, whatever their location.
	a.ExpiresAt = &metav1.Time{Time: t0}
	b.ExpiresAt = &metav1.Time{Time: t0.Add(time.Millisecond).In(time.FixedZone("east", 3600))}
	if accountSpecDigest(a) != accountSpecDigest(b) {
		t.Error("the same second in another location digests differently")
	}

	if plain := (&v1alpha1.ImageRegistryAccount{}); trim(plain) != any(plain) || plain.Annotations != nil {
		t.Error("an account the operator does not manage must pass unchanged")
	}
}

// accountSpecDigest digests the spec's JSON; a change in any field that
// the JSON missed (a field tagged "-", a value it cannot tell from another)
// would make drift go unnoticed in trimmed caches. Changes written out
// below, most of them inside lists and maps, and every field of
// ImageRegistryAccountSpec in turn, found by reflection so that a new one is
// covered without touching this test, must each change the digest.
func TestAccountSpecDigestChangesWithEveryField(t *testing.T) {
	rotation := int64(3)
	base := v1alpha1.ImageRegistryAccountSpec{
		Username:  "team/ci",
		Rotation:  &rotation,
		Passwords: []string{"$2a$04$previous", "$2a$04$current", "$2a$04$next"},
		Labels: map[string][]string{
			"namespace": {"team"},
			"name":      {"ci"},
			"groups":    {"dev", "ops"},
		},
		ExpiresAt: &metav1.Time{Time: t0},
	}
	baseDigest := accountSpecDigest(&base)
	if baseDigest == "" || accountSpecDigest(base.DeepCopy()) != baseDigest {
		t.Fatal("a copy of the spec digests differently")
	}
	check := func(what string, changed *v1alpha1.ImageRegistryAccountSpec) {
		t.Helper()
		// Only changes the API tells apart count (a nil and an empty list
		// are the same to it).
		if equality.Semantic.DeepEqual(base, *changed) {
			t.Fatalf("%s: not a change to the API; fix this test", what)
		}
		if accountSpecDigest(changed) == baseDigest {
			t.Errorf("%s: the digest did not change", what)
		}
	}

	// Changes written out, most of them inside lists and maps.
	for what, change := range map[string]func(*v1alpha1.ImageRegistryAccountSpec){
		"the username":           func(s *v1alpha1.ImageRegistryAccountSpec) { s.Username = "team/cd" },
		"a label value":          func(s *v1alpha1.ImageRegistryAccountSpec) { s.Labels["name"][0] = "cd" },
		"a label's second value": func(s *v1alpha1.ImageRegistryAccountSpec) { s.Labels["groups"][1] = "sec" },
		"a label value moved": func(s *v1alpha1.ImageRegistryAccountSpec) {
			s.Labels["groups"] = []string{"dev"}
			s.Labels["name"] = []string{"ci", "ops"}
		},
		"a label key renamed": func(s *v1alpha1.ImageRegistryAccountSpec) {
			s.Labels["team"] = s.Labels["name"]
			delete(s.Labels, "name")
		},
		"a label added":             func(s *v1alpha1.ImageRegistryAccountSpec) { s.Labels["type"] = []string{"push"} },
		"a password hash":           func(s *v1alpha1.ImageRegistryAccountSpec) { s.Passwords[1] = "$2a$04$other" },
		"the previous hash dropped": func(s *v1alpha1.ImageRegistryAccountSpec) { s.Passwords = s.Passwords[1:] },
		"a hash added":              func(s *v1alpha1.ImageRegistryAccountSpec) { s.Passwords = append(s.Passwords, "$2a$04$after") },
		"two hashes swapped": func(s *v1alpha1.ImageRegistryAccountSpec) {
			s.Passwords[0], s.Passwords[1] = s.Passwords[1], s.Passwords[0]
		},
		"a hash split across two": func(s *v1alpha1.ImageRegistryAccountSpec) {
			s.Passwords = []string{"$2a$04$previous$2a$04$current", "", "$2a$04$next"}
		},
		"rotation unset":          func(s *v1alpha1.ImageRegistryAccountSpec) { s.Rotation = nil },
		"rotation 0":              func(s *v1alpha1.ImageRegistryAccountSpec) { s.Rotation = new(int64) },
		"rotation plus one":       func(s *v1alpha1.ImageRegistryAccountSpec) { *s.Rotation++ },
		"expiry one second later": func(s *v1alpha1.ImageRegistryAccountSpec) { s.ExpiresAt = &metav1.Time{Time: t0.Add(time.Second)} },
		"expiry removed":          func(s *v1alpha1.ImageRegistryAccountSpec) { s.ExpiresAt = nil },
	} {
		changed := base.DeepCopy()
		change(changed)
		check(what, changed)
	}

	// Every field, found by reflection: set to its zero value and to a
	// sample value, where either is a change.
	typ := reflect.TypeFor[v1alpha1.ImageRegistryAccountSpec]()
	for i := range typ.NumField() {
		field := typ.Field(i)
		if !field.IsExported() {
			continue
		}
		changes := 0
		for what, v := range map[string]reflect.Value{
			"zero":   reflect.Zero(field.Type),
			"sample": sampleValue(t, field.Type),
		} {
			changed := base.DeepCopy()
			reflect.ValueOf(changed).Elem().Field(i).Set(v)
			if equality.Semantic.DeepEqual(base, *changed) {
				continue
			}
			changes++
			check(field.Name+" set to its "+what+" value", changed)
		}
		if changes == 0 {
			t.Errorf("no change generated for field %s", field.Name)
		}
	}
}

// sampleValue is a non-zero value of typ, unlike any in the base spec. A
// type it does not know fails the test, so that a new field's type is
// taught here rather than left untested.
func sampleValue(t *testing.T, typ reflect.Type) reflect.Value {
	t.Helper()
	v := reflect.New(typ).Elem()
	if typ == reflect.TypeFor[metav1.Time]() {
		v.Set(reflect.ValueOf(metav1.Time{Time: t0.AddDate(1, 0, 0)}))
		return v
	}
	switch typ.Kind() {
	case reflect.String:
		v.SetString("sample")
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(42)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(42)
	case reflect.Pointer:
		p := reflect.New(typ.Elem())
		p.Elem().Set(sampleValue(t, typ.Elem()))
		v.Set(p)
	case reflect.Slice:
		v.Set(reflect.Append(reflect.MakeSlice(typ, 0, 1), sampleValue(t, typ.Elem())))
	case reflect.Map:
		v.Set(reflect.MakeMap(typ))
		v.SetMapIndex(sampleValue(t, typ.Key()), sampleValue(t, typ.Elem()))
	case reflect.Struct:
		n := 0
		for i := range typ.NumField() {
			if typ.Field(i).IsExported() {
				v.Field(i).Set(sampleValue(t, typ.Field(i).Type))
				n++
			}
		}
		if n == 0 {
			t.Fatalf("no exported fields in %s; teach sampleValue how to make one", typ)
		}
	default:
		t.Fatalf("sampleValue does not know how to make a %s", typ)
	}
	return v
}
