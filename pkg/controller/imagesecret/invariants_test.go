package imagesecret

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	core "k8s.io/client-go/testing"

	"github.com/image-registry-operator/image-registry-operator/pkg/apis/registry/v1alpha1"
	"github.com/image-registry-operator/image-registry-operator/pkg/credentials"
)

// Invariant 1: no password reaches a Secret before its hash is published in
// the status and the account. The fixture checks every Secret write against
// the API state at that moment; this test drives every transition through it
// and shows the check is not vacuous.
func TestInvariant1PublishBeforeSecret(t *testing.T) {
	f := created(t, credentials.KindPush)
	f.clock.Step(25 * time.Hour) // rotate
	f.mustSync("team", "ci")
	w := f.actions()
	i := index(w, "update imagepushsecrets/status team/ci")
	j := index(w, "update imageregistryaccounts infra/push.team.ci")
	k := index(w, "update secrets team/ci-image-push-secret")
	if !(i >= 0 && i < j && j < k) {
		t.Errorf("write order %q: want status, account, Secret", w)
	}
	f.clock.Step(DefaultGracePeriod) // grace ends
	f.mustSync("team", "ci")
	if err := f.kube.Tracker().Delete(gvrSecret, "team", "ci-image-push-secret"); err != nil {
		t.Fatal(err)
	}
	f.mustSync("team", "ci") // reset
	f.clock.Step(DefaultGracePeriod)
	f.mustSync("team", "ci")
	f.updateObject("team", "ci", func(cr *imageSecret) { cr.meta.Annotations = map[string]string{v1alpha1.AnnotationRotate: "1"} })
	f.mustSync("team", "ci") // manual rotation
	if f.secretPuts < 4 {
		t.Errorf("only %d Secret writes were checked", f.secretPuts)
	}

	// The check itself rejects an unpublished password.
	s := f.secret("team", "ci").DeepCopy()
	s.Data[credentials.KeyNextPassword] = []byte("not-published")
	if msg := f.secretPublished(s); !strings.Contains(msg, "not published") {
		t.Errorf("checker accepted an unpublished password: %q", msg)
	}
}

// Invariant 2: a replaced password stops working at most the grace period
// after it left the Secret, driven by an AddAfter timer and not by resync.
func TestInvariant2GracePeriodBound(t *testing.T) {
	f := created(t, credentials.KindPush)
	old := f.secret("team", "ci")
	f.clock.Step(25 * time.Hour)
	f.mustSync("team", "ci")
	drain(f, 200*time.Millisecond)

	f.clock.Step(DefaultGracePeriod - time.Second)
	time.Sleep(50 * time.Millisecond)
	if n := f.c.queue.Len(); n != 0 {
		t.Fatalf("%d items queued before the grace period ended", n)
	}
	if !accountAccepts(f.account("team", "ci"), "team/ci/0", string(old.Data[credentials.KeyPassword])) {
		t.Error("old password rejected within the grace period")
	}
	f.clock.Step(time.Second)
	key := waitQueued(t, f)
	if key != "team/ci" {
		t.Fatalf("timer fired for %q", key)
	}
	f.mustSync("team", "ci")
	if accountAccepts(f.account("team", "ci"), "team/ci/0", string(old.Data[credentials.KeyPassword])) {
		t.Error("old password accepted after the grace period")
	}
	f.assertSecretWorks("team", "ci")
}

// The grace period runs from when the Secret changed, not from when the
// rotation began: if the operator stops between publishing and writing the
// Secret, the old password must outlive the Secret change by the full period.
func TestInvariant2GraceCountsFromSecretChange(t *testing.T) {
	f := created(t, credentials.KindPush)
	f.clock.Step(25 * time.Hour)
	f.failAt = f.writes + 3 // status, account, then the Secret write fails
	if err := f.sync("team", "ci"); err == nil {
		t.Fatal("expected the injected failure")
	}
	held := f.secret("team", "ci") // still the old content
	f.failAt = 0
	f.clock.Step(time.Hour) // the operator was down for an hour
	f.mustSync("team", "ci")
	if !accountAccepts(f.account("team", "ci"), string(held.Data[credentials.KeyUsername]), string(held.Data[credentials.KeyPassword])) {
		t.Fatal("a client of the Secret as it was until now was locked out")
	}
	f.clock.Step(DefaultGracePeriod - time.Second)
	f.mustSync("team", "ci")
	if !accountAccepts(f.account("team", "ci"), string(held.Data[credentials.KeyUsername]), string(held.Data[credentials.KeyPassword])) {
		t.Error("old password dropped before the grace period after the Secret change")
	}
	f.clock.Step(time.Second)
	f.mustSync("team", "ci")
	if accountAccepts(f.account("team", "ci"), string(held.Data[credentials.KeyUsername]), string(held.Data[credentials.KeyPassword])) {
		t.Error("old password kept past the grace period")
	}
}

