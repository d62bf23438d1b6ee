package main

// The ideal-client replay: the protocol's writes for new objects, made by
// the goroutines that create the objects, with no operator, no decisions
// and no watch between the writes. What it takes is what any client of the
// protocol would pay on this machine; the operator's time to Ready divided
// by it is the operator's own share of the gap to the floor.

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"os"
	"strings"
	"time"

	"golang.org/x/crypto/bcrypt"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/image-registry-operator/image-registry-operator/pkg/apis/registry/v1alpha1"
	"github.com/image-registry-operator/image-registry-operator/pkg/controller/imagesecret"
	"github.com/image-registry-operator/image-registry-operator/pkg/credentials"
)

// replayTemplate is what the operator wrote for app-0 of one kind in the
// normal run, once Ready: the object's status, its account and its Secret.
// The replay writes renamed copies, so that its payloads have the
// operator's sizes, as the operator's field manager, so that the stored
// objects have its managedFields entries.
type replayTemplate struct {
	status  v1alpha1.ImageSecretStatus
	account *v1alpha1.ImageRegistryAccount
	secret  *corev1.Secret
	manager string
}

type replayTemplates struct{ push, pull replayTemplate }

// replayTemplates reads the templates in ns; the objects must not have
// rotated yet.
func (b *bench) replayTemplates(ctx context.Context, ns string) (replayTemplates, error) {
	var t replayTemplates
	push, err := b.reg.RegistryV1alpha1().ImagePushSecrets(ns).Get(ctx, "app-0", metav1.GetOptions{})
	if err != nil {
		return t, err
	}
	if t.push, err = b.replayTemplate(ctx, credentials.KindPush, ns, push, push.Status); err != nil {
		return t, err
	}
	pull, err := b.reg.RegistryV1alpha1().ImagePullSecrets(ns).Get(ctx, "app-0", metav1.GetOptions{})
	if err != nil {
		return t, err
	}
	t.pull, err = b.replayTemplate(ctx, credentials.KindPull, ns, pull, pull.Status)
	return t, err
}

func (b *bench) replayTemplate(ctx context.Context, kind credentials.Kind, ns string, o metav1.Object, st v1alpha1.ImageSecretStatus) (replayTemplate, error) {
	t := replayTemplate{status: st}
	for _, f := range o.GetManagedFields() {
		if f.Subresource == "status" {
			t.manager = f.Manager
		}
	}
	if t.manager == "" {
		return t, fmt.Errorf("%s app-0 in %s has no status field manager", kind, ns)
	}
	if st.Rotation != 0 || len(st.Passwords) != 2 || st.RegistryRef == nil || !meta.IsStatusConditionTrue(st.Conditions, v1alpha1.ConditionReady) {
		return t, fmt.Errorf("%s app-0 in %s is not a newly issued Ready object (rotation %d, %d hashes)", kind, ns, st.Rotation, len(st.Passwords))
	}
	var err error
	name := credentials.AccountName(kind, ns, "app-0")
	if t.account, err = b.reg.RegistryV1alpha1().ImageRegistryAccounts(st.RegistryRef.Namespace).Get(ctx, name, metav1.GetOptions{}); err != nil {
		return t, err
	}
	if t.secret, err = b.kube.CoreV1().Secrets(ns).Get(ctx, st.SecretName, metav1.GetOptions{}); err != nil {
		return t, err
	}
	if t.account.Labels[v1alpha1.LabelOwnerName] != "app-0" || t.account.Annotations[v1alpha1.AnnotationOwnerUID] == "" {
		return t, fmt.Errorf("account %s has no owner labels and annotations", name)
	}
	if len(t.secret.OwnerReferences) != 1 || t.secret.Annotations[v1alpha1.AnnotationRotatedAt] == "" || t.secret.Labels == nil {
		return t, fmt.Errorf("Secret %s/%s lacks the operator's owner reference, labels or annotations", ns, st.SecretName)
	}
	return t, nil
}

// issuingStatus is the status of write 2: the hashes of fresh current and
// next passwords at rotation 0, Ready=False Issuing (rotation.go, advance;
// sync.go, apply and observe).
func (t replayTemplate) issuingStatus(ns, secretName string, generation int64, hashes []string, now time.Time) v1alpha1.ImageSecretStatus {
	st := *t.status.DeepCopy()
	date := metav1.NewTime(now)
	st.ObservedGeneration = generation
	st.RegistryRef = &v1alpha1.RegistryRef{Namespace: ns, Name: st.RegistryRef.Name}
	st.SecretName = secretName
	st.Rotation = 0
	st.Passwords = hashes
	st.RotationDate = &date
	st.RotateRequest = ""
	st.Conditions = []metav1.Condition{{Type: v1alpha1.ConditionReady, Status: metav1.ConditionFalse, Reason: imagesecret.ReasonIssuing,
		Message: "Issuing new credentials", ObservedGeneration: generation, LastTransitionTime: date}}
	return st
}

