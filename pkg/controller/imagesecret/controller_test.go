package imagesecret

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	clienttesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/cache"
	"k8s.io/component-base/metrics/testutil"

	"github.com/image-registry-operator/image-registry-operator/pkg/apis/registry/v1alpha1"
	"github.com/image-registry-operator/image-registry-operator/pkg/credentials"
	"github.com/image-registry-operator/image-registry-operator/pkg/metrics"
)

func TestFirstCreation(t *testing.T) {
	for _, tc := range []struct {
		kind       credentials.Kind
		resource   string
		account    string // namespace/name
		secret     string // namespace/name
		secretType corev1.SecretType
		configKey  string
	}{
		{credentials.KindPush, "imagepushsecrets", "infra/push.team.ci", "team/ci-image-push-secret", corev1.SecretTypeOpaque, "config.json"},
		{credentials.KindPull, "imagepullsecrets", "infra/pull.team.ci", "team/ci-image-pull-secret", corev1.SecretTypeDockerConfigJson, ".dockerconfigjson"},
	} {
		t.Run(string(tc.kind), func(t *testing.T) {
			f := newFixture(t, tc.kind, registry(regNS, regName, true), newObject(tc.kind, "team", "ci"))
			f.mustSync("team", "ci")
			f.expectActions(
				"update "+tc.resource+" team/ci", // finalizer
				// No live reads: a new object only gets conditional writes.
				"update "+tc.resource+"/status team/ci", // hashes published
				"create imageregistryaccounts "+tc.account,
				"create secrets "+tc.secret,
				"update "+tc.resource+"/status team/ci", // Ready
			)
			f.expectEvents() // routine: no event

			cr := f.object("team", "ci")
			st := cr.status
			if st.Rotation != 0 || len(st.Passwords) != 2 || st.Registry != regHost || st.SecretName != "ci-image-"+string(tc.kind)+"-secret" ||
				st.RegistryRef == nil || *st.RegistryRef != (v1alpha1.RegistryRef{Name: regName, Namespace: regNS}) ||
				st.RotationDate == nil || !st.RotationDate.Time.Equal(t0) || st.ObservedGeneration != 1 {
				t.Errorf("unexpected status %+v", st)
			}
			if c := meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionReady); c == nil || c.Status != metav1.ConditionTrue || c.Reason != ReasonIssued || c.ObservedGeneration != 1 {
				t.Errorf("Ready condition %+v", c)
			}
			if len(cr.meta.Finalizers) != 1 || cr.meta.Finalizers[0] != v1alpha1.FinalizerAccountCleanup {
				t.Errorf("finalizers %v", cr.meta.Finalizers)
			}

			s := f.secret("team", "ci")
			if s.Type != tc.secretType {
				t.Errorf("type %s", s.Type)
			}
			if s.Labels[v1alpha1.LabelManagedBy] != v1alpha1.ManagedByValue {
				t.Errorf("labels %v", s.Labels)
			}
			if ref := metav1.GetControllerOf(s); ref == nil || ref.UID != cr.meta.UID || ref.Kind != f.c.objects.groupVersionKind().Kind {
				t.Errorf("controller ref %+v", ref)
			}
			password := string(s.Data[credentials.KeyPassword])
			if len(password) != 43 || string(s.Data[credentials.KeyNextPassword]) == password || len(s.Data[credentials.KeyNextPassword]) != 43 {
				t.Errorf("passwords of unexpected shape")
			}
			if string(s.Data[credentials.KeyUsername]) != "team/ci/0" || string(s.Data[credentials.KeyRegistry]) != regHost || string(s.Data[credentials.KeyCA]) != regCA {
				t.Errorf("Secret data username=%q registry=%q ca=%q", s.Data[credentials.KeyUsername], s.Data[credentials.KeyRegistry], s.Data[credentials.KeyCA])
			}
			// The docker config format, as docker and crane read it.
			var cfg struct {
				Auths map[string]struct{ Username, Password, Auth string } `json:"auths"`
			}
			if err := json.Unmarshal(s.Data[tc.configKey], &cfg); err != nil {
				t.Fatalf("docker config: %v", err)
			}
			auth := cfg.Auths[regHost]
			if auth.Username != "team/ci/0" || auth.Password != password || auth.Auth != base64.StdEncoding.EncodeToString([]byte("team/ci/0:"+password)) || len(cfg.Auths) != 1 {
				t.Errorf("docker config entry for %s is wrong", regHost)
			}

			acc := f.account("team", "ci")
			if acc == nil {
				t.Fatal("no account")
			}
			if acc.Name != string(tc.kind)+".team.ci" || acc.Spec.Username != "team/ci" || acc.Spec.Rotation == nil || *acc.Spec.Rotation != 0 ||
				strings.Join(acc.Spec.Passwords, ",") != strings.Join(st.Passwords, ",") {
				t.Errorf("account %s spec %+v", acc.Name, acc.Spec)
			}
			if l := acc.Spec.Labels; strings.Join(l["namespace"], ",") != "team" || strings.Join(l["name"], ",") != "ci" || strings.Join(l["type"], ",") != string(tc.kind) {
				t.Errorf("account labels %v", l)
			}
			if acc.Labels[v1alpha1.LabelManagedBy] != v1alpha1.ManagedByValue || acc.Labels[v1alpha1.LabelType] != string(tc.kind) || acc.Annotations[v1alpha1.AnnotationOwner] != string(tc.kind)+"/team/ci" {
				t.Errorf("account metadata %v %v", acc.Labels, acc.Annotations)
			}
			f.assertSecretWorks("team", "ci")
		})
	}
}

