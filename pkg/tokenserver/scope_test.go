package tokenserver

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseScope(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Scope
	}{
		{"repository:team/app:pull", Scope{Type: "repository", Name: "team/app", Actions: []string{"pull"}}},
		{"repository:team/app:pull,push", Scope{Type: "repository", Name: "team/app", Actions: []string{"pull", "push"}}},
		{"repository:team/app:push,pull,push", Scope{Type: "repository", Name: "team/app", Actions: []string{"push", "pull"}}},
		{"repository:reg.example:5000/team/app:pull", Scope{Type: "repository", Name: "reg.example:5000/team/app", Actions: []string{"pull"}}},
		{"repository(plugin):team/app:pull", Scope{Type: "repository", Class: "plugin", Name: "team/app", Actions: []string{"pull"}}},
		{"registry:catalog:*", Scope{Type: "registry", Name: "catalog", Actions: []string{"*"}}},
		{"repository:Team_a/app-1.2:delete", Scope{Type: "repository", Name: "Team_a/app-1.2", Actions: []string{"delete"}}},
	} {
		got, err := ParseScope(tc.in)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ParseScope(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{
		"", "repository", "repository:app", "repository:app:", "repository::pull", ":app:pull",
		"repository:app:pull,", "repository:app:PULL", "Repository:app:pull", "repository(:app:pull",
		"repository():app:pull", "repository(x)y:app:pull", "repository:a//b:pull", "repository:/a:pull",
		"repository:a/:pull", "repository:a*:pull", "repository:a[b]:pull", "repository:host:/a:pull",
		"repository:host:port/a:pull", "repository:a:b:c:pull", "repository:a b:pull", "repository:${account}:pull",
		"repository:" + strings.Repeat("a", maxScopeLength) + ":pull",
	} {
		if s, err := ParseScope(bad); err == nil {
			t.Errorf("ParseScope(%q) accepted: %+v", bad, s)
		}
	}
}

func TestParseScopes(t *testing.T) {
	got, err := ParseScopes([]string{"repository:a/b:pull repository:a/c:push", "registry:catalog:*"})
	if err != nil || len(got) != 3 || got[1].Name != "a/c" || got[2].Type != "registry" {
		t.Errorf("ParseScopes: %+v, %v", got, err)
	}
	if got, err := ParseScopes(nil); err != nil || got != nil {
		t.Errorf("no scopes: %+v, %v", got, err)
	}
	if _, err := ParseScopes([]string{strings.Repeat("repository:a:pull ", maxScopes+1)}); err == nil {
		t.Error("too many scopes accepted")
	}
}

// FuzzParseScope checks that every accepted scope is well formed and
// round-trips through its String form, and that no accepted name holds a
// character that means something to an ACL glob or regexp.
func FuzzParseScope(f *testing.F) {
	for _, s := range []string{
		"repository:team/app:pull,push", "repository(plugin):a:pull", "registry:catalog:*",
		"repository:host:5000/a/b:pull", "repository:a:b:c:pull", "repository::pull",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		s, err := ParseScope(in)
		if err != nil {
			return
		}
		if s.Type == "" || s.Name == "" || len(s.Actions) == 0 {
			t.Fatalf("%q: incomplete scope %+v", in, s)
		}
		if strings.ContainsAny(s.Name, "*?[]\\${}()|^+ \t\n") {
			t.Fatalf("%q: name %q holds a pattern metacharacter", in, s.Name)
		}
		back, err := ParseScope(s.String())
		if err != nil || !reflect.DeepEqual(back, s) {
			t.Fatalf("%q: round trip via %q gave %+v, %v", in, s.String(), back, err)
		}
	})
}