// Invariant 3: deleting the object revokes its credentials.
func TestInvariant3DeletionRevokes(t *testing.T) {
	f := created(t, credentials.KindPull)
	s := f.secret("team", "ci")
	acc := f.account("team", "ci")
	if !accountAccepts(acc, string(s.Data[credentials.KeyUsername]), string(s.Data[credentials.KeyPassword])) {
		t.Fatal("credentials do not work before deletion")
	}
	f.updateObject("team", "ci", func(cr *imageSecret) { cr.meta.DeletionTimestamp = &metav1.Time{Time: f.clock.Now()} })
	f.mustSync("team", "ci")
	var deleted bool
	for _, a := range f.client.Actions() {
		if d, ok := a.(core.DeleteAction); ok && a.GetResource().Resource == "imageregistryaccounts" {
			deleted = true
			if p := d.GetDeleteOptions().Preconditions; p == nil || p.UID == nil || *p.UID != acc.UID {
				t.Errorf("account delete without the UID precondition: %+v", p)
			}
		}
	}
	if !deleted || f.account("team", "ci") != nil {
		t.Fatal("account not deleted")
	}
	if f.object("team", "ci") != nil {
		t.Error("finalizer not removed")
	}
}

// The finalizer is on the object before the account exists, so an account
// cannot outlive its object even if the first sync stops half way.
func TestInvariant3FinalizerBeforeAccount(t *testing.T) {
	f := newFixture(t, credentials.KindPush, registry(regNS, regName, true), newObject(credentials.KindPush, "team", "ci"))
	f.mustSync("team", "ci")
	a := f.actions()
	if i, j := index(a, "update imagepushsecrets team/ci"), index(a, "create imageregistryaccounts infra/push.team.ci"); i < 0 || i > j {
		t.Errorf("actions %q: finalizer must come first", a)
	}
}

// A stale cache must not lead to a second rotation: a decision from a
// cache behind the controller's own writes writes with the resourceVersion
// it read, the API server refuses it (Conflict), and the live reads that
// follow show the rotation already done.
func TestStaleCacheDoesNotRotateTwice(t *testing.T) {
	f := created(t, credentials.KindPush)
	f.clock.Step(25 * time.Hour)
	f.mustSync("team", "ci")
	// Caches still show rotation 0; the API already has rotation 1.
	f.clearActions()
	if err := f.c.syncHandler(t.Context(), cacheName("team", "ci")); err != nil {
		t.Fatal(err)
	}
	f.expectActions(
		"update imagepushsecrets/status team/ci", // refused: Conflict
		"get imagepushsecrets team/ci",
		"get secrets team/ci-image-push-secret",
		"get imageregistryaccounts infra/push.team.ci",
	)
	if r := f.object("team", "ci").status.Rotation; r != 1 {
		t.Errorf("rotation %d, want 1", r)
	}
}

