package imageregistryaccount

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"

	"github.com/image-registry-operator/image-registry-operator/pkg/apis/registry/v1alpha1"
	"github.com/image-registry-operator/image-registry-operator/pkg/authn"
	"github.com/image-registry-operator/image-registry-operator/pkg/credentials"
	"github.com/image-registry-operator/image-registry-operator/pkg/objectcache"
)

func TestStaticAccountGetsLoginNameAndReady(t *testing.T) {
	a := staticAccount("ci-bot")
	f := newFixture(t, a)
	f.sync(a)
	f.expectActions("update imageregistryaccounts/status registry/ci-bot")
	c := f.expectStatus(a, "ci-bot", metav1.ConditionTrue, ReasonActive)
	if !strings.Contains(c.Message, `"ci-bot"`) || !strings.Contains(c.Message, "no expiry") {
		t.Errorf("message %q does not name the login and the missing expiry", c.Message)
	}
	if ev := f.events(); len(ev) != 0 {
		t.Errorf("events for routine work: %v", ev)
	}

	// Nothing changed: nothing is written.
	f.sync(a)
	f.expectActions()
}

func TestLoginNameFollowsUsernameAndRotation(t *testing.T) {
	for _, tc := range []struct {
		name     string
		username string
		rotation *int64
		want     string
	}{
		{"derived", "", nil, "acc"},
		{"explicit", "ci/robot", nil, "ci/robot"},
		{"rotating", "ci", ptr(int64(3)), "ci/3"},
		{"rotating derived", "", ptr(int64(0)), "acc/0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := staticAccount("acc", func(a *v1alpha1.ImageRegistryAccount) {
				a.Spec.Username, a.Spec.Rotation = tc.username, tc.rotation
			})
			f := newFixture(t, a)
			f.sync(a)
			f.expectStatus(a, tc.want, metav1.ConditionTrue, ReasonActive)
			// The authenticator accepts exactly this name for the
			// current rotation.
			l, ok := authn.ParseLogin(tc.want)
			if !ok {
				t.Fatalf("authn.ParseLogin(%q) refuses the login name", tc.want)
			}
			if tc.rotation != nil && (!l.HasRotation || l.Rotation != *tc.rotation || l.Base != authn.Username(a)) {
				t.Errorf("login %q parses as %+v, want rotation %d of %q", tc.want, l, *tc.rotation, authn.Username(a))
			}
		})
	}
}

func TestExpiredAccountIsNotReady(t *testing.T) {
	a := staticAccount("old", expiresAt(testStart.Add(-time.Hour)))
	f := newFixture(t, a)
	f.sync(a)
	c := f.expectStatus(a, "old", metav1.ConditionFalse, ReasonExpired)
	if !strings.Contains(c.Message, "2026-03-01T11:00:00Z") {
		t.Errorf("message %q lacks the expiry", c.Message)
	}
	// Expiry is routine: the status says it, no event.
	if ev := f.events(); len(ev) != 0 {
		t.Errorf("events: %v", ev)
	}
}

func TestAccountTurnsExpiredAtExpiresAt(t *testing.T) {
	exp := testStart.Add(10 * time.Minute)
	a := staticAccount("soon", expiresAt(exp))
	f := newFixture(t, a)
	ctrl := f.sync(a)
	c := f.expectStatus(a, "soon", metav1.ConditionTrue, ReasonActive)
	if !strings.Contains(c.Message, "until 2026-03-01T12:10:00Z") {
		t.Errorf("message %q lacks the expiry", c.Message)
	}
	// The sync scheduled itself for the expiry, on the injected clock.
	if n := ctrl.queue.Len(); n != 0 {
		t.Fatalf("queue holds %d keys before the expiry", n)
	}
	f.clock.Step(10 * time.Minute)
	waitForQueue(t, ctrl, 1)
	key, _ := ctrl.queue.Get()
	if key != cache.MetaObjectToName(a) {
		t.Fatalf("queued %v, want %v", key, cache.MetaObjectToName(a))
	}
	ctrl.queue.Done(key)
	f.sync(a)
	f.expectStatus(a, "soon", metav1.ConditionFalse, ReasonExpired)
}

