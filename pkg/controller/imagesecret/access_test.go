package imagesecret

import (
	"testing"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/image-registry-operator/image-registry-operator/pkg/apis/registry/v1alpha1"
	"github.com/image-registry-operator/image-registry-operator/pkg/credentials"
)

// privateRegistry is a registry in regNS that is not the default one.
const privateRegistry = "private"

func objectFor(kind credentials.Kind, ns, name, registryName string) *v1alpha1.ImagePushSecret {
	o := newObject(kind, ns, name).(*v1alpha1.ImagePushSecret)
	o.Spec.RegistryRef = &v1alpha1.RegistryRef{Name: registryName, Namespace: regNS}
	return o
}

func (f *fixture) expectNotAllowed(ns, name string) {
	f.t.Helper()
	if err := f.sync(ns, name); err == nil {
		f.t.Error("expected an error so that the object is retried")
	}
	cr := f.object(ns, name)
	c := meta.FindStatusCondition(cr.status.Conditions, v1alpha1.ConditionReady)
	if c == nil || c.Status != metav1.ConditionFalse || c.Reason != ReasonNamespaceNotAllowed {
		f.t.Errorf("Ready %+v, want False %s", c, ReasonNamespaceNotAllowed)
	}
	if f.account(ns, name) != nil {
		f.t.Error("an account exists on a registry that does not admit the namespace")
	}
}

// TestRegistryAccess: a registry admits its own namespace and those its
// spec.access lists; granting access issues credentials, withdrawing it
// deletes the account at once (security review, finding 3).
func TestRegistryAccess(t *testing.T) {
	reg := registry(regNS, privateRegistry, true)
	f := newFixture(t, credentials.KindPush, reg, objectFor(credentials.KindPush, "team", "ci", privateRegistry), objectFor(credentials.KindPush, regNS, "own", privateRegistry))

	f.mustSync(regNS, "own")
	f.assertSecretWorks(regNS, "own")

	f.expectNotAllowed("team", "ci")
	if st := f.object("team", "ci").status; len(st.Passwords) != 0 || f.secret("team", "ci") != nil {
		t.Error("credentials issued for a namespace the registry does not admit")
	}
	f.expectEvents("Warning " + ReasonNamespaceNotAllowed)

	for _, allowed := range [][]string{{"team"}, {"*"}} {
		reg = reg.DeepCopy()
		reg.Spec.Access = &v1alpha1.AccessSpec{Namespaces: allowed}
		f.edit(f.client.Tracker(), gvrRegistry, reg, regNS)
		f.syncCaches()
		f.mustSync("team", "ci")
		f.assertSecretWorks("team", "ci")
	}

	s := f.secret("team", "ci")
	reg = reg.DeepCopy()
	reg.Spec.Access = &v1alpha1.AccessSpec{Namespaces: []string{"someone-else"}}
	f.edit(f.client.Tracker(), gvrRegistry, reg, regNS)
	f.syncCaches()
	f.events()
	f.expectNotAllowed("team", "ci")
	f.expectEvents("Normal "+ReasonAccountDeleted, "Warning "+ReasonNamespaceNotAllowed)
	if accountAccepts(f.account("team", "ci"), string(s.Data[credentials.KeyUsername]), string(s.Data[credentials.KeyPassword])) {
		t.Error("credentials still work after the registry withdrew access")
	}
	// Its own namespace is not affected.
	f.mustSync(regNS, "own")
	f.assertSecretWorks(regNS, "own")
}

// TestDefaultRegistryAccess: the operator's DefaultRegistryNamespaces admit
// namespaces to the default registry (nil: all), and to no other registry.
func TestDefaultRegistryAccess(t *testing.T) {
	for _, tc := range []struct {
		name    string
		allowed []string
		ok      bool
	}{
		{"unset admits all", nil, true},
		{"listed", []string{"other", "team"}, true},
		{"empty admits none", []string{}, false},
		{"not listed", []string{"other"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, credentials.KindPush, registry(regNS, regName, true), registry(regNS, privateRegistry, true),
				newObject(credentials.KindPush, "team", "ci"), objectFor(credentials.KindPush, "team", "private", privateRegistry))
			f.c.opts.DefaultRegistryNamespaces = tc.allowed
			if tc.ok {
				f.mustSync("team", "ci")
				f.assertSecretWorks("team", "ci")
			} else {
				f.expectNotAllowed("team", "ci")
			}
			// The operator's list is about the default registry only.
			f.expectNotAllowed("team", "private")
		})
	}
}