func TestSteadyStateWritesNothing(t *testing.T) {
	f := created(t, credentials.KindPush)
	f.clock.Step(23 * time.Hour)
	f.mustSync("team", "ci")
	f.expectActions()
	f.expectEvents()
}

func TestRotationWhenDue(t *testing.T) {
	f := created(t, credentials.KindPush)
	before := f.secret("team", "ci")
	st := f.object("team", "ci").status
	if st.NextRotationDate == nil || st.RotationDate == nil {
		t.Fatalf("status has no rotation dates: %+v", st)
	}
	interval := st.NextRotationDate.Sub(st.RotationDate.Time)
	if interval < DefaultRotationInterval || interval > DefaultRotationInterval+jitterSpan(DefaultRotationInterval)+time.Second {
		t.Fatalf("nextRotationDate is %v after rotationDate, want the interval plus at most its jitter", interval)
	}

	f.clock.Step(interval - time.Second)
	f.mustSync("team", "ci")
	f.expectActions()

	f.clock.Step(time.Second)
	f.mustSync("team", "ci")
	// The cache holds this process's last writes: no live reads.
	f.expectActions(
		"update imagepushsecrets/status team/ci",
		"update imageregistryaccounts infra/push.team.ci",
		"update secrets team/ci-image-push-secret",
	)
	f.expectEvents()
	st = f.object("team", "ci").status
	if st.Rotation != 1 || len(st.Passwords) != 3 || !st.RotationDate.Time.Equal(f.clock.Now()) {
		t.Errorf("status after rotation: rotation %d, %d hashes, date %v", st.Rotation, len(st.Passwords), st.RotationDate)
	}
	after := f.secret("team", "ci")
	if string(after.Data[credentials.KeyPassword]) != string(before.Data[credentials.KeyNextPassword]) || string(after.Data[credentials.KeyUsername]) != "team/ci/1" {
		t.Error("the next password did not become current")
	}
	if string(after.Data[credentials.KeyNextPassword]) == string(before.Data[credentials.KeyNextPassword]) {
		t.Error("no new next password")
	}
	f.assertSecretWorks("team", "ci")
	// The replaced password keeps working during the grace period.
	if !accountAccepts(f.account("team", "ci"), "team/ci/0", string(before.Data[credentials.KeyPassword])) {
		t.Error("previous password rejected during the grace period")
	}
}