func TestInvalidPasswordIsReportedWithoutTheHash(t *testing.T) {
	const notAHash = "plaintext-password-by-mistake"
	a := staticAccount("typo", func(a *v1alpha1.ImageRegistryAccount) {
		a.Spec.Passwords = append(a.Spec.Passwords, notAHash)
	})
	f := newFixture(t, a)
	f.sync(a)
	c := f.expectStatus(a, "typo", metav1.ConditionFalse, ReasonInvalidPassword)
	if !strings.Contains(c.Message, "spec.passwords[1]") {
		t.Errorf("message %q does not name the entry", c.Message)
	}
	ev := f.events()
	if len(ev) != 1 || !strings.HasPrefix(ev[0], warning(ReasonInvalidPassword)) {
		t.Fatalf("events = %v, want one %s warning", ev, ReasonInvalidPassword)
	}
	for _, s := range append(ev, c.Message) {
		if strings.Contains(s, notAHash) || strings.Contains(s, testHash) {
			t.Errorf("a password entry leaked into %q", s)
		}
	}
	// The warning comes once, when the condition turns, not every sync.
	f.clock.Step(time.Minute)
	f.sync(a)
	f.expectActions()
	if ev := f.events(); len(ev) != 0 {
		t.Errorf("events on an unchanged sync: %v", ev)
	}
}

func TestInvalidLoginName(t *testing.T) {
	a := staticAccount("spaced", func(a *v1alpha1.ImageRegistryAccount) { a.Spec.Username = "ci bot" })
	f := newFixture(t, a)
	f.sync(a)
	f.expectStatus(a, "ci bot", metav1.ConditionFalse, ReasonInvalidLoginName)
	if ev := f.events(); len(ev) != 1 || !strings.HasPrefix(ev[0], warning(ReasonInvalidLoginName)) {
		t.Errorf("events = %v, want one %s warning", ev, ReasonInvalidLoginName)
	}
}

func TestSpecChangeUpdatesObservedGeneration(t *testing.T) {
	a := staticAccount("ci-bot", expiresAt(testStart.Add(-time.Hour)))
	f := newFixture(t, a)
	f.sync(a)
	f.expectStatus(a, "ci-bot", metav1.ConditionFalse, ReasonExpired)

	// An admin extends the account (the API server bumps generation).
	cur := f.account(a.Namespace, a.Name)
	cur.Spec.ExpiresAt = &metav1.Time{Time: testStart.Add(24 * time.Hour)}
	cur.Generation = 2
	if _, err := f.client.RegistryV1alpha1().ImageRegistryAccounts(a.Namespace).Update(f.ctx, cur, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	f.clock.Step(time.Minute)
	f.sync(a)
	f.expectActions("update imageregistryaccounts/status registry/ci-bot")
	c := f.expectStatus(a, "ci-bot", metav1.ConditionTrue, ReasonActive)
	if want := testStart.Add(time.Minute); !c.LastTransitionTime.Time.Equal(want) {
		t.Errorf("lastTransitionTime = %v, want the sync's time %v", c.LastTransitionTime, want)
	}
}

// Generated accounts get no status: their cache entries stay compact, and
// their events never reach the queue.
func TestGeneratedAccountIsLeftAlone(t *testing.T) {
	owner := credentials.Owner{Kind: credentials.KindPush, Namespace: "team-a", Name: "app", UID: "uid-push"}
	gen := credentials.NewAccount(owner, types.NamespacedName{Namespace: "registry", Name: "registry"}, 3, []string{testHash, testHash})
	gen.UID, gen.Generation = "uid-account", 1
	f := newFixture(t, gen)
	ctrl := f.sync(gen)
	f.expectActions()
	if got := f.account(gen.Namespace, gen.Name); got.Status.LoginName != "" || len(got.Status.Conditions) != 0 {
		t.Errorf("generated account got a status: %+v", got.Status)
	}

	cached, err := objectcache.Transform(gen.DeepCopy())
	if err != nil {
		t.Fatal(err)
	}
	if _, typed := cached.(*v1alpha1.ImageRegistryAccount); typed {
		t.Fatal("the generated account is not cached compact; the test would not show the handler copes with compact entries")
	}
	ctrl.enqueueStatic(cached)
	ctrl.enqueueStatic(cache.DeletedFinalStateUnknown{Key: gen.Namespace + "/" + gen.Name, Obj: cached})
	if n := ctrl.queue.Len(); n != 0 {
		t.Errorf("queue holds %d keys after events of a generated account", n)
	}
	static := staticAccount("ci-bot")
	ctrl.enqueueStatic(static)
	if n := ctrl.queue.Len(); n != 1 {
		t.Errorf("queue holds %d keys after an event of a static account, want 1", n)
	}
}

func TestDeletedAccountIsNoError(t *testing.T) {
	f := newFixture(t)
	c := f.controller()
	if err := c.syncHandler(f.ctx, cache.NewObjectName("registry", "gone")); err != nil {
		t.Fatal(err)
	}
	f.expectActions()
}

func waitForQueue(t *testing.T, c *Controller, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for c.queue.Len() != n {
		if time.Now().After(deadline) {
			t.Fatalf("queue holds %d keys, want %d", c.queue.Len(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func ptr[T any](v T) *T { return &v }