// Invariant 4: a crash at any step loses no access for clients of the
// current Secret and leaves no credential without an owner. Each scenario is
// replayed once per write it makes, failing that write; then the operator
// "restarts" (possibly much later) and converges.
func TestInvariant4CrashAtEveryStep(t *testing.T) {
	type scenario struct {
		name    string
		fresh   bool             // start without issued credentials
		setup   func(f *fixture) // reach the state before the step
		perturb func(f *fixture) // what triggers the step
		deleted bool             // the object goes away
	}
	step := func(d time.Duration) func(*fixture) { return func(f *fixture) { f.clock.Step(d) } }
	rotated := func(f *fixture) { f.clock.Step(25 * time.Hour); f.converge() }
	deleteSecret := func(f *fixture) {
		if err := f.kube.Tracker().Delete(gvrSecret, "team", "ci-image-push-secret"); err != nil {
			f.t.Fatal(err)
		}
	}
	scenarios := []scenario{
		{name: "create", fresh: true, perturb: func(*fixture) {}},
		{name: "rotate", perturb: step(25 * time.Hour)},
		{name: "grace end", setup: rotated, perturb: step(DefaultGracePeriod)},
		{name: "rotate after grace", setup: rotated, perturb: step(25 * time.Hour)},
		{name: "secret deleted", perturb: deleteSecret},
		{name: "secret deleted in grace", setup: rotated, perturb: deleteSecret},
		{name: "manual rotate", perturb: func(f *fixture) {
			f.updateObject("team", "ci", func(cr *imageSecret) { cr.meta.Annotations = map[string]string{v1alpha1.AnnotationRotate: "now"} })
		}},
		{name: "object deleted", deleted: true, perturb: func(f *fixture) {
			f.updateObject("team", "ci", func(cr *imageSecret) { cr.meta.DeletionTimestamp = &metav1.Time{Time: f.clock.Now()} })
		}},
	}
	for _, sc := range scenarios {
		for _, downtime := range []time.Duration{0, 6 * time.Minute, 30 * time.Hour} {
			t.Run(fmt.Sprintf("%s/down %v", sc.name, downtime), func(t *testing.T) {
				t.Parallel()
				for n := 1; ; n++ {
					f := newFixture(t, credentials.KindPush, registry(regNS, regName, true), newObject(credentials.KindPush, "team", "ci"))
					if !sc.fresh {
						f.converge()
					}
					if sc.setup != nil {
						sc.setup(f)
					}
					held := f.secret("team", "ci")
					sc.perturb(f)

					f.failAt = f.writes + n
					err := f.sync("team", "ci")
					crashed := f.writes >= f.failAt
					f.failAt = 0
					where := fmt.Sprintf("write %d failed", n)
					if !crashed {
						where = "no failure"
						if err != nil {
							t.Fatalf("sync without failure: %v", err)
						}
					}
					f.checkInvariant4(where)
					if held != nil && !sc.deleted && !accountAccepts(f.account("team", "ci"), string(held.Data[credentials.KeyUsername]), string(held.Data[credentials.KeyPassword])) {
						t.Errorf("%s: a client of the Secret before the step was locked out", where)
					}

					f.clock.Step(downtime)
					f.converge()
					// Whoever read the Secret before the step keeps access
					// for the grace period after the Secret changed.
					if held != nil && !sc.deleted && downtime < DefaultGracePeriod &&
						!accountAccepts(f.account("team", "ci"), string(held.Data[credentials.KeyUsername]), string(held.Data[credentials.KeyPassword])) {
						t.Errorf("%s: a client of the Secret before the step lost access within the grace period", where)
					}
					if sc.deleted {
						if f.object("team", "ci") != nil || f.account("team", "ci") != nil {
							t.Errorf("%s: object or account left after deletion", where)
						}
					} else {
						f.assertSecretWorks("team", "ci")
						c := meta.FindStatusCondition(f.object("team", "ci").status.Conditions, v1alpha1.ConditionReady)
						if c == nil || c.Status != metav1.ConditionTrue {
							t.Errorf("%s: not Ready after recovery: %+v", where, c)
						}
					}
					if !crashed {
						t.Logf("failed each of %d writes in turn", n-1)
						if n < 2 && !sc.deleted {
							t.Errorf("scenario made %d writes", n-1)
						}
						return
					}
				}
			})
		}
	}
}

// converge syncs until a sync succeeds without writing, checking invariant
// 4 after every sync.
func (f *fixture) converge() {
	f.t.Helper()
	for i := 0; i < 10; i++ {
		err := f.sync("team", "ci")
		f.checkInvariant4(fmt.Sprintf("recovery sync %d", i))
		if err == nil && len(f.writeActions()) == 0 {
			return
		}
	}
	f.t.Fatalf("no convergence; last actions %q", f.actions())
}