func TestRotationIntervalFromSpec(t *testing.T) {
	f := created(t, credentials.KindPush)
	f.updateObject("team", "ci", func(cr *imageSecret) { cr.spec.RotationInterval = &metav1.Duration{Duration: time.Hour} })
	f.mustSync("team", "ci") // publishes the new nextRotationDate
	f.expectActions("update imagepushsecrets/status team/ci")
	st := f.object("team", "ci").status
	if d := st.NextRotationDate.Sub(st.RotationDate.Time); d < time.Hour || d > time.Hour+jitterSpan(time.Hour)+time.Second {
		t.Fatalf("nextRotationDate is %v after rotationDate, want 1h plus at most its jitter", d)
	}
	f.clock.SetTime(st.NextRotationDate.Time)
	f.mustSync("team", "ci")
	if got := f.object("team", "ci").status.Rotation; got != 1 {
		t.Errorf("rotation %d after spec interval, want 1", got)
	}
}

func TestGracePeriodEnds(t *testing.T) {
	f := created(t, credentials.KindPush)
	old := string(f.secret("team", "ci").Data[credentials.KeyPassword])
	f.clock.Step(25 * time.Hour)
	f.mustSync("team", "ci")
	f.events()

	f.clock.Step(DefaultGracePeriod - time.Second)
	f.mustSync("team", "ci")
	f.expectActions()

	f.clock.Step(time.Second)
	f.mustSync("team", "ci")
	f.expectActions("update imagepushsecrets/status team/ci", "update imageregistryaccounts infra/push.team.ci")
	f.expectEvents()
	if n := len(f.object("team", "ci").status.Passwords); n != 2 {
		t.Errorf("%d hashes after the grace period", n)
	}
	if accountAccepts(f.account("team", "ci"), "team/ci/0", old) {
		t.Error("previous password still accepted after the grace period")
	}
	f.assertSecretWorks("team", "ci")
}

func TestSecretDeletedIsRecreatedWithFreshPasswords(t *testing.T) {
	f := created(t, credentials.KindPull)
	old := f.secret("team", "ci")
	if err := f.kube.Tracker().Delete(gvrSecret, "team", old.Name); err != nil {
		t.Fatal(err)
	}
	f.mustSync("team", "ci")
	f.expectActions(
		"get imagepullsecrets team/ci", "get secrets team/ci-image-pull-secret", "get imageregistryaccounts infra/pull.team.ci",
		"update imagepullsecrets/status team/ci",
		"update imageregistryaccounts infra/pull.team.ci",
		"create secrets team/ci-image-pull-secret",
		"update imagepullsecrets/status team/ci",
	)
	f.expectEvents("Warning PasswordsReset")
	s := f.secret("team", "ci")
	if string(s.Data[credentials.KeyUsername]) != "team/ci/1" || string(s.Data[credentials.KeyPassword]) == string(old.Data[credentials.KeyNextPassword]) {
		t.Error("expected fresh passwords at rotation 1")
	}
	f.assertSecretWorks("team", "ci")
	// Copies of the deleted Secret keep working for the grace period only.
	acc := f.account("team", "ci")
	if !accountAccepts(acc, "team/ci/0", string(old.Data[credentials.KeyPassword])) {
		t.Error("old password rejected within the grace period")
	}
	if accountAccepts(acc, "team/ci/1", string(old.Data[credentials.KeyNextPassword])) {
		t.Error("the lost next password was kept")
	}
	f.clock.Step(DefaultGracePeriod)
	f.mustSync("team", "ci")
	if accountAccepts(f.account("team", "ci"), "team/ci/0", string(old.Data[credentials.KeyPassword])) {
		t.Error("old password accepted after the grace period")
	}
}

func TestSecretEditedIsRestored(t *testing.T) {
	f := created(t, credentials.KindPush)
	good := f.secret("team", "ci").DeepCopy()
	edited := good.DeepCopy()
	edited.Data[credentials.KeyUsername] = []byte("someone")
	edited.Data[credentials.KeyPushConfig] = []byte("{}")
	edited.Data["extra"] = []byte("x")
	delete(edited.Data, credentials.KeyCA)
	f.edit(f.kube.Tracker(), gvrSecret, edited, "team")
	statusBefore := f.object("team", "ci").status.DeepCopy()
	f.mustSync("team", "ci")
	// The cached Secret is newer than this process's last write: no live
	// reads; the update carries its resourceVersion.
	f.expectActions("update secrets team/ci-image-push-secret")
	f.expectEvents("Normal SecretRestored")
	s := f.secret("team", "ci")
	if len(s.Data) != len(good.Data) || string(s.Data[credentials.KeyUsername]) != "team/ci/0" || string(s.Data[credentials.KeyPushConfig]) != string(good.Data[credentials.KeyPushConfig]) || string(s.Data[credentials.KeyCA]) != regCA {
		t.Error("Secret not restored")
	}
	if st := f.object("team", "ci").status; st.Rotation != statusBefore.Rotation || strings.Join(st.Passwords, ",") != strings.Join(statusBefore.Passwords, ",") {
		t.Error("restoring a Secret with intact passwords must not change the hashes")
	}
}

