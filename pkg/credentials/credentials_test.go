package credentials

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/validation"
)

func TestLabelValueMatchesTheAPIRule(t *testing.T) {
	for _, v := range []string{
		"", "a", "app-0", "A.b_c-9", "-a", "a-", ".a", "a.", "a b", "ä", "a/b",
		strings.Repeat("x", 63), strings.Repeat("x", 64),
	} {
		valid := len(validation.IsValidLabelValue(v)) == 0
		if got := validLabelValue(v); got != valid {
			t.Errorf("validLabelValue(%q) = %v, the API says %v", v, got, valid)
		}
		if lv := LabelValue(v); len(validation.IsValidLabelValue(lv)) != 0 {
			t.Errorf("LabelValue(%q) = %q is no valid label value", v, lv)
		}
	}
}

func TestAccountNameIsABoundedSubdomain(t *testing.T) {
	short := AccountName(KindPush, "team-a", "app")
	if short != "push.team-a.app" {
		t.Errorf("AccountName = %q, want push.team-a.app", short)
	}
	long := AccountName(KindPull, "ns", strings.Repeat("n", 253))
	if len(long) > 253 || len(validation.IsDNS1123Subdomain(long)) != 0 {
		t.Errorf("AccountName of a long name = %q (%d chars) is no DNS subdomain", long, len(long))
	}
	if other := AccountName(KindPull, "ns", strings.Repeat("n", 252)+"m"); other == long {
		t.Error("two long names share an account name")
	}
}

func TestOwnerKeyRoundTrips(t *testing.T) {
	kind, ns, name, ok := ParseOwnerKey(OwnerKey(KindPull, "ns", "a/b"))
	if !ok || kind != KindPull || ns != "ns" || name != "a/b" {
		t.Errorf("ParseOwnerKey = %v %q %q %v", kind, ns, name, ok)
	}
	for _, bad := range []string{"", "push", "push/ns", "push//n", "push/ns/"} {
		if _, _, _, ok := ParseOwnerKey(bad); ok {
			t.Errorf("ParseOwnerKey(%q) accepted", bad)
		}
	}
}

func TestKindOfReversesObjectKind(t *testing.T) {
	for _, k := range []Kind{KindPush, KindPull} {
		if got, ok := KindOf(k.ObjectKind()); !ok || got != k {
			t.Errorf("KindOf(%q) = %v, %v", k.ObjectKind(), got, ok)
		}
	}
	if _, ok := KindOf("Secret"); ok {
		t.Error("KindOf(Secret) accepted")
	}
}
