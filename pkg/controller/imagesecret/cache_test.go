package imagesecret

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/image-registry-operator/image-registry-operator/pkg/apis/registry/v1alpha1"
)

func TestTrimForCacheSecret(t *testing.T) {
	f := created(t, KindPull)
	full := f.secret("team", "ci")
	trimmed := full.DeepCopy()
	if _, err := TrimForCache(trimmed); err != nil {
		t.Fatal(err)
	}
	if len(trimmed.Data) != 3 || string(trimmed.Data[KeyPassword]) != string(full.Data[KeyPassword]) ||
		string(trimmed.Data[KeyNextPassword]) != string(full.Data[KeyNextPassword]) {
		t.Fatalf("trimmed data keys %v: want the two passwords and the digest", len(trimmed.Data))
	}
	if !secretUpToDate(trimmed, full) {
		t.Error("a trimmed Secret must compare equal to its full content")
	}
	edited := full.DeepCopy()
	edited.Data[KeyCA] = []byte("another CA")
	if secretUpToDate(trimmed, edited) {
		t.Error("a trimmed Secret compared equal to different content")
	}
	delete(edited.Data, KeyCA)
	if secretUpToDate(trimmed, edited) {
		t.Error("a trimmed Secret compared equal to content with a key less")
	}
	again := trimmed.DeepCopy()
	if _, err := TrimForCache(again); err != nil || string(again.Data[cacheDigestKey]) != string(trimmed.Data[cacheDigestKey]) {
		t.Error("trimming twice changed the digest")
	}
	// An update never carries the digest.
	if m := mergeSecret(trimmed, full); m.Data[cacheDigestKey] != nil || len(m.Data) != len(full.Data) {
		t.Error("merged Secret carries the cache digest or lost data")
	}
	if len(validation.IsConfigMapKey(cacheDigestKey)) == 0 {
		t.Error("the digest key must be invalid in a Secret, so that a leak is refused")
	}

	foreign := &corev1.Secret{Data: map[string][]byte{"tls.crt": []byte("x")}}
	if _, err := TrimForCache(foreign); err != nil || len(foreign.Data) != 1 {
		t.Error("a Secret not controlled by a push or pull object must pass unchanged")
	}
}

func TestTrimForCacheAccount(t *testing.T) {
	f := created(t, KindPush)
	cr := f.object("team", "ci")
	full := f.account("team", "ci")
	trimmed := full.DeepCopy()
	if _, err := TrimForCache(trimmed); err != nil {
		t.Fatal(err)
	}
	if trimmed.Spec.Passwords != nil || trimmed.Annotations[cacheDigestKey] == "" {
		t.Fatalf("account not trimmed: %+v", trimmed.Spec)
	}
	desired := f.c.desiredAccount(cr, regNS)
	if !accountUpToDate(trimmed, desired) {
		t.Error("a trimmed account must compare equal to its desired state")
	}
	desired.Spec.Passwords = desired.Spec.Passwords[:1]
	if accountUpToDate(trimmed, desired) {
		t.Error("a trimmed account compared equal to other passwords")
	}
	merged := mergeAccount(trimmed, desired)
	if _, ok := merged.Annotations[cacheDigestKey]; ok || len(merged.Spec.Passwords) != 1 {
		t.Error("an account update must carry the desired spec and no digest")
	}
	if len(validation.IsQualifiedName(cacheDigestKey)) == 0 {
		t.Error("the digest key must be an invalid annotation key, so that a leak is refused")
	}
	// nil and empty lists and maps are the same to the API.
	a, b := desired.Spec.DeepCopy(), desired.Spec.DeepCopy()
	a.Labels, b.Labels = nil, map[string][]string{}
	if accountSpecDigest(a) != accountSpecDigest(b) {
		t.Error("nil and empty labels digest differently")
	}
}