// setReady is write 5's change: the template's Ready condition, renamed.
func (t replayTemplate) setReady(st *v1alpha1.ImageSecretStatus, secretName string, generation int64, now time.Time) {
	c := *meta.FindStatusCondition(t.status.Conditions, v1alpha1.ConditionReady)
	c.Message = strings.Replace(c.Message, t.status.SecretName, secretName, 1)
	c.ObservedGeneration = generation
	c.LastTransitionTime = metav1.NewTime(now)
	meta.SetStatusCondition(&st.Conditions, c)
}

// newAccount is write 3: the account the operator makes for o, with its
// hashes (pkg/credentials, as the operator builds it).
func (t replayTemplate) newAccount(kind credentials.Kind, ns string, o metav1.Object, hashes []string) *v1alpha1.ImageRegistryAccount {
	owner := credentials.Owner{Kind: kind, Namespace: ns, Name: o.GetName(), UID: o.GetUID()}
	return credentials.NewAccount(owner, types.NamespacedName{Namespace: ns, Name: t.status.RegistryRef.Name}, 0, hashes)
}

// newSecret is write 4: the Secret the operator makes for o, with the
// template's registry and CA and the plaintexts.
func (t replayTemplate) newSecret(kind credentials.Kind, ns, name string, o metav1.Object, cur, next string, now time.Time) (*corev1.Secret, error) {
	owner := credentials.Owner{Kind: kind, Namespace: ns, Name: o.GetName(), UID: o.GetUID()}
	return credentials.NewSecret(owner, name, credentials.SecretContent{
		Registry:     string(t.secret.Data[credentials.KeyRegistry]),
		CA:           string(t.secret.Data[credentials.KeyCA]),
		Password:     cur,
		NextPassword: next,
		RotatedAt:    now,
	})
}

// newCredential is a password as the operator makes one (32 random bytes,
// base64url) and its bcrypt hash.
func newCredential(cost int) (password, hash string, err error) {
	p := make([]byte, 32)
	if _, err := rand.Read(p); err != nil {
		return "", "", err
	}
	password = base64.RawURLEncoding.EncodeToString(p)
	h, err := bcrypt.GenerateFromPassword([]byte(password), cost)
	return password, string(h), err
}

// objectClient is the typed client of ImagePushSecrets or ImagePullSecrets.
type objectClient[T any] interface {
	Create(context.Context, T, metav1.CreateOptions) (T, error)
	Update(context.Context, T, metav1.UpdateOptions) (T, error)
	UpdateStatus(context.Context, T, metav1.UpdateOptions) (T, error)
}

// replayKind is one kind's side of the replay.
type replayKind[T metav1.Object] struct {
	kind   credentials.Kind
	client objectClient[T]
	newObj func(name string) T
	status func(T) *v1alpha1.ImageSecretStatus
	tmpl   replayTemplate
}

// replay creates the object name in ns and makes, in the protocol's order,
// the five writes the operator makes for it (sync.go): each update of the
// object is conditional on the resourceVersion of the one before.
func (k replayKind[T]) replay(ctx context.Context, b *bench, ns, name string) error {
	o, err := k.client.Create(ctx, k.newObj(name), metav1.CreateOptions{})
	if err != nil {
		return err
	}
	// 1. The finalizer, on the copy the operator's cache holds: without
	// managedFields.
	o.SetManagedFields(nil)
	o.SetFinalizers(append(o.GetFinalizers(), v1alpha1.FinalizerAccountCleanup))
	update := metav1.UpdateOptions{FieldManager: k.tmpl.manager}
	create := metav1.CreateOptions{FieldManager: k.tmpl.manager}
	if o, err = k.client.Update(ctx, o, update); err != nil {
		return fmt.Errorf("adding the finalizer to %s %s: %w", k.kind, name, err)
	}
	// 2. Fresh current and next passwords; their hashes in the status.
	cur, curHash, err := newCredential(b.cfg.bcryptCost)
	if err != nil {
		return err
	}
	next, nextHash, err := newCredential(b.cfg.bcryptCost)
	if err != nil {
		return err
	}
	hashes := []string{curHash, nextHash}
	now := time.Now()
	secretName := credentials.DefaultSecretName(k.kind, name)
	*k.status(o) = k.tmpl.issuingStatus(ns, secretName, o.GetGeneration(), hashes, now)
	if o, err = k.client.UpdateStatus(ctx, o, update); err != nil {
		return fmt.Errorf("publishing the hashes of %s %s: %w", k.kind, name, err)
	}
	// 3. The account, in the registry's namespace (the objects' own).
	if _, err := b.reg.RegistryV1alpha1().ImageRegistryAccounts(ns).Create(ctx, k.tmpl.newAccount(k.kind, ns, o, hashes), create); err != nil {
		return fmt.Errorf("creating the account of %s %s: %w", k.kind, name, err)
	}
	// 4. The Secret.
	s, err := k.tmpl.newSecret(k.kind, ns, secretName, o, cur, next, now)
	if err != nil {
		return err
	}
	if _, err := b.kube.CoreV1().Secrets(ns).Create(ctx, s, create); err != nil {
		return fmt.Errorf("creating the Secret of %s %s: %w", k.kind, name, err)
	}
	// 5. Ready.
	k.tmpl.setReady(k.status(o), secretName, o.GetGeneration(), time.Now())
	if _, err := k.client.UpdateStatus(ctx, o, update); err != nil {
		return fmt.Errorf("setting %s %s Ready: %w", k.kind, name, err)
	}
	return nil
}