func TestSecretWithoutLabelIsRestored(t *testing.T) {
	f := created(t, credentials.KindPush)
	s := f.secret("team", "ci").DeepCopy()
	delete(s.Labels, v1alpha1.LabelManagedBy)
	f.edit(f.kube.Tracker(), gvrSecret, s, "team")
	// The filtered informer no longer sees it; the live read does.
	f.mustSync("team", "ci")
	f.expectActions(
		"get imagepushsecrets team/ci", "get secrets team/ci-image-push-secret", "get imageregistryaccounts infra/push.team.ci",
		"update secrets team/ci-image-push-secret",
	)
	if got := f.secret("team", "ci"); got.Labels[v1alpha1.LabelManagedBy] != v1alpha1.ManagedByValue || string(got.Data[credentials.KeyPassword]) != string(s.Data[credentials.KeyPassword]) {
		t.Error("label not restored or password changed")
	}
}

func TestSecretPasswordEditedRotates(t *testing.T) {
	f := created(t, credentials.KindPush)
	s := f.secret("team", "ci").DeepCopy()
	s.Data[credentials.KeyPassword] = []byte("guessed")
	f.edit(f.kube.Tracker(), gvrSecret, s, "team")
	f.mustSync("team", "ci")
	f.expectEvents("Warning PasswordsReset")
	if string(f.secret("team", "ci").Data[credentials.KeyUsername]) != "team/ci/1" {
		t.Error("expected a reset to rotation 1")
	}
	f.assertSecretWorks("team", "ci")
}

func TestForeignSecretIsNotOverwritten(t *testing.T) {
	foreign := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "ci-image-push-secret"}, Data: map[string][]byte{"mine": []byte("x")}}
	f := newFixture(t, credentials.KindPush, registry(regNS, regName, true), newObject(credentials.KindPush, "team", "ci"), foreign)
	if err := f.sync("team", "ci"); err == nil {
		t.Fatal("expected an error")
	}
	if s := f.secret("team", "ci"); string(s.Data["mine"]) != "x" || len(s.Data) != 1 {
		t.Error("foreign Secret was changed")
	}
	c := meta.FindStatusCondition(f.object("team", "ci").status.Conditions, v1alpha1.ConditionReady)
	if c == nil || c.Status != metav1.ConditionFalse || c.Reason != ReasonSecretConflict {
		t.Errorf("Ready %+v", c)
	}
	// Retries change nothing until the conflict is gone.
	before := f.object("team", "ci").status.DeepCopy()
	if err := f.sync("team", "ci"); err == nil {
		t.Fatal("expected an error")
	}
	if w := f.writeActions(); len(w) != 0 {
		t.Errorf("a retry wrote %q", w)
	}
	if st := f.object("team", "ci").status; st.Rotation != before.Rotation || strings.Join(st.Passwords, ",") != strings.Join(before.Passwords, ",") {
		t.Error("a retry issued new hashes")
	}
}

