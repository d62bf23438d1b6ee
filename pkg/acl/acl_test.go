package acl

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/image-registry-operator/image-registry-operator/pkg/authconfig"
)

func pushLabels(ns string) map[string][]string {
	return map[string][]string{"namespace": {ns}, "name": {"app"}, "type": {"push"}}
}

func pullLabels(ns string) map[string][]string {
	return map[string][]string{"namespace": {ns}, "name": {"app"}, "type": {"pull"}}
}

func mustNew(t testing.TB, entries []authconfig.ACLEntry) *ACL {
	t.Helper()
	a, err := New(entries)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return a
}

func TestDefaultACL(t *testing.T) {
	a := mustNew(t, Default())
	both := []string{"pull", "push"}
	for _, tc := range []struct {
		name    string
		account string
		labels  map[string][]string
		repo    string
		typ     string
		want    []string
	}{
		{"push account, own namespace", "team-a/app/1", pushLabels("team-a"), "team-a/web", "repository", both},
		{"push account, other namespace", "team-a/app/1", pushLabels("team-a"), "team-b/web", "repository", nil},
		{"push account, namespace prefix is no namespace", "team-a/app/1", pushLabels("team"), "team-a/web", "repository", nil},
		{"push account, nested path (glob * stops at /)", "team-a/app/1", pushLabels("team-a"), "team-a/x/y", "repository", nil},
		{"push account, bare namespace", "team-a/app/1", pushLabels("team-a"), "team-a", "repository", nil},
		{"pull account, own namespace", "team-a/app/1", pullLabels("team-a"), "team-a/web", "repository", []string{"pull"}},
		{"pull account, other namespace", "team-a/app/1", pullLabels("team-a"), "team-b/web", "repository", nil},
		{"anonymous", "", nil, "team-a/web", "repository", nil},
		{"account without labels", "admin", map[string][]string{}, "team-a/web", "repository", nil},
		{"push account, registry catalog", "team-a/app/1", pushLabels("team-a"), "catalog", "registry", nil},
		{"unknown type label", "x", map[string][]string{"namespace": {"team-a"}, "type": {"admin"}}, "team-a/web", "repository", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := a.Authorize(Request{Account: tc.account, Type: tc.typ, Name: tc.repo, Service: "reg", Labels: tc.labels, Actions: []string{"pull", "push"}})
			if !reflect.DeepEqual(d.Actions, tc.want) {
				t.Errorf("granted %v, want %v (entry %d)", d.Actions, tc.want, d.Entry)
			}
		})
	}
}