// accountSpecDigest lists the spec's fields by hand; a change in any of
// them, or a new field left out, would make drift go unnoticed in trimmed
// caches. Every field of ImageRegistryAccountSpec, found by reflection so
// that a new one is covered without touching this test, is changed in turn,
// down into the elements of its lists and maps, and each change must change
// the digest.
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
	if accountSpecDigest(base.DeepCopy()) != baseDigest {
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
		"a password hash":           func(s *v1alpha1.ImageRegistryAccountSpec) { s.Passwords[1] = "$2a$04$other" },
		"the previous hash dropped": func(s *v1alpha1.ImageRegistryAccountSpec) { s.Passwords = s.Passwords[1:] },
		"two hashes swapped": func(s *v1alpha1.ImageRegistryAccountSpec) {
			s.Passwords[0], s.Passwords[1] = s.Passwords[1], s.Passwords[0]
		},
		"a hash split across two": func(s *v1alpha1.ImageRegistryAccountSpec) {
			s.Passwords = []string{"$2a$04$previous$2a$04$current", "", "$2a$04$next"}
		},
		"rotation unset":          func(s *v1alpha1.ImageRegistryAccountSpec) { s.Rotation = nil },
		"rotation 0":              func(s *v1alpha1.ImageRegistryAccountSpec) { s.Rotation = new(int64) },
		"expiry one second later": func(s *v1alpha1.ImageRegistryAccountSpec) { s.ExpiresAt = &metav1.Time{Time: t0.Add(time.Second)} },
		"expiry removed":          func(s *v1alpha1.ImageRegistryAccountSpec) { s.ExpiresAt = nil },
	} {
		changed := base.DeepCopy()
		change(changed)
		check(what, changed)
	}

	// Every field, found by reflection.
	typ := reflect.TypeFor[v1alpha1.ImageRegistryAccountSpec]()
	for i := range typ.NumField() {
		field := typ.Field(i)
		changes := specChanges(t, field.Name, reflect.ValueOf(base).Field(i))
		if len(changes) == 0 {
			t.Errorf("no change generated for field %s", field.Name)
		}
		for _, c := range changes {
			changed := base.DeepCopy()
			c.apply(reflect.ValueOf(changed).Elem().Field(i))
			check(c.what, changed)
		}
	}
}

// specChange changes a value in place; what says where and how.
type specChange struct {
	what  string
	apply func(v reflect.Value)
}