func TestManualRotation(t *testing.T) {
	f := created(t, credentials.KindPush)
	f.updateObject("team", "ci", func(cr *imageSecret) {
		cr.meta.Annotations = map[string]string{v1alpha1.AnnotationRotate: "please"}
	})
	f.mustSync("team", "ci")
	f.expectActions(
		"update imagepushsecrets/status team/ci",
		"update imageregistryaccounts infra/push.team.ci",
		"update secrets team/ci-image-push-secret",
	)
	st := f.object("team", "ci").status
	if st.Rotation != 1 || st.RotateRequest != "please" {
		t.Errorf("rotation %d, rotateRequest %q", st.Rotation, st.RotateRequest)
	}
	// Acted on once: after the grace period only the previous hash goes.
	f.clock.Step(DefaultGracePeriod)
	f.mustSync("team", "ci")
	if st := f.object("team", "ci").status; st.Rotation != 1 || len(st.Passwords) != 2 {
		t.Errorf("rotation %d with %d hashes; want 1 with 2", st.Rotation, len(st.Passwords))
	}
	// A new value during a grace period waits for its end.
	f.updateObject("team", "ci", func(cr *imageSecret) { cr.meta.Annotations[v1alpha1.AnnotationRotate] = "again" })
	f.mustSync("team", "ci")
	f.updateObject("team", "ci", func(cr *imageSecret) { cr.meta.Annotations[v1alpha1.AnnotationRotate] = "third" })
	f.mustSync("team", "ci")
	if got := f.object("team", "ci").status.Rotation; got != 2 {
		t.Errorf("rotation %d; a rotate request during the grace period must wait", got)
	}
	f.clock.Step(DefaultGracePeriod)
	f.mustSync("team", "ci")
	if st := f.object("team", "ci").status; st.Rotation != 3 || st.RotateRequest != "third" {
		t.Errorf("rotation %d request %q after the grace period", st.Rotation, st.RotateRequest)
	}
}

func TestRegistryProblems(t *testing.T) {
	for _, tc := range []struct {
		name     string
		registry *v1alpha1.ImageRegistry
		ref      *v1alpha1.RegistryRef
		noDef    bool
		reason   string
	}{
		{name: "missing", ref: &v1alpha1.RegistryRef{Name: "nope"}, reason: ReasonRegistryNotFound},
		{name: "not ready", registry: registry("team", "slow", false), ref: &v1alpha1.RegistryRef{Name: "slow"}, reason: ReasonRegistryNotReady},
		{name: "no hostname", registry: func() *v1alpha1.ImageRegistry {
			r := registry("team", "nohost", true)
			r.Status.Hostname = ""
			return r
		}(), ref: &v1alpha1.RegistryRef{Name: "nohost"}, reason: ReasonRegistryNotReady},
		{name: "no default", noDef: true, reason: ReasonNoRegistry},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bad := newObject(credentials.KindPush, "team", "bad").(*v1alpha1.ImagePushSecret)
			bad.Spec.RegistryRef = tc.ref
			reg := registry(regNS, regName, true)
			if tc.noDef {
				// Not the default registry any more: it must admit "team" itself.
				reg.Spec.Access = &v1alpha1.AccessSpec{Namespaces: []string{"team"}}
			}
			objs := []runtime.Object{reg, bad, newObject(credentials.KindPush, "team", "good")}
			if tc.registry != nil {
				objs = append(objs, tc.registry)
			}
			f := newFixture(t, credentials.KindPush, objs...)
			if tc.noDef {
				f.c.opts.DefaultRegistry = types.NamespacedName{}
			}
			if err := f.sync("team", "bad"); err == nil {
				t.Error("expected an error so that the object is retried")
			}
			f.expectEvents("Warning " + tc.reason)
			st := f.object("team", "bad").status
			c := meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionReady)
			if c == nil || c.Status != metav1.ConditionFalse || c.Reason != tc.reason {
				t.Errorf("Ready %+v", c)
			}
			if len(st.Passwords) != 0 || f.secret("team", "bad") != nil || f.account("team", "bad") != nil {
				t.Error("credentials issued without a usable registry")
			}
			f.mustSync("team", "good")
			f.assertSecretWorks("team", "good")
		})
	}
}

func TestObjectDeletedRemovesAccountThenFinalizer(t *testing.T) {
	f := created(t, credentials.KindPush)
	s := f.secret("team", "ci")
	f.updateObject("team", "ci", func(cr *imageSecret) { cr.meta.DeletionTimestamp = &metav1.Time{Time: f.clock.Now()} })
	f.mustSync("team", "ci")
	f.expectActions(
		"get imageregistryaccounts infra/push.team.ci",
		"delete imageregistryaccounts infra/push.team.ci",
		"update imagepushsecrets team/ci", // finalizer removed
	)
	f.expectEvents("Normal AccountDeleted")
	if f.account("team", "ci") != nil {
		t.Error("account survived")
	}
	if f.object("team", "ci") != nil {
		t.Error("object kept its finalizer")
	}
	if accountAccepts(f.account("team", "ci"), string(s.Data[credentials.KeyUsername]), string(s.Data[credentials.KeyPassword])) {
		t.Error("credentials of a deleted object still work")
	}
}