func TestMatching(t *testing.T) {
	for _, tc := range []struct {
		name  string
		match authconfig.ACLMatch
		req   Request
		want  bool
	}{
		{"empty match matches anonymous", authconfig.ACLMatch{}, Request{}, true},
		{"account glob", authconfig.ACLMatch{Account: "ci-*"}, Request{Account: "ci-1"}, true},
		{"account glob no match", authconfig.ACLMatch{Account: "ci-*"}, Request{Account: "dev"}, false},
		{"glob * matches the empty anonymous account", authconfig.ACLMatch{Account: "*"}, Request{}, true},
		{"regexp excludes anonymous", authconfig.ACLMatch{Account: "/.+/"}, Request{}, false},
		{"regexp is unanchored", authconfig.ACLMatch{Name: "/web/"}, Request{Name: "team/webapp"}, true},
		{"anchored regexp", authconfig.ACLMatch{Name: "/^web$/"}, Request{Name: "team/web"}, false},
		{"type", authconfig.ACLMatch{Type: "registry"}, Request{Type: "repository"}, false},
		{"service", authconfig.ACLMatch{Service: "reg-*"}, Request{Service: "reg-1"}, true},
		{"${account} in name", authconfig.ACLMatch{Name: "${account}/*"}, Request{Account: "alice", Name: "alice/app"}, true},
		{"${account} in name, other user", authconfig.ACLMatch{Name: "${account}/*"}, Request{Account: "bob", Name: "alice/app"}, false},
		{"${account} is literal in a glob", authconfig.ACLMatch{Name: "${account}"}, Request{Account: "a*", Name: "abc"}, false},
		{"${account} is literal in a regexp", authconfig.ACLMatch{Name: "/^${account}$/"}, Request{Account: "a.c", Name: "abc"}, false},
		{"${name} and ${type}", authconfig.ACLMatch{Account: "${type}-${name}"}, Request{Account: "repository-x", Type: "repository", Name: "x"}, true},
		{"${service}", authconfig.ACLMatch{Name: "${service}/*"}, Request{Service: "reg", Name: "reg/x"}, true},
		{"multi-valued label: any value", authconfig.ACLMatch{Name: "${labels:project}/*"},
			Request{Name: "api/x", Labels: map[string][]string{"project": {"web", "api"}}}, true},
		{"multi-valued labels: all combinations", authconfig.ACLMatch{Name: "${labels:a}-${labels:b}"},
			Request{Name: "2-y", Labels: map[string][]string{"a": {"1", "2"}, "b": {"x", "y"}}}, true},
		{"missing label never matches", authconfig.ACLMatch{Name: "${labels:project}*"}, Request{Name: "x"}, false},
		{"label value * is literal", authconfig.ACLMatch{Name: "${labels:namespace}/*"},
			Request{Name: "other/x", Labels: map[string][]string{"namespace": {"*"}}}, false},
		{"label value regexp meta is literal", authconfig.ACLMatch{Name: "/^${labels:namespace}/.*$/"},
			Request{Name: "other/x", Labels: map[string][]string{"namespace": {".*"}}}, false},
		{"labels: some value matches", authconfig.ACLMatch{Labels: map[string]string{"group": "dev*"}},
			Request{Labels: map[string][]string{"group": {"ops", "devs"}}}, true},
		{"labels: absent label", authconfig.ACLMatch{Labels: map[string]string{"group": "*"}}, Request{}, false},
		{"labels: all keys must match", authconfig.ACLMatch{Labels: map[string]string{"a": "1", "b": "2"}},
			Request{Labels: map[string][]string{"a": {"1"}, "b": {"3"}}}, false},
		{"labels with placeholder", authconfig.ACLMatch{Labels: map[string]string{"owner": "${account}"}},
			Request{Account: "al", Labels: map[string][]string{"owner": {"al"}}}, true},
		{"ip address", authconfig.ACLMatch{IP: "10.0.0.1"}, Request{IP: netip.MustParseAddr("10.0.0.1")}, true},
		{"ip cidr", authconfig.ACLMatch{IP: "10.0.0.0/8"}, Request{IP: netip.MustParseAddr("10.2.3.4")}, true},
		{"ip cidr miss", authconfig.ACLMatch{IP: "10.0.0.0/8"}, Request{IP: netip.MustParseAddr("192.168.0.1")}, false},
		{"ip v4-mapped", authconfig.ACLMatch{IP: "127.0.0.0/8"}, Request{IP: netip.MustParseAddr("::ffff:127.0.0.1")}, true},
		{"ip unknown", authconfig.ACLMatch{IP: "0.0.0.0/0"}, Request{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := mustNew(t, []authconfig.ACLEntry{{Match: tc.match, Actions: []string{"pull"}}})
			tc.req.Actions = []string{"pull"}
			got := len(a.Authorize(tc.req).Actions) > 0
			if got != tc.want {
				t.Errorf("matched = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestFirstMatchWins(t *testing.T) {
	a := mustNew(t, []authconfig.ACLEntry{
		{Match: authconfig.ACLMatch{Account: "guest"}, Actions: []string{}, Comment: "guests get nothing"},
		{Match: authconfig.ACLMatch{}, Actions: []string{"pull"}},
	})
	d := a.Authorize(Request{Account: "guest", Actions: []string{"pull"}})
	if len(d.Actions) != 0 || d.Entry != 0 || d.Comment != "guests get nothing" {
		t.Errorf("guest: %+v, want nothing from entry 0", d)
	}
	d = a.Authorize(Request{Account: "other", Actions: []string{"pull", "push"}})
	if !reflect.DeepEqual(d.Actions, []string{"pull"}) || d.Entry != 1 {
		t.Errorf("other: %+v, want pull from entry 1", d)
	}
	if d := mustNew(t, nil).Authorize(Request{Actions: []string{"pull"}}); d.Entry != -1 || d.Actions != nil {
		t.Errorf("empty ACL: %+v, want no match", d)
	}
}

func TestActions(t *testing.T) {
	a := mustNew(t, []authconfig.ACLEntry{{Actions: []string{"*"}}})
	d := a.Authorize(Request{Actions: []string{"push", "pull", "push", "delete"}})
	if want := []string{"push", "pull", "delete"}; !reflect.DeepEqual(d.Actions, want) {
		t.Errorf("* granted %v, want %v", d.Actions, want)
	}
	a = mustNew(t, []authconfig.ACLEntry{{Actions: []string{"pull", "delete"}}})
	d = a.Authorize(Request{Actions: []string{"push", "pull"}})
	if want := []string{"pull"}; !reflect.DeepEqual(d.Actions, want) {
		t.Errorf("granted %v, want %v", d.Actions, want)
	}
}

func TestNewRejects(t *testing.T) {
	for _, tc := range []struct {
		name  string
		entry authconfig.ACLEntry
		want  string
	}{
		{"unknown placeholder", authconfig.ACLEntry{Match: authconfig.ACLMatch{Name: "${namespace}/*"}, Actions: []string{"pull"}}, "unknown placeholder"},
		{"capture group placeholder", authconfig.ACLEntry{Match: authconfig.ACLMatch{Name: "${name:1}"}, Actions: []string{"pull"}}, "unknown placeholder"},
		{"empty label placeholder", authconfig.ACLEntry{Match: authconfig.ACLMatch{Name: "${labels:}"}, Actions: []string{"pull"}}, "unknown placeholder"},
		{"unterminated placeholder", authconfig.ACLEntry{Match: authconfig.ACLMatch{Name: "${account"}, Actions: []string{"pull"}}, "unterminated"},
		{"bad regexp", authconfig.ACLEntry{Match: authconfig.ACLMatch{Account: "/a(/"}, Actions: []string{"pull"}}, "match.account"},
		{"bad glob", authconfig.ACLEntry{Match: authconfig.ACLMatch{Name: "a["}, Actions: []string{"pull"}}, "match.name"},
		{"bad label pattern", authconfig.ACLEntry{Match: authconfig.ACLMatch{Labels: map[string]string{"x": "/(/"}}, Actions: []string{"pull"}}, "match.labels.x"},
		{"bad ip", authconfig.ACLEntry{Match: authconfig.ACLMatch{IP: "10.0.0.300"}, Actions: []string{"pull"}}, "match.ip"},
		{"nil actions", authconfig.ACLEntry{Match: authconfig.ACLMatch{Account: "x"}}, "actions is required"},
		{"empty action", authconfig.ACLEntry{Actions: []string{""}}, "empty action"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New([]authconfig.ACLEntry{{Actions: []string{}}, tc.entry})
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "acl[1]") {
				t.Errorf("error %v, want one naming acl[1] and containing %q", err, tc.want)
			}
		})
	}
}

func TestLabelCombinationBound(t *testing.T) {
	vals := make([]string, 40)
	for i := range vals {
		vals[i] = strings.Repeat("v", i+1)
	}
	a := mustNew(t, []authconfig.ACLEntry{{Match: authconfig.ACLMatch{Name: "${labels:a}/${labels:b}"}, Actions: []string{"pull"}}})
	labels := map[string][]string{"a": vals, "b": vals}
	// 40*40 = 1600 > MaxLabelCombinations: never matches, even a real combination.
	if d := a.Authorize(Request{Name: "v/v", Labels: labels, Actions: []string{"pull"}}); len(d.Actions) != 0 {
		t.Errorf("granted %v beyond the combination bound", d.Actions)
	}
	labels["b"] = vals[:20] // 800 combinations
	if d := a.Authorize(Request{Name: "vvv/vvvvvvvvvvvvvvvvvvvv", Labels: labels, Actions: []string{"pull"}}); len(d.Actions) != 1 {
		t.Errorf("granted %v, want pull within the bound", d.Actions)
	}
}

// The rendered config goes through authconfig's strict loader; the default
// ACL must survive it unchanged, so the registry controller can render it.
func TestDefaultRoundTripsThroughConfig(t *testing.T) {
	cfg := &authconfig.Config{
		Server:  authconfig.ServerConfig{Addr: ":5001"},
		Token:   authconfig.TokenConfig{Issuer: "i", Expiration: 300, Certificate: "c", Key: "k"},
		ExtAuth: &authconfig.ExtAuthConfig{Command: "/ext-auth/" + authconfig.ExtAuthCommand},
		ACL:     Default(),
	}
	b, err := cfg.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	back, err := authconfig.Parse(b)
	if err != nil {
		t.Fatalf("Parse: %v\n%s", err, b)
	}
	if !reflect.DeepEqual(back.ACL, Default()) {
		t.Errorf("ACL changed in the round trip:\n%s", b)
	}
	if _, err := New(back.ACL); err != nil {
		t.Error(err)
	}
}
