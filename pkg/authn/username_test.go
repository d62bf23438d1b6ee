package authn

import (
	"strings"
	"testing"
)

func TestParseLogin(t *testing.T) {
	for _, tc := range []struct {
		in   string
		ok   bool
		base string
		rot  int64
		has  bool
	}{
		{"ns/name/3", true, "ns/name", 3, true},
		{"ns/name/0", true, "ns/name", 0, true},
		{"ns/name", true, "", 0, false}, // "name" is no number
		{"admin", true, "", 0, false},
		{"a/9223372036854775807", true, "a", 9223372036854775807, true},
		{"a/9223372036854775808", true, "", 0, false}, // overflow: static reading only
		{"a/03", true, "", 0, false},
		{"a/+3", true, "", 0, false},
		{"a/-3", true, "", 0, false},
		{"a/", true, "", 0, false},
		{"/3", true, "", 0, false},
		{"", false, "", 0, false},
		{"a b/1", false, "", 0, false},
		{"a\n/1", false, "", 0, false},
		{strings.Repeat("a", MaxUsernameLength+1), false, "", 0, false},
	} {
		l, ok := ParseLogin(tc.in)
		if ok != tc.ok || l.Base != tc.base || l.Rotation != tc.rot || l.HasRotation != tc.has {
			t.Errorf("ParseLogin(%q) = %+v, %v", tc.in, l, ok)
		}
	}
}

// FuzzParseLogin checks that a parsed rotation suffix always round-trips:
// the login name is exactly RotatingLogin(Base, Rotation), so two different
// names never map to the same account rotation.
func FuzzParseLogin(f *testing.F) {
	for _, s := range []string{"ns/name/3", "ns/name/0", "a/03", "x/-1", "a//1", "a/1/", "/1", "ü/7"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		l, ok := ParseLogin(s)
		if !ok {
			if l != (Login{}) {
				t.Fatalf("rejected %q but returned %+v", s, l)
			}
			return
		}
		if l.Name != s {
			t.Fatalf("Name %q != input %q", l.Name, s)
		}
		if l.HasRotation {
			if l.Rotation < 0 || l.Base == "" {
				t.Fatalf("bad rotation parse of %q: %+v", s, l)
			}
			if got := RotatingLogin(l.Base, l.Rotation); got != s {
				t.Fatalf("%q parsed to %+v, which formats as %q", s, l, got)
			}
		} else if l.Base != "" || l.Rotation != 0 {
			t.Fatalf("%q: base/rotation set without a rotation: %+v", s, l)
		}
	})
}
