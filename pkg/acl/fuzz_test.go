package acl

import (
	"strings"
	"testing"

	"github.com/image-registry-operator/image-registry-operator/pkg/authconfig"
)

// FuzzACLMatch feeds arbitrary patterns, names and label values through an
// ACL. Whatever the input: building and matching never panic, nothing beyond
// the requested actions is granted, and the default ACL never grants a name
// outside the account's namespace label.
func FuzzACLMatch(f *testing.F) {
	f.Add("${labels:namespace}/*", "team-a/web", "team-a", "alice")
	f.Add("/^${account}/.+$/", "alice/app", "x", "alice")
	f.Add("${labels:namespace}/*", "team-b/web", "*", "bob")
	f.Add("[a-", "a", "b", "")
	f.Add("${", "x", "y", "z")
	f.Add("/(?i)WEB/", "team/web", "team", "")
	f.Fuzz(func(t *testing.T, pattern, name, label, account string) {
		req := Request{
			Account: account,
			Type:    "repository",
			Name:    name,
			Service: "svc",
			Labels:  map[string][]string{"namespace": {label}, "type": {"push"}},
			Actions: []string{"pull", "push"},
		}
		if a, err := New([]authconfig.ACLEntry{{
			Match:   authconfig.ACLMatch{Name: pattern, Account: pattern, Labels: map[string]string{"type": pattern}},
			Actions: []string{"pull"},
		}}); err == nil {
			for _, act := range a.Authorize(req).Actions {
				if act != "pull" {
					t.Fatalf("granted %q, which the entry does not list", act)
				}
			}
		}

		d := mustNew(t, Default()).Authorize(req)
		if len(d.Actions) > 0 {
			ns, rest, ok := strings.Cut(name, "/")
			if !ok || ns != label || strings.Contains(rest, "/") {
				t.Fatalf("default ACL granted %v on %q to namespace %q", d.Actions, name, label)
			}
		}
	})
}