func TestSweepDeletesOrphanAccountsOnly(t *testing.T) {
	f := created(t, credentials.KindPush)
	mk := func(name, owner string, managed bool) *v1alpha1.ImageRegistryAccount {
		a := &v1alpha1.ImageRegistryAccount{ObjectMeta: metav1.ObjectMeta{Namespace: regNS, Name: name,
			Labels:      map[string]string{v1alpha1.LabelType: strings.SplitN(owner, "/", 2)[0]},
			Annotations: map[string]string{v1alpha1.AnnotationOwner: owner}}}
		if managed {
			a.Labels[v1alpha1.LabelManagedBy] = v1alpha1.ManagedByValue
		}
		return a
	}
	for _, a := range []*v1alpha1.ImageRegistryAccount{
		mk("push.team.gone", "push/team/gone", true), // orphan: deleted
		mk("pull.team.gone", "pull/team/gone", true), // the pull controller's business
		mk("static", "push/team/gone", false),        // not ours
	} {
		if err := f.client.Tracker().Add(a); err != nil {
			t.Fatal(err)
		}
	}
	f.syncCaches()
	f.clearActions()
	if err := f.c.sweep(t.Context()); err != nil {
		t.Fatal(err)
	}
	// Only the orphan: the cache nominates it, a live read confirms that its
	// object is gone, then it is deleted.
	f.expectActions("get imagepushsecrets team/gone", "delete imageregistryaccounts infra/push.team.gone")
	for name, want := range map[string]bool{"push.team.gone": false, "pull.team.gone": true, "static": true, "push.team.ci": true} {
		_, err := f.client.Tracker().Get(gvrAccount, regNS, name)
		if (err == nil) != want {
			t.Errorf("account %s exists=%v, want %v", name, err == nil, want)
		}
	}
}

func TestRegistryChangeEnqueuesDependents(t *testing.T) {
	def := newObject(credentials.KindPush, "team", "default").(*v1alpha1.ImagePushSecret)
	def.Spec.RegistryRef = nil
	local := newObject(credentials.KindPush, "team", "local").(*v1alpha1.ImagePushSecret)
	local.Spec.RegistryRef = &v1alpha1.RegistryRef{Name: "mine"}
	f := newFixture(t, credentials.KindPush, def, local, newObject(credentials.KindPush, "other", "explicit"))
	f.syncCaches()
	f.c.handleRegistry(registry(regNS, regName, true))
	got := map[string]bool{}
	for f.c.queue.Len() > 0 {
		k, _ := f.c.queue.Get()
		got[k.String()] = true
		f.c.queue.Done(k)
	}
	if len(got) != 2 || !got["team/default"] || !got["other/explicit"] {
		t.Errorf("enqueued %v, want team/default and other/explicit", got)
	}
	f.c.handleRegistry(cache.DeletedFinalStateUnknown{Key: "team/mine", Obj: registry("team", "mine", true)})
	if k, _ := f.c.queue.Get(); k.String() != "team/local" {
		t.Errorf("enqueued %v, want team/local", k)
	}
}

func TestOwnedObjectsEnqueueOwner(t *testing.T) {
	f := created(t, credentials.KindPush)
	f.c.handleSecret(cache.DeletedFinalStateUnknown{Obj: f.secret("team", "ci")})
	if k, _ := f.c.queue.Get(); k.String() != "team/ci" {
		t.Errorf("Secret enqueued %v", k)
	}
	f.c.queue.Done(cache.NewObjectName("team", "ci"))
	f.c.handleAccount(f.account("team", "ci"))
	if k, _ := f.c.queue.Get(); k.String() != "team/ci" {
		t.Errorf("account enqueued %v", k)
	}
}