// specChanges lists changes of v (a value reached from the base spec): the
// value itself replaced, and for pointers, lists, maps and structs each
// change of each element. apply is given the same place in a deep copy of
// the base spec. A type it does not know fails the test, so that a new
// field's type is taught here rather than left untested.
func specChanges(t *testing.T, path string, v reflect.Value) []specChange {
	t.Helper()
	set := func(what string, to func(v reflect.Value) reflect.Value) specChange {
		return specChange{path + ": " + what, func(v reflect.Value) { v.Set(to(v)) }}
	}
	// inner wraps the changes of an element reached by get and written back
	// by put (map values are not addressable).
	inner := func(elemPath string, elem reflect.Value, get func(v reflect.Value) reflect.Value, put func(v, elem reflect.Value)) []specChange {
		var out []specChange
		for _, c := range specChanges(t, elemPath, elem) {
			out = append(out, specChange{c.what, func(v reflect.Value) {
				e := reflect.New(elem.Type()).Elem()
				e.Set(get(v))
				c.apply(e)
				put(v, e)
			}})
		}
		return out
	}
	typ := v.Type()
	if typ == reflect.TypeFor[metav1.Time]() {
		// Stored in seconds: a second is the least change there is.
		return []specChange{set("one second later", func(v reflect.Value) reflect.Value {
			return reflect.ValueOf(metav1.Time{Time: v.Interface().(metav1.Time).Add(time.Second)})
		})}
	}
	switch typ.Kind() {
	case reflect.String:
		return []specChange{set("changed", func(v reflect.Value) reflect.Value {
			return reflect.ValueOf(v.String() + "x").Convert(typ)
		})}
	case reflect.Bool:
		return []specChange{set("flipped", func(v reflect.Value) reflect.Value { return reflect.ValueOf(!v.Bool()).Convert(typ) })}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return []specChange{set("plus one", func(v reflect.Value) reflect.Value { return reflect.ValueOf(v.Int() + 1).Convert(typ) })}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return []specChange{set("plus one", func(v reflect.Value) reflect.Value { return reflect.ValueOf(v.Uint() + 1).Convert(typ) })}
	case reflect.Pointer:
		if v.IsNil() {
			return []specChange{set("set", func(reflect.Value) reflect.Value { return sampleValue(t, typ) })}
		}
		return append([]specChange{set("unset", func(reflect.Value) reflect.Value { return reflect.Zero(typ) })},
			inner("*"+path, v.Elem(),
				func(v reflect.Value) reflect.Value { return v.Elem() },
				func(v, e reflect.Value) { v.Elem().Set(e) })...)
	case reflect.Slice:
		out := []specChange{set("one more element", func(v reflect.Value) reflect.Value {
			return reflect.Append(v, sampleValue(t, typ.Elem()))
		})}
		if v.Len() > 0 {
			out = append(out, set("last element dropped", func(v reflect.Value) reflect.Value { return v.Slice(0, v.Len()-1) }))
		}
		if v.Len() > 1 && !reflect.DeepEqual(v.Index(0).Interface(), v.Index(1).Interface()) {
			out = append(out, specChange{path + ": first two swapped", func(v reflect.Value) {
				a, b := v.Index(0).Interface(), v.Index(1).Interface()
				v.Index(0).Set(reflect.ValueOf(b))
				v.Index(1).Set(reflect.ValueOf(a))
			}})
		}
		for i := range v.Len() {
			out = append(out, inner(fmt.Sprintf("%s[%d]", path, i), v.Index(i),
				func(v reflect.Value) reflect.Value { return v.Index(i) },
				func(v, e reflect.Value) { v.Index(i).Set(e) })...)
		}
		return out
	case reflect.Map:
		out := []specChange{{path + ": one more key", func(v reflect.Value) {
			if v.IsNil() {
				v.Set(reflect.MakeMap(typ))
			}
			k := sampleValue(t, typ.Key())
			for v.MapIndex(k).IsValid() { // taken: change it until it is new
				k = specChanges(t, "key", k)[0].applied(k)
			}
			v.SetMapIndex(k, sampleValue(t, typ.Elem()))
		}}}
		keys := v.MapKeys()
		slices.SortFunc(keys, func(a, b reflect.Value) int { return strings.Compare(fmt.Sprint(a), fmt.Sprint(b)) })
		for _, k := range keys {
			elemPath := fmt.Sprintf("%s[%q]", path, fmt.Sprint(k))
			out = append(out, specChange{elemPath + ": removed", func(v reflect.Value) { v.SetMapIndex(k, reflect.Value{}) }})
			out = append(out, inner(elemPath, v.MapIndex(k),
				func(v reflect.Value) reflect.Value { return v.MapIndex(k) },
				func(v, e reflect.Value) { v.SetMapIndex(k, e) })...)
		}
		return out
	case reflect.Struct:
		var out []specChange
		for i := range typ.NumField() {
			if !typ.Field(i).IsExported() {
				continue
			}
			out = append(out, inner(path+"."+typ.Field(i).Name, v.Field(i),
				func(v reflect.Value) reflect.Value { return v.Field(i) },
				func(v, e reflect.Value) { v.Field(i).Set(e) })...)
		}
		if len(out) == 0 {
			t.Fatalf("%s: no exported fields in %s; teach specChanges how to change it", path, typ)
		}
		return out
	}
	t.Fatalf("%s: specChanges does not know how to change a %s", path, typ)
	return nil
}

// applied returns a changed copy of v.
func (c specChange) applied(v reflect.Value) reflect.Value {
	e := reflect.New(v.Type()).Elem()
	e.Set(v)
	c.apply(e)
	return e
}

// sampleValue is a non-zero value of typ.
func sampleValue(t *testing.T, typ reflect.Type) reflect.Value {
	t.Helper()
	v := reflect.New(typ).Elem()
	if typ == reflect.TypeFor[metav1.Time]() {
		v.Set(reflect.ValueOf(metav1.Time{Time: t0}))
		return v
	}
	switch typ.Kind() {
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
		for i := range typ.NumField() {
			if typ.Field(i).IsExported() {
				v.Field(i).Set(sampleValue(t, typ.Field(i).Type))
			}
		}
	default:
		// Scalars: the first change of the zero value.
		c := specChanges(t, "sample", v)
		c[0].apply(v)
	}
	return v
}