// checkInvariant4: the current Secret's passwords log in against both the
// status and the account, and every operator-made account has its object.
func (f *fixture) checkInvariant4(where string) {
	f.t.Helper()
	cr := f.object("team", "ci")
	if s := f.secret("team", "ci"); s != nil && cr != nil && cr.meta.DeletionTimestamp == nil {
		acc := f.account("team", "ci")
		user := string(s.Data[credentials.KeyUsername])
		next, err := bumpRotation(user)
		if err != nil {
			f.t.Fatal(err)
		}
		for _, c := range []struct{ user, password string }{{user, string(s.Data[credentials.KeyPassword])}, {next, string(s.Data[credentials.KeyNextPassword])}} {
			if !statusAccepts(cr.status, c.user, c.password) || !accountAccepts(acc, c.user, c.password) {
				f.t.Errorf("%s: Secret password for %s does not log in (status %v, account %v)", where, c.user,
					statusAccepts(cr.status, c.user, c.password), accountAccepts(acc, c.user, c.password))
			}
		}
	}
	list, err := f.client.Tracker().List(gvrAccount, v1alpha1.SchemeGroupVersion.WithKind("ImageRegistryAccount"), "")
	if err != nil {
		f.t.Fatal(err)
	}
	for _, a := range list.(*v1alpha1.ImageRegistryAccountList).Items {
		_, ns, name, ok := credentials.ParseOwnerKey(a.Annotations[v1alpha1.AnnotationOwner])
		if !ok || f.object(ns, name) == nil {
			f.t.Errorf("%s: account %s/%s has no object", where, a.Namespace, a.Name)
		}
	}
}

func index(list []string, s string) int {
	for i, v := range list {
		if v == s {
			return i
		}
	}
	return -1
}

func drain(f *fixture, d time.Duration) {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if f.c.queue.Len() > 0 {
			k, _ := f.c.queue.Get()
			f.c.queue.Done(k)
			continue
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func waitQueued(t *testing.T, f *fixture) string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if f.c.queue.Len() > 0 {
			k, _ := f.c.queue.Get()
			f.c.queue.Done(k)
			return k.String()
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("the timer did not fire")
	return ""
}

// Invariant 2 holds while the registry is not ready (a rollout, a lost
// pod): issued credentials keep rotating and the replaced password still
// expires after the grace period.
func TestInvariant2WhileRegistryNotReady(t *testing.T) {
	f := created(t, credentials.KindPush)
	old := f.secret("team", "ci")
	reg := registry(regNS, regName, false)
	if _, err := f.client.RegistryV1alpha1().ImageRegistries(regNS).UpdateStatus(context.Background(), reg, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	f.clock.Step(25 * time.Hour)
	f.mustSync("team", "ci")
	if got := f.secret("team", "ci"); string(got.Data[credentials.KeyPassword]) == string(old.Data[credentials.KeyPassword]) {
		t.Fatal("no rotation while the registry was not ready")
	}
	f.clock.Step(DefaultGracePeriod)
	f.mustSync("team", "ci")
	if accountAccepts(f.account("team", "ci"), "team/ci/0", string(old.Data[credentials.KeyPassword])) {
		t.Error("replaced password outlived its grace period while the registry was not ready")
	}
	f.assertSecretWorks("team", "ci")
}

// Invariant 2 against an edited Secret: a rotated-at annotation moved into
// the future by someone who may write the Secret neither stretches the
// grace period nor stops rotation; the Secret is restored.
func TestInvariant2IgnoresFutureRotatedAt(t *testing.T) {
	f := created(t, credentials.KindPush)
	old := f.secret("team", "ci")
	f.clock.Step(25 * time.Hour)
	f.mustSync("team", "ci") // rotation 1: the old password is now previous
	s := f.secret("team", "ci").DeepCopy()
	s.Annotations[v1alpha1.AnnotationRotatedAt] = "2099-01-01T00:00:00Z"
	if _, err := f.kube.CoreV1().Secrets("team").Update(context.Background(), s, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	f.clock.Step(DefaultGracePeriod)
	f.mustSync("team", "ci")
	if accountAccepts(f.account("team", "ci"), "team/ci/0", string(old.Data[credentials.KeyPassword])) {
		t.Error("a future rotated-at kept the replaced password alive past its grace period")
	}
	if got := f.secret("team", "ci").Annotations[v1alpha1.AnnotationRotatedAt]; got == "2099-01-01T00:00:00Z" {
		t.Error("the forged rotated-at was kept")
	}
	f.assertSecretWorks("team", "ci")
}