func TestNamesAndLabelsStayValid(t *testing.T) {
	long := strings.Repeat("a", 250)
	n1, n2 := credentials.AccountName(credentials.KindPush, "team", long), credentials.AccountName(credentials.KindPull, "team", long)
	for _, n := range []string{n1, n2} {
		if errs := validation.IsDNS1123Subdomain(n); len(errs) > 0 {
			t.Errorf("%s: %v", n, errs)
		}
	}
	if n1 == n2 || credentials.AccountName(credentials.KindPush, "team", long+"b") == n1 {
		t.Error("account names collide")
	}
	if credentials.AccountName(credentials.KindPush, "team", "ci") != "push.team.ci" {
		t.Error("short names are kept readable")
	}
	if v := credentials.LabelValue(long); len(validation.IsValidLabelValue(v)) > 0 {
		t.Errorf("label value %q invalid", v)
	}
	sel, err := (&Controller{kind: credentials.KindPush}).managedAccountSelector()
	if err != nil || sel.Empty() || !strings.Contains(sel.String(), v1alpha1.LabelType+"=push") {
		t.Errorf("selector %v, %v", sel, err)
	}
}

func TestJitterIsBoundedAndSpread(t *testing.T) {
	seen := map[time.Duration]bool{}
	for i := range 50 {
		j := jitter(types.UID(strings.Repeat("x", i)), 24*time.Hour)
		if j < 0 || j >= 6*time.Minute {
			t.Fatalf("jitter %v out of range", j)
		}
		seen[j] = true
	}
	if len(seen) < 45 {
		t.Errorf("only %d distinct jitters for 50 objects", len(seen))
	}
}

// TestDeleteWithRegistryOutOfReach: an object that names a registry in a
// namespace the operator may not read (the namespaced install) never got an
// account, so its deletion must not hang on the Forbidden answer.
func TestDeleteWithRegistryOutOfReach(t *testing.T) {
	obj := newObject(credentials.KindPush, "team", "far").(*v1alpha1.ImagePushSecret)
	obj.Spec.RegistryRef = &v1alpha1.RegistryRef{Name: "registry", Namespace: "elsewhere"}
	obj.Finalizers = []string{v1alpha1.FinalizerAccountCleanup}
	obj.DeletionTimestamp = &metav1.Time{Time: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	f := newFixture(t, credentials.KindPush, obj)
	f.client.PrependReactor("get", "imageregistryaccounts", func(a clienttesting.Action) (bool, runtime.Object, error) {
		if a.GetNamespace() == "elsewhere" {
			return true, nil, apierrors.NewForbidden(v1alpha1.Resource("imageregistryaccounts"), "", errors.New("no RBAC here"))
		}
		return false, nil, nil
	})
	f.mustSync("team", "far")
	if o := f.object("team", "far"); o != nil {
		t.Errorf("object kept its finalizer: %v", o.meta.Finalizers)
	}
}

// TestRotationCountedInMetrics: a scheduled rotation shows in
// image_registry_operator_rotations_total.
func TestRotationCountedInMetrics(t *testing.T) {
	metrics.Register() // unregistered component-base metrics count nothing
	f := created(t, credentials.KindPull)
	counter := metrics.Rotations.WithLabelValues(string(credentials.KindPull), "scheduled")
	before, err := testutil.GetCounterMetricValue(counter)
	if err != nil {
		t.Fatal(err)
	}
	delay := metrics.RotationDelay.WithLabelValues(string(credentials.KindPull))
	delayCount, _ := testutil.GetHistogramMetricCount(delay)
	delaySum, _ := testutil.GetHistogramMetricValue(delay)
	f.clock.Step(25 * time.Hour)
	f.mustSync("team", "ci")
	after, _ := testutil.GetCounterMetricValue(counter)
	if after-before != 1 {
		t.Errorf("rotations counter +%v, want +1", after-before)
	}
	// Due after 24h plus a jitter below 6 minutes; done after 25h.
	count, _ := testutil.GetHistogramMetricCount(delay)
	sum, _ := testutil.GetHistogramMetricValue(delay)
	if d := time.Duration((sum - delaySum) * float64(time.Second)); count-delayCount != 1 || d <= 54*time.Minute || d > time.Hour {
		t.Errorf("rotation delay: %d observations, %v; want 1, between 54 and 60 minutes", count-delayCount, d)
	}
}