// replay runs the ideal client for N objects of each kind in a fresh
// namespace that no operator watches: the normal run's 32 goroutines and
// clients, each goroutine making an object's five writes right after
// creating it. The namespace is ideal-<N>, as long as bench-<N>, so that
// names, usernames and owner keys have the normal run's lengths. No
// ImageRegistry exists there: nothing reads one.
func (b *bench) replay(ctx context.Context, n int, tmpl replayTemplates, sr *scaleResult) error {
	ns := fmt.Sprintf("ideal-%d", n)
	if err := b.createNamespace(ctx, ns); err != nil {
		return err
	}
	w, err := b.watch(ctx, ns)
	if err != nil {
		return err
	}
	defer w.stop()
	push := replayKind[*v1alpha1.ImagePushSecret]{
		kind: credentials.KindPush, client: b.reg.RegistryV1alpha1().ImagePushSecrets(ns), tmpl: tmpl.push,
		newObj: func(name string) *v1alpha1.ImagePushSecret {
			return &v1alpha1.ImagePushSecret{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: b.objectSpec()}
		},
		status: func(o *v1alpha1.ImagePushSecret) *v1alpha1.ImageSecretStatus { return &o.Status },
	}
	pull := replayKind[*v1alpha1.ImagePullSecret]{
		kind: credentials.KindPull, client: b.reg.RegistryV1alpha1().ImagePullSecrets(ns), tmpl: tmpl.pull,
		newObj: func(name string) *v1alpha1.ImagePullSecret {
			return &v1alpha1.ImagePullSecret{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: v1alpha1.ImagePullSecretSpec{ImageSecretSpec: b.objectSpec()}}
		},
		status: func(o *v1alpha1.ImagePullSecret) *v1alpha1.ImageSecretStatus { return &o.Status },
	}
	time.Sleep(3 * time.Second) // let the operator's exit settle, as the normal run lets the registry's writes
	sr.replayLoad = loadAvg()
	logf("N=%d: ideal client replay in %s, no operator (load %s)", n, ns, sr.replayLoad)

	cp0, self0 := childrenCPU(0), cpuSeconds(os.Getpid())
	start := time.Now()
	if err := parallel(ctx, 2*n, 32, func(i int) error {
		name := fmt.Sprintf("app-%d", i/2)
		if i%2 == 0 {
			return push.replay(ctx, b, ns, name)
		}
		return pull.replay(ctx, b, ns, name)
	}); err != nil {
		return err
	}
	sr.replayWrites = time.Since(start)
	if err := waitCount(ctx, &w.readyN, int64(2*n), b.cfg.readyTimeout); err != nil {
		return fmt.Errorf("only %d of %d Ready after %s", w.readyN.Load(), 2*n, b.cfg.readyTimeout)
	}
	sr.replayTime = time.Since(start)
	sr.replayCPCPU = childrenCPU(0) - cp0
	sr.replayBenchCPU = cpuSeconds(os.Getpid()) - self0
	sr.replayBytes = b.objectSizes(ctx, ns)
	logf("N=%d: ideal client: all %d Ready after %s (writes returned after %s; operator %s, floor %s), control plane CPU %.1fs, bench CPU %.1fs",
		n, 2*n, sr.replayTime.Round(time.Millisecond), sr.replayWrites.Round(time.Millisecond), sr.readyTime.Round(time.Millisecond),
		(sr.bcryptFloor + sr.apiFloor).Round(time.Millisecond), sr.replayCPCPU, sr.replayBenchCPU)
	return nil
}
